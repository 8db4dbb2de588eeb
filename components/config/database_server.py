"""The database server's derived settings, and the rules that span the server and the sites. Pure.

Topology (see docs/database-cluster.md): in operator mode ``readerCount: 0`` is a single server
and ``readerCount: N`` (even) a Galera cluster of ``N + 1`` nodes, all writes going to the one
primary. mariadb-operator v26.6 refuses what these rules refuse, but only after ``pulumi up``
has started: its CRD rejects an even Galera size (the ``replicasAllowEvenNumber`` CEL rule) and
its webhook rejects HA with a single replica (``validateHA``).

Connections: every site's account gets ``MAX_USER_CONNECTIONS`` = ``user.maxUserConnections``
or ``replicas x connectionsPerReplica``; their sum plus ``reservedConnections`` must fit the
server's ``max_connections``, so no site can starve the others or the operator.
"""

from __future__ import annotations

from typing import Literal

from components.config.cluster import MySQLExternalConfig, MySQLOperatorConfig
from components.config.problems import Problem
from components.config.sites import SiteConfig
from components.config.stack import StackConfig
from components.config.values import quantity_bytes
from components.sql import identifiers

Topology = Literal["standalone", "galera", "external"]
MIB = 2**20
# An explicit buffer pool above this share of the memory limit leaves too little for
# connections, sort buffers and Galera's cache: the kernel OOM-kills the server under load.
MAX_BUFFER_POOL_SHARE = 0.8


def topology(mysql: MySQLOperatorConfig | MySQLExternalConfig) -> Topology:
    if isinstance(mysql, MySQLExternalConfig):
        return "external"
    return "galera" if mysql.reader_count > 0 else "standalone"


def server_count(mysql: MySQLOperatorConfig) -> int:
    return mysql.reader_count + 1


def memory_basis(mysql: MySQLOperatorConfig) -> tuple[str, str] | None:
    """(config path, quantity) the buffer pool is sized from: the memory limit, else the request."""
    if mysql.resources.limits.memory:
        return "mysql.resources.limits.memory", mysql.resources.limits.memory
    if mysql.resources.requests.memory:
        return "mysql.resources.requests.memory", mysql.resources.requests.memory
    return None


def innodb_buffer_pool_bytes(mysql: MySQLOperatorConfig) -> int | None:
    """``innodb_buffer_pool_size`` in bytes, whole MiB; None when nothing to size it from."""
    if mysql.innodb_buffer_pool_size:
        size = quantity_bytes(mysql.innodb_buffer_pool_size)
    else:
        basis = memory_basis(mysql)
        if basis is None:
            return None
        size = quantity_bytes(basis[1]) * mysql.innodb_buffer_pool_fraction
    return max(int(size // MIB), 1) * MIB


def site_connection_limit(site: SiteConfig, mysql: MySQLOperatorConfig | MySQLExternalConfig) -> int:
    """The site account's ``MAX_USER_CONNECTIONS``: explicit, else ``replicas x connectionsPerReplica``."""
    if site.user.max_user_connections is not None:
        return site.user.max_user_connections
    return site.replicas * mysql.connections_per_replica


def server_problems(config: StackConfig) -> list[Problem]:
    """Topology, quorum, memory and connection-budget rules for a model that is valid field by field."""
    mysql = config.mysql
    problems: list[Problem] = []
    if isinstance(mysql, MySQLOperatorConfig):
        problems += _topology_problems(mysql)
        problems += _memory_problems(mysql)
    problems += _connection_problems(config)
    problems += _reserved_account_problems(config)
    return problems


def _topology_problems(mysql: MySQLOperatorConfig) -> list[Problem]:
    problems = []
    readers = mysql.reader_count
    if readers % 2:
        problems.append(
            Problem(
                "mysql.readerCount",
                f"{readers} would make {readers + 1} Galera nodes; Galera needs an odd number of nodes to keep "
                f"quorum (mariadb-operator refuses even sizes): use {readers - 1} or {readers + 1}",
            )
        )
    elif readers:
        allowed = readers // 2
        if mysql.pod_disruption_budget.max_unavailable > allowed:
            problems.append(
                Problem(
                    "mysql.podDisruptionBudget.maxUnavailable",
                    f"{mysql.pod_disruption_budget.max_unavailable} of {readers + 1} Galera nodes down at once "
                    f"would lose quorum (the rest could not accept writes): at most {allowed}",
                )
            )
    return problems


def _memory_problems(mysql: MySQLOperatorConfig) -> list[Problem]:
    basis = memory_basis(mysql)
    if mysql.innodb_buffer_pool_size is None:
        if basis is None:
            return [
                Problem(
                    "mysql.resources.limits.memory",
                    "needed to size innodb_buffer_pool_size (or set mysql.innodbBufferPoolSize)",
                )
            ]
        return []
    if basis is not None:
        size, memory = quantity_bytes(mysql.innodb_buffer_pool_size), quantity_bytes(basis[1])
        if size > memory * MAX_BUFFER_POOL_SHARE:
            return [
                Problem(
                    "mysql.innodbBufferPoolSize",
                    f"{mysql.innodb_buffer_pool_size} is more than {MAX_BUFFER_POOL_SHARE:.0%} of {basis[0]} "
                    f"{basis[1]}: too little would be left for connections and the server would be OOM-killed",
                )
            ]
    return []


def _connection_problems(config: StackConfig) -> list[Problem]:
    mysql = config.mysql
    if mysql.max_connections is None or not config.sites:
        return []
    sites = sum(site_connection_limit(site, mysql) for site in config.sites)
    needed = sites + mysql.reserved_connections
    if needed <= mysql.max_connections:
        return []
    return [
        Problem(
            "mysql.maxConnections",
            f"{mysql.max_connections} is less than the sites' connection limits {sites} (each site's "
            f"user.maxUserConnections, else replicas × connectionsPerReplica {mysql.connections_per_replica}) "
            f"plus reservedConnections {mysql.reserved_connections} = {needed}: raise mysql.maxConnections "
            "(and the server's memory) or lower the sites' limits",
        )
    ]


def _reserved_account_problems(config: StackConfig) -> list[Problem]:
    """Accounts the field types cannot see: derived names, the external admin, the operator's metrics user."""
    mysql = config.mysql
    taken: dict[str, str] = {}
    if isinstance(mysql, MySQLExternalConfig):
        taken[mysql.admin_user.lower()] = f"the admin account of mysql.adminUser {mysql.admin_user!r}"
    else:
        metrics = f"{mysql.name}-metrics"  # mariadb-operator's exporter account (MariaDB.MetricsKey)
        taken[metrics.lower()] = f"mariadb-operator's metrics account for mysql.name {mysql.name!r}"
    problems = []
    for index, site in enumerate(config.sites):
        path = f"sites[{index}].user.name"
        name = site.user_name
        reserved = taken.get(name.lower())
        if site.user.name is None:
            problem = identifiers.validate_user_name(name, "derived")
            if problem or reserved:
                reason = problem.removeprefix("derived: ") if problem else f"{name!r} is {reserved}"
                problems.append(Problem(path, f"not set, so derived from the database name: {reason}; set user.name"))
        elif reserved:
            problems.append(Problem(path, f"{name!r} is {reserved} (reserved); flightdeck never manages it"))
    return problems
