"""The API's recovery from interrupted updates and its drift results, without the engine.

The engine side is faked at the seams the API uses: an ``auto.Stack`` with ``refresh``/``cancel``,
the engine's "stack is currently locked" error, ``Flightdeck._export``. The real thing runs in
tests/faults (a SIGKILLed ``pulumi up`` recovered by the next one).
"""

from __future__ import annotations

import json
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from pulumi import automation as auto
from pulumi.automation._cmd import CommandResult

from flightdeck import api
from flightdeck.api import Flightdeck, Settings, StackLockedError
from flightdeck.recovery import Recovery

HOST = socket.gethostname()
ROOT = "urn:pulumi:s::demo::pulumi:pulumi:Stack::demo-s"
CLAIM = "urn:pulumi:s::demo::kubernetes:core/v1:PersistentVolumeClaim::news-files-claim"
USER = "urn:pulumi:s::demo::pulumi-python:dynamic/mysql:User::news-db-user"


def event(**data: Any) -> auto.EngineEvent:
    return auto.EngineEvent.from_json({"sequence": 1, "timestamp": 0, **data})


def step_event(kind: str, op: str, urn: str, **metadata: Any) -> auto.EngineEvent:
    return event(**{kind: {"metadata": {"op": op, "urn": urn, "type": urn.split("::")[2], "provider": "", **metadata}}})


def locked_error(*locks: tuple[str, int]) -> auto.ConcurrentUpdateError:
    lines = [
        f"  file:///state/.pulumi/locks/o/demo/s/{i}.json: created by root@{host} (pid {pid}) at 2026-12-01T10:04:06Z"
        for i, (host, pid) in enumerate(locks)
    ]
    stderr = f"error: the stack is currently locked by {len(locks)} lock(s). Either wait.\n" + "\n".join(lines)
    return auto.ConcurrentUpdateError(CommandResult("", stderr, 1))


def fake_pulumi(command: str = "sleep 30") -> subprocess.Popen[bytes]:
    """A process whose program name is ``pulumi`` (what the engine's lock records)."""
    proc = subprocess.Popen(["bash", "-c", f"exec -a pulumi {command}"])
    deadline = time.monotonic() + 10
    while True:
        try:
            program = Path(f"/proc/{proc.pid}/cmdline").read_bytes().split(b"\0")[0]
            state = Path(f"/proc/{proc.pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            return proc
        if program == b"pulumi" or state == "Z":  # exec'd, or exec'd and already exited
            return proc
        assert time.monotonic() < deadline
        time.sleep(0.01)


def dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


class FakeStack:
    """The parts of ``auto.Stack`` the recovery uses."""

    name = "s"

    def __init__(self, refresh_errors: list[BaseException] | None = None) -> None:
        self.refreshes: list[dict[str, Any]] = []
        self.cancels = 0
        self.refresh_errors = list(refresh_errors or [])

    def refresh(self, **kwargs: Any) -> str:
        self.refreshes.append(kwargs)
        if self.refresh_errors:
            raise self.refresh_errors.pop(0)
        return "refreshed"

    def cancel(self) -> None:
        self.cancels += 1


@pytest.fixture
def fd(tmp_path: Path) -> Flightdeck:
    work = tmp_path / "project"
    work.mkdir()
    (work / "Pulumi.yaml").write_text("name: demo\nruntime: python\n")
    return Flightdeck(Settings(work_dir=work, backend_url=f"file://{tmp_path / 'state'}"))


def recorder(operation: str = "up") -> tuple[api._Recorder, list[api.OperationEvent]]:
    seen: list[api.OperationEvent] = []
    return api._Recorder(operation, "s", seen.append), seen


def exported(*pending: tuple[str, str], resources: tuple[str, ...] = ()) -> dict[str, Any]:
    return {
        "deployment": {
            "resources": [{"urn": ROOT, "type": "pulumi:pulumi:Stack"}, *({"urn": u, "type": "x"} for u in resources)],
            "pending_operations": [{"type": kind, "resource": {"urn": urn}} for kind, urn in pending],
        }
    }


# -- stale engine locks -------------------------------------------------------------------------


def test_a_stale_lock_of_this_host_is_cancelled_and_the_call_retried(fd: Flightdeck) -> None:
    stack, (rec, seen) = FakeStack(), recorder()
    calls: list[int] = []
    pid = dead_pid()

    def call() -> str:
        calls.append(1)
        if len(calls) == 1:
            raise locked_error((HOST, pid))
        return "deployed"

    cleared, raw = fd._past_stale_locks(stack, "s", call, rec, True)  # type: ignore[arg-type]
    assert raw == "deployed" and len(calls) == 2 and stack.cancels == 1
    assert [lock.pid for lock in cleared] == [pid]
    assert [e.kind for e in seen] == ["recovery"] and f"pid {pid}" in (seen[0].message or "")
    assert rec.diagnostics[0].severity == "info"


@pytest.mark.parametrize("which", ["live", "other-host", "mixed", "not-recovering"])
def test_a_lock_that_may_be_live_is_never_removed(fd: Flightdeck, which: str) -> None:
    live = fake_pulumi()
    try:
        locks = {
            "live": [(HOST, live.pid)],
            "other-host": [("another-host", dead_pid())],
            "mixed": [(HOST, dead_pid()), (HOST, live.pid)],
            "not-recovering": [(HOST, dead_pid())],
        }[which]
        stack, (rec, _) = FakeStack(), recorder()

        def call() -> str:
            raise locked_error(*locks)

        with pytest.raises(StackLockedError) as refused:
            fd._past_stale_locks(stack, "s", call, rec, which != "not-recovering")  # type: ignore[arg-type]
        assert stack.cancels == 0
        error = refused.value
        assert error.exit_code == 4 and [lock.pid for lock in error.engine_locks] == [pid for _, pid in locks]
        text = str(error)
        expected = {
            "live": "still running",
            "other-host": "on another host",
            "mixed": "not done: another lock is live",
            "not-recovering": "`flightdeck recover s` clears it",
        }[which]
        assert expected in text, text
    finally:
        live.kill()
        live.wait()


def test_an_unparsed_lock_error_keeps_the_generic_message(fd: Flightdeck) -> None:
    error = fd._engine_locked("s", (), True)
    assert "the engine's own lock" in error.holder and error.engine_locks == ()


def test_running_pulumi_tells_a_live_pulumi_from_anything_else() -> None:
    live = fake_pulumi()
    other = subprocess.Popen(["sleep", "30"])
    try:
        assert api._running_pulumi(live.pid)
        assert not api._running_pulumi(other.pid), "a recycled pid running something else"
        assert not api._running_pulumi(dead_pid())
    finally:
        for proc in (live, other):
            proc.kill()
            proc.wait()
    zombie = fake_pulumi("true")
    deadline = time.monotonic() + 5
    while Path(f"/proc/{zombie.pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z":
        assert time.monotonic() < deadline
        time.sleep(0.01)
    assert not api._running_pulumi(zombie.pid), "exited, not yet reaped"
    zombie.wait()


def test_a_killed_cli_is_named() -> None:
    assert api._killed_by(str(auto.CommandError(CommandResult("out", "", -9)))) == "SIGKILL"
    assert api._killed_by(str(auto.CommandError(CommandResult("", "", -15)))) == "SIGTERM"
    assert api._killed_by(str(auto.CommandError(CommandResult("", "error: boom", 1)))) is None


# -- pending operations ---------------------------------------------------------------------------


def test_pending_operations_are_cleared_by_a_targeted_refresh(fd: Flightdeck, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fd, "_export", lambda _s: exported(("creating", CLAIM), ("updating", USER), resources=(USER,)))
    stack, (rec, seen) = FakeStack(), recorder()
    found = fd._clear_pending(stack, "s", rec)  # type: ignore[arg-type]
    (refresh,) = stack.refreshes
    assert refresh["clear_pending_creates"] is True and refresh["target"] == [USER]
    assert refresh["show_secrets"] is False
    assert [op.urn for op in found.pending] == [CLAIM, USER] and found.refreshed == (USER,)
    assert "2 pending operation(s)" in (seen[0].message or "") and "in this up" in (seen[0].message or "")


def test_nothing_pending_runs_nothing_unless_asked(fd: Flightdeck, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fd, "_export", lambda _s: exported())
    stack, (rec, seen) = FakeStack(), recorder()
    assert fd._clear_pending(stack, "s", rec).empty and stack.refreshes == [] and seen == []
    # `flightdeck recover` refreshes the root anyway: that meets, and clears, a stale lock.
    stack = FakeStack(refresh_errors=[locked_error((HOST, dead_pid()))])
    found = fd._clear_pending(stack, "s", rec, always=True)  # type: ignore[arg-type]
    assert [r["target"] for r in stack.refreshes] == [[ROOT], [ROOT]] and stack.cancels == 1
    assert len(found.cleared_locks) == 1 and found.pending == ()


def test_creates_the_up_did_not_adopt_are_reported(fd: Flightdeck, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fd, "_export", lambda _s: exported(("creating", CLAIM)))
    stack, (rec, _) = FakeStack(), recorder()
    found = fd._clear_pending(stack, "s", rec)  # type: ignore[arg-type]
    monkeypatch.setattr(fd, "_export", lambda _s: exported())  # the up no longer declares it
    after = fd._check_adopted(stack, found, rec)  # type: ignore[arg-type]
    assert [op.urn for op in after.unadopted] == [CLAIM]
    assert rec.diagnostics[-1].severity == "warning" and "delete it by hand" in rec.diagnostics[-1].message
    monkeypatch.setattr(fd, "_export", lambda _s: exported(resources=(CLAIM,)))
    assert fd._check_adopted(stack, found, rec).unadopted == ()  # type: ignore[arg-type]


def test_the_export_never_decrypts(fd: Flightdeck, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[list[str]] = []

    class Command:
        def run(self, args: list[str], cwd: str, env: dict[str, str]) -> CommandResult:
            seen.append(args)
            return CommandResult(json.dumps(exported(("creating", CLAIM))), "", 0)

    class Workspace(auto.LocalWorkspace):
        def __init__(self) -> None:
            self.pulumi_home = None
            self.env_vars = {"PULUMI_BACKEND_URL": "file:///state"}

    monkeypatch.setattr(fd, "_pulumi_command", lambda: Command())
    stack = FakeStack()
    stack.workspace = Workspace()  # type: ignore[attr-defined]
    assert fd._export(stack)["deployment"]["pending_operations"][0]["resource"]["urn"] == CLAIM  # type: ignore[arg-type]
    assert seen == [["stack", "export", "--stack", "s"]], "no --show-secrets"


def test_results_carry_the_recovery() -> None:
    result = api.OperationResult("up", "s", True, {"create": 1}, [], [])
    assert "recovery" not in result.to_dict()
    result.recovery = Recovery(refreshed=(ROOT,))
    assert result.to_dict()["recovery"]["refreshed"] == [ROOT]


# -- drift ----------------------------------------------------------------------------------------


def test_refresh_steps_carry_their_detailed_diff_and_unchanged_ones_are_dropped() -> None:
    rec, _ = recorder("drift")
    deployment = "urn:pulumi:s::demo::kubernetes:apps/v1:Deployment::blog-web-deployment"
    rec(step_event("resourcePreEvent", "refresh", urn=deployment))
    rec(step_event("resOutputsEvent", "update", urn=deployment, detailedDiff={"spec.replicas": {"diffKind": "update"}}))
    rec(step_event("resourcePreEvent", "refresh", urn=CLAIM))
    rec(event(summaryEvent={"maybeCorrupt": False, "durationSeconds": 1, "resourceChanges": {"update": 1, "same": 1}}))
    result = rec.result(True, 0)
    (step,) = result.steps
    assert (step.op, step.name, step.diffs, step.status) == (
        "update",
        "blog-web-deployment",
        ("spec.replicas",),
        "planned",
    )
    digest = result.preview_digest()
    assert digest["steps"][0]["diffReasons"] == ["spec.replicas"]
    preview = api.OperationResult("preview", "s", True, {"same": 2}, [], [])
    summary = preview.pr_summary(drift=result)
    assert [(d.kind, d.name, d.fields) for d in summary.drift] == [
        ("changed", "blog-web-deployment", ("spec.replicas",))
    ]
    assert "changed outside Pulumi" in summary.markdown and not summary.dangerous


def test_a_provider_error_keeps_its_whole_exception_message() -> None:
    # What a SQL provider reports when the port-forward's API call fails: the message spans lines.
    message = (
        "error: Exception calling application: \nTraceback (most recent call last):\n"
        '  File "/x/providers.py", line 10, in create\n    raise SQLProviderError(msg)\n'
        "components.sql.providers.SQLProviderError: create MySQLUser 'crash'@'%': cannot connect to the "
        "MySQL/MariaDB server (mode=portForward, service=mariadb-write, namespace=mariadb, port=3306): "
        "ApiException: (500)\nReason: Internal Server Error\nHTTP response body: error dialing backend\n)\n"
    )
    condensed = api._condense(message)
    assert condensed.startswith("Exception calling application: components.sql.providers.SQLProviderError: create")
    assert "service=mariadb-write" in condensed and condensed.endswith("error dialing backend )")
    assert "Traceback" not in condensed and 'File "' not in condensed
    assert api._condense("error: plain failure") == "plain failure"


# -- checkpoints ----------------------------------------------------------------------------------


class PreviewingStack:
    """The parts of ``auto.Stack`` a preview and a drift check use; records the engine's environment."""

    name = "s"

    def __init__(self, env_vars: dict[str, str]) -> None:
        self.workspace = auto.LocalWorkspace.__new__(auto.LocalWorkspace)
        self.workspace.env_vars = env_vars
        self.seen: list[dict[str, str]] = []

    def preview(self, **kwargs: Any) -> auto.PreviewResult:
        self.seen.append(dict(self.workspace.env_vars))
        return auto.PreviewResult(stdout="", stderr="", change_summary={"same": 1})

    preview_refresh = preview


@pytest.mark.parametrize("explicit", [None, "false"])
def test_previews_skip_checkpoints_updates_keep_them(
    fd: Flightdeck, monkeypatch: pytest.MonkeyPatch, explicit: str | None
) -> None:
    """A preview persists nothing, so the engine need not serialise the deployment after each step
    (bench/RESULTS.md); a setting the user made explicitly is left as it is."""
    stacks: list[PreviewingStack] = []

    def select(stack: str) -> PreviewingStack:
        stacks.append(PreviewingStack({} if explicit is None else {"PULUMI_SKIP_CHECKPOINTS": explicit}))
        return stacks[-1]

    monkeypatch.setattr(fd, "_select", select)
    fd.preview("s")
    fd.drift("s")
    expected = explicit or "true"
    assert [seen["PULUMI_SKIP_CHECKPOINTS"] for stack in stacks for seen in stack.seen] == [expected, expected]
    assert "PULUMI_SKIP_CHECKPOINTS" not in fd.settings.pulumi_env()
