"""replicated-deployments-have-pdb: one budget per replicated Deployment, and it lets drains proceed."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from flightdeck_policy.disruption import allowed_disruptions, selector_matches
from tests.unit.policy.policy_args import Resource, Resources, child, policies, run_stack

PDB = "kubernetes:policy/v1:PodDisruptionBudget"
DEPLOYMENT = "kubernetes:apps/v1:Deployment"
CRON_JOB = "kubernetes:batch/v1:CronJob"
RULE = "replicated-deployments-have-pdb"
# The web replicas of each prod site (Pulumi.prod.yaml); components/site_workload.py gives each a budget.
PROD_REPLICATED = {"shop": 4, "blog": 2, "intranet": 3, "docs": 2, "events": 2, "museum": 2}


def violations(resources: Resources) -> list[tuple[str, str]]:
    return [(v.urn.rsplit("::", 1)[-1] if v.urn else "", v.message) for v in run_stack(policies()[RULE], resources)]


def real_budget(resources: Resources, site: str) -> dict[str, Any]:
    """The site's own PodDisruptionBudget as the program renders it (edited in place by a test)."""
    props: dict[str, Any] = resources.named(f"{site}-web-pdb").props
    return props


def another_budget(resources: Resources, site: str, name: str, spec: dict[str, Any]) -> Resource:
    """A second budget beside the site's real one: a copy of it, renamed, with ``spec``."""
    real = resources.named(f"{site}-web-pdb")
    props = copy.deepcopy(real.props)
    props["metadata"]["name"] = f"{site}-{name}"
    props["spec"] = spec
    return child(resources.named(f"{site}-web"), PDB, f"{site}-web-{name}-pdb", props)


def web_selector(site: str) -> dict[str, Any]:
    return {"matchLabels": {"app.kubernetes.io/instance": site, "app.kubernetes.io/component": "web"}}


def test_prod_passes_with_one_real_budget_per_replicated_deployment(stack: Callable[[str], Resources]) -> None:
    prod = stack("prod")
    assert {d.props["metadata"]["name"]: d.props["spec"]["replicas"] for d in prod.of_type(DEPLOYMENT)} == (
        PROD_REPLICATED
    )
    assert sorted(b.name for b in prod.of_type(PDB)) == sorted(f"{site}-web-pdb" for site in PROD_REPLICATED)
    assert violations(prod) == []


def test_a_replicated_deployment_without_its_budget_is_named(stack: Callable[[str], Resources]) -> None:
    prod = stack("prod").without(lambda r: r.name == "intranet-web-pdb")
    assert violations(prod) == [
        ("intranet-web-deployment",
         "Deployment intranet/intranet (resource 'intranet-web-deployment'): runs 3 replicas but no "
         "PodDisruptionBudget selects its pods, so a node drain may evict them all at once"),
    ]  # fmt: skip


def test_single_replica_deployments_need_no_budget(stack: Callable[[str], Resources]) -> None:
    staging = stack("staging")  # every staging site runs 1 replica, so the program adds no budget
    assert staging.of_type(PDB) == [] and violations(staging) == []
    local = stack("local")  # shop runs 1 replica, blog and wiki 2
    assert sorted(b.name for b in local.of_type(PDB)) == ["blog-web-pdb", "wiki-web-pdb"]
    assert violations(local) == []
    # Scaling a site up without the budget the program would add with it is caught.
    staging.named("shop-web-deployment").props["spec"]["replicas"] = 2.0
    assert [urn for urn, _ in violations(staging)] == ["shop-web-deployment"]


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
    resources = stack("prod")
    real_budget(resources, "shop")["spec"] = {"selector": web_selector("shop"), **spec}
    found = violations(resources)
    assert len(found) == 1 and found[0][0] == "shop-web-deployment", found
    prefix = (
        "Deployment shop/shop (resource 'shop-web-deployment'): PodDisruptionBudget shop/shop "
        "(resource 'shop-web-pdb') "
    )
    assert found[0][1].startswith(prefix) and problem in found[0][1], found


@pytest.mark.parametrize("spec", [{"maxUnavailable": 1}, {"maxUnavailable": "25%"}, {"minAvailable": 3},
                                  {"minAvailable": "50%"}, {"maxUnavailable": 1.0}])  # fmt: skip
def test_budgets_that_let_one_pod_go_pass(stack: Callable[[str], Resources], spec: dict[str, Any]) -> None:
    resources = stack("prod")
    real_budget(resources, "shop")["spec"] = {"selector": web_selector("shop"), **spec}
    assert violations(resources) == []


def test_a_budget_must_select_the_pods_in_the_same_namespace(stack: Callable[[str], Resources]) -> None:
    def shop_with(edit: Callable[[dict[str, Any]], None]) -> list[str]:
        resources = stack("prod")
        edit(real_budget(resources, "shop"))
        return [urn for urn, _ in violations(resources)]

    assert shop_with(lambda b: b["spec"].update(selector=web_selector("blog"))) == ["shop-web-deployment"]
    # In blog's namespace, shop's budget selects none of blog's pods (its labels are shop's) and none of shop's.
    assert shop_with(lambda b: b["metadata"].update(namespace="blog")) == ["shop-web-deployment"]
    assert shop_with(lambda b: b["spec"].pop("selector")) == ["shop-web-deployment"]  # policy/v1: null matches none
    # Every pod of shop's namespace: with an integer minAvailable that is fine; with maxUnavailable it
    # includes the cron pods (see test_a_budget_that_also_selects_cron_pods_blocks_drains).
    assert shop_with(lambda b: b.update(spec={"selector": {}, "minAvailable": 3})) == []
    assert shop_with(lambda b: b["spec"].update(selector={})) == ["shop-web-deployment"]


def test_a_budget_never_counts_for_another_namespace(stack: Callable[[str], Resources]) -> None:
    """A budget selects pods of its own namespace only (policy/v1 PodDisruptionBudget is namespaced),
    even when its selector would match another site's pods: here every pod, beside events' own budget."""
    resources = stack("prod")
    everything = another_budget(resources, "events", "all", {"selector": {}, "maxUnavailable": 1})
    found = violations(resources.plus(everything))
    assert [urn for urn, _ in found] == ["events-web-deployment"]  # two budgets over events' pods
    both = "PodDisruptionBudget events/events (resource 'events-web-pdb'), PodDisruptionBudget events/events-all"
    assert both in found[0][1]
    assert "museum" not in found[0][1]
    # The same budget moved to museum's namespace: now museum has two, events is back to one.
    everything.props["metadata"]["namespace"] = "museum"
    assert [urn for urn, _ in violations(resources.plus(everything))] == ["museum-web-deployment"]


def test_two_budgets_over_the_same_pods_block_eviction(stack: Callable[[str], Resources]) -> None:
    resources = stack("prod")
    resources = resources.plus(another_budget(resources, "blog", "all", {"selector": {}, "maxUnavailable": 1}))
    found = violations(resources)
    assert found == [
        ("blog-web-deployment",
         "Deployment blog/blog (resource 'blog-web-deployment'): its pods are selected by more than one "
         "PodDisruptionBudget (PodDisruptionBudget blog/blog (resource 'blog-web-pdb'), PodDisruptionBudget "
         "blog/blog-all (resource 'blog-web-all-pdb')); the eviction API refuses to evict such pods, so node drains "
         "hang"),
    ]  # fmt: skip


def test_the_real_budgets_select_no_cron_pods(stack: Callable[[str], Resources]) -> None:
    for stack_name in ("local", "prod"):
        resources = stack(stack_name)
        jobs = {j.props["metadata"]["namespace"]: j for j in resources.of_type(CRON_JOB)}
        assert jobs, stack_name
        for budget in resources.of_type(PDB):
            job = jobs[budget.props["metadata"]["namespace"]]
            labels = job.props["spec"]["jobTemplate"]["spec"]["template"]["metadata"]["labels"]
            assert not selector_matches(budget.props["spec"]["selector"], labels), budget.name


@pytest.mark.parametrize(
    ("spec", "blocks"),
    [({"maxUnavailable": 1}, True), ({"minAvailable": "50%"}, True), ({"minAvailable": 1}, False)],
)
def test_a_budget_that_also_selects_cron_pods_blocks_drains(
    stack: Callable[[str], Resources], spec: dict[str, Any], blocks: bool
) -> None:
    """All of the site's pods (web and cron) instead of the web pods: a Job has no scale subresource."""
    resources = stack("prod")
    site_pods = {"matchLabels": {"app.kubernetes.io/instance": "shop"}}
    real_budget(resources, "shop")["spec"] = {"selector": site_pods, **spec}
    found = violations(resources)
    if not blocks:  # an integer minAvailable counts pods and needs no controller's scale
        assert found == []
        return
    assert found == [
        ("shop-web-deployment",
         "Deployment shop/shop (resource 'shop-web-deployment'): PodDisruptionBudget shop/shop (resource "
         "'shop-web-pdb') also selects the pods of CronJob shop/shop-cron (resource 'shop-web-cron'), whose Jobs "
         "have no scale subresource: with maxUnavailable or a percentage minAvailable the disruption controller "
         "cannot count the budget's pods and allows no disruption, so a node drain would hang"),
    ]  # fmt: skip
    # A Job (a one-off run) is the same; in another namespace it is never selected.
    cron = resources.named("shop-web-cron")
    job_props = {"metadata": {"name": "shop-once", "namespace": "shop"},
                 "spec": copy.deepcopy(cron.props["spec"]["jobTemplate"]["spec"])}  # fmt: skip
    job = child(resources.named("shop-web"), "kubernetes:batch/v1:Job", "shop-web-once", job_props)
    without_cron = resources.without(lambda r: r.name == "shop-web-cron")
    assert "Job shop/shop-once (resource 'shop-web-once')" in violations(without_cron.plus(job))[0][1]
    job.props["metadata"]["namespace"] = "blog"
    assert violations(without_cron.plus(job)) == []


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
