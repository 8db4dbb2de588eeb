"""Pulumi dynamic providers for MySQL/MariaDB databases, users and grants.

They live in an importable module, so ``dill`` pickles them *by reference*
(module + class name, a few dozen bytes): editing this code never changes the
``__provider`` input of existing resources, and ``diff`` ignores ``__provider``
anyway.  ``__getstate__`` drops everything, so no connection, lock or credential
is ever pickled into state; connections are opened lazily, one per thread, in
:mod:`.connection`.

Contract, shared by the three providers:

* ``check`` validates and normalises inputs (defaults applied, privileges in
  canonical form), never connects, and tolerates values that are unknown during
  preview.
* ``diff`` compares normalised old outputs with new inputs; it never connects
  and ignores ``__provider``.
* ``create`` is idempotent and **adopts** what exists; ``update`` applies only
  deltas and returns the full outputs; ``read`` reports the server's real state
  (``id=None`` when gone); ``delete`` never drops data unless told to.
* Errors name the resource and the server (mode, host, port) and are scrubbed
  of every password before they leave the process.
"""

from __future__ import annotations

import hashlib
import json
import logging
import sys
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import Any, ClassVar

import pymysql
from pulumi.dynamic import (
    CheckFailure,
    CheckResult,
    ConfigureRequest,
    CreateResult,
    DiffResult,
    ReadResult,
    ResourceProvider,
    UpdateResult,
)

from . import statements as sql
from .connection import (
    ConnectionConfigError,
    ConnectionSpec,
    SQLConnectionError,
    connection_errors,
    discard_connection,
    get_connection,
    is_unknown,
    parse_connection,
    plain,
    redact,
)
from .identifiers import (
    collation_charset_mismatch,
    escape_grant_database,
    format_account,
    grant_id,
    is_reserved_database,
    is_reserved_user,
    normalize_charset,
    normalize_collation,
    parse_grant_id,
    parse_user_id,
    user_id,
    validate_charset,
    validate_collation,
    validate_database_name,
    validate_host,
    validate_table,
    validate_user_name,
)
from .privileges import (
    ALL,
    GRANT_OPTION,
    KNOWN_PRIVILEGES,
    normalize_privileges,
    parse_set_definition,
    privilege_delta,
    privilege_from_db_column,
    privilege_from_table_priv,
    sorted_privileges,
    split_privileges,
    validate_privileges,
)

LOG = logging.getLogger("flightdeck.sql")

DEFAULT_CHARSET = "utf8mb4"
DEFAULT_COLLATION = "utf8mb4_unicode_ci"
DEFAULT_HOST = "%"
DEFAULT_TABLE = "*"
MAX_USER_CONNECTIONS_LIMIT = 4_294_967_295
CONFIG_CONNECTION_KEY = "sqlConnection"

# Reported by `read` (never granted) when a hand-made, unescaped wildcard grant row also covers the database.
WILDCARD_ROW_MARKER = "WILDCARD GRANT ROW"

# Server errors that mean "there was nothing to revoke"; deleting a grant must not fail on them.
_NO_SUCH_GRANT = {1141, 1147, 1403}
# "Operation CREATE USER failed": the account (or a role of that name) exists already.
_ACCOUNT_EXISTS = frozenset({1396})
# Connection lost mid-call: safe to retry once because every statement here is idempotent.
_CONNECTION_LOST = {2006, 2013, 2055}


class SQLProviderError(RuntimeError):
    """A provider operation failed; the message is already free of secrets."""


def reserved_account_reason(user: Any, admin_user: str | None) -> str | None:
    """Why ``user`` must never be managed (created, adopted, altered or dropped), else None."""
    if not isinstance(user, str) or is_unknown(user):
        return None
    if is_reserved_user(user):
        return f"{user!r} is an account of the server or of mariadb-operator (reserved)"
    if admin_user is not None and user.lower() == admin_user.lower():
        return f"{user!r} is the admin account this connection logs in with (reserved)"
    return None


def _log(message: str) -> None:
    # pulumi.log cannot be used from a dynamic provider process (pulumi#20409); stderr reaches the CLI log.
    LOG.info(message)
    print(f"flightdeck.sql: {message}", file=sys.stderr, flush=True)


def _bool(value: Any, default: bool) -> Any:
    return default if value is None else value


def native_password_hash(password: str) -> str:
    """``mysql_native_password`` hash (``*`` + upper hex SHA1(SHA1(pw))), to detect password drift."""
    # SHA-1 is the server's own scheme here; we only compare against it, never store it.
    inner = hashlib.sha1(password.encode("utf-8")).digest()  # noqa: S324
    return "*" + hashlib.sha1(inner).hexdigest().upper()  # noqa: S324


class _Session:
    """Statements for one provider call, on this thread's cached connection."""

    def __init__(self, spec: ConnectionSpec, what: str, secrets: list[str]) -> None:
        self.spec = spec
        self.what = what
        self.secrets = spec.secrets() + [s for s in secrets if s]

    def _error(self, exc: BaseException) -> SQLProviderError:
        if isinstance(exc, pymysql.err.MySQLError) and len(exc.args) >= 2:
            detail = f"server error {exc.args[0]}: {exc.args[1]}"
        else:
            detail = f"{type(exc).__name__}: {exc}"
        return SQLProviderError(redact(f"{self.what} failed ({self.spec.describe()}): {detail}", self.secrets))

    def _call(
        self,
        statement: sql.Statement,
        ignore: frozenset[int],
        as_dicts: bool,
        refused: tuple[frozenset[int], int] = (frozenset(), 0),
    ) -> tuple[int, list[Any]]:
        """(affected rows, result rows) of one statement on this thread's connection; a server
        error in ``ignore`` gives ``(0, [])``, one in ``refused[0]`` gives ``(refused[1], [])``.

        A connection lost mid-call is replaced and the statement sent once more: every statement
        the providers send is idempotent, so a second run after a lost reply changes nothing.
        """
        text, params = statement
        cursor_class = pymysql.cursors.DictCursor if as_dicts else pymysql.cursors.Cursor
        for attempt in (1, 2):
            conn = self._conn()
            try:
                with conn.cursor(cursor_class) as cur:
                    affected = cur.execute(text, params)
                    return int(affected or 0), list(cur.fetchall())
            except pymysql.err.MySQLError as exc:
                code = exc.args[0] if exc.args else None
                if code in ignore:
                    return 0, []
                if code in refused[0]:
                    return refused[1], []
                if code in _CONNECTION_LOST or isinstance(exc, pymysql.err.InterfaceError):
                    discard_connection(self.spec)
                    if attempt == 1:
                        continue
                raise self._error(exc) from None
        raise AssertionError("unreachable")

    def execute(self, statement: sql.Statement, ignore: frozenset[int] = frozenset()) -> list[tuple[Any, ...]]:
        return self._call(statement, ignore, as_dicts=False)[1]

    def execute_dict(self, statement: sql.Statement) -> list[dict[str, Any]]:
        return [dict(row) for row in self._call(statement, frozenset(), as_dicts=True)[1]]

    def executed(self, statement: sql.Statement, unless: frozenset[int]) -> bool:
        """Run a statement; False (nothing raised) when the server refused it with one of ``unless``."""
        marker = -1
        affected, _ = self._call(statement, frozenset(), as_dicts=False, refused=(unless, marker))
        return affected != marker

    def execute_affecting(self, statement: sql.Statement) -> int:
        """Run a statement; the number of rows the server says it affected."""
        return self._call(statement, frozenset(), as_dicts=False)[0]

    def _conn(self) -> pymysql.connections.Connection[Any]:
        try:
            conn = get_connection(self.spec)
        except SQLConnectionError as exc:
            raise SQLProviderError(redact(f"{self.what}: {exc}", self.secrets)) from None
        return conn


@contextmanager
def _scrubbed(what: str, secrets: list[str]) -> Iterator[None]:
    """Re-raise anything unexpected without secrets and without the chained original."""
    try:
        yield
    except SQLProviderError:
        raise
    except (ConnectionConfigError, SQLConnectionError) as exc:
        raise SQLProviderError(redact(f"{what}: {exc}", secrets)) from None
    except Exception as exc:
        raise SQLProviderError(redact(f"{what} failed: {type(exc).__name__}: {exc}", secrets)) from None


class _SQLProvider(ResourceProvider):
    """Shared plumbing: connection resolution, pickling, normalisation helpers."""

    # The pickled provider holds no data (see __getstate__), so it need not be a secret;
    # the connection travels as the resource's own (secret) input instead.
    serialize_as_secret_always = False
    kind: ClassVar[str] = "resource"
    # (key, default) for the inputs stored as outputs, besides `connection`.
    fields: ClassVar[tuple[tuple[str, Any], ...]] = ()
    replace_keys: ClassVar[tuple[str, ...]] = ()
    secret_keys: ClassVar[tuple[str, ...]] = ()

    def __init__(self) -> None:
        super().__init__()
        self._config_connection: Any = None

    def __getstate__(self) -> dict[str, Any]:
        return {}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self._config_connection = None

    def configure(self, req: ConfigureRequest) -> None:
        """Optional fallback connection: stack config ``<project>:sqlConnection`` (an object)."""
        raw = req.config.get(CONFIG_CONNECTION_KEY)
        if isinstance(raw, str):
            try:
                raw = json.loads(raw)
            except ValueError:
                raw = None  # check() reports it: the message must not echo a secret-bearing value
        self._config_connection = raw

    # -- helpers ---------------------------------------------------------------------------
    def _connection_value(self, props: Mapping[str, Any]) -> Any:
        value = props.get("connection")
        return value if value is not None else getattr(self, "_config_connection", None)

    def _spec(self, props: Mapping[str, Any]) -> ConnectionSpec:
        return parse_connection(self._connection_value(props))

    def _secrets(self, props: Mapping[str, Any]) -> list[str]:
        found: list[str] = []
        conn = plain(self._connection_value(props))
        if isinstance(conn, Mapping):
            for key in ("password", "kubeconfig"):
                if isinstance(conn.get(key), str):
                    found.append(conn[key])
        for key in self.secret_keys:
            value = plain(props.get(key))
            if isinstance(value, str):
                found.append(value)
        return found

    def _admin_user(self, props: Mapping[str, Any]) -> str | None:
        """The account the admin connection logs in with (never managed as a site account)."""
        conn = plain(self._connection_value(props))
        user = conn.get("user") if isinstance(conn, Mapping) else None
        return user if isinstance(user, str) and not is_unknown(user) else None

    def _check_not_reserved(self, failures: list[CheckFailure], news: Mapping[str, Any]) -> None:
        user = news.get("user")
        if any(f.property == "user" for f in failures):
            return  # already refused (validate_user_name names the reserved server accounts)
        reason = reserved_account_reason(user, self._admin_user(news))
        if reason:
            failures.append(CheckFailure("user", f"user: {reason}; flightdeck never manages, adopts or drops it"))

    def _refuse_reserved(self, what: str, props: Mapping[str, Any]) -> None:
        """Second line behind ``check``: no SQL ever touches a reserved account or schema."""
        reason = reserved_account_reason(props.get("user"), self._admin_user(props))
        database = props.get("database")
        if reason is None and isinstance(database, str) and is_reserved_database(database):
            reason = f"{database!r} is a system schema of the server (reserved)"
        if reason:
            raise SQLProviderError(f"{what}: refused: {reason}")

    def _outputs(self, props: Mapping[str, Any]) -> dict[str, Any]:
        outs: dict[str, Any] = {}
        if props.get("connection") is not None:
            outs["connection"] = plain(props["connection"])
        for key, default in self.fields:
            value = plain(props.get(key))
            outs[key] = default if value is None else value
        return outs

    def _check_common(self, news: Mapping[str, Any]) -> tuple[dict[str, Any], list[CheckFailure]]:
        failures: list[CheckFailure] = []
        known = {"connection", "__provider", *(k for k, _ in self.fields)}
        for key in sorted(set(news) - known):
            failures.append(CheckFailure(key, f"{key}: unknown property for {self.kind}"))
        conn = news.get("connection")
        if conn is None and getattr(self, "_config_connection", None) is None:
            failures.append(
                CheckFailure(
                    "connection",
                    "connection: required (an object with mode, host, port, user, password) "
                    f"unless the stack config sets {CONFIG_CONNECTION_KEY}",
                )
            )
        elif conn is not None:
            failures.extend(CheckFailure(prop, msg) for prop, msg in connection_errors(conn))
        inputs: dict[str, Any] = {}
        if conn is not None:
            inputs["connection"] = conn
        for key, default in self.fields:
            value = news.get(key)
            inputs[key] = default if value is None else value
        return inputs, failures

    @staticmethod
    def _validate(failures: list[CheckFailure], key: str, value: Any, validator: Any) -> None:
        if is_unknown(value):
            return
        error = validator(value, key)
        if error:
            failures.append(CheckFailure(key, error))

    def _canonical(self, key: str, value: Any) -> Any:
        """Comparable form of one field (overridden for privileges etc.)."""
        return plain(value)

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        """Compare old outputs with new checked inputs; never touches the database."""
        changed: list[str] = []
        replaces: list[str] = []
        defaults = dict(self.fields)
        for key in ("connection", *defaults):
            new = news.get(key, defaults.get(key))
            old = olds.get(key, defaults.get(key))
            if key != "connection" and new is None:
                new = defaults.get(key)
            if is_unknown(new) or (isinstance(new, (dict, list)) and _has_unknown(new)):
                differs = True
            else:
                differs = self._canonical(key, old) != self._canonical(key, new)
            if differs:
                changed.append(key)
                if key in self.replace_keys:
                    replaces.append(key)
        return DiffResult(changes=bool(changed), replaces=replaces, delete_before_replace=False)

    @staticmethod
    def _changed_fields(olds: Mapping[str, Any], news: Mapping[str, Any], keys: tuple[str, ...]) -> set[str]:
        return {k for k in keys if plain(olds.get(k)) != plain(news.get(k))}


def _has_unknown(value: Any) -> bool:
    if is_unknown(value):
        return True
    if isinstance(value, Mapping):
        return any(_has_unknown(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_unknown(v) for v in value)
    return False


# ===================================================================================================
class DatabaseProvider(_SQLProvider):
    """``CREATE DATABASE`` / in-place ``ALTER DATABASE``; drops data only when told to."""

    kind = "MySQLDatabase"
    fields = (
        ("database", None),
        ("charset", DEFAULT_CHARSET),
        ("collation", DEFAULT_COLLATION),
        ("drop_on_delete", False),
    )
    replace_keys = ("database",)

    def check(self, _olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        news = plain(news)
        inputs, failures = self._check_common(news)
        if inputs["database"] is None:
            failures.append(CheckFailure("database", "database: required"))
        else:
            self._validate(failures, "database", inputs["database"], validate_database_name)
        for key, validator, normalize in (
            ("charset", validate_charset, normalize_charset),
            ("collation", validate_collation, normalize_collation),
        ):
            value = inputs[key]
            if is_unknown(value):
                continue
            error = validator(value, key)
            if error:
                failures.append(CheckFailure(key, error))
            else:
                inputs[key] = normalize(value)
        charset, collation = inputs["charset"], inputs["collation"]
        if (
            isinstance(charset, str)
            and isinstance(collation, str)
            and not is_unknown(charset)
            and not is_unknown(collation)
        ):
            mismatch = collation_charset_mismatch(charset, collation)
            if mismatch:
                failures.append(CheckFailure("collation", mismatch))
        drop = inputs["drop_on_delete"]
        if not is_unknown(drop) and not isinstance(drop, bool):
            failures.append(CheckFailure("drop_on_delete", "drop_on_delete: must be a boolean"))
        return CheckResult(inputs, failures)

    def _canonical(self, key: str, value: Any) -> Any:
        value = plain(value)
        if key == "charset" and isinstance(value, str):
            return normalize_charset(value)
        if key == "collation" and isinstance(value, str):
            return normalize_collation(value)
        return value

    def _live(self, session: _Session, name: str) -> tuple[str, str] | None:
        rows = session.execute(sql.select_database(name))
        if not rows:
            return None
        return str(rows[0][0]).lower(), str(rows[0][1]).lower()

    def _ensure(self, session: _Session, outs: dict[str, Any], creating: bool) -> None:
        name, charset, collation = outs["database"], outs["charset"], outs["collation"]
        if creating and session.execute_affecting(sql.create_database(name, charset, collation)) == 1:
            # One round trip for a new database: CREATE ... IF NOT EXISTS reports one affected row
            # when it created the database and none (with a note) when it already existed.
            return
        live = self._live(session, name)
        if live is None:
            session.execute(sql.create_database(name, charset, collation))
            if not creating:
                _log(f"database {name!r} was missing on the server; created it again (empty)")
            return
        if creating:
            _log(f"database {name!r} already exists; adopted it (its tables and data are untouched)")
        if live != (normalize_charset(charset), normalize_collation(collation)):
            # Changes only the default for new tables: existing tables keep their own charset.
            session.execute(sql.alter_database(name, charset, collation))
            _log(f"database {name!r}: default charset/collation {live[0]}/{live[1]} -> {charset}/{collation}")

    def create(self, props: dict[str, Any]) -> CreateResult:
        outs = self._outputs(props)
        what = f"create MySQLDatabase {outs['database']!r}"
        self._refuse_reserved(what, outs)
        with _scrubbed(what, self._secrets(props)):
            session = _Session(self._spec(props), what, self._secrets(props))
            self._ensure(session, outs, creating=True)
        return CreateResult(outs["database"], outs)

    def update(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        outs = self._outputs(news)
        old_outs = self._outputs(olds)
        if self._changed_fields(old_outs, outs, ("charset", "collation")):
            what = f"update MySQLDatabase {outs['database']!r}"
            self._refuse_reserved(what, outs)
            with _scrubbed(what, self._secrets(news)):
                session = _Session(self._spec(news), what, self._secrets(news))
                self._ensure(session, outs, creating=False)
        return UpdateResult(outs)

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        outs = self._outputs(props)
        if not outs.get("database"):
            outs["database"] = id_
        what = f"read MySQLDatabase {outs['database']!r}"
        with _scrubbed(what, self._secrets(props)):
            live = self._live(_Session(self._spec(props), what, self._secrets(props)), outs["database"])
        if live is None:
            return ReadResult(None, {})
        outs["charset"], outs["collation"] = live
        return ReadResult(id_, outs)

    def delete(self, _id: str, props: dict[str, Any]) -> None:
        outs = self._outputs(props)
        name = outs["database"] or _id
        if is_reserved_database(name):
            _log(f"database {name!r} is a system schema of the server: removed from the stack, never dropped")
            return
        if outs.get("drop_on_delete") is not True:
            _log(
                f"database {name!r} removed from the stack but KEPT on the server with all its data "
                "(drop_on_delete is false); drop it by hand or set drop_on_delete=true and run up before destroying"
            )
            return
        what = f"delete MySQLDatabase {name!r}"
        with _scrubbed(what, self._secrets(props)):
            _Session(self._spec(props), what, self._secrets(props)).execute(sql.drop_database(name))
        _log(f"database {name!r} dropped (drop_on_delete was true)")


# ===================================================================================================
class UserProvider(_SQLProvider):
    """Accounts: ``CREATE USER`` or adopt, in-place ``ALTER USER`` for password, TLS and limits."""

    kind = "MySQLUser"
    fields = (
        ("user", None),
        ("host", DEFAULT_HOST),
        ("password", None),
        ("max_user_connections", 0),
        ("require_tls", False),
    )
    replace_keys = ("user", "host")
    secret_keys = ("password",)

    def check(self, _olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        news = plain(news)
        inputs, failures = self._check_common(news)
        if inputs["user"] is None:
            failures.append(CheckFailure("user", "user: required"))
        else:
            self._validate(failures, "user", inputs["user"], validate_user_name)
            self._check_not_reserved(failures, inputs)
        self._validate(failures, "host", inputs["host"], validate_host)
        password = inputs["password"]
        if password is None:
            failures.append(CheckFailure("password", "password: required (pass it as a secret)"))
        elif not is_unknown(password):
            if not isinstance(password, str) or password == "":
                failures.append(CheckFailure("password", "password: must be a non-empty string"))
            elif "\x00" in password:
                failures.append(CheckFailure("password", "password: must not contain NUL characters"))
        limit = inputs["max_user_connections"]
        if not is_unknown(limit):
            if isinstance(limit, float) and limit.is_integer():
                limit = inputs["max_user_connections"] = int(limit)
            if not isinstance(limit, int) or isinstance(limit, bool) or not 0 <= limit <= MAX_USER_CONNECTIONS_LIMIT:
                failures.append(
                    CheckFailure(
                        "max_user_connections",
                        "max_user_connections: must be an integer between 0 (unlimited) and "
                        f"{MAX_USER_CONNECTIONS_LIMIT}",
                    )
                )
        tls = inputs["require_tls"]
        if not is_unknown(tls) and not isinstance(tls, bool):
            failures.append(CheckFailure("require_tls", "require_tls: must be a boolean"))
        return CheckResult(inputs, failures)

    def _live(self, session: _Session, user: str, host: str) -> dict[str, Any] | None:
        rows = session.execute(sql.select_user(user, host))
        if not rows:
            return None
        max_conn, ssl_type, plugin, auth = rows[0]
        return {
            "max_user_connections": int(max_conn or 0),
            "require_tls": bool(ssl_type) and str(ssl_type).upper() not in ("", "NONE"),
            "plugin": str(plugin or ""),
            "auth": str(auth or ""),
        }

    @staticmethod
    def _password_matches(live: Mapping[str, Any], password: str) -> bool | None:
        """True/False when verifiable (mysql_native_password), None when the plugin salts its hashes."""
        if live["plugin"] in ("mysql_native_password", "") and live["auth"].startswith("*"):
            return bool(live["auth"] == native_password_hash(password))
        return None

    def _ensure(self, session: _Session, outs: dict[str, Any], creating: bool, password_changed: bool) -> None:
        user, host, password = outs["user"], outs["host"], outs["password"]
        account = format_account(user, host)
        if creating:
            # One round trip for a new account; only an existing one (error 1396) is looked up and adopted.
            create = sql.create_user(
                user, host, password, outs["require_tls"], outs["max_user_connections"], if_not_exists=False
            )
            if session.executed(create, unless=_ACCOUNT_EXISTS):
                return
        live = self._live(session, user, host)
        if live is None:
            session.execute(sql.create_user(user, host, password, outs["require_tls"], outs["max_user_connections"]))
            if not creating:
                _log(f"user {account} was missing on the server; created it again")
            return
        if creating:
            _log(f"user {account} already exists; adopted it and set its password to the managed one")
        if creating or password_changed or self._password_matches(live, password) is False:
            session.execute(sql.alter_user_password(user, host, password))
        if (live["max_user_connections"], live["require_tls"]) != (outs["max_user_connections"], outs["require_tls"]):
            session.execute(sql.alter_user_options(user, host, outs["require_tls"], outs["max_user_connections"]))

    def create(self, props: dict[str, Any]) -> CreateResult:
        outs = self._outputs(props)
        what = f"create MySQLUser {format_account(outs['user'], outs['host'])}"
        self._refuse_reserved(what, outs)
        with _scrubbed(what, self._secrets(props)):
            session = _Session(self._spec(props), what, self._secrets(props))
            self._ensure(session, outs, creating=True, password_changed=True)
        return CreateResult(user_id(outs["user"], outs["host"]), outs)

    def update(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        outs = self._outputs(news)
        old_outs = self._outputs(olds)
        changed = self._changed_fields(old_outs, outs, ("password", "max_user_connections", "require_tls"))
        if changed:
            what = f"update MySQLUser {format_account(outs['user'], outs['host'])}"
            self._refuse_reserved(what, outs)
            secrets = self._secrets(news) + self._secrets(olds)
            with _scrubbed(what, secrets):
                session = _Session(self._spec(news), what, secrets)
                self._ensure(session, outs, creating=False, password_changed="password" in changed)
            if "password" in changed:
                _log(f"user {format_account(outs['user'], outs['host'])}: password rotated")
        return UpdateResult(outs)

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        outs = self._outputs(props)
        if not outs.get("user"):
            outs["user"], outs["host"] = parse_user_id(id_)
        what = f"read MySQLUser {format_account(outs['user'], outs['host'])}"
        with _scrubbed(what, self._secrets(props)):
            session = _Session(self._spec(props), what, self._secrets(props))
            live = self._live(session, outs["user"], outs["host"])
        if live is None:
            return ReadResult(None, {})
        outs["max_user_connections"] = live["max_user_connections"]
        outs["require_tls"] = live["require_tls"]
        password = outs.get("password")
        if isinstance(password, str) and self._password_matches(live, password) is False:
            # Someone changed the password outside Pulumi: forget ours so the next `up` sets it again.
            outs["password"] = None
        return ReadResult(id_, outs)

    def delete(self, _id: str, props: dict[str, Any]) -> None:
        outs = self._outputs(props)
        if not outs.get("user"):
            outs["user"], outs["host"] = parse_user_id(_id)
        account = format_account(outs["user"], outs["host"])
        reason = reserved_account_reason(outs["user"], self._admin_user(outs))
        if reason:
            # Only an older flightdeck could have recorded one; the account outlives the resource.
            _log(f"user {account} KEPT: {reason}; removed from the stack, never dropped")
            return
        what = f"delete MySQLUser {account}"
        with _scrubbed(what, self._secrets(props)):
            session = _Session(self._spec(props), what, self._secrets(props))
            live = self._live(session, outs["user"], outs["host"])
            # Deletes run after creates: when a site is renamed, the new resource has already
            # adopted this account and set its own password. Dropping it would lock that site out.
            if live and outs.get("password") and self._password_matches(live, outs["password"]) is False:
                _log(f"user {account} KEPT: its password is no longer the one this resource set (adopted elsewhere)")
                return
            session.execute(sql.drop_user(outs["user"], outs["host"]))


@dataclass(frozen=True)
class _GrantState:
    """An account's privileges on one grant target, as the server has them now."""

    account_exists: bool
    expansion: frozenset[str]  # what ALL means on this server for this kind of target
    held: frozenset[str] = frozenset()  # via the exact row and a legacy row; {ALL} when complete
    held_option: bool = False
    exact: frozenset[str] = frozenset()  # via the exact (escaped) row only
    exact_option: bool = False
    legacy_exists: bool = False  # an unescaped-pattern row (a hand-written GRANT ... ON wp_blog.*)
    legacy_held: frozenset[str] = frozenset()  # as the legacy row lists them (never collapsed)
    legacy_option: bool = False


# (connection cache key, database-level?) -> what ALL expands to on that server.
_EXPANSIONS: dict[tuple[str, bool], frozenset[str]] = {}
_EXPANSION_LOCK = threading.Lock()


# ===================================================================================================
class GrantProvider(_SQLProvider):
    """Privileges of one account on one database (or table); only deltas are applied."""

    kind = "MySQLGrant"
    fields = (
        ("user", None),
        ("host", DEFAULT_HOST),
        ("database", None),
        ("table", DEFAULT_TABLE),
        ("privileges", None),
        ("grant_option", False),
    )
    replace_keys = ("user", "host", "database", "table")

    def check(self, _olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        news = plain(news)
        inputs, failures = self._check_common(news)
        for key, validator in (("user", validate_user_name), ("database", validate_database_name)):
            if inputs[key] is None:
                failures.append(CheckFailure(key, f"{key}: required"))
            else:
                self._validate(failures, key, inputs[key], validator)
        if inputs["user"] is not None:
            self._check_not_reserved(failures, inputs)
        self._validate(failures, "host", inputs["host"], validate_host)
        self._validate(failures, "table", inputs["table"], validate_table)
        grant_option = inputs["grant_option"]
        if not is_unknown(grant_option) and not isinstance(grant_option, bool):
            failures.append(CheckFailure("grant_option", "grant_option: must be a boolean"))
        privileges = inputs["privileges"]
        if privileges is None:
            failures.append(CheckFailure("privileges", "privileges: required, e.g. ['SELECT', 'INSERT']"))
        elif not _has_unknown(privileges):
            table = inputs["table"] if isinstance(inputs["table"], str) else "*"
            errors = validate_privileges(privileges, table)
            failures.extend(CheckFailure("privileges", e) for e in errors)
            if not errors:
                canonical, listed_grant_option = split_privileges(privileges)
                inputs["privileges"] = sorted_privileges(canonical)
                if listed_grant_option and isinstance(grant_option, bool):
                    inputs["grant_option"] = True
        return CheckResult(inputs, failures)

    def _canonical(self, key: str, value: Any) -> Any:
        value = plain(value)
        if key == "privileges" and isinstance(value, list):
            return normalize_privileges(v for v in value if isinstance(v, str))
        return value

    # -- live state -------------------------------------------------------------------------
    @staticmethod
    def _row_privileges(record: Mapping[str, Any]) -> tuple[set[str], bool]:
        """(privileges, grant option) of one mysql.db row."""
        held: set[str] = set()
        grant_option = False
        for column, value in record.items():
            name = privilege_from_db_column(column)
            if name is None or str(value).upper() != "Y":
                continue
            if name == GRANT_OPTION:
                grant_option = True
            else:
                held.add(name)
        return held, grant_option

    @staticmethod
    def _expansion(session: _Session, table: str) -> frozenset[str]:
        """What ALL means on this server for a database (``*``) or a table grant.

        The privilege columns of ``mysql.db`` / the ``Table_priv`` set are the server's schema:
        read once per server and provider process, not once per resource.
        """
        key = (session.spec.cache_key(), table == "*")
        with _EXPANSION_LOCK:
            known = _EXPANSIONS.get(key)
        if known is not None:
            return known
        expansion: set[str] = set()
        if table == "*":
            for row in session.execute(sql.show_db_priv_columns()):
                name = privilege_from_db_column(str(row[0]))
                if name and name != GRANT_OPTION:
                    expansion.add(name)
        else:
            for row in session.execute(sql.show_table_priv_column()):
                for item in parse_set_definition(str(row[1])):
                    name = privilege_from_table_priv(item)
                    if name != GRANT_OPTION:
                        expansion.add(name)
        result = frozenset(expansion)
        if result:
            with _EXPANSION_LOCK:
                _EXPANSIONS[key] = result
        return result

    def _state(self, session: _Session, outs: Mapping[str, Any]) -> _GrantState:
        """The account and what it holds on this grant's target, in one statement for a database
        grant (the account row joined with its exact and its unescaped-pattern mysql.db rows).

        ``held`` includes a legacy unescaped-pattern row: it grants access to this database too.
        """
        user, host, database, table = outs["user"], outs["host"], outs["database"], outs["table"]
        expansion = self._expansion(session, table)
        if table == "*":
            exact_pattern = escape_grant_database(database)
            records = session.execute_dict(sql.select_account_database_grants(database, user, host))
            if not records:
                return _GrantState(account_exists=False, expansion=expansion)
            exact: set[str] = set()
            exact_option = legacy_option = legacy_exists = False
            legacy: set[str] = set()
            for record in records:
                row_db = record.get("Db")
                if row_db is None:
                    continue  # the account has neither row
                privileges, option = self._row_privileges(record)
                if row_db == exact_pattern:
                    exact, exact_option = privileges, option
                elif exact_pattern != database and row_db == database:
                    legacy, legacy_option, legacy_exists = privileges, option, True
            return _GrantState(
                account_exists=True,
                expansion=expansion,
                held=self._as_all(exact | legacy, expansion),
                held_option=exact_option or legacy_option,
                exact=self._as_all(exact, expansion),
                exact_option=exact_option,
                legacy_exists=legacy_exists,
                legacy_held=frozenset(legacy),
                legacy_option=legacy_option,
            )
        if not self._user_exists(session, user, host):
            return _GrantState(account_exists=False, expansion=expansion)
        table_held: set[str] = set()
        table_option = False
        for row in session.execute(sql.select_table_grant(database, table, user, host)):
            for item in str(row[0] or "").split(","):
                if not item:
                    continue
                name = privilege_from_table_priv(item)
                if name == GRANT_OPTION:
                    table_option = True
                else:
                    table_held.add(name)
        as_all = self._as_all(table_held, expansion)
        return _GrantState(
            True, expansion, held=as_all, held_option=table_option, exact=as_all, exact_option=table_option
        )

    @staticmethod
    def _as_all(held: set[str], expansion: frozenset[str]) -> frozenset[str]:
        return frozenset({ALL} if expansion and held >= expansion else held)

    def _user_exists(self, session: _Session, user: str, host: str) -> bool:
        return bool(session.execute(sql.select_user(user, host)))

    def _converge(self, session: _Session, outs: dict[str, Any], creating: bool) -> None:
        user, host, database, table = outs["user"], outs["host"], outs["database"], outs["table"]
        label = self._label(outs)
        state = self._state(session, outs)
        if not state.account_exists:
            raise SQLProviderError(
                f"{session.what}: user {format_account(user, host)} does not exist; "
                "create the MySQLUser first (pass its outputs, or depends_on)"
            )
        desired = normalize_privileges(outs["privileges"])
        held, held_option, expansion = state.held, state.held_option, state.expansion
        if creating and (held or held_option):
            _log(f"grant {label}: adopting existing privileges {sorted_privileges(held)}")
        legacy_exists, legacy, legacy_option = state.legacy_exists, state.legacy_held, state.legacy_option
        if legacy_exists:
            # The privileges held via the wildcard row are not held via the exact row we manage.
            held, held_option = state.exact, state.exact_option
        to_grant, to_revoke = privilege_delta(held, desired, expansion)
        granted: list[sql.Statement] = []
        try:
            # Grants first, revokes second: a privilege that stays is never absent, not even briefly.
            if to_grant:
                stmt = sql.grant(to_grant, database, table, user, host, grant_option=bool(outs["grant_option"]))
                session.execute(stmt)
                granted.append(stmt)
            elif outs["grant_option"] and not held_option:
                session.execute(sql.grant(desired, database, table, user, host, grant_option=True))
            if to_revoke:
                session.execute(sql.revoke(to_revoke, database, table, user, host))
                _log(f"grant {label}: revoked {sorted_privileges(to_revoke)}")
            if held_option and not outs["grant_option"]:
                session.execute(sql.revoke_grant_option(database, table, user, host))
            if legacy_exists:
                # Only after the exact grant is in place, so access never lapses.
                if legacy:
                    session.execute(
                        sql.revoke(sorted(legacy), database, table, user, host, exact=False),
                        ignore=frozenset(_NO_SUCH_GRANT),
                    )
                if legacy_option:
                    session.execute(
                        sql.revoke_grant_option(database, table, user, host, exact=False),
                        ignore=frozenset(_NO_SUCH_GRANT),
                    )
                _log(
                    f"grant {label}: replaced the wildcard grant row '{database}' (matches other names) "
                    "with an exact one"
                )
        except SQLProviderError:
            if creating and not held and not held_option and granted:
                # Leave no half-made grant behind a failed create: Pulumi will not record it.
                with suppress(SQLProviderError):
                    session.execute(sql.revoke(to_grant, database, table, user, host), ignore=frozenset(_NO_SUCH_GRANT))
            raise

    @staticmethod
    def _label(outs: Mapping[str, Any]) -> str:
        return grant_id(str(outs["user"]), str(outs["host"]), str(outs["database"]), str(outs["table"]))

    def create(self, props: dict[str, Any]) -> CreateResult:
        outs = self._outputs(props)
        outs["privileges"] = sorted_privileges(normalize_privileges(outs["privileges"] or []))
        what = f"create MySQLGrant {self._label(outs)}"
        self._refuse_reserved(what, outs)
        with _scrubbed(what, self._secrets(props)):
            self._converge(_Session(self._spec(props), what, self._secrets(props)), outs, creating=True)
        return CreateResult(self._label(outs), outs)

    def update(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        outs = self._outputs(news)
        outs["privileges"] = sorted_privileges(normalize_privileges(outs["privileges"] or []))
        old_outs = self._outputs(olds)
        if normalize_privileges(old_outs.get("privileges") or []) != normalize_privileges(outs["privileges"]) or bool(
            old_outs.get("grant_option")
        ) != bool(outs["grant_option"]):
            what = f"update MySQLGrant {self._label(outs)}"
            self._refuse_reserved(what, outs)
            with _scrubbed(what, self._secrets(news)):
                self._converge(_Session(self._spec(news), what, self._secrets(news)), outs, creating=False)
        return UpdateResult(outs)

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        outs = self._outputs(props)
        if not outs.get("user"):
            outs["user"], outs["host"], outs["database"], outs["table"] = parse_grant_id(id_)
        what = f"read MySQLGrant {self._label(outs)}"
        with _scrubbed(what, self._secrets(props)):
            state = self._state(_Session(self._spec(props), what, self._secrets(props)), outs)
        if not state.account_exists:
            return ReadResult(None, {})
        held, held_option, expansion = state.held, state.held_option, state.expansion
        legacy_exists = state.legacy_exists
        if not held and not held_option:
            return ReadResult(None, {})
        stored = normalize_privileges(outs.get("privileges") or [])
        # Every privilege granted one by one shows up as ALL; keep the user's own spelling then.
        reported = set(stored if held == {ALL} and stored == expansion else held)
        if legacy_exists:
            # A hand-made wildcard row also opens other databases: make it a diff so `up` retires it.
            reported.add(WILDCARD_ROW_MARKER)
        outs["privileges"] = sorted_privileges(reported)
        outs["grant_option"] = held_option
        return ReadResult(id_, outs)

    def delete(self, _id: str, props: dict[str, Any]) -> None:
        outs = self._outputs(props)
        if not outs.get("user"):
            outs["user"], outs["host"], outs["database"], outs["table"] = parse_grant_id(_id)
        what = f"delete MySQLGrant {self._label(outs)}"
        try:
            self._refuse_reserved(what, outs)
        except SQLProviderError as refused:
            _log(f"{refused}; the privileges stay as they are")
            return
        # Only names this module could have granted: never a refresh marker or an unknown server word.
        privileges = normalize_privileges(outs.get("privileges") or []) & KNOWN_PRIVILEGES
        with _scrubbed(what, self._secrets(props)):
            session = _Session(self._spec(props), what, self._secrets(props))
            if not self._user_exists(session, outs["user"], outs["host"]):
                return  # the account (and with it every grant) is already gone
            args = (outs["database"], outs["table"], outs["user"], outs["host"])
            if privileges:
                session.execute(sql.revoke(privileges, *args), ignore=frozenset(_NO_SUCH_GRANT))
            if outs.get("grant_option"):
                session.execute(sql.revoke_grant_option(*args), ignore=frozenset(_NO_SUCH_GRANT))
