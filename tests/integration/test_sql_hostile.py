"""Hostile identifiers never reach SQL unescaped.

Two independent defences are checked against a real server:

1. ``check`` rejects every hostile name with a field-named error (and accepts the
   legitimate unicode ones, which then round-trip through create/read/delete);
2. even with validation bypassed, the statement builders quote/parameterise the
   name so the server either creates an object with *exactly* that name or
   rejects it — a canary database and account always survive and no other
   object appears.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pymysql
import pytest
from sql_support import accounts, checked, schemata

from components.sql import statements as sql
from components.sql.providers import DatabaseProvider, GrantProvider, UserProvider
from tools.mariadb_server import MariaDBServer

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

HOSTILE = [
    "x'; DROP DATABASE canary; --",
    'x"; DROP DATABASE canary; --',
    "x`; DROP DATABASE canary; --",
    "a`b",
    "``",
    "x` CHARACTER SET latin1 --",
    "x;y",
    "x -- comment",
    "x#comment",
    "x/*c*/y",
    "x\x00y",
    "x\ny",
    "x\r\n",
    "x\ty",
    " leading",
    "trailing ",
    "x\\y",
    "x%y",
    "%",
    "x@y",
    "a.b",
    "x'y",
    "\u202egnp.exe",  # right-to-left override
    "x\u200by",  # zero-width space
    "emoji\U0001f600",  # outside the BMP: identifiers cannot hold it
    "a" * 65,  # over-long database name
    "é" * 65,  # over-long in characters, not bytes
    "mysql",  # system schema
    "information_schema",
    "%s",
    "%(x)s",
    "x%%s",
    "?",
    "",
]
# Hostile as database names, but harmless and legal as account names.
VALID_USER_NAMES = {"a.b", "mysql", "information_schema"}
VALID_TABLE_NAMES = {"mysql", "information_schema"}


def _server_spelling(name: str) -> str:
    """How the server itself folds an account name: trailing spaces cut, non-BMP → '?'."""
    return "".join("?" if ord(ch) > 0xFFFF else ch for ch in name).rstrip(" ")


# Legitimate non-ASCII names: accepted, quoted, and must round-trip exactly.
UNICODE_OK = ["café", "数据库", "данные_1", "sité-ü$"]


@pytest.mark.parametrize("name", HOSTILE, ids=[repr(n)[:40] for n in HOSTILE])
def test_check_rejects_hostile_names_with_field_named_errors(name: str) -> None:
    conn = {"mode": "direct", "host": "db", "port": 3306, "user": "root", "password": "pw"}
    db = DatabaseProvider().check({}, {"connection": conn, "database": name})
    assert [f.property for f in db.failures] == ["database"], db.failures
    assert db.failures[0].reason.startswith("database:")
    user = UserProvider().check({}, {"connection": conn, "user": name, "password": "pw"})
    if name not in VALID_USER_NAMES:
        assert [f.property for f in user.failures] == ["user"], user.failures
        assert user.failures[0].reason.startswith("user:")
    grant = GrantProvider().check(
        {}, {"connection": conn, "user": "app", "database": "site", "table": name, "privileges": ["SELECT"]}
    )
    if name not in VALID_TABLE_NAMES:
        assert [f.property for f in grant.failures] == ["table"], grant.failures


@pytest.fixture(scope="module")
def canary(mariadb_primary: MariaDBServer) -> str:
    mariadb_primary.query("CREATE DATABASE IF NOT EXISTS canary")
    mariadb_primary.query("CREATE TABLE IF NOT EXISTS canary.t (i INT)")
    mariadb_primary.query("CREATE USER IF NOT EXISTS 'canary'@'%' IDENTIFIED BY 'canary-pw'")
    return "canary"


def _run_raw(server: MariaDBServer, statement: sql.Statement) -> str | None:
    try:
        with server.connect() as conn, conn.cursor() as cur:
            cur.execute(*statement)
        return None
    except pymysql.err.MySQLError as exc:
        return str(exc)


@pytest.mark.parametrize("name", HOSTILE + UNICODE_OK, ids=[repr(n)[:40] for n in HOSTILE + UNICODE_OK])
def test_bypassing_validation_still_cannot_inject(mariadb_primary: MariaDBServer, canary: str, name: str) -> None:
    before_dbs, before_users = set(schemata(mariadb_primary)), accounts(mariadb_primary)
    try:
        statement = sql.create_database(name, "utf8mb4", "utf8mb4_unicode_ci")
    except ValueError:
        statement = None  # empty / NUL: refused before any SQL exists
    if statement is not None and name not in before_dbs:
        error = _run_raw(mariadb_primary, statement)
        created = set(schemata(mariadb_primary)) - before_dbs
        assert created <= {name}, (created, error)
        if created:
            assert _run_raw(mariadb_primary, sql.drop_database(name)) is None
    user_stmt = sql.create_user(name[:80], "%", "pw';DROP USER canary;--", False, 0)
    error = _run_raw(mariadb_primary, user_stmt)
    new_users = accounts(mariadb_primary) - before_users
    # The server folds some names (a reason validation rejects them), but never runs anything else.
    assert new_users <= {(name[:80], "%"), (_server_spelling(name[:80]), "%")}, (new_users, error)
    for user, host in new_users:
        assert _run_raw(mariadb_primary, sql.drop_user(user, host)) is None
    assert "canary" in schemata(mariadb_primary)
    assert ("canary", "%") in accounts(mariadb_primary)
    assert mariadb_primary.query("SELECT COUNT(*) FROM canary.t") == [(0,)]


@pytest.mark.parametrize("name", UNICODE_OK)
def test_unicode_names_round_trip_through_the_providers(
    mariadb_primary: MariaDBServer, admin_connection: dict[str, Any], sql_names: Callable[[str], str], name: str
) -> None:
    database = f"{sql_names('')}{name}"
    props = checked(DatabaseProvider(), {"connection": admin_connection, "database": database, "drop_on_delete": True})
    created = DatabaseProvider().create(props)
    assert created.id == database and database in schemata(mariadb_primary)
    assert created.outs is not None
    user = f"u{name}"[:32]
    user_outs = (
        UserProvider()
        .create(checked(UserProvider(), {"connection": admin_connection, "user": user, "password": "pw-ü-1"}))
        .outs
    )
    grant = GrantProvider().create(
        checked(
            GrantProvider(),
            {"connection": admin_connection, "user": user, "database": database, "privileges": ["SELECT"]},
        )
    )
    assert grant.outs is not None
    assert GrantProvider().read(grant.id, grant.outs).outs["privileges"] == ["SELECT"]  # type: ignore[index]
    GrantProvider().delete(grant.id, grant.outs)
    assert user_outs is not None
    UserProvider().delete(f"{user}@%", user_outs)
    DatabaseProvider().delete(database, created.outs)
    assert database not in schemata(mariadb_primary)


def test_corpus_is_big_enough() -> None:
    assert len(HOSTILE) >= 25
