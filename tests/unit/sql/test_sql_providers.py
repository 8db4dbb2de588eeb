"""Provider check/diff (no database) and the typed resources under Pulumi mocks."""

from __future__ import annotations

import asyncio
from typing import Any

import pulumi
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pulumi.dynamic import ConfigureRequest
from pulumi.dynamic.config import Config
from pulumi.dynamic.dynamic import serialize_provider
from pulumi.output import Unknown
from pulumi.runtime.rpc import UNKNOWN

from components.sql.privileges import DATABASE_LEVEL_PRIVILEGES
from components.sql.providers import DatabaseProvider, GrantProvider, UserProvider

CONN = {"mode": "direct", "host": "db", "port": 3306, "user": "root", "password": "Adm1n-Secret"}
UNKNOWNS = [UNKNOWN, Unknown()]  # type: ignore[no-untyped-call]


def failures(result: Any) -> dict[str, str]:
    return {f.property: f.reason for f in result.failures}


# -- check ------------------------------------------------------------------------------------
def test_database_defaults_and_normalisation() -> None:
    result = DatabaseProvider().check({}, {"connection": CONN, "database": "site"})
    assert failures(result) == {}
    assert result.inputs == {
        "connection": CONN,
        "database": "site",
        "charset": "utf8mb4",
        "collation": "utf8mb4_unicode_ci",
        "drop_on_delete": False,
    }
    legacy = DatabaseProvider().check(
        {}, {"connection": CONN, "database": "site", "charset": "UTF8", "collation": "UTF8_General_CI"}
    )
    assert failures(legacy) == {}
    assert (legacy.inputs["charset"], legacy.inputs["collation"]) == ("utf8mb3", "utf8mb3_general_ci")


def test_database_collation_must_match_charset() -> None:
    result = DatabaseProvider().check({}, {"connection": CONN, "database": "site", "collation": "latin1_bin"})
    assert failures(result) == {"collation": "collation: 'latin1_bin' belongs to charset 'latin1', not 'utf8mb4'"}


def test_user_defaults_and_errors() -> None:
    ok = UserProvider().check({}, {"connection": CONN, "user": "app", "password": "pw"})
    assert failures(ok) == {}
    assert (ok.inputs["host"], ok.inputs["max_user_connections"], ok.inputs["require_tls"]) == ("%", 0, False)
    bad = UserProvider().check(
        {},
        {"connection": CONN, "user": "root", "password": "", "max_user_connections": -1, "require_tls": "yes"},
    )
    assert set(failures(bad)) == {"user", "password", "max_user_connections", "require_tls"}
    assert all(reason.startswith(f"{prop}:") for prop, reason in failures(bad).items())


@pytest.mark.parametrize("user", ["root", "mysql", "MySQL", "mariadb.sys", "healthcheck", "repl", "mysql.session"])
def test_reserved_accounts_fail_check_at_any_host(user: str) -> None:
    for host in ("%", "localhost", "127.0.0.1"):
        result = UserProvider().check({}, {"connection": CONN, "user": user, "host": host, "password": "pw"})
        assert "reserved" in failures(result).get("user", ""), (user, host)
        grant = GrantProvider().check(
            {}, {"connection": CONN, "user": user, "host": host, "database": "site", "privileges": ["SELECT"]}
        )
        assert "reserved" in failures(grant).get("user", ""), (user, host)


def test_the_connections_admin_account_fails_check() -> None:
    admin = {**CONN, "user": "flightdeck_admin"}
    result = UserProvider().check({}, {"connection": admin, "user": "flightdeck_admin", "password": "pw"})
    assert failures(result) == {
        "user": "user: 'flightdeck_admin' is the admin account this connection logs in with (reserved); "
        "flightdeck never manages, adopts or drops it"
    }
    assert "Adm1n-Secret" not in str(failures(result))
    grant = GrantProvider().check(
        {}, {"connection": admin, "user": "FLIGHTDECK_ADMIN", "database": "site", "privileges": ["SELECT"]}
    )
    assert "admin account" in failures(grant)["user"]


@pytest.mark.parametrize("database", ["mysql", "sys", "information_schema", "performance_schema"])
def test_system_schemas_fail_check(database: str) -> None:
    result = DatabaseProvider().check({}, {"connection": CONN, "database": database})
    assert "reserved" in failures(result)["database"]
    grant = GrantProvider().check(
        {}, {"connection": CONN, "user": "app", "database": database, "privileges": ["SELECT"]}
    )
    assert "reserved" in failures(grant)["database"]


def _no_sql(*_: Any, **__: Any) -> Any:
    raise AssertionError("a reserved account or schema must never reach SQL")


def test_reserved_state_is_never_dropped_adopted_or_altered(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """State recorded by an older version (before check() refused these) is let go, untouched."""
    from components.sql import providers

    monkeypatch.setattr(providers, "get_connection", _no_sql)
    user = {"connection": CONN, "user": "mysql", "host": "localhost", "password": "pw", "max_user_connections": 0,
            "require_tls": False}  # fmt: skip
    UserProvider().delete("mysql@localhost", user)
    assert "KEPT" in capsys.readouterr().err
    UserProvider().delete("root@%", {**user, "user": "root", "host": "%"})
    database = {"connection": CONN, "database": "mysql", "charset": "utf8mb4", "collation": "utf8mb4_unicode_ci",
                "drop_on_delete": True}  # fmt: skip
    DatabaseProvider().delete("mysql", database)
    assert "never dropped" in capsys.readouterr().err
    grant = {"connection": CONN, "user": "mysql", "host": "localhost", "database": "site", "table": "*",
             "privileges": ["SELECT"], "grant_option": False}  # fmt: skip
    GrantProvider().delete("mysql@localhost@site@*", grant)
    with pytest.raises(providers.SQLProviderError, match="refused: 'mysql' is an account"):
        UserProvider().create(user)
    with pytest.raises(providers.SQLProviderError, match="refused"):
        UserProvider().update("mysql@localhost", user, {**user, "password": "other"})
    with pytest.raises(providers.SQLProviderError, match="refused: 'mysql' is a system schema"):
        DatabaseProvider().create(database)
    with pytest.raises(providers.SQLProviderError, match="refused"):
        GrantProvider().create(grant)
    admin_user = {**user, "user": "root", "host": "%"}
    with pytest.raises(providers.SQLProviderError, match="refused"):
        UserProvider().create(admin_user)


def test_grant_normalises_privileges_and_grant_option() -> None:
    result = GrantProvider().check(
        {}, {"connection": CONN, "user": "app", "database": "site", "privileges": ["select", "ALL", "grant option"]}
    )
    assert failures(result) == {}
    assert result.inputs["privileges"] == ["ALL PRIVILEGES"] and result.inputs["grant_option"] is True
    assert result.inputs["table"] == "*" and result.inputs["host"] == "%"


def test_unknown_properties_are_rejected() -> None:
    result = DatabaseProvider().check({}, {"connection": CONN, "database": "site", "charsett": "x"})
    assert failures(result) == {"charsett": "charsett: unknown property for MySQLDatabase"}


@pytest.mark.parametrize("unknown", UNKNOWNS, ids=["string", "object"])
def test_check_tolerates_unknowns_everywhere(unknown: Any) -> None:
    cases: list[tuple[Any, dict[str, Any]]] = [
        (DatabaseProvider(), {"database": "x", "charset": "x", "collation": "x", "drop_on_delete": True}),
        (UserProvider(), {"user": "x", "host": "x", "password": "x", "max_user_connections": 1, "require_tls": True}),
        (
            GrantProvider(),
            {"user": "x", "host": "x", "database": "x", "table": "x", "privileges": ["SELECT"], "grant_option": True},
        ),
    ]
    for provider, fields in cases:
        assert failures(provider.check({}, {"connection": unknown, **dict.fromkeys(fields, unknown)})) == {}
        for key in fields:
            news = {"connection": {**CONN, "password": unknown}, **fields, key: unknown}
            assert failures(provider.check({}, news)) == {}, key
    grant = GrantProvider().check(
        {}, {"connection": CONN, "user": "a", "database": "d", "privileges": ["SELECT", unknown]}
    )
    assert failures(grant) == {}


def test_secrets_never_appear_in_check_failures() -> None:
    news = {"connection": {**CONN, "port": "x"}, "user": "bad user", "password": 5, "max_user_connections": "x"}
    text = " ".join(failures(UserProvider().check({}, news)).values())
    assert "Adm1n-Secret" not in text


def test_config_connection_satisfies_check() -> None:
    provider = DatabaseProvider()
    assert "connection" in failures(provider.check({}, {"database": "site"}))
    provider.configure(
        ConfigureRequest(
            Config(
                {"proj:sqlConnection": '{"mode": "direct", "host": "h", "port": 1, "user": "u", "password": "p"}'},
                "proj",
            )
        )
    )
    assert failures(provider.check({}, {"database": "site"})) == {}
    assert provider._spec({}).host == "h"


# -- diff -------------------------------------------------------------------------------------
def _outs(provider: Any, news: dict[str, Any]) -> dict[str, Any]:
    result = provider.check({}, news)
    assert failures(result) == {}
    return {**result.inputs, "__provider": "old-pickle"}


def test_provider_code_change_is_not_a_diff() -> None:
    for provider, news in (
        (DatabaseProvider(), {"connection": CONN, "database": "site"}),
        (UserProvider(), {"connection": CONN, "user": "app", "password": "pw"}),
        (GrantProvider(), {"connection": CONN, "user": "app", "database": "site", "privileges": ["ALL"]}),
    ):
        olds = _outs(provider, news)
        new_inputs = {**provider.check({}, news).inputs, "__provider": "new-pickle"}
        diff = provider.diff("id", olds, new_inputs)
        assert diff.changes is False and diff.replaces == []


@given(st.lists(st.sampled_from(sorted(DATABASE_LEVEL_PRIVILEGES)), min_size=1, max_size=6), st.randoms())
def test_privilege_spelling_is_never_a_diff(privileges: list[str], rnd: Any) -> None:
    provider = GrantProvider()
    base = {"connection": CONN, "user": "app", "database": "site"}
    olds = _outs(provider, {**base, "privileges": privileges})
    respelled = [p.lower() if rnd.random() < 0.5 else f"`{p}`" for p in privileges] + privileges[:1]
    rnd.shuffle(respelled)
    assert provider.diff("id", olds, provider.check({}, {**base, "privileges": respelled}).inputs).changes is False


def test_replacement_and_in_place_fields() -> None:
    db = DatabaseProvider()
    olds = _outs(db, {"connection": CONN, "database": "site"})
    assert db.diff("site", olds, db.check({}, {"connection": CONN, "database": "other"}).inputs).replaces == [
        "database"
    ]
    for change in ({"charset": "latin1", "collation": "latin1_bin"}, {"drop_on_delete": True}):
        diff = db.diff("site", olds, db.check({}, {"connection": CONN, "database": "site", **change}).inputs)
        assert diff.changes is True and diff.replaces == []
    moved = db.diff("site", olds, db.check({}, {"connection": {**CONN, "host": "db2"}, "database": "site"}).inputs)
    assert moved.changes is True and moved.replaces == []

    grant = GrantProvider()
    base = {"connection": CONN, "user": "app", "database": "site", "privileges": ["SELECT"]}
    olds = _outs(grant, base)
    for key, value in (("user", "b"), ("host", "10.%"), ("database", "d2"), ("table", "t")):
        assert grant.diff("id", olds, grant.check({}, {**base, key: value}).inputs).replaces == [key]
    in_place: list[tuple[str, Any]] = [("privileges", ["SELECT", "INSERT"]), ("grant_option", True)]
    for key, new_value in in_place:
        diff = grant.diff("id", olds, grant.check({}, {**base, key: new_value}).inputs)
        assert diff.changes is True and diff.replaces == []


@pytest.mark.parametrize("unknown", UNKNOWNS, ids=["string", "object"])
def test_unknown_new_values_diff_conservatively(unknown: Any) -> None:
    user = UserProvider()
    olds = _outs(user, {"connection": CONN, "user": "app", "password": "pw"})
    assert user.diff("id", olds, {**olds, "password": unknown}).replaces == []
    assert user.diff("id", olds, {**olds, "password": unknown}).changes is True
    assert user.diff("id", olds, {**olds, "user": unknown}).replaces == ["user"]
    assert user.diff("id", olds, {**olds, "connection": {**CONN, "password": unknown}}).replaces == []


def test_old_state_without_defaults_is_not_a_diff() -> None:
    """State written before a field existed (or by read) falls back to the same defaults."""
    db = DatabaseProvider()
    news = db.check({}, {"connection": CONN, "database": "site"}).inputs
    assert db.diff("site", {"connection": CONN, "database": "site"}, news).changes is False


# -- pickling ---------------------------------------------------------------------------------
def test_providers_pickle_by_reference_and_stay_small() -> None:
    pickles = {cls: serialize_provider(cls()) for cls in (DatabaseProvider, UserProvider, GrantProvider)}
    assert len(set(pickles.values())) == 3
    assert all(len(p) < 200 for p in pickles.values())
    configured = DatabaseProvider()
    configured.configure(ConfigureRequest(Config({"p:sqlConnection": {"password": "x"}}, "p")))
    assert serialize_provider(configured) == pickles[DatabaseProvider]  # configuration is never pickled
    assert DatabaseProvider.serialize_as_secret_always is False


# -- resources under mocks --------------------------------------------------------------------
class _Mocks(pulumi.runtime.Mocks):
    def __init__(self) -> None:
        self.created: list[pulumi.runtime.MockResourceArgs] = []

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        self.created.append(args)
        return f"{args.name}-id", dict(args.inputs)

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict[str, Any], list[tuple[str, str]] | None]:
        return {}, None


def test_resources_type_tokens_and_provider_by_reference() -> None:
    asyncio.set_event_loop(asyncio.new_event_loop())
    mocks = _Mocks()
    pulumi.runtime.set_mocks(mocks, project="flightdeck", stack="test", preview=False)
    from components.sql import (
        MySQLDatabase,
        MySQLDatabaseArgs,
        MySQLGrant,
        MySQLGrantArgs,
        MySQLUser,
        MySQLUserArgs,
    )

    @pulumi.runtime.test  # type: ignore[untyped-decorator]
    def build() -> Any:
        conn = pulumi.Output.secret(CONN)
        db = MySQLDatabase("blog-db", MySQLDatabaseArgs(database="blog", connection=conn))
        user = MySQLUser("blog-user", MySQLUserArgs(user="blog", password="pw", connection=conn))
        grant = MySQLGrant(
            "blog-grant", MySQLGrantArgs(user=user.user, database=db.database, privileges=["ALL"], connection=conn)
        )

        def verify(_: Any) -> None:
            assert {a.typ for a in mocks.created} == {
                "pulumi-python:dynamic/mysql:Database",
                "pulumi-python:dynamic/mysql:User",
                "pulumi-python:dynamic/mysql:Grant",
            }
            for created in mocks.created:
                assert len(created.inputs["__provider"]) < 200  # by reference, not by value
            by_type = {a.typ.rsplit(":", 1)[1]: a.inputs for a in mocks.created}
            assert by_type["Grant"]["user"] == "blog" and by_type["Grant"]["database"] == "blog"

        return pulumi.Output.all(db.urn, user.urn, grant.urn).apply(verify)

    build()


def test_secret_outputs_are_always_requested() -> None:
    from components.sql.resources import _with_secret_outputs

    merged = _with_secret_outputs(pulumi.ResourceOptions(protect=True), ["connection", "password"])
    assert merged.protect is True
    assert set(merged.additional_secret_outputs or []) == {"connection", "password"}


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=8,
)


@given(
    st.sampled_from([DatabaseProvider, UserProvider, GrantProvider]),
    st.dictionaries(
        st.sampled_from(
            [
                "connection",
                "database",
                "charset",
                "collation",
                "drop_on_delete",
                "user",
                "host",
                "password",
                "max_user_connections",
                "require_tls",
                "table",
                "privileges",
                "grant_option",
            ]
        ),
        json_values,
        max_size=8,
    ),
)
def test_check_and_diff_never_crash_on_garbage(cls: Any, news: dict[str, Any]) -> None:
    """A crash in check shows the user a traceback instead of a field-named message."""
    provider = cls()
    news = {**news, "connection": news.get("connection", {**CONN, "password": "Garbage-Secret-1"})}
    result = provider.check({}, news)
    for failure in result.failures:
        assert failure.reason.startswith(f"{failure.property}") and "Garbage-Secret-1" not in failure.reason
    provider.diff("id", result.inputs, result.inputs)
