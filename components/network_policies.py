"""SiteNetworkPolicies: a site's pods take traffic only from the ingress controller, and only
a site's own web pods may open connections to the database servers.

Site namespaces deny all other ingress, so one site can never reach another's pods.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

import pulumi
import pulumi_kubernetes as k8s

from components.config import SiteConfig
from components.mysql_cluster import MYSQL_PORT
from components.naming import object_meta, site_labels, web_selector

NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"
ACME_SOLVER_PORT = 8089


def namespace_selector(namespace: str) -> dict[str, Any]:
    return {"matchLabels": {NAMESPACE_NAME_LABEL: namespace}}


def site_ingress_policy_spec(site: SiteConfig, ingress_namespace: str) -> dict[str, Any]:
    return {
        "podSelector": {},
        "policyTypes": ["Ingress"],
        "ingress": [
            {
                "from": [{"namespaceSelector": namespace_selector(ingress_namespace)}],
                # 8089: cert-manager's HTTP-01 solver pod, which runs in the site namespace.
                "ports": [{"protocol": "TCP", "port": 80}, {"protocol": "TCP", "port": ACME_SOLVER_PORT}],
            }
        ],
    }


def database_access_policy_spec(site: SiteConfig, site_namespace: str, database_pods: dict[str, str]) -> dict[str, Any]:
    return {
        "podSelector": {"matchLabels": database_pods},
        "policyTypes": ["Ingress"],
        "ingress": [
            {
                "from": [
                    {
                        "namespaceSelector": namespace_selector(site_namespace),
                        "podSelector": {"matchLabels": web_selector(site)},
                    }
                ],
                "ports": [{"protocol": "TCP", "port": MYSQL_PORT}],
            }
        ],
    }


class SiteNetworkPolicies(pulumi.ComponentResource):
    def __init__(
        self,
        name: str,
        site: SiteConfig,
        *,
        namespace: str,
        ingress_namespace: str,
        database_namespace: str | None,
        database_pods: dict[str, str] | None,
        depends_on: Sequence[pulumi.Resource] = (),
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("flightdeck:network:SiteNetworkPolicies", name, None, opts)
        child = pulumi.ResourceOptions(parent=self, depends_on=list(depends_on))
        self.ingress_policy = k8s.networking.v1.NetworkPolicy(
            f"{name}-ingress",
            metadata=object_meta("ingress-controller-only", namespace, site_labels(site)),
            spec=cast("k8s.networking.v1.NetworkPolicySpecArgsDict", site_ingress_policy_spec(site, ingress_namespace)),
            opts=child,
        )
        self.database_policy: k8s.networking.v1.NetworkPolicy | None = None
        if database_namespace and database_pods:
            self.database_policy = k8s.networking.v1.NetworkPolicy(
                f"{name}-database",
                metadata=object_meta(f"site-{site.name}", database_namespace, site_labels(site)),
                spec=cast(
                    "k8s.networking.v1.NetworkPolicySpecArgsDict",
                    database_access_policy_spec(site, namespace, database_pods),
                ),
                opts=child,
            )
        self.register_outputs({})
