"""Privilege names: normalisation, validation and GRANT/REVOKE deltas (pure, no I/O).

Normalisation makes every spelling of the same privilege set compare equal, so a
no-op ``pulumi up`` never sees a diff (the pulumi-mysql complaint): case,
surrounding/inner whitespace, backticks, duplicates and order are ignored, and
``ALL`` is ``ALL PRIVILEGES``.  ``GRANT OPTION`` is not a privilege of the set:
it is carried separately (``grant_option``) because it is granted with
``WITH GRANT OPTION`` and revoked with its own ``REVOKE GRANT OPTION`` statement
(combining it with ``ALL PRIVILEGES ... ON db.*`` is invalid SQL, the
mariadb-operator bug).

Only database- and table-level privileges are accepted: a site account never
needs a global privilege such as SUPER, FILE or PROCESS.
"""

from __future__ import annotations

from collections.abc import Iterable

ALL = "ALL PRIVILEGES"
GRANT_OPTION = "GRANT OPTION"

# Valid at table level on MariaDB 10.6+ and MySQL 8.0 (DELETE HISTORY: MariaDB only).
TABLE_LEVEL_PRIVILEGES = frozenset(
    {
        "ALTER",
        "CREATE",
        "CREATE VIEW",
        "DELETE",
        "DELETE HISTORY",
        "DROP",
        "INDEX",
        "INSERT",
        "REFERENCES",
        "SELECT",
        "SHOW VIEW",
        "TRIGGER",
        "UPDATE",
    }
)
# Valid at database level (SHOW CREATE ROUTINE: MariaDB 11.3+ only).
DATABASE_LEVEL_PRIVILEGES = TABLE_LEVEL_PRIVILEGES | frozenset(
    {
        "ALTER ROUTINE",
        "CREATE ROUTINE",
        "CREATE TEMPORARY TABLES",
        "EVENT",
        "EXECUTE",
        "LOCK TABLES",
        "SHOW CREATE ROUTINE",
    }
)
KNOWN_PRIVILEGES = DATABASE_LEVEL_PRIVILEGES | {ALL}

_ALIASES = {"ALL": ALL, "DELETE VERSIONING ROWS": "DELETE HISTORY"}


def normalize_privilege(value: str) -> str:
    """One privilege in canonical spelling: upper case, single spaces, no backticks, aliases resolved."""
    text = " ".join(value.replace("`", " ").split()).upper()
    return _ALIASES.get(text, text)


def split_privileges(values: Iterable[str]) -> tuple[frozenset[str], bool]:
    """(canonical privilege set without GRANT OPTION, whether GRANT OPTION was listed).

    ``ALL PRIVILEGES`` absorbs every other privilege: the server grants them all anyway.
    """
    privileges: set[str] = set()
    grant_option = False
    for value in values:
        canonical = normalize_privilege(value)
        if canonical == GRANT_OPTION:
            grant_option = True
        elif canonical:
            privileges.add(canonical)
    if ALL in privileges:
        privileges = {ALL}
    return frozenset(privileges), grant_option


def normalize_privileges(values: Iterable[str]) -> frozenset[str]:
    """Canonical privilege set; ``GRANT OPTION`` is dropped (see :func:`split_privileges`)."""
    return split_privileges(values)[0]


def sorted_privileges(privileges: Iterable[str]) -> list[str]:
    """Deterministic list form for state and SQL (ALL PRIVILEGES first, then alphabetical)."""
    return sorted(set(privileges), key=lambda p: (p != ALL, p))


def validate_privileges(values: object, table: str = "*", field: str = "privileges") -> list[str]:
    """Error messages (each naming the field and the offending entry) for a privilege list."""
    if isinstance(values, str) or not isinstance(values, (list, tuple)):
        return [f"{field}: must be a list of privilege names, e.g. ['SELECT', 'INSERT']"]
    errors: list[str] = []
    allowed = DATABASE_LEVEL_PRIVILEGES if table == "*" else TABLE_LEVEL_PRIVILEGES
    for index, value in enumerate(values):
        if not isinstance(value, str):
            errors.append(f"{field}[{index}]: must be a string")
            continue
        canonical = normalize_privilege(value)
        if canonical in (ALL, GRANT_OPTION) or canonical in allowed:
            continue
        if canonical in DATABASE_LEVEL_PRIVILEGES:
            errors.append(f"{field}[{index}]: {canonical!r} is a database-level privilege; it needs table '*'")
        elif "(" in value:
            errors.append(f"{field}[{index}]: column-level privileges are not supported")
        else:
            shown = canonical if canonical.isprintable() and len(canonical) <= 40 else "(unprintable or too long)"
            errors.append(
                f"{field}[{index}]: unknown privilege {shown!r}; known: {', '.join(sorted(KNOWN_PRIVILEGES))}"
            )
    privileges, _ = split_privileges(v for v in values if isinstance(v, str))
    if not privileges and not errors:
        errors.append(f"{field}: must name at least one privilege (GRANT OPTION alone grants nothing)")
    return errors


# What ALL PRIVILEGES means at database level on MariaDB 10.6-11.2; the providers read the
# real set from the server (mysql.db columns) and pass it in.
DEFAULT_ALL_EXPANSION = DATABASE_LEVEL_PRIVILEGES - {"SHOW CREATE ROUTINE"}


def privilege_delta(
    old: Iterable[str], new: Iterable[str], all_expansion: Iterable[str] = DEFAULT_ALL_EXPANSION
) -> tuple[frozenset[str], frozenset[str]]:
    """(to_grant, to_revoke) that turn ``old`` into ``new`` without a gap in access.

    ``all_expansion`` is what ``ALL PRIVILEGES`` means on this server at this level
    (MariaDB has DELETE HISTORY, MySQL does not), needed to step down from ALL:
    instead of ``REVOKE ALL`` + ``GRANT SELECT`` (which leaves a window with no
    access) we revoke exactly the privileges that go.  Nothing in ``new`` is
    ever revoked; apply the grants before the revokes.
    """
    old_set, new_set = normalize_privileges(old), normalize_privileges(new)
    expansion = normalize_privileges(all_expansion) - {ALL}
    if ALL in new_set:
        return (frozenset({ALL}) if ALL not in old_set else frozenset()), frozenset()
    if ALL in old_set:
        return new_set - expansion, expansion - new_set
    return new_set - old_set, old_set - new_set


# -- mapping the server's privilege tables ------------------------------------------------------
_DB_COLUMN_SPECIAL = {"CREATE TMP TABLE": "CREATE TEMPORARY TABLES"}


def privilege_from_db_column(column: str) -> str | None:
    """``mysql.db`` column (``Select_priv``, ``Create_tmp_table_priv``...) → privilege name.

    ``Grant_priv`` maps to ``GRANT OPTION``; anything not ending in ``_priv`` → None.
    """
    if not column.lower().endswith("_priv"):
        return None
    words = column[: -len("_priv")].replace("_", " ")
    name = normalize_privilege(words)
    if name == "GRANT":
        return GRANT_OPTION
    return _DB_COLUMN_SPECIAL.get(name, name)


def privilege_from_table_priv(item: str) -> str:
    """``mysql.tables_priv.Table_priv`` SET member (``Show view``, ``Grant``...) → privilege name."""
    name = normalize_privilege(item)
    return GRANT_OPTION if name == "GRANT" else name


def parse_set_definition(column_type: str) -> list[str]:
    """Members of a ``set('a','b',...)`` column type as reported by SHOW COLUMNS."""
    inner = column_type.strip()
    start, end = inner.find("("), inner.rfind(")")
    if start < 0 or end < start:
        return []
    return [part.strip().strip("'") for part in inner[start + 1 : end].split(",") if part.strip()]
