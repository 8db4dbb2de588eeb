"""Which Kubernetes object a resource is, and how a message names it."""

from __future__ import annotations

from dataclasses import dataclass

from flightdeck_policy.values import UNKNOWN, lookup, text


@dataclass(frozen=True)
class KubernetesKind:
    group: str  # "core" for the core API group, as in pulumi-kubernetes type tokens
    version: str
    kind: str


def kubernetes_kind(resource_type: str) -> KubernetesKind | None:
    """``kubernetes:apps/v1:Deployment`` -> apps, v1, Deployment; None for anything else."""
    parts = resource_type.split(":")
    if len(parts) != 3 or parts[0] != "kubernetes" or "/" not in parts[1]:
        return None
    group, version = parts[1].rsplit("/", 1)
    return KubernetesKind(group, version, parts[2])


def object_name(props: object) -> str:
    """``namespace/name`` (or ``name``) from the metadata; ``?`` for a part unknown during preview."""

    def part(key: str) -> str | None:
        value = lookup(props, "metadata", key)
        return "?" if value is UNKNOWN else text(value)

    name, namespace = part("name"), part("namespace")
    if name is None:
        return ""
    return f"{namespace}/{name}" if namespace else name


def describe(resource_type: str, resource_name: str, props: object) -> str:
    """How violation messages name a resource: what the cluster calls it and what Pulumi calls it."""
    kind = kubernetes_kind(resource_type)
    if kind is None:
        return f"{resource_type} {resource_name!r}"
    name = object_name(props)
    return f"{kind.kind} {name} (resource {resource_name!r})" if name else f"{kind.kind} (resource {resource_name!r})"
