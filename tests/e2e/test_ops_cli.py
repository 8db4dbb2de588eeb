"""End-to-end: the ``flightdeck`` CLI (``python -m flightdeck`` in a subprocess) on the real engine.

Uses the ``fdops`` dynamic-provider program of ``test_ops_api`` for preview/up/outputs/destroy,
locking and failures, and a copy of the real flightdeck program + ``Pulumi.staging.yaml`` for the
``sites``/``rotate-password`` edits, validated and written for real without a preview (staging's
cluster is not here). The same commands with their real previews and ``up`` run against the local
platform in test_platform_engine.py.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from tests.e2e.platform_rig import as_json
from tests.e2e.sql_stack import Engine
from tests.e2e.test_ops_api import BASE_THINGS, REPO_ROOT, VENV, OpsProject, write_ops_project

pytestmark = pytest.mark.e2e

PYTHON = str(VENV / "bin" / "python")


def flightdeck(
    env: dict[str, str], *argv: str, timeout: float = 300, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PYTHON, "-m", "flightdeck", *argv],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        input=stdin,
    )


@pytest.fixture
def ops(engine: Engine, tmp_path: Path) -> OpsProject:
    project = write_ops_project(tmp_path / "fdops", engine)
    project.configure(BASE_THINGS)
    return project


def opts(ops: OpsProject) -> list[str]:
    return ["-C", str(ops.dir), "--pulumi-root", str(ops.engine.cli_root)]


def test_cli_preview_up_outputs_destroy(ops: OpsProject, tmp_path: Path) -> None:
    markdown = tmp_path / "comment.md"
    proc = flightdeck(ops.env, "preview", "dev", *opts(ops), "--create", "--json", "--markdown", str(markdown))
    assert proc.returncode == 0, proc.stderr
    document = as_json(proc)
    assert document["ok"] and document["result"]["summary"] == {"create": 3}
    assert document["dangerous"] is False
    assert markdown.read_text().startswith("<!-- flightdeck-preview:dev -->\n### Pulumi preview: `dev`")
    assert "| create | 3 |" in markdown.read_text()

    proc = flightdeck(ops.env, "up", "dev", *opts(ops))  # not a terminal and no --yes
    assert proc.returncode == 2 and "pass --yes" in proc.stderr

    proc = flightdeck(ops.env, "up", "dev", *opts(ops), "--yes")
    assert proc.returncode == 0, proc.stderr
    assert "up of dev: 3 create" in proc.stdout
    assert '  token: "[secret]"' in proc.stdout and "tok-" not in proc.stdout + proc.stderr
    assert "✓ create pulumi-python:dynamic/fdops:Thing alpha" in proc.stderr  # progress display

    proc = flightdeck(ops.env, "outputs", "dev", *opts(ops), "--json")
    assert as_json(proc)["outputs"]["token"] == {"value": "[secret]", "secret": True}
    proc = flightdeck(ops.env, "outputs", "dev", *opts(ops), "--json", "--show-secrets")
    assert as_json(proc)["outputs"]["token"]["value"].startswith("tok-")

    ops.configure([{"name": "alpha", "key": "a2"}, BASE_THINGS[1]])
    proc = flightdeck(ops.env, "preview", "dev", *opts(ops), "--fail-on-danger", "--markdown", "-")
    assert proc.returncode == 0, proc.stderr  # a replacement, but of nothing stateful
    assert "replace `pulumi-python:dynamic/fdops:Thing` `alpha` — because of `key`" in proc.stdout

    proc = flightdeck(ops.env, "refresh", "dev", *opts(ops), "--yes", "--json")
    assert proc.returncode == 0 and as_json(proc)["result"]["operation"] == "refresh"
    proc = flightdeck(ops.env, "destroy", "dev", *opts(ops))
    assert proc.returncode == 2 and "pass --yes" in proc.stderr
    proc = flightdeck(ops.env, "destroy", "dev", *opts(ops), "--yes", "--json")
    assert proc.returncode == 0 and as_json(proc)["result"]["summary"]["delete"] == 3


def test_cli_dangerous_preview_exits_3(ops: OpsProject) -> None:
    ops.configure([{"name": "alpha", "key": "a1", "protect": True}])
    assert flightdeck(ops.env, "up", "dev", *opts(ops), "--create", "--yes").returncode == 0
    ops.configure([{"name": "alpha", "key": "a2", "protect": True}])
    proc = flightdeck(ops.env, "preview", "dev", *opts(ops), "--fail-on-danger", "--json")
    # The engine refuses to replace a protected resource: the preview itself fails (exit 1) and
    # the JSON still carries the danger verdict for CI.
    assert proc.returncode == 1
    document = as_json(proc)
    assert "protection" in document["error"]["message"]
    assert document["dangerous"] is True
    assert document["result"]["steps"]
    ops.configure([{"name": "alpha", "key": "a1"}])
    assert flightdeck(ops.env, "up", "dev", *opts(ops), "--yes").returncode == 0


def test_cli_stack_locked_exits_4(ops: OpsProject) -> None:
    ops.configure(BASE_THINGS, delay=6.0)
    assert flightdeck(ops.env, "preview", "dev", *opts(ops), "--create", "-q").returncode == 0
    slow = subprocess.Popen(
        [PYTHON, "-m", "flightdeck", "up", "dev", *opts(ops), "--yes", "-q"],
        cwd=REPO_ROOT,
        env=ops.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        lock_file = ops.backend / ".flightdeck" / "locks" / "fdops" / "dev.lock"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not (lock_file.exists() and lock_file.read_text()):
            time.sleep(0.1)
        assert json.loads(lock_file.read_text())["operation"] == "up"
        started = time.monotonic()
        proc = flightdeck(ops.env, "preview", "dev", *opts(ops), "--lock-timeout", "1", "--json")
        assert proc.returncode == 4, proc.stderr
        assert time.monotonic() - started < 30
        error = as_json(proc)["error"]
        assert error["type"] == "StackLockedError" and f"up by pid {slow.pid}" in error["holder"]
    finally:
        _, err = slow.communicate(timeout=180)
    assert slow.returncode == 0, err
    assert lock_file.read_text() == ""  # released
    ops.configure(BASE_THINGS)
    assert flightdeck(ops.env, "destroy", "dev", *opts(ops), "--yes", "-q").returncode == 0


def test_cli_failed_up_exits_1_with_the_reason(ops: OpsProject) -> None:
    ops.configure([{"name": "bad", "key": "z", "value": "fail"}])
    proc = flightdeck(ops.env, "up", "dev", *opts(ops), "--create", "--yes", "--json")
    assert proc.returncode == 1
    error = as_json(proc)["error"]
    assert "value 'fail' is not allowed" in error["message"]
    assert "Traceback" not in error["message"]
    assert "Traceback" not in proc.stderr.split("flightdeck: ", 1)[-1]


def test_cli_pr_summary_of_raw_pulumi_preview_json(ops: OpsProject) -> None:
    assert flightdeck(ops.env, "up", "dev", *opts(ops), "--create", "--yes", "-q").returncode == 0
    ops.configure([{"name": "bravo", "key": "b2"}])
    pulumi = str(ops.engine.cli_root / "bin" / "pulumi")
    raw = subprocess.run(
        [pulumi, "preview", "--json", "--stack", "dev"], cwd=ops.dir, env=ops.env, capture_output=True, text=True
    )
    assert raw.returncode == 0, raw.stderr
    proc = flightdeck(ops.env, "pr-summary", "-", "--stack", "dev", stdin=raw.stdout)
    assert proc.returncode == 0
    assert "| replace | 1 |" in proc.stdout and "| delete | 1 |" in proc.stdout
    assert "delete `pulumi-python:dynamic/fdops:Thing` `alpha`" in proc.stdout
    assert flightdeck(ops.env, "destroy", "dev", *opts(ops), "--yes", "-q").returncode == 0


# -- site edits on the real flightdeck program ------------------------------------------------------


@pytest.fixture
def flightdeck_project(engine: Engine, tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """A copy of the real program and its staging stack file, on a file backend."""
    project = tmp_path / "flightdeck"
    project.mkdir()
    shutil.copyfile(REPO_ROOT / "__main__.py", project / "__main__.py")
    shutil.copyfile(REPO_ROOT / "Pulumi.staging.yaml", project / "Pulumi.staging.yaml")
    source = yaml.safe_load((REPO_ROOT / "Pulumi.yaml").read_text())
    source["runtime"]["options"]["virtualenv"] = str(VENV)
    (project / "Pulumi.yaml").write_text(yaml.safe_dump(source, sort_keys=False))
    env = engine.file_backend_env(tmp_path / "backend")
    return project, env


def test_cli_site_edits_validate_and_write_the_real_stack_file(flightdeck_project: tuple[Path, dict[str, str]]) -> None:
    project, env = flightdeck_project
    path = project / "Pulumi.staging.yaml"
    original = path.read_text()
    base = ["-s", "staging", "-C", str(project)]

    proc = flightdeck(env, "sites", "add", "news", *base, "--cms", "drupal", "--domain", "intranet.staging.example.org")
    assert proc.returncode == 2 and "already used by sites[1].domains[0]" in proc.stderr
    assert path.read_text() == original  # refused: nothing written, no preview run

    proc = flightdeck(
        env, "sites", "add", "news", *base, "--cms", "wordpress", "--domain", "news.staging.example.org",
        "--replicas", "2", "--no-preview", "--json",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert as_json(proc)["edit"]["written"] is True
    assert path.read_text().startswith(original)  # appended; comments and order untouched
    proc = flightdeck(env, "rotate-password", "news", *base, "--no-preview")
    assert proc.returncode == 0 and "+      user: {passwordVersion: 2}" in proc.stdout
    proc = flightdeck(env, "sites", "list", "-s", "staging", "-C", str(project), "--json")
    assert [s["name"] for s in as_json(proc)["sites"]] == ["shop", "intranet", "docs", "news"]
    proc = flightdeck(env, "sites", "remove", "news", *base, "--no-preview")
    assert proc.returncode == 0
    assert path.read_text() == original
