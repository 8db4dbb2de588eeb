"""End-to-end: the flightdeck API (flightdeck.api) driving the real Pulumi engine.

Programs (no Kubernetes: that plugin cannot be built here):

* ``fdops`` (written below into a temp project): ``Thing`` resources of a Python dynamic
  provider in an importable module; ``create`` sleeps ``delay`` seconds (for the lock tests),
  fails on ``value: fail``, and returns a secret ``token``; a changed ``key`` replaces.
* ``tests/e2e/programs/sql`` (the SQL test program): previewed on a fresh stack (previews of
  components/sql never connect to a database).
* the golden recorder (``tests/unit/golden/record_previews.py``): re-recorded into a temp dir,
  its Markdown must equal the stored goldens, so engine/renderer drift shows.

Every stack lives in a ``file://`` backend under ``tmp_path``; nothing is shared between tests.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from flightdeck import api, pr_summary
from flightdeck.api import Flightdeck, OperationEvent, OperationFailedError, Settings, StackLockedError
from tests.e2e.sql_stack import Engine

pytestmark = pytest.mark.e2e

REPO_ROOT = Path(__file__).resolve().parents[2]
VENV = REPO_ROOT / ".venv"
THING = "pulumi-python:dynamic/fdops:Thing"

PROVIDER = '''
"""fdops dynamic provider: importable module, so it is pickled by reference."""

import hashlib
import time
import uuid

from pulumi.dynamic import CreateResult, DiffResult, ReadResult, ResourceProvider, UpdateResult


class ThingProvider(ResourceProvider):
    def create(self, props):
        time.sleep(float(props.get("delay") or 0))
        if props.get("value") == "fail":
            raise RuntimeError("thing refused: value 'fail' is not allowed")
        token = "tok-" + hashlib.sha256(props["key"].encode()).hexdigest()[:12]
        return CreateResult(f"{props['key']}-{uuid.uuid4().hex[:8]}", {**props, "token": token})

    def diff(self, _id, olds, news):
        replaces = ["key"] if olds.get("key") != news.get("key") else []
        changed = bool(replaces) or olds.get("value") != news.get("value")
        return DiffResult(changes=changed, replaces=replaces, delete_before_replace=False)

    def update(self, _id, olds, news):
        time.sleep(float(news.get("delay") or 0))
        return UpdateResult({**news, "token": olds.get("token")})

    def read(self, id_, props):
        return ReadResult(id_, props)

    def delete(self, _id, _props):
        pass
'''

PROGRAM = """
import pulumi
from pulumi.dynamic import Resource

from fdops_provider import ThingProvider


class Thing(Resource, module="fdops", name="Thing"):
    def __init__(self, name, props, opts=None):
        super().__init__(ThingProvider(), name, {"token": None, **props}, opts)


config = pulumi.Config()
delay = config.get_float("delay") or 0.0
things = config.get_object("things") or []
made = [
    Thing(t["name"], {"key": t["key"], "value": t.get("value", ""), "delay": delay},
          pulumi.ResourceOptions(additional_secret_outputs=["token"], protect=bool(t.get("protect"))))
    for t in things
]
pulumi.export("names", [t["name"] for t in things])
pulumi.export("token", pulumi.Output.secret(made[0].token) if made else "")
"""

BASE_THINGS = [{"name": "alpha", "key": "a1"}, {"name": "bravo", "key": "b1", "value": "x"}]


@dataclass
class OpsProject:
    """A temp project + file backend, and how to reach them (API settings, CLI environment)."""

    dir: Path
    backend: Path
    engine: Engine
    stack: str = "dev"

    @property
    def env(self) -> dict[str, str]:
        return {
            **self.engine.env,
            "PULUMI_BACKEND_URL": f"file://{self.backend}",
            "PULUMI_CONFIG_PASSPHRASE": "flightdeck-ops-e2e",
            "PYTHONPATH": str(REPO_ROOT),
            "NO_COLOR": "1",
        }

    def settings(self, **overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "work_dir": self.dir,
            "env": self.env,
            "pulumi_root": self.engine.cli_root,
            "secrets_provider": "passphrase",
            "create_missing": True,
            "lock_timeout": 120.0,
        }
        values.update(overrides)
        return Settings(**values)

    def configure(self, things: list[dict[str, Any]], delay: float = 0.0) -> None:
        """Write the stack's config the way an operator would: into Pulumi.<stack>.yaml."""
        path = self.dir / f"Pulumi.{self.stack}.yaml"
        salt = ""
        if path.exists():
            salt = next((line for line in path.read_text().splitlines() if line.startswith("encryptionsalt:")), "")
        lines = [salt] if salt else []
        lines += ["config:", f"  fdops:delay: {delay}", f"  fdops:things: {json.dumps(things)}"]
        path.write_text("\n".join(lines) + "\n")


def write_ops_project(directory: Path, engine: Engine, name: str = "fdops") -> OpsProject:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "Pulumi.yaml").write_text(
        f"name: {name}\nruntime:\n  name: python\n  options:\n    virtualenv: {VENV}\n"
    )
    (directory / "__main__.py").write_text(PROGRAM)
    (directory / "fdops_provider.py").write_text(PROVIDER)
    backend = directory.parent / f"{directory.name}-backend"
    backend.mkdir(exist_ok=True)
    return OpsProject(directory, backend, engine)


@pytest.fixture
def ops(engine: Engine, tmp_path: Path) -> Iterator[OpsProject]:
    project = write_ops_project(tmp_path / "fdops", engine)
    project.configure(BASE_THINGS)
    yield project


def names_by_op(result: api.OperationResult) -> dict[str, set[str]]:
    ops: dict[str, set[str]] = {}
    for step in result.steps:
        if step.type == THING:
            ops.setdefault(step.name, set()).add(step.op)
    return ops


# -- the operations -----------------------------------------------------------------------------


def test_preview_up_outputs_refresh_destroy(ops: OpsProject) -> None:
    fd = Flightdeck(ops.settings())
    events: list[OperationEvent] = []

    preview = fd.preview(ops.stack, on_event=events.append)
    assert preview.succeeded and preview.operation == "preview"
    assert preview.summary == {"create": 3}  # two Things + the stack
    assert names_by_op(preview) == {"alpha": {"create"}, "bravo": {"create"}}
    assert preview.digest is not None and preview.digest["changeSummary"] == {"create": 3}
    assert {"started", "step", "summary"} <= {e.kind for e in events}
    assert all(e.stack == ops.stack and e.operation == "preview" for e in events)
    assert fd.outputs(ops.stack) == {}  # a preview deploys nothing

    up = fd.up(ops.stack)
    assert up.summary == {"create": 3}
    assert {s.name: s.status for s in up.steps if s.type == THING} == {"alpha": "done", "bravo": "done"}
    assert up.outputs["names"].value == ["alpha", "bravo"] and not up.outputs["names"].secret
    assert up.outputs["token"].secret and str(up.outputs["token"].value).startswith("tok-")
    document = up.to_dict()
    assert document["outputs"]["token"] == {"value": "[secret]", "secret": True}
    assert "tok-" not in json.dumps(document) and "tok-" not in repr(up)

    outputs = fd.outputs(ops.stack)
    assert outputs["names"].value == ["alpha", "bravo"] and outputs["token"].secret

    again = fd.preview(ops.stack)
    assert again.changes == 0 and again.summary == {"same": 3}
    assert again.pr_summary().markdown.splitlines()[1].endswith("no changes")

    ops.configure([{"name": "alpha", "key": "a2"}, {"name": "bravo", "key": "b1", "value": "y"}])
    change = fd.preview(ops.stack)
    assert names_by_op(change) == {"alpha": {"create-replacement", "replace", "delete-replaced"}, "bravo": {"update"}}
    (alpha,) = [s for s in change.steps if s.name == "alpha" and s.op == "replace"]
    assert alpha.replace_reasons == ("key",)
    summary = change.pr_summary()
    assert [(r.kind, r.name, r.reasons) for r in summary.risks] == [("replace", "alpha", ("key",))]
    assert not summary.dangerous  # not a stateful type, not protected

    refreshed = fd.refresh(ops.stack)
    assert refreshed.succeeded and refreshed.summary.get("same", 0) + refreshed.summary.get("refresh", 0) >= 2

    destroyed = fd.destroy(ops.stack)
    assert destroyed.summary.get("delete") == 3
    assert fd.outputs(ops.stack) == {}


def test_protected_deletion_is_dangerous_and_fails_cleanly(ops: OpsProject) -> None:
    fd = Flightdeck(ops.settings())
    ops.configure([{"name": "alpha", "key": "a1", "protect": True}])
    fd.up(ops.stack)
    ops.configure([])
    with pytest.raises(OperationFailedError) as caught:
        fd.preview(ops.stack)
    assert "protected" in str(caught.value)
    result = caught.value.result
    assert not result.succeeded and result.digest is not None
    summary = result.pr_summary()
    assert summary.dangerous and summary.errors
    assert summary.risks[0].protected and summary.risks[0].kind == "delete"
    ops.configure([{"name": "alpha", "key": "a1"}])
    fd.up(ops.stack)  # unprotect
    fd.destroy(ops.stack)


def test_failing_up_raises_with_the_provider_error(ops: OpsProject) -> None:
    fd = Flightdeck(ops.settings())
    ops.configure([{"name": "alpha", "key": "a1"}, {"name": "bad", "key": "z", "value": "fail"}])
    with pytest.raises(OperationFailedError) as caught:
        fd.up(ops.stack)
    error = caught.value
    assert error.exit_code == 1
    assert "value 'fail' is not allowed" in str(error)
    assert {s.name: s.status for s in error.result.steps if s.type == THING}["bad"] == "failed"
    ops.configure([{"name": "alpha", "key": "a1"}])
    fd.destroy(ops.stack)


def test_unknown_stack_is_a_clear_error(ops: OpsProject) -> None:
    fd = Flightdeck(ops.settings(create_missing=False))
    with pytest.raises(api.StackNotFoundError, match="no stack 'nope'"):
        fd.preview("nope")


# -- concurrency --------------------------------------------------------------------------------


def test_operations_on_one_stack_are_serialized(ops: OpsProject) -> None:
    ops.configure(BASE_THINGS, delay=4.0)
    fd = Flightdeck(ops.settings())
    fd.preview(ops.stack)  # creates the stack
    spans: dict[str, tuple[float, float]] = {}
    errors: list[BaseException] = []
    up_running = threading.Event()

    def run(name: str, call: Any) -> None:
        started = time.monotonic()
        try:
            call()
        except BaseException as error:
            errors.append(error)
        spans[name] = (started, time.monotonic())

    def on_event(event: OperationEvent) -> None:
        if event.kind == "step" and event.step is not None and event.step.type == THING:
            up_running.set()

    up = threading.Thread(target=run, args=("up", lambda: fd.up(ops.stack, on_event=on_event)))
    up.start()
    assert up_running.wait(60)
    # A caller that will not wait gets a clear error at once, naming the holder.
    started = time.monotonic()
    with pytest.raises(StackLockedError) as caught:
        fd.preview(ops.stack, lock_timeout=0.5)
    assert time.monotonic() - started < 5
    assert "up by pid" in str(caught.value) and caught.value.exit_code == 4
    # A caller that waits runs after the up, and sees its result.
    waited: list[api.OperationResult] = []
    waiting = threading.Thread(target=run, args=("preview", lambda: waited.append(fd.preview(ops.stack))))
    waiting.start()
    up.join(120)
    waiting.join(120)
    assert not errors, errors
    assert spans["preview"][1] > spans["up"][1]
    assert waited[0].summary == {"same": 3}
    ops.configure(BASE_THINGS)
    fd.destroy(ops.stack)


def test_engine_lock_held_elsewhere_is_reported_not_waited_for(ops: OpsProject) -> None:
    fd = Flightdeck(ops.settings())
    fd.up(ops.stack)
    locks = ops.backend / ".pulumi" / "locks"
    stack_dirs = [p for p in locks.rglob("*") if p.is_dir() and p.name == ops.stack] if locks.exists() else []
    lock_dir = stack_dirs[0] if stack_dirs else locks / "organization" / "fdops" / ops.stack
    lock_dir.mkdir(parents=True, exist_ok=True)
    lock = {"pid": 1, "username": "someone", "hostname": "elsewhere", "timestamp": "2026-01-01T00:00:00Z"}
    (lock_dir / "0000-foreign.json").write_text(json.dumps(lock))
    started = time.monotonic()
    try:
        with pytest.raises(StackLockedError, match="engine's own lock"):
            fd.up(ops.stack)
        assert time.monotonic() - started < 60
    finally:
        (lock_dir / "0000-foreign.json").unlink()
    fd.destroy(ops.stack)


# -- the shared SQL test program and the goldens ------------------------------------------------


def test_preview_of_the_sql_test_program(engine: Engine, tmp_path: Path) -> None:
    from tests.e2e.sql_stack import write_project

    project = write_project(tmp_path / "sql", VENV)
    env = engine.file_backend_env(tmp_path / "sql-backend")
    settings = Settings(work_dir=project, env=env, pulumi_root=engine.cli_root, create_missing=True)
    fd = Flightdeck(settings)
    workspace = fd.workspace()
    from pulumi import automation as auto

    stack = auto.Stack.create_or_select("e2e", workspace)
    closed = {"mode": "direct", "host": "127.0.0.1", "port": 9, "user": "root", "password": "never-used-pw"}
    stack.set_config("adminConnection", auto.ConfigValue(json.dumps(closed), secret=True))
    sites = [{"name": "blog", "database": "blog", "user": "blog", "privileges": ["ALL"]}]
    stack.set_config("sites", auto.ConfigValue(json.dumps(sites)))
    stack.set_config("sitePasswords", auto.ConfigValue(json.dumps({"blog": "pw-blog-xyz"}), secret=True))
    result = fd.preview("e2e")
    assert result.summary == {"create": 4}
    resources = [s for s in result.steps if not s.type.startswith("pulumi:providers:")]
    assert sorted((s.type.rsplit(":", 1)[-1], s.name) for s in resources) == [
        ("Database", "blog-db"),
        ("Grant", "blog-grant"),
        ("Stack", "flightdeck-e2e-sql-e2e"),
        ("User", "blog-user"),
    ]
    text = json.dumps(result.digest)
    assert "never-used-pw" not in text and "pw-blog-xyz" not in text


def test_golden_previews_still_match_the_engine(engine: Engine, tmp_path: Path) -> None:
    from tests.unit.golden import record_previews

    env = {k: v for k, v in engine.env.items() if k != "PATH"}
    with pytest.MonkeyPatch.context() as patch:
        for key, value in env.items():
            patch.setenv(key, value)
        record_previews.record(tmp_path)
    golden = record_previews.GOLDEN_DIR
    recorded = sorted(p.name for p in tmp_path.glob("sql-*.md"))
    assert recorded == sorted(p.name for p in golden.glob("sql-*.md"))
    for name in recorded:
        assert (tmp_path / name).read_text() == (golden / name).read_text(), name
        fresh = pr_summary.parse_digest((tmp_path / name.replace(".md", ".json")).read_text())
        stored = pr_summary.parse_digest((golden / name.replace(".md", ".json")).read_text())
        assert fresh is not None and stored is not None
        assert fresh["changeSummary"] == stored["changeSummary"], name
