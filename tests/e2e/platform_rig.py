"""The whole flightdeck program on the real engine: project copies, stacks and cluster probes.

A :class:`PlatformStack` is a temporary copy of the project (``__main__.py``, ``Pulumi.yaml``,
``components/`` linked, one stack file) with a ``file://`` backend and passphrase secrets,
driven through :class:`flightdeck.api.Flightdeck` exactly as an operator's tooling would. The
stack file starts as one of the repository's (``Pulumi.local.yaml`` by default) and is edited
with :mod:`flightdeck.stack_file`, so config changes go through the same validated editor as
``flightdeck sites add``.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException
from ruamel.yaml import YAML

from flightdeck.api import Flightdeck, OperationResult, Settings
from tests.e2e.sql_stack import Engine
from tools.controlplane import ControlPlane
from tools.mariadb_server import MariaDBServer

REPO_ROOT = Path(__file__).resolve().parents[2]
VENV = REPO_ROOT / ".venv"
PASSPHRASE = "flightdeck-e2e-platform"


@dataclass
class Rig:
    """The local control plane with the mariadb-operator stand-in, and its MariaDB servers."""

    control_plane: ControlPlane
    servers: dict[str, MariaDBServer]  # MariaDB resource namespace -> the server behind it

    @property
    def kubeconfig(self) -> Path:
        return self.control_plane.kubeconfig

    def api(self) -> client.ApiClient:
        return self.control_plane.api_client()

    def core(self) -> client.CoreV1Api:
        return client.CoreV1Api(self.api())

    def apps(self) -> client.AppsV1Api:
        return client.AppsV1Api(self.api())

    def networking(self) -> client.NetworkingV1Api:
        return client.NetworkingV1Api(self.api())

    def custom(self) -> client.CustomObjectsApi:
        return client.CustomObjectsApi(self.api())

    def secret_data(self, namespace: str, name: str) -> dict[str, str]:
        secret = self.core().read_namespaced_secret(name, namespace)
        return {k: base64.b64decode(v).decode() for k, v in (secret.data or {}).items()}

    def exists(self, read: Callable[[], Any]) -> bool:
        try:
            read()
        except ApiException as exc:
            if exc.status == 404:
                return False
            raise
        return True


def write_project(directory: Path, stack: str, stack_file: Path) -> Path:
    """A copy of the project that runs the repository's program with one stack file."""
    directory.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(REPO_ROOT / "__main__.py", directory / "__main__.py")
    os.symlink(REPO_ROOT / "components", directory / "components")
    project = (REPO_ROOT / "Pulumi.yaml").read_text().replace("virtualenv: .venv", f"virtualenv: {VENV}")
    (directory / "Pulumi.yaml").write_text(project)
    shutil.copyfile(stack_file, directory / f"Pulumi.{stack}.yaml")
    return directory


@dataclass
class PlatformStack:
    """One stack of the real program in a project copy, plus what every operation reported."""

    rig: Rig
    engine: Engine
    work_dir: Path
    name: str
    backend_dir: Path
    results: list[OperationResult] = field(default_factory=list)

    @classmethod
    def create(
        cls, rig: Rig, engine: Engine, root: Path, name: str = "local", source: Path | None = None
    ) -> PlatformStack:
        work_dir = write_project(root / "project", name, source or REPO_ROOT / f"Pulumi.{name}.yaml")
        return cls(rig, engine, work_dir, name, root / "backend")

    @property
    def stack_file(self) -> Path:
        return self.work_dir / f"Pulumi.{self.name}.yaml"

    def settings(self) -> Settings:
        self.backend_dir.mkdir(parents=True, exist_ok=True)
        return Settings(
            work_dir=self.work_dir,
            backend_url=f"file://{self.backend_dir}",
            secrets_provider="passphrase",
            passphrase=PASSPHRASE,
            # The program's kubernetes Provider and the SQL port-forwards use the ambient kubeconfig.
            env={"KUBECONFIG": str(self.rig.kubeconfig), "NO_COLOR": "1"},
            pulumi_root=self.engine.cli_root,
            create_missing=True,
            lock_timeout=5,
        )

    def flightdeck(self) -> Flightdeck:
        return Flightdeck(self.settings())

    def _record(self, result: OperationResult) -> OperationResult:
        self.results.append(result)
        return result

    def preview(self) -> OperationResult:
        return self._record(self.flightdeck().preview(self.name))

    def up(self) -> OperationResult:
        return self._record(self.flightdeck().up(self.name))

    def refresh(self) -> OperationResult:
        return self._record(self.flightdeck().refresh(self.name))

    def destroy(self) -> OperationResult:
        return self._record(self.flightdeck().destroy(self.name))

    def destroy_everything(self) -> OperationResult:
        """Unprotect every resource, then destroy: how a team tears a stack down on purpose.
        Retained objects (site data) stay in the cluster and on the server."""
        self.pulumi("state", "unprotect", "--all", "--yes")
        return self.destroy()

    def pulumi(self, *argv: str) -> subprocess.CompletedProcess[str]:
        """``pulumi ARGV --stack <this stack>`` in the project copy with this stack's environment."""
        done = subprocess.run(
            [str(self.engine.cli_root / "bin" / "pulumi"), *argv, "--stack", self.name],
            cwd=self.work_dir,
            env={**os.environ, **self.settings().pulumi_env()},
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        if done.returncode != 0:
            raise AssertionError(
                f"pulumi {' '.join(argv)} exited {done.returncode}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
            )
        return done

    def cli(self, *argv: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
        """The ``flightdeck`` CLI (``python -m flightdeck``) on this project copy and stack environment."""
        return subprocess.run(
            [str(VENV / "bin" / "python"), "-m", "flightdeck", *argv, "-C", str(self.work_dir)],
            cwd=REPO_ROOT,
            env={**os.environ, **self.settings().pulumi_env()},
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def outputs(self) -> dict[str, Any]:
        return {key: out.value for key, out in self.flightdeck().outputs(self.name).items()}

    # -- config ------------------------------------------------------------------------------

    def config(self) -> dict[str, Any]:
        yaml = YAML(typ="safe")
        document: dict[str, Any] = yaml.load(self.stack_file.read_text())
        return dict(document.get("config") or {})

    @contextmanager
    def editing(self) -> Iterator[dict[str, Any]]:
        """Edit the stack file's ``config`` mapping in place (comments kept), e.g.
        ``with stack.editing() as config: config["flightdeck:sites"].append({...})``."""
        yaml = YAML()
        yaml.preserve_quotes = True
        document = yaml.load(self.stack_file.read_text())
        yield document["config"]
        with self.stack_file.open("w") as handle:
            yaml.dump(document, handle)

    def export(self) -> dict[str, Any]:
        exported: dict[str, Any] = json.loads(self.pulumi("stack", "export").stdout)
        return exported

    def state_resources(self) -> list[dict[str, Any]]:
        return list((self.export().get("deployment") or {}).get("resources") or [])


def as_json(proc: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    """The one JSON document a ``flightdeck --json`` command printed."""
    try:
        document: dict[str, Any] = json.loads(proc.stdout)
    except ValueError:
        raise AssertionError(f"not JSON (exit {proc.returncode}):\n{proc.stdout}\n{proc.stderr}") from None
    return document


def changed_steps(result: OperationResult) -> dict[str, str]:
    """``{resource name: op}`` of every step that changes something. Default providers are left
    out: the engine reports an output refresh of the dynamic-provider host's default provider as
    an ``update`` event when new dynamic resources use it, but counts it as ``same``."""
    ops: dict[str, str] = {}
    for step in result.steps:
        if step.op in ("same", "read") or step.type.startswith("pulumi:providers:"):
            continue
        # A replacement is reported as create-replacement, replace and delete-replaced steps.
        ops[step.name] = "replace" if step.op in REPLACE_STEPS or ops.get(step.name) == "replace" else step.op
    return ops


REPLACE_STEPS = ("create-replacement", "replace", "delete-replaced", "discard-replaced", "import-replacement")


def wait_for(description: str, check: Callable[[], Any], timeout: float = 120.0) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(0.5)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {description} (last: {last!r})")
