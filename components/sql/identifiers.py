"""Validation and quoting of MySQL/MariaDB identifiers (pure, no I/O).

Two layers, on purpose:

* **Validation** (``validate_*``) is a *policy*: it rejects anything a hosting
  platform has no business naming a database or account (quotes, backticks,
  ``;``, whitespace, control and format characters, characters outside the Basic
  Multilingual Plane that MySQL identifiers cannot hold, ``@`` which would make
  resource ids ambiguous, ``%``/``\\`` which are wildcard/escape characters in
  GRANT, over-long names, and the names reserved for the server's own schemas
  and for the server's and mariadb-operator's accounts).  Each returns
  an error message that starts with the field name, or ``None`` when valid, so the
  stack-config model and the providers' ``check`` report the same text.
* **Quoting** (``quote_identifier``) is *total*: it is correct for any string the
  server itself accepts, so even a name that bypassed validation cannot break out
  of its backticks.  Values (user names, hosts, passwords) never go through here;
  they are sent as query parameters.

Length limits are the portable ones: 64 characters for databases and tables,
32 for user names (MySQL 8.0's limit; MariaDB allows 80), 255 for hosts (MySQL
8.0.17+, MariaDB 10.6+).
"""

from __future__ import annotations

import unicodedata

MAX_DATABASE_NAME = 64
MAX_TABLE_NAME = 64
MAX_USER_NAME = 32
MAX_HOST = 255
MAX_CHARSET = 32
MAX_COLLATION = 64

# Names that belong to the server or to mariadb-operator. Managing one would let a config entry
# adopt (and reset the password of) an account with ALL PRIVILEGES, drop it when the site goes,
# or drop one of the server's own schemas. Compared case-insensitively, whatever the host.
RESERVED_DATABASES = frozenset({"mysql", "information_schema", "performance_schema", "sys"})
RESERVED_USERS = frozenset(
    {
        "root",  # the admin account (mariadb-operator's root, Galera's SST user)
        "mysql",  # MariaDB >= 10.4: the unix_socket maintenance account, ALL PRIVILEGES WITH GRANT OPTION
        "mariadb.sys",  # MariaDB >= 10.4: definer of mysql.user; mariadb-operator grants it on mysql.global_priv
        "mysql.sys",  # MySQL 8 system accounts
        "mysql.session",
        "mysql.infoschema",
        "public",  # MariaDB >= 10.11: the PUBLIC role
        "healthcheck",  # the official mariadb image's healthcheck.sh account
        "repl",  # mariadb-operator's replication account (pkg/controller/replication/user_sql.go)
        "mariadb-operator",  # mariadb-operator's agent and MaxScale admin user name
    }
)
# Every other account of those families (e.g. a future mysql.* or mariadb.* system account).
RESERVED_USER_PREFIXES = ("mysql.", "mariadb.")

_NAME_PUNCTUATION = frozenset("_$-")
_USER_PUNCTUATION = frozenset("_$-.")
_HOST_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_%:/")
_CHARSET_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789")
_COLLATION_CHARS = _CHARSET_CHARS | {"_"}


def _describe(ch: str) -> str:
    name = unicodedata.name(ch, "")
    shown = repr(ch) if ch.isprintable() else "non-printable"
    return f"U+{ord(ch):04X} {shown}{' ' + name if name else ''}"


def _common(value: object, field: str, max_len: int) -> tuple[str | None, str]:
    if not isinstance(value, str):
        return f"{field}: must be a string, got {type(value).__name__}", ""
    if value == "":
        return f"{field}: must not be empty", ""
    if len(value) > max_len:
        return f"{field}: must be at most {max_len} characters (got {len(value)})", ""
    return None, value


def _name_error(value: object, field: str, max_len: int, punctuation: frozenset[str]) -> str | None:
    err, text = _common(value, field, max_len)
    if err:
        return err
    for ch in text:
        if ch in punctuation:
            continue
        if ord(ch) > 0xFFFF:
            return f"{field}: contains {_describe(ch)}; MySQL identifiers hold only Basic Multilingual Plane characters"
        if not ch.isalnum():
            allowed = "".join(sorted(punctuation))
            return f"{field}: contains disallowed character {_describe(ch)}; use letters, digits and {allowed!r}"
    return None


def validate_database_name(value: object, field: str = "database") -> str | None:
    """Error message for an invalid database name, else None."""
    err = _name_error(value, field, MAX_DATABASE_NAME, _NAME_PUNCTUATION)
    if err is None and isinstance(value, str) and is_reserved_database(value):
        return f"{field}: {value!r} is a system schema of the server (reserved); flightdeck never manages it"
    return err


def validate_table(value: object, field: str = "table") -> str | None:
    """Error message for an invalid table name (``*`` means every table), else None."""
    if value == "*":
        return None
    return _name_error(value, field, MAX_TABLE_NAME, _NAME_PUNCTUATION)


def validate_account_syntax(value: object, field: str = "user") -> str | None:
    """Error message for a user name no server accepts or quoting could not carry, else None.

    Syntax only: the admin account a connection logs in with is normally a reserved one (root).
    """
    return _name_error(value, field, MAX_USER_NAME, _USER_PUNCTUATION)


def is_reserved_user(name: str) -> bool:
    lowered = name.lower()
    return lowered in RESERVED_USERS or lowered.startswith(RESERVED_USER_PREFIXES)


def is_reserved_database(name: str) -> bool:
    return name.lower() in RESERVED_DATABASES


def validate_user_name(value: object, field: str = "user") -> str | None:
    """Error message for an invalid or reserved account user name, else None."""
    err = validate_account_syntax(value, field)
    if err is None and isinstance(value, str) and is_reserved_user(value):
        return (
            f"{field}: {value!r} is an account of the server or of mariadb-operator (reserved); "
            "flightdeck never manages, adopts or drops it"
        )
    return err


def validate_host(value: object, field: str = "host") -> str | None:
    """Error message for an invalid account host pattern, else None.

    Accepts ``%``, ``localhost``, host names, IPv4/IPv6 addresses, ``%``/``_``
    wildcards and ``address/netmask`` forms.
    """
    err, text = _common(value, field, MAX_HOST)
    if err:
        return err
    for ch in text:
        if ch not in _HOST_CHARS:
            return f"{field}: contains disallowed character {_describe(ch)}; use letters, digits and '.-_%:/'"
    return None


def validate_charset(value: object, field: str = "charset") -> str | None:
    err, text = _common(value, field, MAX_CHARSET)
    if err:
        return err
    if any(ch not in _CHARSET_CHARS for ch in text.lower()):
        return f"{field}: must consist of letters and digits (e.g. 'utf8mb4')"
    return None


def validate_collation(value: object, field: str = "collation") -> str | None:
    err, text = _common(value, field, MAX_COLLATION)
    if err:
        return err
    if any(ch not in _COLLATION_CHARS for ch in text.lower()):
        return f"{field}: must consist of letters, digits and '_' (e.g. 'utf8mb4_unicode_ci')"
    return None


# Both servers report the 3-byte UTF-8 charset as utf8mb3 (MariaDB 10.6+, MySQL 8.0.30+);
# normalising the alias avoids a permanent diff after every refresh.
def normalize_charset(value: str) -> str:
    lowered = value.strip().lower()
    return "utf8mb3" if lowered == "utf8" else lowered


def normalize_collation(value: str) -> str:
    lowered = value.strip().lower()
    return "utf8mb3" + lowered[4:] if lowered.startswith("utf8_") else lowered


_KNOWN_CHARSET_PREFIXES = ("utf8mb4", "utf8mb3", "latin1", "ascii", "binary", "utf16le", "utf16", "utf32", "ucs2")


def collation_charset_mismatch(charset: str, collation: str) -> str | None:
    """Error when the collation visibly belongs to a different charset, else None."""
    cs, coll = normalize_charset(charset), normalize_collation(collation)
    for prefix in _KNOWN_CHARSET_PREFIXES:
        if coll == prefix or coll.startswith(prefix + "_"):
            if prefix != cs:
                return f"collation: {collation!r} belongs to charset {prefix!r}, not {charset!r}"
            return None
    return None


def quote_identifier(name: str) -> str:
    """Backtick-quote one identifier for SQL text; correct for every name the server accepts.

    Raises ValueError for an empty name or a NUL character, which no server accepts
    and which some drivers would truncate at.
    """
    if not isinstance(name, str) or name == "":
        raise ValueError("identifier must be a non-empty string")
    if "\x00" in name:
        raise ValueError("identifier must not contain NUL")
    return "`" + name.replace("`", "``") + "`"


def escape_grant_database(name: str) -> str:
    """Escape ``_``, ``%`` and ``\\`` for a database-level GRANT/REVOKE.

    In ``GRANT ... ON `db`.*`` the database name is a LIKE pattern, so a grant on
    ``wp_blog`` would also match ``wp-blog`` -- another tenant's database.  Escaped,
    it matches exactly one name.  (Table-level grants take the name literally and
    must not be escaped.)
    """
    return name.replace("\\", "\\\\").replace("_", "\\_").replace("%", "\\%")


def unescape_grant_database(pattern: str) -> str:
    out: list[str] = []
    escaped = False
    for ch in pattern:
        if escaped:
            out.append(ch)
            escaped = False
        elif ch == "\\":
            escaped = True
        else:
            out.append(ch)
    return "".join(out)


def format_account(user: str, host: str) -> str:
    """Human-readable ``'user'@'host'`` for logs and errors (never for SQL text)."""
    return f"'{user}'@'{host}'"


# Resource ids follow pulumi-mysql's import ids so `pulumi import` habits carry over.
# '@' is rejected in user names and database names and never appears in a host pattern.
def user_id(user: str, host: str) -> str:
    return f"{user}@{host}"


def grant_id(user: str, host: str, database: str, table: str) -> str:
    return f"{user}@{host}@{database}@{table}"


def parse_user_id(value: str) -> tuple[str, str]:
    user, sep, host = value.partition("@")
    if not sep or not user or not host:
        raise ValueError("a user id has the form 'user@host'")
    return user, host


def parse_grant_id(value: str) -> tuple[str, str, str, str]:
    parts = value.split("@")
    if len(parts) != 4 or not all(parts):
        raise ValueError("a grant id has the form 'user@host@database@table'")
    return parts[0], parts[1], parts[2], parts[3]
