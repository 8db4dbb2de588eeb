"""The SQL dynamic providers on the real Pulumi engine, through the Automation API.

One file-backend stack of ``tests/e2e/programs/sql`` (three sites: database + user + grant
each) deploys to the session's ``mariadb_primary``.  Every test first converges the stack to
the baseline sites, so the tests do not depend on each other's order; file order is still the
natural story (preview, create, no-op, changes, drift, removal, secrets, destroy).

"No SQL writes" is measured on the server itself: the global ``Com_*`` counters of every
statement kind the providers can issue, the binlog GTID position, and the number of new
connections, before and after the operation.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from pulumi import automation as auto

from tests.e2e.sql_stack import (
    Site,
    SqlEnv,
    SqlStack,
    accounts,
    can_login,
    databases,
    db_grant_rows,
    db_grants,
    run_in,
    server_writes,
    show_grants,
    statement_log,
)
from tools.mariadb_server import MariaDBServer
from tools.ports import free_port

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(1800)]

RESOURCE_KINDS = ("db", "user", "grant")
# the signature key/value that marks a secret envelope in a Pulumi deployment
SECRET_SIG = ("4dabf18193072939515e22adb298388d", "1b47061264138c4ac30d75fd1eb44270")


def names(*sites: str, kinds: tuple[str, ...] = RESOURCE_KINDS) -> set[str]:
    return {f"{site}-{kind}" for site in sites for kind in kinds}


def with_site(sites: list[Site], changed: Site) -> list[Site]:
    return [changed if s.name == changed.name else s for s in sites]


def logs_in(server: MariaDBServer, site: Site, database: str | None = None) -> bool:
    """Whether ``site.user`` can log in with ``site.password`` (kept out of assertion messages)."""
    return can_login(server, site.user, site.password, database)


def secret_value(value: Any) -> bool:
    """True for a value the deployment stores encrypted."""
    return isinstance(value, dict) and value.get(SECRET_SIG[0]) == SECRET_SIG[1]


def count_found(text: str, needles: set[str]) -> int:
    """How many of ``needles`` occur in ``text`` (a count, so failures never print one)."""
    return sum(1 for n in needles if n in text)


def plaintext_paths(value: Any, needles: set[str], path: str = "$") -> list[str]:
    """JSON paths of strings holding a needle, not descending into secret envelopes."""
    if isinstance(value, dict):
        if value.get(SECRET_SIG[0]) == SECRET_SIG[1]:
            return []
        return [p for k, v in value.items() for p in plaintext_paths(v, needles, f"{path}.{k}")]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in plaintext_paths(v, needles, f"{path}[{i}]")]
    if isinstance(value, str) and count_found(value, needles):
        return [path]
    return []


def assert_no_writes(delta: Any) -> None:
    assert delta.nonzero == {}, f"SQL writes during a no-op operation: {delta.nonzero}"
    assert delta.binlog_before == delta.binlog_after, "the binlog moved during a no-op operation"
    assert delta.connections == 0, f"{delta.connections} connection(s) opened during a no-op operation"


# 1 -----------------------------------------------------------------------------------------------
def test_preview_plans_creates_without_a_database(sql_env: SqlEnv) -> None:
    closed = {"mode": "direct", "host": "127.0.0.1", "port": free_port(), "user": "root", "password": "unused"}
    ws = sql_env.stack.stack.workspace
    preview_stack = SqlStack(auto.Stack.create("preview", ws), sql_env.stack.backend_dir, closed)
    try:
        preview_stack.configure(sql_env.sites)
        result = preview_stack.preview()
    finally:
        ws.remove_stack("preview", force=True)
    site_names = [s.name for s in sql_env.sites]
    assert result.changes == {"create": 1 + 3 * len(site_names)}, result.summary
    assert result.steps == dict.fromkeys(names(*site_names), "create")


# 2 -----------------------------------------------------------------------------------------------
def test_up_creates_databases_users_and_grants(sql_env: SqlEnv) -> None:
    stack, server = sql_env.stack, sql_env.server
    fresh = not stack.resources()
    result = stack.converge(sql_env.sites)
    if fresh:
        assert result.steps == dict.fromkeys(names(*(s.name for s in sql_env.sites)), "create")

    live = databases(server, sql_env.prefix)
    assert live == {s.database: ("utf8mb4", "utf8mb4_unicode_ci") for s in sql_env.sites}
    assert accounts(server, sql_env.prefix) == {s.user for s in sql_env.sites}
    alpha, bravo, charlie = (sql_env.site(n) for n in ("alpha", "bravo", "charlie"))
    assert db_grants(server, alpha.user, alpha.database) == {"SELECT", "INSERT"}
    assert db_grants(server, bravo.user, bravo.database) == {"ALL PRIVILEGES"}
    assert db_grants(server, charlie.user, charlie.database) == {"SELECT"}
    for site in sql_env.sites:
        # exactly one database-level grant besides the USAGE line
        assert set(show_grants(server, site.user)) == {"*.*", f"{site.database}.*"}
        assert logs_in(server, site, site.database), site.name
        assert not logs_in(server, site.replace(password=site.password + "x")), site.name
    # a site's user cannot open another site's database
    assert not logs_in(server, alpha, bravo.database)


# 3 -----------------------------------------------------------------------------------------------
def test_second_up_is_a_noop_without_sql_writes(sql_env: SqlEnv) -> None:
    sql_env.stack.converge(sql_env.sites)
    with server_writes(sql_env.server) as delta:
        result = sql_env.stack.up()
    assert set(result.summary) == {"same"}, result.summary
    assert result.summary["same"] == 1 + 3 * len(sql_env.sites)
    assert result.steps == {}
    assert_no_writes(delta)


# 4 -----------------------------------------------------------------------------------------------
def test_privilege_change_updates_only_that_grant_with_a_delta(sql_env: SqlEnv) -> None:
    stack, server = sql_env.stack, sql_env.server
    stack.converge(sql_env.sites)
    alpha = sql_env.site("alpha").replace(privileges=("SELECT", "UPDATE"))
    stack.configure(with_site(sql_env.sites, alpha))
    with server_writes(server) as delta, statement_log(server, alpha.user) as statements:
        result = stack.up()
    assert result.steps == {"alpha-grant": "update"}
    assert result.changes == {"update": 1}
    assert delta.nonzero == {"Com_grant": 1, "Com_revoke": 1}
    writes = [s for s in statements if s.lstrip().upper().startswith(("GRANT", "REVOKE"))]
    assert len(writes) == 2, writes
    grant, revoke = writes  # grant first: SELECT, which stays, is never absent
    assert grant.upper().startswith("GRANT UPDATE ON"), grant
    assert revoke.upper().startswith("REVOKE INSERT ON"), revoke
    assert db_grants(server, alpha.user, alpha.database) == {"SELECT", "UPDATE"}


def test_password_rotation_updates_only_the_user(sql_env: SqlEnv) -> None:
    stack, server = sql_env.stack, sql_env.server
    stack.converge(sql_env.sites)
    old = sql_env.site("bravo")
    assert logs_in(server, old)
    bravo = old.replace(password=sql_env.new_password("bravo-rotated"))
    stack.configure(with_site(sql_env.sites, bravo))
    with server_writes(server) as delta:
        result = stack.up()
    assert result.steps == {"bravo-user": "update"}
    assert delta.nonzero == {"Com_alter_user": 1}
    assert not logs_in(server, old)
    assert logs_in(server, bravo, bravo.database)
    assert db_grants(server, bravo.user, bravo.database) == {"ALL PRIVILEGES"}


def test_charset_change_alters_the_database_in_place(sql_env: SqlEnv) -> None:
    stack, server = sql_env.stack, sql_env.server
    stack.converge(sql_env.sites)
    charlie = sql_env.site("charlie").replace(charset="latin1", collation="latin1_swedish_ci")
    run_in(server, charlie.database, "CREATE TABLE keepme (id INT PRIMARY KEY)")
    run_in(server, charlie.database, "INSERT INTO keepme VALUES (42)")
    stack.configure(with_site(sql_env.sites, charlie))
    with server_writes(server) as delta:
        result = stack.up()
    assert result.steps == {"charlie-db": "update"}  # not replace
    assert delta.nonzero == {"Com_alter_db": 1}
    assert databases(server, sql_env.prefix)[charlie.database] == ("latin1", "latin1_swedish_ci")
    assert run_in(server, charlie.database, "SELECT id FROM keepme") == [(42,)]  # same database, data kept
    assert stack.resources()["charlie-db"]["id"] == charlie.database
    run_in(server, charlie.database, "DROP TABLE keepme")


# 5 -----------------------------------------------------------------------------------------------
def test_refresh_detects_drift_and_up_repairs_it(sql_env: SqlEnv) -> None:
    stack, server = sql_env.stack, sql_env.server
    stack.converge(sql_env.sites)
    alpha, bravo, charlie = (sql_env.site(n) for n in ("alpha", "bravo", "charlie"))
    # drift made by hand, behind Pulumi's back: a revoked privilege, a dropped account, another
    # charset, a password changed by hand.  The grant is on the escaped pattern (`a\_b`.*),
    # exactly as SHOW GRANTS prints it.
    escaped = alpha.database.replace("_", "\\_")
    server.query(f"REVOKE INSERT ON `{escaped}`.* FROM %s@'%%'", (alpha.user,))
    server.query("DROP USER %s@'%%'", (bravo.user,))
    server.query(f"ALTER DATABASE `{charlie.database}` CHARACTER SET latin1 COLLATE latin1_swedish_ci")
    server.query("ALTER USER %s@'%%' IDENTIFIED BY %s", (charlie.user, sql_env.new_password("charlie-by-hand")))

    refreshed = stack.refresh()
    assert refreshed.changes == {"update": 3, "delete": 2}, refreshed.summary
    state = stack.resources()
    assert "bravo-user" not in state and "bravo-grant" not in state
    assert state["alpha-grant"]["outputs"]["privileges"] == ["SELECT"]
    assert state["charlie-db"]["outputs"]["charset"] == "latin1"
    assert state["charlie-user"]["outputs"].get("password") is None  # no longer the managed one

    plan = stack.preview()
    assert plan.steps == {
        "alpha-grant": "update",
        "bravo-user": "create",
        "bravo-grant": "create",
        "charlie-db": "update",
        "charlie-user": "update",
    }

    repaired = stack.up()
    assert repaired.steps == plan.steps
    assert db_grants(server, alpha.user, alpha.database) == {"SELECT", "INSERT"}
    assert logs_in(server, bravo, bravo.database)
    assert db_grants(server, bravo.user, bravo.database) == {"ALL PRIVILEGES"}
    assert databases(server, sql_env.prefix)[charlie.database] == ("utf8mb4", "utf8mb4_unicode_ci")
    assert logs_in(server, charlie, charlie.database)

    # repaired for good: a refresh finds nothing and another up writes nothing
    assert stack.refresh().changes == {}
    with server_writes(server) as delta:
        assert stack.up().steps == {}
    assert_no_writes(delta)


# 6 -----------------------------------------------------------------------------------------------
def test_removed_site_keeps_database_drops_user(sql_env: SqlEnv) -> None:
    stack, server = sql_env.stack, sql_env.server
    stack.converge(sql_env.sites)
    charlie = sql_env.site("charlie")
    stack.configure([s for s in sql_env.sites if s.name != "charlie"])
    with server_writes(server) as delta:
        result = stack.up()
    assert result.steps == dict.fromkeys(names("charlie"), "delete")
    assert delta.nonzero == {"Com_revoke": 1, "Com_drop_user": 1}
    assert charlie.database in databases(server, sql_env.prefix)  # kept: drop_on_delete is false
    assert f"database '{charlie.database}' removed from the stack but KEPT" in result.output  # the operator is told
    assert charlie.user not in accounts(server, sql_env.prefix)
    assert not [row for row in db_grant_rows(server, sql_env.prefix) if row[0] == charlie.user]


def test_removed_site_with_drop_on_delete_drops_database(sql_env: SqlEnv) -> None:
    stack, server = sql_env.stack, sql_env.server
    charlie = sql_env.site("charlie").replace(drop_on_delete=True)
    stack.converge(with_site(sql_env.sites, charlie))
    assert stack.resources()["charlie-db"]["outputs"]["drop_on_delete"] is True
    stack.configure([s for s in sql_env.sites if s.name != "charlie"])
    with server_writes(server) as delta:
        result = stack.up()
    assert result.steps == dict.fromkeys(names("charlie"), "delete")
    assert delta.nonzero == {"Com_revoke": 1, "Com_drop_user": 1, "Com_drop_db": 1}
    assert charlie.database not in databases(server, sql_env.prefix)
    assert f"database '{charlie.database}' dropped (drop_on_delete was true)" in result.output
    assert charlie.user not in accounts(server, sql_env.prefix)
    # the other sites are untouched
    for site in sql_env.sites:
        if site.name != "charlie":
            assert logs_in(server, site, site.database), site.name


# 7 -----------------------------------------------------------------------------------------------
def test_state_never_holds_a_plaintext_password(sql_env: SqlEnv) -> None:
    stack = sql_env.stack
    stack.converge(sql_env.sites)
    stack.refresh()  # read() results are stored too
    needles = sql_env.secrets_used  # the admin password and every site password ever used
    current = {str(stack.admin["password"]), *(s.password for s in sql_env.sites)}

    # The Automation API's export_stack() runs `pulumi stack export --show-secrets`, so secret
    # values come back decrypted, inside their secret envelopes.  Outside an envelope there
    # must be none; inside, the current ones must be found (proves the search can see them).
    deployment = stack.stack.export_stack().deployment or {}
    outside = plaintext_paths(deployment, needles)
    assert not outside, f"plaintext password outside a secret envelope at {outside}"
    inside = {n for n in current if n in json.dumps(deployment)}
    assert inside == current, f"{len(current - inside)} current password(s) not found even as secrets"

    # the secret outputs and inputs are really stored as secrets
    state = stack.resources()
    assert set(state) == names(*(s.name for s in sql_env.sites))
    for name, res in state.items():
        outputs, inputs = res["outputs"], res.get("inputs", {})
        assert secret_value(outputs["connection"]), name
        assert secret_value(inputs["connection"]), name
        if name.endswith("-user"):
            assert secret_value(outputs["password"]), name
            assert secret_value(inputs["password"]), name

    # what is stored is ciphertext: the plain `pulumi stack export`, every backend file
    # (checkpoint, history, backups), the stack config file, and everything the CLI printed
    assert count_found(stack.cli(["stack", "export"]), needles) == 0, "plaintext password in `pulumi stack export`"
    files = [p for p in stack.backend_dir.rglob("*") if p.is_file()]
    files += list(stack.project_dir.glob("Pulumi*.yaml"))
    assert any("history" in str(p) for p in files), "the backend kept no update history?"
    for path in files:
        text = path.read_bytes().decode("utf-8", "replace")
        assert count_found(text, needles) == 0, f"plaintext password in {path}"
    assert count_found("\n".join(stack.transcript), needles) == 0, "plaintext password in the CLI output"


# 8 -----------------------------------------------------------------------------------------------
def test_destroy_leaves_no_orphaned_users(sql_env: SqlEnv) -> None:
    stack, server = sql_env.stack, sql_env.server
    stack.converge(sql_env.sites)
    result = stack.destroy()
    assert result.changes == {"delete": 1 + 3 * len(sql_env.sites)}, result.summary
    assert stack.resources() == {}
    assert accounts(server, sql_env.prefix) == set()
    assert db_grant_rows(server, sql_env.prefix) == []
    # drop_on_delete defaults to false: the data outlives the stack
    assert set(databases(server, sql_env.prefix)) == {s.database for s in sql_env.sites}
