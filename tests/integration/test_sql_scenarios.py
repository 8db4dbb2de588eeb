"""Scenarios closer to real runs: many sites on the provider's thread pool, random privilege walks,
awkward passwords, connection limits that actually bite."""

from __future__ import annotations

import random
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pymysql
import pytest
from sql_support import can_login, checked, db_privileges, schemata

from components.sql.privileges import ALL
from components.sql.providers import DatabaseProvider, GrantProvider, UserProvider
from tools.mariadb_server import MariaDBServer

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]


def test_many_sites_on_the_providers_thread_pool(
    mariadb_primary: MariaDBServer, admin_connection: dict[str, Any], sql_names: Callable[[str], str]
) -> None:
    """The engine runs provider calls on 4 threads sharing one provider object per class."""
    dbs, users, grants = DatabaseProvider(), UserProvider(), GrantProvider()
    prefix = sql_names("")

    def site(i: int) -> str:
        name = f"{prefix}s{i}"
        dbs.create(checked(dbs, {"connection": admin_connection, "database": name}))
        users.create(checked(users, {"connection": admin_connection, "user": name, "password": f"pw-{i}-x"}))
        grants.create(
            checked(grants, {"connection": admin_connection, "user": name, "database": name, "privileges": ["ALL"]})
        )
        return name

    with ThreadPoolExecutor(max_workers=4) as pool:
        names = list(pool.map(site, range(20)))
    present = schemata(mariadb_primary)
    for i, name in enumerate(names):
        assert name in present
        assert can_login(mariadb_primary, name, f"pw-{i}-x", database=name)
    admin_sessions = mariadb_primary.query(
        "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE USER=%s AND HOST LIKE '127.0.0.1%%'",
        (mariadb_primary.info.admin_user,),
    )[0][0]
    assert admin_sessions <= 4 + 2, "one cached connection per worker thread, not one per call"


def test_random_privilege_walk_converges_without_revoking_what_stays(
    mariadb_primary: MariaDBServer, admin_connection: dict[str, Any], sql_names: Callable[[str], str]
) -> None:
    db, user = sql_names("walk"), sql_names("walker")
    DatabaseProvider().create(checked(DatabaseProvider(), {"connection": admin_connection, "database": db}))
    UserProvider().create(checked(UserProvider(), {"connection": admin_connection, "user": user, "password": "w-pw-1"}))
    grants = GrantProvider()
    pool = ["SELECT", "INSERT", "UPDATE", "DELETE", "CREATE", "DROP", "INDEX", "ALTER", "LOCK TABLES", ALL]
    rnd = random.Random(20261124)
    base = {"connection": admin_connection, "user": user, "database": db}
    outs = grants.create(checked(grants, {**base, "privileges": ["SELECT"]})).outs
    assert outs is not None
    expansion = None
    for _ in range(12):
        wanted = rnd.sample(pool, rnd.randint(1, 4))
        news = checked(grants, {**base, "privileges": wanted})
        before = db_privileges(mariadb_primary, user, db)
        mariadb_primary.query("TRUNCATE mysql.general_log")
        mariadb_primary.query("SET GLOBAL log_output='TABLE', general_log=1")
        try:
            updated = grants.update("id", outs, news).outs
        finally:
            mariadb_primary.query("SET GLOBAL general_log=0")
        assert updated is not None
        outs = updated
        after = db_privileges(mariadb_primary, user, db) - {"GRANT OPTION"}
        if ALL in wanted:
            expansion = expansion or after
            assert after == expansion
            kept = after
        else:
            assert after == set(wanted), (wanted, after)
            kept = after & before
        revokes = mariadb_primary.query(
            "SELECT CONVERT(argument USING utf8mb4) FROM mysql.general_log "
            "WHERE command_type='Query' AND argument LIKE 'REVOKE%%'"
        )
        for (statement,) in revokes:
            revoked = {p.strip() for p in str(statement)[len("REVOKE ") :].split(" ON ")[0].split(",")}
            assert not (revoked & kept), (statement, kept)
        read = grants.read("id", outs)
        assert read.outs is not None and grants.diff("id", read.outs, news).changes is False


@pytest.mark.parametrize(
    "password",
    [
        'it\'s "quoted" `and` \\escaped\\',
        "%s %(x)s %% ?",
        "pässwörd-ünïcødé-密码",
        "x' OR '1'='1",
        "a;DROP USER root;--",
    ],
)
def test_awkward_passwords_work_exactly(
    mariadb_primary: MariaDBServer, admin_connection: dict[str, Any], sql_names: Callable[[str], str], password: str
) -> None:
    provider = UserProvider()
    user = sql_names("pw")
    created = provider.create(checked(provider, {"connection": admin_connection, "user": user, "password": "start-1"}))
    assert created.outs is not None
    provider.update(created.id, created.outs, checked(provider, {**created.outs, "password": password}))
    assert can_login(mariadb_primary, user, password)
    assert not can_login(mariadb_primary, user, password + "x")
    assert mariadb_primary.query("SELECT COUNT(*) FROM mysql.user WHERE User='root'")[0][0] >= 1
    read = provider.read(created.id, {**created.outs, "password": password})
    assert read.outs is not None and read.outs["password"] == password  # hash comparison agrees


def test_max_user_connections_is_enforced(
    mariadb_primary: MariaDBServer, admin_connection: dict[str, Any], sql_names: Callable[[str], str]
) -> None:
    provider = UserProvider()
    user = sql_names("one")
    provider.create(
        checked(
            provider, {"connection": admin_connection, "user": user, "password": "one-pw", "max_user_connections": 1}
        )
    )
    with mariadb_primary.connect(user=user, password="one-pw"), pytest.raises(pymysql.err.OperationalError) as err:
        mariadb_primary.connect(user=user, password="one-pw").__enter__()
    assert err.value.args[0] == 1226  # ER_USER_LIMIT_REACHED
