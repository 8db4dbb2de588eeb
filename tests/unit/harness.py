"""Unit-tier helpers: the dry renderer (memoised) plus small config builders."""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from typing import Any

from tools import render_stack
from tools.render_stack import Deployment, RecordingMonitor, Registration, last_registrations, stack_file_config

__all__ = ["Deployment", "Registration", "deploy", "last_registrations", "minimal_config", "stack_file_config"]

_RENDERED: dict[str, tuple[Deployment, RecordingMonitor]] = {}


def deploy(config: Mapping[str, Any], **options: Any) -> Deployment:
    """``render_stack.deploy``, once per process for each distinct input: under the mocks the
    program is a function of its config, and the tier renders the committed stacks many times
    (prod alone 11). Every caller gets its own copy, since tests edit what they get; afterwards
    ``last_registrations()`` and ``LAST_MONITOR`` describe the render returned. A render that
    raises is never memoised."""
    key = json.dumps([config, options], sort_keys=True, default=str)
    if key not in _RENDERED:
        deployment = render_stack.deploy(config, **options)
        _RENDERED[key] = (copy.deepcopy(deployment), render_stack.LAST_MONITOR[0])
        return deployment
    deployment, monitor = _RENDERED[key]
    render_stack.LAST_MONITOR[:] = [monitor]
    return copy.deepcopy(deployment)


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
