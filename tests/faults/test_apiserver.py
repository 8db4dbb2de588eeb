"""The kube-apiserver restarted mid-up (crashed, down two seconds, started again).

It goes down once the new site's namespace exists, with the site's objects being created and
the SQL port-forward (which runs through the API server) in use. Every client has to cope: the
engine's kubernetes provider, the SQL providers' port-forward, the controllers and kwok. The
API server comes back with the same argv (port, certificates, etcd), so every kubeconfig stays
valid (tools/controlplane.py ``restart_component``).
"""

from __future__ import annotations

import signal

import pytest

from flightdeck.api import OperationFailedError
from tests.faults.harness import FaultStack, Ledger, OnEvent, add_site, assert_converged, changed, step_done

pytestmark = [pytest.mark.e2e, pytest.mark.faults, pytest.mark.timeout(900)]


def test_kube_apiserver_restarted_mid_up(stack: FaultStack, ledger: Ledger) -> None:
    case = "kube-apiserver restarted mid-up"
    plane = stack.rig.control_plane
    add_site(stack, "apirestart")
    before = plane._pid_records()["kube-apiserver"]
    port = plane.read_state().ports["kube-apiserver"]  # type: ignore[union-attr]
    restart = OnEvent(
        step_done("apirestart-namespace"),
        lambda: plane.restart_component("kube-apiserver", sig=signal.SIGKILL, down=2.0),
        background=True,
    )
    with stack.timed(case, "up with the restart"):
        first = stack.attempt("up", on_event=restart)
    restarted = restart.wait()
    assert restart.fired.is_set()
    assert restarted.pid != before.pid and restarted.argv == before.argv, "the same argv: port, certificates, etcd"
    assert plane.read_state().ports["kube-apiserver"] == port  # type: ignore[union-attr]
    assert all(component.healthy for component in plane.status())
    if isinstance(first, OperationFailedError):
        stack.note(case, f"up during the restart failed: {str(first)[:400]}")
    else:
        stack.note(case, "up during the restart succeeded (every call was retried past the outage)")
    with stack.timed(case, "converging up"):
        again = stack.up()
    assert all(name.startswith("apirestart") for name in changed(again)), changed(again)
    assert stack.rig.exists(lambda: stack.rig.apps().read_namespaced_deployment("apirestart", "apirestart"))
    assert_converged(stack, ledger, case)
