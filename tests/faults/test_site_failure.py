"""One site's create keeps failing; another site added meanwhile still converges.

The failing site's namespace was made beforehand with a ResourceQuota that allows no
PersistentVolumeClaim (as a cluster admin's policy might): its files claim is refused by the
API server at create, every time. flightdeck's ``up`` runs with ``--continue-on-error``: the
refused claim and what depends on it (the site's Deployment) are skipped, everything else
goes ahead, and the failure is reported naming the claim.
"""

from __future__ import annotations

import pytest

from tests.e2e.sql_stack import can_login
from tests.faults.harness import FaultStack, Ledger, add_site, assert_converged, changed, failed_steps

pytestmark = [pytest.mark.e2e, pytest.mark.faults, pytest.mark.timeout(900)]


def test_a_site_added_while_another_sites_create_fails(stack: FaultStack, ledger: Ledger) -> None:
    case = "a site added while another site's create fails"
    rig = stack.rig
    rig.core().create_namespace({"metadata": {"name": "broken"}})
    quota = {"metadata": {"name": "no-claims"}, "spec": {"hard": {"persistentvolumeclaims": "0"}}}
    rig.core().create_namespaced_resource_quota("broken", quota)
    add_site(stack, "broken")
    with stack.timed(case, "up: broken fails"):
        first = stack.failing("up")
    assert failed_steps(first.result) == {"broken-files-claim"}, failed_steps(first.result)
    assert "broken-files-claim" in str(first) and "exceeded quota" in str(first), str(first)
    # The rest of the broken site that does not need the claim exists; its pods do not.
    assert rig.exists(lambda: rig.core().read_namespaced_secret("broken-db", "broken"))
    assert not rig.exists(lambda: rig.apps().read_namespaced_deployment("broken", "broken"))

    add_site(stack, "late", cms="wordpress")
    with stack.timed(case, "up: late added, broken still fails"):
        second = stack.failing("up")
    assert failed_steps(second.result) == {"broken-files-claim"}, failed_steps(second.result)
    created = {name for name, op in changed(second.result).items() if op == "create"}
    assert {"late-namespace", "late-db-user", "late-files-claim", "late-web-deployment", "late-web-ingress"} <= created
    settings = rig.secret_data("late", "late-db")
    assert can_login(stack.server, settings["DB_USER"], settings["DB_PASSWORD"], settings["DB_NAME"])
    deployment = rig.apps().read_namespaced_deployment("late", "late")
    assert deployment.status.ready_replicas == deployment.spec.replicas
    stack.note(case, f"reported: {str(second)[:300]}")

    rig.core().delete_namespaced_resource_quota("no-claims", "broken")
    with stack.timed(case, "converging up"):
        third = stack.up()
    assert "broken-files-claim" in changed(third) and "broken-web-deployment" in changed(third), changed(third)
    assert all(name.startswith("broken") for name in changed(third)), changed(third)
    assert_converged(stack, ledger, case)
