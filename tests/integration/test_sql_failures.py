"""Failure paths: wrong admin password, server down, secrets in errors, preview without a database."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from sql_support import accounts, checked, schemata

from components.sql import connection as sqlconn
from components.sql import statements as sql
from components.sql.connection import parse_connection
from components.sql.providers import DatabaseProvider, GrantProvider, SQLProviderError, UserProvider, _Session
from tools.mariadb_server import MariaDBServer
from tools.ports import free_port

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

WRONG = "Wr0ng-admin-Pa55word"
SITE_PW = "s1te-Secret-Pw'\"`;"


def _assert_clean(message: str, *secrets: str) -> None:
    for secret in secrets:
        assert secret not in message
        assert repr(secret)[1:-1] not in message


def test_wrong_admin_password_is_clear_and_leaves_nothing(
    mariadb_primary: MariaDBServer, admin_connection: dict[str, Any], sql_names: Callable[[str], str]
) -> None:
    bad = {**admin_connection, "password": WRONG}
    db, user = sql_names("db"), sql_names("u")
    with pytest.raises(SQLProviderError) as db_err:
        DatabaseProvider().create(checked(DatabaseProvider(), {"connection": bad, "database": db}))
    with pytest.raises(SQLProviderError) as user_err:
        UserProvider().create(checked(UserProvider(), {"connection": bad, "user": user, "password": SITE_PW}))
    for err in (db_err, user_err):
        message = str(err.value)
        assert f"mode=direct, host=127.0.0.1, port={mariadb_primary.port}" in message
        assert "access denied" in message
        _assert_clean(message, WRONG, SITE_PW, mariadb_primary.admin_password)
        assert err.value.__cause__ is None and err.value.__suppress_context__
    assert db not in schemata(mariadb_primary)
    assert (user, "%") not in accounts(mariadb_primary)


def test_server_down_is_clear_and_leaves_nothing(
    mariadb_primary: MariaDBServer, admin_connection: dict[str, Any], sql_names: Callable[[str], str]
) -> None:
    port = free_port()
    down = {**admin_connection, "port": port, "connectTimeout": 2}
    grant = checked(GrantProvider(), {"connection": down, "user": "app", "database": "site", "privileges": ["ALL"]})
    for call in (
        lambda: DatabaseProvider().create(
            checked(DatabaseProvider(), {"connection": down, "database": sql_names("d")})
        ),
        lambda: UserProvider().create(
            checked(UserProvider(), {"connection": down, "user": sql_names("u"), "password": SITE_PW})
        ),
        lambda: GrantProvider().create(grant),
        lambda: GrantProvider().read("app@%@site@*", grant),
        lambda: GrantProvider().delete("app@%@site@*", grant),
    ):
        with pytest.raises(SQLProviderError) as err:
            call()
        message = str(err.value)
        assert f"mode=direct, host=127.0.0.1, port={port}" in message and "unreachable" in message
        _assert_clean(message, SITE_PW, mariadb_primary.admin_password)


def test_server_errors_are_scrubbed_of_passwords(admin_connection: dict[str, Any]) -> None:
    spec = parse_connection(admin_connection)
    session = _Session(spec, "probe", [SITE_PW])
    # A syntax error makes the server quote the statement text back, password included.
    with pytest.raises(SQLProviderError) as err:
        session.execute(("SELEC %s, %s", (SITE_PW, spec.password)))
    message = str(err.value)
    assert "syntax" in message and "***" in message
    _assert_clean(message, SITE_PW, spec.password)


def test_user_errors_from_the_server_are_scrubbed(
    mariadb_primary: MariaDBServer, admin_connection: dict[str, Any], sql_names: Callable[[str], str]
) -> None:
    user = sql_names("cap")
    # Make ALTER USER fail: the admin loses the right to create/alter users for this session's call.
    props = checked(UserProvider(), {"connection": admin_connection, "user": user, "password": SITE_PW})
    UserProvider().create(props)
    limited_user, limited_pw = sql_names("lim"), "limited-admin-pw"
    mariadb_primary.query("CREATE USER %s@'127.0.0.1' IDENTIFIED BY %s", (limited_user, limited_pw))
    mariadb_primary.query("GRANT SELECT ON mysql.* TO %s@'127.0.0.1'", (limited_user,))
    limited = {**admin_connection, "user": limited_user, "password": limited_pw}
    news = checked(UserProvider(), {"connection": limited, "user": user, "password": SITE_PW + "-new"})
    with pytest.raises(SQLProviderError) as err:
        UserProvider().update(f"{user}@%", props, news)
    message = str(err.value)
    assert "server error" in message and "update MySQLUser" in message
    _assert_clean(message, SITE_PW, SITE_PW + "-new", limited_pw)


def test_preview_needs_no_database(admin_connection: dict[str, Any]) -> None:
    """check and diff never connect: point every resource at a dead port and they still work."""
    dead = {**admin_connection, "port": free_port()}
    for provider, news in (
        (DatabaseProvider(), {"connection": dead, "database": "site"}),
        (UserProvider(), {"connection": dead, "user": "app", "password": SITE_PW}),
        (GrantProvider(), {"connection": dead, "user": "app", "database": "site", "privileges": ["ALL"]}),
    ):
        inputs = checked(provider, news)
        assert provider.diff("id", inputs, inputs).changes is False


def test_port_forward_errors_name_the_service_and_hide_the_kubeconfig(sql_names: Callable[[str], str]) -> None:
    token = "kube-token-abcdef-0123456789"
    kubeconfig = f"""apiVersion: v1
kind: Config
clusters: [{{name: c, cluster: {{server: "https://127.0.0.1:{free_port()}", insecure-skip-tls-verify: true}}}}]
users: [{{name: u, user: {{token: {token}}}}}]
contexts: [{{name: ctx, context: {{cluster: c, user: u, namespace: sites}}}}]
current-context: ctx
"""
    conn = {
        "mode": "portForward",
        "host": "mariadb-primary",
        "port": 3306,
        "user": "root",
        "password": SITE_PW,
        "kubeconfig": kubeconfig,
        "connectTimeout": 3,
    }
    with pytest.raises(SQLProviderError) as err:
        DatabaseProvider().create(checked(DatabaseProvider(), {"connection": conn, "database": sql_names("pf")}))
    message = str(err.value)
    assert "mode=portForward, service=mariadb-primary" in message and "port=3306" in message
    assert "cannot resolve service sites/mariadb-primary" in message
    _assert_clean(message, token, SITE_PW)
    sqlconn.close_all()


def test_missing_connection_fails_check_with_a_named_field() -> None:
    result = DatabaseProvider().check({}, {"database": "site"})
    assert [f.property for f in result.failures] == ["connection"]
    bad = DatabaseProvider().check(
        {}, {"database": "site", "connection": {"mode": "tunnel", "host": "", "port": 0, "user": "root", "password": 5}}
    )
    reasons = sorted(f.reason for f in bad.failures)
    assert reasons == [
        "connection.host: must be a non-empty string",
        "connection.mode: must be one of direct, portForward",
        "connection.password: must be a string",
        "connection.port: must be an integer between 1 and 65535",
    ]


def test_statement_builders_refuse_nul(admin_connection: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        sql.create_database("a\x00b", "utf8mb4", "utf8mb4_bin")
