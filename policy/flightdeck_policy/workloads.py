"""Pod specs inside workload objects and the security rules over them.

Field semantics from the Kubernetes API reference (core/v1 PodSpec, SecurityContext,
PodSecurityContext) and the Pod Security Standards' *restricted* profile
(kubernetes.io/docs/concepts/security/pod-security-standards): a container's securityContext
overrides the pod's for ``runAsUser``/``runAsNonRoot``; ``allowPrivilegeEscalation`` defaults to
true, so only an explicit ``false`` counts; only ``NET_BIND_SERVICE`` may be added.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from flightdeck_policy.findings import Findings
from flightdeck_policy.images import image_problem
from flightdeck_policy.objects import kubernetes_kind
from flightdeck_policy.values import UNKNOWN, dotted, integer, items, lookup, mapping, text

Path = tuple[str | int, ...]

# Where each workload kind keeps its pod spec (group, kind) -> path.
POD_SPEC_PATHS: dict[tuple[str, str], Path] = {
    ("core", "Pod"): ("spec",),
    ("core", "PodTemplate"): ("template", "spec"),
    ("core", "ReplicationController"): ("spec", "template", "spec"),
    ("apps", "Deployment"): ("spec", "template", "spec"),
    ("apps", "StatefulSet"): ("spec", "template", "spec"),
    ("apps", "DaemonSet"): ("spec", "template", "spec"),
    ("apps", "ReplicaSet"): ("spec", "template", "spec"),
    ("batch", "Job"): ("spec", "template", "spec"),
    ("batch", "CronJob"): ("spec", "jobTemplate", "spec", "template", "spec"),
}
CONTAINER_LISTS = ("initContainers", "containers", "ephemeralContainers")
ALLOWED_ADDED_CAPABILITIES = frozenset({"NET_BIND_SERVICE"})
HOST_NAMESPACES = {
    "hostNetwork": "the node's network namespace",
    "hostPID": "the node's process namespace",
    "hostIPC": "the node's IPC namespace",
}

# Images a custom resource runs, for the operators flightdeck drives (group, kind) -> paths.
# An absent spec.image means the operator's own default, pinned by the operator's version.
CUSTOM_RESOURCE_IMAGES: dict[tuple[str, str], list[Path]] = {
    ("k8s.mariadb.com", "MariaDB"): [("spec", "image")],
}


@dataclass(frozen=True)
class Container:
    name: str
    spec: dict[str, object]
    path: Path

    @property
    def label(self) -> str:
        return f"container {self.name!r}" if self.name else f"container at {dotted(self.path)}"


@dataclass(frozen=True)
class PodSpec:
    spec: object  # a dict, or UNKNOWN
    path: Path


def pod_spec(resource_type: str, props: object) -> PodSpec | None:
    """The pod spec of a workload object, or None when the resource runs no pods itself."""
    kind = kubernetes_kind(resource_type)
    path = POD_SPEC_PATHS.get((kind.group, kind.kind)) if kind else None
    if path is None:
        return None
    return PodSpec(lookup(props, *path), path)


def _containers(pod: PodSpec, found: Findings) -> list[Container]:
    if pod.spec is UNKNOWN:
        found.unknown.append(dotted(pod.path))
        return []
    out = []
    for list_name in CONTAINER_LISTS:
        listed = lookup(pod.spec, list_name)
        if listed is UNKNOWN:
            found.unknown.append(dotted((*pod.path, list_name)))
            continue
        for index, container in enumerate(items(listed)):
            path = (*pod.path, list_name, index)
            if container is UNKNOWN:
                found.unknown.append(dotted(path))
                continue
            out.append(Container(text(lookup(container, "name")) or "", mapping(container), path))
    return out


def _read(found: Findings, base: Path, value: object, *path: str | int) -> object:
    """``value[path]``, noting the path when it is unknown (then it reads as None)."""
    result = lookup(value, *path)
    if result is UNKNOWN:
        found.unknown.append(dotted((*base, *path)))
        return None
    return result


def check_privileged(pod: PodSpec) -> Findings:
    found = Findings()
    for container in _containers(pod, found):
        if _read(found, container.path, container.spec, "securityContext", "privileged") is True:
            found.violations.append(f"{container.label} runs privileged (securityContext.privileged: true)")
        added = _read(found, container.path, container.spec, "securityContext", "capabilities", "add")
        for index, capability in enumerate(items(added)):
            if capability is UNKNOWN:
                found.unknown.append(dotted((*container.path, "securityContext", "capabilities", "add", index)))
                continue
            name = str(capability).upper().removeprefix("CAP_")
            if name not in ALLOWED_ADDED_CAPABILITIES:
                found.violations.append(f"{container.label} adds capability {name}")
    return found


def check_non_root(pod: PodSpec) -> Findings:
    found = Findings()
    containers = _containers(pod, found)
    pod_context = lookup(pod.spec, "securityContext")
    for container in containers:
        context = lookup(container.spec, "securityContext")
        # The container's own setting wins over the pod's (core/v1 SecurityContext).
        user = _effective(context, pod_context, "runAsUser")
        non_root = _effective(context, pod_context, "runAsNonRoot")
        if UNKNOWN in (user, non_root):
            found.unknown.append(dotted((*container.path, "securityContext")))
        elif integer(user) == 0:
            found.violations.append(f"{container.label} runs as root (runAsUser: 0)")
        elif (integer(user) or 0) <= 0 and non_root is not True:
            found.violations.append(
                f"{container.label} may run as root: neither runAsNonRoot: true nor a non-zero runAsUser is set, "
                "so the image's user decides"
            )
    return found


def _effective(container_context: object, pod_context: object, key: str) -> object:
    own = lookup(container_context, key)
    return own if own is not None else lookup(pod_context, key)


def check_privilege_escalation(pod: PodSpec) -> Findings:
    found = Findings()
    for container in _containers(pod, found):
        allowed = lookup(container.spec, "securityContext", "allowPrivilegeEscalation")
        if allowed is UNKNOWN:
            found.unknown.append(dotted((*container.path, "securityContext", "allowPrivilegeEscalation")))
        elif allowed is True:
            found.violations.append(f"{container.label} allows privilege escalation (allowPrivilegeEscalation: true)")
        elif allowed is not False:
            found.violations.append(
                f"{container.label} does not set allowPrivilegeEscalation: false (Kubernetes allows it by default)"
            )
    return found


def check_host_namespaces(pod: PodSpec) -> Findings:
    found = Findings()
    containers = _containers(pod, found)
    if pod.spec is UNKNOWN:
        return found
    for field, what in HOST_NAMESPACES.items():
        if _read(found, pod.path, pod.spec, field) is True:
            found.violations.append(f"the pod shares {what} ({field}: true)")
    for container in containers:
        ports = _read(found, container.path, container.spec, "ports")
        for index, port in enumerate(items(ports)):
            host_port = integer(_read(found, (*container.path, "ports", index), port, "hostPort"))
            if host_port:
                found.violations.append(f"{container.label} binds host port {host_port} (hostPort)")
    return found


def check_host_path(pod: PodSpec) -> Findings:
    found = Findings()
    if pod.spec is UNKNOWN:
        found.unknown.append(dotted(pod.path))
        return found
    volumes = _read(found, pod.path, pod.spec, "volumes")
    for index, volume in enumerate(items(volumes)):
        host_path = _read(found, (*pod.path, "volumes", index), volume, "hostPath")
        if host_path is not None:
            name = text(lookup(volume, "name")) or f"#{index}"
            where = text(lookup(host_path, "path")) or "?"
            found.violations.append(f"volume {name!r} mounts the node's path {where} (hostPath)")
    return found


def _image_findings(found: Findings, label: str, image: object, path: Path) -> None:
    if image is UNKNOWN:
        found.unknown.append(dotted(path))
    elif not isinstance(image, str):
        found.violations.append(f"{label} has no image")
    elif (problem := image_problem(image)) is not None:
        found.violations.append(f"{label} {problem}")


def check_pod_images(pod: PodSpec) -> Findings:
    found = Findings()
    for container in _containers(pod, found):
        _image_findings(found, container.label, container.spec.get("image"), (*container.path, "image"))
    return found


def check_custom_resource_images(resource_type: str, props: object) -> Findings | None:
    """The images an operator-managed resource asks for; None when the type names no image."""
    kind = kubernetes_kind(resource_type)
    paths = CUSTOM_RESOURCE_IMAGES.get((kind.group, kind.kind)) if kind else None
    if paths is None:
        return None
    found = Findings()
    for path in paths:
        image = lookup(props, *path)
        if image is not None:
            _image_findings(found, dotted(path), image, path)
    return found


PodCheck = Callable[[PodSpec], Findings]
