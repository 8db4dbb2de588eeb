"""Every Deployment with two or more replicas has a PodDisruptionBudget that lets a drain proceed.

policy/v1 semantics (PodDisruptionBudgetSpec): a null selector matches no pods, an empty one
(``{}``) every pod in the namespace. The disruption controller rounds percentages up for both
``minAvailable`` and ``maxUnavailable`` (kubernetes ``pkg/controller/disruption``,
``getExpectedPodCount`` with ``GetScaledValueFromIntOrPercent(..., roundUp=true)``), and a budget
that sets neither bounds nothing. The eviction API refuses to evict a pod that more than one
budget selects ("This pod has more than one PodDisruptionBudget, which the eviction subresource
does not support", ``registry/core/pod/storage/eviction.go``), so that would block drains too.
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


@dataclass(frozen=True)
class Budget:
    resource: StackResource
    namespace: str
    selector: object
    spec: object


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
        allowed = allowed_disruptions(covering[0].spec, count)
        budget = describe(covering[0].resource.resource_type, covering[0].resource.name, covering[0].resource.props)
        if allowed is None:
            found.violations.append(
                f"{budget} sets neither a valid minAvailable nor maxUnavailable, so it bounds nothing"
            )
        elif allowed <= 0:
            found.violations.append(
                f"{budget} allows no voluntary disruption of its {count} pods, so a node drain would hang"
            )
    return results
