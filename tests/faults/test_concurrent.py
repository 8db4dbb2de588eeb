"""Two deployments of one stack at once: one proceeds, the other is refused, the state stays whole.

Two ``flightdeck up`` processes (the CLI, as two CI jobs would run it) race for flightdeck's own
per-stack lock; a plain ``pulumi up`` (no flightdeck) holds the engine's lock, which flightdeck
reports, naming the live holder, and never removes.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest

from flightdeck.api import StackLockedError
from tests.faults.harness import REPO_ROOT, FaultStack, Ledger, add_site, assert_converged, cli_invocation

pytestmark = [pytest.mark.e2e, pytest.mark.faults, pytest.mark.timeout(900)]


def engine_lock_files(stack: FaultStack) -> list[Path]:
    return [p for p in (stack.platform.backend_dir / ".pulumi" / "locks").rglob("*.json") if p.is_file()]


def test_two_concurrent_flightdeck_ups_one_proceeds_the_other_is_refused(
    stack: FaultStack, ledger: Ledger, passphrase_file: Path
) -> None:
    case = "two concurrent flightdeck up"
    add_site(stack, "twin")
    command, env = cli_invocation(stack, ["up", stack.name, "--yes", "--json", "--lock-timeout", "3"], passphrase_file)
    with stack.timed(case, "both ups"):
        procs = [
            subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for _ in range(2)
        ]
        outputs = [proc.communicate(timeout=600) for proc in procs]
    for out, err in outputs:
        with stack.capture.lock:
            stack.capture.documents.append(out)
            stack.capture.output.append(err)
    codes = [proc.returncode for proc in procs]
    assert sorted(codes) == [0, 4], (codes, [err[-2000:] for _, err in outputs])
    winner, loser = (0, 1) if codes[0] == 0 else (1, 0)
    refused = json.loads(outputs[loser][0])
    assert refused["exitCode"] == 4 and refused["error"]["type"] == "StackLockedError"
    assert f"up by pid {procs[winner].pid}" in refused["error"]["holder"], refused
    deployed = json.loads(outputs[winner][0])["result"]
    assert deployed["succeeded"] and any(
        s["name"].startswith("twin") and s["op"] == "create" for s in deployed["steps"]
    )
    stack.note(case, f"refused: {refused['error']['message']}")
    assert_converged(stack, ledger, case)


def test_a_live_engine_lock_is_reported_and_never_removed(stack: FaultStack, ledger: Ledger) -> None:
    case = "flightdeck up while a plain pulumi up runs"
    settings = stack.platform.settings()
    pulumi = str(stack.platform.engine.cli_root / "bin" / "pulumi")
    env = {**os.environ, **settings.pulumi_env()}
    running = subprocess.Popen(
        [pulumi, "up", "--yes", "--skip-preview", "--non-interactive", "--stack", stack.name],
        cwd=stack.platform.work_dir, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while not engine_lock_files(stack):
            assert running.poll() is None and time.monotonic() < deadline, "the plain pulumi up took no lock"
            time.sleep(0.1)
        with stack.timed(case, "refused up"), pytest.raises(StackLockedError) as refused:
            stack.platform.flightdeck().up(stack.name)
        error = refused.value
        stack.capture.errors.append(str(error))
        assert [lock.pid for lock in error.engine_locks] == [running.pid]
        assert "still running" in str(error) and f"pid {running.pid}" in str(error), str(error)
        assert engine_lock_files(stack), "a live process's lock was removed"
        stack.note(case, str(error))
    finally:
        output, _ = running.communicate(timeout=600)
        stack.capture.output.append(output)
    assert running.returncode == 0, output[-3000:]
    assert_converged(stack, ledger, case)
