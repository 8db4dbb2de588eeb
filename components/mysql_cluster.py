"""MySQLCluster: the database server every site's database lives on.

``operator`` mode declares a MariaDB for mariadb-operator (v26.6) to run: a single server for
``readerCount: 0``, otherwise a Galera cluster of ``readerCount + 1`` nodes (the operator's
production-grade HA; its ``replication`` is "still in alpha", see docs/database-cluster.md),
with a PodDisruptionBudget that keeps quorum, anti-affinity and replicas-first updates, so a
node drain never takes the sites down. ``external`` mode points at a server managed elsewhere.
Both expose the same outputs, so nothing downstream cares which it is.

Writes go to exactly one server whatever the topology: flightdeck's own ``<name>-write``
Service selects the pod mariadb-operator labels ``k8s.mariadb.com/role=primary`` (it labels
the current primary in every topology and moves the label on failover), so ``DB_HOST`` never
changes with ``readerCount`` and never routes to a reader. The operator's ``<name>`` Service
routes to every pod and ``<name>-primary`` exists only with HA enabled; neither qualifies.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

import pulumi
import pulumi_kubernetes as k8s
import pulumi_random as random

from components.config import MySQLExternalConfig, MySQLOperatorConfig, Resources
from components.config.database_server import innodb_buffer_pool_bytes, topology
from components.data_retention import Retention
from components.naming import object_meta

MARIADB_API = "k8s.mariadb.com/v1alpha1"
MYSQL_PORT = 3306
# mariadb-operator labels the current primary pod (internal/controller/mariadb_controller.go,
# reconcilePodLabels) with this label in every topology, moving it on switchover and failover.
ROLE_LABEL = "k8s.mariadb.com/role"
# The Galera configuration volume (mariadb-operator's default layout, 100Mi) is set explicitly
# so it uses the data volumes' storage class; both are fixed once the cluster exists.
GALERA_CONFIG_VOLUME = "300Mi"

# Settings every CMS wants: 4-byte UTF-8 by default and room for large imports. row binlogs,
# InnoDB and interleaved auto-increment locks are also what Galera requires.
BASE_CNF = """[mariadb]
bind-address=*
default_storage_engine=InnoDB
binlog_format=row
innodb_autoinc_lock_mode=2
character-set-server=utf8mb4
collation-server=utf8mb4_unicode_ci
max_allowed_packet=256M
"""


def resources_spec(resources: Resources) -> dict[str, dict[str, str]]:
    spec: dict[str, dict[str, str]] = {}
    for kind in ("requests", "limits"):
        amounts = getattr(resources, kind)
        values = {k: v for k, v in (("cpu", amounts.cpu), ("memory", amounts.memory)) if v}
        if values:
            spec[kind] = values
    return spec


def service_host(service: str, namespace: str) -> str:
    return f"{service}.{namespace}.svc.cluster.local"


def write_service_name(cluster: MySQLOperatorConfig) -> str:
    return f"{cluster.name}-write"


def read_service_name(cluster: MySQLOperatorConfig) -> str:
    """Readers when there are any (the operator's ``-secondary``: every node but the primary)."""
    return f"{cluster.name}-secondary" if topology(cluster) == "galera" else write_service_name(cluster)


def _version_at_least(version: str, major: int, minor: int) -> bool:
    parts = [int(p) for p in version.split(".")[:2]]
    return (parts[0], parts[1]) >= (major, minor)


def server_cnf(cluster: MySQLOperatorConfig) -> str:
    """The ``my.cnf`` the MariaDB resource carries (``spec.myCnf``); a change rolls the servers."""
    lines = [f"max_connections={cluster.max_connections}"]
    pool = innodb_buffer_pool_bytes(cluster)
    if pool is not None:
        lines.append(f"innodb_buffer_pool_size={pool // 2**20}M")
    # MariaDB never purges binary logs by default; mariadb-operator turns them on for
    # replication and point-in-time recovery without an expiry, so the data volume would fill.
    # binlog_expire_logs_seconds exists from 10.6; earlier servers only know expire_logs_days.
    if _version_at_least(cluster.version, 10, 6):
        lines.append(f"binlog_expire_logs_seconds={cluster.binlog_expire_days * 86400}")
    else:
        lines.append(f"expire_logs_days={cluster.binlog_expire_days}")
    return BASE_CNF + "\n".join(lines) + "\n"


def _galera_spec(cluster: MySQLOperatorConfig) -> dict[str, Any]:
    claim: dict[str, Any] = {
        "accessModes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": GALERA_CONFIG_VOLUME}},
    }
    if cluster.storage_class:
        claim["storageClassName"] = cluster.storage_class
    # primary.podIndex is left to the operator: it moves it on failover, and pinning it here
    # would make the next `up` switch the primary back.
    return {
        "enabled": True,
        "primary": {"autoFailover": cluster.auto_failover},
        "sst": "mariabackup",
        "recovery": {"enabled": True},
        "config": {"reuseStorageVolume": False, "volumeClaimTemplate": claim},
    }


def mariadb_spec(cluster: MySQLOperatorConfig, root_secret: str) -> dict[str, Any]:
    """The ``MariaDB`` custom resource's spec. Pure, so unit tests read it directly.

    ``readerCount`` only sets ``replicas``: growing or shrinking a Galera cluster is an in-place
    update (new nodes join by SST, no ``bootstrapFrom`` needed, unlike replication's scale-out).
    """
    spec: dict[str, Any] = {
        "image": cluster.image or f"mariadb:{cluster.version}",
        "rootPasswordSecretKeyRef": {"name": root_secret, "key": "password", "generate": False},
        "replicas": cluster.reader_count + 1,
        "storage": {
            "size": cluster.size,
            "resizeInUseVolumes": True,
            "waitForVolumeResize": True,
            **({"storageClassName": cluster.storage_class} if cluster.storage_class else {}),
        },
        "updateStrategy": {"type": cluster.update_strategy},
        "affinity": {"antiAffinityEnabled": cluster.anti_affinity},
        "resources": resources_spec(cluster.resources),
        "timeZone": cluster.time_zone,
        "myCnf": server_cnf(cluster),
    }
    if topology(cluster) == "galera":
        spec["galera"] = _galera_spec(cluster)
        spec["podDisruptionBudget"] = {"maxUnavailable": cluster.pod_disruption_budget.max_unavailable}
    return spec


def write_service_spec(cluster: MySQLOperatorConfig) -> dict[str, Any]:
    """Routes to the current primary only, in every topology (see the module docs)."""
    return {
        "type": "ClusterIP",
        "selector": {
            "app.kubernetes.io/name": "mariadb",
            "app.kubernetes.io/instance": cluster.name,
            ROLE_LABEL: "primary",
        },
        "ports": [{"name": "mariadb", "port": MYSQL_PORT, "targetPort": MYSQL_PORT, "protocol": "TCP"}],
    }


def internal_policy_spec(pod_selector: dict[str, str], operator_namespace: str) -> dict[str, Any]:
    return {
        "podSelector": {"matchLabels": pod_selector},
        "policyTypes": ["Ingress"],
        "ingress": [
            {"from": [{"podSelector": {}}]},
            {"from": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": operator_namespace}}}]},
        ],
    }


class MySQLCluster(pulumi.ComponentResource):
    """The database server; outputs the write and read hosts and the (secret) admin connection."""

    primary_host: pulumi.Output[str]
    secondary_host: pulumi.Output[str]
    port: pulumi.Output[int]
    admin_connection: pulumi.Output[dict[str, Any]]
    namespace: str | None
    namespace_resources: list[pulumi.Resource]
    mariadb_name: str | None
    pod_selector: dict[str, str] | None

    def __init__(
        self,
        name: str,
        cluster: MySQLOperatorConfig | MySQLExternalConfig,
        *,
        kubeconfig: pulumi.Input[str] | None = None,
        kube_context: str | None = None,
        admin_password: pulumi.Input[str] | None = None,
        operator_namespace: str = "mariadb-operator",
        depends_on: Sequence[pulumi.Resource] = (),
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("flightdeck:mysql:MySQLCluster", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.mariadb: k8s.apiextensions.CustomResource | None = None
        self.write_service: k8s.core.v1.Service | None = None
        if isinstance(cluster, MySQLOperatorConfig):
            self._operator(name, cluster, child, kubeconfig, kube_context, operator_namespace, depends_on)
        else:
            self._external(cluster, admin_password)
        self.register_outputs(
            {"primaryHost": self.primary_host, "secondaryHost": self.secondary_host, "port": self.port}
        )

    def _operator(
        self,
        name: str,
        cluster: MySQLOperatorConfig,
        child: pulumi.ResourceOptions,
        kubeconfig: pulumi.Input[str] | None,
        kube_context: str | None,
        operator_namespace: str,
        depends_on: Sequence[pulumi.Resource],
    ) -> None:
        keep = pulumi.ResourceOptions(protect=True, retain_on_delete=True)
        retention = Retention.always()  # every site's database lives here
        namespace = k8s.core.v1.Namespace(
            f"{name}-namespace",
            metadata=object_meta(
                cluster.namespace, labels={"app.kubernetes.io/part-of": "flightdeck"}, annotations=retention.annotations
            ),
            opts=child.merge(retention.options),
        )
        # special=False keeps the password safe inside DSNs and shell-quoted client commands.
        # Protected: a new root password would no longer match the one the servers were built with.
        root_password = random.RandomPassword(
            f"{name}-root-password", length=32, special=False, opts=child.merge(pulumi.ResourceOptions(protect=True))
        )
        root_secret_name = f"{cluster.name}-root"
        root_secret = k8s.core.v1.Secret(
            f"{name}-root-secret",
            metadata=object_meta(root_secret_name, cluster.namespace),
            string_data={"password": root_password.result},
            type="Opaque",
            opts=child.merge(pulumi.ResourceOptions(depends_on=[namespace])),
        )
        self.mariadb = k8s.apiextensions.CustomResource(
            f"{name}-mariadb",
            api_version=MARIADB_API,
            kind="MariaDB",
            metadata=object_meta(
                cluster.name,
                cluster.namespace,
                # SQL may only start once the servers are up, not merely declared: the engine
                # waits for the operator's Ready condition (a fresh cluster takes minutes).
                annotations={"pulumi.com/waitFor": "condition=Ready", "pulumi.com/timeoutSeconds": "1800"},
            ),
            spec=mariadb_spec(cluster, root_secret_name),
            opts=child.merge(keep).merge(pulumi.ResourceOptions(depends_on=[namespace, root_secret, *depends_on])),
        )
        self.namespace = cluster.namespace
        self.namespace_resources = [namespace]
        self.mariadb_name = cluster.name
        self.pod_selector = {"app.kubernetes.io/instance": cluster.name}
        write_service = write_service_name(cluster)
        # Created once the servers are Ready; the engine then waits for its endpoint, i.e. for
        # the operator to have labelled the primary, before any SQL runs through it.
        self.write_service = k8s.core.v1.Service(
            f"{name}-write",
            metadata=object_meta(write_service, cluster.namespace, {"app.kubernetes.io/part-of": "flightdeck"}),
            spec=cast("k8s.core.v1.ServiceSpecArgsDict", write_service_spec(cluster)),
            opts=child.merge(pulumi.ResourceOptions(depends_on=[self.mariadb])),
        )
        # Once any policy selects the servers, only listed peers get in: their own namespace
        # (Galera, SST, backup jobs) and the operator. Each site adds its own web pods.
        k8s.networking.v1.NetworkPolicy(
            f"{name}-internal",
            metadata=object_meta(f"{cluster.name}-internal", cluster.namespace),
            spec=cast(
                "k8s.networking.v1.NetworkPolicySpecArgsDict",
                internal_policy_spec(self.pod_selector, operator_namespace),
            ),
            opts=child.merge(pulumi.ResourceOptions(depends_on=[namespace])),
        )
        self.primary_host = pulumi.Output.from_input(service_host(write_service, cluster.namespace))
        self.secondary_host = pulumi.Output.from_input(service_host(read_service_name(cluster), cluster.namespace))
        # Sites connect inside the cluster: the Service port, whatever `access.port` overrides
        # for the machine that runs `pulumi up`.
        self.port = pulumi.Output.from_input(MYSQL_PORT)
        access = cluster.access
        connect_host = access.host or service_host(write_service, cluster.namespace)
        # The MariaDB resource and the write Service are part of the connection, so SQL runs
        # only once the servers are Ready and the primary is reachable through the Service.
        self.admin_connection = pulumi.Output.secret(
            pulumi.Output.all(root_password.result, kubeconfig, self.mariadb.urn, self.write_service.urn).apply(
                lambda args: {
                    "mode": access.mode,
                    "host": connect_host,
                    "port": access.port or MYSQL_PORT,
                    "user": "root",
                    "password": args[0],
                    "kubeconfig": args[1],
                    "kubeContext": kube_context,
                    "namespace": cluster.namespace,
                    "service": write_service,
                }
            )
        )

    def _external(self, cluster: MySQLExternalConfig, admin_password: pulumi.Input[str] | None) -> None:
        if admin_password is None:
            raise ValueError("external mode needs the mysqlAdminPassword secret")
        self.namespace = None
        self.namespace_resources = []
        self.mariadb_name = None
        self.pod_selector = None
        self.primary_host = pulumi.Output.from_input(cluster.host)
        self.secondary_host = pulumi.Output.from_input(cluster.read_host or cluster.host)
        self.port = pulumi.Output.from_input(cluster.port)
        tls = {"enabled": cluster.tls.enabled, "ca": cluster.tls.ca, "verifyServerCert": cluster.tls.verify_server_cert}
        self.admin_connection = pulumi.Output.secret(
            pulumi.Output.from_input(admin_password).apply(
                lambda password: {
                    "mode": "direct",
                    "host": cluster.access.host or cluster.host,
                    "port": cluster.access.port or cluster.port,
                    "user": cluster.admin_user,
                    "password": password,
                    "tls": tls,
                }
            )
        )
