"""Refuses config changes that would lose data or fail half-way, before anything changes. Pure.

The program exports ``deployment_record(config)`` as the stack output ``deployment``; the next
run reads it back (``components.previous_deployment``) before registering any resource and
``destructive_changes`` compares it with the new config. A first deployment has nothing to
compare. Stacks deployed before this record existed are compared through their ``mysql`` and
``sites`` outputs (``record_from_outputs``).

Why each change is refused (pulumi-kubernetes replaces an object whose name or namespace
changes, and a PVC whose storage class changes; mariadb-operator v26.6's webhooks reject
changes of ``webhook:"inmutable"`` fields, but only after ``pulumi up`` has started):

* ``kubernetes.namespacePrefix``: every site namespace, and the files claim in it, is new and empty;
* ``storage.storageClass``: every files claim would be replaced; the retained one blocks the new one;
* ``storage.rook`` filesystem name or namespace, or dropping it: the protected CephFilesystem holding
  every site's files would be replaced or deleted;
* ``mysql.mode``, ``mysql.name``, ``mysql.namespace``: the protected MariaDB would be replaced, and
  SQL resources only store a new connection (they never recreate databases on another server);
* ``mysql.storageClass``, ``mysql.timeZone``, ``mysql.antiAffinity``: immutable in the MariaDB CRD;
  a smaller ``mysql.size``: the operator never shrinks volumes;
* ``mysql.readerCount`` 0 <-> N: a single server and Galera lay out their volumes differently
  (Galera adds a config volume the operator cannot add to an existing StatefulSet), and a
  replication cluster made by an older flightdeck cannot become Galera in place;
* ``backups.databaseBackups.storage``, backup retention: a Backup's ``storage`` is immutable and its
  ``maxRetention`` cannot change once set;
* a site's database name: the site would get a new, empty database;
* a site rename (a removed site's domain, database or user taken over by a new site): the new
  site would start with an empty namespace and files volume (and an adopted database, dropped
  again if the old site had ``dropDataOnDelete``).

Each refusal names the key, the deployed and the new value, and the README section with the
migration path (``GUIDES``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from components.config.cluster import MySQLExternalConfig, MySQLOperatorConfig
from components.config.database_server import server_count, topology
from components.config.problems import ConfigError, Problem
from components.config.sites import SiteConfig
from components.config.stack import StackConfig
from components.config.values import quantity_bytes

OUTPUT_NAME = "deployment"
RECORD_VERSION = 1

# README headings (Data safety) with each migration path; a unit test checks they exist.
FIXED_FOR_STACK = "Settings fixed for a stack's life"
RENAME_SITE = "Rename a site"
RENAME_DATABASE = "Change a site's database name"
BACKUP_STORAGE = "Change database backup storage or retention"
GUIDES = (FIXED_FOR_STACK, RENAME_SITE, RENAME_DATABASE, BACKUP_STORAGE)


class DestructiveChangeError(ConfigError):
    """Every refused change, each naming its key, the deployed and the new value, and the way out."""

    def __init__(self, problems: Iterable[Problem], stack: str = "") -> None:
        super().__init__(problems, stack)
        prefix = f"{stack}: " if stack else ""
        lines = "\n".join(f"  {prefix}{p}" for p in self.problems)
        self.args = (f"refusing changes that would lose data or fail half-way (nothing was changed):\n{lines}",)

    def __str__(self) -> str:
        return str(self.args[0])


# -- what a deployment records ----------------------------------------------------------------------


def deployment_record(config: StackConfig) -> dict[str, Any]:
    """What the next run compares against: names, classes and topology. Never a secret."""
    return {
        "version": RECORD_VERSION,
        "namespacePrefix": config.kubernetes.namespace_prefix,
        "filesStorageClass": config.storage.storage_class,
        "rookFilesystem": (
            {"name": config.storage.rook.filesystem_name, "namespace": config.storage.rook.namespace}
            if config.storage.rook
            else None
        ),
        "mysql": _mysql_record(config.mysql),
        "databaseBackupStorage": _backup_storage(config),
        "sites": {site.name: _site_record(config, site) for site in config.sites},
    }


def _mysql_record(mysql: MySQLOperatorConfig | MySQLExternalConfig) -> dict[str, Any]:
    if isinstance(mysql, MySQLExternalConfig):
        return {"mode": "external", "topology": "external", "host": mysql.host, "port": mysql.port}
    return {
        "mode": "operator",
        "topology": topology(mysql),
        "name": mysql.name,
        "namespace": mysql.namespace,
        "servers": server_count(mysql),
        "size": mysql.size,
        "storageClass": mysql.storage_class,
        "timeZone": mysql.time_zone,
        "antiAffinity": mysql.anti_affinity,
    }


def _has_database_backup(config: StackConfig, site: SiteConfig) -> bool:
    return (
        isinstance(config.mysql, MySQLOperatorConfig)
        and config.backups.database_backups.enabled
        and site.backup.database
    )


def _backup_storage(config: StackConfig) -> dict[str, Any] | None:
    if not any(_has_database_backup(config, site) for site in config.sites):
        return None
    return config.backups.database_backups.storage.model_dump(by_alias=True, exclude_none=True)


def _site_record(config: StackConfig, site: SiteConfig) -> dict[str, Any]:
    return {
        "namespace": f"{config.kubernetes.namespace_prefix}{site.name}",
        "database": site.database_name,
        "user": site.user_name,
        "domains": list(site.domains),
        "dropDataOnDelete": site.drop_data_on_delete,
        "databaseBackupRetentionDays": (
            (site.backup.retention_days or config.backups.retention_days)
            if _has_database_backup(config, site)
            else None
        ),
    }


def _integral(value: Any) -> Any:
    """Stack outputs travel as protobuf Struct values: every number comes back as a float."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, Mapping):
        return {key: _integral(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_integral(item) for item in value]
    return value


def record_from_outputs(outputs: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The previous deployment's record; reconstructed from older outputs; None for a first deployment."""
    if not outputs:
        return None
    outputs = _integral(outputs)
    record = outputs.get(OUTPUT_NAME)
    if isinstance(record, Mapping) and isinstance(record.get("version"), int):
        return dict(record)
    return _legacy_record(outputs)


def _legacy_record(outputs: Mapping[str, Any]) -> dict[str, Any] | None:
    """Outputs of a flightdeck that exported only ``mysql`` and ``sites`` (it always ran replication)."""
    mysql_out, sites_out = outputs.get("mysql"), outputs.get("sites")
    if not isinstance(mysql_out, Mapping):
        return None
    mysql: dict[str, Any] = {"mode": mysql_out.get("mode")}
    if mysql["mode"] == "operator":
        host = str(mysql_out.get("primaryHost") or "")
        service, _, rest = host.partition(".")
        mysql["name"] = service.removesuffix("-primary") or None
        mysql["namespace"] = rest.partition(".")[0] or None
        servers = mysql_out.get("servers")
        if isinstance(servers, int):
            mysql["servers"] = servers
            mysql["topology"] = "replication" if servers > 1 else "standalone"
    sites: dict[str, Any] = {}
    prefixes = set()
    for name, site in (sites_out or {}).items() if isinstance(sites_out, Mapping) else ():
        if not isinstance(site, Mapping):
            continue
        namespace = str(site.get("namespace") or "")
        if namespace.endswith(str(name)):
            prefixes.add(namespace[: -len(str(name))])
        sites[str(name)] = {
            "namespace": namespace,
            "database": site.get("database"),
            "user": site.get("user"),
            "domains": list(site.get("domains") or []),
        }
    return {
        "version": 0,
        "namespacePrefix": prefixes.pop() if len(prefixes) == 1 else None,
        "mysql": mysql,
        "sites": sites,
    }


# -- the comparison ---------------------------------------------------------------------------------


def _shown(value: Any) -> str:
    return json.dumps(value)


def _refusal(path: str, old: Any, new: Any, consequence: str, guide: str, keep: bool = True) -> Problem:
    advice = f"keep {_shown(old)}, or see README: {guide}" if keep else f"see README: {guide}"
    return Problem(path, f"{_shown(old)} → {_shown(new)} {consequence}; {advice}")


def destructive_changes(previous: Mapping[str, Any] | None, config: StackConfig) -> list[Problem]:
    """Every change from the previous deployment's record that would lose data or fail half-way."""
    if not previous:
        return []
    new = deployment_record(config)
    had_sites = bool(previous.get("sites"))
    problems: list[Problem] = []
    if had_sites:
        problems += _changed(
            previous, new, "namespacePrefix", "kubernetes.namespacePrefix",
            "would move every site to a new, empty namespace and files volume (the old ones stay behind, orphaned)",
        )  # fmt: skip
        problems += _changed(
            previous, new, "filesStorageClass", "storage.storageClass",
            "would replace every site's files claim (a claim's class cannot change; the retained old claim "
            "makes the new one fail half-way)",
        )  # fmt: skip
    problems += _rook_changes(previous.get("rookFilesystem"), new["rookFilesystem"])
    problems += _mysql_changes(previous.get("mysql"), new["mysql"], config, had_sites)
    problems += _backup_changes(previous, new, config)
    problems += _site_changes(previous.get("sites"), config)
    return problems


def _changed(
    previous: Mapping[str, Any], new: Mapping[str, Any], key: str, path: str, consequence: str
) -> list[Problem]:
    if key not in previous or previous[key] is None or previous[key] == new[key]:
        return []
    return [_refusal(path, previous[key], new[key], consequence, FIXED_FOR_STACK)]


def _rook_changes(old: Any, new: Mapping[str, Any] | None) -> list[Problem]:
    """The CephFilesystem holds every site's files: protected, so a replacement fails half-way."""
    if not isinstance(old, Mapping):
        return []
    if new is None:
        consequence = "would delete the protected CephFilesystem that holds every site's files"
        return [_refusal("storage.rook", dict(old), None, consequence, FIXED_FOR_STACK)]
    consequence = "would replace the protected CephFilesystem that holds every site's files"
    return [
        _refusal(f"storage.rook.{field}", old[key], new[key], consequence, FIXED_FOR_STACK)
        for key, field in (("name", "filesystemName"), ("namespace", "namespace"))
        if key in old and old[key] != new[key]
    ]


def _mysql_changes(old: Any, new: Mapping[str, Any], config: StackConfig, had_sites: bool) -> list[Problem]:
    if not isinstance(old, Mapping) or not old.get("mode"):
        return []
    if old["mode"] != new["mode"]:
        if old["mode"] == "operator" or had_sites:
            return [
                _refusal(
                    "mysql.mode", old["mode"], new["mode"],
                    "would move every site database to another server (the protected MariaDB cannot be "
                    "deleted, and databases are never recreated on a new server)",
                    FIXED_FOR_STACK,
                )
            ]  # fmt: skip
        return []
    if new["mode"] != "operator":
        return []
    mysql = config.mysql
    assert isinstance(mysql, MySQLOperatorConfig)
    problems = []
    immutable = (
        ("name", "mysql.name", "would replace the protected MariaDB resource and every Service sites use"),
        ("namespace", "mysql.namespace", "would replace the protected MariaDB resource and its volumes"),
        ("storageClass", "mysql.storageClass", "is immutable in mariadb-operator (its webhook rejects the change)"),
        ("timeZone", "mysql.timeZone", "is immutable in mariadb-operator (its webhook rejects the change)"),
        ("antiAffinity", "mysql.antiAffinity", "is immutable in mariadb-operator (its webhook rejects the change)"),
    )
    for key, path, consequence in immutable:
        if key in old and old[key] != new[key]:
            problems.append(_refusal(path, old[key], new[key], consequence, FIXED_FOR_STACK))
    if isinstance(old.get("size"), str):
        try:
            shrinks = quantity_bytes(new["size"]) < quantity_bytes(old["size"])
        except ValueError:
            shrinks = False
        if shrinks:
            problems.append(
                _refusal(
                    "mysql.size", old["size"], new["size"],
                    "would shrink the data volumes, which mariadb-operator refuses (volumes only grow)",
                    FIXED_FOR_STACK,
                )
            )  # fmt: skip
    old_topology = old.get("topology")
    if old_topology and old_topology != new["topology"]:
        old_readers = int(old.get("servers", 1)) - 1
        what = {"standalone": "a single server", "galera": "a Galera cluster", "replication": "a replication cluster"}
        problems.append(
            _refusal(
                "mysql.readerCount", old_readers, mysql.reader_count,
                f"would turn {what.get(str(old_topology), str(old_topology))} into {what[new['topology']]}, which "
                "mariadb-operator cannot do in place (the volume layout differs; readers can be added or removed "
                "only within one topology)",
                FIXED_FOR_STACK,
            )
        )  # fmt: skip
    return problems


def _backup_changes(previous: Mapping[str, Any], new: Mapping[str, Any], config: StackConfig) -> list[Problem]:
    old_storage, new_storage = previous.get("databaseBackupStorage"), new["databaseBackupStorage"]
    old_sites = previous.get("sites") if isinstance(previous.get("sites"), Mapping) else {}
    assert isinstance(old_sites, Mapping)
    problems = []
    if old_storage and new_storage and old_storage != new_storage:
        problems.append(
            _refusal(
                "backups.databaseBackups.storage", old_storage, new_storage,
                "is immutable in every existing mariadb-operator Backup (its webhook rejects the change)",
                BACKUP_STORAGE,
            )
        )  # fmt: skip
    # One refusal per key: the global retention names every site whose Backup it would change.
    changed: dict[str, tuple[Any, Any, list[str]]] = {}
    for index, site in enumerate(config.sites):
        old_site = old_sites.get(site.name)
        if not isinstance(old_site, Mapping):
            continue
        old_days = old_site.get("databaseBackupRetentionDays")
        new_days = new["sites"][site.name]["databaseBackupRetentionDays"]
        if old_days and new_days and old_days != new_days:
            path = f"sites[{index}].backup.retentionDays" if site.backup.retention_days else "backups.retentionDays"
            changed.setdefault(path, (old_days, new_days, []))[2].append(site.name)
    for path, (old_days, new_days, sites) in changed.items():
        problems.append(
            _refusal(
                path, old_days, new_days,
                f"would change the retention of the database Backup of {', '.join(sites)}, which mariadb-operator "
                "fixes once set (maxRetention)",
                BACKUP_STORAGE,
            )
        )  # fmt: skip
    return list(dict.fromkeys(problems))


def _site_changes(old_sites: Any, config: StackConfig) -> list[Problem]:
    if not isinstance(old_sites, Mapping):
        return []
    problems = []
    current = {site.name for site in config.sites}
    removed = {name: site for name, site in old_sites.items() if name not in current and isinstance(site, Mapping)}
    for index, site in enumerate(config.sites):
        old = old_sites.get(site.name)
        if isinstance(old, Mapping):
            old_database = old.get("database")
            if old_database and old_database != site.database_name and site.database.copied_from != old_database:
                problems.append(
                    _refusal(
                        f"sites[{index}].database.name", old_database, site.database_name,
                        "would give the site a new, empty database (the old one is kept on the server)",
                        RENAME_DATABASE,
                    )
                )  # fmt: skip
            continue
        for old_name, old_site in sorted(removed.items()):
            taken = _taken_over(old_site, site)
            if taken and old_site.get("dropDataOnDelete") and old_site.get("database") == site.database_name:
                taken += " (and the removed site's dropDataOnDelete would drop that database)"
            if taken:
                problems.append(
                    _refusal(
                        f"sites[{index}].name", old_name, site.name,
                        f"looks like a rename: the new site takes over {taken} of the removed site, but would start "
                        "with a new, empty namespace and files volume",
                        RENAME_SITE,
                        keep=False,
                    )
                )  # fmt: skip
    return problems


def _taken_over(old_site: Mapping[str, Any], site: SiteConfig) -> str:
    parts = []
    shared = sorted(set(old_site.get("domains") or []) & set(site.domains))
    if shared:
        parts.append(f"domain {', '.join(shared)}")
    if old_site.get("database") == site.database_name:
        parts.append(f"database {site.database_name}")
    if old_site.get("user") == site.user_name:
        parts.append(f"user {site.user_name}")
    return " and ".join(parts)


def refuse_destructive_changes(previous_outputs: Mapping[str, Any] | None, config: StackConfig, stack: str) -> None:
    """Raise ``DestructiveChangeError`` listing every refused change; return when there is none."""
    problems = destructive_changes(record_from_outputs(previous_outputs), config)
    if problems:
        raise DestructiveChangeError(problems, stack)
