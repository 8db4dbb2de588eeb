"""MySQLUser provider against a real MariaDB: create, adopt, rotate, limits, TLS, drift, delete."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pymysql
import pytest
from sql_support import accounts, can_login, checked, user_row

from components.sql.providers import UserProvider
from tools.mariadb_server import MariaDBServer

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


def _props(conn: dict[str, Any], user: str, password: str, **extra: Any) -> dict[str, Any]:
    return checked(UserProvider(), {"connection": conn, "user": user, "password": password, **extra})


def test_create_user_with_defaults(
    mariadb_primary: MariaDBServer, admin_connection: dict[str, Any], sql_names: Callable[[str], str]
) -> None:
    user = sql_names("u")
    result = UserProvider().create(_props(admin_connection, user, "pw-one-1"))
    assert result.id == f"{user}@%"
    assert result.outs is not None
    assert (result.outs["host"], result.outs["max_user_connections"], result.outs["require_tls"]) == ("%", 0, False)
    assert can_login(mariadb_primary, user, "pw-one-1")
    assert user_row(mariadb_primary, user) == (0, "")


def test_create_adopts_existing_user_and_sets_managed_password(
    mariadb_primary: MariaDBServer,
    admin_connection: dict[str, Any],
    sql_names: Callable[[str], str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    user = sql_names("legacy")
    mariadb_primary.query("CREATE USER %s@'%%' IDENTIFIED BY 'old-secret' WITH MAX_USER_CONNECTIONS 10", (user,))
    UserProvider().create(_props(admin_connection, user, "managed-secret"))
    assert not can_login(mariadb_primary, user, "old-secret")
    assert can_login(mariadb_primary, user, "managed-secret")
    assert user_row(mariadb_primary, user) == (0, "")  # the peer's 10-connection default is gone
    err = capsys.readouterr().err
    assert "adopted" in err and "managed-secret" not in err and "old-secret" not in err


def test_password_rotation_in_place(
    mariadb_primary: MariaDBServer, admin_connection: dict[str, Any], sql_names: Callable[[str], str]
) -> None:
    provider = UserProvider()
    user = sql_names("rot")
    created = provider.create(_props(admin_connection, user, "first-pass"))
    assert created.outs is not None
    with mariadb_primary.connect(user=user, password="first-pass") as live_session:
        news = _props(admin_connection, user, "second-pass")
        diff = provider.diff(created.id, created.outs, news)
        assert diff.changes is True and diff.replaces == []
        updated = provider.update(created.id, created.outs, news)
        assert updated.outs is not None and updated.outs["password"] == "second-pass"
        assert not can_login(mariadb_primary, user, "first-pass")
        assert can_login(mariadb_primary, user, "second-pass")
        with live_session.cursor() as cur:  # sessions already open are not cut off
            cur.execute("SELECT 1")
            assert cur.fetchone() == (1,)


def test_limits_and_tls_change_in_place(
    mariadb_primary: MariaDBServer, admin_connection: dict[str, Any], sql_names: Callable[[str], str]
) -> None:
    provider = UserProvider()
    user = sql_names("lim")
    created = provider.create(_props(admin_connection, user, "pw-lim-1"))
    assert created.outs is not None
    news = _props(admin_connection, user, "pw-lim-1", max_user_connections=5, require_tls=True)
    assert provider.diff(created.id, created.outs, news).replaces == []
    provider.update(created.id, created.outs, news)
    assert user_row(mariadb_primary, user) == (5, "ANY")
    assert not can_login(mariadb_primary, user, "pw-lim-1")  # the test server has no TLS, so REQUIRE SSL bites
    read = provider.read(created.id, created.outs)
    assert read.outs is not None and (read.outs["max_user_connections"], read.outs["require_tls"]) == (5, True)


def test_name_or_host_change_replaces(admin_connection: dict[str, Any]) -> None:
    provider = UserProvider()
    olds = _props(admin_connection, "siteuser", "pw-x-123")
    assert provider.diff("siteuser@%", olds, _props(admin_connection, "other", "pw-x-123")).replaces == ["user"]
    assert provider.diff(
        "siteuser@%", olds, _props(admin_connection, "siteuser", "pw-x-123", host="10.0.0.%")
    ).replaces == ["host"]


def test_drift_dropped_user_is_gone_then_recreated(
    mariadb_primary: MariaDBServer, admin_connection: dict[str, Any], sql_names: Callable[[str], str]
) -> None:
    provider = UserProvider()
    user = sql_names("dropme")
    props = _props(admin_connection, user, "pw-drop-1")
    created = provider.create(props)
    assert created.outs is not None
    mariadb_primary.query("DROP USER %s@'%%'", (user,))
    assert provider.read(created.id, created.outs).id is None
    provider.create(props)  # what the next `up` does once refresh removed it from state
    assert can_login(mariadb_primary, user, "pw-drop-1")


def test_drift_password_and_limits_changed_by_hand(
    mariadb_primary: MariaDBServer, admin_connection: dict[str, Any], sql_names: Callable[[str], str]
) -> None:
    provider = UserProvider()
    user = sql_names("hand")
    props = _props(admin_connection, user, "pw-hand-1")
    created = provider.create(props)
    assert created.outs is not None
    assert provider.diff(created.id, provider.read(created.id, created.outs).outs or {}, props).changes is False

    mariadb_primary.query("ALTER USER %s@'%%' IDENTIFIED BY 'intruder' WITH MAX_USER_CONNECTIONS 3", (user,))
    read = provider.read(created.id, created.outs)
    assert read.outs is not None
    assert read.outs["max_user_connections"] == 3
    assert read.outs["password"] is None  # drift detected through the native password hash
    assert provider.diff(created.id, read.outs, props).changes is True
    provider.update(created.id, read.outs, props)
    assert can_login(mariadb_primary, user, "pw-hand-1") and not can_login(mariadb_primary, user, "intruder")
    assert user_row(mariadb_primary, user) == (0, "")


def test_delete_drops_user_and_is_idempotent(
    mariadb_primary: MariaDBServer, admin_connection: dict[str, Any], sql_names: Callable[[str], str]
) -> None:
    provider = UserProvider()
    user = sql_names("del")
    created = provider.create(_props(admin_connection, user, "pw-del-1"))
    assert created.outs is not None
    provider.delete(created.id, created.outs)
    assert (user, "%") not in accounts(mariadb_primary)
    provider.delete(created.id, created.outs)


def test_delete_keeps_an_account_another_resource_adopted(
    mariadb_primary: MariaDBServer,
    admin_connection: dict[str, Any],
    sql_names: Callable[[str], str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    # A renamed site: the new resource adopts the account (creates run first), then the old
    # resource is deleted. The site must keep its account and the new password.
    provider = UserProvider()
    user = sql_names("moved")
    old = provider.create(_props(admin_connection, user, "pw-old-site"))
    provider.create(_props(admin_connection, user, "pw-new-site"))
    assert old.outs is not None
    provider.delete(old.id, old.outs)
    assert (user, "%") in accounts(mariadb_primary)
    assert can_login(mariadb_primary, user, "pw-new-site")
    err = capsys.readouterr().err
    assert "KEPT" in err and "pw-new-site" not in err and "pw-old-site" not in err


def test_specific_host_account(
    mariadb_primary: MariaDBServer, admin_connection: dict[str, Any], sql_names: Callable[[str], str]
) -> None:
    provider = UserProvider()
    user = sql_names("h")
    created = provider.create(_props(admin_connection, user, "pw-host-1", host="127.0.0.1"))
    assert created.id == f"{user}@127.0.0.1"
    assert (user, "127.0.0.1") in accounts(mariadb_primary)
    assert can_login(mariadb_primary, user, "pw-host-1")
    with pytest.raises(pymysql.err.OperationalError), mariadb_primary.connect(user=user, password="wrong"):
        pass
