"""Typed Pulumi resources over the SQL dynamic providers.

Type tokens: ``pulumi-python:dynamic/mysql:Database``, ``.../mysql:User`` and
``.../mysql:Grant``.  Renaming a class or moving this package changes them and
needs ``pulumi.Alias(type_=...)``.

Every resource takes one ``connection`` input (an object, normally a secret
``Output[dict]``)::

    {"mode": "direct" | "portForward", "host": str, "port": int,
     "user": str, "password": str,
     "tls": {"enabled": bool, "ca": str | None, "verifyServerCert": bool},   # optional
     "kubeconfig": str | None, "kubeContext": str | None,                   # portForward only
     "namespace": str | None, "service": str | None,
     "connectTimeout": int}                                                   # optional, seconds

When it is omitted, the provider falls back to the stack config object
``<project>:sqlConnection``.  Changing only the connection never replaces or
alters anything on the server: the new value is just stored for later calls.
``connection`` and ``password`` outputs are always secret.

Protect the databases you care about (``ResourceOptions(protect=True)``); a
database is only dropped on delete when ``drop_on_delete=True`` was applied
before the delete.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
from pulumi.dynamic import Resource

from .pickling import unwrap_pickler
from .providers import DatabaseProvider, GrantProvider, UserProvider


def _with_secret_outputs(opts: pulumi.ResourceOptions | None, keys: list[str]) -> pulumi.ResourceOptions:
    # The engine only keeps an output secret when the same-named input was secret; a plain
    # dict passed as `connection` would otherwise land in state in clear text.
    return pulumi.ResourceOptions.merge(
        opts or pulumi.ResourceOptions(), pulumi.ResourceOptions(additional_secret_outputs=keys)
    )


@dataclass
class MySQLDatabaseArgs:
    """Inputs of :class:`MySQLDatabase`.

    :param database: database name (≤ 64 letters, digits, ``_ $ -``); changing it replaces the
        resource (a *new, empty* database; the old one is kept unless ``drop_on_delete``).
    :param connection: admin connection (see module docs); secret.
    :param charset: default character set, in place via ``ALTER DATABASE``. Default ``utf8mb4``.
    :param collation: default collation, in place. Default ``utf8mb4_unicode_ci``.
    :param drop_on_delete: ``DROP DATABASE`` when the resource is deleted. Default ``False``:
        the database and its data are kept and the provider logs that it kept them.
    """

    database: pulumi.Input[str]
    connection: pulumi.Input[dict[str, Any]] | None = None
    charset: pulumi.Input[str] | None = None
    collation: pulumi.Input[str] | None = None
    drop_on_delete: pulumi.Input[bool] | None = None


class MySQLDatabase(Resource, module="mysql", name="Database"):
    """A database on the primary; created or adopted, never dropped unless asked to.

    Id: the database name (the pulumi-mysql import id).
    Outputs: ``connection`` (secret), ``database``, ``charset``, ``collation``, ``drop_on_delete``.
    """

    connection: pulumi.Output[dict[str, Any]]
    database: pulumi.Output[str]
    charset: pulumi.Output[str]
    collation: pulumi.Output[str]
    drop_on_delete: pulumi.Output[bool]

    def __init__(self, resource_name: str, args: MySQLDatabaseArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        props: dict[str, Any] = {
            "connection": args.connection,
            "database": args.database,
            "charset": args.charset,
            "collation": args.collation,
            "drop_on_delete": args.drop_on_delete,
        }
        unwrap_pickler()
        super().__init__(DatabaseProvider(), resource_name, props, _with_secret_outputs(opts, ["connection"]))


@dataclass
class MySQLUserArgs:
    """Inputs of :class:`MySQLUser`.

    :param user: account name (≤ 32 letters, digits, ``_ $ - .``); change = replace.
    :param password: the account's password; pass a secret. A change rotates it in place
        (``ALTER USER ... IDENTIFIED BY``): the old password stops working at once.
    :param host: account host pattern. Default ``%``; change = replace.
    :param connection: admin connection; secret.
    :param max_user_connections: simultaneous connections allowed, ``0`` = unlimited (default).
    :param require_tls: ``REQUIRE SSL`` for this account. Default ``False``.
    """

    user: pulumi.Input[str]
    password: pulumi.Input[str]
    host: pulumi.Input[str] | None = None
    connection: pulumi.Input[dict[str, Any]] | None = None
    max_user_connections: pulumi.Input[int] | None = None
    require_tls: pulumi.Input[bool] | None = None


class MySQLUser(Resource, module="mysql", name="User"):
    """An account; created or adopted (its password is then set to the managed one).

    Id: ``user@host``.  Outputs: ``connection`` (secret), ``user``, ``host``,
    ``password`` (secret), ``max_user_connections``, ``require_tls``.
    """

    connection: pulumi.Output[dict[str, Any]]
    user: pulumi.Output[str]
    host: pulumi.Output[str]
    password: pulumi.Output[str]
    max_user_connections: pulumi.Output[int]
    require_tls: pulumi.Output[bool]

    def __init__(self, resource_name: str, args: MySQLUserArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        props: dict[str, Any] = {
            "connection": args.connection,
            "user": args.user,
            "host": args.host,
            "password": pulumi.Output.secret(args.password),
            "max_user_connections": args.max_user_connections,
            "require_tls": args.require_tls,
        }
        unwrap_pickler()
        super().__init__(UserProvider(), resource_name, props, _with_secret_outputs(opts, ["connection", "password"]))


@dataclass
class MySQLGrantArgs:
    """Inputs of :class:`MySQLGrant`.

    :param user: account name; with ``host``, ``database`` and ``table`` it identifies the grant
        (any change = replace).
    :param database: database the privileges apply to (matched exactly: ``_`` is escaped).
    :param privileges: e.g. ``["SELECT", "INSERT"]`` or ``["ALL"]``; case, order, duplicates,
        backticks and ``ALL``/``ALL PRIVILEGES`` do not matter. ``"GRANT OPTION"`` in the list
        is the same as ``grant_option=True``. Changes are applied as GRANT/REVOKE deltas.
    :param host: account host. Default ``%``.
    :param table: a table name, or ``*`` (default) for every table of the database.
    :param grant_option: ``WITH GRANT OPTION``. Default ``False``.
    :param connection: admin connection; secret.
    """

    user: pulumi.Input[str]
    database: pulumi.Input[str]
    privileges: pulumi.Input[list[pulumi.Input[str]]]
    host: pulumi.Input[str] | None = None
    table: pulumi.Input[str] | None = None
    grant_option: pulumi.Input[bool] | None = None
    connection: pulumi.Input[dict[str, Any]] | None = None


class MySQLGrant(Resource, module="mysql", name="Grant"):
    """Privileges of one account on one database or table.

    Id: ``user@host@database@table``.  Outputs: ``connection`` (secret), ``user``,
    ``host``, ``database``, ``table``, ``privileges`` (canonical, sorted), ``grant_option``.
    Use one grant resource per (user, host, database, table): delete revokes exactly
    the privileges this resource holds.
    """

    connection: pulumi.Output[dict[str, Any]]
    user: pulumi.Output[str]
    host: pulumi.Output[str]
    database: pulumi.Output[str]
    table: pulumi.Output[str]
    privileges: pulumi.Output[list[str]]
    grant_option: pulumi.Output[bool]

    def __init__(self, resource_name: str, args: MySQLGrantArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        props: dict[str, Any] = {
            "connection": args.connection,
            "user": args.user,
            "host": args.host,
            "database": args.database,
            "table": args.table,
            "privileges": args.privileges,
            "grant_option": args.grant_option,
        }
        unwrap_pickler()
        super().__init__(GrantProvider(), resource_name, props, _with_secret_outputs(opts, ["connection"]))
