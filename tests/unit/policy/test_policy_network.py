"""site-namespaces-default-deny: every site namespace isolates all pods for ingress and egress."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.unit.policy.policy_args import Resource, Resources, child, policies, run_stack

NETWORK_POLICY = "kubernetes:networking.k8s.io/v1:NetworkPolicy"
RULE = "site-namespaces-default-deny"


def network_policy(parent: Resource, name: str, namespace: str, spec: dict[str, Any]) -> Resource:
    props = {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
             "metadata": {"name": name, "namespace": namespace}, "spec": spec}  # fmt: skip
    return child(parent, NETWORK_POLICY, f"{parent.name}-{name}", props)


def default_deny_egress(resources: Resources, site: str, namespace: str | None = None) -> Resource:
    """The target the site egress work is building: deny all egress, then allow DNS and the database."""
    spec = {
        "podSelector": {},
        "policyTypes": ["Egress"],
        "egress": [
            {"ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]},
            {"to": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "mariadb"}}}],
             "ports": [{"protocol": "TCP", "port": 3306}]},
        ],
    }  # fmt: skip
    return network_policy(resources.named(f"{site}-network"), "default-deny-egress", namespace or site, spec)


def with_egress(resources: Resources, sites: list[str], prefix: str = "") -> Resources:
    return resources.plus(*(default_deny_egress(resources, site, prefix + site) for site in sites))


def violations(resources: Resources) -> list[tuple[str, str]]:
    return [(v.urn.rsplit("::", 1)[-1] if v.urn else "", v.message) for v in run_stack(policies()[RULE], resources)]


SITES = {"local": ["blog", "wiki", "shop"], "staging": ["shop", "intranet", "docs"]}


@pytest.mark.parametrize("stack_name", ["local", "staging"])
def test_real_stacks_deny_ingress_and_fail_only_on_egress_today(
    stack: Callable[[str], Resources], stack_name: str
) -> None:
    resources = stack(stack_name)
    prefix = "stg-" if stack_name == "staging" else ""
    found = violations(resources)
    assert sorted(found) == sorted(
        (f"{site}-namespace",
         f"Namespace {prefix}{site} (resource '{site}-namespace'): no NetworkPolicy denies egress by default: none "
         f"in namespace '{prefix}{site}' selects every pod (podSelector: {{}}) with Egress in its policyTypes")
        for site in SITES[stack_name]
    )  # fmt: skip
    # ... and pass once the parallel egress work lands policies of this shape.
    assert violations(with_egress(resources, SITES[stack_name], prefix)) == []


def test_missing_ingress_isolation_is_named(stack: Callable[[str], Resources]) -> None:
    resources = with_egress(stack("local"), SITES["local"])
    resources = resources.without(lambda r: r.name == "wiki-network-ingress")
    assert violations(resources) == [
        ("wiki-namespace", "Namespace wiki (resource 'wiki-namespace'): no NetworkPolicy denies ingress by default: "
         "none in namespace 'wiki' selects every pod (podSelector: {}) with Ingress in its policyTypes"),
    ]  # fmt: skip


def test_a_policy_selecting_some_pods_does_not_isolate_the_namespace(stack: Callable[[str], Resources]) -> None:
    resources = with_egress(stack("local"), SITES["local"])
    egress = resources.named("blog-network-default-deny-egress")
    egress.props["spec"]["podSelector"] = {"matchLabels": {"app.kubernetes.io/component": "web"}}
    assert [urn for urn, _ in violations(resources)] == ["blog-namespace"]


def test_policy_types_default_like_the_api_server(stack: Callable[[str], Resources]) -> None:
    resources = with_egress(stack("local"), SITES["local"])
    # Without policyTypes a policy with egress rules affects egress too (and always ingress).
    del resources.named("blog-network-default-deny-egress").props["spec"]["policyTypes"]
    assert violations(resources) == []
    # Without egress rules it affects ingress only.
    spec = resources.named("wiki-network-default-deny-egress").props["spec"]
    del spec["policyTypes"], spec["egress"]
    assert [urn for urn, _ in violations(resources)] == ["wiki-namespace"]


def test_an_allow_everything_rule_undoes_the_default_deny(stack: Callable[[str], Resources]) -> None:
    resources = with_egress(stack("local"), SITES["local"])
    resources.named("shop-network-default-deny-egress").props["spec"]["egress"].append({})
    assert violations(resources) == [
        ("shop-network-default-deny-egress",
         "NetworkPolicy shop/default-deny-egress (resource 'shop-network-default-deny-egress'): an egress rule with "
         "no peers and no ports allows all egress traffic, undoing the default deny of site namespace 'shop'"),
    ]  # fmt: skip


def test_policies_in_other_namespaces_do_not_count(stack: Callable[[str], Resources]) -> None:
    resources = stack("local")
    resources = resources.plus(*(default_deny_egress(resources, site, "elsewhere") for site in SITES["local"]))
    assert len(violations(resources)) == 3


def test_only_site_namespaces_are_required_to_deny(stack: Callable[[str], Resources]) -> None:
    resources = with_egress(stack("prod"), ["shop", "blog", "intranet", "docs", "events", "museum"])
    # The MariaDB namespace (platform-wide, not a site's) has no default deny and is not judged.
    assert resources.named("flightdeck-mysql-namespace")
    assert violations(resources) == []
