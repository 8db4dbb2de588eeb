"""statements.py: identifiers quoted, values parameterised, PyMySQL's %-formatting accounted for."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pymysql.converters import escape_item

from components.sql import statements as sql


def render(statement: sql.Statement) -> str:
    """What PyMySQL sends: ``sql % escaped_params`` (always applied, params is a tuple)."""
    text, params = statement
    assert isinstance(params, tuple)
    return text % tuple(escape_item(p, "utf8mb4") for p in params)


def first_identifier(rendered: str, start: int) -> tuple[str, int]:
    """Decode the backtick-quoted identifier starting at ``start``; return it and the end index."""
    assert rendered[start] == "`"
    out, i = [], start + 1
    while True:
        ch = rendered[i]
        if ch == "`":
            if rendered[i + 1 : i + 2] == "`":
                out.append("`")
                i += 2
                continue
            return "".join(out), i + 1
        out.append(ch)
        i += 1


names = st.text(min_size=1, max_size=70).filter(lambda s: "\x00" not in s)


@given(names, st.sampled_from(["utf8mb4", "x'; DROP DATABASE y; --"]))
def test_create_database_keeps_the_name_inside_its_quotes(name: str, charset: str) -> None:
    rendered = render(sql.create_database(name, charset, "utf8mb4_bin"))
    prefix = "CREATE DATABASE IF NOT EXISTS "
    assert rendered.startswith(prefix)
    decoded, end = first_identifier(rendered, len(prefix))
    assert decoded == name
    assert rendered[end:].startswith(" CHARACTER SET '")  # the charset is a quoted literal


@given(names, names.filter(lambda s: s != "*"))  # "*" is the database-level form, tested below
def test_grant_targets_decode_exactly(database: str, table: str) -> None:
    rendered = render(sql.grant(["SELECT"], database, table, "u", "%"))
    start = rendered.index(" ON ") + 4
    db_decoded, end = first_identifier(rendered, start)
    assert db_decoded == database  # table-level: the database name is literal
    assert rendered[end] == "."
    tbl_decoded, end = first_identifier(rendered, end + 1)
    assert tbl_decoded == table
    assert rendered[end:] == " TO 'u'@'%'"


def test_database_level_grant_escapes_wildcards() -> None:
    assert render(sql.grant(["SELECT"], "wp_blog", "*", "app", "%")) == "GRANT SELECT ON `wp\\_blog`.* TO 'app'@'%'"
    legacy = render(sql.revoke(["SELECT"], "wp_blog", "*", "app", "%", exact=False))
    assert legacy == "REVOKE SELECT ON `wp_blog`.* FROM 'app'@'%'"


def test_percent_in_identifiers_survives_pymysql_formatting() -> None:
    assert render(sql.drop_database("a%b")) == "DROP DATABASE IF EXISTS `a%b`"
    assert render(sql.drop_database("%s")) == "DROP DATABASE IF EXISTS `%s`"


@given(st.text(max_size=40))
def test_user_values_are_literals(password: str) -> None:
    text, params = sql.create_user("app", "%", password, True, 7)
    assert text == sql.create_user("app", "%", "other", True, 7)[0]  # the text never depends on the value
    assert params == ("app", "%", password, 7)
    assert text.endswith("REQUIRE SSL WITH MAX_USER_CONNECTIONS %s")


def test_user_option_statements() -> None:
    assert (
        render(sql.alter_user_options("a", "h", False, 0))
        == "ALTER USER 'a'@'h' REQUIRE NONE WITH MAX_USER_CONNECTIONS 0"
    )
    assert render(sql.alter_user_password("a", "h", "p'w")) == "ALTER USER 'a'@'h' IDENTIFIED BY 'p\\'w'"
    assert render(sql.drop_user("a", "h")) == "DROP USER IF EXISTS 'a'@'h'"
    with pytest.raises(TypeError):
        sql.alter_user_options("a", "h", False, True)


def test_grant_and_revoke_text() -> None:
    stmt = sql.grant(["SELECT", "INSERT"], "db", "*", "app", "%", grant_option=True)
    assert render(stmt) == "GRANT INSERT, SELECT ON `db`.* TO 'app'@'%' WITH GRANT OPTION"
    assert render(sql.revoke_grant_option("db", "*", "app", "%")) == "REVOKE GRANT OPTION ON `db`.* FROM 'app'@'%'"
    assert render(sql.revoke(["ALL PRIVILEGES"], "db", "*", "app", "%")).startswith("REVOKE ALL PRIVILEGES ON")


@pytest.mark.parametrize("bad", [[], ["SELECT; DROP TABLE x"], ["select`"]])
def test_privilege_keywords_are_checked_again(bad: list[Any]) -> None:
    with pytest.raises(ValueError):
        sql.grant(bad, "db", "*", "u", "%")


def test_lookups_are_parameterised() -> None:
    assert sql.select_database("x'y")[1] == ("x'y",)
    assert sql.select_user("u", "h")[1] == ("u", "h")
    assert sql.select_database_grant("a_b", "u", "h")[1] == ("u", "h", "a\\_b")
    assert sql.select_table_grant("a_b", "t", "u", "h")[1] == ("u", "h", "a_b", "t")
    # one round trip for a database grant: the account, its exact (escaped) and its unescaped row
    text, params = sql.select_account_database_grants("a_b", "u", "h")
    assert params == ("u", "h", "a\\_b", "a_b", "u", "h")
    assert text.count("%s") == len(params) and "'" not in text


def test_create_user_without_the_guard_for_one_round_trip_creates() -> None:
    guarded, params = sql.create_user("u", "%", "pw", False, 0)
    bare, same = sql.create_user("u", "%", "pw", False, 0, if_not_exists=False)
    assert guarded.startswith("CREATE USER IF NOT EXISTS %s@%s") and bare.startswith("CREATE USER %s@%s")
    assert params == same
