"""Site workloads on a real kube-apiserver and its controllers (kwok nodes): the parts of issue 10
(items 2, 4, 6) and issue 9 item 6 that only real controllers can show.

The objects are the program's own (``tools.render_stack``), applied with server-side apply, as
in ``test_platform_on_apiserver.py``. What this proves beyond the mocks: the disruption
controller counts the web pods under each site's PodDisruptionBudget; the scheduler spreads
them over nodes and zones; a Job made from each CronJob's template runs to completion; and a
changed start input (the PHP ini) makes the Deployment controller roll the pods. What it cannot
show (no kubelet runs containers): probes, PHP, curl, Drupal's cron script.
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client
from kubernetes.dynamic import DynamicClient

from tests.e2e.test_platform_on_apiserver import (
    OPERATOR_NAMESPACES,
    _require,
    apply,
    ensure_namespaces,
    kubernetes_objects,
    wait_for,
)
from tools.controlplane import ControlPlane, default_crds_dir
from tools.render_stack import Deployment, deploy, stack_file_config

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(1800)]


def _render(config: dict[str, Any]) -> Deployment:
    asyncio.set_event_loop(asyncio.new_event_loop())
    return deploy(config, stack="local", secrets={"kubeconfig": "unused"})


@pytest.fixture(scope="module")
def plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlane]:
    _require(default_crds_dir() is not None, "no CRD folder (set FLIGHTDECK_CRDS_DIR or provide ../shared/crds)")
    control_plane = ControlPlane(tmp_path_factory.mktemp("workloads"))
    control_plane.start()
    try:
        yield control_plane
    finally:
        control_plane.stop()


@pytest.fixture(scope="module")
def dynamic(plane: ControlPlane) -> DynamicClient:
    return DynamicClient(plane.api_client())


@pytest.fixture(scope="module")
def local(dynamic: DynamicClient) -> Deployment:
    deployment = _render(stack_file_config("local"))
    ensure_namespaces(dynamic, OPERATOR_NAMESPACES)
    for obj in kubernetes_objects(deployment):
        apply(dynamic, obj)
    return deployment


def _ready(apps: client.AppsV1Api, site: str, replicas: int) -> Any:
    return wait_for(
        f"{site} ready",
        lambda: (
            (d := apps.read_namespaced_deployment(site, site)).status.ready_replicas == replicas
            and d.status.updated_replicas == replicas
            and d
        ),
    )


def test_disruption_budgets_cover_the_web_pods(local: Deployment, plane: ControlPlane) -> None:
    policy = client.PolicyV1Api(plane.api_client())
    apps = client.AppsV1Api(plane.api_client())
    for site in ("blog", "wiki"):
        _ready(apps, site, 2)
        budget = wait_for(
            f"{site} budget counted",
            lambda site=site: (
                (b := policy.read_namespaced_pod_disruption_budget(site, site)).status
                and b.status.expected_pods == 2
                and b.status.current_healthy == 2
                and b
            ),
        )
        assert budget.status.disruptions_allowed == 1
        assert budget.spec.unhealthy_pod_eviction_policy == "AlwaysAllow"
    assert not policy.list_namespaced_pod_disruption_budget("shop").items  # one replica: no budget


def test_web_pods_spread_over_nodes_and_zones(local: Deployment, plane: ControlPlane) -> None:
    core = client.CoreV1Api(plane.api_client())
    apps = client.AppsV1Api(plane.api_client())
    nodes = {node.metadata.name: node.metadata.labels["topology.kubernetes.io/zone"] for node in core.list_node().items}
    for site in ("blog", "wiki"):
        _ready(apps, site, 2)
        pods = core.list_namespaced_pod(site, label_selector="app.kubernetes.io/component=web").items
        placed = [pod.spec.node_name for pod in pods if pod.metadata.deletion_timestamp is None]
        assert len(placed) == 2 and len(set(placed)) == 2, placed
        assert len({nodes[name] for name in placed}) == 2, placed


def test_a_job_from_each_cron_template_completes(local: Deployment, plane: ControlPlane) -> None:
    batch = client.BatchV1Api(plane.api_client())
    for site in ("blog", "wiki", "shop"):
        cron = batch.read_namespaced_cron_job(f"{site}-cron", site)
        assert cron.spec.time_zone == "Etc/UTC" and cron.spec.concurrency_policy == "Forbid"
        assert cron.spec.suspend is False
        # What `kubectl create job --from=cronjob/...` does: the CronJob's own template.
        template = client.ApiClient().sanitize_for_serialization(cron.spec.job_template)
        job = {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {"name": f"{site}-cron-manual", "namespace": site, "labels": template["metadata"]["labels"]},
            "spec": template["spec"],
        }
        batch.create_namespaced_job(site, job)
    for site in ("blog", "wiki", "shop"):
        done = wait_for(
            f"{site} cron job",
            lambda site=site: (
                (j := batch.read_namespaced_job_status(f"{site}-cron-manual", site)).status.succeeded and j
            ),
        )
        assert done.spec.template.metadata.labels["app.kubernetes.io/component"] == "cron"


def test_a_changed_php_setting_rolls_the_pods(local: Deployment, plane: ControlPlane, dynamic: DynamicClient) -> None:
    apps = client.AppsV1Api(plane.api_client())
    before = _ready(apps, "blog", 2)
    config = copy.deepcopy(stack_file_config("local"))
    config["sites"][0]["maxUploadSize"] = "256Mi"
    changed = kubernetes_objects(_render(config))
    for obj in changed:
        if obj["metadata"].get("namespace") == "blog" and obj["kind"] in ("ConfigMap", "Deployment", "Ingress"):
            apply(dynamic, obj)
    digest = next(o for o in changed if o["kind"] == "Deployment" and o["metadata"]["name"] == "blog")["spec"][
        "template"
    ]["metadata"]["annotations"]["flightdeck.io/config-digest"]
    assert digest != before.spec.template.metadata.annotations["flightdeck.io/config-digest"]
    after = wait_for(
        "blog rolled",
        lambda: (
            (d := apps.read_namespaced_deployment("blog", "blog")).status.observed_generation
            > before.metadata.generation
            and d.status.updated_replicas == 2
            and d.status.ready_replicas == 2
            and d
        ),
    )
    core = client.CoreV1Api(plane.api_client())

    def live_digests() -> list[str]:
        pods = core.list_namespaced_pod("blog", label_selector="app.kubernetes.io/component=web").items
        return [
            p.metadata.annotations["flightdeck.io/config-digest"] for p in pods if not p.metadata.deletion_timestamp
        ]

    assert wait_for("only new pods left", lambda: (d := live_digests()) == [digest, digest] and d)
    assert after.spec.strategy.rolling_update.max_unavailable == 0
