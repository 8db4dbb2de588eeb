"""The PR summary's drift section and the CLI's recovery and drift options (engine-free)."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any, ClassVar

import pytest
from hypothesis import given
from hypothesis import strategies as st

from flightdeck import api, cli, pr_summary
from flightdeck.recovery import EngineLock, PendingOperation, Recovery

BASE = "urn:pulumi:prod::flightdeck::flightdeck:platform:Platform$flightdeck:site:Site"
DEPLOYMENT = f"{BASE}$kubernetes:apps/v1:Deployment::blog-web-deployment"
POLICY = f"{BASE}$kubernetes:networking.k8s.io/v1:NetworkPolicy::blog-network-ingress"
CLAIM = f"{BASE}$kubernetes:core/v1:PersistentVolumeClaim::blog-files-claim"
SECRET = f"{BASE}$kubernetes:core/v1:Secret::blog-db-secret"


def refresh_digest(*steps: dict[str, Any]) -> dict[str, Any]:
    return {"changeSummary": {"same": 40}, "steps": list(steps)}


def test_drift_lists_changed_fields_and_deleted_objects_deleted_first() -> None:
    drift = refresh_digest(
        {"op": "refresh", "urn": f"{BASE}$kubernetes:core/v1:Service::blog-web-service"},
        {"op": "update", "urn": DEPLOYMENT, "diffReasons": ["spec.replicas"]},
        {"op": "update", "urn": SECRET, "detailedDiff": {"data.DB_HOST": {"kind": "update"}}},
        {"op": "delete", "urn": POLICY},
        {"op": "delete", "urn": CLAIM},
    )
    summary = pr_summary.render({"changeSummary": {"same": 44}}, stack="prod", drift=drift)
    assert [(d.kind, d.name) for d in summary.drift] == [
        ("deleted", "blog-files-claim"),
        ("deleted", "blog-network-ingress"),
        ("changed", "blog-web-deployment"),
        ("changed", "blog-db-secret"),
    ]
    by_name = {d.name: d for d in summary.drift}
    assert by_name["blog-db-secret"].fields == ("data.DB_HOST",) and by_name["blog-files-claim"].stateful
    text = summary.markdown
    assert "🔀 drift (4)" in text.splitlines()[1] and "#### Drift since the last deployment (4)" in text
    assert "- ✏️ changed outside Pulumi: `kubernetes:apps/v1:Deployment` `blog-web-deployment` — `spec.replicas`" in text
    assert "deleted outside Pulumi: **`kubernetes:core/v1:PersistentVolumeClaim` `blog-files-claim`**" in text
    assert "its data may be gone" in text
    assert not summary.dangerous and not summary.has_changes, "drift is not the pull request's change"


def test_no_drift_says_so_and_no_drift_digest_changes_nothing() -> None:
    digest = {"changeSummary": {"same": 3}}
    assert pr_summary.render(digest, stack="s").markdown == pr_summary.render(digest, stack="s", drift=None).markdown
    clean = pr_summary.render(digest, stack="s", drift=refresh_digest({"op": "refresh", "urn": DEPLOYMENT}))
    assert clean.drift == () and "No drift: the live objects match the last deployment." in clean.markdown
    assert "🔀" not in clean.markdown


@given(st.lists(st.sampled_from(["update", "delete", "refresh", "same", "read"]), max_size=6))
def test_a_deleted_resource_is_deleted_whatever_else_its_steps_say(ops: list[str]) -> None:
    items = pr_summary.drift_items([{"op": op, "urn": DEPLOYMENT} for op in ops])
    if "delete" in ops:
        assert [d.kind for d in items] == ["deleted"]
    elif "update" in ops:
        assert [d.kind for d in items] == ["changed"]
    else:
        assert items == ()


# -- CLI --------------------------------------------------------------------------------------------


@pytest.fixture
def project(tmp_path: Path) -> Path:
    work = tmp_path / "project"
    work.mkdir()
    (work / "Pulumi.yaml").write_text("name: flightdeck\nruntime: python\n")
    return work


class Recording:
    """A stand-in for :class:`flightdeck.api.Flightdeck` recording what the CLI asks of it."""

    calls: ClassVar[list[tuple[str, dict[str, Any]]]] = []

    def __init__(self, settings: api.Settings) -> None:
        self.settings = settings

    def up(self, stack: str, **kwargs: Any) -> api.OperationResult:
        Recording.calls.append(("up", kwargs))
        result = api.OperationResult("up", stack, True, {"create": 2}, [], [])
        lock = EngineLock("file:///l.json", "root", "vm", 7, "2026-12-01T10:04:06Z")
        result.recovery = Recovery(cleared_locks=(lock,))
        return result

    def refresh(self, stack: str, **kwargs: Any) -> api.OperationResult:
        Recording.calls.append(("refresh", kwargs))
        return api.OperationResult("refresh", stack, True, {"same": 2}, [], [])

    def drift(self, stack: str, **kwargs: Any) -> api.OperationResult:
        Recording.calls.append(("drift", kwargs))
        step = api.ResourceStep("update", DEPLOYMENT, "kubernetes:apps/v1:Deployment", "blog-web-deployment",
                                diffs=("spec.replicas",))  # fmt: skip
        return api.OperationResult("drift", stack, True, {"update": 1}, [step], [])

    def preview(self, stack: str, **kwargs: Any) -> api.OperationResult:
        Recording.calls.append(("preview", kwargs))
        return api.OperationResult("preview", stack, True, {"same": 3}, [], [])

    def recover(self, stack: str, **kwargs: Any) -> Recovery:
        Recording.calls.append(("recover", kwargs))
        op = PendingOperation("creating", CLAIM, "kubernetes:core/v1:PersistentVolumeClaim", "blog-files-claim")
        return Recovery(pending=(op,), refreshed=("urn:root",))


@pytest.fixture
def recording(monkeypatch: pytest.MonkeyPatch) -> type[Recording]:
    Recording.calls = []
    monkeypatch.setattr(api, "Flightdeck", Recording)
    return Recording


def run(*argv: str) -> tuple[int, dict[str, Any], str]:
    out, err = io.StringIO(), io.StringIO()
    code = cli.main([*argv, "--json"], out=out, err=err)
    return code, json.loads(out.getvalue()), err.getvalue()


def test_up_recovers_and_continues_on_error_unless_told_not_to(project: Path, recording: type[Recording]) -> None:
    code, document, _ = run("up", "s", "--yes", "-C", str(project))
    assert code == 0 and document["result"]["recovery"]["clearedLocks"][0]["pid"] == 7
    assert recording.calls[-1][1]["recover"] is True and recording.calls[-1][1]["continue_on_error"] is True
    run("up", "s", "--yes", "--no-recover", "--stop-on-error", "-C", str(project))
    assert recording.calls[-1][1]["recover"] is False and recording.calls[-1][1]["continue_on_error"] is False
    run("refresh", "s", "--yes", "--no-recover", "-C", str(project))
    assert recording.calls[-1] == ("refresh", {"on_event": recording.calls[-1][1]["on_event"], "recover": False})


def test_recover_reports_what_it_cleared(project: Path, recording: type[Recording]) -> None:
    out, err = io.StringIO(), io.StringIO()
    assert cli.main(["recover", "s", "-C", str(project)], out=out, err=err) == 0
    text = out.getvalue()
    assert "cleared 1 interrupted create(s)" in text and "run `flightdeck up s`" in text
    code, document, _ = run("recover", "s", "-C", str(project))
    assert code == 0 and document["recovery"]["pendingOperations"][0]["name"] == "blog-files-claim"


def test_preview_drift_puts_the_drift_in_the_summary(project: Path, recording: type[Recording], tmp_path: Path) -> None:
    markdown = tmp_path / "comment.md"
    code, document, _ = run("preview", "s", "--drift", "--markdown", str(markdown), "-C", str(project))
    assert code == 0 and [c for c, _ in recording.calls] == ["drift", "preview"]
    assert document["result"]["drift"] == [
        {"kind": "changed", "type": "kubernetes:apps/v1:Deployment", "name": "blog-web-deployment", "urn": DEPLOYMENT,
         "fields": ["spec.replicas"], "stateful": False}
    ]  # fmt: skip
    assert "changed outside Pulumi" in markdown.read_text()
    run("preview", "s", "-C", str(project))
    assert [c for c, _ in recording.calls][-1] == "preview" and "drift" not in [c for c, _ in recording.calls[2:]]


def test_a_locked_stack_names_the_engine_locks_in_json() -> None:
    lock = EngineLock("file:///l.json", "ci", "runner", 42, "t")
    document = cli._error_document(api.StackLockedError("s", "the engine: x", 0.0, engine_locks=(lock,)), 4)
    assert document["error"]["engineLocks"] == [
        {"host": "runner", "user": "ci", "pid": 42, "since": "t", "location": "file:///l.json"}
    ]
