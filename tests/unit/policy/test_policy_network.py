"""site-namespaces-default-deny: every site namespace isolates all pods for ingress and egress."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from tests.unit.harness import deploy, stack_file_config
from tests.unit.policy.policy_args import Resources, policies, run_stack

NETWORK_POLICY = "kubernetes:networking.k8s.io/v1:NetworkPolicy"
RULE = "site-namespaces-default-deny"
SITES = {
    "local": ["blog", "wiki", "shop"],
    "staging": ["shop", "intranet", "docs"],
    "prod": ["shop", "blog", "intranet", "docs", "events", "museum"],
}
PREFIX = {"local": "", "staging": "stg-", "prod": ""}
# What components/network_policies.py puts in each site namespace (resource suffix: object name).
SITE_POLICIES = {
    "default-deny": "default-deny",
    "ingress": "ingress-controller-only",
    "web-from-cron": "web-from-cron",
    "egress": "egress",
    "cron-to-web": "cron-to-web",
    "egress-database": "egress-database",
}


def violations(resources: Resources) -> list[tuple[str, str]]:
    return [(v.urn.rsplit("::", 1)[-1] if v.urn else "", v.message) for v in run_stack(policies()[RULE], resources)]


def missing(site: str, direction: str, namespace: str | None = None) -> tuple[str, str]:
    namespace = namespace or site
    return (
        f"{site}-namespace",
        f"Namespace {namespace} (resource '{site}-namespace'): no NetworkPolicy denies {direction.lower()} by "
        f"default: none in namespace '{namespace}' selects every pod (podSelector: {{}}) with {direction} in its "
        "policyTypes",
    )


def without(resources: Resources, site: str, *suffixes: str) -> Resources:
    names = {f"{site}-network-{suffix}" for suffix in suffixes}
    assert names <= {r.name for r in resources.items}
    return resources.without(lambda r: r.name in names)


@pytest.mark.parametrize("stack_name", sorted(SITES))
def test_real_stacks_deny_ingress_and_egress_by_default(stack: Callable[[str], Resources], stack_name: str) -> None:
    resources = stack(stack_name)
    for site in SITES[stack_name]:
        deny = resources.named(f"{site}-network-default-deny").props
        assert deny["metadata"] == {**deny["metadata"], "name": "default-deny", "namespace": PREFIX[stack_name] + site}
        assert deny["spec"] == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
        in_namespace = {
            r.name.removeprefix(f"{site}-network-"): r.props["metadata"]["name"]
            for r in resources.of_type(NETWORK_POLICY)
            if r.props["metadata"]["namespace"] == PREFIX[stack_name] + site
        }
        assert in_namespace == SITE_POLICIES
    assert violations(resources) == []


def test_the_default_deny_alone_isolates_both_directions(stack: Callable[[str], Resources]) -> None:
    """The allow policies that select every pod isolate it too, so each direction is proven separately."""
    local = stack("local")
    # Without default-deny, ingress-controller-only and egress still select every pod for their direction.
    assert violations(without(local, "wiki", "default-deny")) == []
    assert violations(without(local, "wiki", "ingress", "egress")) == []
    assert violations(without(local, "wiki", "default-deny", "ingress", "egress")) == [
        missing("wiki", "Ingress"),
        missing("wiki", "Egress"),
    ]


def test_missing_ingress_isolation_is_named(stack: Callable[[str], Resources]) -> None:
    assert violations(without(stack("local"), "wiki", "default-deny", "ingress")) == [missing("wiki", "Ingress")]


def test_missing_egress_isolation_is_named(stack: Callable[[str], Resources]) -> None:
    staging = without(stack("staging"), "intranet", "default-deny", "egress")
    assert violations(staging) == [missing("intranet", "Egress", "stg-intranet")]


def test_turning_egress_isolation_off_fails_every_site() -> None:
    """``kubernetes.egress.enabled: false`` ("only to debug") leaves the namespaces open for egress."""
    config = stack_file_config("local")
    config["kubernetes"] = {**config.get("kubernetes", {}), "egress": {"enabled": False}}
    asyncio.set_event_loop(asyncio.new_event_loop())
    resources = Resources.of(deploy(config, stack="local"))
    # (Sorted: the mocks register the sites concurrently, so the stack's order varies.)
    assert sorted(violations(resources)) == sorted(missing(site, "Egress") for site in ("blog", "wiki", "shop"))


def test_a_policy_selecting_some_pods_does_not_isolate_the_namespace(stack: Callable[[str], Resources]) -> None:
    resources = without(stack("local"), "blog", "egress")
    resources.named("blog-network-default-deny").props["spec"]["podSelector"] = {
        "matchLabels": {"app.kubernetes.io/component": "web"}
    }  # the cron pods would be left open
    assert violations(resources) == [missing("blog", "Egress")]


def test_policy_types_default_like_the_api_server(stack: Callable[[str], Resources]) -> None:
    resources = without(stack("local"), "blog", "default-deny")
    # Without policyTypes a policy with egress rules affects egress too (and always ingress).
    del resources.named("blog-network-egress").props["spec"]["policyTypes"]
    assert violations(resources) == []
    # Without egress rules it affects ingress only.
    resources = without(stack("local"), "wiki", "egress")
    del resources.named("wiki-network-default-deny").props["spec"]["policyTypes"]
    assert violations(resources) == [missing("wiki", "Egress")]


def test_an_allow_everything_rule_undoes_the_default_deny(stack: Callable[[str], Resources]) -> None:
    resources = stack("local")
    resources.named("shop-network-egress").props["spec"]["egress"].append({})
    resources.named("shop-network-web-from-cron").props["spec"]["ingress"].append({})
    assert sorted(violations(resources)) == [
        ("shop-network-egress",
         "NetworkPolicy shop/egress (resource 'shop-network-egress'): an egress rule with no peers and no ports "
         "allows all egress traffic, undoing the default deny of site namespace 'shop'"),
        ("shop-network-web-from-cron",
         "NetworkPolicy shop/web-from-cron (resource 'shop-network-web-from-cron'): an ingress rule with no peers "
         "and no ports allows all ingress traffic, undoing the default deny of site namespace 'shop'"),
    ]  # fmt: skip


def test_policies_in_other_namespaces_do_not_count(stack: Callable[[str], Resources]) -> None:
    resources = stack("local")
    for policy in resources.of_type(NETWORK_POLICY):
        if policy.props["metadata"]["namespace"] == "wiki":
            policy.props["metadata"]["namespace"] = "elsewhere"
    assert violations(resources) == [missing("wiki", "Ingress"), missing("wiki", "Egress")]


def test_only_site_namespaces_are_required_to_deny(stack: Callable[[str], Resources]) -> None:
    resources = stack("prod")
    # The MariaDB namespace (platform-wide, not a site's) has policies for its servers (the sites'
    # database access, the operator's), none of which selects every pod; it is not judged.
    mariadb = [p for p in resources.of_type(NETWORK_POLICY) if p.props["metadata"]["namespace"] == "mariadb"]
    assert len(mariadb) > len(SITES["prod"]) and all(p.props["spec"]["podSelector"] for p in mariadb)
    assert resources.named("flightdeck-mysql-namespace")
    assert violations(resources) == []
