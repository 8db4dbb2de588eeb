"""The API's engine-free parts: the per-stack lock, settings, event conversion, typed results."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest
from pulumi import automation as auto

from flightdeck import api
from flightdeck.api import Flightdeck, OperationEvent, Settings, StackLock, StackLockedError, StackOutput

URN = "urn:pulumi:prod::flightdeck::pulumi-python:dynamic/mysql:Database::blog-db"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    work = tmp_path / "project"
    work.mkdir()
    (work / "Pulumi.yaml").write_text("name: demo\nruntime: python\n")
    return work


# -- lock -------------------------------------------------------------------------------------------


def test_lock_times_out_with_the_holder_named(tmp_path: Path) -> None:
    path = tmp_path / "locks" / "p" / "s.lock"
    with StackLock(path, "s", "up", timeout=1):
        errors: list[StackLockedError] = []

        def other() -> None:
            try:
                StackLock(path, "s", "preview", timeout=0.3).acquire()
            except StackLockedError as error:
                errors.append(error)

        started = time.monotonic()
        thread = threading.Thread(target=other)
        thread.start()
        thread.join()
        assert 0.25 <= time.monotonic() - started < 5
    (error,) = errors
    assert error.exit_code == 4 and error.stack == "s"
    assert "up by pid" in str(error) and "locked by" in str(error)
    assert path.read_text() == ""  # released: holder info cleared


def test_lock_waits_for_release(tmp_path: Path) -> None:
    path = tmp_path / "s.lock"
    first = StackLock(path, "s", "up", timeout=1)
    first.acquire()
    waits: list[str] = []
    acquired = threading.Event()

    def other() -> None:
        with StackLock(path, "s", "preview", timeout=10, on_wait=waits.append):
            acquired.set()

    thread = threading.Thread(target=other)
    thread.start()
    time.sleep(0.3)
    assert not acquired.is_set()
    first.release()
    thread.join(timeout=10)
    assert acquired.is_set()
    assert waits and "up by pid" in waits[0]


def test_lock_zero_timeout_fails_at_once(tmp_path: Path) -> None:
    path = tmp_path / "s.lock"
    with StackLock(path, "s", "up", timeout=0):
        box: list[BaseException] = []
        thread = threading.Thread(target=lambda: _try(lambda: StackLock(path, "s", "up", timeout=0).acquire(), box))
        thread.start()
        thread.join(timeout=5)
        assert isinstance(box[0], StackLockedError)


def _try(fn: Any, box: list[BaseException]) -> None:
    try:
        fn()
    except BaseException as error:
        box.append(error)


def test_lock_is_reentrant_in_its_thread(tmp_path: Path) -> None:
    path = tmp_path / "s.lock"
    with StackLock(path, "s", "edit", timeout=0), StackLock(path, "s", "preview", timeout=0):
        pass
    # fully released afterwards: another thread gets it at once
    box: list[BaseException] = []
    thread = threading.Thread(target=lambda: _try(lambda: StackLock(path, "s", "x", timeout=0).acquire(), box))
    thread.start()
    thread.join()
    assert box == []


def test_lock_paths(project: Path, tmp_path: Path) -> None:
    backend = tmp_path / "state"
    fd = Flightdeck(Settings(work_dir=project, backend_url=f"file://{backend}"))
    assert fd.lock_path("prod") == backend / ".flightdeck" / "locks" / "demo" / "prod.lock"
    assert fd.lock_path("org/demo/prod").name == "org__demo__prod.lock"
    fd = Flightdeck(Settings(work_dir=project, backend_url="file://relative/dir"))
    assert fd.lock_path("s").is_relative_to(project / "relative" / "dir")
    fd = Flightdeck(Settings(work_dir=project, backend_url="s3://bucket/x"))
    assert fd.lock_path("s").is_relative_to(Path.home() / ".cache" / "flightdeck" / "locks")
    other = Flightdeck(Settings(work_dir=project, backend_url="s3://bucket/y"))
    assert fd.lock_path("s") != other.lock_path("s")
    fd = Flightdeck(Settings(work_dir=project, lock_dir=tmp_path / "l"))
    assert fd.lock_path("s") == tmp_path / "l" / "demo" / "s.lock"


def test_not_a_project(tmp_path: Path) -> None:
    with pytest.raises(api.FlightdeckError, match="not a Pulumi project"):
        Flightdeck(Settings(work_dir=tmp_path))


# -- settings ---------------------------------------------------------------------------------------


def test_settings_environment_and_secrets_stay_out_of_repr(project: Path) -> None:
    settings = Settings(
        work_dir=project,
        backend_url="file:///state",
        passphrase="hunter2",
        passphrase_file=Path("/run/pp"),
        env={"AWS_SECRET_ACCESS_KEY": "s3cr3t", "PULUMI_HOME": "/h"},
    )
    env = settings.pulumi_env()
    assert env["PULUMI_BACKEND_URL"] == "file:///state"
    assert env["PULUMI_CONFIG_PASSPHRASE"] == "hunter2"
    assert env["PULUMI_CONFIG_PASSPHRASE_FILE"] == "/run/pp"
    assert env["AWS_SECRET_ACCESS_KEY"] == "s3cr3t" and env["PULUMI_HOME"] == "/h"
    assert "hunter2" not in repr(settings) and "s3cr3t" not in repr(settings)
    assert Flightdeck(settings, lock_timeout=5).settings.lock_timeout == 5


# -- events -> steps --------------------------------------------------------------------------------


def event(**data: Any) -> auto.EngineEvent:
    return auto.EngineEvent.from_json({"sequence": 1, "timestamp": 0, **data})


def step_event(kind: str, op: str, urn: str = URN, **metadata: Any) -> auto.EngineEvent:
    meta = {"op": op, "urn": urn, "type": urn.split("::")[2], "provider": "", **metadata}
    return event(**{kind: {"metadata": meta}})


def test_recorder_turns_events_into_steps_and_forwards_them() -> None:
    seen: list[OperationEvent] = []
    recorder = api._Recorder("preview", "prod", seen.append)
    recorder(event(preludeEvent={"config": {}}))
    recorder(step_event("resourcePreEvent", "same", urn=URN.replace("blog-db", "same-db")))
    recorder(step_event("resourcePreEvent", "replace", keys=["database"], diffs=["database"], old={"protect": True}))
    recorder(step_event("resOutputsEvent", "replace", keys=["database"], old={"protect": True}))
    recorder(event(diagnosticEvent={"message": "error: refused\n", "color": "never", "severity": "error"}))
    recorder(event(diagnosticEvent={"message": "noise", "color": "never", "severity": "debug"}))
    recorder(event(summaryEvent={"maybeCorrupt": False, "durationSeconds": 1, "resourceChanges": {"replace": 1}}))
    assert [e.kind for e in seen] == ["started", "step", "step", "step-done", "diagnostic", "summary"]
    result = recorder.result(False, time.monotonic())
    (step,) = result.steps
    assert (step.op, step.type, step.name, step.replace_reasons, step.protected) == (
        "replace",
        "pulumi-python:dynamic/mysql:Database",
        "blog-db",
        ("database",),
        True,
    )
    assert result.summary == {"replace": 1}
    assert result.errors == ["error: refused"]
    assert recorder.failure_message() == "refused"
    summary = result.pr_summary()  # no digest: built from the steps
    assert summary.dangerous and summary.risks[0].reasons == ("database",)


def test_recorder_up_statuses_and_failures() -> None:
    recorder = api._Recorder("up", "prod", None)
    recorder(step_event("resourcePreEvent", "create"))
    assert recorder.result(True, 0).steps[0].status == "running"
    recorder(step_event("resOpFailedEvent", "create"))
    recorder(step_event("resOutputsEvent", "create"))  # a late event never hides the failure
    assert recorder.result(False, 0).steps[0].status == "failed"
    other = api._Recorder("up", "prod", None)
    other(step_event("resourcePreEvent", "create"))
    other(step_event("resOutputsEvent", "create"))
    result = other.result(True, 0)
    assert result.steps[0].status == "done"
    assert result.summary == {"create": 1}  # no summary event: counted from the steps


def test_a_broken_callback_never_breaks_the_operation() -> None:
    def explode(_event: OperationEvent) -> None:
        raise RuntimeError("boom")

    recorder = api._Recorder("up", "prod", explode)
    recorder(step_event("resourcePreEvent", "create"))
    assert recorder.callback_errors == 1
    assert len(recorder.result(True, 0).steps) == 1


def test_policy_events_become_diagnostics() -> None:
    recorder = api._Recorder("preview", "prod", None)
    policy = {
        "message": "privileged pod",
        "color": "never",
        "policyName": "no-privileged",
        "policyPackName": "hosting",
        "policyPackVersion": "1",
        "policyPackVersionTag": "1",
        "enforcementLevel": "mandatory",
        "resourceUrn": URN,
    }
    recorder(event(policyEvent=policy))
    result = recorder.result(False, 0)
    assert result.errors == ["hosting/no-privileged: privileged pod"]
    # The CLI's --json digest has no policy events; the PR summary still lists the violation.
    result.digest = {"changeSummary": {"create": 1}, "steps": [{"op": "create", "urn": URN}]}
    summary = result.pr_summary()
    assert summary.errors == ("hosting/no-privileged: privileged pod",)
    assert "hosting/no-privileged: privileged pod" in summary.markdown and "❌ failed" in summary.markdown
    assert result.digest == {"changeSummary": {"create": 1}, "steps": [{"op": "create", "urn": URN}]}  # unchanged


# -- results ----------------------------------------------------------------------------------------


def test_secret_outputs_are_masked() -> None:
    output = StackOutput("p@ss", secret=True)
    assert "p@ss" not in repr(output)
    assert output.shown() == api.SECRET_MASK and output.shown(show_secrets=True) == "p@ss"
    result = api.OperationResult(
        "up", "prod", True, {"create": 2, "same": 1}, [], [], outputs={"pw": output, "n": StackOutput(3)}
    )
    document = result.to_dict()
    assert document["outputs"] == {"pw": {"value": "[secret]", "secret": True}, "n": {"value": 3, "secret": False}}
    assert result.to_dict(show_secrets=True)["outputs"]["pw"]["value"] == "p@ss"
    assert document["changes"] == 2 and result.changes == 2
    assert "p@ss" not in repr(result)


def test_digest_is_preferred_when_present() -> None:
    digest = {"changeSummary": {"delete": 1}, "steps": [{"op": "delete", "urn": URN}]}
    result = api.OperationResult("preview", "prod", True, {}, [], [], digest=digest)
    assert result.preview_digest() is digest
    assert result.pr_summary().dangerous
