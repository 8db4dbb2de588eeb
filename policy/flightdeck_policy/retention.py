"""Data outlives its removal from the program unless its site explicitly opted in.

The policy cannot see ``retain_on_delete`` (the analyzer protocol's AnalyzerResourceOptions has
``protect`` but no ``retainOnDelete``; ``pkg/resource/deploy/step_generator.go`` builds them
from the state without it). What it can see:

- ``protect`` (the MariaDB resource, the CephFilesystem);
- on data-bearing Kubernetes objects, the ``flightdeck.io/on-delete`` annotation that the
  program sets from the same decision as ``retain_on_delete`` (``components/data_retention.py``);
- on a site database, the ``drop_on_delete`` input: the SQL provider drops a database only with
  it (``components/sql``), whatever the resource options say.

A Velero Schedule holds no data itself, but with ``spec.useOwnerReferencesInBackup: true`` it
owns every Backup it creates, and "when schedule is deleted, backups will be deleted too"
(Velero's Schedule API type reference); the program sets it to false
(``components/backup_schedules.py``), so such a Schedule is judged like a data object.

``delete`` is accepted only for a resource of a site whose stack config sets
``dropDataOnDelete: true``: the opt-in is read from the stack config, not from the program.
"""

from __future__ import annotations

from flightdeck_policy.findings import Findings
from flightdeck_policy.objects import kubernetes_kind
from flightdeck_policy.stack import Stack, StackResource
from flightdeck_policy.values import UNKNOWN, items, lookup

ON_DELETE_ANNOTATION = "flightdeck.io/on-delete"
RETAIN = "retain"
DELETE = "delete"
SQL_DATABASE = "pulumi-python:dynamic/mysql:Database"
VELERO_SCHEDULE = "kubernetes:velero.io/v1:Schedule"
OWNS_BACKUPS = ("spec", "useOwnerReferencesInBackup")
# (group, kind) of every Kubernetes object that holds data or whose deletion deletes data.
KUBERNETES_DATA = frozenset(
    {
        ("core", "PersistentVolumeClaim"),
        ("core", "Namespace"),  # deleting it deletes every claim in it
        ("k8s.mariadb.com", "MariaDB"),
        ("k8s.mariadb.com", "Backup"),  # mariadb-operator deletes a Backup's dumps with it
        ("ceph.rook.io", "CephFilesystem"),
    }
)


def is_data(resource: StackResource) -> bool:
    """Whether deleting the resource deletes data; a Schedule whose flag is unknown counts (it is
    then left to ``up``)."""
    if resource.resource_type == SQL_DATABASE:
        return True
    if resource.resource_type == VELERO_SCHEDULE:
        return lookup(resource.props, *OWNS_BACKUPS) in (True, UNKNOWN)
    kind = kubernetes_kind(resource.resource_type)
    return kind is not None and (kind.group, kind.kind) in KUBERNETES_DATA


def opted_in_sites(sites: object) -> frozenset[str]:
    """Names of the sites whose ``flightdeck:sites`` entry sets ``dropDataOnDelete: true``."""
    return frozenset(str(lookup(site, "name")) for site in items(sites) if lookup(site, "dropDataOnDelete") is True)


def _decision(resource: StackResource) -> object:
    if resource.resource_type == SQL_DATABASE:
        drop = lookup(resource.props, "drop_on_delete")
        if drop is UNKNOWN:
            return UNKNOWN
        return DELETE if drop is True else RETAIN  # the provider's default keeps the database
    return lookup(resource.props, "metadata", "annotations", ON_DELETE_ANNOTATION)


def check_retention(stack: Stack, opted_in: frozenset[str]) -> dict[str, Findings]:
    """Findings by URN for every data resource."""
    results: dict[str, Findings] = {}
    for resource in stack.resources:
        if not is_data(resource) or resource.protect:
            continue
        found = results.setdefault(resource.urn, Findings())
        if resource.resource_type == VELERO_SCHEDULE and lookup(resource.props, *OWNS_BACKUPS) is UNKNOWN:
            found.unknown.append("spec.useOwnerReferencesInBackup")
            continue
        decision = _decision(resource)
        site = stack.site_of(resource)
        if decision is UNKNOWN:
            found.unknown.append(f"metadata.annotations[{ON_DELETE_ANNOTATION!r}]")
        elif decision == RETAIN:
            continue
        elif decision is None and resource.resource_type == VELERO_SCHEDULE:
            found.violations.append(
                "sets spec.useOwnerReferencesInBackup: true, so Velero makes it the owner of every backup it "
                "creates and deleting it deletes them; set it to false"
            )
        elif decision is None:
            found.violations.append(
                f"is neither protected nor annotated {ON_DELETE_ANNOTATION}: {RETAIN}, so removing it from the "
                "program would delete its data"
            )
        elif decision != DELETE:
            found.violations.append(f"has {ON_DELETE_ANNOTATION}: {decision!r} (expected {RETAIN} or {DELETE})")
        elif site is None:
            found.violations.append(
                "would be deleted with its data when removed from the program, but it belongs to no site, so no "
                "dropDataOnDelete can opt it in"
            )
        elif site not in opted_in:
            found.violations.append(
                f"would be deleted with its data when removed from the program, but site {site!r} does not set "
                "dropDataOnDelete: true in the stack config"
            )
    return results
