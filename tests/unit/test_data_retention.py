"""The retention decision the policy pack reads (an annotation) is the one Pulumi acts on.

The policy cannot see ``retain_on_delete``, so ``components/data_retention.py`` sets it and the
``flightdeck.io/on-delete`` annotation together; these tests hold the program to that over the
real stack files and over a site that opts in.
"""

from __future__ import annotations

import pytest

from components.data_retention import DELETE, ON_DELETE_ANNOTATION, RETAIN
from tests.unit.harness import Deployment, Registration, deploy, minimal_config, stack_file_config

KUBERNETES_DATA = (
    "kubernetes:core/v1:PersistentVolumeClaim",
    "kubernetes:core/v1:Namespace",
    "kubernetes:k8s.mariadb.com/v1alpha1:Backup",
    "kubernetes:k8s.mariadb.com/v1alpha1:MariaDB",
    "kubernetes:ceph.rook.io/v1:CephFilesystem",
)
SQL_DATABASE = "pulumi-python:dynamic/mysql:Database"


def _annotation(registration: Registration) -> str | None:
    return (registration.metadata.get("annotations") or {}).get(ON_DELETE_ANNOTATION)


def _check(deployment: Deployment, dropping: set[str]) -> int:
    """Every data object is protected, or its annotation says what retain_on_delete does."""
    checked = 0
    for registration in deployment.registrations:
        if registration.typ in KUBERNETES_DATA and not registration.protect:
            site = (registration.metadata.get("labels") or {}).get("app.kubernetes.io/instance")
            expected = DELETE if site in dropping else RETAIN
            assert _annotation(registration) == expected, registration.name
            assert registration.retain_on_delete is (expected == RETAIN), registration.name
            checked += 1
        elif registration.typ in KUBERNETES_DATA:
            assert registration.retain_on_delete, registration.name  # protected and retained
        elif registration.typ == SQL_DATABASE:
            drop = registration.inputs["drop_on_delete"]
            assert registration.retain_on_delete is (not drop), registration.name
            checked += 1
    return checked


@pytest.mark.parametrize("stack", ["local", "staging", "prod"])
def test_real_stacks_mark_what_they_keep(stack: str) -> None:
    config = stack_file_config(stack)
    dropping = {site["name"] for site in config["sites"] if site.get("dropDataOnDelete")}
    deployment = deploy(config, stack=stack)
    # per site: namespace, claim, database, database Backup; plus the MariaDB namespace
    assert _check(deployment, dropping) == 4 * len(config["sites"]) + 1


def test_an_opted_in_site_is_marked_for_deletion_and_the_others_are_not() -> None:
    config = minimal_config(storage={"rook": {}})
    config["sites"][1]["dropDataOnDelete"] = True
    deployment = deploy(config)
    assert _check(deployment, {"wiki"}) == 9
    assert _annotation(deployment.named("wiki-files-claim")) == DELETE
    assert _annotation(deployment.named("blog-files-claim")) == RETAIN
    assert _annotation(deployment.named("flightdeck-mysql-namespace")) == RETAIN
    assert deployment.named("flightdeck-storage-filesystem").protect
