"""Cross-field rules for backups storage, operators and egress: each returns the problems it
finds, naming the key. Pure; ``validation.validate_stack_config`` runs them with the others.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from components.config.cluster import MySQLExternalConfig
from components.config.problems import Problem
from components.config.stack import StackConfig

# Helm values that `backups.velero.backupStorageLocation` renders; set them there, not twice.
_VELERO_GENERATED = (("configuration", "backupStorageLocation"), ("credentials",), ("initContainers",))


def _has_path(values: dict[str, Any], path: tuple[str, ...]) -> bool:
    node: Any = values
    for key in path:
        if not isinstance(node, dict) or key not in node:
            return False
        node = node[key]
    return True


def backup_storage_problems(config: StackConfig) -> list[Problem]:
    problems: list[Problem] = []
    velero_release = config.operators.velero
    location = config.backups.velero.backup_storage_location
    if velero_release.enabled and location is None:
        problems.append(
            Problem(
                "backups.velero.backupStorageLocation",
                "required when flightdeck installs Velero (operators.velero.enabled): without a bucket, provider "
                "plugin and credentials the chart's default location cannot store a backup",
            )
        )
    if location is not None and not velero_release.enabled:
        problems.append(
            Problem(
                "backups.velero.backupStorageLocation",
                "only applies when flightdeck installs Velero (operators.velero.enabled); otherwise the running "
                "Velero's own location named by backups.velero.storageLocation is used",
            )
        )
    if location is not None:
        for path in _VELERO_GENERATED:
            if _has_path(velero_release.values, path):
                problems.append(
                    Problem(
                        "operators.velero.values." + ".".join(path),
                        "set by backups.velero.backupStorageLocation; configure the location there",
                    )
                )
    s3 = config.backups.database_backups.storage.s3
    if s3 is not None and not s3.tls.enabled and s3.tls.ca_secret:
        problems.append(Problem("backups.databaseBackups.storage.s3.tls.caSecret", "given but tls.enabled is false"))
    return problems


def operator_problems(config: StackConfig) -> list[Problem]:
    problems: list[Problem] = []
    rook_release = config.operators.rook_ceph
    rook = config.storage.rook
    if rook_release.enabled and rook is not None and rook.operator_namespace:
        installed = rook_release.namespace or "rook-ceph"
        if rook.operator_namespace != installed:
            problems.append(
                Problem(
                    "storage.rook.operatorNamespace",
                    f"{rook.operator_namespace!r} is not the namespace of the Rook release ({installed!r})",
                )
            )
    return problems


def egress_problems(config: StackConfig) -> list[Problem]:
    egress = config.kubernetes.egress
    problems: list[Problem] = []
    mysql = config.mysql
    if isinstance(mysql, MySQLExternalConfig):
        names = _host_names(mysql)
        if egress.enabled and names and not egress.database_cidrs:
            problems.append(
                Problem(
                    "kubernetes.egress.databaseCidrs",
                    f"site pods must reach the external server ({', '.join(repr(n) for n in names)}) on port "
                    f"{mysql.port}: a NetworkPolicy matches addresses, not names, so list the server's addresses "
                    "(e.g. 10.0.5.10/32)",
                )
            )
    elif egress.database_cidrs:
        problems.append(
            Problem(
                "kubernetes.egress.databaseCidrs",
                "only for mysql.mode external; the operator's servers are selected by their pod labels",
            )
        )
    for i, cidr in enumerate(egress.private_cidrs):
        if ipaddress.ip_network(cidr).prefixlen == 0:
            problems.append(Problem(f"kubernetes.egress.privateCidrs[{i}]", f"{cidr} would exclude the whole internet"))
    return problems


def _host_names(mysql: MySQLExternalConfig) -> list[str]:
    """The server hosts that are names rather than IP addresses."""
    names = []
    for host in dict.fromkeys(h for h in (mysql.host, mysql.read_host) if h):
        try:
            ipaddress.ip_address(host)
        except ValueError:
            names.append(host)
    return names


def platform_problems(config: StackConfig) -> list[Problem]:
    return backup_storage_problems(config) + operator_problems(config) + egress_problems(config)
