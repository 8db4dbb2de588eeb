"""The rules as pulumi-policy policies: resource rules per object, stack rules over the whole stack.

Every policy is mandatory: a violation fails ``pulumi preview`` and stops ``pulumi up`` before
the offending resource is created or changed (resource rules) or fails the update at its end
(stack rules; the engine runs them once all resources are registered). A value that depends on
another resource's output is unknown during a preview; a rule then reports what it could judge
and, when that was nothing, hands the unknown to pulumi-policy, which reports "can't run policy
... during preview" as advisory; the same rule runs again on ``up`` with the value known.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence

import pulumi
from pulumi_policy import (
    EnforcementLevel,
    Policy,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    Severity,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy.proxy import (
    UNKNOWN_ARCHIVE_VALUE,
    UNKNOWN_ARRAY_VALUE,
    UNKNOWN_ASSET_VALUE,
    UNKNOWN_BOOLEAN_VALUE,
    UNKNOWN_NUMBER_VALUE,
    UNKNOWN_OBJECT_VALUE,
    UNKNOWN_STRING_VALUE,
    UnknownValueError,
)

from flightdeck_policy import workloads
from flightdeck_policy.disruption import check_disruption_budgets
from flightdeck_policy.findings import Findings
from flightdeck_policy.network import check_default_deny
from flightdeck_policy.objects import describe
from flightdeck_policy.retention import check_retention, opted_in_sites
from flightdeck_policy.stack import Stack, StackResource
from flightdeck_policy.values import UNKNOWN

PACK_NAME = "flightdeck"
UNKNOWN_SENTINELS = frozenset(
    {
        UNKNOWN_ARCHIVE_VALUE,
        UNKNOWN_ARRAY_VALUE,
        UNKNOWN_ASSET_VALUE,
        UNKNOWN_BOOLEAN_VALUE,
        UNKNOWN_NUMBER_VALUE,
        UNKNOWN_OBJECT_VALUE,
        UNKNOWN_STRING_VALUE,
    }
)


def to_plain(value: object) -> object:
    """pulumi-policy's proxied properties as dicts and lists, with unknown values as ``UNKNOWN``."""
    if isinstance(value, str):
        return UNKNOWN if value in UNKNOWN_SENTINELS else value
    if isinstance(value, Mapping):
        out: dict[str, object] = {}
        for key in value:
            try:
                out[str(key)] = to_plain(value[key])
            except UnknownValueError:
                out[str(key)] = UNKNOWN
        return out
    if isinstance(value, Sequence) and not isinstance(value, bytes):
        listed: list[object] = []
        for index in range(len(value)):
            try:
                listed.append(to_plain(value[index]))
            except UnknownValueError:
                listed.append(UNKNOWN)
        return listed
    return value


def _defer_unknowns(found: Findings, reported: bool) -> None:
    """Nothing to report but something unread: let pulumi-policy mark the rule as not run yet."""
    if found.unknown and not reported:
        raise UnknownValueError(UNKNOWN_STRING_VALUE, [found.unknown[0]])


ResourceCheck = Callable[[str, object], Findings | None]


def _resource_validation(check: ResourceCheck) -> Callable[[ResourceValidationArgs, ReportViolation], None]:
    def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
        props = to_plain(args.props)
        found = check(args.resource_type, props)
        if found is None:
            return
        where = describe(args.resource_type, args.name, props)
        for violation in found.violations:
            report_violation(f"{where}: {violation}", None)
        _defer_unknowns(found, bool(found.violations))

    return validate


def _pod_check(check: workloads.PodCheck) -> ResourceCheck:
    def run(resource_type: str, props: object) -> Findings | None:
        pod = workloads.pod_spec(resource_type, props)
        return None if pod is None else check(pod)

    return run


def _images(resource_type: str, props: object) -> Findings | None:
    pod = workloads.pod_spec(resource_type, props)
    if pod is not None:
        return workloads.check_pod_images(pod)
    return workloads.check_custom_resource_images(resource_type, props)


def stack_of(args: StackValidationArgs) -> Stack:
    resources = []
    for resource in args.resources:
        parent = resource.parent.urn if resource.parent is not None else resource.opts.parent
        resources.append(
            StackResource(
                urn=resource.urn,
                resource_type=resource.resource_type,
                name=resource.name,
                props=to_plain(resource.props),
                protect=bool(resource.opts.protect),
                parent=parent or None,
            )
        )
    return Stack(resources)


StackCheck = Callable[[Stack], dict[str, Findings]]


def _stack_validation(check: StackCheck) -> Callable[[StackValidationArgs, ReportViolation], None]:
    def validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
        stack = stack_of(args)
        results = check(stack)
        merged = Findings()
        for urn, found in results.items():
            resource = stack.by_urn[urn]
            where = describe(resource.resource_type, resource.name, resource.props)
            for violation in found.violations:
                report_violation(f"{where}: {violation}", urn)
            merged.extend(found)
        _defer_unknowns(merged, bool(merged.violations))

    return validate


def stack_opted_in_sites() -> frozenset[str]:
    """Sites whose stack config sets ``dropDataOnDelete: true``.

    The language host hands a policy pack the stack's config (``PULUMI_CONFIG``, read by
    pulumi-policy before each analysis); only ``flightdeck:sites`` is read, never a secret.
    A config that cannot be read opts nothing in, so a marked-for-deletion object then fails.
    """
    try:
        sites = pulumi.Config("flightdeck").get_object("sites")
    except (json.JSONDecodeError, pulumi.ConfigTypeError):
        return frozenset()
    return opted_in_sites(sites)


def all_policies(opted_in: Callable[[], frozenset[str]] = stack_opted_in_sites) -> list[Policy]:
    def retention(stack: Stack) -> dict[str, Findings]:
        return check_retention(stack, opted_in())

    def resource(
        name: str, description: str, check: ResourceCheck, severity: Severity, remediation: str
    ) -> ResourceValidationPolicy:
        return ResourceValidationPolicy(
            name=name,
            description=description,
            validate=_resource_validation(check),
            enforcement_level=EnforcementLevel.MANDATORY,
            severity=severity,
            remediation_steps=remediation,
        )

    def stack(name: str, description: str, check: StackCheck, severity: Severity, remediation: str) -> Policy:
        return StackValidationPolicy(
            name=name,
            description=description,
            validate=_stack_validation(check),
            enforcement_level=EnforcementLevel.MANDATORY,
            severity=severity,
            remediation_steps=remediation,
        )

    return [
        resource(
            "no-privileged-containers",
            "No container runs privileged or adds a capability other than NET_BIND_SERVICE.",
            _pod_check(workloads.check_privileged),
            Severity.CRITICAL,
            "Remove securityContext.privileged and capabilities.add; drop ALL capabilities.",
        ),
        resource(
            "no-root-containers",
            "Every container runs as a non-root user (runAsNonRoot: true or a non-zero runAsUser).",
            _pod_check(workloads.check_non_root),
            Severity.HIGH,
            "Set runAsNonRoot: true and runAsUser to the image's unprivileged user (pod or container level).",
        ),
        resource(
            "no-privilege-escalation",
            "Every container sets allowPrivilegeEscalation: false.",
            _pod_check(workloads.check_privilege_escalation),
            Severity.HIGH,
            "Set securityContext.allowPrivilegeEscalation: false on every container.",
        ),
        resource(
            "no-host-namespaces",
            "No pod uses the node's network, process or IPC namespace, or binds a host port.",
            _pod_check(workloads.check_host_namespaces),
            Severity.CRITICAL,
            "Remove hostNetwork, hostPID, hostIPC and hostPort; expose pods through a Service.",
        ),
        resource(
            "no-host-path-volumes",
            "No pod mounts a directory of the node (hostPath volume).",
            _pod_check(workloads.check_host_path),
            Severity.CRITICAL,
            "Use a PersistentVolumeClaim, ConfigMap, Secret or emptyDir instead of hostPath.",
        ),
        resource(
            "pinned-images",
            "Every image has a tag other than latest, or a digest.",
            _images,
            Severity.MEDIUM,
            "Pin the image to a version tag (wordpress:6.8-php8.3-apache) or a digest (@sha256:...).",
        ),
        stack(
            "site-namespaces-default-deny",
            "Every site namespace denies ingress and egress by default (a NetworkPolicy with podSelector: {} "
            "for each direction) and no policy there allows all traffic.",
            check_default_deny,
            Severity.HIGH,
            "Add NetworkPolicies with podSelector: {} and policyTypes [Ingress] and [Egress] to the site "
            "namespace; allow only the peers the site needs.",
        ),
        stack(
            "data-is-retained",
            "Claims, namespaces, databases, database backups, the MariaDB and CephFilesystem resources (and any "
            "Velero Schedule that owns its backups) are protected or retained unless their site sets "
            "dropDataOnDelete: true.",
            retention,
            Severity.CRITICAL,
            "Create data objects through components/data_retention.py (retain_on_delete plus the "
            "flightdeck.io/on-delete annotation) or protect them; to delete a site's data on purpose, set its "
            "dropDataOnDelete: true first.",
        ),
        stack(
            "replicated-deployments-have-pdb",
            "Every Deployment with 2 or more replicas has exactly one PodDisruptionBudget selecting its pods, "
            "and that budget lets a node drain evict at least one pod.",
            check_disruption_budgets,
            Severity.HIGH,
            "Add a policy/v1 PodDisruptionBudget selecting the Deployment's pod labels (and no Job's or CronJob's "
            "pods) with maxUnavailable: 1.",
        ),
    ]
