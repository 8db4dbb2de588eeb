"""A local Kubernetes control plane on loopback for flightdeck's end-to-end tests.

Runs etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kwok (fake nodes and
pod status) from binaries built by :mod:`tools.k8s_toolchain`, with every file in one state
folder: generated PKI, kubeconfigs, logs, pid files, etcd data.

After start the cluster has the upstream CRDs from ``FLIGHTDECK_CRDS_DIR`` (Established),
fake Ready nodes, the ``rook-cephfs`` (RWX) and ``standard`` (RWO, default) StorageClasses and
a pool of pre-created PersistentVolumes for them, so Deployments, StatefulSets and PVCs become
Ready/Bound through the real controllers. Where a controller cannot run here, kwok Stages
(``tools/kwok/*.yaml``) set the status it would set: mariadb-operator's objects and Ready
condition, the ingress controller's address. With ``mariadb_servers`` (namespace -> state dir
of a ``tools.mariadb_server``), ``tools.mariadb_standin`` runs too: it applies each MariaDB
resource's root password to its local server and forwards the pods' port 3306 there.

CLI::

    python -m tools.controlplane start  [--state-dir DIR] [--mariadb NAMESPACE=SERVER_STATE_DIR]
    python -m tools.controlplane status --state-dir DIR [--json]
    python -m tools.controlplane stop   --state-dir DIR

Python::

    with ControlPlane(tmp_path / "cp") as cp:
        api = cp.api_client()
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import os
import secrets
import signal
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

import yaml

from tools.k8s_toolchain import (
    KWOK_VERSION,
    Toolchain,
    ensure_toolchain,
    kwok_module_dir,
)
from tools.ports import address_in_use, free_port, port_free

if TYPE_CHECKING:
    from kubernetes.client import ApiClient

REPO_ROOT = Path(__file__).resolve().parent.parent
STANDIN = "mariadb-standin"  # tools/mariadb_standin.py, only with mariadb_servers
STANDIN_MODULE = "tools.mariadb_standin"
STANDIN_HEARTBEAT_S = 15.0
KWOK_EXTRA_STAGES = Path(__file__).resolve().parent / "kwok"

# Start/stop order; stop goes in reverse so clients go before the servers they talk to.
COMPONENTS = (
    "etcd",
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "kwok",
    STANDIN,
)

# Where the operators run in a real cluster (their charts' default namespaces).
OPERATOR_NAMESPACES = ("cert-manager", "velero", "rook-ceph", "mariadb-operator", "ingress-nginx")

SERVICE_CIDR = "10.96.0.0/16"
SERVICE_IP = "10.96.0.1"
POD_CIDR = "10.244.0.0/16"
SA_ISSUER = "https://kubernetes.default.svc.cluster.local"
POOL_LABEL = "flightdeck.dev/pv-pool"

# Upstream kwok stage files used: the "fast" profile that kwokctl uses by default, plus node
# heartbeats with Leases so the node lifecycle controller keeps the fake nodes Ready.
# kwok's own CRD for port-forward rules, applied before kwok starts (--enable-crds), so the
# stand-in can point pods' ports at a local server once it is known.
KWOK_CRDS = ("kustomize/crd/bases/kwok.x-k8s.io_clusterportforwards.yaml",)
KWOK_UPSTREAM_STAGES = (
    "kustomize/stage/node/fast/node-initialize.yaml",
    "kustomize/stage/node/heartbeat-with-lease/node-heartbeat-with-lease.yaml",
    "kustomize/stage/pod/fast/pod-ready.yaml",
    "kustomize/stage/pod/fast/pod-complete.yaml",
    "kustomize/stage/pod/fast/pod-delete.yaml",
)

Progress = Callable[[str], None]


class ControlPlaneError(RuntimeError):
    """Starting, checking or stopping the control plane failed."""


def _stderr(msg: str) -> None:
    print(f"[controlplane] {msg}", file=sys.stderr, flush=True)


def default_crds_dir() -> Path | None:
    env = os.environ.get("FLIGHTDECK_CRDS_DIR")
    if env:
        return Path(env).resolve()
    candidate = (REPO_ROOT / ".." / "shared" / "crds").resolve()
    return candidate if candidate.is_dir() else None


# --- processes ------------------------------------------------------------------------------


def _proc_start_time(pid: int) -> int | None:
    """Kernel start time of ``pid`` (guards against killing a recycled pid)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # Field 2 (comm) may contain spaces; everything after the last ')' is space-separated.
    fields = stat.rsplit(")", 1)[1].split()
    return int(fields[19])


def _proc_state(pid: int) -> str | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[0]


def _alive(pid: int, start_time: int | None) -> bool:
    st = _proc_start_time(pid)
    if st is None or (start_time is not None and st != start_time):
        return False
    return _proc_state(pid) != "Z"


def _pids_in_group(pgid: int) -> list[int]:
    found: list[int] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if os.getpgid(int(entry.name)) == pgid and _proc_state(int(entry.name)) != "Z":
                found.append(int(entry.name))
        except (ProcessLookupError, PermissionError):
            continue
    return found


def pids_referencing(path: Path, *, components_only: bool = True) -> list[int]:
    """Live processes whose command line mentions ``path``.

    With ``components_only`` only processes whose program is one of :data:`COMPONENTS`
    count, so a shell or test runner that merely passed the folder as an argument is never
    mistaken for a leftover component.
    """
    # Every component argv names a file *inside* the folder; the trailing slash keeps
    # /tmp/cp from matching the processes of a neighbour folder /tmp/cp2.
    needle = (str(path).rstrip("/") + "/").encode()
    found: list[int] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmd = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if needle not in cmd or _proc_state(int(entry.name)) in (None, "Z"):
            continue
        prog = os.path.basename(cmd.split(b"\0", 1)[0].decode(errors="replace"))
        if components_only and prog not in COMPONENTS and STANDIN_MODULE.encode() not in cmd:
            continue
        found.append(int(entry.name))
    return found


@dataclass
class PidRecord:
    name: str
    pid: int
    start_time: int | None
    argv: list[str]
    log: str


# --- status ---------------------------------------------------------------------------------


@dataclass
class ComponentStatus:
    name: str
    pid: int | None
    running: bool
    healthy: bool
    endpoint: str
    detail: str = ""


@dataclass
class ClusterState:
    """What ``start`` records in ``<state>/controlplane.json`` for ``status``/``stop``."""

    ports: dict[str, int]
    kubeconfig: str
    server: str
    kubernetes_version: str
    etcd_version: str
    kwok_version: str
    started_at: float
    binaries: dict[str, str] = field(default_factory=dict)
    mariadb_servers: dict[str, str] = field(default_factory=dict)


# --- the control plane ----------------------------------------------------------------------


class ControlPlane:
    """etcd + kube-apiserver + kube-controller-manager + kube-scheduler + kwok on 127.0.0.1."""

    def __init__(
        self,
        state_dir: str | os.PathLike[str],
        *,
        crds_dir: str | os.PathLike[str] | None = None,
        nodes: int = 3,
        rwx_volumes: int = 40,
        rwx_size: str = "50Gi",
        rwo_volumes: int = 20,
        rwo_size: str = "20Gi",
        create_storage_classes: bool = True,
        mariadb_servers: dict[str, str | os.PathLike[str]] | None = None,
        toolchain: Toolchain | None = None,
        progress: Progress = _stderr,
    ) -> None:
        self.state_dir = Path(state_dir).resolve()
        self.crds_dir = Path(crds_dir).resolve() if crds_dir is not None else default_crds_dir()
        self.nodes = nodes
        self.rwx_volumes = rwx_volumes
        self.rwx_size = rwx_size
        self.rwo_volumes = rwo_volumes
        self.rwo_size = rwo_size
        # Off for programs that create the `rook-cephfs` class themselves (components'
        # RookStorage): the pool PVs name the class by string, so they bind either way.
        self.create_storage_classes = create_storage_classes
        self.mariadb_servers = {ns: str(Path(d).resolve()) for ns, d in (mariadb_servers or {}).items()}
        self._toolchain = toolchain
        self.progress = progress
        # Popen handles of components started by this object, so stop() can reap them
        # (and Python does not warn about children it never waited for).
        self._procs: dict[str, subprocess.Popen[bytes]] = {}

    # paths

    @property
    def pki(self) -> Path:
        return self.state_dir / "pki"

    @property
    def run_dir(self) -> Path:
        return self.state_dir / "run"

    @property
    def log_dir(self) -> Path:
        return self.state_dir / "logs"

    @property
    def kubeconfig(self) -> Path:
        return self.state_dir / "kubeconfig"

    @property
    def state_file(self) -> Path:
        return self.state_dir / "controlplane.json"

    def components(self) -> tuple[str, ...]:
        """What this control plane runs: the stand-in only when it has servers to stand in for."""
        state = self.read_state()
        servers = self.mariadb_servers or (state.mariadb_servers if state else {})
        return COMPONENTS if servers else tuple(c for c in COMPONENTS if c != STANDIN)

    def read_state(self) -> ClusterState | None:
        try:
            return ClusterState(**json.loads(self.state_file.read_text()))
        except (OSError, ValueError, TypeError):
            return None

    # context manager: a pytest fixture can `with ControlPlane(...) as cp:`

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # public API

    def start(self, timeout: float = 300.0) -> Path:
        """Start everything (or return at once if already running); return the kubeconfig."""
        if self.is_running():
            self.progress(f"already running; kubeconfig: {self.kubeconfig}")
            return self.kubeconfig
        self.stop(quiet=True)  # clear pid files and strays left by a crashed run
        deadline = time.monotonic() + timeout
        started = time.monotonic()
        tc = self._toolchain or ensure_toolchain(include_kubectl=False, progress=self.progress)
        self._toolchain = tc
        for d in (self.pki, self.run_dir, self.log_dir, self.state_dir / "etcd"):
            d.mkdir(parents=True, exist_ok=True)
        os.chmod(self.state_dir / "etcd", 0o700)  # etcd refuses a world-readable data dir
        # Ports are picked free, then bound by the component a moment later; another process
        # can take one in between, so a bind failure gets one retry on fresh ports.
        for attempt in (1, 2):
            try:
                self._launch(tc, deadline, started, fresh_ports=attempt > 1)
                break
            except ControlPlaneError as exc:
                self.stop(quiet=True)
                if attempt == 2 or not address_in_use(str(exc)):
                    raise
                self.progress("a port was taken meanwhile; retrying on fresh ports")
            except BaseException:
                self.stop(quiet=True)
                raise
        self.progress(f"control plane up in {time.monotonic() - started:.1f}s; kubeconfig: {self.kubeconfig}")
        return self.kubeconfig

    def _launch(self, tc: Toolchain, deadline: float, started: float, *, fresh_ports: bool) -> None:
        ports = self._pick_ports(fresh=fresh_ports)
        server = f"https://127.0.0.1:{ports['kube-apiserver']}"
        self._make_pki()
        self._write_kubeconfigs(server)
        kwok_config = self._write_kwok_config()
        state = ClusterState(
            ports=ports,
            kubeconfig=str(self.kubeconfig),
            server=server,
            kubernetes_version=tc.kubernetes_version,
            etcd_version=tc.etcd_version,
            kwok_version=tc.kwok_version,
            started_at=time.time(),
            binaries={
                "etcd": tc.etcd,
                "kube-apiserver": tc.kube_apiserver,
                "kube-controller-manager": tc.kube_controller_manager,
                "kube-scheduler": tc.kube_scheduler,
                "kwok": tc.kwok,
            },
            mariadb_servers=dict(self.mariadb_servers),
        )
        self.state_file.write_text(json.dumps(asdict(state), indent=2) + "\n")
        self._spawn("etcd", self._etcd_argv(tc, ports))
        self._wait_healthy("etcd", state, deadline)
        self._spawn("kube-apiserver", self._apiserver_argv(tc, ports))
        self._wait_healthy("kube-apiserver", state, deadline)
        self.progress(f"kube-apiserver ready after {time.monotonic() - started:.1f}s")
        self._spawn("kube-controller-manager", self._controller_manager_argv(tc, ports))
        self._spawn("kube-scheduler", self._scheduler_argv(tc, ports))
        # kwok watches its ClusterPortForward CRD from the start, so the CRDs go in first.
        self._bootstrap(deadline)
        self._spawn("kwok", self._kwok_argv(tc, ports, kwok_config))
        for name in ("kube-controller-manager", "kube-scheduler", "kwok"):
            self._wait_healthy(name, state, deadline)
        self._wait_cluster_ready(deadline)
        if self.mariadb_servers:
            self._spawn(STANDIN, self._standin_argv())
            self._wait_healthy(STANDIN, state, deadline)

    def stop(self, timeout: float = 20.0, *, quiet: bool = False) -> None:
        """Stop every process this state folder started; nothing of it is left running."""
        say: Progress = (lambda _m: None) if quiet else self.progress
        records = self._pid_records()
        for name in reversed(COMPONENTS):
            rec = records.get(name)
            if rec is None:
                continue
            if _alive(rec.pid, rec.start_time):
                say(f"stopping {name} (pid {rec.pid})")
                self._kill_group(rec, timeout)
            (self.run_dir / f"{name}.pid").unlink(missing_ok=True)
        # Anything still holding our state folder on its command line is ours too (e.g. a
        # component whose pid file was lost); end those by pid, one at a time.
        for pid in pids_referencing(self.state_dir):
            say(f"stopping stray pid {pid}")
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        end = time.monotonic() + 5
        while (leftover := pids_referencing(self.state_dir)) and time.monotonic() < end:
            time.sleep(0.1)
        if leftover:
            raise ControlPlaneError(f"processes still running after stop: {leftover}")
        if records:
            say("stopped")

    # One component at a time: the fault-injection tier (tests/faults) restarts the API server or
    # crashes kwok mid-`up`. A stopped component keeps its pid record, whose argv (ports,
    # certificates, data folder) brings it back exactly as it was, so kubeconfigs stay valid.

    def stop_component(self, name: str, *, sig: signal.Signals = signal.SIGTERM, timeout: float = 20.0) -> PidRecord:
        """Stop one running component: ``SIGTERM`` is a graceful shutdown (a rolling restart),
        ``SIGKILL`` a crash. Whatever is still running after ``timeout`` seconds is killed."""
        rec = self._pid_records().get(name)
        if rec is None:
            raise ControlPlaneError(f"step 'stop {name}' failed: it was never started in {self.state_dir}")
        if _alive(rec.pid, rec.start_time):
            self.progress(f"stopping {name} (pid {rec.pid}, {sig.name})")
            self._kill_group(rec, timeout, sig)
        return rec

    def start_component(self, name: str, timeout: float = 120.0) -> PidRecord:
        """Start a stopped component again with the argv it last ran with; wait until it is healthy.
        A component that is running is left alone."""
        state = self.read_state()
        rec = self._pid_records().get(name)
        if state is None or rec is None:
            raise ControlPlaneError(f"step 'start {name}' failed: it was never started in {self.state_dir}")
        if _alive(rec.pid, rec.start_time):
            return rec
        started = self._spawn(name, rec.argv)
        self._wait_healthy(name, state, time.monotonic() + timeout)
        return started

    def restart_component(
        self, name: str, *, sig: signal.Signals = signal.SIGTERM, down: float = 0.0, timeout: float = 120.0
    ) -> PidRecord:
        """``stop_component``, ``down`` seconds without it, then ``start_component``."""
        self.stop_component(name, sig=sig)
        time.sleep(down)
        return self.start_component(name, timeout)

    def status(self) -> list[ComponentStatus]:
        state = self.read_state()
        records = self._pid_records()
        out: list[ComponentStatus] = []
        for name in self.components():
            rec = records.get(name)
            running = rec is not None and _alive(rec.pid, rec.start_time)
            healthy, endpoint, detail = False, "", ""
            if running and state is not None:
                endpoint = self._health_url(name, state)
                healthy, detail = self._probe(name, state)
            elif rec is not None:
                detail = f"not running; see {rec.log}"
            else:
                detail = "not started"
            out.append(ComponentStatus(name, rec.pid if rec else None, running, healthy, endpoint, detail))
        return out

    def is_running(self) -> bool:
        return all(s.running and s.healthy for s in self.status())

    def api_client(self) -> ApiClient:
        from kubernetes import config

        api: ApiClient = config.new_client_from_config(  # type: ignore[no-untyped-call]
            config_file=str(self.kubeconfig)
        )
        return api

    def _pick_ports(self, *, fresh: bool = False) -> dict[str, int]:
        """Free loopback ports; a restart keeps the previous ones when they are still free
        so kubeconfigs handed out earlier stay valid."""
        names = (
            "etcd",
            "etcd-peer",
            "kube-apiserver",
            "kube-controller-manager",
            "kube-scheduler",
            "kwok",
        )
        previous = None if fresh else self.read_state()
        ports: dict[str, int] = {}
        for n in names:
            old = previous.ports.get(n) if previous else None
            if old and port_free(old) and old not in ports.values():
                ports[n] = old
            else:
                ports[n] = free_port(taken=frozenset(ports.values()))
        return ports

    # PKI

    def _openssl(self, *args: str) -> None:
        res = subprocess.run(
            ["openssl", *args],
            cwd=self.pki,
            capture_output=True,
            text=True,
            check=False,
        )
        if res.returncode != 0:
            raise ControlPlaneError(f"step 'openssl {args[0]}' failed: {res.stderr.strip()}")

    def _make_pki(self) -> None:
        """CA, serving and client certificates, and the service-account key pair.

        Kept across restarts of the same state folder: etcd's data (service-account tokens,
        the kube-root-ca.crt ConfigMaps) refers to them.
        """
        if (self.pki / "complete").is_file():
            return
        sans = ",".join(
            [
                "IP:127.0.0.1",
                f"IP:{SERVICE_IP}",
                "DNS:localhost",
                "DNS:kubernetes",
                "DNS:kubernetes.default",
                "DNS:kubernetes.default.svc",
                "DNS:kubernetes.default.svc.cluster.local",
            ]
        )
        # A config of our own so the result does not depend on the system's openssl.cnf.
        (self.pki / "openssl.cnf").write_text(
            "[req]\ndistinguished_name = dn\nprompt = no\n[dn]\nCN = unused\n"
            "[v3_ca]\nbasicConstraints = critical,CA:TRUE\n"
            "keyUsage = critical,keyCertSign,cRLSign,digitalSignature\n"
            "subjectKeyIdentifier = hash\n"
            "[v3_server]\nbasicConstraints = critical,CA:FALSE\n"
            "keyUsage = critical,digitalSignature,keyEncipherment\n"
            "extendedKeyUsage = serverAuth\n"
            f"subjectAltName = {sans}\n"
            "[v3_client]\nbasicConstraints = critical,CA:FALSE\n"
            "keyUsage = critical,digitalSignature,keyEncipherment\n"
            "extendedKeyUsage = clientAuth\n"
        )
        ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
        days = ["-days", "3650"]
        # Two CAs as kubeadm has them: the cluster CA, and the front-proxy CA that the
        # apiserver trusts for request-header authentication (aggregated APIs). Without the
        # latter the controller-manager and scheduler log errors about a missing CA bundle.
        for ca, cn in (("ca", "flightdeck-local-ca"), ("front-proxy-ca", "flightdeck-front-proxy-ca")):
            self._openssl(
                *("req", "-x509", "-new", "-config", "openssl.cnf", "-extensions", "v3_ca"),
                *ec,
                *("-keyout", f"{ca}.key", "-out", f"{ca}.crt", "-subj", f"/CN={cn}", *days),
            )
        leaves = {
            "apiserver": ("ca", "/CN=kube-apiserver", "v3_server"),
            "admin": ("ca", "/O=system:masters/CN=flightdeck-admin", "v3_client"),
            "controller-manager": ("ca", "/CN=system:kube-controller-manager", "v3_client"),
            "scheduler": ("ca", "/CN=system:kube-scheduler", "v3_client"),
            # kwok patches status of arbitrary resources (nodes, pods, PVs): cluster admin.
            "kwok": ("ca", "/O=system:masters/CN=kwok", "v3_client"),
            # kwok serves the fake nodes' kubelet API (port-forward) over TLS on 127.0.0.1.
            "kwok-serving": ("ca", "/CN=kwok-kubelet", "v3_server"),
            # The apiserver authenticates to that kubelet API, as to a real kubelet.
            "apiserver-kubelet-client": ("ca", "/O=system:masters/CN=kube-apiserver-kubelet-client", "v3_client"),
            "front-proxy-client": ("front-proxy-ca", "/CN=front-proxy-client", "v3_client"),
        }
        for name, (ca, subj, ext) in leaves.items():
            self._openssl(
                *("req", "-new", "-config", "openssl.cnf", *ec),
                *("-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", subj),
            )
            self._openssl(
                *("x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.crt", "-CAkey", f"{ca}.key"),
                *("-set_serial", "0x" + secrets.token_hex(16), *days),
                *("-extfile", "openssl.cnf", "-extensions", ext, "-out", f"{name}.crt"),
            )
            (self.pki / f"{name}.csr").unlink()
        self._openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", "sa.key")
        self._openssl("pkey", "-in", "sa.key", "-pubout", "-out", "sa.pub")
        for key in self.pki.glob("*.key"):
            key.chmod(0o600)
        (self.pki / "complete").write_text("ok\n")

    def _write_kubeconfigs(self, server: str) -> None:
        ca = base64.b64encode((self.pki / "ca.crt").read_bytes()).decode()
        for name, path in (
            ("admin", self.kubeconfig),
            ("controller-manager", self.state_dir / "controller-manager.kubeconfig"),
            ("scheduler", self.state_dir / "scheduler.kubeconfig"),
            ("kwok", self.state_dir / "kwok.kubeconfig"),
        ):
            cfg = {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [
                    {
                        "name": "flightdeck-local",
                        "cluster": {"server": server, "certificate-authority-data": ca},
                    }
                ],
                "users": [
                    {
                        "name": name,
                        "user": {
                            "client-certificate-data": base64.b64encode(
                                (self.pki / f"{name}.crt").read_bytes()
                            ).decode(),
                            "client-key-data": base64.b64encode((self.pki / f"{name}.key").read_bytes()).decode(),
                        },
                    }
                ],
                "contexts": [
                    {
                        "name": "flightdeck-local",
                        "context": {"cluster": "flightdeck-local", "user": name},
                    }
                ],
                "current-context": "flightdeck-local",
            }
            path.write_text(yaml.safe_dump(cfg, sort_keys=False))
            path.chmod(0o600)

    def _write_kwok_config(self) -> Path:
        """Concatenate upstream stage files from the kwok module with our own extra stages."""
        module = kwok_module_dir(KWOK_VERSION, progress=self.progress)
        docs: list[str] = []
        for rel in KWOK_UPSTREAM_STAGES:
            src = module / rel
            if not src.is_file():
                raise ControlPlaneError(f"step 'kwok stages' failed: {src} missing")
            docs.append(f"# from sigs.k8s.io/kwok@{KWOK_VERSION}/{rel}\n" + src.read_text())
        docs.extend(p.read_text() for p in sorted(KWOK_EXTRA_STAGES.glob("*.yaml")))
        out = self.state_dir / "kwok.yaml"
        out.write_text("\n---\n".join(d.strip() + "\n" for d in docs))
        return out

    # argv per component

    def _etcd_argv(self, tc: Toolchain, ports: dict[str, int]) -> list[str]:
        client = f"http://127.0.0.1:{ports['etcd']}"
        peer = f"http://127.0.0.1:{ports['etcd-peer']}"
        return [
            tc.etcd,
            "--name=flightdeck",
            f"--data-dir={self.state_dir / 'etcd'}",
            f"--listen-client-urls={client}",
            f"--advertise-client-urls={client}",
            f"--listen-peer-urls={peer}",
            f"--initial-advertise-peer-urls={peer}",
            f"--initial-cluster=flightdeck={peer}",
            "--initial-cluster-state=new",
            # Test data is disposable; skipping fsync keeps etcd from stalling the apiserver
            # while a concurrent compile saturates the disk.
            "--unsafe-no-fsync",
            "--quota-backend-bytes=4294967296",
            "--log-level=warn",
        ]

    def _apiserver_argv(self, tc: Toolchain, ports: dict[str, int]) -> list[str]:
        pki = self.pki
        return [
            tc.kube_apiserver,
            f"--etcd-servers=http://127.0.0.1:{ports['etcd']}",
            "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1",
            f"--secure-port={ports['kube-apiserver']}",
            f"--cert-dir={pki}",
            f"--tls-cert-file={pki / 'apiserver.crt'}",
            f"--tls-private-key-file={pki / 'apiserver.key'}",
            f"--client-ca-file={pki / 'ca.crt'}",
            f"--requestheader-client-ca-file={pki / 'front-proxy-ca.crt'}",
            "--requestheader-allowed-names=front-proxy-client",
            "--requestheader-username-headers=X-Remote-User",
            "--requestheader-group-headers=X-Remote-Group",
            "--requestheader-extra-headers-prefix=X-Remote-Extra-",
            f"--proxy-client-cert-file={pki / 'front-proxy-client.crt'}",
            f"--proxy-client-key-file={pki / 'front-proxy-client.key'}",
            f"--service-account-issuer={SA_ISSUER}",
            f"--service-account-key-file={pki / 'sa.pub'}",
            f"--service-account-signing-key-file={pki / 'sa.key'}",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            # Port-forwards go to the fake nodes' kubelet endpoint, which kwok serves.
            f"--kubelet-client-certificate={pki / 'apiserver-kubelet-client.crt'}",
            f"--kubelet-client-key={pki / 'apiserver-kubelet-client.key'}",
            f"--kubelet-certificate-authority={pki / 'ca.crt'}",
            "--kubelet-preferred-address-types=InternalIP",
            "--authorization-mode=RBAC",
            "--allow-privileged=true",
            # The default reconciler would publish 127.0.0.1 as the endpoint of the
            # `kubernetes` Service, which validation rejects (loopback) every 10 s. Nothing
            # runs in-cluster here, so the Service keeps no endpoints.
            "--endpoint-reconciler-type=none",
            "--profiling=false",
            "--v=1",
        ]

    def _controller_manager_argv(self, tc: Toolchain, ports: dict[str, int]) -> list[str]:
        kc = str(self.state_dir / "controller-manager.kubeconfig")
        return [
            tc.kube_controller_manager,
            f"--kubeconfig={kc}",
            f"--authentication-kubeconfig={kc}",
            f"--authorization-kubeconfig={kc}",
            "--bind-address=127.0.0.1",
            f"--secure-port={ports['kube-controller-manager']}",
            f"--cert-dir={self.state_dir / 'controller-manager-certs'}",
            # As kubeadm does: each controller acts as its own service account, so the
            # bootstrap RBAC roles apply as in a real cluster.
            "--use-service-account-credentials=true",
            f"--service-account-private-key-file={self.pki / 'sa.key'}",
            f"--root-ca-file={self.pki / 'ca.crt'}",
            f"--cluster-signing-cert-file={self.pki / 'ca.crt'}",
            f"--cluster-signing-key-file={self.pki / 'ca.key'}",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            "--controllers=*",
            "--leader-elect=false",
            "--profiling=false",
            "--v=1",
        ]

    def _scheduler_argv(self, tc: Toolchain, ports: dict[str, int]) -> list[str]:
        kc = str(self.state_dir / "scheduler.kubeconfig")
        return [
            tc.kube_scheduler,
            f"--kubeconfig={kc}",
            f"--authentication-kubeconfig={kc}",
            f"--authorization-kubeconfig={kc}",
            "--bind-address=127.0.0.1",
            f"--secure-port={ports['kube-scheduler']}",
            f"--cert-dir={self.state_dir / 'scheduler-certs'}",
            "--leader-elect=false",
            "--profiling=false",
            "--v=1",
        ]

    def _kwok_argv(self, tc: Toolchain, ports: dict[str, int], config: Path) -> list[str]:
        return [
            tc.kwok,
            f"--kubeconfig={self.state_dir / 'kwok.kubeconfig'}",
            f"--config={config}",
            "--manage-all-nodes=true",
            f"--cidr={POD_CIDR}",
            "--node-ip=127.0.0.1",
            "--node-lease-duration-seconds=40",
            # The nodes' kubelet endpoint (kwok's node-initialize stage publishes this port), with
            # the API the apiserver proxies port-forwards to, served over TLS like a kubelet's.
            f"--node-port={ports['kwok']}",
            f"--server-address=127.0.0.1:{ports['kwok']}",
            f"--tls-cert-file={self.pki / 'kwok-serving.crt'}",
            f"--tls-private-key-file={self.pki / 'kwok-serving.key'}",
            "--enable-crds=ClusterPortForward",
        ]

    def _standin_argv(self) -> list[str]:
        argv = [
            sys.executable,
            "-m",
            STANDIN_MODULE,
            f"--kubeconfig={self.kubeconfig}",
            f"--state-dir={self.state_dir / 'standin'}",
        ]
        return argv + [f"--server={ns}={state}" for ns, state in sorted(self.mariadb_servers.items())]

    # process control

    def _spawn(self, name: str, argv: list[str]) -> PidRecord:
        log = self.log_dir / f"{name}.log"
        with open(log, "ab") as out:
            out.write(f"\n### {time.strftime('%Y-%m-%dT%H:%M:%S')} {' '.join(argv)}\n".encode())
            out.flush()
            # A session of its own: one killpg ends the component and anything it forks,
            # and it is not hit by a Ctrl-C aimed at whoever started it.
            proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                # The stand-in is `python -m tools...`: it runs from the checkout.
                cwd=REPO_ROOT if name == STANDIN else self.state_dir,
            )
        self._procs[name] = proc
        rec = PidRecord(name, proc.pid, _proc_start_time(proc.pid), argv, str(log))
        (self.run_dir / f"{name}.pid").write_text(json.dumps(asdict(rec)) + "\n")
        self.progress(f"started {name} (pid {proc.pid}, log {log})")
        return rec

    def _pid_records(self) -> dict[str, PidRecord]:
        out: dict[str, PidRecord] = {}
        for name in COMPONENTS:
            p = self.run_dir / f"{name}.pid"
            try:
                out[name] = PidRecord(**json.loads(p.read_text()))
            except (OSError, ValueError, TypeError):
                continue
        return out

    def _kill_group(self, rec: PidRecord, timeout: float, sig: signal.Signals = signal.SIGTERM) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(rec.pid, sig)
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if not _alive(rec.pid, rec.start_time) and not _pids_in_group(rec.pid):
                break
            time.sleep(0.1)
        else:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(rec.pid, signal.SIGKILL)
            time.sleep(0.2)
        proc = self._procs.pop(rec.name, None)
        if proc is not None and proc.pid == rec.pid:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=5)
        else:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(rec.pid, os.WNOHANG)

    # health

    def _standin_heartbeat(self) -> tuple[bool, str]:
        """The stand-in writes a heartbeat every round; a stale one means it is stuck."""
        try:
            beat = json.loads((self.state_dir / "standin" / "heartbeat").read_text())
        except (OSError, ValueError):
            return False, "no heartbeat yet"
        age = time.time() - float(beat.get("at", 0))
        waiting = beat.get("waiting") or {}
        detail = f"heartbeat {age:.0f}s ago" + (f"; waiting: {waiting}" if waiting else "")
        return age < STANDIN_HEARTBEAT_S, detail

    def _health_url(self, name: str, state: ClusterState) -> str:
        if name == STANDIN:
            return str(self.state_dir / "standin" / "heartbeat")
        port = state.ports[name]
        if name == "etcd":
            return f"http://127.0.0.1:{port}/health"
        if name == "kwok":
            return f"https://127.0.0.1:{port}/healthz"
        if name == "kube-apiserver":
            return f"https://127.0.0.1:{port}/readyz"
        return f"https://127.0.0.1:{port}/healthz"

    def _ssl_context(self, name: str) -> ssl.SSLContext:
        if name == "kube-apiserver":
            ctx = ssl.create_default_context(cafile=str(self.pki / "ca.crt"))
            ctx.load_cert_chain(str(self.pki / "admin.crt"), str(self.pki / "admin.key"))
            return ctx
        # controller-manager and scheduler serve a self-signed certificate of their own.
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        return ctx

    def _probe(self, name: str, state: ClusterState) -> tuple[bool, str]:
        if name == STANDIN:
            return self._standin_heartbeat()
        url = self._health_url(name, state)
        ctx = self._ssl_context(name) if url.startswith("https") else None
        try:
            # The URL is built above: http(s) on 127.0.0.1 only.
            with urllib.request.urlopen(url, timeout=5, context=ctx) as resp:  # noqa: S310
                body = resp.read(2000).decode(errors="replace").strip()
                ok = resp.status == 200 and (name != "etcd" or '"health":"true"' in body)
                return ok, body[:200]
        except urllib.error.HTTPError as exc:
            return False, f"HTTP {exc.code}: {exc.read(300).decode(errors='replace')}"
        except (OSError, ValueError) as exc:
            return False, str(exc)

    def _wait_healthy(self, name: str, state: ClusterState, deadline: float) -> None:
        detail = ""
        while time.monotonic() < deadline:
            rec = self._pid_records().get(name)
            if rec is None or not _alive(rec.pid, rec.start_time):
                raise ControlPlaneError(f"step 'start {name}' failed: the process exited\n" + self._log_tail(name))
            ok, detail = self._probe(name, state)
            if ok:
                return
            time.sleep(0.5)
        raise ControlPlaneError(f"step 'start {name}' failed: not healthy in time ({detail})\n" + self._log_tail(name))

    def _log_tail(self, name: str, lines: int = 30) -> str:
        try:
            text = (self.log_dir / f"{name}.log").read_text(errors="replace")
        except OSError:
            return ""
        return f"--- last lines of {self.log_dir / (name + '.log')}:\n" + "\n".join(text.splitlines()[-lines:])

    # cluster objects

    def _bootstrap(self, deadline: float) -> None:
        from kubernetes import client

        with contextlib.closing(self.api_client()) as api:
            self._apply_crds(client.ApiextensionsV1Api(api), deadline, self._kwok_crd_docs())
            self._apply_crds(client.ApiextensionsV1Api(api), deadline, self._crd_docs())
            self._create_storage(client.StorageV1Api(api), client.CoreV1Api(api))
            self._create_nodes(client.CoreV1Api(api))
            self._create_operator_namespaces(client.CoreV1Api(api))

    def _kwok_crd_docs(self) -> Iterator[tuple[Path, dict[str, Any]]]:
        module = kwok_module_dir(KWOK_VERSION, progress=self.progress)
        for rel in KWOK_CRDS:
            path = module / rel
            yield path, yaml.safe_load(path.read_text())

    def _crd_docs(self) -> Iterator[tuple[Path, dict[str, Any]]]:
        if self.crds_dir is None:
            self.progress("no CRDs folder (set FLIGHTDECK_CRDS_DIR); skipping the upstream CRDs")
            return
        if not self.crds_dir.is_dir():
            raise ControlPlaneError(f"step 'apply CRDs' failed: {self.crds_dir} is not a folder")
        files = sorted(p for p in self.crds_dir.rglob("*") if p.suffix in (".yaml", ".yml") and p.is_file())
        for path in files:
            with open(path) as fh:
                for doc in yaml.safe_load_all(fh):
                    # rook's crds.yaml starts with an empty document.
                    if isinstance(doc, dict) and doc.get("kind") == "CustomResourceDefinition":
                        yield path, doc

    def _apply_crds(self, ext: Any, deadline: float, docs: Iterable[tuple[Path, dict[str, Any]]]) -> None:
        from kubernetes.client.exceptions import ApiException

        names: list[str] = []
        for path, doc in docs:
            name = doc["metadata"]["name"]
            names.append(name)
            try:
                ext.create_custom_resource_definition(doc)
            except ApiException as exc:
                if exc.status != 409:
                    raise ControlPlaneError(
                        f"step 'apply CRD {name}' from {path} failed: {exc.status} {exc.body}"
                    ) from exc
                current = ext.read_custom_resource_definition(name)
                doc.setdefault("metadata", {})["resourceVersion"] = current.metadata.resource_version
                ext.replace_custom_resource_definition(name, doc)
        self.progress(f"applied {len(names)} CRDs; waiting for Established")
        pending = set(names)
        while pending and time.monotonic() < deadline:
            for name in list(pending):
                crd = ext.read_custom_resource_definition(name)
                conds = {c.type: c.status for c in (crd.status.conditions or [])}
                if conds.get("Established") == "True":
                    pending.discard(name)
            if pending:
                time.sleep(0.5)
        if pending:
            raise ControlPlaneError(f"step 'wait CRDs Established' timed out: {sorted(pending)}")

    def _create_or_skip(self, create: Callable[[Any], Any], body: dict[str, Any]) -> None:
        from kubernetes.client.exceptions import ApiException

        try:
            create(body)
        except ApiException as exc:
            if exc.status != 409:
                raise ControlPlaneError(
                    f"step 'create {body['kind']} {body['metadata']['name']}' failed: {exc.status} {exc.body}"
                ) from exc

    def _create_storage(self, storage: Any, core: Any) -> None:
        if self.create_storage_classes:
            self._create_storage_classes(storage)
        self._create_volume_pool(core)

    def _create_storage_classes(self, storage: Any) -> None:
        self._create_or_skip(
            storage.create_storage_class,
            {
                "apiVersion": "storage.k8s.io/v1",
                "kind": "StorageClass",
                "metadata": {"name": "rook-cephfs"},
                # Same provisioner name as rook's CephFS CSI driver; nothing serves it here, so
                # claims bind only to the pre-created pool below.
                "provisioner": "rook-ceph.cephfs.csi.ceph.com",
                "reclaimPolicy": "Retain",
                "volumeBindingMode": "Immediate",
                "allowVolumeExpansion": True,
            },
        )
        self._create_or_skip(
            storage.create_storage_class,
            {
                "apiVersion": "storage.k8s.io/v1",
                "kind": "StorageClass",
                "metadata": {
                    "name": "standard",
                    "annotations": {"storageclass.kubernetes.io/is-default-class": "true"},
                },
                "provisioner": "kubernetes.io/no-provisioner",
                "reclaimPolicy": "Retain",
                "volumeBindingMode": "Immediate",
            },
        )
        self.progress("created StorageClasses rook-cephfs and standard (default)")

    def _create_volume_pool(self, core: Any) -> None:
        pools = (
            ("rook-cephfs", "ReadWriteMany", self.rwx_volumes, self.rwx_size, "cephfs"),
            ("standard", "ReadWriteOnce", self.rwo_volumes, self.rwo_size, "standard"),
        )
        for sc, mode, count, size, prefix in pools:
            for i in range(count):
                name = f"pool-{prefix}-{i:03d}"
                self._create_or_skip(
                    core.create_persistent_volume,
                    {
                        "apiVersion": "v1",
                        "kind": "PersistentVolume",
                        "metadata": {"name": name, "labels": {POOL_LABEL: sc}},
                        "spec": {
                            "storageClassName": sc,
                            "accessModes": [mode],
                            "capacity": {"storage": size},
                            "persistentVolumeReclaimPolicy": "Retain",
                            "volumeMode": "Filesystem",
                            # Never mounted (kwok runs no containers); the path only has to be
                            # a valid absolute path.
                            "hostPath": {"path": str(self.state_dir / "volumes" / name)},
                        },
                    },
                )
        self.progress(
            f"created {self.rwx_volumes} RWX ({self.rwx_size}, rook-cephfs) and "
            f"{self.rwo_volumes} RWO ({self.rwo_size}, standard) PersistentVolumes"
        )

    def _create_operator_namespaces(self, core: Any) -> None:
        """The namespaces the operators whose CRDs this cluster carries run in. A real cluster
        that runs them has these (their Helm releases create them); objects such as Velero
        Schedules live there."""
        for name in OPERATOR_NAMESPACES:
            self._create_or_skip(
                core.create_namespace, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
            )

    def _create_nodes(self, core: Any) -> None:
        for i in range(self.nodes):
            name = f"kwok-node-{i}"
            self._create_or_skip(
                core.create_node,
                {
                    "apiVersion": "v1",
                    "kind": "Node",
                    "metadata": {
                        "name": name,
                        "annotations": {
                            "kwok.x-k8s.io/node": "fake",
                            "node.alpha.kubernetes.io/ttl": "0",
                        },
                        "labels": {
                            "kubernetes.io/arch": "amd64",
                            "kubernetes.io/os": "linux",
                            "kubernetes.io/hostname": name,
                            "kubernetes.io/role": "agent",
                            "node-role.kubernetes.io/agent": "",
                            "type": "kwok",
                            "topology.kubernetes.io/zone": f"zone-{chr(ord('a') + i % 3)}",
                        },
                    },
                    "spec": {},
                    "status": {
                        "allocatable": {
                            "cpu": "32",
                            "memory": "256Gi",
                            "pods": "110",
                            "ephemeral-storage": "1Ti",
                        },
                        "capacity": {
                            "cpu": "32",
                            "memory": "256Gi",
                            "pods": "110",
                            "ephemeral-storage": "1Ti",
                        },
                        "phase": "Running",
                    },
                },
            )

    def _wait_cluster_ready(self, deadline: float) -> None:
        """Wait for the signs that the controllers work: default SA, Ready nodes."""
        from kubernetes import client
        from kubernetes.client.exceptions import ApiException

        with contextlib.closing(self.api_client()) as api:
            core = client.CoreV1Api(api)
            while True:
                try:
                    core.read_namespaced_service_account("default", "default")
                    break
                except ApiException as exc:
                    if exc.status != 404:
                        raise
                if time.monotonic() > deadline:
                    raise ControlPlaneError(
                        "step 'wait for the default ServiceAccount' timed out\n"
                        + self._log_tail("kube-controller-manager")
                    )
                time.sleep(0.5)
            while True:
                ready = [
                    n
                    for n in core.list_node().items
                    if any(
                        c.type == "Ready" and c.status == "True"
                        for c in ((n.status.conditions if n.status else None) or [])
                    )
                ]
                if len(ready) >= self.nodes:
                    return
                if time.monotonic() > deadline:
                    raise ControlPlaneError("step 'wait for Ready nodes' timed out\n" + self._log_tail("kwok"))
                time.sleep(0.5)


# --- CLI ------------------------------------------------------------------------------------


def _print_status(rows: Iterable[ComponentStatus]) -> None:
    for r in rows:
        state = "healthy" if r.healthy else ("running" if r.running else "stopped")
        pid = r.pid if r.pid is not None else "-"
        print(f"{r.name:<24} {state:<8} pid={pid:<8} {r.endpoint}  {r.detail[:80]}")


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="local Kubernetes control plane (loopback only)")
    sub = ap.add_subparsers(dest="cmd", required=True)
    p_start = sub.add_parser("start", help="start and print the admin kubeconfig path")
    p_start.add_argument("--state-dir", help="state folder (default: a new temp folder)")
    p_start.add_argument(
        "--crds-dir",
        help="CRDs to apply (default: $FLIGHTDECK_CRDS_DIR or ../shared/crds beside the repo)",
    )
    p_start.add_argument("--nodes", type=int, default=3)
    p_start.add_argument(
        "--no-storage-classes",
        action="store_true",
        help="create the PV pool but not the rook-cephfs/standard StorageClasses",
    )
    p_start.add_argument(
        "--mariadb",
        action="append",
        default=[],
        metavar="NAMESPACE=STATE_DIR",
        help="run the mariadb-operator stand-in for MariaDB resources in NAMESPACE, backed by the "
        "tools.mariadb_server in STATE_DIR (repeatable)",
    )
    p_start.add_argument("--timeout", type=float, default=300.0)
    for name in ("stop", "status"):
        p = sub.add_parser(name)
        p.add_argument("--state-dir", required=True)
        if name == "status":
            p.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    try:
        if args.cmd == "start":
            state_dir = args.state_dir or tempfile.mkdtemp(prefix="flightdeck-cp-")
            servers: dict[str, str | os.PathLike[str]] = {}
            for item in args.mariadb:
                namespace, sep, server_dir = item.partition("=")
                if not sep or not namespace or not server_dir:
                    ap.error(f"--mariadb {item!r}: expected NAMESPACE=STATE_DIR")
                servers[namespace] = server_dir
            cp = ControlPlane(
                state_dir,
                crds_dir=args.crds_dir,
                nodes=args.nodes,
                create_storage_classes=not args.no_storage_classes,
                mariadb_servers=servers,
            )
            kubeconfig = cp.start(timeout=args.timeout)
            print(f"state dir: {cp.state_dir}", file=sys.stderr)
            print(kubeconfig)
            return 0
        cp = ControlPlane(args.state_dir)
        if args.cmd == "stop":
            cp.stop()
            return 0
        rows = cp.status()
        if args.json:
            print(json.dumps([asdict(r) for r in rows], indent=2))
        else:
            _print_status(rows)
        return 0 if all(r.healthy for r in rows) else 1
    except ControlPlaneError as exc:
        print(f"controlplane: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
