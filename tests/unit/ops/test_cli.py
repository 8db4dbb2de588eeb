"""CLI argument handling and the engine-free commands (no Pulumi engine runs here)."""

from __future__ import annotations

import io
import json
import re
import shlex
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from flightdeck import cli

REPO = Path(__file__).resolve().parents[3]
GOLDEN = REPO / "tests" / "unit" / "golden" / "previews"
WORKFLOWS = REPO / ".github" / "workflows"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    work = tmp_path / "project"
    work.mkdir()
    (work / "Pulumi.yaml").write_text("name: flightdeck\nruntime: python\n")
    shutil.copyfile(REPO / "Pulumi.staging.yaml", work / "Pulumi.staging.yaml")
    return work


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = cli.main(list(argv), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def run_json(*argv: str) -> tuple[int, dict[str, Any]]:
    code, out, _ = run(*argv, "--json")
    document: dict[str, Any] = json.loads(out)
    return code, document


# -- usage errors: exit 2, nothing changed ----------------------------------------------------------


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["nonsense"],
        ["preview"],
        ["sites"],
        ["sites", "add", "x", "-s", "staging", "--domain", "x.example.org"],  # no --cms
        ["sites", "add", "x", "-s", "staging", "--cms", "joomla", "--domain", "x.example.org"],
        ["sites", "add", "x", "--cms", "drupal", "--domain", "x.example.org"],  # no --stack
        ["sites", "add", "x", "-s", "staging", "--cms", "drupal", "--domain", "a.example.org", "--replicas", "two"],
        ["sites", "add", "x", "-s", "staging", "--cms", "drupal", "--domain", "a.example.org", "--env", "NOEQUALS"],
        ["preview", "staging", "--lock-timeout", "-1"],
        ["up", "staging", "--bogus"],
    ],
)
def test_bad_arguments_exit_2(project: Path, argv: list[str]) -> None:
    before = (project / "Pulumi.staging.yaml").read_text()
    code, out, err = run(*argv, "-C", str(project)) if argv else run()
    assert code == cli.EXIT_USAGE
    assert out == ""
    assert err.startswith("flightdeck: ")
    assert (project / "Pulumi.staging.yaml").read_text() == before


def test_bad_arguments_with_json_give_a_json_error(project: Path) -> None:
    code, document = run_json("sites", "add", "x", "-s", "staging", "-C", str(project))
    assert code == 2
    assert document["ok"] is False and document["exitCode"] == 2
    assert "--cms" in document["error"]["message"] and "--domain" in document["error"]["message"]


def test_help_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    assert run("--help")[0] == 0
    assert "exit codes" in capsys.readouterr().out
    assert run("sites", "add", "--help")[0] == 0
    assert "--cms" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["up", "staging"], "pass --yes"),
        (["refresh", "staging"], "pass --yes"),
        (["destroy", "staging"], "pass --yes"),
        (["preview", "staging", "--markdown", "-", "--json"], "both want stdout"),
    ],
)
def test_unconfirmed_or_conflicting_requests_are_refused_before_the_engine(
    project: Path, argv: list[str], message: str
) -> None:
    code, _, err = run(*argv, "-C", str(project))
    assert code == 2
    assert message in err


def test_invalid_stack_file_stops_operations_with_exit_2(project: Path, tmp_path: Path) -> None:
    path = project / "Pulumi.staging.yaml"
    path.write_text(path.read_text().replace("acmeEmail: hosting-ops@example.org", "acmeEmail: nope"))
    markdown = tmp_path / "summary.md"
    code, document = run_json("preview", "staging", "-C", str(project), "--markdown", str(markdown))
    assert code == 2
    assert document["error"]["problems"] == [
        {"path": "certificates.acmeEmail", "reason": "'nope' is not an e-mail address"}
    ]
    assert "invalid stack config" in markdown.read_text() and "`certificates.acmeEmail`" in markdown.read_text()
    code, _, err = run("up", "staging", "--yes", "-C", str(project))
    assert code == 2 and "certificates.acmeEmail" in err


def test_unknown_stack_file(project: Path) -> None:
    code, _, err = run("sites", "list", "-s", "nope", "-C", str(project))
    assert code == 2 and "no stack file Pulumi.nope.yaml" in err


# -- sites ------------------------------------------------------------------------------------------


def test_sites_list(project: Path) -> None:
    code, document = run_json("sites", "list", "-s", "staging", "-C", str(project))
    assert code == 0
    assert [site["name"] for site in document["sites"]] == ["shop", "intranet", "docs"]
    assert document["sites"][1]["database"]["name"] == "intranet_d11"
    code, out, _ = run("sites", "list", "-s", "staging", "-C", str(project))
    assert code == 0 and out.splitlines()[0].startswith("shop ")


def test_sites_add_dry_run_writes_nothing(project: Path) -> None:
    before = (project / "Pulumi.staging.yaml").read_text()
    code, out, _ = run(
        "sites", "add", "news", "-s", "staging", "-C", str(project),
        "--cms", "wordpress", "--domain", "news.staging.example.org", "--dry-run",
    )  # fmt: skip
    assert code == 0
    assert "+    - name: news" in out
    assert (project / "Pulumi.staging.yaml").read_text() == before


def test_sites_add_no_preview_writes_every_option(project: Path) -> None:
    code, document = run_json(
        "sites", "add", "news", "-s", "staging", "-C", str(project), "--no-preview",
        "--cms", "wordpress", "--domain", "news.staging.example.org", "--domain", "www.news.staging.example.org",
        "--replicas", "3", "--files-size", "20Gi", "--image", "wordpress:6.8-php8.3-apache",
        "--database-name", "news_db", "--user-name", "news_app", "--max-user-connections", "50",
        "--env", "WP_DEBUG=false", "--set", "resources.limits.memory=1Gi", "--set", "backup.retentionDays=14",
    )  # fmt: skip
    assert code == 0, document
    assert document["edit"]["written"] is True and "preview" not in document
    site = yaml.safe_load((project / "Pulumi.staging.yaml").read_text())["config"]["flightdeck:sites"][-1]
    assert site == {
        "name": "news",
        "cms": "wordpress",
        "domains": ["news.staging.example.org", "www.news.staging.example.org"],
        "image": "wordpress:6.8-php8.3-apache",
        "replicas": 3,
        "filesSize": "20Gi",
        "resources": {"limits": {"memory": "1Gi"}},
        "env": {"WP_DEBUG": "false"},
        "database": {"name": "news_db"},
        "user": {"name": "news_app", "maxUserConnections": 50},
        "backup": {"retentionDays": 14},
    }
    code, document = run_json("sites", "list", "-s", "staging", "-C", str(project))
    assert document["sites"][-1]["resources"]["limits"]["memory"] == "1Gi"


@pytest.mark.parametrize(
    ("extra", "problem"),
    [
        (["--domain", "shop.staging.example.org"], "sites[3].domains[0]"),  # taken by shop
        (["--domain", "n.example.org", "--replicas", "0"], "sites[3].replicas"),
        (["--domain", "n.example.org", "--set", "replica=2"], "sites[3].replica"),
        (["--domain", "n.example.org", "--backup-start", "12:00"], "sites[3].backup.startTime"),
        (["--domain", "n.example.org", "--database-name", "intranet_d11"], "sites[3].database.name"),
    ],
)
def test_sites_add_invalid_is_refused_with_problems(project: Path, extra: list[str], problem: str) -> None:
    before = (project / "Pulumi.staging.yaml").read_text()
    code, document = run_json("sites", "add", "news", "-s", "staging", "-C", str(project), "--cms", "drupal", *extra)
    assert code == 2
    assert any(p["path"].startswith(problem) for p in document["error"]["problems"]), document
    assert (project / "Pulumi.staging.yaml").read_text() == before


@pytest.mark.parametrize("value", ["name=x", ".a=1", "a..b=1"])
def test_bad_set_paths(project: Path, value: str) -> None:
    code, _, err = run(
        "sites", "add", "n", "-s", "staging", "-C", str(project), "--cms", "drupal", "--domain", "n.example.org",
        "--set", value, "--no-preview",
    )  # fmt: skip
    assert code == 2 and "--set" in err


def test_sites_remove_and_rotate_password_no_preview(project: Path) -> None:
    code, document = run_json("sites", "remove", "docs", "-s", "staging", "-C", str(project), "--no-preview")
    assert code == 0 and "-    - name: docs" in document["edit"]["diff"]
    code, document = run_json("rotate-password", "shop", "-s", "staging", "-C", str(project), "--no-preview")
    assert code == 0 and "user: {passwordVersion: 2}" in document["edit"]["diff"]
    code, document = run_json("sites", "list", "-s", "staging", "-C", str(project))
    assert [s["name"] for s in document["sites"]] == ["shop", "intranet"]
    assert document["sites"][0]["user"]["passwordVersion"] == 2
    code, document = run_json("sites", "remove", "docs", "-s", "staging", "-C", str(project), "--no-preview")
    assert code == 2 and "no site named 'docs'" in document["error"]["message"]


def test_edits_keep_the_real_stack_files_comments(project: Path) -> None:
    before = (project / "Pulumi.staging.yaml").read_text()
    run("sites", "add", "n", "-s", "staging", "-C", str(project), "--cms", "drupal", "--domain", "n.example.org",
        "--no-preview")  # fmt: skip
    run("sites", "remove", "n", "-s", "staging", "-C", str(project), "--no-preview")
    assert (project / "Pulumi.staging.yaml").read_text() == before


# -- pr-summary ---------------------------------------------------------------------------------------


def test_pr_summary_renders_golden_and_signals_danger(tmp_path: Path) -> None:
    digest = GOLDEN / "sql-replace-delete.json"
    code, out, _ = run("pr-summary", str(digest), "--stack", "golden")
    assert code == 0 and out == (GOLDEN / "sql-replace-delete.md").read_text()
    code, out, _ = run("pr-summary", str(digest), "--stack", "golden", "--fail-on-danger")
    assert code == cli.EXIT_DANGER
    target = tmp_path / "comment.md"
    code, document = run_json("pr-summary", str(digest), "--output", str(target), "--fail-on-danger")
    assert code == 3 and document["dangerous"] is True and target.read_text() == document["markdown"]
    code, _, _ = run("pr-summary", str(GOLDEN / "sql-create.json"), "--fail-on-danger")
    assert code == 0


def test_pr_summary_bad_input(tmp_path: Path) -> None:
    (tmp_path / "x.json").write_text("not json")
    assert run("pr-summary", str(tmp_path / "x.json"))[0] == 2
    assert run("pr-summary", str(tmp_path / "missing.json"))[0] == 2


# -- the GitHub workflows call commands that exist ---------------------------------------------------

PLACEHOLDERS = {"${{ matrix.stack }}": "staging", '"$STACK"': "staging"}


def _flightdeck_commands(script: str) -> list[list[str]]:
    found = []
    for placeholder, value in PLACEHOLDERS.items():
        script = script.replace(placeholder, value)
    for line in script.splitlines():
        match = re.search(r"(?:python -m flightdeck|^\s*flightdeck)\s+(.*)", line)
        if match:
            words = shlex.split(match.group(1).split(">")[0])
            found.append(words)
    return found


def test_workflows_parse_and_call_existing_commands() -> None:
    files = sorted(WORKFLOWS.glob("*.yml"))
    assert {path.name for path in files} >= {"preview.yml", "up.yml"}
    parser = cli.build_parser()
    seen: set[str] = set()
    for path in files:
        workflow = yaml.safe_load(path.read_text())
        assert workflow["jobs"], path
        assert True in workflow or "on" in workflow  # PyYAML reads the `on:` key as True
        for job in workflow["jobs"].values():
            for step in job["steps"]:
                if "uses" in step:
                    assert re.fullmatch(r"[\w.-]+/[\w.-]+@v\d+", step["uses"]), step["uses"]
                for argv in _flightdeck_commands(step.get("run", "")):
                    args = parser.parse_args(argv)  # raises on an unknown command or option
                    seen.add(args.command)
    assert {"preview", "up"} <= seen


def test_workflows_gate_production_and_use_secrets() -> None:
    up = yaml.safe_load((WORKFLOWS / "up.yml").read_text())
    assert up["jobs"]["prod"]["environment"] == "production"
    assert up["jobs"]["prod"]["needs"] == "staging"
    assert up["jobs"]["prod"]["concurrency"]["cancel-in-progress"] is False
    preview = yaml.safe_load((WORKFLOWS / "preview.yml").read_text())
    job = preview["jobs"]["preview"]
    assert job["env"]["PULUMI_CONFIG_PASSPHRASE"] == "${{ secrets.PULUMI_CONFIG_PASSPHRASE }}"
    assert job["env"]["PULUMI_BACKEND_URL"] == "${{ secrets.PULUMI_BACKEND_URL }}"
    assert preview["permissions"]["pull-requests"] == "write"
    assert set(job["strategy"]["matrix"]["stack"]) == {"staging", "prod"}
    for stack in job["strategy"]["matrix"]["stack"]:
        assert (REPO / f"Pulumi.{stack}.yaml").exists()


def test_preview_workflow_runs_the_policy_pack_in_the_project_virtualenv() -> None:
    steps = yaml.safe_load((WORKFLOWS / "preview.yml").read_text())["jobs"]["preview"]["steps"]
    scripts = {step.get("name"): step.get("run", "") for step in steps}
    (argv,) = _flightdeck_commands(scripts["Preview"])
    args = cli.build_parser().parse_args(argv)
    assert args.command == "preview" and args.policy_pack == ["policy"]
    assert (REPO / args.policy_pack[0] / "PulumiPolicy.yaml").is_file()
    assert "python -m venv .venv" in scripts["Install flightdeck"]
    assert "-r policy/requirements.txt" in scripts["Install flightdeck"]
    assert scripts["Preview"].lstrip().startswith("set +e\n.venv/bin/python -m flightdeck")


@pytest.mark.parametrize("command", [["preview", "staging"], ["up", "staging", "--yes"]])
def test_a_policy_pack_that_is_not_one_is_refused_before_the_engine(
    project: Path, tmp_path: Path, command: list[str]
) -> None:
    code, _, err = run(*command, "--policy-pack", str(tmp_path), "-C", str(project))
    assert code == 2
    assert f"--policy-pack {tmp_path}: no PulumiPolicy.yaml" in err


def test_policy_packs_are_passed_as_absolute_folders(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)
    assert cli._policy_packs(["policy"]) == [str(REPO / "policy")]
    assert cli._policy_packs(None) is None


def test_bare_keys_are_validated_before_the_engine_too(project: Path) -> None:
    path = project / "Pulumi.staging.yaml"
    text = path.read_text().replace("  flightdeck:", "  ")
    path.write_text(text.replace("acmeEmail: hosting-ops@example.org", "acmeEmail: nope"))
    code, _, err = run("up", "staging", "--yes", "-C", str(project))
    assert code == 2 and "certificates.acmeEmail" in err
    code, document = run_json("sites", "list", "-s", "staging", "-C", str(project))
    assert code == 2 and document["error"]["problems"][0]["path"] == "certificates.acmeEmail"
