"""Whole-config validation: the one entry point that returns a valid ``StackConfig`` or raises
``ConfigError`` listing every problem, including the rules that span several keys. Pure.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import ValidationError
from pydantic.alias_generators import to_camel

from components.config.backup_plan import plan_backups
from components.config.cluster import MySQLExternalConfig
from components.config.database_server import server_problems
from components.config.platform_rules import platform_problems
from components.config.problems import ConfigError, Problem, format_path
from components.config.sites import SiteConfig
from components.config.stack import StackConfig
from components.config.values import Resources, quantity_bytes
from components.config.workload_rules import site_workload_problems
from components.sql import identifiers, privileges

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _pydantic_problems(error: ValidationError, discriminated: Mapping[str, set[str]]) -> list[Problem]:
    problems = []
    for item in error.errors(include_input=False, include_url=False):
        loc = list(item["loc"])
        # The discriminated union adds its tag (`operator`) to the path; users never wrote it.
        if len(loc) >= 2 and isinstance(loc[0], str) and loc[1] in discriminated.get(loc[0], set()):
            del loc[1]
        message = item["msg"].removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            message = "unknown key (check spelling; keys are camelCase)"
        problems.append(Problem(format_path(loc), message))
    return problems


def _duplicates(values: Iterable[tuple[str, str]]) -> list[Problem]:
    """Problems for every (path, value) whose value was already used earlier."""
    seen: dict[str, str] = {}
    problems = []
    for path, value in values:
        if value in seen:
            problems.append(Problem(path, f"{value!r} is already used by {seen[value]}"))
        else:
            seen[value] = path
    return problems


def _site_problems(sites: list[tuple[int, SiteConfig]], config_prefix: str) -> list[Problem]:
    problems = _duplicates((f"sites[{i}].name", s.name) for i, s in sites)
    problems += _duplicates((f"sites[{i}].database.name", s.database_name) for i, s in sites)
    problems += _duplicates((f"sites[{i}].user.name", s.user_name) for i, s in sites)
    problems += _duplicates((f"sites[{i}].domains[{j}]", d) for i, s in sites for j, d in enumerate(s.domains))
    for i, site in sites:
        derived_problem = identifiers.validate_database_name(site.database_name, "derived")
        if site.database.name is None and derived_problem:
            reason = derived_problem.removeprefix("derived: ")
            problems.append(Problem(f"sites[{i}].name", f"cannot derive a database name ({reason}); set database.name"))
        namespace = f"{config_prefix}{site.name}"
        if len(namespace) > 63:
            problems.append(Problem(f"sites[{i}].name", f"namespace {namespace!r} would exceed 63 characters"))
        for key in site.env:
            if not _ENV_NAME.match(key) or key.startswith("DB_"):
                problems.append(Problem(f"sites[{i}].env.{key}", "not a valid variable name (DB_* is reserved)"))
        problems += _privilege_problems(site.database.privileges, "*", f"sites[{i}].database.privileges")
        problems += _resource_problems(site.resources, f"sites[{i}].resources")
        problems += site_workload_problems(site, f"sites[{i}]")
        granted: dict[tuple[str, str], int] = {}
        for j, grant in enumerate(site.grants):
            path = f"sites[{i}].grants[{j}]"
            problems += _privilege_problems(grant.privileges, grant.table, f"{path}.privileges")
            if grant.database == site.database_name:
                problems.append(Problem(f"{path}.database", "the site's own database; use database.privileges"))
            target = (grant.database, grant.table)
            if target in granted:
                problems.append(
                    Problem(path, f"{grant.database}.{grant.table} is already granted by grants[{granted[target]}]")
                )
            granted.setdefault(target, j)
    return problems


def _resource_problems(resources: Resources, path: str) -> list[Problem]:
    """Requests above limits pass the model but are refused by the API server at deploy."""
    problems = []
    for kind, parse in (("cpu", _cpu_cores), ("memory", quantity_bytes)):
        request, limit = getattr(resources.requests, kind), getattr(resources.limits, kind)
        if request and limit and parse(request) > parse(limit):
            problems.append(Problem(f"{path}.requests.{kind}", f"{request} is more than the limit {limit}"))
    return problems


def _cpu_cores(value: str) -> float:
    return float(value[:-1]) / 1000 if value.endswith("m") else float(value)


def _privilege_problems(values: list[str], table: str, path: str) -> list[Problem]:
    problems = []
    for message in privileges.validate_privileges(values, table=table, field=path):
        where, _, reason = message.partition(": ")
        problems.append(Problem(where, reason))
    return problems


def validate_stack_config(raw: Mapping[str, Any], *, has_admin_password: bool = True, stack: str = "") -> StackConfig:
    """The one entry point: a valid ``StackConfig`` or a ``ConfigError`` listing every problem."""
    problems: list[Problem] = []
    config: StackConfig | None = None
    try:
        config = StackConfig.model_validate(dict(raw))
    except ValidationError as error:
        problems += _pydantic_problems(error, {"mysql": {"operator", "external"}})

    # Cross-field rules also run over the sites that are valid on their own, so one message
    # lists every problem instead of revealing them one `pulumi up` at a time.
    raw_sites = raw.get("sites")
    valid_sites: list[tuple[int, SiteConfig]] = []
    if isinstance(raw_sites, list):
        for index, raw_site in enumerate(raw_sites):
            with contextlib.suppress(ValidationError):  # already reported by the whole-model pass
                valid_sites.append((index, SiteConfig.model_validate(raw_site)))
    raw_kubernetes = raw.get("kubernetes")
    prefix = raw_kubernetes.get("namespacePrefix", "") if isinstance(raw_kubernetes, Mapping) else ""
    problems += _site_problems(valid_sites, prefix if isinstance(prefix, str) else "")

    if config is not None:
        problems += _mode_problems(config, has_admin_password)
        problems += platform_problems(config)
        problems += server_problems(config)
        if not problems:
            try:
                plan_backups(config)
            except ConfigError as error:
                problems += error.problems
    if problems:
        unique = list(dict.fromkeys(problems))
        raise ConfigError(unique, stack)
    assert config is not None
    return config


def _mode_problems(config: StackConfig, has_admin_password: bool) -> list[Problem]:
    problems = []
    mysql = config.mysql
    if isinstance(mysql, MySQLExternalConfig):
        if mysql.access.mode != "direct":
            problems.append(
                Problem("mysql.access.mode", "an external server is reached `direct` (no Service to forward to)")
            )
        if not has_admin_password:
            problems.append(
                Problem(
                    "mysqlAdminPassword",
                    "external mode needs the secret admin password (pulumi config set --secret mysqlAdminPassword)",
                )
            )
    else:
        if mysql.access.mode == "portForward" and (mysql.access.host or mysql.access.port):
            problems.append(Problem("mysql.access", "host/port overrides apply to `direct` mode only"))
        problems += _resource_problems(mysql.resources, "mysql.resources")
    velero_release = config.operators.velero
    if velero_release.enabled and (velero_release.namespace or "velero") != config.backups.velero.namespace:
        problems.append(
            Problem(
                "backups.velero.namespace",
                "must be the namespace the Velero release is installed in (operators.velero.namespace)",
            )
        )
    storage = config.backups.database_backups.storage
    if config.backups.database_backups.enabled and (storage.persistent_volume_claim is None) == (storage.s3 is None):
        problems.append(Problem("backups.databaseBackups.storage", "set exactly one of persistentVolumeClaim, s3"))
    for field, release in config.operators:
        if release.values and not release.enabled:
            problems.append(
                Problem(f"operators.{to_camel(field)}.values", "values given but the release is not enabled")
            )
    return problems
