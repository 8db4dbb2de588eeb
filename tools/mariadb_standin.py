"""The one part of mariadb-operator the local rig cannot do with kwok: the root password.

mariadb-operator starts each server with the root password from the Secret its ``MariaDB``
resource names (``spec.rootPasswordSecretKeyRef``), and reports the resource Ready once the
servers are up. flightdeck relies on exactly that: it generates the root password, puts it in
the Secret, waits for Ready (``pulumi.com/waitFor: condition=Ready``) and then runs SQL as
root. On the local control plane the servers are fake kwok pods and the SQL goes to a local test
MariaDB (``tools/mariadb_server.py``, started with an admin account of its own so that ``root``
belongs to this stand-in), so this small process does what the operator would do to that
server, and no more:

1. for every mapped namespace, a kwok ``ClusterPortForward`` sends port 3306 of that
   namespace's pods to the local server, so a port-forward through the real kube-apiserver to
   the primary pod reaches it (``mysql.access.mode: portForward``);
2. for every ``MariaDB`` resource in a mapped namespace whose objects kwok has created for the
   current generation (``tools/kwok/mariadb-operator.yaml``) and whose StatefulSet is ready,
   it gives ``root@'%'`` the password from the named Secret, then annotates the resource with
   the generation it finished (``rig.flightdeck.dev/ready-generation``).

kwok's own Stage then sets the status the operator would set (condition Ready, current
primary). Nothing else the operator does is simulated; see docs/controlplane.md.

CLI (the control plane starts it; ``--server`` may repeat)::

    python -m tools.mariadb_standin --kubeconfig KUBECONFIG --state-dir DIR --server mariadb=/path/to/server-state
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import hashlib
import json
import signal
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any, cast

from tools.mariadb_server import MariaDBServer

MARIADB_GROUP, MARIADB_VERSION, MARIADB_PLURAL = "k8s.mariadb.com", "v1alpha1", "mariadbs"
KWOK_GROUP, KWOK_VERSION = "kwok.x-k8s.io", "v1alpha1"
OBJECTS_ANNOTATION = "rig.flightdeck.dev/objects-generation"
READY_ANNOTATION = "rig.flightdeck.dev/ready-generation"
# A digest (never the password) of the root password last applied, so a changed Secret is re-applied.
PASSWORD_ANNOTATION = "rig.flightdeck.dev/root-password-digest"  # noqa: S105 - an annotation key
MYSQL_PORT = 3306
HEARTBEAT_FILE = "heartbeat"


def log(message: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} mariadb-standin: {message}", flush=True)


@dataclass(frozen=True)
class Decision:
    """What to do with one MariaDB resource this round."""

    action: str  # "wait", "apply" or "done"
    reason: str = ""


def decide(mariadb: Mapping[str, Any], statefulset: Mapping[str, Any] | None, password_digest: str | None) -> Decision:
    """Pure: is the resource ready for its root password to be applied and reported?"""
    meta = mariadb.get("metadata") or {}
    annotations = meta.get("annotations") or {}
    generation = str(meta.get("generation", ""))
    if meta.get("deletionTimestamp"):
        return Decision("wait", "being deleted")
    if annotations.get(OBJECTS_ANNOTATION) != generation:
        return Decision("wait", f"kwok has not created the objects of generation {generation} yet")
    if statefulset is None:
        return Decision("wait", "no StatefulSet yet")
    want = int((mariadb.get("spec") or {}).get("replicas") or 1)
    spec = statefulset.get("spec") or {}
    status = statefulset.get("status") or {}
    sts_meta = statefulset.get("metadata") or {}
    if int(spec.get("replicas") or 0) != want:
        return Decision("wait", f"StatefulSet has {spec.get('replicas')} replicas, want {want}")
    if int(status.get("observedGeneration") or 0) < int(sts_meta.get("generation") or 0):
        return Decision("wait", "StatefulSet change not observed yet")
    if int(status.get("readyReplicas") or 0) < want or int(status.get("updatedReplicas") or 0) < want:
        return Decision("wait", f"{status.get('readyReplicas') or 0}/{want} servers ready")
    if password_digest is None:
        return Decision("wait", "root password Secret missing")
    if annotations.get(READY_ANNOTATION) == generation and annotations.get(PASSWORD_ANNOTATION) == password_digest:
        return Decision("done")
    return Decision("apply")


def password_digest(password: str) -> str:
    return hashlib.sha256(b"flightdeck-rig-root:" + password.encode()).hexdigest()[:32]


def apply_root_password(server: MariaDBServer, password: str) -> None:
    """What the operator's image entrypoint does with MARIADB_ROOT_PASSWORD and MARIADB_ROOT_HOST=%."""
    with server.connect() as conn, conn.cursor() as cur:
        cur.execute("CREATE USER IF NOT EXISTS 'root'@'%%' IDENTIFIED BY %s", (password,))
        cur.execute("ALTER USER 'root'@'%%' IDENTIFIED BY %s", (password,))
        cur.execute("GRANT ALL PRIVILEGES ON *.* TO 'root'@'%' WITH GRANT OPTION")  # no params: no % escaping


def port_forward_object(namespace: str, port: int) -> dict[str, Any]:
    return {
        "apiVersion": f"{KWOK_GROUP}/{KWOK_VERSION}",
        "kind": "ClusterPortForward",
        "metadata": {"name": f"flightdeck-mariadb-{namespace}"},
        "spec": {
            "selector": {"matchNamespaces": [namespace]},
            "forwards": [{"ports": [MYSQL_PORT], "target": {"address": "127.0.0.1", "port": port}}],
        },
    }


class StandIn:
    def __init__(self, kubeconfig: str, servers: Mapping[str, MariaDBServer], state_dir: Path) -> None:
        from kubernetes import client, config

        api = config.new_client_from_config(config_file=kubeconfig)  # type: ignore[no-untyped-call]
        self.custom = client.CustomObjectsApi(api)
        self.apps = client.AppsV1Api(api)
        self.core = client.CoreV1Api(api)
        self.servers = dict(servers)
        self.state_dir = state_dir
        self.waiting: dict[str, str] = {}

    def setup_port_forwards(self) -> None:
        from kubernetes.client.exceptions import ApiException

        for namespace, server in self.servers.items():
            body = port_forward_object(namespace, server.port)
            name = body["metadata"]["name"]
            try:
                self.custom.create_cluster_custom_object(KWOK_GROUP, KWOK_VERSION, "clusterportforwards", body)
            except ApiException as exc:
                if exc.status != 409:
                    raise
                current = cast(
                    "dict[str, Any]",
                    self.custom.get_cluster_custom_object(KWOK_GROUP, KWOK_VERSION, "clusterportforwards", name),
                )
                body["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
                self.custom.replace_cluster_custom_object(KWOK_GROUP, KWOK_VERSION, "clusterportforwards", name, body)
            log(f"pods in namespace {namespace}: port {MYSQL_PORT} -> 127.0.0.1:{server.port}")

    def root_password(self, mariadb: Mapping[str, Any]) -> str | None:
        from kubernetes.client.exceptions import ApiException

        ref = (mariadb.get("spec") or {}).get("rootPasswordSecretKeyRef") or {}
        namespace = mariadb["metadata"]["namespace"]
        try:
            secret = self.core.read_namespaced_secret(ref.get("name", ""), namespace)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
        value = (secret.data or {}).get(ref.get("key", "password"))
        return base64.b64decode(value).decode() if value else None

    def statefulset(self, namespace: str, name: str) -> dict[str, Any] | None:
        from kubernetes.client.exceptions import ApiException

        try:
            sts = self.apps.read_namespaced_stateful_set(name, namespace)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
        result: dict[str, Any] = self.apps.api_client.sanitize_for_serialization(sts)
        return result

    def sync_once(self) -> None:
        listing = cast(
            "dict[str, Any]", self.custom.list_cluster_custom_object(MARIADB_GROUP, MARIADB_VERSION, MARIADB_PLURAL)
        )
        for mariadb in listing.get("items", []):
            meta = mariadb["metadata"]
            key = f"{meta['namespace']}/{meta['name']}"
            server = self.servers.get(meta["namespace"])
            if server is None:
                self._say(key, f"no local server is mapped to namespace {meta['namespace']}: never Ready")
                continue
            password = self.root_password(mariadb)
            digest = password_digest(password) if password is not None else None
            decision = decide(mariadb, self.statefulset(meta["namespace"], meta["name"]), digest)
            if decision.action == "wait":
                self._say(key, decision.reason)
                continue
            if decision.action == "done":
                self.waiting.pop(key, None)
                continue
            assert password is not None and digest is not None
            apply_root_password(server, password)
            patch = {
                "metadata": {"annotations": {READY_ANNOTATION: str(meta["generation"]), PASSWORD_ANNOTATION: digest}}
            }
            self.custom.patch_namespaced_custom_object(
                MARIADB_GROUP, MARIADB_VERSION, meta["namespace"], MARIADB_PLURAL, meta["name"], patch
            )
            self.waiting.pop(key, None)
            log(f"{key}: root password applied to 127.0.0.1:{server.port}; generation {meta['generation']} ready")

    def _say(self, key: str, reason: str) -> None:
        if self.waiting.get(key) != reason:
            self.waiting[key] = reason
            log(f"{key}: waiting: {reason}")

    def run(self, interval: float) -> None:
        stop = {"now": False}

        def on_signal(_signum: int, _frame: FrameType | None) -> None:
            stop["now"] = True

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
        self.setup_port_forwards()
        heartbeat = self.state_dir / HEARTBEAT_FILE
        while not stop["now"]:
            try:
                self.sync_once()
            except Exception as exc:  # the API server may restart under us; try again next round
                log(f"sync failed, retrying: {type(exc).__name__}: {str(exc)[:300]}")
            heartbeat.write_text(json.dumps({"at": time.time(), "waiting": self.waiting}) + "\n")
            time.sleep(interval)
        log("stopped")


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tools.mariadb_standin", description=__doc__.split("\n")[0])
    ap.add_argument("--kubeconfig", required=True)
    ap.add_argument("--state-dir", required=True, help="folder for the heartbeat file")
    ap.add_argument(
        "--server", action="append", default=[], metavar="NAMESPACE=STATE_DIR",
        help="the local test MariaDB (tools.mariadb_server state dir) behind the MariaDB resources of NAMESPACE",
    )  # fmt: skip
    ap.add_argument("--interval", type=float, default=0.5)
    args = ap.parse_args(argv)
    servers: dict[str, MariaDBServer] = {}
    for item in args.server:
        namespace, sep, state = item.partition("=")
        if not sep or not namespace or not state:
            ap.error(f"--server {item!r}: expected NAMESPACE=STATE_DIR")
        servers[namespace] = MariaDBServer.from_state_dir(state)
    state_dir = Path(args.state_dir)
    state_dir.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(KeyboardInterrupt):
        StandIn(args.kubeconfig, servers, state_dir).run(args.interval)
    return 0


if __name__ == "__main__":
    sys.exit(main())
