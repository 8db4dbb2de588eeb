"""Every Deployment with two or more replicas has a PodDisruptionBudget that lets a drain proceed.

policy/v1 semantics (PodDisruptionBudgetSpec): a null selector matches no pods, an empty one
(``{}``) every pod in the namespace. The disruption controller rounds percentages up for both
``minAvailable`` and ``maxUnavailable`` (kubernetes ``pkg/controller/disruption``,
``getExpectedPodCount`` with ``GetScaledValueFromIntOrPercent(..., roundUp=true)``), and a budget
that sets neither bounds nothing. The eviction API refuses to evict a pod that more than one
budget selects ("This pod has more than one PodDisruptionBudget, which the eviction subresource
does not support", ``registry/core/pod/storage/eviction.go``), so that would block drains too.

A budget with ``maxUnavailable`` or a percentage ``minAvailable`` must find the scale of every
selected pod's controller (``getExpectedPodCount`` -> ``getExpectedScale``); a Job has no scale
subresource, so a budget that also selects Job pods (a CronJob's, including the finished pods it
keeps) fails to sync, and ``failSafe`` sets ``disruptionsAllowed`` to 0 for all its pods. KEP-85
("Make the disruption controller more lenient for pods belonging to non-scale controllers")
kept that behaviour on purpose. An integer ``minAvailable`` counts pods and needs no scale.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from flightdeck_policy.findings import Findings
from flightdeck_policy.objects import describe
from flightdeck_policy.stack import Stack, StackResource
from flightdeck_policy.values import UNKNOWN, integer, items, lookup, mapping, text

DEPLOYMENT = "kubernetes:apps/v1:Deployment"
PDB = "kubernetes:policy/v1:PodDisruptionBudget"
MIN_REPLICAS = 2
# Controllers without a scale subresource, by where their pod-template labels are.
UNSCALABLE_POD_LABELS: dict[str, tuple[str, ...]] = {
    "kubernetes:batch/v1:Job": ("spec", "template", "metadata", "labels"),
    "kubernetes:batch/v1:CronJob": ("spec", "jobTemplate", "spec", "template", "metadata", "labels"),
}


def selector_matches(selector: object, labels: dict[str, object]) -> bool:
    """metav1.LabelSelector semantics; ``selector`` None matches nothing (policy/v1)."""
    if not isinstance(selector, dict):
        return False
    for key, value in mapping(selector.get("matchLabels")).items():
        if labels.get(key) != value:
            return False
    for expression in items(selector.get("matchExpressions")):
        key = text(lookup(expression, "key")) or ""
        operator = lookup(expression, "operator")
        values = items(lookup(expression, "values"))
        if operator == "In":
            ok = key in labels and labels[key] in values
        elif operator == "NotIn":
            ok = key not in labels or labels[key] not in values
        elif operator == "Exists":
            ok = key in labels
        elif operator == "DoesNotExist":
            ok = key not in labels
        else:
            ok = False
        if not ok:
            return False
    return True


def _scaled(value: object, replicas: int) -> int | None:
    """An IntOrString against ``replicas``, percentages rounded up; None when unreadable."""
    if integer(value) is not None:
        return integer(value)
    if isinstance(value, str) and value.endswith("%") and value[:-1].isdigit():
        return math.ceil(int(value[:-1]) * replicas / 100)
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None


def allowed_disruptions(spec: object, replicas: int) -> int | None:
    """Pods a drain may evict at once from ``replicas`` healthy ones; None when the budget bounds nothing."""
    max_unavailable = lookup(spec, "maxUnavailable")
    if max_unavailable is not None:
        scaled = _scaled(max_unavailable, replicas)
        return None if scaled is None else scaled
    min_available = lookup(spec, "minAvailable")
    if min_available is not None:
        scaled = _scaled(min_available, replicas)
        return None if scaled is None else replicas - scaled
    return None


def needs_controller_scale(spec: object) -> bool:
    """Whether the disruption controller reads the scale of the selected pods' controllers."""
    return lookup(spec, "maxUnavailable") is not None or isinstance(lookup(spec, "minAvailable"), str)


@dataclass(frozen=True)
class Budget:
    resource: StackResource
    namespace: str
    selector: object
    spec: object


@dataclass(frozen=True)
class UnscalablePods:
    """The pods a Job or CronJob runs, as a budget's selector sees them."""

    resource: StackResource
    namespace: str
    labels: dict[str, object]


def _namespace_of(resource: StackResource) -> object:
    namespace = lookup(resource.props, "metadata", "namespace")
    return namespace if namespace is UNKNOWN else text(namespace) or "default"


def _unscalable_pods(stack: Stack) -> tuple[list[UnscalablePods], list[StackResource]]:
    known, undecided = [], []
    for resource in stack.of_type(*UNSCALABLE_POD_LABELS):
        namespace = _namespace_of(resource)
        labels = lookup(resource.props, *UNSCALABLE_POD_LABELS[resource.resource_type])
        if isinstance(namespace, str) and labels is not UNKNOWN:
            known.append(UnscalablePods(resource, namespace, mapping(labels)))
        else:
            undecided.append(resource)
    return known, undecided


def _budgets(stack: Stack) -> tuple[list[Budget], list[StackResource]]:
    budgets, undecided = [], []
    for resource in stack.of_type(PDB):
        namespace, spec = lookup(resource.props, "metadata", "namespace"), lookup(resource.props, "spec")
        selector = lookup(spec, "selector")
        if UNKNOWN in (namespace, spec, selector):
            undecided.append(resource)
        else:
            budgets.append(Budget(resource, text(namespace) or "default", selector, spec))
    return budgets, undecided


def check_disruption_budgets(stack: Stack) -> dict[str, Findings]:
    """Findings by URN of the Deployment (or the budget at fault)."""
    results: dict[str, Findings] = {}
    budgets, undecided = _budgets(stack)
    unscalable, undecided_unscalable = _unscalable_pods(stack)
    for deployment in stack.of_type(DEPLOYMENT):
        found = results.setdefault(deployment.urn, Findings())
        props = deployment.props
        replicas = lookup(props, "spec", "replicas")
        namespace = lookup(props, "metadata", "namespace")
        labels = lookup(props, "spec", "template", "metadata", "labels")
        if UNKNOWN in (replicas, namespace, labels):
            found.unknown.append("spec.replicas, metadata.namespace or spec.template.metadata.labels")
            continue
        count = integer(replicas) if replicas is not None else 1  # the API server's default
        if count is None:
            found.violations.append(f"has spec.replicas {replicas!r}, which is not a whole number")
            continue
        if count < MIN_REPLICAS:
            continue
        pod_labels = mapping(labels)
        covering = [
            b
            for b in budgets
            if b.namespace == (text(namespace) or "default") and selector_matches(b.selector, pod_labels)
        ]
        if not covering:
            if undecided:
                found.unknown += [describe(r.resource_type, r.name, r.props) for r in undecided]
            else:
                found.violations.append(
                    f"runs {count} replicas but no PodDisruptionBudget selects its pods, so a node drain may evict "
                    "them all at once"
                )
            continue
        if len(covering) > 1:
            names = ", ".join(
                sorted(describe(b.resource.resource_type, b.resource.name, b.resource.props) for b in covering)
            )
            found.violations.append(
                f"its pods are selected by more than one PodDisruptionBudget ({names}); the eviction API refuses to "
                "evict such pods, so node drains hang"
            )
            continue
        only = covering[0]
        budget = describe(only.resource.resource_type, only.resource.name, only.resource.props)
        if needs_controller_scale(only.spec):
            jobs = sorted(
                describe(j.resource.resource_type, j.resource.name, j.resource.props)
                for j in unscalable
                if j.namespace == only.namespace and selector_matches(only.selector, j.labels)
            )
            if jobs:
                found.violations.append(
                    f"{budget} also selects the pods of {', '.join(jobs)}, whose Jobs have no scale subresource: "
                    "with maxUnavailable or a percentage minAvailable the disruption controller cannot count the "
                    "budget's pods and allows no disruption, so a node drain would hang"
                )
            found.unknown += [
                describe(r.resource_type, r.name, r.props)
                for r in undecided_unscalable
                if _namespace_of(r) in (UNKNOWN, only.namespace)
            ]
        allowed = allowed_disruptions(only.spec, count)
        if allowed is None:
            found.violations.append(
                f"{budget} sets neither a valid minAvailable nor maxUnavailable, so it bounds nothing"
            )
        elif allowed <= 0:
            found.violations.append(
                f"{budget} allows no voluntary disruption of its {count} pods, so a node drain would hang"
            )
    return results
