"""Reserved accounts and schemas on a real MariaDB: never adopted, altered, revoked or dropped.

MariaDB (10.4+) ships ``mysql@localhost`` (unix_socket, ALL PRIVILEGES WITH GRANT OPTION) and
``mariadb.sys``; the admin logs in as ``root``. Each test snapshots what the server holds for
those accounts, drives the providers the way the engine would (including with state an older
version might have recorded), and checks nothing changed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from sql_support import accounts, schemata

from components.sql.providers import DatabaseProvider, GrantProvider, SQLProviderError, UserProvider
from tools.mariadb_server import MariaDBServer

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


def _account_snapshot(server: MariaDBServer, user: str, host: str) -> tuple[Any, ...]:
    """Everything an adoption, ALTER USER, REVOKE or DROP USER would change."""
    rows = server.query("SELECT User, Host, Priv FROM mysql.global_priv WHERE User=%s AND Host=%s", (user, host))
    grants = server.query(f"SHOW GRANTS FOR '{user}'@'{host}'")  # names are fixed literals here
    return (tuple(rows), tuple(grants))


def _server_accounts(server: MariaDBServer) -> list[tuple[str, str]]:
    # mariadb-install-db creates mysql@localhost only for the unix user it runs as; add it exactly as
    # the Debian/official install does, so the example account is the one under test.
    if ("mysql", "localhost") not in accounts(server):
        server.query("CREATE USER 'mysql'@'localhost' IDENTIFIED VIA unix_socket")
        server.query("GRANT ALL PRIVILEGES ON *.* TO 'mysql'@'localhost' WITH GRANT OPTION")
    reserved = [(u, h) for u, h in accounts(server) if u in ("mysql", "root", "mariadb.sys", "repl")]
    assert {("mysql", "localhost"), ("mariadb.sys", "localhost")} <= set(reserved), reserved
    assert any(u == "root" for u, _ in reserved), reserved
    return sorted(reserved)


def test_check_refuses_every_reserved_account_the_server_has(
    mariadb_primary: MariaDBServer, admin_connection: dict[str, Any]
) -> None:
    for user, host in _server_accounts(mariadb_primary):
        result = UserProvider().check({}, {"connection": admin_connection, "user": user, "host": host, "password": "x"})
        assert [f.property for f in result.failures] == ["user"], (user, host, result.failures)
        assert "reserved" in result.failures[0].reason


def test_reserved_accounts_survive_create_update_and_delete(
    mariadb_primary: MariaDBServer, admin_connection: dict[str, Any]
) -> None:
    before = {account: _account_snapshot(mariadb_primary, *account) for account in _server_accounts(mariadb_primary)}
    for user, host in before:
        state = {
            "connection": admin_connection,
            "user": user,
            "host": host,
            "password": "site-password-1",
            "max_user_connections": 50,
            "require_tls": False,
        }
        with pytest.raises(SQLProviderError, match="refused"):
            UserProvider().create(state)
        with pytest.raises(SQLProviderError, match="refused"):
            UserProvider().update(f"{user}@{host}", state, {**state, "password": "site-password-2"})
        UserProvider().delete(f"{user}@{host}", state)  # as when a site that once held it is removed
        grant = {
            "connection": admin_connection,
            "user": user,
            "host": host,
            "database": "site_db",
            "table": "*",
            "privileges": ["ALL PRIVILEGES"],
            "grant_option": True,
        }
        with pytest.raises(SQLProviderError, match="refused"):
            GrantProvider().create(grant)
        GrantProvider().delete(f"{user}@{host}@site_db@*", grant)
    after = {account: _account_snapshot(mariadb_primary, *account) for account in before}
    assert after == before
    # The admin connection still works: root was neither re-passworded nor dropped.
    assert mariadb_primary.query("SELECT 1") == [(1,)]


def test_the_external_admin_account_is_never_a_site_account(
    mariadb_primary: MariaDBServer, sql_names: Callable[[str], str]
) -> None:
    admin = sql_names("adm")
    mariadb_primary.query(f"CREATE USER '{admin}'@'%' IDENTIFIED BY 'admin-pass-1'")
    mariadb_primary.query(f"GRANT ALL PRIVILEGES ON *.* TO '{admin}'@'%' WITH GRANT OPTION")
    connection = {**mariadb_primary.info.as_connection_input(), "user": admin, "password": "admin-pass-1"}
    before = _account_snapshot(mariadb_primary, admin, "%")
    state = {"connection": connection, "user": admin, "password": "site-pass", "host": "%"}
    result = UserProvider().check({}, state)
    assert "admin account this connection logs in with" in result.failures[0].reason
    with pytest.raises(SQLProviderError, match="refused"):
        UserProvider().create({**state, "max_user_connections": 0, "require_tls": False})
    UserProvider().delete(f"{admin}@%", {**state, "max_user_connections": 0, "require_tls": False})
    assert _account_snapshot(mariadb_primary, admin, "%") == before
    mariadb_primary.query(f"DROP USER '{admin}'@'%'")


def test_system_schemas_are_never_dropped(mariadb_primary: MariaDBServer, admin_connection: dict[str, Any]) -> None:
    before = schemata(mariadb_primary)
    for name in ("mysql", "sys", "performance_schema", "information_schema"):
        state = {
            "connection": admin_connection,
            "database": name,
            "charset": "latin1",
            "collation": "latin1_swedish_ci",
            "drop_on_delete": True,
        }
        with pytest.raises(SQLProviderError, match="refused"):
            DatabaseProvider().create(state)
        DatabaseProvider().delete(name, state)
    assert schemata(mariadb_primary) == before
