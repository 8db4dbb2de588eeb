"""data-is-retained: data outlives its removal from the program unless its site opted in."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator

import pulumi
import pytest
from pulumi_policy.proxy import UNKNOWN_STRING_VALUE, UnknownValueError

from flightdeck_policy.policies import stack_of, stack_opted_in_sites
from flightdeck_policy.retention import is_data, opted_in_sites
from tests.unit.policy.policy_args import Resources, child, policies, run_stack

RULE = "data-is-retained"
ANNOTATION = "flightdeck.io/on-delete"
SCHEDULE = "kubernetes:velero.io/v1:Schedule"


def violations(resources: Resources, opted_in: Iterable[str] = ()) -> list[tuple[str, str]]:
    found = run_stack(policies(opted_in)[RULE], resources)
    return [(v.urn.rsplit("::", 1)[-1] if v.urn else "", v.message) for v in found]


@pytest.mark.parametrize(("stack_name", "opted_in"), [("local", []), ("prod", []), ("staging", ["docs"])])
def test_real_stacks_pass(stack: Callable[[str], Resources], stack_name: str, opted_in: list[str]) -> None:
    assert violations(stack(stack_name), opted_in) == []


DATA_KINDS = ["Backup", "Database", "Namespace", "PersistentVolumeClaim"]  # one of each per site


@pytest.mark.parametrize("stack_name", ["local", "staging", "prod"])
def test_every_data_object_of_the_real_stacks_is_judged(stack: Callable[[str], Resources], stack_name: str) -> None:
    """Each site's namespace, claim, database Backup and database, the MariaDB namespace and the
    (protected) MariaDB; no Velero Schedule owns its backups."""
    resources = stack(stack_name)
    data = stack_of(resources.stack_args())
    judged = [r for r in data.resources if is_data(r)]
    sites = {r.name for r in resources.of_type("flightdeck:site:Site")}
    assert sorted((kind, site) for kind in DATA_KINDS for site in sites) == sorted(
        (r.resource_type.rsplit(":", 1)[-1], data.site_of(r)) for r in judged if data.site_of(r) is not None
    )
    assert sorted(r.name for r in judged if data.site_of(r) is None) == [
        "flightdeck-mysql-mariadb", "flightdeck-mysql-namespace"
    ]  # fmt: skip
    schedules = resources.of_type(SCHEDULE)
    assert len(schedules) == len(sites) and {s.props["spec"]["useOwnerReferencesInBackup"] for s in schedules} == {
        False
    }


def test_a_schedule_that_owns_its_backups_is_data(stack: Callable[[str], Resources]) -> None:
    resources = stack("prod")
    schedule = resources.named("museum-backups-velero")
    schedule.props["spec"]["useOwnerReferencesInBackup"] = True
    assert violations(resources) == [
        ("museum-backups-velero",
         "Schedule velero/site-museum (resource 'museum-backups-velero'): sets spec.useOwnerReferencesInBackup: "
         "true, so Velero makes it the owner of every backup it creates and deleting it deletes them; set it to "
         "false"),
    ]  # fmt: skip
    # Kept like any data object (retain, or delete once the site opted in), it passes.
    schedule.props["metadata"]["annotations"] = {ANNOTATION: "delete"}
    assert [urn for urn, _ in violations(resources)] == ["museum-backups-velero"]
    assert violations(resources, opted_in=["museum"]) == []
    schedule.props["metadata"]["annotations"] = {ANNOTATION: "retain"}
    assert violations(resources) == []
    # Unknown during a preview: judged on up.
    schedule.props["spec"]["useOwnerReferencesInBackup"] = UNKNOWN_STRING_VALUE
    with pytest.raises(UnknownValueError):
        violations(resources)


def test_an_object_without_the_marker_is_named(stack: Callable[[str], Resources]) -> None:
    resources = stack("prod")
    del resources.named("shop-files-claim").props["metadata"]["annotations"]
    del resources.named("flightdeck-mysql-namespace").props["metadata"]["annotations"]
    assert sorted(violations(resources)) == [
        ("flightdeck-mysql-namespace",
         "Namespace mariadb (resource 'flightdeck-mysql-namespace'): is neither protected nor annotated "
         "flightdeck.io/on-delete: retain, so removing it from the program would delete its data"),
        ("shop-files-claim",
         "PersistentVolumeClaim shop/shop-files (resource 'shop-files-claim'): is neither protected nor annotated "
         "flightdeck.io/on-delete: retain, so removing it from the program would delete its data"),
    ]  # fmt: skip


def test_deletion_needs_the_sites_opt_in_from_the_stack_config(stack: Callable[[str], Resources]) -> None:
    staging = stack("staging")  # docs sets dropDataOnDelete: true
    found = violations(staging, opted_in=[])
    assert sorted(urn for urn, _ in found) == ["docs-backups-database", "docs-db-database", "docs-files-claim",
                                               "docs-namespace"]  # fmt: skip
    message = dict(found)["docs-db-database"]
    assert message == (
        "pulumi-python:dynamic/mysql:Database 'docs-db-database': would be deleted with its data when removed from "
        "the program, but site 'docs' does not set dropDataOnDelete: true in the stack config"
    )
    # A program bug that marks another site's data for deletion is caught although the marker is "valid".
    staging.named("shop-files-claim").props["metadata"]["annotations"][ANNOTATION] = "delete"
    assert [urn for urn, _ in violations(staging, opted_in=["docs"])] == ["shop-files-claim"]


def test_a_database_that_would_be_dropped_without_opt_in(stack: Callable[[str], Resources]) -> None:
    resources = stack("prod")
    resources.named("blog-db-database").props["drop_on_delete"] = True
    assert [urn for urn, _ in violations(resources)] == ["blog-db-database"]
    assert violations(resources, opted_in=["blog"]) == []


def test_protection_suffices_and_platform_data_cannot_opt_in(stack: Callable[[str], Resources]) -> None:
    resources = stack("prod")
    mariadb = resources.named("flightdeck-mysql-mariadb")
    assert mariadb.opts.protect and "annotations" in mariadb.props["metadata"]
    mariadb.opts.protect = False
    assert [urn for urn, _ in violations(resources)] == ["flightdeck-mysql-mariadb"]
    resources.named("flightdeck-mysql-namespace").props["metadata"]["annotations"][ANNOTATION] = "delete"
    assert ("flightdeck-mysql-namespace",
            "Namespace mariadb (resource 'flightdeck-mysql-namespace'): would be deleted with its data when removed "
            "from the program, but it belongs to no site, so no dropDataOnDelete can opt it in") in violations(
        resources, opted_in=["shop"])  # fmt: skip


def test_an_unknown_marker_value_is_reported(stack: Callable[[str], Resources]) -> None:
    resources = stack("prod")
    resources.named("shop-files-claim").props["metadata"]["annotations"][ANNOTATION] = "keep"
    assert violations(resources) == [
        ("shop-files-claim", "PersistentVolumeClaim shop/shop-files (resource 'shop-files-claim'): has "
         "flightdeck.io/on-delete: 'keep' (expected retain or delete)"),
    ]  # fmt: skip


def test_a_new_kind_of_data_object_is_caught(stack: Callable[[str], Resources]) -> None:
    resources = stack("local")
    site = resources.named("blog")
    extra = child(site, "kubernetes:core/v1:PersistentVolumeClaim", "blog-uploads",
                  {"metadata": {"name": "uploads", "namespace": "blog"}, "spec": {}})  # fmt: skip
    assert [urn for urn, _ in violations(resources.plus(extra))] == ["blog-uploads"]


def test_a_marker_unknown_during_preview_defers(stack: Callable[[str], Resources]) -> None:
    resources = stack("local")
    resources.named("blog-files-claim").props["metadata"]["annotations"] = UNKNOWN_STRING_VALUE
    with pytest.raises(UnknownValueError):
        violations(resources)


@pytest.fixture
def stack_config() -> Iterator[Callable[[object], None]]:
    def set_sites(sites: object) -> None:
        pulumi.runtime.set_all_config({"flightdeck:sites": sites if isinstance(sites, str) else json.dumps(sites)})

    yield set_sites
    pulumi.runtime.set_all_config({})


def test_the_opt_in_is_read_from_the_stack_config(stack_config: Callable[[object], None]) -> None:
    stack_config([{"name": "a", "dropDataOnDelete": True}, {"name": "b"}, {"name": "c", "dropDataOnDelete": False}])
    assert stack_opted_in_sites() == {"a"}
    stack_config("not json")
    assert stack_opted_in_sites() == frozenset()  # unreadable config opts nothing in
    pulumi.runtime.set_all_config({})
    assert stack_opted_in_sites() == frozenset()
    assert opted_in_sites([{"dropDataOnDelete": "yes", "name": "x"}, "junk"]) == frozenset()
