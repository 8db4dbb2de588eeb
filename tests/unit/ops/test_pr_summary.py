"""The PR preview summary: golden files (recorded from the real engine and plugins) and rules."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

from flightdeck import pr_summary
from flightdeck.pr_summary import STATEFUL_TYPES, parse_digest, render, risks, split_urn

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "previews"
CASES = sorted(path.stem for path in GOLDEN.glob("*.json"))
# A site removed (recorded from the real engine): everything of it goes, its data stays in place.
K8S_SITE_REMOVED_QUIET = [
    ("delete", name)
    for name in (
        "wiki-backups", "wiki-tls", "wiki-db", "wiki-network", "wiki", "wiki-files", "wiki-web",
        "wiki-web-deployment", "wiki-web-cron", "wiki-tls-certificate", "wiki-web-config", "wiki-namespace",
        "wiki-files-claim", "wiki-db-secret", "wiki-web-drupal-secret", "wiki-web-service",
        "wiki-backups-database", "wiki-web-ingress", "wiki-network-cron-to-web", "wiki-network-database",
        "wiki-network-default-deny", "wiki-network-egress", "wiki-network-egress-database",
        "wiki-network-ingress", "wiki-network-web-from-cron", "wiki-web-pdb", "wiki-backups-velero",
        "wiki-db-database", "wiki-db-grant-wiki.*", "wiki-db-password", "wiki-web-drupal-hash-salt",
    )
]  # fmt: skip
# What each golden digest must yield: (dangerous, has errors, {(kind, name): dangerous}).
EXPECTED: dict[str, tuple[bool, bool, dict[tuple[str, str], bool]]] = {
    "sql-create": (False, False, {}),
    "sql-no-change": (False, False, {}),
    "sql-replace-delete": (
        True,
        False,
        {
            ("replace", "blog-user"): True,
            ("replace", "blog-grant"): False,
            ("delete", "shop-db"): True,
            ("delete", "shop-user"): True,
            ("delete", "shop-grant"): False,
        },
    ),
    "sql-protected-replace": (True, True, {("replace", "blog-db"): True, ("replace", "blog-grant"): False}),
    "sql-protected-delete": (
        True,
        True,
        {("delete", "blog-db"): True, ("delete", "blog-user"): True, ("delete", "blog-grant"): False},
    ),
    "k8s-site-removed": (
        True,
        False,
        {
            **{(kind, name): False for kind, name in K8S_SITE_REMOVED_QUIET},
            ("delete", "wiki-db-user"): True,
        },
    ),
    "k8s-password-rotated": (False, False, {("replace", "blog-db-password"): False}),
    "k8s-scaled-and-domain": (False, False, {}),
    "k8s-refused-prefix": (False, True, {}),
}


def load(name: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((GOLDEN / f"{name}.json").read_text())
    return document


def test_every_golden_case_has_expectations() -> None:
    assert set(CASES) == set(EXPECTED)
    assert all((GOLDEN / f"{name}.md").exists() for name in CASES)


@pytest.mark.parametrize("name", CASES)
def test_golden_markdown(name: str) -> None:
    summary = render(load(name), stack="golden")
    assert summary.markdown == (GOLDEN / f"{name}.md").read_text()


@pytest.mark.parametrize("name", CASES)
def test_golden_verdicts(name: str) -> None:
    dangerous, has_errors, expected = EXPECTED[name]
    summary = render(load(name), stack="golden")
    assert summary.dangerous is dangerous
    assert bool(summary.errors) is has_errors
    assert {(r.kind, r.name): r.dangerous for r in summary.risks} == expected


def test_recorded_replacement_reason_and_protection() -> None:
    replace = {r.name: r for r in render(load("sql-protected-replace")).risks}
    assert replace["blog-db"].protected and replace["blog-db"].stateful
    assert replace["blog-db"].reasons == ("database",)
    assert replace["blog-db"].type == "pulumi-python:dynamic/mysql:Database"
    summary = render(load("sql-protected-replace"), stack="golden")
    assert "**replace `pulumi-python:dynamic/mysql:Database` `blog-db`**" in summary.markdown
    assert "🔒 protected" in summary.markdown
    assert "marked for protection" in summary.errors[0]
    assert summary.counts == {"update": 1, "replace": 2, "same": 4}


def test_recorded_goldens_hold_no_local_paths_or_secrets() -> None:
    for name in CASES:
        text = (GOLDEN / f"{name}.json").read_text()
        assert "sourcePosition" not in text and "/root/" not in text and "/home/" not in text
        assert "golden-site-password" not in text


def test_markdown_starts_with_marker_for_comment_updates() -> None:
    summary = render(load("sql-create"), stack="prod")
    assert summary.markdown.splitlines()[0] == "<!-- flightdeck-preview:prod -->"
    assert pr_summary.marker("prod") in summary.markdown


def test_a_removed_sites_data_is_reported_as_left_in_place() -> None:
    kept = {r.name for r in render(load("k8s-site-removed")).risks if r.retained}
    assert kept == {"wiki-namespace", "wiki-files-claim", "wiki-db-database", "wiki-backups-database"}


def test_a_refused_change_shows_the_programs_reason() -> None:
    summary = render(load("k8s-refused-prefix"), stack="golden")
    assert summary.errors and "kubernetes.namespacePrefix" in summary.errors[0]
    assert not summary.risks


def test_delete_before_replace_noted() -> None:
    pvc = "kubernetes:core/v1:PersistentVolumeClaim"
    # pulumi-kubernetes deletes an object with an explicit name before creating its replacement.
    steps = [step("delete-replaced", pvc, "blog-files"), step("create-replacement", pvc, "blog-files"),
             step("create-replacement", "kubernetes:apps/v1:Deployment", "blog-web"),
             step("replace", "kubernetes:apps/v1:Deployment", "blog-web", replaceReasons=["spec.selector"]),
             step("delete-replaced", "kubernetes:apps/v1:Deployment", "blog-web")]  # fmt: skip
    found = {r.name: r for r in render({"steps": steps}).risks}
    assert found["blog-files"].delete_before_replace and found["blog-files"].dangerous
    assert not found["blog-web"].delete_before_replace
    assert found["blog-web"].reasons == ("spec.selector",)


def step(op: str, typ: str, name: str, **extra: Any) -> dict[str, Any]:
    return {"op": op, "urn": f"urn:pulumi:s::p::{typ}::{name}", **extra}


@pytest.mark.parametrize("typ", sorted(STATEFUL_TYPES))
def test_every_stateful_type_is_dangerous_when_deleted_or_replaced(typ: str) -> None:
    for op in ("delete", "replace", "create-replacement", "delete-replaced"):
        summary = render({"steps": [step(op, typ, "x")]})
        assert summary.dangerous, (typ, op)
        assert f"**{'delete' if op == 'delete' else 'replace'} `{typ}` `x`**" in summary.markdown


def test_stateless_changes_are_listed_but_not_dangerous() -> None:
    summary = render(
        {
            "steps": [
                step("replace", "kubernetes:apps/v1:Deployment", "web", replaceReasons=["spec.selector"]),
                step("delete", "kubernetes:core/v1:Service", "svc"),
                step("update", "kubernetes:core/v1:PersistentVolumeClaim", "files", diffReasons=["spec.resources"]),
                step("create", "kubernetes:core/v1:Namespace", "new"),
            ]
        }
    )
    assert not summary.dangerous
    assert [(r.kind, r.name) for r in summary.risks] == [("replace", "web"), ("delete", "svc")]
    assert "because of `spec.selector`" in summary.markdown


def test_protected_stateless_resource_is_dangerous() -> None:
    summary = render({"steps": [step("delete", "kubernetes:core/v1:Service", "svc", oldState={"protect": True})]})
    assert summary.dangerous and summary.risks[0].protected


def test_retained_delete_and_discard_are_not_dangerous() -> None:
    pvc = "kubernetes:core/v1:PersistentVolumeClaim"
    summary = render(
        {
            "steps": [
                step("delete", pvc, "kept", oldState={"retainOnDelete": True}),
                step("discard", pvc, "forgotten"),
            ]
        }
    )
    assert not summary.dangerous
    assert {r.kind for r in summary.risks} == {"delete", "discard"}


def test_retained_replacement_still_dangerous() -> None:
    pvc = "kubernetes:core/v1:PersistentVolumeClaim"
    summary = render({"steps": [step("replace", pvc, "files", oldState={"retainOnDelete": True})]})
    assert summary.dangerous  # the replacement is a new, empty volume


def test_reason_precedence() -> None:
    steps = [step("replace", "t:m:T", "a", replaceReasons=["x"], diffReasons=["y"], detailedDiff={"z": {}})]
    assert risks(steps)[0].reasons == ("x",)
    steps = [step("replace", "t:m:T", "a", diffReasons=["y"], detailedDiff={"z": {}})]
    assert risks(steps)[0].reasons == ("y",)
    assert risks([step("delete", "t:m:T", "a")])[0].reasons == ()


def test_counts_without_change_summary_come_from_steps() -> None:
    summary = render(
        {"steps": [step("create", "t:m:T", "a"), step("create", "t:m:T", "b"), step("same", "t:m:T", "c")]}
    )
    assert summary.counts == {"create": 2, "same": 1}
    assert summary.has_changes


def test_counts_order_and_labels() -> None:
    summary = render({"changeSummary": {"same": 3, "delete": 1, "create": 2, "update": 0, "read": 1}})
    assert list(summary.counts) == ["create", "delete", "read", "same"]
    assert "| unchanged | 3 |" in summary.markdown
    assert "| update |" not in summary.markdown


def test_empty_digest() -> None:
    summary = render({})
    assert not summary.dangerous and not summary.has_changes
    assert "No changes." in summary.markdown


def test_errors_skip_generic_lines_and_keep_fences_intact() -> None:
    digest = {
        "diagnostics": [
            {"severity": "error", "message": "error: preview failed\n"},
            {"severity": "error", "message": "error: bad ```thing```\n"},
            {"severity": "warning", "message": "warning: meh"},
            {"severity": "info#err", "message": "pulumi program interrupted by the engine"},
        ]
    }
    summary = render(digest)
    assert summary.errors == ("bad ```thing```",)
    assert "bad '''thing'''" in summary.markdown
    assert summary.markdown.count("```") == 2


def test_code_spans_survive_backticks() -> None:
    assert pr_summary.code("a`b") == "``a`b``"
    assert pr_summary.code("`x") == "`` `x ``"


def test_split_urn_with_parents_and_colons_in_names() -> None:
    urn = "urn:pulumi:prod::flightdeck::a:b:C$kubernetes:core/v1:Namespace::odd::name"
    assert split_urn(urn) == ("kubernetes:core/v1:Namespace", "odd::name")
    assert split_urn("garbage") == ("", "garbage")


def test_long_comment_is_truncated_under_github_limit() -> None:
    steps = [step("delete", "kubernetes:core/v1:Namespace", f"site-{i:05d}") for i in range(3000)]
    summary = render({"steps": steps}, limit=20_000)
    assert len(summary.markdown) <= 20_000
    assert "truncated" in summary.markdown
    assert summary.dangerous


def test_parse_digest_ignores_leading_noise() -> None:
    assert parse_digest('warning: something\n{"steps": []}\n') == {"steps": []}
    assert parse_digest("no json here") is None
    assert parse_digest("{broken") is None
    assert parse_digest("[1, 2]") is None


def _regenerate() -> None:
    for name in CASES:
        (GOLDEN / f"{name}.md").write_text(render(load(name), stack="golden").markdown)
        print(f"wrote {name}.md")


if __name__ == "__main__":
    if sys.argv[1:] == ["--regenerate"]:
        _regenerate()
