"""pulumi-policy arguments built from what the program really registers (the dry renderer).

Properties go through the same path as in the analyzer (``_PolicyAnalyzerServicer.Analyze``):
the gRPC struct the SDK sent -> ``deserialize_properties`` -> ``unknown_checking_proxy``. Stack
arguments carry every registration, components included, with parents linked, as the engine's
``AnalyzeResources`` sends them (the mocks' outputs are the inputs).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from google.protobuf import json_format
from pulumi_policy import (
    Policy,
    PolicyCustomTimeouts,
    PolicyResource,
    PolicyResourceOptions,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy.deserialize import deserialize_properties
from pulumi_policy.proxy import unknown_checking_proxy

from flightdeck_policy.policies import all_policies
from tests.unit.harness import Deployment, Registration


def plain_props(registration: Registration) -> dict[str, Any]:
    return deserialize_properties(json_format.MessageToDict(registration.request.object))


def options(registration: Registration) -> PolicyResourceOptions:
    request = registration.request
    return PolicyResourceOptions(
        protect=bool(request.protect),
        ignore_changes=list(request.ignoreChanges),
        delete_before_replace=bool(request.deleteBeforeReplace) if request.deleteBeforeReplaceDefined else None,
        aliases=[],
        custom_timeouts=PolicyCustomTimeouts(0, 0, 0),  # no rule reads them
        additional_secret_outputs=list(request.additionalSecretOutputs),
        parent=str(request.parent) or None,
    )


@dataclass
class Resource:
    """One resource as a policy sees it; ``props`` may be edited to build a violating variant."""

    resource_type: str
    name: str
    urn: str
    props: dict[str, Any]
    opts: PolicyResourceOptions
    parent: str | None = None

    @classmethod
    def of(cls, registration: Registration) -> Resource:
        return cls(
            registration.typ,
            registration.name,
            registration.urn,
            plain_props(registration),
            options(registration),
            str(registration.request.parent) or None,
        )

    def args(self) -> ResourceValidationArgs:
        return ResourceValidationArgs(
            self.resource_type, unknown_checking_proxy(copy.deepcopy(self.props)), self.urn, self.name, self.opts, None
        )


@dataclass
class Resources:
    items: list[Resource] = field(default_factory=list)

    @classmethod
    def of(cls, deployment: Deployment) -> Resources:
        return cls([Resource.of(r) for r in deployment.registrations])

    def named(self, name: str) -> Resource:
        matches = [r for r in self.items if r.name == name]
        assert len(matches) == 1, f"{len(matches)} resources named {name!r}"
        return matches[0]

    def of_type(self, resource_type: str) -> list[Resource]:
        return [r for r in self.items if r.resource_type == resource_type]

    def without(self, predicate: Callable[[Resource], bool]) -> Resources:
        return Resources([r for r in self.items if not predicate(r)])

    def plus(self, *extra: Resource) -> Resources:
        return Resources([*self.items, *extra])

    def stack_args(self) -> StackValidationArgs:
        built = {
            r.urn: PolicyResource(
                r.resource_type,
                unknown_checking_proxy(copy.deepcopy(r.props)),
                r.urn,
                r.name,
                r.opts,
                None,
                None,
                [],
                {},
            )
            for r in self.items
        }
        for r in self.items:
            if r.parent in built:
                built[r.urn].parent = built[r.parent]
        return StackValidationArgs(list(built.values()))


@dataclass(frozen=True)
class Violation:
    policy: str
    message: str
    urn: str | None


def policies(opted_in: Iterable[str] = ()) -> dict[str, Policy]:
    sites = frozenset(opted_in)
    return {p.name: p for p in all_policies(opted_in=lambda: sites)}


def run_resource(policy: Policy, resource: Resource) -> list[Violation]:
    assert isinstance(policy, ResourceValidationPolicy)
    found: list[Violation] = []
    policy.validate(resource.args(), lambda message, urn=None: found.append(Violation(policy.name, message, urn)))
    return found


def run_stack(policy: Policy, resources: Resources) -> list[Violation]:
    assert isinstance(policy, StackValidationPolicy)
    found: list[Violation] = []
    policy.validate(
        resources.stack_args(), lambda message, urn=None: found.append(Violation(policy.name, message, urn))
    )
    return found


def run_all(resources: Resources, opted_in: Iterable[str] = ()) -> list[Violation]:
    """Every policy of the pack over every resource, as ``pulumi preview --policy-pack`` would."""
    found: list[Violation] = []
    for policy in policies(opted_in).values():
        if isinstance(policy, ResourceValidationPolicy):
            for resource in resources.items:
                found += run_resource(policy, resource)
        else:
            found += run_stack(policy, resources)
    return found


def child(parent: Resource, resource_type: str, name: str, props: dict[str, Any], *, protect: bool = False) -> Resource:
    """A resource registered under ``parent``, with the URN the engine would give it."""
    stack_part, project, parent_types, _ = parent.urn.removeprefix("urn:pulumi:").split("::")
    urn = f"urn:pulumi:{stack_part}::{project}::{parent_types.split('$')[-1]}${resource_type}::{name}"
    opts = PolicyResourceOptions(
        protect=protect,
        ignore_changes=[],
        delete_before_replace=None,
        aliases=[],
        custom_timeouts=PolicyCustomTimeouts(0, 0, 0),
        additional_secret_outputs=[],
        parent=parent.urn,
    )
    return Resource(resource_type, name, urn, props, opts, parent.urn)
