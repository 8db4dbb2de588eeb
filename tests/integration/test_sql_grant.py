"""MySQLGrant provider against a real MariaDB: deltas without access gaps, drift, exact revokes."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pymysql
import pytest
from sql_support import checked, db_privileges

from components.sql.providers import DatabaseProvider, GrantProvider, SQLProviderError, UserProvider
from tools.mariadb_server import MariaDBServer

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]


class Site:
    """A database with a table and a site user, made through the providers."""

    def __init__(self, server: MariaDBServer, conn: dict[str, Any], names: Callable[[str], str]) -> None:
        self.server, self.conn = server, conn
        self.db, self.user, self.password = names("db"), names("app"), "site-pw-1"
        DatabaseProvider().create(checked(DatabaseProvider(), {"connection": conn, "database": self.db}))
        UserProvider().create(
            checked(UserProvider(), {"connection": conn, "user": self.user, "password": self.password})
        )
        server.query(f"CREATE TABLE `{self.db}`.posts (id INT AUTO_INCREMENT PRIMARY KEY, t VARCHAR(20))")
        server.query(f"INSERT INTO `{self.db}`.posts (t) VALUES ('a')")  # noqa: S608 - test fixture data, names from sql_names

    def grant_props(self, privileges: list[str], **extra: Any) -> dict[str, Any]:
        return checked(
            GrantProvider(),
            {"connection": self.conn, "user": self.user, "database": self.db, "privileges": privileges, **extra},
        )

    def privileges(self) -> set[str]:
        return db_privileges(self.server, self.user, self.db)


@pytest.fixture
def site(mariadb_primary: MariaDBServer, admin_connection: dict[str, Any], sql_names: Callable[[str], str]) -> Site:
    return Site(mariadb_primary, admin_connection, sql_names)


@pytest.fixture
def general_log(mariadb_primary: MariaDBServer) -> Iterator[Callable[[], list[str]]]:
    """Statements the server executed while the test ran (proof of what SQL was sent)."""
    mariadb_primary.query("TRUNCATE mysql.general_log")
    mariadb_primary.query("SET GLOBAL log_output='TABLE', general_log=1")

    def statements() -> list[str]:
        rows = mariadb_primary.query(
            "SELECT CONVERT(argument USING utf8mb4) FROM mysql.general_log WHERE command_type='Query'"
        )
        return [str(r[0]) for r in rows]

    try:
        yield statements
    finally:
        mariadb_primary.query("SET GLOBAL general_log=0")


def test_create_grants_exact_privileges(site: Site) -> None:
    result = GrantProvider().create(site.grant_props(["select", "`insert`", "SELECT"]))
    assert result.id == f"{site.user}@%@{site.db}@*"
    assert result.outs is not None and result.outs["privileges"] == ["INSERT", "SELECT"]
    assert site.privileges() == {"SELECT", "INSERT"}
    with site.server.connect(user=site.user, password=site.password, database=site.db) as conn, conn.cursor() as cur:
        cur.execute("INSERT INTO posts (t) VALUES ('b')")
        with pytest.raises(pymysql.err.OperationalError):
            cur.execute("DELETE FROM posts")


def test_spellings_of_the_same_set_produce_no_diff(site: Site) -> None:
    provider = GrantProvider()
    created = provider.create(site.grant_props(["ALL"]))
    assert created.outs is not None
    for spelling in (["all privileges"], ["ALL", "select"], [" All  Privileges "], ["`ALL`"]):
        assert provider.diff(created.id, created.outs, site.grant_props(spelling)).changes is False
    read = provider.read(created.id, created.outs)
    assert read.outs is not None and provider.diff(created.id, read.outs, site.grant_props(["ALL"])).changes is False


def test_delta_update_never_interrupts_an_open_session(site: Site, general_log: Callable[[], list[str]]) -> None:
    provider = GrantProvider()
    outs = provider.create(site.grant_props(["SELECT", "INSERT"])).outs
    assert outs is not None
    errors: list[str] = []
    queries = 0
    stop = threading.Event()

    def hammer() -> None:
        nonlocal queries
        with site.server.connect(user=site.user, password=site.password, database=site.db) as conn:
            while not stop.is_set():
                try:
                    with conn.cursor() as cur:
                        cur.execute("SELECT COUNT(*) FROM posts")
                        cur.execute("INSERT INTO posts (t) VALUES ('x')")
                    queries += 1
                except pymysql.err.MySQLError as exc:
                    errors.append(str(exc))

    worker = threading.Thread(target=hammer)
    worker.start()
    try:
        time.sleep(0.2)
        steps = [
            ["SELECT", "INSERT", "UPDATE"],  # add one
            ["ALL"],  # widen to ALL
            ["SELECT", "INSERT", "DELETE"],  # step down from ALL
            ["SELECT", "INSERT"],  # remove one
        ]
        for privileges in steps:
            news = site.grant_props(privileges)
            assert provider.diff("id", outs, news).replaces == []
            updated = provider.update("id", outs, news).outs
            assert updated is not None
            outs = updated
            time.sleep(0.1)
            assert site.privileges() == (set(privileges) if privileges != ["ALL"] else site.privileges())
    finally:
        stop.set()
        worker.join(timeout=30)
    assert errors == [] and queries > 0
    revokes = [s for s in general_log() if s.lstrip().upper().startswith("REVOKE")]
    assert revokes, "stepping down must revoke"
    for statement in revokes:  # what stays is never revoked, not even momentarily
        head = statement.split(" ON ")[0]
        assert "SELECT" not in head and "INSERT" not in head and "ALL" not in head, statement
    assert site.privileges() == {"SELECT", "INSERT"}


def test_grant_option_toggles_separately(site: Site) -> None:
    provider = GrantProvider()
    outs = provider.create(site.grant_props(["SELECT"], grant_option=True)).outs
    assert outs is not None and "GRANT OPTION" in site.privileges()
    news = site.grant_props(["SELECT"], grant_option=False)
    outs = provider.update("id", outs, news).outs
    assert outs is not None and site.privileges() == {"SELECT"}
    listed = site.grant_props(["SELECT", "grant option"])
    assert listed["grant_option"] is True and listed["privileges"] == ["SELECT"]
    provider.update("id", outs, listed)
    assert site.privileges() == {"SELECT", "GRANT OPTION"}


def test_table_level_grant(site: Site) -> None:
    provider = GrantProvider()
    props = site.grant_props(["SELECT", "UPDATE"], table="posts")
    created = provider.create(props)
    assert created.id == f"{site.user}@%@{site.db}@posts" and created.outs is not None
    rows = site.server.query(
        "SELECT Table_priv FROM mysql.tables_priv WHERE User=%s AND Db=%s AND Table_name='posts'", (site.user, site.db)
    )
    assert rows and set(str(rows[0][0]).split(",")) == {"Select", "Update"}
    read = provider.read(created.id, created.outs)
    assert read.outs is not None and read.outs["privileges"] == ["SELECT", "UPDATE"]
    provider.update(created.id, created.outs, site.grant_props(["SELECT"], table="posts"))
    assert provider.read(created.id, created.outs).outs["privileges"] == ["SELECT"]  # type: ignore[index]
    provider.delete(created.id, created.outs)
    assert provider.read(created.id, created.outs).id is None


def test_database_name_underscore_is_not_a_wildcard(
    mariadb_primary: MariaDBServer, admin_connection: dict[str, Any], sql_names: Callable[[str], str]
) -> None:
    base = sql_names("")
    mine, other = f"{base}wp_blog", f"{base}wp-blog"
    for name in (mine, other):
        DatabaseProvider().create(checked(DatabaseProvider(), {"connection": admin_connection, "database": name}))
    user = sql_names("wc")
    UserProvider().create(
        checked(UserProvider(), {"connection": admin_connection, "user": user, "password": "pw-wc-1"})
    )
    GrantProvider().create(
        checked(
            GrantProvider(), {"connection": admin_connection, "user": user, "database": mine, "privileges": ["ALL"]}
        )
    )
    with mariadb_primary.connect(user=user, password="pw-wc-1") as conn, conn.cursor() as cur:
        cur.execute(f"CREATE TABLE `{mine}`.ok (i INT)")
        with pytest.raises(pymysql.err.OperationalError):
            cur.execute(f"CREATE TABLE `{other}`.stolen (i INT)")  # another tenant's database


def test_drift_revoked_by_hand_is_reported_and_repaired(site: Site) -> None:
    provider = GrantProvider()
    props = site.grant_props(["SELECT", "INSERT", "UPDATE"])
    created = provider.create(props)
    assert created.outs is not None
    escaped = site.db.replace("_", "\\_")  # the exact row the provider manages
    site.server.query(f"REVOKE INSERT, UPDATE ON `{escaped}`.* FROM %s@'%%'", (site.user,))
    # A typical hand-written grant: unescaped, so a LIKE pattern that also matches this database.
    site.server.query(f"GRANT DROP ON `{site.db}`.* TO %s@'%%'", (site.user,))
    read = provider.read(created.id, created.outs)
    assert read.outs is not None and read.outs["privileges"] == ["DROP", "SELECT", "WILDCARD GRANT ROW"]
    assert provider.diff(created.id, read.outs, props).changes is True
    provider.update(created.id, read.outs, props)
    assert site.privileges() == {"SELECT", "INSERT", "UPDATE"}
    assert site.server.query("SELECT Db FROM mysql.db WHERE User=%s", (site.user,)) == [(escaped,)]
    assert provider.diff(created.id, provider.read(created.id, created.outs).outs or {}, props).changes is False


def test_fully_revoked_grant_reads_as_gone(site: Site) -> None:
    provider = GrantProvider()
    created = provider.create(site.grant_props(["SELECT"]))
    assert created.outs is not None
    site.server.query(f"REVOKE ALL PRIVILEGES ON `{site.db.replace('_', chr(92) + '_')}`.* FROM %s@'%%'", (site.user,))
    assert provider.read(created.id, created.outs).id is None


def test_delete_revokes_only_its_own_grant(
    site: Site, mariadb_primary: MariaDBServer, sql_names: Callable[[str], str]
) -> None:
    provider = GrantProvider()
    other_db = sql_names("other")
    DatabaseProvider().create(checked(DatabaseProvider(), {"connection": site.conn, "database": other_db}))
    mine = provider.create(site.grant_props(["SELECT", "INSERT"]))
    other = provider.create(
        checked(
            GrantProvider(),
            {"connection": site.conn, "user": site.user, "database": other_db, "privileges": ["SELECT"]},
        )
    )
    assert mine.outs is not None and other.outs is not None
    provider.delete(mine.id, mine.outs)
    assert site.privileges() == set()
    assert db_privileges(mariadb_primary, site.user, other_db) == {"SELECT"}
    provider.delete(mine.id, mine.outs)  # nothing left to revoke: still fine


def test_delete_after_user_was_dropped_does_not_hang_or_fail(site: Site) -> None:
    provider = GrantProvider()
    created = provider.create(site.grant_props(["SELECT"]))
    assert created.outs is not None
    site.server.query("DROP USER %s@'%%'", (site.user,))
    provider.delete(created.id, created.outs)
    assert provider.read(created.id, created.outs).id is None


def test_grant_for_missing_user_fails_clearly_and_leaves_nothing(
    mariadb_primary: MariaDBServer, admin_connection: dict[str, Any], sql_names: Callable[[str], str]
) -> None:
    user, db = sql_names("nouser"), sql_names("db")
    props = checked(
        GrantProvider(), {"connection": admin_connection, "user": user, "database": db, "privileges": ["SELECT"]}
    )
    with pytest.raises(SQLProviderError, match="does not exist"):
        GrantProvider().create(props)
    assert mariadb_primary.query("SELECT COUNT(*) FROM mysql.user WHERE User=%s", (user,)) == [(0,)]


def test_create_adopts_existing_grant(site: Site, capsys: pytest.CaptureFixture[str]) -> None:
    site.server.query(f"GRANT SELECT, DELETE ON `{site.db}`.* TO %s@'%%'", (site.user,))
    GrantProvider().create(site.grant_props(["SELECT", "INSERT"]))
    assert site.privileges() == {"SELECT", "INSERT"}
    assert "adopting existing privileges" in capsys.readouterr().err


def test_adopting_a_hand_made_wildcard_grant_makes_it_exact_without_a_gap(
    site: Site, general_log: Callable[[], list[str]]
) -> None:
    site.server.query(f"GRANT ALL PRIVILEGES ON `{site.db}`.* TO %s@'%%'", (site.user,))  # LIKE pattern row
    GrantProvider().create(site.grant_props(["ALL"]))
    rows = site.server.query("SELECT Db FROM mysql.db WHERE User=%s", (site.user,))
    assert rows == [(site.db.replace("_", "\\_"),)]
    statements = [
        s.strip().split(" ")[0].upper() for s in general_log() if s.strip().upper().startswith(("GRANT", "REVOKE"))
    ]
    # the test's own hand-made GRANT, then the provider's: exact grant first, wildcard row retired after
    assert statements == ["GRANT", "GRANT", "REVOKE"]


def test_a_hand_made_wildcard_row_is_drift_even_with_the_same_privileges(site: Site) -> None:
    provider = GrantProvider()
    props = site.grant_props(["SELECT"])
    created = provider.create(props)
    assert created.outs is not None
    site.server.query(f"GRANT SELECT ON `{site.db}`.* TO %s@'%%'", (site.user,))  # also matches other names
    read = provider.read(created.id, created.outs)
    assert read.outs is not None and provider.diff(created.id, read.outs, props).changes is True
    provider.update(created.id, read.outs, props)
    assert site.server.query("SELECT Db FROM mysql.db WHERE User=%s", (site.user,)) == [(site.db.replace("_", "\\_"),)]
    provider.delete(created.id, read.outs)  # the marker in state is never sent as a privilege
    assert site.privileges() == set()
