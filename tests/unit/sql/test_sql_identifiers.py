"""identifiers.py: validation policy and total quoting (pure)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from components.sql.identifiers import (
    collation_charset_mismatch,
    escape_grant_database,
    grant_id,
    is_reserved_database,
    is_reserved_user,
    normalize_charset,
    normalize_collation,
    parse_grant_id,
    parse_user_id,
    quote_identifier,
    unescape_grant_database,
    user_id,
    validate_account_syntax,
    validate_charset,
    validate_collation,
    validate_database_name,
    validate_host,
    validate_table,
    validate_user_name,
)


def unquote(quoted: str) -> str:
    """Parse one backtick-quoted identifier the way the server does; fail on any trailing text."""
    assert quoted[0] == "`"
    out, i = [], 1
    while i < len(quoted):
        ch = quoted[i]
        if ch == "`":
            if i + 1 < len(quoted) and quoted[i + 1] == "`":
                out.append("`")
                i += 2
                continue
            assert i == len(quoted) - 1, "text after the closing backtick"
            return "".join(out)
        out.append(ch)
        i += 1
    raise AssertionError("unterminated identifier")


@given(st.text(min_size=1).filter(lambda s: "\x00" not in s))
def test_quoting_round_trips_any_name(name: str) -> None:
    assert unquote(quote_identifier(name)) == name


@pytest.mark.parametrize("bad", ["", "a\x00b"])
def test_quoting_refuses_what_no_server_accepts(bad: str) -> None:
    with pytest.raises(ValueError):
        quote_identifier(bad)


@given(st.text())
def test_grant_database_escape_round_trips(name: str) -> None:
    escaped = escape_grant_database(name)
    assert unescape_grant_database(escaped) == name
    bare = escaped.replace("\\\\", "").replace("\\_", "").replace("\\%", "")
    assert "_" not in bare and "%" not in bare  # no wildcard left unescaped


@pytest.mark.parametrize("name", ["wp_blog", "site-1", "a$b", "café", "数据库", "A" * 64, "0"])
def test_valid_database_names(name: str) -> None:
    assert validate_database_name(name) is None


@pytest.mark.parametrize(
    ("name", "fragment"),
    [
        ("", "must not be empty"),
        ("a" * 65, "at most 64 characters (got 65)"),
        ("a b", "U+0020"),
        ("a`b", "U+0060"),
        ("a'b", "U+0027"),
        ("a;b", "U+003B"),
        ("a.b", "U+002E"),
        ("a@b", "U+0040"),
        ("a%b", "U+0025"),
        ("a\\b", "U+005C"),
        ("a\x00b", "non-printable"),
        ("x\U0001f600", "Basic Multilingual Plane"),
        ("x\u200by", "ZERO WIDTH SPACE"),
        ("MySQL", "system schema"),
        (42, "must be a string"),
    ],
)
def test_invalid_database_names_name_the_field(name: object, fragment: str) -> None:
    error = validate_database_name(name)
    assert error is not None and error.startswith("database:") and fragment in error


def test_custom_field_name_in_messages() -> None:
    assert (validate_database_name("a b", "sites[2].database") or "").startswith("sites[2].database:")


def test_user_names() -> None:
    assert validate_user_name("wp.blog_1") is None
    assert validate_user_name("a" * 32) is None
    assert "at most 32" in (validate_user_name("a" * 33) or "")
    assert (validate_user_name("a@b") or "").startswith("user:")


# Every account the server (MariaDB 10.4+, MySQL 8), its official image or mariadb-operator creates.
RESERVED = ["root", "mysql", "mariadb.sys", "mysql.sys", "mysql.session", "mysql.infoschema", "PUBLIC",
            "healthcheck", "repl", "mariadb-operator", "mysql.future", "mariadb.other", "Root", "MySQL"]  # fmt: skip


@pytest.mark.parametrize("name", RESERVED)
def test_reserved_accounts_are_refused(name: str) -> None:
    assert is_reserved_user(name)
    assert "reserved" in (validate_user_name(name, "sites[0].user.name") or "")
    assert (validate_user_name(name, "sites[0].user.name") or "").startswith("sites[0].user.name:")
    assert validate_account_syntax(name) is None  # an admin connection may log in as one


@pytest.mark.parametrize("name", ["rooted", "mysqlapp", "my_sql", "wp_mysql", "mariadb", "replica"])
def test_names_that_merely_resemble_reserved_ones_are_fine(name: str) -> None:
    assert not is_reserved_user(name) and validate_user_name(name) is None


@pytest.mark.parametrize("name", ["mysql", "information_schema", "PERFORMANCE_SCHEMA", "sys"])
def test_reserved_schemas(name: str) -> None:
    assert is_reserved_database(name)
    assert "reserved" in (validate_database_name(name) or "")


@pytest.mark.parametrize("host", ["%", "localhost", "10.0.%", "10.0.0.0/255.255.0.0", "::1", "db-1.example.org", "a_b"])
def test_valid_hosts(host: str) -> None:
    assert validate_host(host) is None


@pytest.mark.parametrize("host", ["", "a b", "x'y", "a@b", "h" * 256, "ä"])
def test_invalid_hosts(host: str) -> None:
    assert (validate_host(host) or "").startswith("host:")


def test_tables() -> None:
    assert validate_table("*") is None
    assert validate_table("wp_posts") is None
    assert (validate_table("a*") or "").startswith("table:")


def test_charsets_and_collations() -> None:
    assert validate_charset("utf8mb4") is None and validate_collation("utf8mb4_unicode_ci") is None
    assert (validate_charset("utf8;") or "").startswith("charset:")
    assert (validate_collation("x y") or "").startswith("collation:")
    assert normalize_charset("UTF8") == "utf8mb3"
    assert normalize_collation("utf8_general_ci") == "utf8mb3_general_ci"
    assert collation_charset_mismatch("utf8mb4", "latin1_swedish_ci") is not None
    assert collation_charset_mismatch("utf8mb4", "utf8mb4_0900_ai_ci") is None
    assert collation_charset_mismatch("utf8mb4", "uca1400_ai_ci") is None  # MariaDB 10.10+ short form
    assert collation_charset_mismatch("utf8", "utf8_bin") is None


@given(
    st.from_regex(r"[a-z0-9_$-]{1,32}", fullmatch=True),
    st.from_regex(r"[a-z0-9.%_:/-]{1,40}", fullmatch=True),
    st.from_regex(r"[a-z0-9_$-]{1,64}", fullmatch=True),
    st.one_of(st.just("*"), st.from_regex(r"[a-z0-9_$-]{1,64}", fullmatch=True)),
)
def test_ids_round_trip(user: str, host: str, database: str, table: str) -> None:
    assert parse_user_id(user_id(user, host)) == (user, host)
    assert parse_grant_id(grant_id(user, host, database, table)) == (user, host, database, table)


@pytest.mark.parametrize("bad", ["nohost", "@h", "u@"])
def test_bad_user_ids(bad: str) -> None:
    with pytest.raises(ValueError):
        parse_user_id(bad)


def test_bad_grant_id() -> None:
    with pytest.raises(ValueError):
        parse_grant_id("u@h@db")
