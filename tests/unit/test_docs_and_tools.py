"""The README stays true to the model, and the dry renderer works on every stack file."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tools import config_reference, render_stack

REPO = Path(__file__).resolve().parents[2]


def test_readme_configuration_reference_matches_the_model() -> None:
    readme = (REPO / "README.md").read_text()
    assert config_reference.readme_section(readme) == config_reference.render(), (
        "README.md is out of date: run python -m tools.config_reference --write"
    )


def test_ci_runs_the_readme_test_command() -> None:
    readme = (REPO / "README.md").read_text()
    assert "make test" in readme
    assert "make test" in (REPO / ".ci" / "run").read_text()


@pytest.mark.parametrize("stack", ["local", "staging", "prod"])
def test_render_writes_objects_and_redacts_secrets(
    stack: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert render_stack.main([stack, "--out", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    assert "https://" in printed
    secrets = list(tmp_path.glob("*/Secret-*.yaml"))
    assert secrets
    for path in secrets:
        assert yaml.safe_load(path.read_text())["stringData"] == render_stack.REDACTED
    assert "mock-password" not in "".join(p.read_text() for p in tmp_path.rglob("*.yaml"))
    plan = yaml.safe_load((tmp_path / "sql-plan.yaml").read_text())
    assert plan["databases"] and plan["users"] and plan["grants"]
    assert all(user["password"] == render_stack.REDACTED for user in plan["users"])


def test_render_reports_config_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "Pulumi.broken.yaml").write_text(
        "config:\n  flightdeck:mysql: {mode: operator, readerCount: -1}\n"
        "  flightdeck:certificates: {acmeEmail: ops@example.org}\n"
    )
    assert render_stack.main(["broken", "--stack-dir", str(tmp_path), "--out", str(tmp_path / "out")]) == 2
    assert "broken: mysql.readerCount: Input should be greater than or equal to 0" in capsys.readouterr().err


def _bare(stack_file: Path) -> str:
    """The same stack file with every `flightdeck:` key spelt without the namespace."""
    return stack_file.read_text().replace("  flightdeck:", "  ")


def test_render_reads_bare_keys_like_namespaced_ones(tmp_path: Path) -> None:
    (tmp_path / "Pulumi.prod.yaml").write_text(_bare(REPO / "Pulumi.prod.yaml"))
    assert render_stack.stack_file_config("prod", tmp_path) == render_stack.stack_file_config("prod")
    assert render_stack.main(["prod", "--stack-dir", str(tmp_path), "--out", str(tmp_path / "out")]) == 0
    assert (tmp_path / "out" / "shop" / "Deployment-shop.yaml").exists()


def test_render_refuses_a_file_with_both_spellings(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = (REPO / "Pulumi.local.yaml").read_text() + "  sites: []\n"
    (tmp_path / "Pulumi.local.yaml").write_text(text)
    assert render_stack.main(["local", "--stack-dir", str(tmp_path), "--out", str(tmp_path / "out")]) == 2
    assert "both 'flightdeck:sites' and 'sites' are set" in capsys.readouterr().err


def test_render_with_previous_outputs_refuses_what_up_would(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert render_stack.main(["staging", "--out", str(tmp_path / "a"), "--json"]) == 0
    previous = tmp_path / "previous.json"
    previous.write_text(capsys.readouterr().out)
    (tmp_path / "Pulumi.staging.yaml").write_text(
        (REPO / "Pulumi.staging.yaml").read_text().replace("namespacePrefix: stg-", "namespacePrefix: staging-")
    )
    argv = ["staging", "--stack-dir", str(tmp_path), "--out", str(tmp_path / "b"), "--previous", str(previous)]
    assert render_stack.main(argv) == 2
    err = capsys.readouterr().err
    assert 'staging: kubernetes.namespacePrefix: "stg-" → "staging-"' in err
    assert not (tmp_path / "b").exists()
    same = ["staging", "--out", str(tmp_path / "c"), "--previous", str(previous)]
    assert render_stack.main(same) == 0
