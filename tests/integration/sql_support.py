"""Helpers for driving the SQL providers directly, as the Pulumi engine would."""

from __future__ import annotations

from typing import Any

from pulumi.dynamic import ResourceProvider

from tools.mariadb_server import MariaDBServer


def checked(provider: ResourceProvider, news: dict[str, Any], olds: dict[str, Any] | None = None) -> dict[str, Any]:
    """Run ``check`` and return the normalised inputs, failing on any check failure."""
    result = provider.check(olds or {}, dict(news))
    reasons = [f"{f.property}: {f.reason}" for f in result.failures]
    assert not reasons, reasons
    return dict(result.inputs)


def schemata(server: MariaDBServer) -> dict[str, tuple[str, str]]:
    rows = server.query(
        "SELECT SCHEMA_NAME, DEFAULT_CHARACTER_SET_NAME, DEFAULT_COLLATION_NAME FROM information_schema.SCHEMATA"
    )
    return {str(r[0]): (str(r[1]), str(r[2])) for r in rows}


def accounts(server: MariaDBServer) -> set[tuple[str, str]]:
    return {(str(u), str(h)) for u, h in server.query("SELECT User, Host FROM mysql.user")}


def user_row(server: MariaDBServer, user: str, host: str = "%") -> tuple[Any, ...] | None:
    rows = server.query("SELECT max_user_connections, ssl_type FROM mysql.user WHERE User=%s AND Host=%s", (user, host))
    return rows[0] if rows else None


def can_login(server: MariaDBServer, user: str, password: str, database: str | None = None) -> bool:
    """Login over plain TCP (PyMySQL would otherwise opportunistically use TLS when offered)."""
    import pymysql

    try:
        with server.connect(user=user, password=password, database=database, ssl_disabled=True):
            return True
    except pymysql.err.OperationalError:
        return False


def db_privileges(server: MariaDBServer, user: str, database: str, host: str = "%") -> set[str]:
    """Privileges in mysql.db for an exactly-escaped database-level grant."""
    from components.sql.identifiers import escape_grant_database
    from components.sql.privileges import privilege_from_db_column

    with server.connect() as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT * FROM mysql.db WHERE User=%s AND Host=%s AND Db=%s",
            (user, host, escape_grant_database(database)),
        )
        row = cur.fetchone()
        if row is None:
            return set()
        names = [d[0] for d in cur.description]
    out: set[str] = set()
    for name, value in zip(names, row, strict=True):
        priv = privilege_from_db_column(name)
        if priv and value == "Y":
            out.add(priv)
    return out
