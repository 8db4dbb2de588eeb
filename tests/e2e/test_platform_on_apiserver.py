"""The program's Kubernetes objects on a real kube-apiserver with the real upstream CRDs.

The program is built exactly as ``pulumi up`` builds it (``tools.render_stack``), and every
object it declares is applied to the local control plane (etcd, kube-apiserver,
controller-manager, scheduler, kwok nodes; ``tools/controlplane.py``) with server-side apply.
This proves what mocks cannot: the MariaDB, Certificate, ClusterIssuer, Velero Schedule and
Backup objects are valid against the real CRD schemas and CEL rules, claims bind, Deployments
become ready the real way, and the objects of every stack file are accepted.

The pulumi-kubernetes resource plugin cannot be built on this machine (the Go module proxy
refuses it; see docs/toolchain.md), so the objects go through the Kubernetes API directly
rather than through the engine; the engine itself is exercised in test_engine_sql.py.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client
from kubernetes.dynamic import DynamicClient
from kubernetes.dynamic.exceptions import ApiException, UnprocessibleEntityError

from tools.controlplane import ControlPlane, default_crds_dir
from tools.render_stack import Deployment, deploy, stack_file_config

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(3600)]

FIELD_MANAGER = "flightdeck-e2e"
# Namespaces the operators own in a real cluster (their Helm releases create them).
OPERATOR_NAMESPACES = ("velero",)


def _require(condition: bool, reason: str) -> None:
    if condition:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"e2e prerequisite missing in CI: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def control_plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlane]:
    _require(default_crds_dir() is not None, "no CRD folder (set FLIGHTDECK_CRDS_DIR or provide ../shared/crds)")
    plane = ControlPlane(tmp_path_factory.mktemp("controlplane"))
    plane.start()
    try:
        yield plane
    finally:
        plane.stop()


@pytest.fixture(scope="module")
def dynamic(control_plane: ControlPlane) -> DynamicClient:
    return DynamicClient(control_plane.api_client())


def render(stack: str) -> Deployment:
    asyncio.set_event_loop(asyncio.new_event_loop())
    return deploy(stack_file_config(stack), stack=stack, secrets={"kubeconfig": "unused"})


def kubernetes_objects(deployment: Deployment) -> list[dict[str, Any]]:
    objects = []
    for registration in deployment.registrations:
        if not registration.typ.startswith("kubernetes:") or not registration.request.custom:
            continue
        if registration.typ.startswith("kubernetes:helm.sh/"):
            continue
        body = {key: value for key, value in registration.inputs.items() if not key.startswith("__")}
        objects.append(body)
    # Namespaces first, as the engine orders them by dependency.
    return sorted(objects, key=lambda obj: obj["kind"] != "Namespace")


def apply(dynamic: DynamicClient, obj: dict[str, Any], *, dry_run: bool = False) -> Any:
    resource = dynamic.resources.get(api_version=obj["apiVersion"], kind=obj["kind"])
    kwargs: dict[str, Any] = {"field_manager": FIELD_MANAGER}
    if dry_run:
        kwargs["dry_run"] = "All"
    return dynamic.server_side_apply(
        resource, body=obj, name=obj["metadata"]["name"], namespace=obj["metadata"].get("namespace"), **kwargs
    )


def ensure_namespaces(dynamic: DynamicClient, names: tuple[str, ...]) -> None:
    for name in names:
        apply(dynamic, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})


def wait_for(description: str, check: Any, timeout: float = 180.0) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(1)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {description} (last: {last!r})")


@pytest.fixture(scope="module")
def local_stack(dynamic: DynamicClient) -> Deployment:
    deployment = render("local")
    ensure_namespaces(dynamic, OPERATOR_NAMESPACES)
    for obj in kubernetes_objects(deployment):
        apply(dynamic, obj)
    return deployment


def test_every_object_of_the_local_stack_is_accepted(local_stack: Deployment, dynamic: DynamicClient) -> None:
    for obj in kubernetes_objects(local_stack):
        resource = dynamic.resources.get(api_version=obj["apiVersion"], kind=obj["kind"])
        stored = dynamic.get(resource, name=obj["metadata"]["name"], namespace=obj["metadata"].get("namespace"))
        assert stored.metadata.name == obj["metadata"]["name"]


def test_mariadb_cluster_is_accepted_by_the_real_crd(local_stack: Deployment, dynamic: DynamicClient) -> None:
    resource = dynamic.resources.get(api_version="k8s.mariadb.com/v1alpha1", kind="MariaDB")
    mariadb = dynamic.get(resource, name="mariadb", namespace="mariadb").to_dict()
    spec = mariadb["spec"]
    assert spec["replicas"] == 3  # readerCount 2: three Galera nodes (the CRD's CEL rule wants an odd count)
    assert spec["galera"]["enabled"] is True
    assert spec["galera"]["primary"]["autoFailover"] is True
    assert spec["updateStrategy"]["type"] == "ReplicasFirstPrimaryLast"
    assert spec["podDisruptionBudget"]["maxUnavailable"] == 1
    assert spec["storage"]["size"] == "1Gi"


@pytest.mark.parametrize("readers", range(0, 9))
def test_galera_sizes_match_the_real_crd(local_stack: Deployment, dynamic: DynamicClient, readers: int) -> None:
    """What config validation accepts, the CRD accepts; what it refuses (odd readerCount), the CRD refuses."""
    from components.config import ConfigError, MySQLOperatorConfig, validate_stack_config
    from components.mysql_cluster import mariadb_spec

    mariadb = next(o for o in kubernetes_objects(local_stack) if o["kind"] == "MariaDB")
    cluster = MySQLOperatorConfig.model_validate({"mode": "operator", "readerCount": readers, "size": "1Gi"})
    body = {**mariadb, "spec": mariadb_spec(cluster, mariadb["spec"]["rootPasswordSecretKeyRef"]["name"])}
    config = {**stack_file_config("local"), "mysql": {"mode": "operator", "readerCount": readers}}
    try:
        validate_stack_config(config)
    except ConfigError as error:
        assert [p.path for p in error.problems] == ["mysql.readerCount"]
        with pytest.raises((UnprocessibleEntityError, ApiException)) as caught:
            apply(dynamic, body, dry_run=True)
        assert caught.value.status == 422 and "odd number" in str(caught.value.body)
        return
    stored = apply(dynamic, body, dry_run=True).to_dict()
    assert stored["spec"]["replicas"] == readers + 1


def test_an_invalid_mariadb_spec_is_rejected(local_stack: Deployment, dynamic: DynamicClient) -> None:
    # Proves the schema is really enforced, so the acceptance above means something.
    mariadb = next(o for o in kubernetes_objects(local_stack) if o["kind"] == "MariaDB")
    broken = {**mariadb, "spec": {**mariadb["spec"], "updateStrategy": {"type": "Sometimes"}}}
    with pytest.raises((UnprocessibleEntityError, ApiException)) as caught:
        apply(dynamic, broken, dry_run=True)
    assert caught.value.status == 422


def test_site_volumes_bind_and_web_pods_become_ready(local_stack: Deployment, control_plane: ControlPlane) -> None:
    core = client.CoreV1Api(control_plane.api_client())
    apps = client.AppsV1Api(control_plane.api_client())
    for site, replicas in (("blog", 2), ("wiki", 2), ("shop", 1)):
        claim = wait_for(
            f"{site}-files to bind",
            lambda site=site: (
                (c := core.read_namespaced_persistent_volume_claim(f"{site}-files", site)).status.phase == "Bound" and c
            ),
        )
        assert claim.spec.access_modes == ["ReadWriteMany"]
        assert claim.spec.storage_class_name == "rook-cephfs"
        deployment = wait_for(
            f"{site} to be ready",
            lambda site=site, replicas=replicas: (
                (d := apps.read_namespaced_deployment(site, site)).status.ready_replicas == replicas and d
            ),
        )
        pod_security = deployment.spec.template.spec.security_context
        assert pod_security.run_as_non_root is True and pod_security.run_as_user == 33


def test_certificates_and_issuer_are_stored(local_stack: Deployment, dynamic: DynamicClient) -> None:
    certificates = dynamic.resources.get(api_version="cert-manager.io/v1", kind="Certificate")
    wiki = dynamic.get(certificates, name="wiki", namespace="wiki").to_dict()
    assert wiki["spec"]["dnsNames"] == ["wiki.flightdeck.test", "docs.flightdeck.test"]
    assert wiki["spec"]["issuerRef"]["kind"] == "ClusterIssuer"
    issuers = dynamic.resources.get(api_version="cert-manager.io/v1", kind="ClusterIssuer")
    issuer = dynamic.get(issuers, name="letsencrypt").to_dict()
    assert "acme-staging-v02" in issuer["spec"]["acme"]["server"]


def test_backup_schedules_are_spread_on_the_server(local_stack: Deployment, dynamic: DynamicClient) -> None:
    schedules = dynamic.resources.get(api_version="velero.io/v1", kind="Schedule")
    backups = dynamic.resources.get(api_version="k8s.mariadb.com/v1alpha1", kind="Backup")
    crons = [s["spec"]["schedule"] for s in dynamic.get(schedules, namespace="velero").to_dict()["items"]]
    crons += [b["spec"]["schedule"]["cron"] for b in dynamic.get(backups, namespace="mariadb").to_dict()["items"]]
    assert len(crons) == 6  # files + database for three sites
    assert max(Counter(crons).values()) == 1  # maxConcurrent 1 in the local stack
    stored = dynamic.get(backups, name="site-wiki", namespace="mariadb").to_dict()
    assert stored["spec"]["databases"] == ["wiki"]


def test_network_policies_are_stored(local_stack: Deployment, control_plane: ControlPlane) -> None:
    networking = client.NetworkingV1Api(control_plane.api_client())
    names = {p.metadata.name for p in networking.list_namespaced_network_policy("mariadb").items}
    assert {"mariadb-internal", "site-blog", "site-wiki", "site-shop"} <= names
    site_policy = networking.read_namespaced_network_policy("ingress-controller-only", "blog")
    assert site_policy.spec.ingress[0]._from[0].namespace_selector.match_labels == {
        "kubernetes.io/metadata.name": "ingress-nginx"
    }


@pytest.mark.parametrize("stack", ["prod", "staging"])
def test_every_object_of_the_other_stacks_is_valid(stack: str, dynamic: DynamicClient) -> None:
    """Server-side dry run: each object of the stack file passes the API server's validation."""
    ensure_namespaces(dynamic, OPERATOR_NAMESPACES)
    objects = kubernetes_objects(render(stack))
    namespaces = [o for o in objects if o["kind"] == "Namespace"]
    for namespace in namespaces:
        apply(dynamic, namespace)  # namespaced dry runs need their namespace to exist
    for obj in objects:
        apply(dynamic, obj, dry_run=True)
    assert {o["kind"] for o in objects} >= {"MariaDB", "Certificate", "Schedule", "Backup", "Deployment", "Ingress"}


def test_control_plane_lifecycle() -> None:
    """Namespace deletion, garbage collection, PV recycling and a clean stop (no process left)."""
    from tools import verify_controlplane

    assert verify_controlplane.run(False) == 0
