"""`flightdeck restore` on a real kube-apiserver with the real Velero and mariadb-operator CRDs.

The local stack's objects are applied (as in test_platform_on_apiserver.py), a finished Velero
Backup of one site is stored, and the restore runner talks to the API server through the real
``KubernetesCluster``. No operator runs on this control plane, so a small stand-in sets the
status fields the operators would set (Velero's ``status.phase``; mariadb-operator's
``Complete`` condition through the status subresource). What this proves: a live site is
refused without ``--force`` and nothing is created; with ``--force`` exactly one Restore of each
kind is created, accepted by the real CRD schemas, naming only that site, and the site's
Deployment is scaled to 0 and back; ``--into`` creates only the Velero Restore.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from kubernetes import client
from kubernetes.dynamic import DynamicClient

from flightdeck.restore import KubernetesCluster, Runner
from flightdeck.restore_plan import RestoreError, RestoreRequest, site_sources
from tests.e2e.test_platform_on_apiserver import (
    OPERATOR_NAMESPACES,
    apply,
    ensure_namespaces,
    kubernetes_objects,
    wait_for,
)
from tools.controlplane import ControlPlane, default_crds_dir
from tools.render_stack import deploy, stack_file_config

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(1800)]


@pytest.fixture(scope="module")
def stack(control_plane: ControlPlane, dynamic: DynamicClient) -> dict[str, Any]:
    asyncio.set_event_loop(asyncio.new_event_loop())
    deployment = deploy(stack_file_config("local"), stack="local", secrets={"kubeconfig": "unused"})
    ensure_namespaces(dynamic, OPERATOR_NAMESPACES)
    for obj in kubernetes_objects(deployment):
        apply(dynamic, obj)
    custom = client.CustomObjectsApi(control_plane.api_client())
    for site in ("blog", "wiki"):
        name = f"site-{site}-20261130013000"
        backup = {
            "apiVersion": "velero.io/v1",
            "kind": "Backup",
            "metadata": {"name": name, "namespace": "velero", "labels": {"velero.io/schedule-name": f"site-{site}"}},
            "spec": {"includedNamespaces": [site], "storageLocation": "default"},
        }
        custom.create_namespaced_custom_object("velero.io", "v1", "velero", "backups", backup)
        # Velero's CRDs have no status subresource: the status is part of the object.
        custom.patch_namespaced_custom_object(
            "velero.io", "v1", "velero", "backups", name,
            {"status": {"phase": "Completed", "startTimestamp": "2026-11-30T01:30:00Z",
                        "completionTimestamp": "2026-11-30T01:41:00Z"}},
        )  # fmt: skip
    outputs: dict[str, Any] = deployment.outputs["sites"]
    return outputs


@pytest.fixture(scope="module")
def control_plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlane]:
    if default_crds_dir() is None:
        if os.environ.get("CI") == "true":
            pytest.fail("e2e prerequisite missing in CI: no CRD folder")
        pytest.skip("no CRD folder (set FLIGHTDECK_CRDS_DIR or provide ../shared/crds)")
    plane = ControlPlane(tmp_path_factory.mktemp("controlplane"))
    plane.start()
    try:
        yield plane
    finally:
        plane.stop()


@pytest.fixture(scope="module")
def dynamic(control_plane: ControlPlane) -> DynamicClient:
    return DynamicClient(control_plane.api_client())


class OperatorStandIn:
    """Marks every new Restore finished, as Velero and mariadb-operator would."""

    def __init__(self, api: client.CustomObjectsApi) -> None:
        self.api = api
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> OperatorStandIn:
        self.thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop.set()
        self.thread.join(10)

    def _run(self) -> None:
        while not self.stop.wait(0.5):
            for item in self.api.list_namespaced_custom_object("velero.io", "v1", "velero", "restores")["items"]:
                if not (item.get("status") or {}).get("phase"):
                    self.api.patch_namespaced_custom_object(
                        "velero.io", "v1", "velero", "restores", item["metadata"]["name"],
                        {"status": {"phase": "Completed", "warnings": 0, "errors": 0}},
                    )  # fmt: skip
            for item in self.api.list_namespaced_custom_object("k8s.mariadb.com", "v1alpha1", "mariadb", "restores")[
                "items"
            ]:
                if not (item.get("status") or {}).get("conditions"):
                    condition = {
                        "type": "Complete", "status": "True", "reason": "JobComplete", "message": "Success",
                        "lastTransitionTime": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                    }  # fmt: skip
                    self.api.patch_namespaced_custom_object_status(
                        "k8s.mariadb.com", "v1alpha1", "mariadb", "restores", item["metadata"]["name"],
                        {"status": {"conditions": [condition]}},
                    )  # fmt: skip


def _restores(api: client.CustomObjectsApi) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    velero = api.list_namespaced_custom_object("velero.io", "v1", "velero", "restores")["items"]
    database = api.list_namespaced_custom_object("k8s.mariadb.com", "v1alpha1", "mariadb", "restores")["items"]
    return velero, database


def _runner(control_plane: ControlPlane) -> Runner:
    cluster = KubernetesCluster(control_plane.kubeconfig.read_text(), None)
    return Runner(cluster, timeout=300, poll=1)


def test_a_live_site_is_refused_without_force(stack: dict[str, Any], control_plane: ControlPlane) -> None:
    apps = client.AppsV1Api(control_plane.api_client())
    wait_for("blog's Deployment", lambda: apps.read_namespaced_deployment("blog", "blog"))
    with pytest.raises(RestoreError, match="is live"):
        _runner(control_plane).run(RestoreRequest("blog"), site_sources(stack, "blog"))
    velero, database = _restores(client.CustomObjectsApi(control_plane.api_client()))
    assert velero == [] and database == []


def test_force_creates_one_restore_of_each_kind_for_that_site_only(
    stack: dict[str, Any], control_plane: ControlPlane
) -> None:
    api = client.CustomObjectsApi(control_plane.api_client())
    apps = client.AppsV1Api(control_plane.api_client())
    with OperatorStandIn(api):
        report = _runner(control_plane).run(RestoreRequest("blog", force=True), site_sources(stack, "blog"))
    assert report.ok, report.to_dict()
    velero, database = _restores(api)
    assert len(velero) == 1 and len(database) == 1
    assert velero[0]["spec"]["includedNamespaces"] == ["blog"]
    assert velero[0]["spec"]["backupName"] == "site-blog-20261130013000"
    assert velero[0]["spec"]["existingResourcePolicy"] == "update"
    assert database[0]["spec"]["database"] == "blog"
    assert database[0]["spec"]["backupRef"] == {"name": "site-blog"}
    assert "targetRecoveryTime" not in database[0]["spec"]  # the newest dump
    # Scaled to 0 while the database was replaced, and back afterwards.
    assert report.steps[0].detail == "web pods stopped, CronJobs suspended"
    assert apps.read_namespaced_deployment("blog", "blog").spec.replicas == 2
    assert apps.read_namespaced_deployment("wiki", "wiki").spec.replicas == 2


def test_into_creates_only_the_velero_restore(stack: dict[str, Any], control_plane: ControlPlane) -> None:
    api = client.CustomObjectsApi(control_plane.api_client())
    before_velero, before_database = _restores(api)
    with OperatorStandIn(api):
        report = _runner(control_plane).run(
            RestoreRequest("wiki", into="wiki-copy", parts=("files",)), site_sources(stack, "wiki")
        )
    assert report.ok
    velero, database = _restores(api)
    assert len(database) == len(before_database)
    (created,) = [r for r in velero if r["metadata"]["name"] not in {b["metadata"]["name"] for b in before_velero}]
    assert created["spec"]["namespaceMapping"] == {"wiki": "wiki-copy"}
    assert "ingresses.networking.k8s.io" in created["spec"]["excludedResources"]
