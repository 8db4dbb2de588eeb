"""MariaDB fails under a running ``up``: SIGKILLed while a statement runs, or down for the whole run.

The statement is caught mid-flight with a held write lock (``FLUSH TABLES WITH READ LOCK`` on a
session of the test's own): the provider's ``CREATE`` waits, visibly, in the process list, and
the server is SIGKILLed right then, as a node failure would, and started again two seconds
later while the ``up`` goes on (InnoDB crash recovery; the same data, port and accounts). The
pod's port-forward streams end with it, as a kubelet ends them (kwok restarted, see below).
"""

from __future__ import annotations

import signal
import threading
import time

import pytest

from flightdeck import stack_file
from flightdeck.api import OperationFailedError
from tests.e2e.sql_stack import can_login, databases
from tests.faults.harness import (
    FaultStack,
    Ledger,
    add_site,
    assert_converged,
    changed,
    failed_steps,
    statement_waiting,
    writes_held,
)

pytestmark = [pytest.mark.e2e, pytest.mark.faults, pytest.mark.timeout(900)]

# The SQL providers' error names the server they could not reach (components/sql/connection.py).
SERVER_NAMED = "cannot connect to the MySQL/MariaDB server (mode=portForward, service=mariadb-write, namespace=mariadb"


def test_mariadb_sigkilled_while_a_statement_runs_then_restarted(stack: FaultStack, ledger: Ledger) -> None:
    case = "MariaDB SIGKILLed mid-statement, restarted"
    add_site(stack, "crash")
    outcome: dict[str, object] = {}

    plane = stack.rig.control_plane

    def kill_mid_statement() -> None:
        with writes_held(stack.server):
            outcome["statement"] = statement_waiting(stack.server, "crash")
            stack.server.crash()
            # In a cluster the port-forward streams to a pod end with its server. kwok's tunnel
            # ends only once *both* directions have (sigs.k8s.io/kwok pkg/utils/net/tunnel.go), so
            # a client waiting for an answer would wait out its read timeout (600 s); ending the
            # fake kubelet's streams, as the real one ends them, is restarting kwok.
            plane.stop_component("kwok", sig=signal.SIGKILL)
        time.sleep(2)
        stack.server.restart()
        plane.start_component("kwok")

    injector = threading.Thread(target=kill_mid_statement, daemon=True)
    injector.start()
    with stack.timed(case, "up with the fault"):
        first = stack.attempt("up")
    injector.join(timeout=120)
    assert not injector.is_alive() and stack.server.is_running()
    assert str(outcome["statement"]).upper().startswith(("CREATE", "GRANT")), outcome
    if isinstance(first, OperationFailedError):
        # The statement's connection died with the server; its one retry found it still down.
        assert SERVER_NAMED in str(first) or "Lost connection" in str(first), str(first)
        assert failed_steps(first.result) and all(name.startswith("crash") for name in failed_steps(first.result))
    stack.note(case, f"statement caught: {outcome['statement']}")
    verdict = f"failed: {str(first)[:300]}" if isinstance(first, OperationFailedError) else "succeeded"
    stack.note(case, f"up with the fault {verdict}")
    with stack.timed(case, "converging up"):
        again = stack.up()
    assert "crash" in databases(stack.server, "crash")
    assert all(name.startswith("crash") for name in changed(again)), changed(again)
    assert_converged(stack, ledger, case)


def test_mariadb_unreachable_for_the_whole_up(stack: FaultStack, ledger: Ledger) -> None:
    """A new site and a password rotation while the server is down: the error names the server,
    the Kubernetes half goes ahead, nothing depending on the SQL changes (the site's Secret and
    pods, the rotated Secret) moves, and the next ``up`` finishes both."""
    case = "MariaDB unreachable for the whole up"
    rig = stack.rig
    add_site(stack, "dbdown")
    before = rig.secret_data("blog", "blog-db")
    stack.capture.secrets.add(before["DB_PASSWORD"])
    stack_file.rotate_password(stack.platform.stack_file, "blog")
    stack.server.stop(remove_state=False)
    try:
        with stack.timed(case, "up with the server down"):
            error = stack.failing("up")
    finally:
        stack.server.restart()
    message = str(error)
    assert SERVER_NAMED in message, message
    failed = failed_steps(error.result)
    assert {"dbdown-db-database", "dbdown-db-user", "blog-db-user"} <= failed, failed
    # The Kubernetes half went ahead; nothing that needs the database moved.
    assert rig.exists(lambda: rig.core().read_namespace("dbdown"))
    assert rig.exists(lambda: rig.core().read_namespaced_persistent_volume_claim("dbdown-files", "dbdown"))
    assert not rig.exists(lambda: rig.core().read_namespaced_secret("dbdown-db", "dbdown"))
    assert not rig.exists(lambda: rig.apps().read_namespaced_deployment("dbdown", "dbdown"))
    assert rig.secret_data("blog", "blog-db")["DB_PASSWORD"] == before["DB_PASSWORD"]
    assert can_login(stack.server, before["DB_USER"], before["DB_PASSWORD"]), "the old password still works"

    with stack.timed(case, "converging up"):
        again = stack.up()
    steps = changed(again)
    assert steps.get("blog-db-user") == "update" and steps.get("blog-db-secret") == "update", steps
    after = rig.secret_data("blog", "blog-db")
    assert after["DB_PASSWORD"] != before["DB_PASSWORD"]
    assert can_login(stack.server, after["DB_USER"], after["DB_PASSWORD"])
    assert not can_login(stack.server, before["DB_USER"], before["DB_PASSWORD"])
    assert rig.exists(lambda: rig.apps().read_namespaced_deployment("dbdown", "dbdown"))
    assert_converged(stack, ledger, case)
