"""SQL text builders (pure, no I/O): each returns ``(sql, params)`` for ``cursor.execute``.

Rules every builder follows:

* identifiers (database, table) are backtick-quoted by ``quote_identifier``;
* values (user, host, password, charset, collation, limits) are ``%s``
  parameters that PyMySQL escapes as literals;
* privilege keywords come only from the validated, canonical set
  (``privileges.KNOWN_PRIVILEGES``), never from raw input text;
* because PyMySQL applies ``%`` formatting whenever params are given, a ``%``
  inside a quoted identifier is doubled here (``params`` is always a tuple).

Every statement is valid on MariaDB 10.6+ and MySQL 8.0.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from .identifiers import escape_grant_database, quote_identifier
from .privileges import ALL, sorted_privileges

Statement = tuple[str, tuple[Any, ...]]

# Privileges become SQL keywords; only this shape can ever be emitted.
_PRIVILEGE_KEYWORD = re.compile(r"^[A-Z]+( [A-Z]+)*$")


def _ident(name: str) -> str:
    return quote_identifier(name).replace("%", "%%")


def grant_target(database: str, table: str, exact: bool = True) -> str:
    """``db.*`` (escaped LIKE pattern, see ``escape_grant_database``) or ``db.table`` (literal).

    ``exact=False`` addresses the unescaped pattern row that hand-written grants
    (``GRANT ... ON wp_blog.*``) create, so adoption can find and retire it.
    """
    if table == "*":
        return f"{_ident(escape_grant_database(database) if exact else database)}.*"
    return f"{_ident(database)}.{_ident(table)}"


def _privilege_list(privileges: Iterable[str]) -> str:
    items = sorted_privileges(privileges)
    if not items:
        raise ValueError("empty privilege list")
    for item in items:
        if not _PRIVILEGE_KEYWORD.match(item):
            raise ValueError("privilege names must be canonical keywords")
    return ", ".join(items)


# -- databases -------------------------------------------------------------------------------
def create_database(name: str, charset: str, collation: str) -> Statement:
    return (
        f"CREATE DATABASE IF NOT EXISTS {_ident(name)} CHARACTER SET %s COLLATE %s",
        (charset, collation),
    )


def alter_database(name: str, charset: str, collation: str) -> Statement:
    return f"ALTER DATABASE {_ident(name)} CHARACTER SET %s COLLATE %s", (charset, collation)


def drop_database(name: str) -> Statement:
    return f"DROP DATABASE IF EXISTS {_ident(name)}", ()


def select_database(name: str) -> Statement:
    return (
        (
            "SELECT DEFAULT_CHARACTER_SET_NAME, DEFAULT_COLLATION_NAME "
            "FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = %s"
        ),
        (name,),
    )


# -- users -----------------------------------------------------------------------------------
def _user_options(require_tls: bool, max_user_connections: int) -> tuple[str, tuple[Any, ...]]:
    if not isinstance(max_user_connections, int) or isinstance(max_user_connections, bool):
        raise TypeError("max_user_connections must be an int")
    require = "REQUIRE SSL" if require_tls else "REQUIRE NONE"
    return f" {require} WITH MAX_USER_CONNECTIONS %s", (max_user_connections,)


def create_user(
    user: str, host: str, password: str, require_tls: bool, max_user_connections: int, if_not_exists: bool = True
) -> Statement:
    """One statement, so a new account never exists without its password and limits.

    ``if_not_exists=False`` fails with server error 1396 when the account exists, which lets a
    caller create in one round trip and adopt only on that error.
    """
    options, params = _user_options(require_tls, max_user_connections)
    guard = " IF NOT EXISTS" if if_not_exists else ""
    return f"CREATE USER{guard} %s@%s IDENTIFIED BY %s{options}", (user, host, password, *params)


def alter_user_password(user: str, host: str, password: str) -> Statement:
    return "ALTER USER %s@%s IDENTIFIED BY %s", (user, host, password)


def alter_user_options(user: str, host: str, require_tls: bool, max_user_connections: int) -> Statement:
    options, params = _user_options(require_tls, max_user_connections)
    return f"ALTER USER %s@%s{options}", (user, host, *params)


def drop_user(user: str, host: str) -> Statement:
    return "DROP USER IF EXISTS %s@%s", (user, host)


def select_user(user: str, host: str) -> Statement:
    # mysql.user is a view on MariaDB 10.4+ and a table on MySQL 8.0; these columns exist in both.
    return (
        (
            "SELECT max_user_connections, ssl_type, plugin, authentication_string "
            "FROM mysql.user WHERE User = %s AND Host = %s"
        ),
        (user, host),
    )


# -- grants ----------------------------------------------------------------------------------
def grant(
    privileges: Iterable[str], database: str, table: str, user: str, host: str, grant_option: bool = False
) -> Statement:
    suffix = " WITH GRANT OPTION" if grant_option else ""
    return (
        f"GRANT {_privilege_list(privileges)} ON {grant_target(database, table)} TO %s@%s{suffix}",
        (user, host),
    )


def revoke(privileges: Iterable[str], database: str, table: str, user: str, host: str, exact: bool = True) -> Statement:
    target = grant_target(database, table, exact)
    return f"REVOKE {_privilege_list(privileges)} ON {target} FROM %s@%s", (user, host)


def revoke_grant_option(database: str, table: str, user: str, host: str, exact: bool = True) -> Statement:
    # Its own statement: "REVOKE ALL PRIVILEGES, GRANT OPTION ON db.*" is invalid (mariadb-operator #1176).
    return f"REVOKE GRANT OPTION ON {grant_target(database, table, exact)} FROM %s@%s", (user, host)


def select_database_grant(database: str, user: str, host: str, exact: bool = True) -> Statement:
    # SELECT *: the privilege columns differ between servers and versions; callers map them.
    return (
        "SELECT * FROM mysql.db WHERE User = %s AND Host = %s AND Db = %s",
        (user, host, escape_grant_database(database) if exact else database),
    )


def select_account_database_grants(database: str, user: str, host: str) -> Statement:
    """The account (no row: it does not exist) with its ``mysql.db`` rows for ``database``: the
    exact (escaped) pattern and the unescaped one a hand-written grant makes, in one round trip.

    An account without either row gives one row of NULLs; the caller tells the rows apart by
    ``Db`` (a binary column: compared exactly).
    """
    return (
        "SELECT d.* FROM mysql.user u LEFT JOIN mysql.db d ON d.User = %s AND d.Host = %s AND d.Db IN (%s, %s) "
        "WHERE u.User = %s AND u.Host = %s",
        (user, host, escape_grant_database(database), database, user, host),
    )


def select_table_grant(database: str, table: str, user: str, host: str) -> Statement:
    return (
        "SELECT Table_priv FROM mysql.tables_priv WHERE User = %s AND Host = %s AND Db = %s AND Table_name = %s",
        (user, host, database, table),
    )


def show_table_priv_column() -> Statement:
    return "SHOW COLUMNS FROM mysql.tables_priv LIKE 'Table\\_priv'", ()


def show_db_priv_columns() -> Statement:
    return "SHOW COLUMNS FROM mysql.db LIKE '%%\\_priv'", ()


__all__ = [
    "ALL",
    "Statement",
    "alter_database",
    "alter_user_options",
    "alter_user_password",
    "create_database",
    "create_user",
    "drop_database",
    "drop_user",
    "grant",
    "grant_target",
    "revoke",
    "revoke_grant_option",
    "select_account_database_grants",
    "select_database",
    "select_database_grant",
    "select_table_grant",
    "select_user",
]
