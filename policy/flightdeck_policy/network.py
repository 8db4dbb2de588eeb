"""Default deny in every site namespace: all pods isolated for ingress and for egress.

A pod is isolated for a direction once any NetworkPolicy that selects it lists that direction
in its ``policyTypes``; from then on only what some policy allows gets through (Kubernetes
"Network Policies" concepts page). So a namespace denies by default when a policy with an empty
``podSelector`` (every pod in the namespace) lists the direction. Without ``policyTypes`` the
API server defaults it to ``[Ingress]``, plus ``Egress`` when the policy has egress rules
(networking/v1 NetworkPolicySpec). A rule with no peers and no ports allows everything, which
would undo the default deny for the pods it selects, so that is a violation too.
"""

from __future__ import annotations

from dataclasses import dataclass

from flightdeck_policy.findings import Findings
from flightdeck_policy.objects import describe
from flightdeck_policy.stack import Stack, StackResource
from flightdeck_policy.values import UNKNOWN, items, lookup, mapping, text

NAMESPACE = "kubernetes:core/v1:Namespace"
NETWORK_POLICY = "kubernetes:networking.k8s.io/v1:NetworkPolicy"
DIRECTIONS = {"Ingress": ("ingress", "from"), "Egress": ("egress", "to")}


@dataclass(frozen=True)
class PolicyView:
    resource: StackResource
    namespace: str
    selects_all_pods: bool
    directions: frozenset[str]
    allows_everything: frozenset[str]  # directions with a rule that has neither peers nor ports


def _empty_selector(selector: object) -> bool:
    return not items(lookup(selector, "matchExpressions")) and not mapping(lookup(selector, "matchLabels"))


def view(resource: StackResource) -> PolicyView | None:
    """What a NetworkPolicy does, or None when a part it depends on is unknown during preview."""
    props = resource.props
    namespace, spec = lookup(props, "metadata", "namespace"), lookup(props, "spec")
    if UNKNOWN in (namespace, spec):
        return None
    selector = lookup(spec, "podSelector")
    listed = lookup(spec, "policyTypes")
    rules = {direction: lookup(spec, field) for direction, (field, _) in DIRECTIONS.items()}
    if UNKNOWN in (selector, listed, *rules.values()):
        return None
    if listed:
        directions = frozenset(str(t) for t in items(listed))
    else:
        directions = frozenset({"Ingress"} | ({"Egress"} if items(rules["Egress"]) else set()))
    open_directions = set()
    for direction, (_, peers_field) in DIRECTIONS.items():
        for rule in items(rules[direction]):
            if rule is UNKNOWN:
                return None
            if direction in directions and not items(lookup(rule, peers_field)) and not items(lookup(rule, "ports")):
                open_directions.add(direction)
    return PolicyView(
        resource=resource,
        namespace=text(namespace) or "default",
        selects_all_pods=_empty_selector(selector),
        directions=directions,
        allows_everything=frozenset(open_directions),
    )


def site_namespaces(stack: Stack) -> list[StackResource]:
    return [r for r in stack.of_type(NAMESPACE) if stack.site_of(r) is not None]


def check_default_deny(stack: Stack) -> dict[str, Findings]:
    """Findings by URN: the site namespaces that lack a default deny, and policies that undo one."""
    results: dict[str, Findings] = {}
    views: list[PolicyView] = []
    undecided = []
    for resource in stack.of_type(NETWORK_POLICY):
        seen = view(resource)
        if seen is None:
            undecided.append(resource)
        else:
            views.append(seen)
    for namespace in site_namespaces(stack):
        found = results.setdefault(namespace.urn, Findings())
        name = lookup(namespace.props, "metadata", "name")
        if name is UNKNOWN:
            found.unknown.append("metadata.name")
            continue
        in_namespace = [v for v in views if v.namespace == name]
        for direction in DIRECTIONS:
            if any(v.selects_all_pods and direction in v.directions for v in in_namespace):
                continue
            if undecided:
                found.unknown += [f"{describe(r.resource_type, r.name, r.props)}" for r in undecided]
                continue
            found.violations.append(
                f"no NetworkPolicy denies {direction.lower()} by default: none in namespace {name!r} selects every "
                f"pod (podSelector: {{}}) with {direction} in its policyTypes"
            )
        for policy in in_namespace:
            for direction in sorted(policy.allows_everything):
                results.setdefault(policy.resource.urn, Findings()).violations.append(
                    f"an {direction.lower()} rule with no peers and no ports allows all {direction.lower()} traffic, "
                    f"undoing the default deny of site namespace {name!r}"
                )
    return results
