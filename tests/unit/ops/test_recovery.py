"""flightdeck.recovery: the engine's lock lines, staleness, pending operations, what to refresh."""

from __future__ import annotations

import string
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from flightdeck import recovery
from flightdeck.recovery import EngineLock, PendingOperation, Recovery

STACK_URN = "urn:pulumi:local::flightdeck::pulumi:pulumi:Stack::flightdeck-local"
CLAIM_URN = (
    "urn:pulumi:local::flightdeck::flightdeck:platform:Platform$flightdeck:site:Site$flightdeck:storage:SharedVolume"
    "$kubernetes:core/v1:PersistentVolumeClaim::news-files-claim"
)
DATABASE = "urn:pulumi:local::flightdeck::flightdeck:database:SiteDatabase"
USER_URN = f"{DATABASE}$pulumi-python:dynamic/mysql:User::news-db-user"
PASSWORD_URN = f"{DATABASE}$random:index/randomPassword:RandomPassword::news-db-password"

# What pulumi v3.274.1 printed for the stale lock of a SIGKILLed `pulumi up` (tests/faults).
LOCKED = """
 code: 1
 stdout:
 stderr: error: the stack is currently locked by 2 lock(s). Either wait for the other process(es) to end or delete the lock file with `pulumi cancel`.
  file:///tmp/state/.pulumi/locks/organization/flightdeck/local/cfad1d1d-a064-4108-ad2c-2040b4b3d656.json?no_tmp_dir=true: created by root@vm (pid 11368) at 2026-12-01T10:04:06Z
  s3://bucket/.pulumi/locks/organization/flightdeck/local/0a.json: created by ci@runner-7.example (pid 42) at 2026-12-01T10:05:00Z
"""  # noqa: E501


def test_lock_lines_are_parsed() -> None:
    first, second = recovery.parse_engine_locks(LOCKED)
    assert first == EngineLock(
        location="file:///tmp/state/.pulumi/locks/organization/flightdeck/local/cfad1d1d-a064-4108-ad2c-2040b4b3d656.json?no_tmp_dir=true",
        user="root",
        host="vm",
        pid=11368,
        since="2026-12-01T10:04:06Z",
    )
    assert (second.user, second.host, second.pid) == ("ci", "runner-7.example", 42)
    assert first.describe() == "pulumi (pid 11368) run by root@vm since 2026-12-01T10:04:06Z"


def test_other_errors_name_no_lock() -> None:
    assert recovery.parse_engine_locks("error: [409] Conflict: Another update is currently in progress.") == ()
    assert recovery.parse_engine_locks("x: created by a@b (pid 1) at now") == ()  # no locked headline


names = st.text(alphabet=string.ascii_letters + string.digits + "-_.", min_size=1, max_size=20)


@given(user=names, host=names.filter(lambda h: "@" not in h), pid=st.integers(1, 2**22))
def test_every_lock_line_the_engine_writes_parses_back(user: str, host: str, pid: int) -> None:
    line = f"  file:///s/{pid}.json: created by {user}@{host} (pid {pid}) at 2026-12-01T10:04:06Z"
    (lock,) = recovery.parse_engine_locks(f"{recovery.LOCKED_TEXT} 1 lock(s).\n{line}\n")
    assert (lock.user, lock.host, lock.pid) == (user, host, pid)


def test_a_lock_is_stale_only_on_this_host_with_its_process_gone() -> None:
    lock = EngineLock("file:///l.json", "root", "vm", 7, "t")
    assert recovery.is_stale(lock, "vm", running_pulumi=lambda pid: False)
    assert not recovery.is_stale(lock, "vm", running_pulumi=lambda pid: True)
    assert not recovery.is_stale(lock, "other-host", running_pulumi=lambda pid: False)


@given(
    hosts=st.lists(st.sampled_from(["vm", "runner"]), min_size=0, max_size=4),
    alive=st.sets(st.integers(0, 3)),
)
def test_all_stale_needs_every_lock_stale(hosts: list[str], alive: set[int]) -> None:
    locks = [EngineLock(f"l{i}", "u", host, i, "t") for i, host in enumerate(hosts)]
    verdict = recovery.all_stale(locks, "vm", running_pulumi=lambda pid: pid in alive)
    assert verdict == (bool(locks) and all(lock.host == "vm" and lock.pid not in alive for lock in locks))


def deployment(*pending: tuple[str, str, dict[str, Any]], resources: tuple[str, ...] = ()) -> dict[str, Any]:
    return {
        "resources": [
            {"urn": STACK_URN, "type": "pulumi:pulumi:Stack"},
            *({"urn": urn, "type": "x"} for urn in resources),
        ],
        "pending_operations": [
            {"type": kind, "resource": {"urn": urn, "type": urn.split("::")[2].rsplit("$", 1)[-1], **extra}}
            for kind, urn, extra in pending
        ],
    }


def test_pending_operations_name_their_resource_and_kubernetes_object() -> None:
    claim_inputs = {"inputs": {"metadata": {"name": "news-files", "namespace": "news"}}}
    ops = recovery.pending_operations(
        deployment(("creating", CLAIM_URN, claim_inputs), ("updating", USER_URN, {}), ("creating", PASSWORD_URN, {}))
    )
    claim, user, password = ops
    assert claim == PendingOperation(
        "creating", CLAIM_URN, "kubernetes:core/v1:PersistentVolumeClaim", "news-files-claim", "news/news-files"
    )
    assert claim.is_create and not user.is_create
    assert claim.describe() == "create kubernetes:core/v1:PersistentVolumeClaim news-files-claim (news/news-files)"
    assert user.describe() == "update pulumi-python:dynamic/mysql:User news-db-user"
    assert password.object is None
    assert recovery.pending_operations({}) == () and recovery.pending_operations(None) == ()


def test_the_clearing_refresh_reads_back_only_what_an_interrupted_update_left_unknown() -> None:
    state = deployment(("creating", CLAIM_URN, {}), ("updating", USER_URN, {}), resources=(USER_URN,))
    ops = recovery.pending_operations(state)
    urns = recovery.state_urns(state)
    assert recovery.refresh_targets(ops, urns, recovery.root_urn(state)) == (USER_URN,)
    # Only creates pending: the root alone, so the refresh stays small (no target = everything).
    only_creates = [op for op in ops if op.is_create]
    assert recovery.refresh_targets(only_creates, urns, recovery.root_urn(state)) == (STACK_URN,)
    # An update of a resource no longer in the state is not a target (the engine would refuse it).
    assert recovery.refresh_targets(ops, frozenset({STACK_URN}), STACK_URN) == (STACK_URN,)


def test_unadopted_creates_are_the_cleared_ones_missing_afterwards() -> None:
    ops = recovery.pending_operations(deployment(("creating", CLAIM_URN, {}), ("updating", USER_URN, {})))
    assert recovery.unadopted(ops, frozenset({CLAIM_URN})) == ()
    (missing,) = recovery.unadopted(ops, frozenset())
    assert missing.urn == CLAIM_URN


def test_a_recovery_reports_every_action() -> None:
    lock = EngineLock("file:///l.json", "root", "vm", 7, "2026-12-01T10:04:06Z")
    ops = recovery.pending_operations(deployment(("creating", CLAIM_URN, {}), ("deleting", USER_URN, {})))
    empty = Recovery()
    assert empty.empty and empty.lines() == []
    done = Recovery(cleared_locks=(lock,)).merged(Recovery(pending=ops, refreshed=(USER_URN,), unadopted=ops[:1]))
    assert not done.empty
    lines = done.lines()
    assert lines[0] == (
        "removed the stale lock of pulumi (pid 7) run by root@vm since 2026-12-01T10:04:06Z: that process is gone"
    )
    assert "cleared 1 interrupted create(s)" in lines[1] and "news-files-claim" in lines[1]
    assert "read back 1 resource(s)" in lines[2] and "delete pulumi-python:dynamic/mysql:User" in lines[2]
    assert "not declared any more" in lines[3]
    document = done.to_dict()
    assert document["clearedLocks"] == [
        {"location": "file:///l.json", "user": "root", "host": "vm", "pid": 7, "since": "2026-12-01T10:04:06Z"}
    ]
    assert [op["kind"] for op in document["pendingOperations"]] == ["creating", "deleting"]
    assert document["refreshed"] == [USER_URN] and document["unadopted"][0]["urn"] == CLAIM_URN
