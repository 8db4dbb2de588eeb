"""Egress of the site namespaces (``kubernetes.egress`` in the stack config). Pure.

Site namespaces deny all egress by default; these keys say what is allowed on top (DNS, the
database, the internet on web ports except private and link-local ranges, and an allow-list).
"""

from __future__ import annotations

import ipaddress
from typing import Annotated, Literal

from pydantic import AfterValidator, Field

from components.config.values import K8sName, Strict

RFC1918 = ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"]


def _cidr(value: str) -> str:
    try:
        network = ipaddress.ip_network(value, strict=True)
    except ValueError:
        raise ValueError(f"{value!r} is not a network in CIDR notation such as 203.0.113.0/24") from None
    return str(network)


Cidr = Annotated[str, AfterValidator(_cidr)]
Port = Annotated[int, Field(ge=1, le=65535)]


class EgressRule(Strict):
    """One allowed destination: a network and the ports on it."""

    cidr: Cidr = Field(description="destination network, e.g. `203.0.113.25/32`")
    ports: list[Port] = Field(min_length=1, max_length=20, description="destination ports, e.g. [587]")
    protocol: Literal["TCP", "UDP"] = Field("TCP", description="`TCP` or `UDP`")
    description: str | None = Field(None, max_length=200, description="what it is for (for readers of the stack file)")


class DnsConfig(Strict):
    namespace: K8sName = Field("kube-system", description="namespace of the cluster DNS pods")
    pod_labels: dict[str, str] = Field(
        default_factory=lambda: {"k8s-app": "kube-dns"},
        min_length=1,
        description="labels of the cluster DNS pods (CoreDNS keeps `k8s-app: kube-dns`)",
    )
    cidrs: list[Cidr] = Field(
        default_factory=list, description="further DNS server addresses, e.g. a node-local cache `169.254.20.10/32`"
    )


class EgressConfig(Strict):
    enabled: bool = Field(
        True, description="deny all egress from site namespaces except what is listed here (turn off only to debug)"
    )
    dns: DnsConfig = Field(default_factory=DnsConfig, description="the cluster DNS (port 53, UDP and TCP)")
    internet_ports: list[Port] = Field(
        default_factory=lambda: [80, 443], max_length=20, description="TCP ports site pods may open to the internet"
    )
    private_cidrs: list[Cidr] = Field(
        default_factory=lambda: list(RFC1918),
        description="the cluster's pod, service and node ranges and other private networks, never reachable as "
        "internet (169.254.0.0/16 with the metadata endpoint is always excluded)",
    )
    ipv6: bool = Field(False, description="also allow the internet ports over IPv6 (except fe80::/10 and fc00::/7)")
    allow: list[EgressRule] = Field(
        default_factory=list, max_length=100, description="further destinations for every site (SMTP relay, APIs)"
    )
    database_cidrs: list[Cidr] = Field(
        default_factory=list,
        description="external mode: the database server's addresses when `mysql.host` is a name "
        "(a NetworkPolicy matches addresses)",
    )


class SiteEgressConfig(Strict):
    allow: list[EgressRule] = Field(
        default_factory=list,
        max_length=50,
        description="destinations for this site only, on top of `kubernetes.egress.allow`",
    )
