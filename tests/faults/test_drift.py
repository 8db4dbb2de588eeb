"""Manual ``kubectl`` edits of managed objects: reported, shown in the PR summary, repaired.

Four edits an operator might make by hand: scale a Deployment, delete a NetworkPolicy, edit a
value in a Secret, delete a Certificate. A plain preview cannot see them (it compares the
program with the state, which still holds the old values); the refresh preview can
(``flightdeck preview --drift``), ``refresh`` records them, and ``up`` sets every one back: each
object carries ``pulumi.com/patchForce``, so server-side apply takes the fields back from the
manager that changed them.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from tests.faults.harness import FaultStack, Ledger, assert_converged, changed, cli

pytestmark = [pytest.mark.e2e, pytest.mark.faults, pytest.mark.timeout(900)]

# resource name -> (what a refresh reports, the field that changed, what up does)
DRIFT = {
    "blog-web-deployment": ("update", "spec.replicas", "update"),
    "blog-network-ingress": ("delete", None, "create"),
    "blog-db-secret": ("update", "data.DB_HOST", "update"),
    "blog-tls-certificate": ("delete", None, "create"),
}


def test_manual_edits_are_reported_shown_and_repaired(
    stack: FaultStack, ledger: Ledger, passphrase_file: Path, tmp_path: Path
) -> None:
    case = "drift: four manual kubectl edits"
    rig = stack.rig
    replicas = rig.apps().read_namespaced_deployment("blog", "blog").spec.replicas
    db_host = rig.secret_data("blog", "blog-db")["DB_HOST"]
    rig.apps().patch_namespaced_deployment_scale("blog", "blog", {"spec": {"replicas": replicas + 3}})
    rig.networking().delete_namespaced_network_policy("ingress-controller-only", "blog")
    forged = base64.b64encode(b"db.attacker.example").decode()
    rig.core().patch_namespaced_secret("blog-db", "blog", {"data": {"DB_HOST": forged}})
    rig.custom().delete_namespaced_custom_object("cert-manager.io", "v1", "blog", "certificates", "blog")

    markdown = tmp_path / "comment.md"
    with stack.timed(case, "preview --drift (CLI)"):
        done = cli(stack, ["preview", stack.name, "--drift", "--json", "--markdown", str(markdown)], passphrase_file)
    assert done.returncode == 0, done.stderr[-3000:]
    document = json.loads(done.stdout)["result"]
    assert document["changes"] == 0, "a plain preview cannot see drift: the state still holds the old values"
    drifted = {item["name"]: item for item in document["drift"]}
    assert set(drifted) == set(DRIFT), drifted
    for name, (op, field, _) in DRIFT.items():
        assert drifted[name]["kind"] == ("deleted" if op == "delete" else "changed")
        if field:
            assert field in drifted[name]["fields"], drifted[name]
    comment = markdown.read_text()
    assert "#### Drift since the last deployment (4)" in comment and "🔀 drift (4)" in comment
    for name, (op, field, _) in DRIFT.items():
        line = next(line for line in comment.splitlines() if f"`{name}`" in line)
        assert ("deleted outside Pulumi" if op == "delete" else "changed outside Pulumi") in line, line
        if field:
            assert f"`{field}`" in line, line

    with stack.timed(case, "refresh"):
        refreshed = stack.run("refresh")
    assert changed(refreshed) == {name: op for name, (op, _, _) in DRIFT.items()}, changed(refreshed)
    fields = {step.name: step.diffs for step in refreshed.steps}
    assert "spec.replicas" in fields["blog-web-deployment"] and "data.DB_HOST" in fields["blog-db-secret"]

    with stack.timed(case, "repairing up"):
        repaired = stack.up()
    assert changed(repaired) == {name: op for name, (_, _, op) in DRIFT.items()}, changed(repaired)
    assert rig.apps().read_namespaced_deployment("blog", "blog").spec.replicas == replicas
    assert rig.exists(lambda: rig.networking().read_namespaced_network_policy("ingress-controller-only", "blog"))
    assert rig.secret_data("blog", "blog-db")["DB_HOST"] == db_host
    assert rig.exists(
        lambda: rig.custom().get_namespaced_custom_object("cert-manager.io", "v1", "blog", "certificates", "blog")
    )
    assert_converged(stack, ledger, case)
