"""Helpers for the SQL end-to-end tier: a Pulumi stack driven through the Automation API,
plus read-only probes of the MariaDB server it deploys to.

Nothing here sleeps or polls: every Automation API call returns when the engine is done,
and every server probe is a single synchronous query.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import secrets
import shutil
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pymysql
from pulumi import automation as auto

from tools.mariadb_server import SQL_PROVIDER_WRITE_COUNTERS, MariaDBServer

REPO_ROOT = Path(__file__).resolve().parents[2]
PROGRAM_DIR = Path(__file__).resolve().parent / "programs" / "sql"
PROJECT = "flightdeck-e2e-sql"

WRITE_COUNTERS = SQL_PROVIDER_WRITE_COUNTERS


# -- stack config ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Site:
    """One site of the test program: a database, a user and one grant."""

    name: str
    database: str
    user: str
    password: str = field(repr=False)
    privileges: tuple[str, ...] = ()
    charset: str | None = None
    collation: str | None = None
    drop_on_delete: bool | None = None

    def config(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name,
            "database": self.database,
            "user": self.user,
            "privileges": list(self.privileges),
        }
        if self.charset is not None:
            out["charset"] = self.charset
        if self.collation is not None:
            out["collation"] = self.collation
        if self.drop_on_delete is not None:
            out["dropOnDelete"] = self.drop_on_delete
        return out

    def replace(self, **changes: Any) -> Site:
        return dataclasses.replace(self, **changes)


def write_project(directory: Path, venv: Path) -> Path:
    """Copy the test program into ``directory`` next to a Pulumi.yaml naming ``venv``."""
    directory.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(PROGRAM_DIR / "__main__.py", directory / "__main__.py")
    (directory / "Pulumi.yaml").write_text(
        f"name: {PROJECT}\n"
        "description: flightdeck e2e test program for the SQL dynamic providers\n"
        "runtime:\n"
        "  name: python\n"
        "  options:\n"
        f"    virtualenv: {venv}\n"
    )
    return directory


@dataclass(frozen=True)
class Engine:
    """The Pulumi CLI the toolchain provides and the environment it needs."""

    env: dict[str, str]  # the variables `tools.pulumi_toolchain env` exports
    cli_root: Path  # holds bin/pulumi (what PulumiCommand(root=...) wants)
    version: str

    def file_backend_env(self, backend_dir: Path) -> dict[str, str]:
        """The engine's environment plus a file backend, passphrase secrets and the repo on PYTHONPATH."""
        backend_dir.mkdir(parents=True, exist_ok=True)
        return {
            **self.env,
            "PULUMI_BACKEND_URL": f"file://{backend_dir}",
            "PULUMI_CONFIG_PASSPHRASE": "flightdeck-e2e",
            "PYTHONPATH": str(REPO_ROOT),
            "NO_COLOR": "1",
        }


def workspace(engine: Engine, project_dir: Path, backend_dir: Path) -> auto.LocalWorkspace:
    """A LocalWorkspace on ``project_dir`` with a file backend and passphrase secrets."""
    return auto.LocalWorkspace(
        work_dir=str(project_dir),
        pulumi_command=auto.PulumiCommand(root=str(engine.cli_root)),
        env_vars=engine.file_backend_env(backend_dir),
        secrets_provider="passphrase",
    )


@dataclass
class SqlEnv:
    """Everything a test needs: the stack, the server, and the baseline sites."""

    stack: SqlStack
    server: MariaDBServer
    prefix: str
    sites: list[Site]
    engine: Engine
    # every password this module ever handed to Pulumi (site passwords and the admin's)
    secrets_used: set[str] = field(default_factory=set, repr=False)

    def site(self, name: str) -> Site:
        return next(s for s in self.sites if s.name == name)

    def new_password(self, label: str) -> str:
        password = f"pw-{label}-{secrets.token_urlsafe(12)}"
        self.secrets_used.add(password)
        return password


def baseline_sites(prefix: str) -> list[Site]:
    def pw(name: str) -> str:
        return f"pw-{name}-{secrets.token_urlsafe(12)}"

    return [
        Site("alpha", f"{prefix}_alpha", f"{prefix}_alpha", pw("alpha"), ("SELECT", "INSERT")),
        Site("bravo", f"{prefix}_bravo", f"{prefix}_bravo", pw("bravo"), ("ALL",)),
        Site(
            "charlie",
            f"{prefix}_charlie",
            f"{prefix}_charlie",
            pw("charlie"),
            ("SELECT",),
            charset="utf8mb4",
            collation="utf8mb4_unicode_ci",
        ),
    ]


# -- operation results ------------------------------------------------------------------------------
@dataclass
class OpResult:
    """What one engine operation did."""

    summary: dict[str, int]
    # resource name (last URN segment) -> op, for every step that was not `same`
    steps: dict[str, str] = field(default_factory=dict)
    output: str = ""

    @property
    def changes(self) -> dict[str, int]:
        return {op: n for op, n in self.summary.items() if op != "same" and n}


class _Recorder:
    """Collects engine events (called on the Automation API's watcher thread)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.steps: dict[str, str] = {}
        self.errors: list[str] = []
        self.lines: list[str] = []

    def on_event(self, event: auto.EngineEvent) -> None:
        with self._lock:
            pre = event.resource_pre_event
            kind = pre.metadata.type if pre is not None else ""
            if pre is not None and kind != "pulumi:pulumi:Stack" and not kind.startswith("pulumi:providers:"):
                op = str(getattr(pre.metadata.op, "value", pre.metadata.op))
                if op != "same":
                    self.steps[pre.metadata.urn.split("::")[-1]] = op
            diag = event.diagnostic_event
            if diag is not None and diag.severity == "error":
                self.errors.append(diag.message)

    def on_output(self, line: str) -> None:
        with self._lock:
            self.lines.append(line)

    @property
    def output(self) -> str:
        return "\n".join(self.lines)


def _summary(raw: Any) -> dict[str, int]:
    return {str(getattr(k, "value", k)): int(v) for k, v in dict(raw or {}).items()}


class SqlStack:
    """The e2e stack: config writes and engine operations, each logged to ``transcript``."""

    def __init__(self, stack: auto.Stack, backend_dir: Path, admin: dict[str, Any]) -> None:
        self.stack = stack
        self.backend_dir = backend_dir
        self.admin = admin
        self.transcript: list[str] = []

    @property
    def project_dir(self) -> Path:
        return Path(self.stack.workspace.work_dir)

    def configure(self, sites: list[Site], admin: dict[str, Any] | None = None) -> None:
        """Set the whole program config in one ``pulumi config set-all``."""
        names = [s.name for s in sites]
        assert len(set(names)) == len(names), names
        self.stack.set_all_config(
            {
                "adminConnection": auto.ConfigValue(json.dumps(admin or self.admin), secret=True),
                "sites": auto.ConfigValue(json.dumps([s.config() for s in sites])),
                "sitePasswords": auto.ConfigValue(json.dumps({s.name: s.password for s in sites}), secret=True),
            }
        )

    def _run(self, what: str, fn: Any, **kwargs: Any) -> tuple[Any, _Recorder]:
        rec = _Recorder()
        try:
            result = fn(on_output=rec.on_output, on_event=rec.on_event, **kwargs)
        except auto.CommandError as exc:
            self.transcript.append(f"--- {what} FAILED\n{rec.output}")
            raise AssertionError(f"pulumi {what} failed: {exc}\nerrors: {rec.errors}") from None
        self.transcript.append(f"--- {what}\n{rec.output}")
        assert not rec.errors, f"pulumi {what} reported errors: {rec.errors}"
        return result, rec

    def preview(self) -> OpResult:
        result, rec = self._run("preview", self.stack.preview, diff=False)
        return OpResult(_summary(result.change_summary), rec.steps, rec.output)

    def up(self) -> OpResult:
        result, rec = self._run("up", self.stack.up)
        return OpResult(_summary(result.summary.resource_changes), rec.steps, rec.output)

    def refresh(self) -> OpResult:
        result, rec = self._run("refresh", self.stack.refresh)
        return OpResult(_summary(result.summary.resource_changes), rec.steps, rec.output)

    def destroy(self) -> OpResult:
        result, rec = self._run("destroy", self.stack.destroy)
        return OpResult(_summary(result.summary.resource_changes), rec.steps, rec.output)

    def converge(self, sites: list[Site]) -> OpResult:
        """Configure and ``up``; afterwards the stack matches ``sites`` exactly."""
        self.configure(sites)
        return self.up()

    def cli(self, args: list[str]) -> str:
        """Run ``pulumi ARGS --stack <this stack>`` in the workspace's environment; its stdout."""
        ws = self.stack.workspace
        assert isinstance(ws, auto.LocalWorkspace)
        proc = subprocess.run(
            [ws.pulumi_command.command, *args, "--stack", self.stack.name, "--non-interactive"],
            cwd=self.project_dir,
            env={**os.environ, **(ws.env_vars or {})},
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert proc.returncode == 0, f"pulumi {' '.join(args)} exited {proc.returncode}: {proc.stderr[-2000:]}"
        return proc.stdout

    def resources(self) -> dict[str, dict[str, Any]]:
        """State resources by name (last URN segment), excluding the stack and providers."""
        deployment = self.stack.export_stack().deployment or {}
        out: dict[str, dict[str, Any]] = {}
        for res in deployment.get("resources") or []:
            if res["type"].startswith("pulumi-python:dynamic/"):
                out[res["urn"].split("::")[-1]] = res
        return out


# -- server probes ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Snapshot:
    counters: dict[str, int]
    binlog_pos: str
    connections: int  # the server's `Connections` status: connection attempts so far


def snapshot(server: MariaDBServer) -> Snapshot:
    """Write counters, binlog GTID position and connection count, over one admin connection."""
    with server.connect() as conn, conn.cursor() as cur:
        cur.execute("SHOW GLOBAL STATUS WHERE Variable_name LIKE 'Com\\_%' OR Variable_name = 'Connections'")
        values = {str(name).lower(): int(value) for name, value in cur.fetchall()}
        cur.execute("SELECT @@GLOBAL.gtid_binlog_pos")
        row = cur.fetchone()
    missing = [c for c in (*WRITE_COUNTERS, "Connections") if c.lower() not in values]
    assert not missing, f"server has no status counter(s) {missing}"
    return Snapshot(
        counters={c: values[c.lower()] for c in WRITE_COUNTERS},
        binlog_pos=str(row[0] if row else ""),
        connections=values["connections"],
    )


@dataclass
class WriteDelta:
    counters: dict[str, int] = field(default_factory=dict)
    binlog_before: str = ""
    binlog_after: str = ""
    # connections opened by anyone but the probe itself during the `with` body
    connections: int = 0

    @property
    def nonzero(self) -> dict[str, int]:
        return {k: v for k, v in self.counters.items() if v}


@contextmanager
def server_writes(server: MariaDBServer) -> Iterator[WriteDelta]:
    """Delta of the write counters, binlog GTID position and connections over the ``with`` body.

    The probes themselves run only SHOW/SELECT, which touch none of the write counters; the
    closing probe's own connection is subtracted from ``connections``.
    """
    delta = WriteDelta()
    before = snapshot(server)
    yield delta
    after = snapshot(server)
    delta.counters = {k: after.counters[k] - before.counters[k] for k in WRITE_COUNTERS}
    delta.binlog_before, delta.binlog_after = before.binlog_pos, after.binlog_pos
    delta.connections = after.connections - before.connections - 1


@contextmanager
def statement_log(server: MariaDBServer, needle: str) -> Iterator[list[str]]:
    """Every query the server received during the ``with`` body that mentions ``needle``.

    Uses the general query log written to the ``mysql.general_log`` table, switched on only
    for the duration and emptied again afterwards.  Logging to a table is synchronous: the
    row is written before the statement's result is returned to the client.
    """
    found: list[str] = []
    old_output = str(server.query("SELECT @@GLOBAL.log_output")[0][0])
    old_enabled = int(server.query("SELECT @@GLOBAL.general_log")[0][0])
    server.query("SET GLOBAL general_log = 0")
    server.query("TRUNCATE TABLE mysql.general_log")
    server.query("SET GLOBAL log_output = 'TABLE'")
    server.query("SET GLOBAL general_log = 1")
    try:
        yield found
        server.query("SET GLOBAL general_log = 0")
        rows = server.query(
            "SELECT CONVERT(argument USING utf8mb4) FROM mysql.general_log "
            "WHERE command_type IN ('Query', 'Execute')"  # CSV table: rows stay in arrival order
        )
        found.extend(str(r[0]) for r in rows if needle in str(r[0]))
    finally:
        server.query("SET GLOBAL general_log = 0")
        server.query("TRUNCATE TABLE mysql.general_log")
        server.query("SET GLOBAL log_output = %s", (old_output,))
        server.query("SET GLOBAL general_log = %s", (old_enabled,))


_GRANT_RE = re.compile(r"^GRANT (?P<privs>.+?) ON (?P<target>\S+) TO ", re.IGNORECASE)


def _unescape_target(target: str) -> str:
    return target.replace("`", "").replace("\\_", "_").replace("\\%", "%")


def show_grants(server: MariaDBServer, user: str, host: str = "%") -> dict[str, set[str]]:
    """SHOW GRANTS of an account: ``{"db.*": {privileges}}`` (``*.*`` holds USAGE)."""
    try:
        rows = server.query("SHOW GRANTS FOR %s@%s", (user, host))
    except pymysql.err.OperationalError as exc:
        if exc.args and exc.args[0] == 1141:  # no such grant / user
            return {}
        raise
    out: dict[str, set[str]] = {}
    for (line,) in rows:
        match = _GRANT_RE.match(str(line))
        if match is None:
            continue
        privs = {p.strip().upper() for p in match.group("privs").split(",")}
        out.setdefault(_unescape_target(match.group("target")), set()).update(privs)
    return out


def db_grants(server: MariaDBServer, user: str, database: str, host: str = "%") -> set[str]:
    return show_grants(server, user, host).get(f"{database}.*", set())


def accounts(server: MariaDBServer, prefix: str) -> set[str]:
    rows = server.query("SELECT User FROM mysql.user WHERE User LIKE %s", (_like_prefix(prefix),))
    return {str(r[0]) for r in rows}


def databases(server: MariaDBServer, prefix: str) -> dict[str, tuple[str, str]]:
    rows = server.query(
        "SELECT SCHEMA_NAME, DEFAULT_CHARACTER_SET_NAME, DEFAULT_COLLATION_NAME "
        "FROM information_schema.SCHEMATA WHERE SCHEMA_NAME LIKE %s",
        (_like_prefix(prefix),),
    )
    return {str(r[0]): (str(r[1]), str(r[2])) for r in rows}


def db_grant_rows(server: MariaDBServer, prefix: str) -> list[tuple[str, str]]:
    rows = server.query("SELECT User, Db FROM mysql.db WHERE User LIKE %s", (_like_prefix(prefix),))
    return [(str(u), str(d)) for u, d in rows]


def _like_prefix(prefix: str) -> str:
    return prefix.replace("\\", "\\\\").replace("_", "\\_").replace("%", "\\%") + "%"


def run_in(server: MariaDBServer, database: str, statement: str) -> list[tuple[Any, ...]]:
    """One admin statement with ``database`` as the default database."""
    with server.connect(database=database) as conn, conn.cursor() as cur:
        cur.execute(statement)
        return list(cur.fetchall())


def can_login(server: MariaDBServer, user: str, password: str, database: str | None = None) -> bool:
    """Log in as ``user`` over plain TCP; False on an access-denied error."""
    try:
        with (
            server.connect(user=user, password=password, database=database, ssl_disabled=True) as conn,
            conn.cursor() as cur,
        ):
            cur.execute("SELECT CURRENT_USER()")
        return True
    except pymysql.err.OperationalError as exc:
        if exc.args and exc.args[0] in (1044, 1045, 1698):
            return False
        raise


def cleanup_server(server: MariaDBServer, prefix: str) -> None:
    """Drop every account and database whose name starts with ``prefix``."""
    for user, host in server.query("SELECT User, Host FROM mysql.user WHERE User LIKE %s", (_like_prefix(prefix),)):
        server.query("DROP USER IF EXISTS %s@%s", (user, host))
    for name in databases(server, prefix):
        server.query(f"DROP DATABASE IF EXISTS `{name}`")
