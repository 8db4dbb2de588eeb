"""MariaDBServer's lifecycle, which the real tiers rely on.

crash/restart (the fault tier): a SIGKILL loses nothing committed. start: a port taken between
the pick and mariadbd's own bind (by anything else on a busy rig) costs one retry, not a test;
each server has its own tmpdir (four started at once in /tmp failed 3 of 16 times; 0 of 36 since).
"""

from __future__ import annotations

import socket

import pymysql
import pytest

from tests.conftest import started
from tools.mariadb_server import MariaDBServer
from tools.ports import address_in_use

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]


def test_a_crashed_server_restarts_on_its_port_with_its_data_and_accounts() -> None:
    server = started(MariaDBServer.create(admin_user="rig").start, "MariaDB")
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


def test_a_port_taken_before_mariadbd_binds_it_moves_the_server_to_a_fresh_port() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        taken = squatter.getsockname()[1]
        server = started(MariaDBServer.create(port=taken).start, "MariaDB")
        try:
            assert server.port != taken
            assert server.query("SELECT @@port") == [(server.port,)]
            # Never the shared /tmp: concurrent bootstraps there lost each other's temporary tables.
            assert server.query("SELECT @@tmpdir") == [(str(server.tmp_dir),)]
            assert MariaDBServer.from_state_dir(server.state_dir).port == server.port, "info.json has the new port"
            assert address_in_use(server.log_tail(400)), "the first bind really failed"
        finally:
            server.stop()
