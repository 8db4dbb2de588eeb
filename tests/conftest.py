"""Shared pytest fixtures: real MariaDB servers for the integration and e2e tiers.

``mariadb_primary`` and ``mariadb_replica`` are session-scoped and lazy: a
server is started only when a test asks for it, so the unit tier never starts
one.  Both run as unprivileged processes on free loopback ports with their own
state dirs (see ``tools/mariadb_server.py``) and are stopped at session end.
The replica replicates from the primary with GTIDs.

A missing prerequisite (no mariadb-server and it cannot be installed, a server
that will not start) **fails** the test when ``CI=true`` and skips it elsewhere,
so CI can never go green by skipping the database tests.

``sql_names`` gives each test a fresh, short, unique name prefix so tests never
collide on the shared servers.
"""

from __future__ import annotations

import itertools
import os
import secrets
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NoReturn

import pytest

# `pytest` (unlike `python -m pytest`) does not put the repository root on sys.path.
_ROOT = str(Path(__file__).resolve().parent.parent)
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

from tools.mariadb_server import MariaDBServer, MariaDBServerError, ensure_installed  # noqa: E402

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def unavailable(reason: str) -> NoReturn:
    """A missing prerequisite of a real tier: a failure with ``CI=true``, a skip elsewhere."""
    if IN_CI:
        pytest.fail(f"prerequisite missing in CI (never skipped there): {reason}", pytrace=False)
    pytest.skip(reason)


def started(start: Callable[[], MariaDBServer], what: str) -> MariaDBServer:
    """``start()`` a test server (installing mariadb-server if needed), or report it unavailable."""
    try:
        ensure_installed()
        return start()
    except (MariaDBServerError, OSError) as exc:
        unavailable(f"cannot start {what}: {exc}")


@pytest.fixture(scope="session")
def mariadb_primary() -> Iterator[MariaDBServer]:
    """A running primary (binlog + GTID); admin credentials in ``.info``."""
    server = started(lambda: MariaDBServer.create(server_id=1).start(), "MariaDB")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def mariadb_replica(mariadb_primary: MariaDBServer) -> Iterator[MariaDBServer]:
    """A GTID replica of ``mariadb_primary``; ``wait_for_replica_catch_up()`` before asserting."""
    server = started(lambda: MariaDBServer.create(server_id=2).start_replica_of(mariadb_primary), "the MariaDB replica")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def mariadb_tls() -> Iterator[MariaDBServer]:
    """A standalone server with TLS (throwaway CA at ``.ca_file``, certificate for 127.0.0.1)."""
    server = started(lambda: MariaDBServer.create(server_id=10, tls=True).start(), "the TLS MariaDB server")
    try:
        yield server
    finally:
        server.stop()


_counter = itertools.count(1)


@pytest.fixture
def sql_names() -> Callable[[str], str]:
    """``sql_names("db")`` → a unique identifier like ``t7a3f_db`` (≤ 32 chars for user names)."""
    prefix = f"t{next(_counter)}{secrets.token_hex(2)}"

    def make(suffix: str = "") -> str:
        name = f"{prefix}_{suffix}" if suffix else prefix
        if len(name) > 32:
            raise ValueError(f"test name {name!r} too long for a MySQL user name")
        return name

    return make


@pytest.fixture
def admin_connection(mariadb_primary: MariaDBServer) -> dict[str, Any]:
    """The providers' ``connection`` input for the primary (mode direct)."""
    return mariadb_primary.info.as_connection_input()


# `make test` runs the tiers on real parts with `pytest -n 2 --dist loadscope`: the scopes below
# are its work units, the longest first, so that the two workers start on them at once.
_FIRST_SCOPES = ("tests/faults", "tests/e2e/test_platform_engine.py")


def fixture_scope(nodeid: str) -> str:
    """The unit of tests that must share one worker, because they share session or module
    fixtures (a control plane, servers, a deployed stack) and run in order: the fault tier as a
    whole (one rig; its secrets scan reads what the other cases captured), every other file by
    itself."""
    path = nodeid.split("::", 1)[0]
    return "tests/faults" if path.startswith("tests/faults/") else path


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    if config.getvalue("dist") != "loadscope":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class FixtureScopeScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return fixture_scope(nodeid)

    return FixtureScopeScheduling(config, log)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    rank = {scope: index for index, scope in enumerate(_FIRST_SCOPES)}
    items.sort(key=lambda item: rank.get(fixture_scope(item.nodeid), len(_FIRST_SCOPES)))
