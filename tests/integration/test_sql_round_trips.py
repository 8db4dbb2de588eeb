"""How many statements the SQL providers send a real MariaDB per site (counts, never times).

A site is a database, a user and a grant. Counted on the server itself: ``Questions`` (every
statement a client sent), ``Com_admin_commands`` (pings) and ``Connections``, before and after,
minus what the probe itself sends. The providers reuse their thread's connection, so after the
first call no connection is opened at all.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sql_support import checked

from components.sql.providers import DatabaseProvider, GrantProvider, UserProvider
from tools.mariadb_server import MariaDBServer

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

COUNTERS = ("Questions", "Com_admin_commands", "Connections")


def _counters(server: MariaDBServer) -> dict[str, int]:
    rows = server.query("SHOW GLOBAL STATUS WHERE Variable_name IN (%s, %s, %s)", COUNTERS)
    return {str(name): int(value) for name, value in rows}


@contextmanager
def traffic(server: MariaDBServer) -> Iterator[dict[str, int]]:
    """Statements + pings + connections sent by the ``with`` body (the probe's own subtracted)."""
    first, second = _counters(server), _counters(server)
    own = {k: second[k] - first[k] for k in COUNTERS}
    delta: dict[str, int] = {}
    before = _counters(server)
    yield delta
    after = _counters(server)
    delta.update({k: after[k] - before[k] - own[k] for k in COUNTERS})


def _site(conn: dict[str, Any], name: str) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    database = checked(DatabaseProvider(), {"connection": conn, "database": name})
    user = checked(UserProvider(), {"connection": conn, "user": name, "password": f"pw-{name}-Secret"})
    grant = checked(
        GrantProvider(), {"connection": conn, "user": name, "database": name, "privileges": ["SELECT", "INSERT"]}
    )
    return database, user, grant


def test_a_site_is_created_in_four_statements_and_refreshed_in_three(
    mariadb_primary: MariaDBServer, admin_connection: dict[str, Any], sql_names: Callable[[str], str]
) -> None:
    warm = sql_names("warm")  # opens this thread's connection and reads the server's privilege columns
    warm_db, warm_user, warm_grant = _site(admin_connection, warm)
    DatabaseProvider().create(warm_db)
    UserProvider().create(warm_user)
    GrantProvider().create(warm_grant)

    name = sql_names("site")
    database, user, grant = _site(admin_connection, name)
    with traffic(mariadb_primary) as created:
        db_id = DatabaseProvider().create(database).id
        user_id = UserProvider().create(user).id
        grant_result = GrantProvider().create(grant)
    # CREATE DATABASE, CREATE USER, (account + grant rows) and GRANT; no pings, no new connection.
    assert created == {"Questions": 4, "Com_admin_commands": 0, "Connections": 0}

    assert grant_result.outs is not None
    with traffic(mariadb_primary) as refreshed:
        read_db = DatabaseProvider().read(db_id, database)
        read_user = UserProvider().read(user_id, user)
        read_grant = GrantProvider().read(grant_result.id, grant_result.outs)
    assert refreshed == {"Questions": 3, "Com_admin_commands": 0, "Connections": 0}
    assert (read_db.id, read_user.id, read_grant.id) == (db_id, user_id, grant_result.id)
    assert read_grant.outs is not None and read_grant.outs["privileges"] == ["INSERT", "SELECT"]


def test_adoption_still_finds_what_exists(
    mariadb_primary: MariaDBServer, admin_connection: dict[str, Any], sql_names: Callable[[str], str]
) -> None:
    """The one-statement creates fall back to looking at the server when the object exists."""
    name = sql_names("adopt")
    mariadb_primary.query(f"CREATE DATABASE `{name}` CHARACTER SET latin1 COLLATE latin1_swedish_ci")
    mariadb_primary.query("CREATE USER %s@'%%' IDENTIFIED BY 'old-Password1' WITH MAX_USER_CONNECTIONS 3", (name,))
    database, user, _ = _site(admin_connection, name)
    DatabaseProvider().create(database)
    UserProvider().create(user)
    charset = mariadb_primary.query(
        "SELECT DEFAULT_CHARACTER_SET_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = %s", (name,)
    )
    assert charset == [("utf8mb4",)]
    limit = mariadb_primary.query("SELECT max_user_connections FROM mysql.user WHERE User = %s", (name,))
    assert limit == [(0,)]
