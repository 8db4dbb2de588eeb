"""The stack as the stack rules see it: every resource with its parent, and which site owns it.

The engine runs stack policies over every resource of the new state, components included, with
their final outputs and parents (pulumi/pulumi ``pkg/resource/deploy/step_generator.go``,
``AnalyzeResources``), so a resource's site is the nearest ``flightdeck:site:Site`` component
above it: that component's Pulumi name is the site's name (``components/platform.py``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

SITE_COMPONENT = "flightdeck:site:Site"


@dataclass(frozen=True)
class StackResource:
    urn: str
    resource_type: str
    name: str
    props: object  # plain data, see values.py
    protect: bool = False
    parent: str | None = None  # the parent's URN


class Stack:
    def __init__(self, resources: Iterable[StackResource]) -> None:
        self.resources = list(resources)
        self.by_urn: Mapping[str, StackResource] = {r.urn: r for r in self.resources}

    def of_type(self, *resource_types: str) -> list[StackResource]:
        return [r for r in self.resources if r.resource_type in resource_types]

    def ancestors(self, resource: StackResource) -> list[StackResource]:
        chain: list[StackResource] = []
        seen = {resource.urn}
        parent = self.by_urn.get(resource.parent or "")
        while parent is not None and parent.urn not in seen:
            chain.append(parent)
            seen.add(parent.urn)
            parent = self.by_urn.get(parent.parent or "")
        return chain

    def site_of(self, resource: StackResource) -> str | None:
        """The name of the site that owns ``resource``, or None for platform-wide resources."""
        for ancestor in self.ancestors(resource):
            if ancestor.resource_type == SITE_COMPONENT:
                return ancestor.name
        return None
