"""Every stack file's objects against a real kube-apiserver with the real upstream CRDs.

The local stack runs through the real engine in test_platform_engine.py. The prod and staging
stacks cannot (their operators are Helm releases whose charts come from repositories this
machine does not reach), so their objects, built exactly as ``pulumi up`` builds them (the dry
renderer, tools.render_stack), go to the local control plane as server-side dry runs: each must
pass the API server's validation, including the CRDs' schemas and CEL rules, and a broken one
must be refused, which proves the validation is really enforced.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes.dynamic import DynamicClient
from kubernetes.dynamic.exceptions import ApiException, UnprocessibleEntityError

from tests.e2e.platform_rig import Rig
from tools.render_stack import Deployment, deploy, stack_file_config

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(1800)]

FIELD_MANAGER = "flightdeck-e2e"
# Namespaces the operators own in a real cluster (their Helm releases create them).
OPERATOR_NAMESPACES = ("velero",)


@pytest.fixture(scope="module")
def dynamic(rig: Rig) -> DynamicClient:
    return DynamicClient(rig.api())


@pytest.fixture(scope="module")
def namespaces(rig: Rig, dynamic: DynamicClient) -> Iterator[None]:
    """Namespaced dry runs need their namespace to exist: the missing ones are made for this
    module and removed again, so nothing is left for another stack on this control plane."""
    core = rig.core()
    existing = {ns.metadata.name for ns in core.list_namespace().items}
    wanted = {*OPERATOR_NAMESPACES}
    for stack in ("prod", "staging"):
        wanted |= {o["metadata"]["name"] for o in kubernetes_objects(render(stack)) if o["kind"] == "Namespace"}
    made = sorted(wanted - existing)
    ensure_namespaces(dynamic, tuple(made))
    yield
    for name in made:
        core.delete_namespace(name)


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
        # Validation is the point; the same objects may exist already, owned by the engine.
        kwargs["dry_run"] = "All"
        kwargs["force_conflicts"] = True
    return dynamic.server_side_apply(
        resource, body=obj, name=obj["metadata"]["name"], namespace=obj["metadata"].get("namespace"), **kwargs
    )


def ensure_namespaces(dynamic: DynamicClient, names: tuple[str, ...]) -> None:
    for name in names:
        apply(dynamic, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})


@pytest.mark.parametrize("readers", range(0, 9))
def test_galera_sizes_match_the_real_crd(namespaces: None, dynamic: DynamicClient, readers: int) -> None:
    """What config validation accepts, the CRD accepts; what it refuses (odd readerCount), the CRD refuses."""
    from components.config import ConfigError, MySQLOperatorConfig, validate_stack_config
    from components.mysql_cluster import mariadb_spec

    mariadb = next(o for o in kubernetes_objects(render("prod")) if o["kind"] == "MariaDB")
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


def test_an_invalid_mariadb_spec_is_rejected(namespaces: None, dynamic: DynamicClient) -> None:
    # Proves the schema is really enforced, so the acceptance of the other stacks means something.
    mariadb = next(o for o in kubernetes_objects(render("prod")) if o["kind"] == "MariaDB")
    broken = {**mariadb, "spec": {**mariadb["spec"], "updateStrategy": {"type": "Sometimes"}}}
    with pytest.raises((UnprocessibleEntityError, ApiException)) as caught:
        apply(dynamic, broken, dry_run=True)
    assert caught.value.status == 422


@pytest.mark.parametrize("stack", ["prod", "staging"])
def test_every_object_of_the_other_stacks_is_valid(stack: str, namespaces: None, dynamic: DynamicClient) -> None:
    """Server-side dry run: each object of the stack file passes the API server's validation."""
    objects = kubernetes_objects(render(stack))
    for obj in objects:
        apply(dynamic, obj, dry_run=True)
    assert {o["kind"] for o in objects} >= {"MariaDB", "Certificate", "Schedule", "Backup", "Deployment", "Ingress"}


def test_control_plane_lifecycle() -> None:
    """Namespace deletion, garbage collection, PV recycling and a clean stop (no process left)."""
    from tools import verify_controlplane

    assert verify_controlplane.run(False) == 0
