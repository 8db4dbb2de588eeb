"""flightdeck at hosting scale on the real engine, beside a baseline and the peer, in one command.

    .venv/bin/python -m bench.engine_scale 100              # N = 100 sites, 3 repeats, all parts
    .venv/bin/python -m bench.engine_scale 1000 --preview-only --repeat 1
    .venv/bin/python -m bench.engine_scale 100 --parts sql  # only the SQL comparison

What one run does for N sites (every part through the same pulumi CLI 3.274.1, upstream's
Python language host, the kubernetes 4.25.0 and random 4.21.1 plugins, and, for the peer,
pulumi-mysql 3.3.0 built by ``bench/peer_toolchain.py``; all programs run in the benchmark's
own virtualenv with the project's pins):

``fleet``
    The real program (``__main__.py`` + ``components/``) with a generated stack of N sites
    (``bench/fleet.py``) against the local control plane (``tools/controlplane.py``) and a
    local MariaDB behind the MariaDB resource's pods. ``pulumi preview``, ``pulumi up``
    (create), no-op ``pulumi up`` and ``pulumi refresh``: wall time, the server's statement,
    ping, connection and write counters, peak RSS of every process, state file size.
``baseline``
    ``bench/programs/baseline``: as many ConfigMaps and RandomStrings as the fleet has custom
    resources, through the same engine and plugins: what the engine costs with no program.
``sql``
    Each site's database, then database + user + grant, with flightdeck's SQL providers
    (``bench/programs/sql``) and with pulumi-mysql (``bench/programs/peer``), on one MariaDB,
    alternating, each repeat on fresh stacks; plus what the peer cannot do (users and grants
    on MariaDB >= 10.10, a database that already exists).

``up`` runs as the Automation API and flightdeck's CLI run it (``--yes --skip-preview``), so
its time is the update alone. Results go to ``--out`` as JSON (``bench/report.py`` writes the
tables of ``bench/RESULTS.md`` from them) and a table is printed. Repeat counts and the load
average at each operation are recorded: the machine is shared, so compare medians.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from bench import fleet, peer_toolchain
from bench.engine_run import Operation, run_pulumi
from bench.server_counters import CounterProbe, ServerDelta
from tools import pulumi_toolchain
from tools.controlplane import ControlPlane
from tools.mariadb_server import MariaDBServer, ensure_installed

REPO_ROOT = Path(__file__).resolve().parent.parent
PROGRAMS = REPO_ROOT / "bench" / "programs"
PASSPHRASE = "flightdeck-bench"  # noqa: S105 - throwaway stacks of a benchmark
STACK = "bench"
PARTS = ("fleet", "baseline", "sql")
RIG_ADMIN = "rig"
PEER_MAX_CONNECTIONS = 5000
# The components/ tree the programs run; --components swaps in another (an A/B of a change).
COMPONENTS = [REPO_ROOT / "components"]
# Extra engine environment for every operation (--env KEY=VALUE), e.g. PULUMI_SKIP_CHECKPOINTS=true.
ENGINE_ENV: dict[str, str] = {}
# What the fleet part runs, in this order (--fleet-phases): previews of the new stack, its first
# `up`, a no-op `up`, previews of the deployed stack, a refresh.
FLEET_PHASES = ("preview", "up", "noop", "preview_deployed", "refresh")


def _progress(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


@dataclass
class Engine:
    pulumi: Path
    env: dict[str, str]  # toolchain variables, PATH already prepended
    python: Path  # the benchmark's virtualenv


def engine() -> Engine:
    chain = pulumi_toolchain.ensure(progress=_progress)
    peer = peer_toolchain.ensure(progress=_progress)
    env = dict(os.environ)
    for key, value in chain.env().items():
        env[key] = f"{value}:{env.get('PATH', '')}" if key == "PATH" else value
    return Engine(chain.pulumi, env, peer.python)


# -- projects ---------------------------------------------------------------------------------


def write_project(directory: Path, name: str, program: Path, python: Path, with_components: bool) -> Path:
    """A project folder: the program, ``components/`` linked when it uses them, Pulumi.yaml."""
    directory.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(program, directory / "__main__.py")
    if with_components:
        # The program and the dynamic-provider host both run in this folder and import from it.
        os.symlink(COMPONENTS[0], directory / "components")
    venv = python.parent.parent
    (directory / "Pulumi.yaml").write_text(
        f"name: {name}\nruntime:\n  name: python\n  options:\n    toolchain: pip\n    virtualenv: {venv}\n"
    )
    return directory


@dataclass
class Stack:
    """One stack of one project with its own file backend."""

    engine: Engine
    work_dir: Path
    backend: Path
    log_dir: Path
    label: str
    extra_env: dict[str, str] = field(default_factory=dict)
    parallel: int | None = None

    @property
    def env(self) -> dict[str, str]:
        return {
            **self.engine.env,
            "PULUMI_BACKEND_URL": f"file://{self.backend}",
            "PULUMI_CONFIG_PASSPHRASE": PASSPHRASE,
            "NO_COLOR": "1",
            # --event-log is one of the CLI's debug commands (as the Automation API sets it).
            "PULUMI_DEBUG_COMMANDS": "true",
            **ENGINE_ENV,
            **self.extra_env,
        }

    def cli(self, *args: str) -> str:
        proc = subprocess.run(
            [str(self.engine.pulumi), *args, "--non-interactive"],
            cwd=self.work_dir, env=self.env, capture_output=True, text=True, check=False, timeout=600,
        )  # fmt: skip
        if proc.returncode != 0:
            raise RuntimeError(f"pulumi {' '.join(args[:3])} failed: {proc.stderr[-3000:] or proc.stdout[-3000:]}")
        return proc.stdout

    def init(self, config: Mapping[str, Any], secrets_: Mapping[str, str] | None = None) -> None:
        self.backend.mkdir(parents=True, exist_ok=True)
        self.cli("stack", "init", STACK, "--secrets-provider", "passphrase")
        stack_file = self.work_dir / f"Pulumi.{STACK}.yaml"
        document = yaml.safe_load(stack_file.read_text()) if stack_file.exists() else {}
        document = dict(document or {})
        document["config"] = {**(document.get("config") or {}), **config}
        stack_file.write_text(yaml.safe_dump(document, sort_keys=False))
        for key, value in (secrets_ or {}).items():
            self.cli("config", "set", "--secret", "--stack", STACK, key, value)

    def log_label(self, name: str) -> str:
        """What the logs of operation ``name`` are called in ``log_dir`` (``LABEL.events.jsonl``, ...)."""
        return f"{self.label}-{name}"

    def _op(self, name: str, args: Sequence[str]) -> Operation:
        extra = [f"--parallel={self.parallel}"] if self.parallel and args[0] != "preview" else []
        operation = run_pulumi(
            self.engine.pulumi, [*args, "--stack", STACK, *extra], self.work_dir, self.env, self.log_dir,
            self.log_label(name),
        )  # fmt: skip
        status = "ok" if operation.ok else "FAILED"
        _progress(f"{self.label} {name}: {operation.seconds:.1f}s {status} {operation.changes or ''}")
        return operation

    def preview(self, name: str = "preview", fast: bool = False, display: str = fleet.DEFAULT_DISPLAY) -> Operation:
        display_args, env = fleet.PREVIEW_DISPLAYS[display]
        if fast:
            # The file backend installs a snapshot manager even for a preview (with a persister that
            # discards) and re-serialises the whole deployment after every step: O(N^2) in the number
            # of resources (pulumi pkg/v3 v3.274.1 backend/diy/backend.go "We always install one
            # (even for preview and dry-run)", backend/snapshot.go saveSnapshot). Skipping checkpoints
            # skips exactly that work; a preview persists nothing either way.
            env = {**env, "PULUMI_SKIP_CHECKPOINTS": "true"}
        saved = dict(self.extra_env)
        self.extra_env.update(env)
        try:
            return self._op(name, ["preview", *display_args])
        finally:
            self.extra_env = saved

    def up(self, name: str = "up") -> Operation:
        return self._op(name, ["up", "--yes", "--skip-preview"])

    def refresh(self, name: str = "refresh") -> Operation:
        return self._op(name, ["refresh", "--yes", "--skip-preview"])

    def state_bytes(self) -> int:
        files = sorted(self.backend.glob(f".pulumi/stacks/**/{STACK}.json"))
        return files[0].stat().st_size if files else 0

    def remove(self) -> None:
        with_rm = subprocess.run(
            [str(self.engine.pulumi), "stack", "rm", STACK, "--force", "--yes", "--non-interactive"],
            cwd=self.work_dir, env=self.env, capture_output=True, text=True, check=False, timeout=600,
        )  # fmt: skip
        if with_rm.returncode != 0:
            _progress(f"{self.label}: stack rm failed: {with_rm.stderr[-500:]}")


@dataclass
class Measured:
    """One operation and, when a server was watched, its counters."""

    operation: Operation
    server: ServerDelta | None = None

    def to_dict(self) -> dict[str, Any]:
        data = self.operation.to_dict()
        if self.server is not None:
            data["server"] = self.server.to_dict()
        return data


def measured(probe: CounterProbe | None, run: Any) -> Measured:
    if probe is None:
        return Measured(run())
    with probe.measure() as delta:
        operation = run()
    return Measured(operation, delta)


# -- the rig ----------------------------------------------------------------------------------


@dataclass
class Rig:
    fleet_server: MariaDBServer
    sql_server: MariaDBServer
    control_plane: ControlPlane | None


@contextmanager
def rig(root: Path, sites: int, control_plane: bool) -> Iterator[Rig]:
    ensure_installed()
    with ExitStack() as stack:
        fleet_server = MariaDBServer.create(admin_user=RIG_ADMIN).start()
        stack.callback(fleet_server.stop)
        sql_server = MariaDBServer.create(admin_user=RIG_ADMIN).start()
        stack.callback(sql_server.stop)
        plane: ControlPlane | None = None
        if control_plane:
            pods = sites * fleet.WEB_REPLICAS + 20
            plane = ControlPlane(
                root / "controlplane",
                nodes=max(3, -(-pods // 100)),
                rwx_volumes=sites + 10,
                rwo_volumes=10,
                mariadb_servers={fleet.MARIADB_NAMESPACE: fleet_server.state_dir},
                progress=_progress,
            )
            stack.callback(plane.stop)
            plane.start(timeout=600)
        yield Rig(fleet_server, sql_server, plane)


# -- parts ------------------------------------------------------------------------------------


def run_fleet(
    eng: Engine,
    bench_rig: Rig,
    root: Path,
    sites: int,
    repeat: int,
    phases: set[str],
    parallel: int | None,
    result: dict[str, Any],
    preview_mode: str = "both",
    displays: Sequence[str] = (fleet.DEFAULT_DISPLAY,),
) -> None:
    """The fleet's ``phases`` (FLEET_PHASES) in order; any phase after "preview" deploys the stack first."""
    assert bench_rig.control_plane is not None
    server = bench_rig.fleet_server
    project = write_project(root / "fleet", "flightdeck", REPO_ROOT / "__main__.py", eng.python, True)
    stack = Stack(
        eng, project, root / "fleet-backend", root / "logs", f"fleet{sites}",
        extra_env={"KUBECONFIG": str(bench_rig.control_plane.kubeconfig)}, parallel=parallel,
    )  # fmt: skip
    stack.init(fleet.fleet_config(sites, "127.0.0.1", server.port))
    probe = CounterProbe(server)
    probe.calibrate()
    result.update({"sites": sites, "up": [], "noop": [], "refresh": []})
    previews = ("preview", "preview_fast", "preview_deployed")
    result.update({fleet.display_key(op, display): [] for op in previews for display in displays})

    def preview(op: str, label: str, fast: bool, display: str) -> str:
        """Runs and records one preview; returns the label its logs carry."""
        name = label if display == fleet.DEFAULT_DISPLAY else f"{label}-{display}"
        run = measured(probe, lambda: stack.preview(name, fast=fast, display=display))
        result[fleet.display_key(op, display)].append(run.to_dict())
        return stack.log_label(name)

    if "preview" in phases:
        logs: list[str] = []
        for i in range(repeat):
            for display in displays:
                if preview_mode in ("default", "both"):
                    logs.append(preview("preview", f"preview{i}", False, display))
                if preview_mode in ("fast", "both"):
                    logs.append(preview("preview_fast", f"preview-fast{i}", True, display))
        result["planned"] = _planned(stack.log_dir / f"{logs[0]}.events.jsonl")
    if phases <= {"preview"}:
        return
    result["up"].append(measured(probe, stack.up).to_dict())
    result["state_bytes"] = stack.state_bytes()
    result.setdefault("planned", _planned(stack.log_dir / f"{stack.log_label('up')}.events.jsonl"))
    if "noop" in phases:
        for i in range(repeat):
            result["noop"].append(measured(probe, lambda i=i: stack.up(f"noop{i}")).to_dict())
    # What a pull request's preview costs: the deployed stack, nothing changed.
    if "preview_deployed" in phases:
        for i in range(repeat):
            for display in displays:
                preview("preview_deployed", f"preview-deployed{i}", True, display)
    if "refresh" in phases:
        for i in range(repeat):
            result["refresh"].append(measured(probe, lambda i=i: stack.refresh(f"refresh{i}")).to_dict())


def _planned(event_log: Path) -> dict[str, int]:
    """Custom resources a preview plans, by family (kubernetes / other custom / components)."""
    families = {"kubernetes": 0, "other": 0, "components": 0}
    if not event_log.exists():
        return families
    for line in event_log.read_text().splitlines():
        try:
            event = json.loads(line)
        except json.JSONDecodeError:
            continue
        pre = event.get("resourcePreEvent")
        if pre is None:
            continue
        kind = str((pre.get("metadata") or {}).get("type") or "")
        if kind == "pulumi:pulumi:Stack" or kind.startswith("pulumi:providers:"):
            continue
        if kind.startswith("kubernetes:"):
            families["kubernetes"] += 1
        elif kind.startswith("flightdeck:"):
            families["components"] += 1
        else:
            families["other"] += 1
    return families


def run_baseline(
    eng: Engine, bench_rig: Rig, root: Path, planned: Mapping[str, int], repeat: int, preview_only: bool,
    parallel: int | None, result: dict[str, Any], preview_mode: str = "both",
) -> None:  # fmt: skip
    assert bench_rig.control_plane is not None
    project = write_project(root / "baseline", "bench-baseline", PROGRAMS / "baseline" / "__main__.py",
                            eng.python, False)  # fmt: skip
    stack = Stack(
        eng, project, root / "baseline-backend", root / "logs", "baseline",
        extra_env={"KUBECONFIG": str(bench_rig.control_plane.kubeconfig)}, parallel=parallel,
    )  # fmt: skip
    config_maps, randoms = planned["kubernetes"], planned["other"]
    stack.init({"bench-baseline:configMaps": config_maps, "bench-baseline:randoms": randoms,
                "bench-baseline:kubeContext": "flightdeck-local"})  # fmt: skip
    result.update({"configMaps": config_maps, "randoms": randoms, "preview": [], "preview_fast": [], "up": [],
                   "noop": []})  # fmt: skip
    for i in range(repeat):
        if preview_mode in ("default", "both"):
            result["preview"].append(Measured(stack.preview(f"preview{i}")).to_dict())
        if preview_mode in ("fast", "both"):
            result["preview_fast"].append(Measured(stack.preview(f"preview-fast{i}", fast=True)).to_dict())
    if preview_only:
        return
    result["up"].append(Measured(stack.up()).to_dict())
    for i in range(repeat):
        result["noop"].append(Measured(stack.up(f"noop{i}")).to_dict())


# SQL comparison cases: (label, program, kinds, sites multiplier)
SQL_CASES: tuple[tuple[str, str, tuple[str, ...], int], ...] = (
    ("flightdeck-databases", "sql", ("database",), 1),
    ("peer-databases", "peer", ("database",), 1),
    ("flightdeck-sites", "sql", ("database", "user", "grant"), 1),
    ("peer-databases-x3", "peer", ("database",), 3),
)


def _sql_stack(eng: Engine, root: Path, label: str, program: str, parallel: int | None) -> Stack:
    name = "bench-peer" if program == "peer" else "bench-sql"
    project = write_project(root / label, name, PROGRAMS / program / "__main__.py", eng.python, program == "sql")
    return Stack(eng, project, root / f"{label}-backend", root / "logs", label, parallel=parallel)


def _sql_config(
    program: str, server: MariaDBServer, sites: int, prefix: str, kinds: Sequence[str]
) -> tuple[dict[str, Any], dict[str, str]]:
    project = "bench-peer" if program == "peer" else "bench-sql"
    info = server.info
    config: dict[str, Any] = {f"{project}:sites": sites, f"{project}:prefix": prefix,
                              f"{project}:kinds": list(kinds)}  # fmt: skip
    secret_values = {f"{project}:passwordSeed": secrets.token_hex(8)}
    if program == "peer":
        config[f"{project}:endpoint"] = f"{info.host}:{info.port}"
        config[f"{project}:username"] = info.admin_user
        secret_values[f"{project}:password"] = info.admin_password
    else:
        secret_values[f"{project}:adminConnection"] = json.dumps(info.as_connection_input())
    return config, secret_values


def drop_prefixed(server: MariaDBServer, prefix: str) -> None:
    pattern = prefix.replace("_", "\\_") + "\\_%"
    for user, host in server.query("SELECT User, Host FROM mysql.user WHERE User LIKE %s", (pattern,)):
        server.query("DROP USER IF EXISTS %s@%s", (user, host))
    for (name,) in server.query("SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME LIKE %s",
                                (pattern,)):  # fmt: skip
        server.query(f"DROP DATABASE IF EXISTS `{name}`")


def run_sql(
    eng: Engine, bench_rig: Rig, root: Path, sites: int, repeat: int, parallel: int | None, result: dict[str, Any]
) -> None:
    server = bench_rig.sql_server
    # terraform-provider-mysql 1.9 (what pulumi-mysql 3.3.0 bridges) opens a new connection pool
    # in every CRUD call and never closes it (mysql/provider.go connectToMySQL): two connections
    # per database created, held until the plugin exits. With MariaDB's default max_connections
    # (151) its `up` stalls at ~75 new databases, retrying for 5 minutes per resource; the
    # comparison raises the limit so the peer can finish at all (recorded in the results).
    server.query(f"SET GLOBAL max_connections = {PEER_MAX_CONNECTIONS}")
    probe = CounterProbe(server)
    probe.calibrate()
    result.update({"sites": sites, "cases": {}, "findings": {}, "max_connections": PEER_MAX_CONNECTIONS})
    for r in range(repeat):
        for label, program, kinds, multiplier in SQL_CASES:
            prefix = f"b{r}{label.split('-')[0][:2]}{secrets.token_hex(2)}"
            stack = _sql_stack(eng, root / f"r{r}", label, program, parallel)
            config, secret_values = _sql_config(program, server, sites * multiplier, prefix, kinds)
            stack.init(config, secret_values)
            case = result["cases"].setdefault(label, {"create": [], "noop": [], "refresh": [], "noop_changes": []})
            case["create"].append(measured(probe, stack.up).to_dict())
            case["noop"].append(measured(probe, lambda s=stack: s.up("noop")).to_dict())
            case["refresh"].append(measured(probe, stack.refresh).to_dict())
            case["resources"] = sites * multiplier * len(kinds)
            stack.remove()
            drop_prefixed(server, prefix)
    result["findings"] = peer_findings(eng, bench_rig, root / "findings", parallel)


def peer_findings(eng: Engine, bench_rig: Rig, root: Path, parallel: int | None) -> dict[str, Any]:
    """What the peer cannot do here, and flightdeck doing the same: users and grants, adoption."""
    server = bench_rig.sql_server
    findings: dict[str, Any] = {"server_version": str(server.query("SELECT VERSION()")[0][0])}
    for program in ("peer", "sql"):
        # users and grants for 3 sites
        prefix = f"f{program[:2]}{secrets.token_hex(2)}"
        stack = _sql_stack(eng, root, f"{program}-users", program, parallel)
        stack.init(*_sql_config(program, server, 3, prefix, ("database", "user", "grant")))
        operation = stack.up()
        findings[f"{program}-users-and-grants"] = {"ok": operation.ok, "changes": operation.changes,
                                                   "errors": operation.errors[:2]}  # fmt: skip
        stack.remove()
        drop_prefixed(server, prefix)
        # adoption of a database that already exists
        prefix = f"a{program[:2]}{secrets.token_hex(2)}"
        server.query(f"CREATE DATABASE `{prefix}_0000`")
        stack = _sql_stack(eng, root, f"{program}-adopt", program, parallel)
        stack.init(*_sql_config(program, server, 1, prefix, ("database",)))
        operation = stack.up()
        findings[f"{program}-existing-database"] = {"ok": operation.ok, "changes": operation.changes,
                                                    "errors": operation.errors[:2]}  # fmt: skip
        stack.remove()
        drop_prefixed(server, prefix)
    return findings


def program_start(eng: Engine, sites: int, repeat: int) -> dict[str, Any]:
    """Interpreter + the program's imports + config validation of N sites, in a fresh process."""
    runs = []
    for _ in range(max(3, repeat)):
        proc = subprocess.run(
            [str(eng.python), "-m", "bench.startup", str(sites)],
            cwd=REPO_ROOT, env={**eng.env, "PYTHONPATH": str(REPO_ROOT)},
            capture_output=True, text=True, check=True, timeout=300,
        )  # fmt: skip
        runs.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    return {"runs": runs}


# -- report -----------------------------------------------------------------------------------


def _med(items: Sequence[Mapping[str, Any]], *path: str) -> float:
    return fleet.median(fleet.values_at(items, *path))


def summary_table(results: Mapping[str, Any]) -> str:
    sites = int(results["sites"])
    rows: list[list[object]] = []
    parts = results.get("parts", {})
    fleet_result = parts.get("fleet")
    baseline = parts.get("baseline")
    if fleet_result:
        for op in fleet.fleet_op_keys(fleet_result):
            items = fleet_result.get(op) or []
            if not items:
                continue

            writes = sum(sum((i.get("server") or {}).get("writes", {}).values()) for i in items) / len(items)
            rows.append([
                f"flightdeck {sites} sites: {op}", _med(items, "seconds"), len(items),
                _med(items, "server", "round_trips") / sites, _med(items, "server", "connections"), writes,
                max((i.get("peak_mib", {}).get("program", 0.0) for i in items), default=0.0),
                _med(items, "load_before"),
            ])  # fmt: skip
    if baseline:
        for op in ("preview", "preview_fast", "up", "noop"):
            items = baseline.get(op) or []
            if items:
                rows.append([f"baseline ({baseline['configMaps']} + {baseline['randoms']}): {op}",
                             _med(items, "seconds"), len(items), "", "", "",
                             max((i.get("peak_mib", {}).get("program", 0.0) for i in items), default=0.0),
                             _med(items, "load_before")])  # fmt: skip
    sql = parts.get("sql")
    if sql:
        for label, case in sql["cases"].items():
            for op in ("create", "noop", "refresh"):
                items = case[op]
                if not items:
                    continue
                writes = sum(sum((i.get("server") or {}).get("writes", {}).values()) for i in items) / len(items)
                per_site = _med(items, "server", "round_trips") / sites
                rows.append(
                    [
                        f"{label} ({case['resources']} resources): {op}",
                        _med(items, "seconds"),
                        len(items),
                        per_site,
                        _med(items, "server", "connections"),
                        writes,
                        "",
                        _med(items, "load_before"),
                    ]
                )
    header = ["operation", "median s", "runs", "SQL round trips / site", "connections", "writes", "program MiB",
              "load"]  # fmt: skip
    return fleet.markdown_table(header, rows)


def _terminate(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.engine_scale", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    ap.add_argument("sites", type=int)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--parts", default=",".join(PARTS), help=f"comma-separated subset of {', '.join(PARTS)}")
    ap.add_argument("--preview-only", action="store_true", help="fleet and baseline: preview only")
    ap.add_argument(
        "--preview-mode",
        choices=("default", "fast", "both"),
        default="both",
        help="previews as the engine ships, with PULUMI_SKIP_CHECKPOINTS=true (fast), or both",
    )
    ap.add_argument(
        "--fleet-phases",
        default=",".join(FLEET_PHASES),
        help=f"comma-separated subset of {', '.join(FLEET_PHASES)} (the fleet part; --preview-only: preview)",
    )
    ap.add_argument(
        "--preview-display",
        default=fleet.DEFAULT_DISPLAY,
        help=f"comma-separated displays each fleet preview runs in: {', '.join(fleet.PREVIEW_DISPLAYS)}",
    )
    ap.add_argument("--parallel", type=int, default=None, help="pulumi --parallel for up/refresh (default: engine's)")
    ap.add_argument("--out", type=Path, default=peer_toolchain.bench_cache() / "results")
    ap.add_argument("--keep", action="store_true", help="keep the work folder (logs, projects, state)")
    ap.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra engine environment for every operation, e.g. PULUMI_SKIP_CHECKPOINTS=true",
    )
    ap.add_argument(
        "--components",
        type=Path,
        default=None,
        help="run another components/ tree, e.g. an older commit's (git archive REV components)",
    )
    args = ap.parse_args(argv)
    if args.components is not None:
        COMPONENTS[0] = args.components.resolve()
    for item in args.env:
        key, sep, value = item.partition("=")
        if not sep or not key:
            ap.error(f"--env takes KEY=VALUE, not {item!r}")
        ENGINE_ENV[key] = value
    phases = {"preview"} if args.preview_only else {p for p in args.fleet_phases.split(",") if p}
    if not phases or phases - set(FLEET_PHASES):
        ap.error(f"--fleet-phases takes a comma-separated subset of {', '.join(FLEET_PHASES)}")
    displays = [d for d in args.preview_display.split(",") if d]
    if not displays or set(displays) - set(fleet.PREVIEW_DISPLAYS):
        ap.error(f"--preview-display takes a comma-separated subset of {', '.join(fleet.PREVIEW_DISPLAYS)}")
    parts = [p for p in args.parts.split(",") if p]
    unknown = set(parts) - set(PARTS)
    if unknown:
        ap.error(f"unknown part(s) {', '.join(sorted(unknown))}")
    # A SIGTERM (a CI timeout, `kill`) still stops the servers and the control plane.
    signal.signal(signal.SIGTERM, _terminate)
    eng = engine()
    root = Path(tempfile.mkdtemp(prefix=f"fd-bench-{args.sites}-"))
    started = time.monotonic()
    results: dict[str, Any] = {
        "sites": args.sites, "repeat": args.repeat, "parallel": args.parallel, "preview_only": args.preview_only,
        "started": time.strftime("%Y-%m-%dT%H:%M:%S"), "cpus": os.cpu_count(), "parts": {},
        "components": str(COMPONENTS[0]), "engine_env": ENGINE_ENV, "preview_mode": args.preview_mode,
        "preview_displays": displays, "fleet_phases": [p for p in FLEET_PHASES if p in phases],
    }  # fmt: skip
    _progress(f"N={args.sites}, parts {parts}, work folder {root}")
    try:
        results["program_start"] = program_start(eng, args.sites, args.repeat)
        with rig(root, args.sites, control_plane="fleet" in parts or "baseline" in parts) as bench_rig:
            if "fleet" in parts:
                run_fleet(eng, bench_rig, root, args.sites, args.repeat, phases, args.parallel,
                          results["parts"].setdefault("fleet", {}), args.preview_mode, displays)  # fmt: skip
            if "baseline" in parts:
                planned = (results["parts"].get("fleet") or {}).get("planned")
                if not planned:
                    raise SystemExit("the baseline part needs the fleet part (it registers as many resources)")
                run_baseline(eng, bench_rig, root, planned, args.repeat, args.preview_only, args.parallel,
                             results["parts"].setdefault("baseline", {}), args.preview_mode)  # fmt: skip
            if "sql" in parts:
                run_sql(eng, bench_rig, root, args.sites, args.repeat, args.parallel,
                        results["parts"].setdefault("sql", {}))  # fmt: skip
    finally:
        results["seconds"] = round(time.monotonic() - started, 1)
        args.out.mkdir(parents=True, exist_ok=True)
        suffix = "-preview" if args.preview_only else ""
        out_file = args.out / f"engine-{args.sites}{suffix}-{time.strftime('%Y%m%dT%H%M%S')}.json"
        out_file.write_text(json.dumps(results, indent=2) + "\n")
        _progress(f"results: {out_file}")
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
        else:
            _progress(f"work folder kept: {root}")
    print(summary_table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
