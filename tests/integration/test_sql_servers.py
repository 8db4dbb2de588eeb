"""The MariaDB fixtures themselves, replication, the port-forward path and connection reuse."""

from __future__ import annotations

import os
import pwd
import socket
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sql_support import can_login, checked, db_privileges, schemata

from components.sql import connection as sqlconn
from components.sql.connection import get_connection, parse_connection
from components.sql.providers import DatabaseProvider, GrantProvider, UserProvider
from tests.conftest import unavailable
from tools.mariadb_server import MariaDBServer, MariaDBServerError

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]


def test_primary_runs_unprivileged_on_loopback(mariadb_primary: MariaDBServer) -> None:
    pid = mariadb_primary.info.pid
    assert pid is not None and mariadb_primary.is_running()
    uid = os.stat(f"/proc/{pid}").st_uid
    if os.geteuid() == 0:
        assert pwd.getpwuid(uid).pw_name == "mysql"
        assert Path(mariadb_primary.datadir).stat().st_uid == uid
    assert mariadb_primary.query("SELECT @@bind_address, @@skip_networking, @@port") == [
        ("127.0.0.1", 0, mariadb_primary.port)
    ]
    assert mariadb_primary.query("SELECT @@datadir")[0][0].rstrip("/") == str(mariadb_primary.datadir)
    assert "admin_password" not in repr(mariadb_primary.info)


def test_replica_uses_gtid(mariadb_replica: MariaDBServer) -> None:
    status = mariadb_replica.replica_status()
    assert status["Slave_IO_Running"] == "Yes" and status["Slave_SQL_Running"] == "Yes"
    assert status["Using_Gtid"] == "Slave_Pos"


def test_provider_writes_reach_the_replica(
    mariadb_primary: MariaDBServer,
    mariadb_replica: MariaDBServer,
    admin_connection: dict[str, Any],
    sql_names: Callable[[str], str],
) -> None:
    db, user = sql_names("rdb"), sql_names("ru")
    DatabaseProvider().create(checked(DatabaseProvider(), {"connection": admin_connection, "database": db}))
    UserProvider().create(checked(UserProvider(), {"connection": admin_connection, "user": user, "password": "r-pw-1"}))
    grant = checked(
        GrantProvider(),
        {"connection": admin_connection, "user": user, "database": db, "privileges": ["SELECT", "INSERT"]},
    )
    created = GrantProvider().create(grant)
    assert created.outs is not None
    mariadb_primary.query(f"CREATE TABLE `{db}`.t (i INT)")
    mariadb_primary.query(f"INSERT INTO `{db}`.t VALUES (42)")  # noqa: S608 - fixture data
    mariadb_replica.wait_for_replica_catch_up()
    assert db in schemata(mariadb_replica)
    assert db_privileges(mariadb_replica, user, db) == {"SELECT", "INSERT"}
    assert can_login(mariadb_replica, user, "r-pw-1")
    with mariadb_replica.connect(user=user, password="r-pw-1", database=db) as conn, conn.cursor() as cur:
        cur.execute("SELECT i FROM t")
        assert cur.fetchall() == ((42,),)
    # a delta update replicates too
    GrantProvider().update(created.id, created.outs, {**grant, "privileges": ["SELECT"]})
    mariadb_replica.wait_for_replica_catch_up()
    assert db_privileges(mariadb_replica, user, db) == {"SELECT"}


def test_port_forward_mode_through_the_local_forwarder(
    mariadb_primary: MariaDBServer,
    admin_connection: dict[str, Any],
    sql_names: Callable[[str], str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The loopback listener + pump path, with the Kubernetes stream replaced by a TCP dial."""
    opened: list[str] = []

    def factory(spec: sqlconn.ConnectionSpec) -> sqlconn.StreamOpener:
        def open_stream() -> socket.socket:
            opened.append(spec.service or spec.host)
            return socket.create_connection(("127.0.0.1", mariadb_primary.port))

        return open_stream

    monkeypatch.setattr(sqlconn, "stream_opener_factory", factory)
    conn = {
        **admin_connection,
        "mode": "portForward",
        "host": "mariadb-primary",
        "port": 3306,
        "namespace": "db",
    }
    name = sql_names("pf")
    DatabaseProvider().create(checked(DatabaseProvider(), {"connection": conn, "database": name}))
    assert name in schemata(mariadb_primary)
    assert opened == ["mariadb-primary"]
    # the connection is reused: a second call opens no new stream
    DatabaseProvider().read(name, {"connection": conn, "database": name})
    assert opened == ["mariadb-primary"]
    sqlconn.close_all()


def test_one_connection_per_thread_reused(admin_connection: dict[str, Any]) -> None:
    spec = parse_connection(admin_connection)
    first = get_connection(spec)
    assert get_connection(spec) is first
    other: list[Any] = []
    thread = threading.Thread(target=lambda: other.append(get_connection(spec)))
    thread.start()
    thread.join()
    assert other and other[0] is not first
    other[0].close()
    first.close()  # a dead cached connection is replaced transparently
    assert get_connection(spec) is not first


def test_provider_pickles_by_reference_even_after_use(
    admin_connection: dict[str, Any], sql_names: Callable[[str], str]
) -> None:
    from pulumi.dynamic.dynamic import serialize_provider

    provider = DatabaseProvider()
    before = serialize_provider(provider)
    provider.create(checked(provider, {"connection": admin_connection, "database": sql_names("pk")}))
    after = serialize_provider(provider)  # a live connection exists now; it must not be captured
    assert before == after and len(before) < 200


def test_unreachable_state_dir_fails_clearly() -> None:
    import shutil
    import tempfile

    if os.geteuid() != 0:
        unavailable("only root hands the data dir to another user")
    locked = Path(tempfile.mkdtemp(prefix="fd-locked-"))  # 0700, root-owned
    try:
        with pytest.raises(MariaDBServerError, match="cannot enter"):
            MariaDBServer.create(locked / "db").start()
    finally:
        shutil.rmtree(locked, ignore_errors=True)


def test_cli_start_info_stop() -> None:
    """The e2e tier and the demo stack drive the same module as a CLI."""
    import json
    import shutil
    import subprocess
    import sys
    import tempfile

    root = Path(__file__).resolve().parents[2]
    state = Path(tempfile.mkdtemp(prefix="fd-cli-")) / "db"
    state.parent.chmod(0o755)  # the server's unprivileged user must be able to enter it
    env = {**os.environ, "PYTHONPATH": str(root)}

    def cli(*args: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "tools.mariadb_server", *args, "--state-dir", str(state)],
            capture_output=True,
            text=True,
            cwd=root,
            env=env,
            timeout=150,
            check=False,
        )
        assert done.returncode == 0, done.stderr[-2000:]
        return done.stdout

    try:
        started = json.loads(cli("start"))
        assert "admin_password" not in started  # start prints no secret
        info = json.loads(cli("info"))
        server = MariaDBServer.from_state_dir(state)
        assert server.query("SELECT 1") == [(1,)] and info["port"] == started["port"]
        assert oct((state / "info.json").stat().st_mode & 0o777) == "0o600"
        cli("stop")
        assert not server.is_running()
    finally:
        subprocess.run(
            [sys.executable, "-m", "tools.mariadb_server", "stop", "--state-dir", str(state)],
            cwd=root,
            env=env,
            capture_output=True,
            timeout=90,
            check=False,
        )
        shutil.rmtree(state.parent, ignore_errors=True)
