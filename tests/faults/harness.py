"""The fault-injection tier's tools: a captured stack, fault triggers, and the convergence checks.

* :class:`FaultStack` drives a :class:`tests.e2e.platform_rig.PlatformStack` through
  :class:`flightdeck.api.Flightdeck` and keeps everything an operation printed or reported
  (engine events, output lines, error messages, result documents) in a session-wide
  :class:`Capture`, which the secrets scan reads at the end.
* Faults are injected at controlled points: :class:`OnEvent` fires an action once an engine event
  matches (e.g. the K-th finished step of a site), :func:`statement_waiting` finds a provider's
  SQL statement while a held write lock keeps it running, :class:`PulumiKiller` SIGKILLs the
  ``pulumi`` CLI this process started.
* :func:`assert_converged` is what every case ends with: a further ``up`` changes nothing and
  writes no SQL (server counters and binlog), no MySQL account, grant or database exists that
  the state does not know, every Kubernetes object flightdeck created is in the state and every
  one in the state exists, and no data was dropped (:class:`Ledger`).
"""

from __future__ import annotations

import base64
import contextlib
import enum
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pymysql
from kubernetes.dynamic import DynamicClient

from components.naming import OWNED_BY_THE_STACK
from components.sql.identifiers import is_reserved_database, is_reserved_user
from flightdeck import stack_file
from flightdeck.api import OperationEvent, OperationFailedError, OperationResult
from tests.e2e.platform_rig import REPLACE_STEPS, PlatformStack, Rig
from tests.e2e.sql_stack import can_login, server_writes, show_grants
from tools.mariadb_server import MariaDBServer

REPO_ROOT = Path(__file__).resolve().parents[2]
PATCH_FORCE = next(iter(OWNED_BY_THE_STACK))
MYSQL_USER = "pulumi-python:dynamic/mysql:User"
MYSQL_GRANT = "pulumi-python:dynamic/mysql:Grant"
MYSQL_DATABASE = "pulumi-python:dynamic/mysql:Database"
# The rig server's own accounts: its admin (tools.mariadb_server) and its replication user.
RIG_ACCOUNTS = frozenset({"rig", "repl"})


# -- capture ----------------------------------------------------------------------------------------


def plain(value: Any) -> Any:
    """An engine event (nested SDK objects) as JSON-able data."""
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if hasattr(value, "__dict__"):
        return {k: plain(v) for k, v in vars(value).items() if not k.startswith("_")}
    return value


@dataclass
class Capture:
    """Everything the tier's operations showed anyone: the secrets scan reads it all."""

    events: list[str] = field(default_factory=list)  # the engine event stream, one JSON per event
    output: list[str] = field(default_factory=list)  # pulumi's output: the program's and the providers' logs
    errors: list[str] = field(default_factory=list)  # the message of every failed operation
    documents: list[str] = field(default_factory=list)  # result JSON (API to_dict, CLI --json)
    secrets: set[str] = field(default_factory=set, repr=False)  # every password seen, to scan for
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def texts(self) -> dict[str, str]:
        with self.lock:
            return {
                "engine events": "\n".join(self.events),
                "program and engine output": "\n".join(self.output),
                "error messages": "\n".join(self.errors),
                "result and CLI JSON": "\n".join(self.documents),
            }


EventHook = Callable[[OperationEvent], None]


@dataclass
class FaultStack:
    """A platform stack whose every operation is captured, and the server behind its MariaDB."""

    platform: PlatformStack
    server: MariaDBServer
    capture: Capture
    timings: dict[str, dict[str, float]]
    notes: dict[str, list[str]] = field(default_factory=dict)  # what each case observed, for the report
    ever_known: set[tuple[str, str, str, str]] = field(default_factory=set)  # every Kubernetes object a state held
    converged: bool = False

    def note(self, case: str, text: str) -> None:
        self.notes.setdefault(case, []).append(text)

    @property
    def rig(self) -> Rig:
        return self.platform.rig

    @property
    def name(self) -> str:
        return self.platform.name

    def _callbacks(self, on_event: EventHook | None) -> dict[str, Any]:
        def event(e: OperationEvent) -> None:
            if e.raw is not None:
                line = json.dumps(plain(e.raw), default=str)
                with self.capture.lock:
                    self.capture.events.append(line)
            elif e.message:
                with self.capture.lock:
                    self.capture.events.append(e.message)
            if on_event is not None:
                on_event(e)

        def output(line: str) -> None:
            with self.capture.lock:
                self.capture.output.append(line)

        return {"on_event": event, "on_output": output}

    def _keep(self, result: OperationResult) -> OperationResult:
        self.platform.results.append(result)
        with self.capture.lock:
            self.capture.documents.append(json.dumps(result.to_dict(), default=str))
            self.capture.documents.append(json.dumps(result.preview_digest(), default=str))
        return result

    def run(self, operation: str, on_event: EventHook | None = None, **kwargs: Any) -> OperationResult:
        """Run an operation that must succeed."""
        outcome = self.attempt(operation, on_event, **kwargs)
        if isinstance(outcome, OperationFailedError):
            raise AssertionError(f"{operation} failed: {outcome}\n{json.dumps(outcome.result.to_dict())[:4000]}")
        return outcome

    def fail_kept(self, error: BaseException) -> None:
        with self.capture.lock:
            self.capture.errors.append(str(error))
            if isinstance(error, OperationFailedError):
                self.capture.documents.append(json.dumps(error.result.to_dict(), default=str))

    def failing(self, operation: str, on_event: EventHook | None = None, **kwargs: Any) -> OperationFailedError:
        """Run an operation that must fail; its error (with the partial result)."""
        outcome = self.attempt(operation, on_event, **kwargs)
        if isinstance(outcome, OperationResult):
            raise AssertionError(f"{operation} was expected to fail and succeeded: {changed(outcome)}")
        return outcome

    def attempt(
        self, operation: str, on_event: EventHook | None = None, **kwargs: Any
    ) -> OperationResult | OperationFailedError:
        """Run an operation that may fail either way: its result, or its error."""
        fd = self.platform.flightdeck()
        method: Callable[..., OperationResult] = getattr(fd, operation)
        try:
            return self._keep(method(self.name, **self._callbacks(on_event), **kwargs))
        except OperationFailedError as error:
            self.fail_kept(error)
            self.platform.results.append(error.result)
            return error

    def up(self, on_event: EventHook | None = None, **kwargs: Any) -> OperationResult:
        return self.run("up", on_event, **kwargs)

    def state(self) -> list[dict[str, Any]]:
        return self.platform.state_resources()

    @contextlib.contextmanager
    def timed(self, case: str, phase: str) -> Iterator[None]:
        started = time.monotonic()
        try:
            yield
        finally:
            self.timings.setdefault(case, {})[phase] = round(time.monotonic() - started, 1)


def changed(result: OperationResult) -> dict[str, str]:
    """``{resource name: op}`` of every step that changes something (refresh: what drifted)."""
    ops: dict[str, str] = {}
    for step in result.steps:
        if step.op in ("same", "read", "refresh") or step.type.startswith("pulumi:providers:"):
            continue
        ops[step.name] = "replace" if step.op in REPLACE_STEPS or ops.get(step.name) == "replace" else step.op
    return ops


def failed_steps(result: OperationResult) -> set[str]:
    return {step.name for step in result.steps if step.status == "failed"}


def add_site(stack: FaultStack, name: str, cms: str = "drupal", **extra: Any) -> None:
    """A small site (one web pod, 1Gi of files) appended to the stack file through the validated editor.

    Its backups are off: the local stack's backup window has room for six sites' backups, and
    a new site's backups would move other sites' start times (updates no fault is about)."""
    site = {"name": name, "cms": cms, "domains": [f"{name}.flightdeck.test"], "replicas": 1, "filesSize": "1Gi",
            "backup": {"files": False, "database": False}}  # fmt: skip
    stack_file.add_site(stack.platform.stack_file, {**site, **extra})


# -- fault triggers ---------------------------------------------------------------------------------


class OnEvent:
    """An ``on_event`` hook that runs ``action`` once, the first time ``matches(event)`` is true.
    ``background`` runs it on a thread of its own (an action that takes seconds must not hold the
    engine's event stream); :meth:`wait` joins it and re-raises what it raised."""

    def __init__(
        self, matches: Callable[[OperationEvent], bool], action: Callable[[], Any], *, background: bool = False
    ) -> None:
        self.matches = matches
        self.action = action
        self.background = background
        self.fired = threading.Event()
        self.at: float | None = None
        self.result: Any = None
        self.error: BaseException | None = None
        self._thread: threading.Thread | None = None
        self._guard = threading.Lock()

    def __call__(self, event: OperationEvent) -> None:
        with self._guard:
            if self.fired.is_set() or not self.matches(event):
                return
            self.fired.set()
            self.at = time.monotonic()
        if self.background:
            self._thread = threading.Thread(target=self._run, daemon=True)
            self._thread.start()
        else:
            self._run()

    def _run(self) -> None:
        try:
            self.result = self.action()
        except BaseException as error:
            self.error = error

    def wait(self, timeout: float = 180.0) -> Any:
        if self._thread is not None:
            self._thread.join(timeout)
            assert not self._thread.is_alive(), f"the fault action still runs after {timeout:.0f}s"
        if self.error is not None:
            raise self.error
        return self.result


def finished_steps_of(site: str, count: int) -> Callable[[OperationEvent], bool]:
    """True at the ``count``-th finished step of a resource of ``site`` (components included)."""
    seen: set[str] = set()

    def matches(event: OperationEvent) -> bool:
        if event.kind == "step-done" and event.step is not None and event.step.name.startswith(site):
            seen.add(event.step.urn)
        return len(seen) >= count

    return matches


def step_done(name: str) -> Callable[[OperationEvent], bool]:
    return lambda e: e.kind == "step-done" and e.step is not None and e.step.name == name


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        if parent == pid:
            found.append(int(entry.name))
    return found


def descendants(pid: int) -> list[int]:
    out = []
    for child in _children(pid):
        out += [child, *descendants(child)]
    return out


def _argv(pid: int) -> list[bytes]:
    try:
        return [part for part in Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0") if part]
    except OSError:
        return []


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


class PulumiKiller:
    """SIGKILLs the ``pulumi <operation>`` process this test process started (found among its
    descendants), as a dying CI runner would. The plugins it started (language host, resource
    providers) are not its process group's business: they are recorded, and :meth:`reap` ends
    the ones still running afterwards, by pid."""

    def __init__(self, operation: str = "up") -> None:
        self.operation = operation.encode()
        self.killed: list[int] = []
        self.orphans: list[int] = []
        self.lingering: list[str] = []

    def __call__(self) -> None:
        procs = [
            pid
            for pid in descendants(os.getpid())
            if (argv := _argv(pid)) and os.path.basename(argv[0]) == b"pulumi" and self.operation in argv
        ]
        assert procs, "no running pulumi CLI to kill"
        for pid in procs:
            self.orphans += descendants(pid)
            os.kill(pid, signal.SIGKILL)
            self.killed.append(pid)

    def reap(self, grace: float = 2.0) -> None:
        time.sleep(grace)
        for pid in self.orphans:
            if alive(pid):
                self.lingering.append(os.path.basename(_argv(pid)[0]).decode() if _argv(pid) else str(pid))
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)


@contextlib.contextmanager
def writes_held(server: MariaDBServer) -> Iterator[pymysql.connections.Connection[Any]]:
    """``FLUSH TABLES WITH READ LOCK`` on an admin session of its own: every write statement
    (``CREATE DATABASE``, ``CREATE USER``, ``GRANT``, ``ALTER USER``) waits, visibly, on the
    server's backup lock, until the lock is released or the server dies."""
    conn = pymysql.connect(
        host="127.0.0.1",
        port=server.port,
        user=server.admin_user,
        password=server.admin_password.encode(),
        autocommit=True,
        connect_timeout=10,
    )
    try:
        with conn.cursor() as cur:
            cur.execute("FLUSH TABLES WITH READ LOCK")
        yield conn
    finally:
        with contextlib.suppress(Exception), conn.cursor() as cur:  # the server may have been killed under it
            cur.execute("UNLOCK TABLES")
        with contextlib.suppress(Exception):
            conn.close()


def statement_waiting(server: MariaDBServer, needle: str, timeout: float = 120.0) -> str:
    """Poll the process list until a statement mentioning ``needle`` waits on the held lock; its
    text with any quoted literal cut (an ``IDENTIFIED BY`` password never leaves this function)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rows = server.query(
            "SELECT INFO FROM information_schema.PROCESSLIST WHERE STATE = 'Waiting for backup lock' AND INFO LIKE %s",
            (f"%{needle}%",),
        )
        if rows:
            text = str(rows[0][0])
            return text.split(" IDENTIFIED", 1)[0]
        time.sleep(0.1)
    raise AssertionError(f"no statement mentioning {needle!r} waited on the write lock within {timeout:.0f}s")


# -- convergence ------------------------------------------------------------------------------------


def _kube_object_key(resource: dict[str, Any]) -> tuple[str, str, str, str]:
    """(apiVersion, kind, namespace, name) of a Kubernetes resource in the state."""
    outputs = resource.get("outputs") or {}
    metadata = outputs.get("metadata") or {}
    return (str(outputs.get("apiVersion")), str(outputs.get("kind")), str(metadata.get("namespace") or ""),
            str(metadata.get("name")))  # fmt: skip


def kube_resources(state: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        r
        for r in state
        if r["type"].startswith("kubernetes:") and r.get("custom") and not r["type"].startswith("pulumi:providers:")
        and not r.get("delete")
    ]  # fmt: skip


def orphaned_objects(
    rig: Rig, state: list[dict[str, Any]], ever_known: set[tuple[str, str, str, str]]
) -> tuple[set[tuple[str, str, str, str]], set[tuple[str, str, str, str]]]:
    """(objects flightdeck made that the state does not know, state objects that do not exist).

    flightdeck's objects are those carrying ``pulumi.com/patchForce`` (every object it declares:
    tests/unit/test_ownership_annotation.py) and those an earlier state of this stack held
    (``ever_known``, updated here); objects that controllers make from them (ReplicaSets, pods)
    have a controlling owner and are not flightdeck's.
    """
    known = {_kube_object_key(r) for r in kube_resources(state)}
    ever_known |= known
    dynamic = DynamicClient(rig.api())
    live: set[tuple[str, str, str, str]] = set()
    ours: set[tuple[str, str, str, str]] = set()
    for api_version, kind in sorted({(k[0], k[1]) for k in ever_known}):
        resource = dynamic.resources.get(api_version=api_version, kind=kind)
        for item in resource.get().items:
            meta = item.metadata
            if any(owner.get("controller") for owner in meta.ownerReferences or []):
                continue
            key = (api_version, kind, str(meta.namespace or ""), str(meta.name))
            live.add(key)
            if (meta.annotations or {}).get(PATCH_FORCE) == "true" or key in ever_known:
                ours.add(key)
    return ours - known, known - live


def sql_inventory(server: MariaDBServer) -> tuple[set[tuple[str, str]], set[tuple[str, str, str]], set[str]]:
    """(accounts, database-level grants, databases) on the server that belong to no one else."""
    accounts = {
        (str(user), str(host))
        for user, host in server.query("SELECT User, Host FROM mysql.user")
        if str(user) and not is_reserved_user(str(user)) and str(user) not in RIG_ACCOUNTS
    }
    grants = {
        (str(user), str(host), str(db).replace("\\_", "_"))
        for user, host, db in server.query("SELECT User, Host, Db FROM mysql.db")
        if (str(user), str(host)) in accounts
    }
    databases = {
        str(name)
        for (name,) in server.query("SELECT SCHEMA_NAME FROM information_schema.SCHEMATA")
        if not is_reserved_database(str(name))
    }
    return accounts, grants, databases


def state_sql(state: list[dict[str, Any]]) -> tuple[set[tuple[str, str]], set[tuple[str, str, str]], set[str]]:
    def outs(typ: str) -> list[dict[str, Any]]:
        return [r.get("outputs") or {} for r in state if r["type"] == typ and not r.get("delete")]

    accounts = {(o["user"], o["host"]) for o in outs(MYSQL_USER)}
    grants = {(o["user"], o["host"], o["database"]) for o in outs(MYSQL_GRANT) if o.get("table", "*") == "*"}
    databases = {o["database"] for o in outs(MYSQL_DATABASE)}
    return accounts, grants, databases


@dataclass
class Ledger:
    """Data written into every site's database and the identity of its stateful objects, checked
    after every case: a fault never drops a row, replaces a claim or recreates a namespace."""

    rows: dict[str, set[str]] = field(default_factory=dict)  # database -> notes written
    uids: dict[tuple[str, str, str], str] = field(default_factory=dict)  # (kind, namespace, name) -> uid

    def write(self, server: MariaDBServer, database: str, note: str) -> None:
        with server.connect(database=database) as conn, conn.cursor() as cur:
            cur.execute("CREATE TABLE IF NOT EXISTS fault_ledger (note VARCHAR(64) PRIMARY KEY)")
            cur.execute("INSERT IGNORE INTO fault_ledger (note) VALUES (%s)", (note,))
        self.rows.setdefault(database, set()).add(note)

    def remember(self, rig: Rig, namespace: str, claim: str) -> None:
        core = rig.core()
        self.uids.setdefault(("Namespace", "", namespace), core.read_namespace(namespace).metadata.uid)
        claim_uid = core.read_namespaced_persistent_volume_claim(claim, namespace).metadata.uid
        self.uids.setdefault(("PersistentVolumeClaim", namespace, claim), claim_uid)

    def check(self, rig: Rig, server: MariaDBServer) -> None:
        for database, notes in self.rows.items():
            with server.connect(database=database) as conn, conn.cursor() as cur:
                cur.execute("SELECT note FROM fault_ledger")
                present = {str(row[0]) for row in cur.fetchall()}
            assert notes <= present, f"rows lost from {database}: {sorted(notes - present)}"
        core = rig.core()
        for (kind, namespace, name), uid in self.uids.items():
            obj = (
                core.read_namespace(name)
                if kind == "Namespace"
                else core.read_namespaced_persistent_volume_claim(name, namespace)
            )
            assert obj.metadata.uid == uid, f"{kind} {namespace}/{name} was replaced (uid {uid} -> {obj.metadata.uid})"


def site_names(stack: FaultStack) -> list[str]:
    return [str(site["name"]) for site in stack.platform.config()["flightdeck:sites"]]


def assert_converged(stack: FaultStack, ledger: Ledger, case: str) -> OperationResult:
    """The checks every case ends with (see the module docstring); records the case's data."""
    with stack.timed(case, "no-op up"), server_writes(stack.server) as delta:
        result = stack.up()
    assert result.changes == 0, f"the up after recovery left changes: {changed(result)}"
    assert delta.nonzero == {}, f"a no-op up wrote SQL: {delta.nonzero}"
    assert delta.binlog_before == delta.binlog_after
    with stack.timed(case, "invariants"):
        state = stack.state()
        live_accounts, live_grants, live_databases = sql_inventory(stack.server)
        state_accounts, state_grants, state_databases = state_sql(state)
        assert live_accounts == state_accounts, (
            f"accounts the state does not know: {live_accounts - state_accounts}; "
            f"in the state only: {state_accounts - live_accounts}"
        )
        assert live_grants == state_grants, (
            f"grants the state does not know: {live_grants - state_grants}; "
            f"in the state only: {state_grants - live_grants}"
        )
        assert live_databases == state_databases, f"databases: live {live_databases}, state {state_databases}"
        for user, host in live_accounts:
            wide = show_grants(stack.server, user, host).get("*.*", set())
            assert wide <= {"USAGE"}, f"{user}@{host} holds global privileges {wide}"
        orphans, missing = orphaned_objects(stack.rig, state, stack.ever_known)
        assert not orphans, f"Kubernetes objects flightdeck created that the state does not know: {sorted(orphans)}"
        assert not missing, f"objects in the state that do not exist: {sorted(missing)}"
        for site in site_names(stack):
            settings = stack.rig.secret_data(site, f"{site}-db")
            stack.capture.secrets.add(settings["DB_PASSWORD"])
            assert can_login(stack.server, settings["DB_USER"], settings["DB_PASSWORD"], settings["DB_NAME"]), (
                f"{site}: the password in its Secret does not log in"
            )
            ledger.write(stack.server, settings["DB_NAME"], case)
            ledger.remember(stack.rig, site, f"{site}-files")
        ledger.check(stack.rig, stack.server)
    stack.converged = True
    return result


# -- secrets ----------------------------------------------------------------------------------------


def encodings(secret: str) -> set[str]:
    """The forms a leaked secret takes: plain, base64 (Kubernetes Secret data), JSON-escaped."""
    forms = {secret, json.dumps(secret)[1:-1], base64.b64encode(secret.encode()).decode()}
    return {form for form in forms if len(form) >= 8}


def leaks(texts: dict[str, str], secrets: set[str]) -> dict[str, int]:
    """``{where: how many secrets}`` for every text holding a secret in any encoding."""
    found: dict[str, int] = {}
    for where, text in texts.items():
        count = sum(1 for secret in secrets if any(form in text for form in encodings(secret)))
        if count:
            found[where] = count
    return found


def cli_invocation(
    stack: FaultStack, args: list[str], passphrase_file: Path, engine: bool = True
) -> tuple[list[str], dict[str, str]]:
    """``python -m flightdeck ARGS`` as an operator runs it, against this stack's project and (with
    ``engine``: commands that run the engine) its backend, passphrase and pulumi CLI."""
    settings = stack.platform.settings()
    command = [sys.executable, "-m", "flightdeck", *args, "-C", str(stack.platform.work_dir)]
    if engine:
        command += ["--backend", str(settings.backend_url), "--passphrase-file", str(passphrase_file),
                    "--pulumi-root", str(stack.platform.engine.cli_root)]  # fmt: skip
    env = {**os.environ, **settings.env, "PYTHONPATH": str(REPO_ROOT)}
    env.pop("PULUMI_CONFIG_PASSPHRASE", None)
    return command, env


def cli(
    stack: FaultStack, args: list[str], passphrase_file: Path, timeout: float = 300, engine: bool = True
) -> subprocess.CompletedProcess[str]:
    command, env = cli_invocation(stack, args, passphrase_file, engine)
    done = subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    with stack.capture.lock:
        stack.capture.documents.append(done.stdout)
        stack.capture.output.append(done.stderr)
    return done
