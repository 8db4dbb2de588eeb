"""The ``pulumi`` CLI itself SIGKILLed mid-up: a stale engine lock and pending operations.

The kill comes at the ninth finished step of the new site: its namespace and first objects
exist, a dozen creates are in flight. What it leaves is what a dead CI runner leaves: the DIY
backend's lock file of a process that is gone, and ``pending_operations`` in the state. The next
``flightdeck up`` (a CI retry) removes the stale lock (``pulumi cancel``), clears the pending
creates (``pulumi refresh --clear-pending-creates --target ...``) and creates them again, adopting
what the killed run had already made.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.faults.harness import (
    FaultStack,
    Ledger,
    OnEvent,
    PulumiKiller,
    add_site,
    assert_converged,
    cli,
    finished_steps_of,
)

pytestmark = [pytest.mark.e2e, pytest.mark.faults, pytest.mark.timeout(900)]


def engine_lock_files(stack: FaultStack) -> list[Path]:
    return [p for p in (stack.platform.backend_dir / ".pulumi" / "locks").rglob("*.json") if p.is_file()]


def test_pulumi_sigkilled_mid_up_then_the_ci_retry_recovers(
    stack: FaultStack, ledger: Ledger, passphrase_file: Path
) -> None:
    case = "pulumi SIGKILLed mid-up"
    add_site(stack, "killed")
    killer = PulumiKiller("up")
    trigger = OnEvent(finished_steps_of("killed", 9), killer)
    with stack.timed(case, "up killed"):
        error = stack.failing("up", on_event=trigger)
    killer.reap()
    assert trigger.fired.is_set() and killer.killed
    assert "killed by SIGKILL" in str(error) and "flightdeck up" in str(error), str(error)
    stack.note(case, f"plugins still running 2s after pulumi died (reaped by the test): {killer.lingering or 'none'}")

    # What the killed run left: its lock, and pending operations.
    locks = engine_lock_files(stack)
    assert len(locks) == 1 and json.loads(locks[0].read_text())["pid"] == killer.killed[0]
    pending = stack.platform.flightdeck().pending_operations(stack.name)
    assert pending and all(op.name.startswith("killed") for op in pending), pending
    assert any(op.is_create for op in pending)
    stack.note(case, f"left {len(pending)} pending operation(s): {', '.join(op.describe() for op in pending)}")

    # The CI retry: the same command again.
    with stack.timed(case, "flightdeck up (the retry)"):
        done = cli(stack, ["up", stack.name, "--yes", "--json"], passphrase_file)
    assert done.returncode == 0, done.stderr[-3000:]
    document = json.loads(done.stdout)["result"]
    report = document["recovery"]
    assert [lock["pid"] for lock in report["clearedLocks"]] == killer.killed
    assert {op["urn"] for op in report["pendingOperations"]} == {op.urn for op in pending}
    assert report["unadopted"] == []
    assert "recovery: removing the stale engine lock" in done.stderr
    created = {step["name"] for step in document["steps"] if step["op"] == "create"}
    assert {op.name for op in pending if op.is_create} <= created, created
    assert not engine_lock_files(stack)
    assert stack.platform.flightdeck().pending_operations(stack.name) == ()
    stack.note(case, "; ".join(f"{k}: {len(v)}" for k, v in report.items()))
    assert_converged(stack, ledger, case)


def test_a_killed_refresh_leaves_a_stale_lock_that_recover_removes(
    stack: FaultStack, ledger: Ledger, passphrase_file: Path
) -> None:
    """``flightdeck recover`` deploys nothing: it removes the stale lock of a killed refresh; a live
    operation's lock it never touches (tests/faults/test_concurrent.py)."""
    case = "pulumi refresh SIGKILLed, flightdeck recover"
    killer = PulumiKiller("refresh")
    with stack.timed(case, "refresh killed"):
        stack.failing("refresh", on_event=OnEvent(lambda e: e.kind == "step-done", killer))
    killer.reap()
    assert len(engine_lock_files(stack)) == 1
    with stack.timed(case, "flightdeck recover"):
        done = cli(stack, ["recover", stack.name, "--json"], passphrase_file)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout)["recovery"]
    assert [lock["pid"] for lock in report["clearedLocks"]] == killer.killed
    assert not engine_lock_files(stack)
    stack.note(case, f"pending operations a killed refresh leaves: {len(report['pendingOperations'])}")
    assert_converged(stack, ledger, case)
