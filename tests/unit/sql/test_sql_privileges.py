"""privileges.py: normalisation, validation and gap-free deltas (pure, property-tested)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from components.sql.privileges import (
    ALL,
    DATABASE_LEVEL_PRIVILEGES,
    GRANT_OPTION,
    TABLE_LEVEL_PRIVILEGES,
    normalize_privileges,
    parse_set_definition,
    privilege_delta,
    privilege_from_db_column,
    privilege_from_table_priv,
    sorted_privileges,
    split_privileges,
    validate_privileges,
)

# What ALL means on MariaDB 10.11 at database level.
EXPANSION = frozenset(DATABASE_LEVEL_PRIVILEGES - {"SHOW CREATE ROUTINE"})
PRIVS = sorted(EXPANSION)


def spellings(name: str) -> st.SearchStrategy[str]:
    """Ways people write the same privilege: case, spacing, backticks."""
    return st.sampled_from([name, name.lower(), name.title(), f" {name} ", f"`{name}`", name.replace(" ", "  ")])


privilege_lists = st.lists(st.sampled_from([*PRIVS, ALL, "ALL"]), max_size=8)


@given(st.lists(st.sampled_from(PRIVS), min_size=1, max_size=8))
def test_normalisation_ignores_case_order_duplicates_and_backticks(names: list[str]) -> None:
    written = [n.lower() if i % 2 else f"`{n}`" for i, n in enumerate(names)] + names[:2]
    shuffled = list(reversed(written))
    assert normalize_privileges(written) == normalize_privileges(shuffled) == frozenset(names)


@given(st.sampled_from(PRIVS).flatmap(spellings))
def test_every_spelling_normalises_to_the_keyword(text: str) -> None:
    assert normalize_privileges([text]) <= EXPANSION


@pytest.mark.parametrize("spelling", [["ALL"], ["all privileges"], ["ALL", "SELECT"], ["`ALL`"], [" All  Privileges "]])
def test_all_is_all_privileges(spelling: list[str]) -> None:
    assert normalize_privileges(spelling) == {ALL}


def test_grant_option_is_carried_separately() -> None:
    assert split_privileges(["SELECT", "grant option", "Grant  Option"]) == (frozenset({"SELECT"}), True)
    assert split_privileges(["SELECT"]) == (frozenset({"SELECT"}), False)
    assert GRANT_OPTION not in normalize_privileges(["ALL", "GRANT OPTION"])


def test_aliases() -> None:
    assert normalize_privileges(["delete versioning rows"]) == {"DELETE HISTORY"}


def test_sorted_form_is_stable() -> None:
    assert sorted_privileges({"UPDATE", ALL, "INSERT"}) == [ALL, "INSERT", "UPDATE"]


def test_validation_names_field_and_index() -> None:
    assert validate_privileges(["SELECT", "all", "Grant Option"]) == []
    errors = validate_privileges(["SELECT", "SUPER", 5, "EXECUTE"], table="posts")
    assert errors[0].startswith("privileges[1]: unknown privilege 'SUPER'")
    assert errors[1] == "privileges[2]: must be a string"
    assert errors[2].startswith("privileges[3]: 'EXECUTE' is a database-level privilege")
    assert validate_privileges("SELECT")[0].startswith("privileges: must be a list")
    assert "at least one" in validate_privileges([])[0]
    assert "at least one" in validate_privileges(["GRANT OPTION"])[0]
    assert "column-level" in validate_privileges(["SELECT (id)"])[0]
    assert validate_privileges(["FILE"], field="grants[0].privileges")[0].startswith("grants[0].privileges[0]:")


def test_hostile_privilege_text_is_not_echoed_raw() -> None:
    error = validate_privileges(["SELECT; DROP DATABASE x\x00" + "A" * 100])[0]
    assert "\x00" not in error and "unprintable or too long" in error


def _apply(held: frozenset[str], grant: frozenset[str], revoke: frozenset[str]) -> frozenset[str]:
    """What the server holds after GRANT then REVOKE (ALL expanded to its members)."""

    def expand(privs: frozenset[str]) -> frozenset[str]:
        return (EXPANSION if ALL in privs else frozenset()) | (privs - {ALL})

    return (expand(held) | expand(grant)) - expand(revoke)


@given(privilege_lists, privilege_lists)
def test_delta_reaches_the_target_and_never_revokes_what_stays(old: list[str], new: list[str]) -> None:
    to_grant, to_revoke = privilege_delta(old, new, EXPANSION)
    new_set = normalize_privileges(new)
    kept = EXPANSION if ALL in new_set else new_set
    assert not (to_revoke & kept), "a privilege that stays must never be revoked"
    assert ALL not in to_revoke, "stepping down from ALL revokes named privileges only"
    result = _apply(normalize_privileges(old), to_grant, to_revoke)
    assert result == kept


@given(privilege_lists)
def test_no_change_means_no_statements(privs: list[str]) -> None:
    assert privilege_delta(privs, list(reversed(privs)), EXPANSION) == (frozenset(), frozenset())


def test_stepping_down_from_all() -> None:
    grant, revoke = privilege_delta([ALL], ["SELECT", "INSERT"], EXPANSION)
    assert grant == frozenset() and revoke == EXPANSION - {"SELECT", "INSERT"}


def test_server_table_mapping() -> None:
    assert privilege_from_db_column("Select_priv") == "SELECT"
    assert privilege_from_db_column("Create_tmp_table_priv") == "CREATE TEMPORARY TABLES"
    assert privilege_from_db_column("Delete_history_priv") == "DELETE HISTORY"
    assert privilege_from_db_column("Grant_priv") == GRANT_OPTION
    assert privilege_from_db_column("Host") is None
    assert privilege_from_table_priv("Show view") == "SHOW VIEW"
    assert privilege_from_table_priv("Delete versioning rows") == "DELETE HISTORY"
    assert privilege_from_table_priv("Grant") == GRANT_OPTION
    members = parse_set_definition("set('Select','Insert','Create View','Delete versioning rows')")
    assert [privilege_from_table_priv(m) for m in members] == ["SELECT", "INSERT", "CREATE VIEW", "DELETE HISTORY"]
    assert {privilege_from_table_priv(m) for m in members} <= TABLE_LEVEL_PRIVILEGES
