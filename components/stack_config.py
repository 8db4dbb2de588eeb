"""Reads the Pulumi stack config into the validated ``StackConfig`` (the program's thin edge).

Structured sections are plain stack keys (``flightdeck:sites`` ...); the two secrets have keys
of their own so they stay Pulumi secrets and never pass through the model or its errors.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pulumi
from pulumi.runtime import config as runtime_config

from components.config import ConfigError, Problem, StackConfig, validate_stack_config

NAMESPACE = "flightdeck"
SECTIONS = ("kubernetes", "operators", "mysql", "storage", "certificates", "backups", "sites")
SECRET_KEYS = ("kubeconfig", "mysqlAdminPassword")


@dataclass(frozen=True)
class StackSettings:
    """The validated model plus the secrets, which stay Pulumi ``Output`` secrets."""

    config: StackConfig
    kubeconfig: pulumi.Output[str] | None
    mysql_admin_password: pulumi.Output[str] | None


def _configured_keys() -> set[str]:
    keys = set(runtime_config.CONFIG.get()) | set(runtime_config.get_config_env())
    prefix = f"{NAMESPACE}:"
    return {key.removeprefix(prefix) for key in keys if key.startswith(prefix)}


def read_raw(config: pulumi.Config) -> tuple[dict[str, Any], list[Problem]]:
    """The structured sections as plain data, and problems that precede model validation."""
    raw: dict[str, Any] = {}
    problems: list[Problem] = []
    for key in sorted(_configured_keys() - set(SECTIONS) - set(SECRET_KEYS)):
        problems.append(
            Problem(key, f"unknown stack key {NAMESPACE}:{key} (known: {', '.join(SECTIONS + SECRET_KEYS)})")
        )
    for section in SECTIONS:
        text = config.get(section)
        if text is None:
            continue
        if runtime_config.is_config_secret(f"{NAMESPACE}:{section}"):
            problems.append(
                Problem(section, "must not be a secret; secrets have their own keys (kubeconfig, mysqlAdminPassword)")
            )
            continue
        try:
            raw[section] = json.loads(text)
        except json.JSONDecodeError:
            raw[section] = text  # a scalar where an object is expected; the model names the problem
    return raw, problems


def load(config: pulumi.Config | None = None, stack: str | None = None) -> StackSettings:
    """Validate the current stack's config; raise ``pulumi.RunError`` (no traceback) listing every problem."""
    config = config or pulumi.Config(NAMESPACE)
    stack = stack or pulumi.get_stack()
    raw, problems = read_raw(config)
    has_admin_password = config.get_secret("mysqlAdminPassword") is not None
    model: StackConfig | None = None
    try:
        model = validate_stack_config(raw, has_admin_password=has_admin_password, stack=stack)
    except ConfigError as error:
        problems += error.problems
    if problems or model is None:
        raise pulumi.RunError(str(ConfigError(problems, stack))) from None
    return StackSettings(
        config=model,
        kubeconfig=config.get_secret("kubeconfig"),
        mysql_admin_password=config.get_secret("mysqlAdminPassword"),
    )
