"""MySQLDatabase provider against a real MariaDB: create, adopt, alter in place, drift, delete."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from sql_support import checked, schemata

from components.sql.providers import DatabaseProvider
from tools.mariadb_server import MariaDBServer
from tools.ports import free_port

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


def _props(conn: dict[str, Any], name: str, **extra: Any) -> dict[str, Any]:
    return checked(DatabaseProvider(), {"connection": conn, "database": name, **extra})


def test_create_sets_charset_and_is_idempotent(
    mariadb_primary: MariaDBServer, admin_connection: dict[str, Any], sql_names: Callable[[str], str]
) -> None:
    provider = DatabaseProvider()
    name = sql_names("db")
    props = _props(admin_connection, name)
    result = provider.create(props)
    assert result.id == name
    assert result.outs is not None
    assert result.outs["charset"] == "utf8mb4" and result.outs["collation"] == "utf8mb4_unicode_ci"
    assert result.outs["drop_on_delete"] is False
    assert schemata(mariadb_primary)[name] == ("utf8mb4", "utf8mb4_unicode_ci")
    again = provider.create(props)  # a retried `up` after a crash must not fail
    assert again.outs == result.outs


def test_create_adopts_existing_database_keeping_data(
    mariadb_primary: MariaDBServer,
    admin_connection: dict[str, Any],
    sql_names: Callable[[str], str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    name = sql_names("legacy")
    mariadb_primary.query(f"CREATE DATABASE `{name}` CHARACTER SET latin1 COLLATE latin1_swedish_ci")
    mariadb_primary.query(f"CREATE TABLE `{name}`.posts (id INT PRIMARY KEY, title VARCHAR(20))")
    mariadb_primary.query(f"INSERT INTO `{name}`.posts VALUES (1, 'hello')")  # noqa: S608 - test fixture data, names from sql_names

    DatabaseProvider().create(_props(admin_connection, name))

    assert schemata(mariadb_primary)[name] == ("utf8mb4", "utf8mb4_unicode_ci")
    assert mariadb_primary.query(f"SELECT title FROM `{name}`.posts") == [("hello",)]  # noqa: S608 - test fixture data, names from sql_names
    assert "adopted" in capsys.readouterr().err


def test_charset_change_is_in_place(
    mariadb_primary: MariaDBServer, admin_connection: dict[str, Any], sql_names: Callable[[str], str]
) -> None:
    provider = DatabaseProvider()
    name = sql_names("cs")
    created = provider.create(_props(admin_connection, name))
    mariadb_primary.query(f"CREATE TABLE `{name}`.t (v VARCHAR(10))")
    mariadb_primary.query(f"INSERT INTO `{name}`.t VALUES ('kept')")  # noqa: S608 - test fixture data, names from sql_names
    assert created.outs is not None

    news = _props(admin_connection, name, charset="latin1", collation="latin1_swedish_ci")
    diff = provider.diff(name, created.outs, news)
    assert diff.changes is True and diff.replaces == []
    updated = provider.update(name, created.outs, news)

    assert updated.outs is not None and updated.outs["charset"] == "latin1"
    assert set(updated.outs) == set(created.outs)  # full outputs, never an empty UpdateResult
    assert schemata(mariadb_primary)[name] == ("latin1", "latin1_swedish_ci")
    assert mariadb_primary.query(f"SELECT v FROM `{name}`.t") == [("kept",)]  # noqa: S608 - test fixture data, names from sql_names


def test_connection_only_change_runs_no_sql(admin_connection: dict[str, Any], sql_names: Callable[[str], str]) -> None:
    provider = DatabaseProvider()
    name = sql_names("conn")
    created = provider.create(_props(admin_connection, name))
    assert created.outs is not None
    moved = {**admin_connection, "port": free_port()}  # nothing listens there: any SQL would fail
    news = _props(moved, name)
    diff = provider.diff(name, created.outs, news)
    assert diff.changes is True and diff.replaces == []
    updated = provider.update(name, created.outs, news)
    assert updated.outs is not None and updated.outs["connection"]["port"] == moved["port"]


def test_drift_is_read_and_repaired(
    mariadb_primary: MariaDBServer, admin_connection: dict[str, Any], sql_names: Callable[[str], str]
) -> None:
    provider = DatabaseProvider()
    name = sql_names("drift")
    props = _props(admin_connection, name)
    created = provider.create(props)
    assert created.outs is not None

    clean = provider.read(name, created.outs)
    assert clean.id == name and clean.outs is not None
    assert provider.diff(name, clean.outs, props).changes is False  # no perpetual diff

    mariadb_primary.query(f"ALTER DATABASE `{name}` CHARACTER SET latin1 COLLATE latin1_general_ci")
    drifted = provider.read(name, created.outs)
    assert drifted.outs is not None
    assert (drifted.outs["charset"], drifted.outs["collation"]) == ("latin1", "latin1_general_ci")
    assert provider.diff(name, drifted.outs, props).changes is True
    provider.update(name, drifted.outs, props)
    assert schemata(mariadb_primary)[name] == ("utf8mb4", "utf8mb4_unicode_ci")


def test_read_reports_gone(
    mariadb_primary: MariaDBServer, admin_connection: dict[str, Any], sql_names: Callable[[str], str]
) -> None:
    provider = DatabaseProvider()
    name = sql_names("gone")
    created = provider.create(_props(admin_connection, name))
    assert created.outs is not None
    mariadb_primary.query(f"DROP DATABASE `{name}`")
    assert provider.read(name, created.outs).id is None
    # `up` after the refresh creates it again
    provider.create(_props(admin_connection, name))
    assert name in schemata(mariadb_primary)


def test_delete_keeps_data_unless_drop_on_delete(
    mariadb_primary: MariaDBServer,
    admin_connection: dict[str, Any],
    sql_names: Callable[[str], str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    provider = DatabaseProvider()
    kept, dropped = sql_names("kept"), sql_names("dropped")
    kept_outs = provider.create(_props(admin_connection, kept)).outs
    dropped_outs = provider.create(_props(admin_connection, dropped, drop_on_delete=True)).outs
    assert kept_outs is not None and dropped_outs is not None

    provider.delete(kept, kept_outs)
    assert kept in schemata(mariadb_primary)
    assert "KEPT" in capsys.readouterr().err

    provider.delete(dropped, dropped_outs)
    assert dropped not in schemata(mariadb_primary)
    provider.delete(dropped, dropped_outs)  # deleting twice is harmless


def test_import_by_id_reads_without_stored_outputs(
    mariadb_primary: MariaDBServer, admin_connection: dict[str, Any], sql_names: Callable[[str], str]
) -> None:
    name = sql_names("imp")
    mariadb_primary.query(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin")
    result = DatabaseProvider().read(name, {"connection": admin_connection})
    assert result.id == name and result.outs is not None
    assert (result.outs["database"], result.outs["collation"]) == (name, "utf8mb4_bin")
