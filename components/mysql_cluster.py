"""MySQLCluster: the database server every site's database lives on.

``operator`` mode declares an HA MariaDB (primary + readers, automatic failover, a
PodDisruptionBudget, anti-affinity and replicas-first updates, so a node drain never takes the
sites down) for mariadb-operator to run. ``external`` mode points at a server managed
elsewhere. Both expose the same outputs, so nothing downstream cares which it is.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

import pulumi
import pulumi_kubernetes as k8s
import pulumi_random as random

from components.config import MySQLExternalConfig, MySQLOperatorConfig, Resources
from components.data_retention import Retention
from components.naming import object_meta

MARIADB_API = "k8s.mariadb.com/v1alpha1"
MYSQL_PORT = 3306

# Server settings every CMS wants: 4-byte UTF-8 by default and room for large imports.
SERVER_CNF = """[mariadb]
bind-address=*
default_storage_engine=InnoDB
binlog_format=row
innodb_autoinc_lock_mode=2
character-set-server=utf8mb4
collation-server=utf8mb4_unicode_ci
max_allowed_packet=256M
max_connections=1000
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


def mariadb_spec(cluster: MySQLOperatorConfig, root_secret: str) -> dict[str, Any]:
    """The ``MariaDB`` custom resource's spec. Pure, so unit tests read it directly."""
    replicated = cluster.reader_count > 0
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
        "myCnf": SERVER_CNF,
    }
    if replicated:
        spec["replication"] = {
            "enabled": True,
            "primary": {"autoFailover": cluster.auto_failover, "autoFailoverDelay": cluster.auto_failover_delay},
            "replica": {"maxLagSeconds": cluster.max_lag_seconds},
        }
        spec["podDisruptionBudget"] = {"maxUnavailable": cluster.pod_disruption_budget.max_unavailable}
    return spec


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
            metadata={
                **object_meta(cluster.name, cluster.namespace),
                # SQL may only start once the servers are up, not merely declared: the engine
                # waits for the operator's Ready condition (a fresh cluster takes minutes).
                "annotations": {"pulumi.com/waitFor": "condition=Ready", "pulumi.com/timeoutSeconds": "1800"},
            },
            spec=mariadb_spec(cluster, root_secret_name),
            opts=child.merge(keep).merge(pulumi.ResourceOptions(depends_on=[namespace, root_secret, *depends_on])),
        )
        replicated = cluster.reader_count > 0
        primary_service = f"{cluster.name}-primary" if replicated else cluster.name
        secondary_service = f"{cluster.name}-secondary" if replicated else cluster.name
        self.namespace = cluster.namespace
        self.namespace_resources = [namespace]
        self.mariadb_name = cluster.name
        self.pod_selector = {"app.kubernetes.io/instance": cluster.name}
        # Once any policy selects the servers, only listed peers get in: their own namespace
        # (replication, backup jobs) and the operator. Each site adds its own web pods.
        k8s.networking.v1.NetworkPolicy(
            f"{name}-internal",
            metadata=object_meta(f"{cluster.name}-internal", cluster.namespace),
            spec=cast(
                "k8s.networking.v1.NetworkPolicySpecArgsDict",
                internal_policy_spec(self.pod_selector, operator_namespace),
            ),
            opts=child.merge(pulumi.ResourceOptions(depends_on=[namespace])),
        )
        self.primary_host = pulumi.Output.from_input(service_host(primary_service, cluster.namespace))
        self.secondary_host = pulumi.Output.from_input(service_host(secondary_service, cluster.namespace))
        access = cluster.access
        self.port = pulumi.Output.from_input(access.port or MYSQL_PORT)
        connect_host = access.host or service_host(primary_service, cluster.namespace)
        # The MariaDB resource is part of the connection so SQL runs only after it exists.
        self.admin_connection = pulumi.Output.secret(
            pulumi.Output.all(root_password.result, kubeconfig, self.mariadb.urn).apply(
                lambda args: {
                    "mode": access.mode,
                    "host": connect_host,
                    "port": access.port or MYSQL_PORT,
                    "user": "root",
                    "password": args[0],
                    "kubeconfig": args[1],
                    "kubeContext": kube_context,
                    "namespace": cluster.namespace,
                    "service": primary_service,
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
