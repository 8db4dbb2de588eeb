"""replicated-deployments-have-pdb: one budget per replicated Deployment, and it lets drains proceed."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from flightdeck_policy.disruption import allowed_disruptions, selector_matches
from tests.unit.policy.policy_args import Resource, Resources, child, policies, run_stack

PDB = "kubernetes:policy/v1:PodDisruptionBudget"
RULE = "replicated-deployments-have-pdb"
WEB = {"app.kubernetes.io/instance": "shop", "app.kubernetes.io/component": "web"}


def budget(resources: Resources, site: str, spec: dict[str, Any], name: str = "web") -> Resource:
    """A site PDB as the parallel PDB work adds them: in the site namespace, under the workload."""
    parent = resources.named(f"{site}-web")
    props = {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
             "metadata": {"name": f"{site}-{name}", "namespace": site}, "spec": spec}  # fmt: skip
    return child(parent, PDB, f"{site}-web-{name}-pdb", props)


def web_selector(site: str) -> dict[str, Any]:
    return {"matchLabels": {"app.kubernetes.io/instance": site, "app.kubernetes.io/component": "web"}}


PROD_REPLICATED = {"shop": 4, "blog": 2, "intranet": 3, "docs": 2, "events": 2, "museum": 2}


def with_budgets(resources: Resources, sites: list[str], **spec: Any) -> Resources:
    return resources.plus(
        *(
            budget(resources, site, {"selector": web_selector(site), **(spec or {"maxUnavailable": 1})})
            for site in sites
        )
    )


def violations(resources: Resources) -> list[tuple[str, str]]:
    return [(v.urn.rsplit("::", 1)[-1] if v.urn else "", v.message) for v in run_stack(policies()[RULE], resources)]


def test_prod_fails_only_for_its_replicated_deployments_today(stack: Callable[[str], Resources]) -> None:
    found = violations(stack("prod"))
    assert sorted(found) == sorted(
        (f"{site}-web-deployment",
         f"Deployment {site}/{site} (resource '{site}-web-deployment'): runs {count} replicas but no "
         "PodDisruptionBudget selects its pods, so a node drain may evict them all at once")
        for site, count in PROD_REPLICATED.items()
    )  # fmt: skip
    assert violations(with_budgets(stack("prod"), list(PROD_REPLICATED))) == []


def test_single_replica_deployments_need_no_budget(stack: Callable[[str], Resources]) -> None:
    assert violations(stack("staging")) == []  # every staging site runs 1 replica
    local = stack("local")  # shop runs 1 replica, blog and wiki 2
    assert [urn for urn, _ in violations(local)] == ["blog-web-deployment", "wiki-web-deployment"]
    assert violations(with_budgets(local, ["blog", "wiki"])) == []


@pytest.mark.parametrize(
    ("spec", "problem"),
    [
        ({"maxUnavailable": 0}, "allows no voluntary disruption of its 4 pods, so a node drain would hang"),
        ({"maxUnavailable": "0%"}, "allows no voluntary disruption"),
        ({"minAvailable": 4}, "allows no voluntary disruption"),
        ({"minAvailable": "100%"}, "allows no voluntary disruption"),
        ({"minAvailable": "80%"}, "allows no voluntary disruption"),  # ceil(3.2) = 4 of 4
        ({}, "sets neither a valid minAvailable nor maxUnavailable, so it bounds nothing"),
        ({"maxUnavailable": "lots"}, "sets neither a valid minAvailable nor maxUnavailable"),
    ],
)
def test_a_budget_that_blocks_drains_is_named(
    stack: Callable[[str], Resources], spec: dict[str, Any], problem: str
) -> None:
    resources = with_budgets(stack("prod"), [s for s in PROD_REPLICATED if s != "shop"])
    resources = resources.plus(budget(resources, "shop", {"selector": web_selector("shop"), **spec}))
    found = violations(resources)
    assert len(found) == 1 and found[0][0] == "shop-web-deployment", found
    prefix = (
        "Deployment shop/shop (resource 'shop-web-deployment'): PodDisruptionBudget shop/shop-web "
        "(resource 'shop-web-web-pdb') "
    )
    assert found[0][1].startswith(prefix) and problem in found[0][1], found


@pytest.mark.parametrize("spec", [{"maxUnavailable": 1}, {"maxUnavailable": "25%"}, {"minAvailable": 3},
                                  {"minAvailable": "50%"}, {"maxUnavailable": 1.0}])  # fmt: skip
def test_budgets_that_let_one_pod_go_pass(stack: Callable[[str], Resources], spec: dict[str, Any]) -> None:
    resources = with_budgets(stack("prod"), [s for s in PROD_REPLICATED if s != "shop"])
    assert violations(resources.plus(budget(resources, "shop", {"selector": web_selector("shop"), **spec}))) == []


def test_a_budget_must_select_the_pods_in_the_same_namespace(stack: Callable[[str], Resources]) -> None:
    resources = with_budgets(stack("prod"), [s for s in PROD_REPLICATED if s != "shop"])
    wrong_labels = budget(resources, "shop", {"selector": web_selector("blog"), "maxUnavailable": 1})
    assert [urn for urn, _ in violations(resources.plus(wrong_labels))] == ["shop-web-deployment"]
    elsewhere = budget(resources, "shop", {"selector": web_selector("shop"), "maxUnavailable": 1})
    elsewhere.props["metadata"]["namespace"] = "blog"
    assert [urn for urn, _ in violations(resources.plus(elsewhere))] == ["shop-web-deployment"]
    null_selector = budget(resources, "shop", {"maxUnavailable": 1})  # policy/v1: matches no pods
    assert [urn for urn, _ in violations(resources.plus(null_selector))] == ["shop-web-deployment"]
    everything = budget(resources, "shop", {"selector": {}, "maxUnavailable": 1})  # every pod of the namespace
    assert violations(resources.plus(everything)) == []


def test_two_budgets_over_the_same_pods_block_eviction(stack: Callable[[str], Resources]) -> None:
    resources = with_budgets(stack("prod"), list(PROD_REPLICATED))
    resources = resources.plus(budget(resources, "blog", {"selector": {}, "maxUnavailable": 1}, name="all"))
    found = violations(resources)
    assert len(found) == 1 and found[0][0] == "blog-web-deployment"
    assert "more than one PodDisruptionBudget (PodDisruptionBudget blog/blog-all" in found[0][1]
    assert "the eviction API refuses to evict such pods" in found[0][1]


label_keys = st.sampled_from(["app", "tier", "app.kubernetes.io/instance", "zone"])
label_values = st.sampled_from(["web", "db", "shop", "a"])
label_sets = st.dictionaries(label_keys, label_values, max_size=4)


@given(label_sets, label_sets)
def test_match_labels_selects_exactly_the_supersets(selector: dict[str, str], labels: dict[str, str]) -> None:
    assert selector_matches({"matchLabels": selector}, dict(labels)) == (selector.items() <= labels.items())


@given(label_keys, st.lists(label_values, min_size=1, max_size=3), label_sets)
def test_match_expressions_follow_the_label_selector_operators(
    key: str, values: list[str], labels: dict[str, str]
) -> None:
    def matches(operator: str) -> bool:
        return selector_matches(
            {"matchExpressions": [{"key": key, "operator": operator, "values": values}]}, dict(labels)
        )

    assert matches("In") == (key in labels and labels[key] in values)
    assert matches("NotIn") == (not matches("In"))
    assert selector_matches({"matchExpressions": [{"key": key, "operator": "Exists"}]}, dict(labels)) == (key in labels)
    assert selector_matches({"matchExpressions": [{"key": key, "operator": "DoesNotExist"}]}, dict(labels)) == (
        key not in labels
    )


@given(st.integers(min_value=1, max_value=50), st.integers(min_value=0, max_value=100))
def test_percentages_round_up_like_the_disruption_controller(replicas: int, percent: int) -> None:
    scaled = -(-percent * replicas // 100)  # ceil
    assert allowed_disruptions({"maxUnavailable": f"{percent}%"}, replicas) == scaled
    assert allowed_disruptions({"minAvailable": f"{percent}%"}, replicas) == replicas - scaled
