"""Fixtures of the fault-injection tier: the real engine, a control plane of its own, one stack.

The tier breaks its rig on purpose (it SIGKILLs MariaDB and the kube-apiserver), so it never
shares the e2e tier's ``rig``: ``fault_rig`` is a control plane and a MariaDB server (admin
``rig``; ``root`` belongs to the mariadb-operator stand-in) of its own. ``engine`` is the e2e
tier's fixture (``tools.pulumi_toolchain ensure``, seconds when warm).

``faults`` is one stack for the whole session, the local stack with its first site only
(``blog``), deployed and checked converged once; each case adds what it needs (a site, a
password rotation) with a fault in the middle and ends with
:func:`tests.faults.harness.assert_converged`, which leaves the stack converged for the next
case. A case that finds the stack unconverged (an earlier case failed) converges it first.

Every operation's events, output, errors and results land in ``capture``; the secrets scan
(``test_secrets.py``, always collected last) reads them. The time of each phase of each case is
printed at the end of the run.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e import conftest as e2e
from tests.e2e.conftest import unavailable
from tests.e2e.platform_rig import PASSPHRASE, PlatformStack, Rig
from tests.e2e.sql_stack import Engine
from tests.faults.harness import Capture, FaultStack, Ledger, assert_converged
from tools.controlplane import ControlPlane, ControlPlaneError, default_crds_dir
from tools.mariadb_server import MariaDBServer, MariaDBServerError, ensure_installed

MARIADB_NAMESPACE = "mariadb"  # the local stack's MariaDB resource
BASELINE_SITE = "blog"
TIMINGS: dict[str, dict[str, float]] = {}
NOTES: dict[str, list[str]] = {}

# The e2e tier's session fixture, registered here too (its own instance in this folder).
engine = e2e.engine


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The secrets scan reads what every other case captured: it runs last."""
    items.sort(key=lambda item: item.path.name == "test_secrets.py" and item.path.parent.name == "faults")


def pytest_sessionfinish(session: pytest.Session) -> None:
    """On an xdist worker: hand the timings to the controller, which prints the summary."""
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None and TIMINGS:
        workeroutput["fault_timings"] = json.dumps({"timings": TIMINGS, "notes": NOTES})


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: Any) -> None:
    received = getattr(node, "workeroutput", {}).get("fault_timings")
    if received:
        document = json.loads(received)
        TIMINGS.update(document["timings"])
        NOTES.update(document["notes"])


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not TIMINGS:
        return
    terminalreporter.section("fault-injection tier: seconds per case and phase")
    for case, phases in TIMINGS.items():
        total = sum(phases.values())
        detail = ", ".join(f"{phase} {seconds:.1f}" for phase, seconds in phases.items())
        terminalreporter.write_line(f"{case}: {total:.1f}s ({detail})")
        for note in NOTES.get(case, []):
            terminalreporter.write_line(f"    {note}")


@pytest.fixture(scope="session")
def fault_rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    if default_crds_dir() is None:
        unavailable("no CRD folder (set FLIGHTDECK_CRDS_DIR or provide ../shared/crds)")
    server: MariaDBServer | None = None
    plane: ControlPlane | None = None
    try:
        ensure_installed()
        server = MariaDBServer.create(admin_user="rig").start()
        plane = ControlPlane(
            tmp_path_factory.mktemp("fault-controlplane"), mariadb_servers={MARIADB_NAMESPACE: server.state_dir}
        )
        plane.start()
    except (MariaDBServerError, ControlPlaneError, OSError) as exc:
        if plane is not None:
            plane.stop()
        if server is not None:
            server.stop()
        unavailable(f"cannot start the fault tier's rig: {exc}")
    assert plane is not None and server is not None
    try:
        yield Rig(plane, {MARIADB_NAMESPACE: server})
    finally:
        try:
            plane.stop()
        finally:
            server.stop()


@pytest.fixture(scope="session")
def capture() -> Capture:
    return Capture()


@pytest.fixture(scope="session")
def ledger() -> Ledger:
    return Ledger()


@pytest.fixture(scope="session")
def passphrase_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("faults-secrets") / "passphrase"
    path.write_text(PASSPHRASE)
    path.chmod(0o600)
    return path


@pytest.fixture(scope="session")
def faults(
    fault_rig: Rig, engine: Engine, capture: Capture, ledger: Ledger, tmp_path_factory: pytest.TempPathFactory
) -> FaultStack:
    platform = PlatformStack.create(fault_rig, engine, tmp_path_factory.mktemp("fault-stack"))
    with platform.editing() as config:
        del config["flightdeck:sites"][1:]
    stack = FaultStack(platform, fault_rig.servers[MARIADB_NAMESPACE], capture, TIMINGS, NOTES)
    stack.capture.secrets.update({stack.server.admin_password, PASSPHRASE})
    with stack.timed("baseline", "first up"):
        stack.up()
    assert_converged(stack, ledger, "baseline")
    return stack


@pytest.fixture
def stack(faults: FaultStack, ledger: Ledger) -> FaultStack:
    """The session's stack, converged (a case left unconverged by a failure is converged first)."""
    if not faults.converged:
        try:
            with faults.timed("re-converge", "up"):
                faults.up()
            assert_converged(faults, ledger, "re-converge")
        except AssertionError as error:
            pytest.fail(f"the stack did not converge after an earlier case: {error}", pytrace=False)
    faults.converged = False  # until this case proves it again
    return faults
