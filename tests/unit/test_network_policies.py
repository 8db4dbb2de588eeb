"""Egress isolation of the site namespaces, from the NetworkPolicies the program registers."""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest

from components.config import ConfigError, validate_stack_config
from tests.unit.harness import Deployment, deploy, minimal_config, stack_file_config

POLICY = "kubernetes:networking.k8s.io/v1:NetworkPolicy"


@pytest.fixture(scope="module")
def prod() -> Deployment:
    import asyncio

    asyncio.set_event_loop(asyncio.new_event_loop())
    return deploy(stack_file_config("prod"), stack="prod")


def _policies(deployed: Deployment, namespace: str) -> dict[str, dict[str, Any]]:
    return {r.metadata["name"]: r.spec for r in deployed.of_type(POLICY) if r.metadata.get("namespace") == namespace}


def _egress_rule(spec: dict[str, Any], port: int, protocol: str = "TCP") -> list[dict[str, Any]]:
    return [rule for rule in spec["egress"] if {"protocol": protocol, "port": port} in rule["ports"]]


def test_every_site_namespace_denies_all_traffic_by_default(prod: Deployment) -> None:
    for site in ("shop", "blog", "intranet", "docs", "events", "museum"):
        deny = _policies(prod, site)["default-deny"]
        assert deny == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}, site


def test_dns_goes_to_the_cluster_dns_pods_only(prod: Deployment) -> None:
    egress = _policies(prod, "blog")["egress"]
    assert egress["podSelector"] == {} and egress["policyTypes"] == ["Egress"]
    (dns,) = _egress_rule(egress, 53, "UDP")
    assert {"protocol": "TCP", "port": 53} in dns["ports"]
    assert dns["to"] == [
        {
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
            "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
        }
    ]


def test_internet_egress_excludes_metadata_and_private_ranges(prod: Deployment) -> None:
    egress = _policies(prod, "blog")["egress"]
    (internet,) = [rule for rule in _egress_rule(egress, 443) if "ipBlock" in rule["to"][0]]
    assert internet["ports"] == [{"protocol": "TCP", "port": 80}, {"protocol": "TCP", "port": 443}]
    (block,) = internet["to"]
    assert block["ipBlock"]["cidr"] == "0.0.0.0/0"
    excluded = [ipaddress.ip_network(c) for c in block["ipBlock"]["except"]]
    for address in ("169.254.169.254", "10.96.0.1", "172.20.3.4", "192.168.1.10"):
        assert any(ipaddress.ip_address(address) in net for net in excluded), address
    assert not any(ipaddress.ip_address("203.0.113.7") in net for net in excluded)
    # No rule opens 3306 or anything else to the internet.
    ports = {p["port"] for rule in egress["egress"] for p in rule["ports"]}
    assert ports == {53, 80, 443}


def test_sites_may_reach_their_own_public_url_through_the_ingress_controller(prod: Deployment) -> None:
    egress = _policies(prod, "blog")["egress"]
    hairpin = [r for r in _egress_rule(egress, 443) if "namespaceSelector" in r["to"][0]]
    assert hairpin == [
        {
            "to": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}}}],
            "ports": [{"protocol": "TCP", "port": 80}, {"protocol": "TCP", "port": 443}],
        }
    ]


def test_database_egress_uses_the_operators_pod_labels(prod: Deployment) -> None:
    spec = _policies(prod, "shop")["egress-database"]
    assert spec["podSelector"] == {
        "matchLabels": {"app.kubernetes.io/instance": "shop"},
        "matchExpressions": [{"key": "app.kubernetes.io/component", "operator": "In", "values": ["web", "cron"]}],
    }
    assert spec["egress"] == [
        {
            "to": [
                {
                    "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "mariadb"}},
                    "podSelector": {
                        "matchLabels": {"app.kubernetes.io/name": "mariadb", "app.kubernetes.io/instance": "mariadb"}
                    },
                }
            ],
            "ports": [{"protocol": "TCP", "port": 3306}],
        }
    ]
    # The database side admits the same pods, so both ends of the connection agree.
    admitted = prod.named("shop-network-database").spec["ingress"][0]["from"][0]["podSelector"]
    assert admitted == spec["podSelector"]


def test_cron_pods_reach_the_web_pods_on_port_80(prod: Deployment) -> None:
    policies = _policies(prod, "docs")
    cron = {"app.kubernetes.io/instance": "docs", "app.kubernetes.io/component": "cron"}
    web = {"app.kubernetes.io/instance": "docs", "app.kubernetes.io/component": "web"}
    assert policies["cron-to-web"] == {
        "podSelector": {"matchLabels": cron},
        "policyTypes": ["Egress"],
        "egress": [{"to": [{"podSelector": {"matchLabels": web}}], "ports": [{"protocol": "TCP", "port": 80}]}],
    }
    assert policies["web-from-cron"] == {
        "podSelector": {"matchLabels": web},
        "policyTypes": ["Ingress"],
        "ingress": [{"from": [{"podSelector": {"matchLabels": cron}}], "ports": [{"protocol": "TCP", "port": 80}]}],
    }
    web_labels = prod.named("docs-web-deployment").spec["template"]["metadata"]["labels"]
    assert web.items() <= web_labels.items()


def test_acme_solver_keeps_working(prod: Deployment) -> None:
    # cert-manager's HTTP-01 solver pod runs in the site namespace and only answers the ingress
    # controller on 8089 (replies to an admitted connection need no egress rule).
    ingress = _policies(prod, "blog")["ingress-controller-only"]
    assert ingress["ingress"][0]["ports"] == [{"protocol": "TCP", "port": 80}, {"protocol": "TCP", "port": 8089}]
    assert ingress["podSelector"] == {}


def test_allow_list_is_global_and_per_site() -> None:
    config = minimal_config(
        kubernetes={
            "egress": {
                "allow": [{"cidr": "198.51.100.25/32", "ports": [587, 465], "description": "SMTP relay"}],
                "dns": {"cidrs": ["169.254.20.10/32"]},
            }
        }
    )
    config["sites"][0]["egress"] = {"allow": [{"cidr": "203.0.113.0/24", "ports": [8443]}]}
    deployed = deploy(config)
    blog, wiki = _policies(deployed, "blog")["egress"], _policies(deployed, "wiki")["egress"]
    smtp = {
        "to": [{"ipBlock": {"cidr": "198.51.100.25/32"}}],
        "ports": [{"protocol": "TCP", "port": 587}, {"protocol": "TCP", "port": 465}],
    }
    api = {"to": [{"ipBlock": {"cidr": "203.0.113.0/24"}}], "ports": [{"protocol": "TCP", "port": 8443}]}
    assert smtp in blog["egress"] and smtp in wiki["egress"]
    assert api in blog["egress"] and api not in wiki["egress"]
    (dns,) = _egress_rule(blog, 53, "UDP")
    assert {"ipBlock": {"cidr": "169.254.20.10/32"}} in dns["to"]


def test_private_ranges_and_ipv6_are_configurable() -> None:
    config = minimal_config(
        kubernetes={"egress": {"privateCidrs": ["10.0.0.0/8", "100.64.0.0/10", "fd12::/48"], "ipv6": True}}
    )
    egress = _policies(deploy(config), "blog")["egress"]
    (internet,) = [r for r in _egress_rule(egress, 443) if "ipBlock" in r["to"][0]]
    v4, v6 = internet["to"]
    assert v4["ipBlock"] == {"cidr": "0.0.0.0/0", "except": ["10.0.0.0/8", "100.64.0.0/10", "169.254.0.0/16"]}
    assert v6["ipBlock"] == {"cidr": "::/0", "except": ["fc00::/7", "fd12::/48", "fe80::/10"]}


def test_egress_isolation_can_be_turned_off_for_debugging() -> None:
    deployed = deploy(minimal_config(kubernetes={"egress": {"enabled": False}}))
    policies = _policies(deployed, "blog")
    assert policies["default-deny"]["policyTypes"] == ["Ingress"]
    assert not {"egress", "egress-database", "cron-to-web"} & set(policies)


def test_existing_ingress_policy_keeps_its_resource_name(prod: Deployment) -> None:
    # Renaming the resource would replace the live policy; the new ones are additions.
    assert prod.named("blog-network-ingress").metadata["name"] == "ingress-controller-only"
    assert {
        f"blog-network-{n}" for n in ("default-deny", "egress", "egress-database", "cron-to-web", "web-from-cron")
    } <= prod.names()


def test_external_server_given_by_address_needs_no_extra_config() -> None:
    config = minimal_config(mysql={"mode": "external", "host": "10.1.2.3", "readHost": "10.1.2.4"})
    deployed = deploy(config, secrets={"mysqlAdminPassword": "s3cret-admin"})
    spec = _policies(deployed, "blog")["egress-database"]
    assert spec["egress"][0]["to"] == [{"ipBlock": {"cidr": "10.1.2.3/32"}}, {"ipBlock": {"cidr": "10.1.2.4/32"}}]


@pytest.mark.parametrize(
    ("egress", "mysql", "path", "fragment"),
    [
        ({}, {"mode": "external", "host": "db.internal"}, "kubernetes.egress.databaseCidrs", "not names"),
        ({"databaseCidrs": ["10.0.0.5/32"]}, {"mode": "operator"}, "kubernetes.egress.databaseCidrs", "external"),
        ({"privateCidrs": ["0.0.0.0/0"]}, {"mode": "operator"}, "kubernetes.egress.privateCidrs[0]", "whole internet"),
        (
            {"allow": [{"cidr": "10.0.0.1/8", "ports": [25]}]},
            {"mode": "operator"},
            "kubernetes.egress.allow[0].cidr",
            "CIDR",
        ),
        (
            {"allow": [{"cidr": "10.0.0.0/8", "ports": []}]},
            {"mode": "operator"},
            "kubernetes.egress.allow[0].ports",
            "at least 1",
        ),
        (
            {"allow": [{"cidr": "10.0.0.0/8", "ports": [70000]}]},
            {"mode": "operator"},
            "kubernetes.egress.allow[0].ports[0]",
            "65535",
        ),
        ({"dns": {"podLabels": {}}}, {"mode": "operator"}, "kubernetes.egress.dns.podLabels", "at least 1"),
    ],
)
def test_bad_egress_config_names_the_key(
    egress: dict[str, Any], mysql: dict[str, Any], path: str, fragment: str
) -> None:
    config = minimal_config(mysql=mysql, kubernetes={"egress": egress})
    with pytest.raises(ConfigError) as caught:
        validate_stack_config(config)
    problems = {p.path: p.reason for p in caught.value.problems}
    assert path in problems, problems
    assert fragment in problems[path]
