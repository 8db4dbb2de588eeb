"""End-to-end proof that the local control plane behaves like a real cluster.

Starts :class:`tools.controlplane.ControlPlane` in a temp folder, then with the official
Python client: a Deployment becomes Ready through scheduler + kwok, an RWX PVC binds through
the PV binder, cert-manager and mariadb-operator objects pass (and bad ones fail) the real
CRD schemas and CEL rules, a namespace deletion completes, and ``stop`` leaves no process.

Run: ``.venv/bin/python -m tools.verify_controlplane [--keep]``. Ends with the line
``verify_controlplane: N passed, N failed``; exit code 0 only when all passed.
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from tools.controlplane import ControlPlane, pids_referencing

NS = "fd-verify"
Check = Callable[[], str]


def wait_for(what: str, cond: Callable[[], bool], timeout: float) -> float:
    """Poll ``cond`` until true; return the seconds it took or raise naming ``what``."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if cond():
            return time.monotonic() - start
        time.sleep(0.25)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


def expect_invalid(create: Callable[[], Any], what: str) -> str:
    try:
        create()
    except ApiException as exc:
        if exc.status == 422:
            return f"{what} rejected (422)"
        raise AssertionError(f"{what}: expected 422, got {exc.status}: {exc.body}") from exc
    raise AssertionError(f"{what}: was accepted, expected a schema rejection")


class Verifier:
    def __init__(self, api: client.ApiClient) -> None:
        self.core = client.CoreV1Api(api)
        self.apps = client.AppsV1Api(api)
        self.custom = client.CustomObjectsApi(api)
        self.version = client.VersionApi(api)

    def server_version(self) -> str:
        info = self.version.get_code()
        assert info.git_version.startswith("v1.") and info.minor, info
        assert int(info.major) == 1 and int(info.minor.rstrip("+")) >= 32, info
        return f"server reports {info.git_version} (major={info.major} minor={info.minor})"

    def namespace(self) -> str:
        self.core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=NS)))

        def has_default_sa() -> bool:
            try:
                self.core.read_namespaced_service_account("default", NS)
            except ApiException as exc:
                if exc.status == 404:
                    return False
                raise
            return True

        took = wait_for("the default ServiceAccount", has_default_sa, 60)
        return f"namespace {NS} created; default ServiceAccount after {took:.1f}s"

    def deployment(self) -> str:
        labels = {"app": "web"}
        container = client.V1Container(
            name="web",
            image="nginx:1.27",
            ports=[client.V1ContainerPort(container_port=80)],
            readiness_probe=client.V1Probe(http_get=client.V1HTTPGetAction(path="/", port=80)),
        )
        self.apps.create_namespaced_deployment(
            NS,
            client.V1Deployment(
                metadata=client.V1ObjectMeta(name="web"),
                spec=client.V1DeploymentSpec(
                    replicas=2,
                    selector=client.V1LabelSelector(match_labels=labels),
                    template=client.V1PodTemplateSpec(
                        metadata=client.V1ObjectMeta(labels=labels),
                        spec=client.V1PodSpec(containers=[container]),
                    ),
                ),
            ),
        )

        def ready() -> bool:
            st = self.apps.read_namespaced_deployment_status("web", NS).status
            if st is None:
                return False
            return (st.ready_replicas or 0) == 2 and (st.available_replicas or 0) == 2

        took = wait_for("Deployment web readyReplicas=2", ready, 120)
        pods = self.core.list_namespaced_pod(NS, label_selector="app=web").items
        nodes = sorted({str(p.spec.node_name) for p in pods if p.spec is not None})
        phases = [p.status.phase if p.status else None for p in pods]
        assert phases == ["Running", "Running"], phases
        return f"Deployment ready (2/2) after {took:.1f}s on nodes {nodes}"

    def statefulset(self) -> str:
        """3 replicas with RWO claims of the default class bind and become Ready in order."""
        labels = {"app": "db"}
        self.core.create_namespaced_service(
            NS,
            client.V1Service(
                metadata=client.V1ObjectMeta(name="db"),
                spec=client.V1ServiceSpec(
                    cluster_ip="None",
                    selector=labels,
                    ports=[client.V1ServicePort(port=3306, name="mysql")],
                ),
            ),
        )
        self.apps.create_namespaced_stateful_set(
            NS,
            client.V1StatefulSet(
                metadata=client.V1ObjectMeta(name="db"),
                spec=client.V1StatefulSetSpec(
                    service_name="db",
                    replicas=3,
                    selector=client.V1LabelSelector(match_labels=labels),
                    template=client.V1PodTemplateSpec(
                        metadata=client.V1ObjectMeta(labels=labels),
                        spec=client.V1PodSpec(
                            termination_grace_period_seconds=0,
                            containers=[
                                client.V1Container(
                                    name="db",
                                    image="mariadb:11.4",
                                    volume_mounts=[client.V1VolumeMount(name="data", mount_path="/var/lib/mysql")],
                                )
                            ],
                        ),
                    ),
                    volume_claim_templates=[
                        client.V1PersistentVolumeClaim(
                            metadata=client.V1ObjectMeta(name="data"),
                            spec=client.V1PersistentVolumeClaimSpec(
                                access_modes=["ReadWriteOnce"],
                                resources=client.V1VolumeResourceRequirements(requests={"storage": "1Gi"}),
                            ),
                        )
                    ],
                ),
            ),
        )

        def claim_phases() -> list[str]:
            claims = self.core.list_namespaced_persistent_volume_claim(NS, label_selector="app=db").items
            return sorted(str(c.status.phase) if c.status else "" for c in claims)

        def ready() -> bool:
            st = self.apps.read_namespaced_stateful_set_status("db", NS).status
            # The scheduler places a pod once its claim names a volume; the PV controller writes the
            # claim's Bound phase in a later update, so a Ready pod can briefly see a Pending claim.
            return st is not None and (st.ready_replicas or 0) == 3 and claim_phases() == ["Bound"] * 3

        took = wait_for("StatefulSet db readyReplicas=3 and 3 Bound claims", ready, 120)
        return f"StatefulSet ready (3/3) with 3 Bound RWO claims after {took:.1f}s"

    def foreground_delete(self) -> str:
        """Foreground deletion (pulumi-kubernetes' default) needs the garbage collector."""
        self.apps.delete_namespaced_deployment("web", NS, propagation_policy="Foreground")

        def gone() -> bool:
            try:
                self.apps.read_namespaced_deployment("web", NS)
            except ApiException as exc:
                if exc.status == 404:
                    return True
                raise
            return False

        took = wait_for("Deployment web foreground deletion", gone, 120)
        left = self.core.list_namespaced_pod(NS, label_selector="app=web").items
        assert not left, [p.metadata.name for p in left if p.metadata]
        return f"Deployment and its pods gone after {took:.1f}s (Foreground)"

    def pvc(self) -> str:
        self.core.create_namespaced_persistent_volume_claim(
            NS,
            client.V1PersistentVolumeClaim(
                metadata=client.V1ObjectMeta(name="files"),
                spec=client.V1PersistentVolumeClaimSpec(
                    access_modes=["ReadWriteMany"],
                    storage_class_name="rook-cephfs",
                    resources=client.V1VolumeResourceRequirements(requests={"storage": "1Gi"}),
                ),
            ),
        )

        def bound() -> bool:
            pvc = self.core.read_namespaced_persistent_volume_claim("files", NS)
            return pvc.status is not None and pvc.status.phase == "Bound"

        took = wait_for("PVC files Bound", bound, 90)
        pvc = self.core.read_namespaced_persistent_volume_claim("files", NS)
        volume = pvc.spec.volume_name if pvc.spec else None
        return f"PVC Bound to {volume} after {took:.1f}s"

    def certificate(self) -> str:
        def create(spec: dict[str, Any], name: str) -> Any:
            return self.custom.create_namespaced_custom_object(
                "cert-manager.io",
                "v1",
                NS,
                "certificates",
                {
                    "apiVersion": "cert-manager.io/v1",
                    "kind": "Certificate",
                    "metadata": {"name": name},
                    "spec": spec,
                },
            )

        create(
            {
                "secretName": "site-tls",
                "dnsNames": ["site.example.test"],
                "issuerRef": {"name": "selfsigned", "kind": "ClusterIssuer"},
            },
            "site",
        )
        bad = expect_invalid(
            lambda: create({"dnsNames": ["x.example.test"]}, "bad"),
            "Certificate without secretName/issuerRef",
        )
        return f"Certificate accepted; {bad}"

    def mariadb(self) -> str:
        def create(spec: dict[str, Any], name: str) -> Any:
            return self.custom.create_namespaced_custom_object(
                "k8s.mariadb.com",
                "v1alpha1",
                NS,
                "mariadbs",
                {
                    "apiVersion": "k8s.mariadb.com/v1alpha1",
                    "kind": "MariaDB",
                    "metadata": {"name": name},
                    "spec": spec,
                },
            )

        create(
            {
                "replicas": 3,
                "replication": {"enabled": True},
                "storage": {"size": "1Gi"},
            },
            # Not "db": the StatefulSet check below uses that name, and the kwok Stages standing in
            # for mariadb-operator create a StatefulSet named after every MariaDB resource.
            "cluster",
        )
        got: Any = self.custom.get_namespaced_custom_object("k8s.mariadb.com", "v1alpha1", NS, "mariadbs", "cluster")
        assert got["spec"]["replicas"] == 3 and got["spec"]["replication"]["enabled"], got
        # The CRD's CEL rule: Galera needs an odd replica count.
        bad = expect_invalid(
            lambda: create(
                {
                    "replicas": 2,
                    "galera": {"enabled": True},
                    "storage": {"size": "1Gi"},
                },
                "even",
            ),
            "MariaDB galera with 2 replicas (CEL rule)",
        )
        return f"MariaDB (replication, 3 replicas, 1Gi) accepted; {bad}"

    def delete_namespace(self) -> str:
        self.core.delete_namespace(NS)

        def gone() -> bool:
            try:
                self.core.read_namespace(NS)
            except ApiException as exc:
                if exc.status == 404:
                    return True
                raise
            return False

        took = wait_for(f"namespace {NS} to be deleted", gone, 180)
        return f"namespace deleted completely after {took:.1f}s"

    def pv_recycled(self) -> str:
        """The pool PV that served the deleted claim goes back to Available."""

        def all_available() -> bool:
            pvs = self.core.list_persistent_volume(label_selector="flightdeck.dev/pv-pool=rook-cephfs").items
            return all(pv.status is not None and pv.status.phase == "Available" for pv in pvs)

        took = wait_for("pool PVs Available again", all_available, 60)
        return f"released pool PV back to Available after {took:.1f}s"


def run(keep: bool) -> int:
    root = Path(tempfile.mkdtemp(prefix="flightdeck-verify-"))
    state = root / "state"
    cp = ControlPlane(state)
    results: list[tuple[str, bool, str]] = []

    def step(name: str, fn: Check) -> bool:
        t0 = time.monotonic()
        try:
            msg = fn()
        except Exception as exc:  # every failure is reported, then we go on
            detail = "".join(traceback.format_exception_only(type(exc), exc)).strip()
            results.append((name, False, detail))
            print(f"FAIL {name} ({time.monotonic() - t0:.1f}s): {detail}", flush=True)
            return False
        results.append((name, True, msg))
        print(f"ok   {name} ({time.monotonic() - t0:.1f}s): {msg}", flush=True)
        return True

    def start() -> str:
        t0 = time.monotonic()
        kubeconfig = cp.start()
        return f"started in {time.monotonic() - t0:.1f}s; kubeconfig {kubeconfig}"

    try:
        if step("start", start):
            with contextlib.closing(cp.api_client()) as api:
                v = Verifier(api)
                step("server version", v.server_version)
                if step("namespace", v.namespace):
                    step("deployment", v.deployment)
                    step("pvc", v.pvc)
                    step("certificate", v.certificate)
                    step("mariadb", v.mariadb)
                    step("statefulset", v.statefulset)
                    step("foreground delete", v.foreground_delete)
                    if step("delete namespace", v.delete_namespace):
                        step("pv recycle", v.pv_recycled)
    finally:

        def stop() -> str:
            cp.stop()
            left = pids_referencing(state, components_only=False)
            assert not left, f"processes left behind: {left}"
            return "stopped; no process references the state folder"

        step("stop", stop)
        if keep:
            print(f"state kept in {state}")
        else:
            shutil.rmtree(root, ignore_errors=True)

    passed = sum(1 for _, ok, _ in results if ok)
    failed = len(results) - passed
    print(f"verify_controlplane: {passed} passed, {failed} failed")
    return 0 if failed == 0 else 1


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--keep", action="store_true", help="keep the state folder (logs)")
    return run(ap.parse_args().keep)


if __name__ == "__main__":
    sys.exit(main())
