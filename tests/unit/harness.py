"""Unit-tier helpers: the dry renderer plus small config builders."""

from __future__ import annotations

from typing import Any

from tools.render_stack import Deployment, Registration, deploy, last_registrations, stack_file_config

__all__ = ["Deployment", "Registration", "deploy", "last_registrations", "minimal_config", "stack_file_config"]


def minimal_config(**overrides: Any) -> dict[str, Any]:
    config: dict[str, Any] = {
        "mysql": {"mode": "operator"},
        "certificates": {"acmeEmail": "ops@example.org"},
        "sites": [
            {"name": "blog", "cms": "wordpress", "domains": ["blog.example.org", "www.blog.example.org"]},
            {"name": "wiki", "cms": "drupal", "domains": ["wiki.example.org"]},
        ],
    }
    config.update(overrides)
    return config
