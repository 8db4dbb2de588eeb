"""Cluster-level sections of the stack config: Kubernetes access, operators, the database
server, shared storage and certificates. Pure.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field

from components.config.network import EgressConfig
from components.config.values import (
    Email,
    Image,
    K8sName,
    ResourceAmounts,
    Resources,
    StorageQuantity,
    Strict,
    TimeZone,
)
from components.config.workload import DEFAULT_PROXY_ADDRESSES, ProxyAddress
from components.sql import identifiers


class KubernetesConfig(Strict):
    """How to reach the cluster. The kubeconfig itself is the secret key ``flightdeck:kubeconfig``."""

    context: str | None = Field(None, description="kubeconfig context; none uses the kubeconfig's current context")
    namespace_prefix: str = Field(
        "", max_length=20, pattern=r"^([a-z][-a-z0-9]*-)?$",
        description="prefix for every site namespace, e.g. `prod-` (empty, or ends in `-`)",
    )  # fmt: skip
    cluster_identifier: str | None = Field(
        None, description="stable cluster id; a rotated kubeconfig then never replaces the provider"
    )
    egress: EgressConfig = Field(default_factory=EgressConfig, description="what pods in site namespaces may reach")


class HelmReleaseConfig(Strict):
    """One operator installed as a Helm release."""

    enabled: bool = Field(False, description="install it; leave off when the cluster already runs it")
    chart_version: str | None = Field(None, description="chart version; none uses flightdeck's pinned version")
    namespace: K8sName | None = Field(None, description="namespace of the release; none uses the operator's usual one")
    values: dict[str, Any] = Field(default_factory=dict, description="extra Helm values merged over flightdeck's")


class OperatorsConfig(Strict):
    cert_manager: HelmReleaseConfig = Field(default_factory=HelmReleaseConfig, description="cert-manager")
    velero: HelmReleaseConfig = Field(default_factory=HelmReleaseConfig, description="Velero")
    rook_ceph: HelmReleaseConfig = Field(default_factory=HelmReleaseConfig, description="Rook (operator only)")
    mariadb_operator: HelmReleaseConfig = Field(default_factory=HelmReleaseConfig, description="mariadb-operator")


class MySQLAccessConfig(Strict):
    """How the machine running ``pulumi up`` reaches the primary to run SQL."""

    mode: Literal["direct", "portForward"] = Field(
        "portForward",
        description="`portForward` tunnels through the Kubernetes API (runs outside the cluster); "
        "`direct` connects to the primary Service address (from a pod in the MariaDB namespace: the "
        "servers' NetworkPolicy admits only it, the operator and site pods) or to `host`/`port`",
    )
    host: str | None = Field(None, description="direct mode: host to connect to instead of the primary Service")
    port: int | None = Field(None, ge=1, le=65535, description="direct mode: port instead of the Service port")


class TlsConfig(Strict):
    enabled: bool = Field(False, description="require TLS to the server")
    ca: str | None = Field(
        None, description="PEM CA bundle (file path or inline PEM), trusted alone; none uses the system trust store"
    )
    verify_server_cert: bool = Field(True, description="verify the server certificate and host name")


class PodDisruptionBudgetConfig(Strict):
    max_unavailable: int = Field(
        1,
        ge=1,
        description="MariaDB pods a node drain may take down at once (0 would block every drain; "
        "with Galera at most `readerCount / 2`, so the remaining nodes keep quorum)",
    )


def _connections_per_replica() -> Any:
    return Field(
        25,
        ge=1,
        le=10000,
        description="default per-site connection limit per web pod: a site without "
        "`user.maxUserConnections` gets `replicas × connectionsPerReplica`",
    )


def _reserved_connections() -> Any:
    return Field(
        20,
        ge=10,
        le=10000,
        description="connections kept free for mariadb-operator (probes, agents, status), backup jobs, "
        "flightdeck's SQL and an admin session: `sum(site limits) + reservedConnections` must not exceed "
        "`maxConnections`",
    )


def _admin_user(value: str) -> str:
    # Syntax only: the admin account is normally one of the server's own (root).
    problem = identifiers.validate_account_syntax(value, "value")
    if problem:
        raise ValueError(problem.removeprefix("value: "))
    return value


AdminUserName = Annotated[str, AfterValidator(_admin_user)]


class MySQLOperatorConfig(Strict):
    """An HA MariaDB cluster run by mariadb-operator: Galera, one primary for writes (see docs/database-cluster.md)."""

    mode: Literal["operator"] = Field(description="a MariaDB cluster run by mariadb-operator")
    name: K8sName = Field(
        "mariadb",
        max_length=40,
        description="name of the MariaDB resource; sites write through `<name>-write` (primary only) "
        "and read through `<name>-secondary`",
    )
    namespace: K8sName = Field("mariadb", description="namespace of the cluster")
    version: str = Field(
        "11.4", pattern=r"^[0-9]+\.[0-9]+(\.[0-9]+)?$", description="MariaDB server version (image tag)"
    )
    image: Image | None = Field(None, description="full image; none uses `mariadb:<version>`")
    size: StorageQuantity = Field("20Gi", description="data volume per server (it can grow, never shrink)")
    storage_class: str | None = Field(
        None, description="storage class of the data volumes; none uses the default (fixed for the cluster's life)"
    )
    reader_count: int = Field(
        2,
        ge=0,
        le=8,
        description="Galera nodes besides the primary: 0 (a single server) or an even number (Galera needs "
        "an odd node count); 0 and non-zero are different topologies (see the data-safety guide)",
    )
    resources: Resources = Field(
        default_factory=lambda: Resources(
            requests=ResourceAmounts(cpu="500m", memory="1Gi"), limits=ResourceAmounts(memory="2Gi")
        ),
        description="server resources",
    )
    auto_failover: bool = Field(True, description="move the primary to another node when it fails")
    pod_disruption_budget: PodDisruptionBudgetConfig = Field(
        default_factory=PodDisruptionBudgetConfig, description="limits voluntary evictions (node drains)"
    )
    anti_affinity: bool = Field(True, description="spread servers over different nodes (fixed for the cluster's life)")
    update_strategy: Literal["ReplicasFirstPrimaryLast", "RollingUpdate", "OnDelete", "Never"] = Field(
        "ReplicasFirstPrimaryLast", description="how server updates roll: replicas first, primary last by default"
    )
    time_zone: TimeZone = Field("UTC", description="server time zone (fixed for the cluster's life)")
    max_connections: int = Field(
        1000, ge=50, le=100000, description="the server's `max_connections`, shared by every site"
    )
    connections_per_replica: int = _connections_per_replica()
    reserved_connections: int = _reserved_connections()
    innodb_buffer_pool_size: StorageQuantity | None = Field(
        None,
        description="`innodb_buffer_pool_size`, e.g. `3Gi`; none uses `innodbBufferPoolFraction` of the "
        "memory limit (or request)",
    )
    innodb_buffer_pool_fraction: float = Field(
        0.5,
        ge=0.1,
        le=0.8,
        description="share of the memory limit given to the InnoDB buffer pool when no size is set; the rest "
        "holds connections, sort buffers and Galera's cache",
    )
    binlog_expire_days: int = Field(
        3,
        ge=1,
        le=99,
        description="binary logs older than this are purged (`binlog_expire_logs_seconds`), so they never "
        "fill the data volume",
    )
    access: MySQLAccessConfig = Field(default_factory=MySQLAccessConfig, description="how `pulumi up` reaches it")


class MySQLExternalConfig(Strict):
    """A MariaDB/MySQL server not managed by flightdeck. Admin password: secret key `mysqlAdminPassword`."""

    mode: Literal["external"] = Field(description="a server managed elsewhere")
    host: str = Field(min_length=1, description="primary (write) host")
    read_host: str | None = Field(None, description="read host for sites; none uses `host`")
    port: int = Field(3306, ge=1, le=65535, description="server port")
    admin_user: AdminUserName = Field("root", description="admin user that creates databases, users and grants")
    max_connections: int | None = Field(
        None,
        ge=50,
        le=100000,
        description="the server's `max_connections`, when known: the sites' limits are then checked against it",
    )
    connections_per_replica: int = _connections_per_replica()
    reserved_connections: int = _reserved_connections()
    tls: TlsConfig = Field(default_factory=TlsConfig, description="TLS to the server")
    access: MySQLAccessConfig = Field(
        default_factory=lambda: MySQLAccessConfig(mode="direct"),
        description="how `pulumi up` reaches it (`direct` only; `host`/`port` may override)",
    )


class RookStorageConfig(Strict):
    """Cluster-level Rook objects, for a Rook cluster that has no CephFS yet."""

    namespace: K8sName = Field("rook-ceph", description="namespace of the CephCluster")
    operator_namespace: K8sName | None = Field(
        None,
        description="namespace of the Rook operator, the prefix of its CSI driver names; none uses "
        "`operators.rookCeph.namespace` or `rook-ceph`",
    )
    filesystem_name: K8sName = Field("hostingfs", description="name of the CephFilesystem")
    replicas: int = Field(3, ge=1, le=7, description="replicas of the metadata and data pools")
    failure_domain: Literal["host", "osd", "zone", "rack"] = Field("host", description="pool failure domain")
    active_mds_count: int = Field(1, ge=1, le=16, description="active metadata servers (plus a standby each)")


class StorageConfig(Strict):
    storage_class: K8sName = Field("rook-cephfs", description="ReadWriteMany storage class of the site volumes")
    rook: RookStorageConfig | None = Field(
        None, description="when set, create the CephFilesystem and the storage class (reclaim policy Retain)"
    )


class CertificatesConfig(Strict):
    acme_email: Email = Field(description="Let's Encrypt account e-mail (expiry notices)")
    environment: Literal["production", "staging"] = Field(
        "staging", description="Let's Encrypt `production` (trusted) or `staging` (high rate limits, untrusted)"
    )
    ingress_class: K8sName = Field("nginx", description="ingress class that serves HTTP-01 challenges and sites")
    cluster_issuer: K8sName = Field("letsencrypt", description="name of the ClusterIssuer")
    ingress_controller_namespace: K8sName = Field(
        "ingress-nginx", description="namespace of the ingress controller (the only source of site traffic)"
    )
    ingress_controller_addresses: list[ProxyAddress] = Field(
        default_factory=lambda: list(DEFAULT_PROXY_ADDRESSES),
        min_length=1,
        description="IPs/CIDRs of the ingress controller pods, the only proxies whose X-Forwarded-For the sites "
        "believe (Drupal `reverse_proxy_addresses`, WordPress Apache `RemoteIPInternalProxy`); default: the "
        "private ranges, narrow it to the cluster's pod CIDR",
    )
