"""SiteNetworkPolicies: a site namespace denies all traffic in and out, then allows exactly what
a WordPress/Drupal site needs.

In: web pods take traffic from the ingress controller (port 80, and 8089 for cert-manager's
HTTP-01 solver pods, which run in the site namespace) and from the site's own cron pods (80).
Out: the cluster DNS (53 UDP/TCP), the database servers on 3306 (by mariadb-operator's own pod
labels, or the external server's addresses), the ingress controller on 80/443 (a site calling
its own public URL, e.g. WordPress loopback requests, is routed back into the cluster there),
the internet on the web ports except link-local (169.254.0.0/16: the cloud metadata endpoint)
and the cluster's private ranges, and an allow-list (SMTP relays, APIs). The cron pods reach
the web pods on 80. The ACME solver needs no egress: it only answers the challenge request.

The database side admits each site's web and cron pods on 3306 with a policy in the MariaDB
namespace, so one site can never reach another's pods, and nothing reaches the database but
the sites (and the operator, see ``mysql_cluster``).

NetworkPolicies are allow-lists that add up, so each concern is its own small policy; the
rules are pure functions of the config (``site_policy_specs``).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

import pulumi
import pulumi_kubernetes as k8s

from components.config import EgressConfig, EgressRule, MySQLExternalConfig, SiteConfig, StackConfig
from components.mysql_cluster import MYSQL_PORT
from components.naming import (
    cron_pod_labels,
    mariadb_pod_labels,
    object_meta,
    site_component_selector,
    site_labels,
    web_selector,
)

NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"
ACME_SOLVER_PORT = 8089  # cert-manager v1.21 pkg/issuer/acme/http/http.go acmeSolverListenPort
WEB_PORT = 80
DNS_PORT = 53
INGRESS_CONTROLLER_PORTS = (80, 443)
LINK_LOCAL_V4 = "169.254.0.0/16"  # includes 169.254.169.254, the cloud metadata endpoint
# Link-local and unique-local (fd00:ec2::254 is AWS's IPv6 metadata endpoint) are never internet.
NOT_INTERNET_V6 = ("fe80::/10", "fc00::/7")


@dataclass(frozen=True)
class DatabaseTarget:
    """Where site pods open database connections: operator pods, or an external server's addresses."""

    port: int
    namespace: str | None = None
    pod_labels: dict[str, str] | None = None
    cidrs: tuple[str, ...] = ()

    def peers(self) -> list[dict[str, Any]]:
        if self.namespace and self.pod_labels:
            return [
                {
                    "namespaceSelector": namespace_selector(self.namespace),
                    "podSelector": {"matchLabels": self.pod_labels},
                }
            ]
        return [{"ipBlock": {"cidr": cidr}} for cidr in self.cidrs]


def namespace_selector(namespace: str) -> dict[str, Any]:
    return {"matchLabels": {NAMESPACE_NAME_LABEL: namespace}}


def _tcp(*ports: int) -> list[dict[str, Any]]:
    return [{"protocol": "TCP", "port": port} for port in ports]


def external_database_cidrs(config: StackConfig) -> tuple[str, ...]:
    """External mode: the server's addresses (IP-literal hosts as /32 or /128, plus the configured ranges)."""
    mysql = config.mysql
    if not isinstance(mysql, MySQLExternalConfig):
        return ()
    cidrs: list[str] = []
    for host in (mysql.host, mysql.read_host):
        try:
            address = ipaddress.ip_address(host or "")
        except ValueError:
            continue
        cidrs.append(str(ipaddress.ip_network(address)))
    cidrs += config.kubernetes.egress.database_cidrs
    return tuple(dict.fromkeys(cidrs))


def database_target(config: StackConfig, mariadb_name: str | None, mariadb_namespace: str | None) -> DatabaseTarget:
    if isinstance(config.mysql, MySQLExternalConfig):
        return DatabaseTarget(port=config.mysql.port, cidrs=external_database_cidrs(config))
    assert mariadb_name and mariadb_namespace
    return DatabaseTarget(port=MYSQL_PORT, namespace=mariadb_namespace, pod_labels=mariadb_pod_labels(mariadb_name))


def site_ingress_policy_spec(site: SiteConfig, ingress_namespace: str) -> dict[str, Any]:
    return {
        "podSelector": {},
        "policyTypes": ["Ingress"],
        "ingress": [
            {
                "from": [{"namespaceSelector": namespace_selector(ingress_namespace)}],
                # 8089: cert-manager's HTTP-01 solver pod, which runs in the site namespace.
                "ports": _tcp(WEB_PORT, ACME_SOLVER_PORT),
            }
        ],
    }


def default_deny_spec(egress: EgressConfig) -> dict[str, Any]:
    """Selects every pod and allows nothing: the baseline the other policies add to."""
    return {"podSelector": {}, "policyTypes": ["Ingress", "Egress"] if egress.enabled else ["Ingress"]}


def web_from_cron_spec(site: SiteConfig) -> dict[str, Any]:
    return {
        "podSelector": {"matchLabels": web_selector(site)},
        "policyTypes": ["Ingress"],
        "ingress": [{"from": [{"podSelector": {"matchLabels": cron_pod_labels(site)}}], "ports": _tcp(WEB_PORT)}],
    }


def cron_to_web_spec(site: SiteConfig) -> dict[str, Any]:
    return {
        "podSelector": {"matchLabels": cron_pod_labels(site)},
        "policyTypes": ["Egress"],
        "egress": [{"to": [{"podSelector": {"matchLabels": web_selector(site)}}], "ports": _tcp(WEB_PORT)}],
    }


def _split_families(cidrs: Sequence[str]) -> tuple[list[str], list[str]]:
    v4 = [c for c in cidrs if ipaddress.ip_network(c).version == 4]
    v6 = [c for c in cidrs if ipaddress.ip_network(c).version == 6]
    return v4, v6


def internet_peers(egress: EgressConfig) -> list[dict[str, Any]]:
    """Everything but link-local and the private ranges (an ``except`` must lie inside its ``cidr``)."""
    private_v4, private_v6 = _split_families(egress.private_cidrs)
    except_v4 = sorted({LINK_LOCAL_V4, *private_v4} - {"0.0.0.0/0"}, key=ipaddress.ip_network)
    peers: list[dict[str, Any]] = [{"ipBlock": {"cidr": "0.0.0.0/0", "except": except_v4}}]
    if egress.ipv6:
        except_v6 = sorted({*NOT_INTERNET_V6, *private_v6} - {"::/0"}, key=ipaddress.ip_network)
        peers.append({"ipBlock": {"cidr": "::/0", "except": except_v6}})
    return peers


def _allow_rule(rule: EgressRule) -> dict[str, Any]:
    return {
        "to": [{"ipBlock": {"cidr": rule.cidr}}],
        "ports": [{"protocol": rule.protocol, "port": port} for port in rule.ports],
    }


def site_egress_spec(site: SiteConfig, egress: EgressConfig, ingress_namespace: str) -> dict[str, Any]:
    dns_peers: list[dict[str, Any]] = [
        {
            "namespaceSelector": namespace_selector(egress.dns.namespace),
            "podSelector": {"matchLabels": dict(egress.dns.pod_labels)},
        },
        *({"ipBlock": {"cidr": cidr}} for cidr in egress.dns.cidrs),
    ]
    rules: list[dict[str, Any]] = [
        {"to": dns_peers, "ports": [{"protocol": "UDP", "port": DNS_PORT}, {"protocol": "TCP", "port": DNS_PORT}]},
        {
            "to": [{"namespaceSelector": namespace_selector(ingress_namespace)}],
            "ports": _tcp(*INGRESS_CONTROLLER_PORTS),
        },
    ]
    if egress.internet_ports:
        rules.append({"to": internet_peers(egress), "ports": _tcp(*egress.internet_ports)})
    rules += [_allow_rule(rule) for rule in (*egress.allow, *site.egress.allow)]
    return {"podSelector": {}, "policyTypes": ["Egress"], "egress": rules}


def database_egress_spec(site: SiteConfig, database: DatabaseTarget) -> dict[str, Any]:
    return {
        "podSelector": site_component_selector(site, "web", "cron"),
        "policyTypes": ["Egress"],
        "egress": [{"to": database.peers(), "ports": _tcp(database.port)}],
    }


def database_access_policy_spec(site: SiteConfig, site_namespace: str, database_pods: dict[str, str]) -> dict[str, Any]:
    """In the MariaDB namespace: the site's web and cron pods may connect to the servers."""
    return {
        "podSelector": {"matchLabels": database_pods},
        "policyTypes": ["Ingress"],
        "ingress": [
            {
                "from": [
                    {
                        "namespaceSelector": namespace_selector(site_namespace),
                        "podSelector": site_component_selector(site, "web", "cron"),
                    }
                ],
                "ports": _tcp(MYSQL_PORT),
            }
        ],
    }


def site_policy_specs(
    site: SiteConfig, *, egress: EgressConfig, ingress_namespace: str, database: DatabaseTarget
) -> dict[str, dict[str, Any]]:
    """Every policy of the site namespace by object name (the resource suffix is the same name)."""
    specs = {
        "default-deny": default_deny_spec(egress),
        "ingress-controller-only": site_ingress_policy_spec(site, ingress_namespace),
        "web-from-cron": web_from_cron_spec(site),
    }
    if egress.enabled:
        specs["egress"] = site_egress_spec(site, egress, ingress_namespace)
        specs["cron-to-web"] = cron_to_web_spec(site)
        if database.peers():
            specs["egress-database"] = database_egress_spec(site, database)
    return specs


# Resource names of the policies that predate egress isolation; kept so no stack sees a replacement.
_RESOURCE_SUFFIX = {"ingress-controller-only": "ingress"}


class SiteNetworkPolicies(pulumi.ComponentResource):
    def __init__(
        self,
        name: str,
        site: SiteConfig,
        *,
        namespace: str,
        ingress_namespace: str,
        egress: EgressConfig,
        database: DatabaseTarget,
        depends_on: Sequence[pulumi.Resource] = (),
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("flightdeck:network:SiteNetworkPolicies", name, None, opts)
        child = pulumi.ResourceOptions(parent=self, depends_on=list(depends_on))
        specs = site_policy_specs(site, egress=egress, ingress_namespace=ingress_namespace, database=database)
        self.policies: dict[str, k8s.networking.v1.NetworkPolicy] = {
            policy: k8s.networking.v1.NetworkPolicy(
                f"{name}-{_RESOURCE_SUFFIX.get(policy, policy)}",
                metadata=object_meta(policy, namespace, site_labels(site)),
                spec=cast("k8s.networking.v1.NetworkPolicySpecArgsDict", spec),
                opts=child,
            )
            for policy, spec in specs.items()
        }
        self.database_policy: k8s.networking.v1.NetworkPolicy | None = None
        if database.namespace and database.pod_labels:
            self.database_policy = k8s.networking.v1.NetworkPolicy(
                f"{name}-database",
                metadata=object_meta(f"site-{site.name}", database.namespace, site_labels(site)),
                spec=cast(
                    "k8s.networking.v1.NetworkPolicySpecArgsDict",
                    database_access_policy_spec(site, namespace, database.pod_labels),
                ),
                opts=child,
            )
        self.register_outputs({"policies": sorted(self.policies)})
