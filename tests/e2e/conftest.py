"""Fixtures of the end-to-end tier: the real Pulumi engine, the local control plane with its
MariaDB servers, and a stack of the SQL test program.

``engine`` (session) runs ``tools.pulumi_toolchain ensure`` with its progress printed live (a
cold build of the CLI, the language host and the kubernetes and random plugins takes 30-45
minutes on 2 cores), then applies the export lines of ``tools.pulumi_toolchain env`` to
``os.environ`` for the rest of the session.

``rig`` (session) starts two MariaDB servers (admin account ``rig``, so ``root`` is left to the
mariadb-operator stand-in) and the local control plane with the stand-in mapping namespace
``mariadb`` (the local stack, reached by port-forward) and ``mariadb-direct`` (a second stack
that connects directly) to them.

``sql_env`` (module) is a fresh file-backend stack of ``tests/e2e/programs/sql`` whose
admin connection points at the ``mariadb_primary`` server; it is destroyed and removed
afterwards, and every account/database with the module's name prefix is dropped.

A missing prerequisite fails the test when ``CI=true`` and skips it elsewhere.
"""

from __future__ import annotations

import os
import secrets
import shlex
import shutil
import string
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pulumi import automation as auto

from tests.conftest import unavailable
from tests.e2e.platform_rig import Rig
from tests.e2e.sql_stack import (
    REPO_ROOT,
    Engine,
    SqlEnv,
    SqlStack,
    baseline_sites,
    cleanup_server,
    workspace,
    write_project,
)
from tools.controlplane import ControlPlane, ControlPlaneError, default_crds_dir
from tools.mariadb_server import MariaDBServer, MariaDBServerError, ensure_installed

VENV = REPO_ROOT / ".venv"
VENV_PYTHON = VENV / "bin" / "python"
ENSURE_TIMEOUT_S = 3600  # a cold build of engine, host and plugins is 30-45 minutes on 2 cores
RIG_ADMIN = "rig"


def _toolchain(args: list[str], request: pytest.FixtureRequest, timeout: float, echo: bool = True) -> tuple[int, str]:
    """Run ``python -m tools.pulumi_toolchain ARGS`` and echo its output live (capture off)."""
    capman = request.config.pluginmanager.getplugin("capturemanager")
    cmd = [str(VENV_PYTHON), "-m", "tools.pulumi_toolchain", *args]
    lines: list[str] = []
    deadline = time.monotonic() + timeout
    with subprocess.Popen(
        cmd, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1
    ) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line.rstrip("\n"))
            if echo and capman is not None:
                with capman.global_and_fixture_disabled():
                    print(f"[pulumi toolchain] {line.rstrip()}", file=sys.stderr, flush=True)
            if time.monotonic() > deadline:
                proc.kill()
                unavailable(f"`{' '.join(cmd[1:])}` took longer than {timeout:.0f}s")
        code = proc.wait()
    return code, "\n".join(lines)


def parse_exports(text: str, base: dict[str, str]) -> dict[str, str]:
    """``export K=V`` lines (shell-quoted, may reference ``$VAR``) -> {K: expanded V}."""
    out: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line.startswith("export "):
            continue
        (assignment,) = shlex.split(line[len("export ") :])
        key, _, value = assignment.partition("=")
        out[key] = string.Template(value).safe_substitute({**base, **out})
    return out


@pytest.fixture(scope="session")
def engine(request: pytest.FixtureRequest) -> Iterator[Engine]:
    if not VENV_PYTHON.exists():
        unavailable(f"no project venv at {VENV}")
    start = time.monotonic()
    code, log = _toolchain(["ensure"], request, ENSURE_TIMEOUT_S)
    if code != 0:
        unavailable(f"`tools.pulumi_toolchain ensure` exited {code}:\n{log[-3000:]}")
    code, exports = _toolchain(["env"], request, 120, echo=False)
    if code != 0:
        unavailable(f"`tools.pulumi_toolchain env` exited {code}:\n{exports}")
    env = parse_exports(exports, dict(os.environ))
    pulumi = shutil.which("pulumi", path=env.get("PATH"))
    if not env.get("PULUMI_HOME") or pulumi is None:
        unavailable(f"`tools.pulumi_toolchain env` gave no usable PATH/PULUMI_HOME:\n{exports}")
    proc = subprocess.run([pulumi, "version"], env={**os.environ, **env}, capture_output=True, text=True, timeout=60)
    if proc.returncode != 0:
        unavailable(f"`{pulumi} version` failed: {proc.stdout}{proc.stderr}")
    version = proc.stdout.strip()
    print(f"[pulumi toolchain] engine {version} ready in {time.monotonic() - start:.1f}s", file=sys.stderr)
    with pytest.MonkeyPatch.context() as mp:
        for key, value in env.items():
            mp.setenv(key, value)
        yield Engine(env=env, cli_root=Path(pulumi).resolve().parent.parent, version=version)


@pytest.fixture(scope="module")
def sql_env(
    engine: Engine, mariadb_primary: MariaDBServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SqlEnv]:
    prefix = f"e{secrets.token_hex(3)}"
    root = tmp_path_factory.mktemp("e2e-sql")
    project_dir = write_project(root / "project", VENV)
    ws = workspace(engine, project_dir, root / "backend")
    stack = auto.Stack.create("e2e", ws)
    admin: dict[str, Any] = mariadb_primary.info.as_connection_input()
    sites = baseline_sites(prefix)
    env = SqlEnv(SqlStack(stack, root / "backend", admin), mariadb_primary, prefix, sites, engine)
    env.secrets_used.update([str(admin["password"]), *(s.password for s in sites)])
    try:
        yield env
    finally:
        try:
            if env.stack.resources():
                env.stack.destroy()
            ws.remove_stack("e2e", force=True)
        finally:
            cleanup_server(mariadb_primary, prefix)


# Namespaces of the MariaDB resources the e2e stacks declare, each backed by its own server.
LOCAL_MARIADB_NAMESPACE = "mariadb"
DIRECT_MARIADB_NAMESPACE = "mariadb-direct"


@pytest.fixture(scope="session")
def rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    if default_crds_dir() is None:
        unavailable("no CRD folder (set FLIGHTDECK_CRDS_DIR or provide ../shared/crds)")
    servers: dict[str, MariaDBServer] = {}
    plane: ControlPlane | None = None
    try:
        ensure_installed()
        for namespace in (LOCAL_MARIADB_NAMESPACE, DIRECT_MARIADB_NAMESPACE):
            servers[namespace] = MariaDBServer.create(admin_user=RIG_ADMIN).start()
        plane = ControlPlane(
            tmp_path_factory.mktemp("controlplane"),
            mariadb_servers={ns: server.state_dir for ns, server in servers.items()},
        )
        plane.start()
    except (MariaDBServerError, ControlPlaneError, OSError) as exc:
        if plane is not None:
            plane.stop()
        for server in servers.values():
            server.stop()
        unavailable(f"cannot start the local rig: {exc}")
    assert plane is not None
    try:
        yield Rig(plane, servers)
    finally:
        try:
            plane.stop()
        finally:
            for server in servers.values():
                server.stop()
