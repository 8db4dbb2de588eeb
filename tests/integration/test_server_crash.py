"""MariaDBServer.crash/restart, which the fault tier uses: a SIGKILL loses nothing committed."""

from __future__ import annotations

import pymysql
import pytest

from tests.conftest import unavailable
from tools.mariadb_server import MariaDBServer, MariaDBServerError, ensure_installed

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]


def test_a_crashed_server_restarts_on_its_port_with_its_data_and_accounts() -> None:
    try:
        ensure_installed()
        server = MariaDBServer.create(admin_user="rig").start()
    except (MariaDBServerError, OSError) as exc:
        unavailable(f"cannot start MariaDB: {exc}")
        raise AssertionError("unreachable") from exc
    try:
        server.query("CREATE DATABASE crashy")
        server.query("CREATE TABLE crashy.t (id INT PRIMARY KEY) ENGINE=InnoDB")
        server.query("INSERT INTO crashy.t VALUES (1), (2)")
        pid, port = server.info.pid, server.port
        server.crash()
        assert not server.is_running()
        with pytest.raises(pymysql.err.OperationalError):
            server.query("SELECT 1")
        server.restart()
        assert server.is_running() and server.port == port and server.info.pid != pid
        assert server.query("SELECT id FROM crashy.t ORDER BY id") == [(1,), (2,)]
        assert MariaDBServer.from_state_dir(server.state_dir).query("SELECT 1") == [(1,)], "info.json still right"
        assert server.restart() is server, "a running server is left alone"
        server.crash()
        server.crash()  # crashing a dead server is a no-op
    finally:
        server.stop()
