"""MySQL/MariaDB databases, users and grants as Pulumi dynamic resources.

Pure modules (no I/O): :mod:`.identifiers`, :mod:`.privileges`, :mod:`.statements`.
I/O edge: :mod:`.connection` (its TLS contexts: :mod:`.tls`).  Providers: :mod:`.providers`.
Resources: :mod:`.resources`.
Importing this package has no side effects (no config read, no resource created).
"""

from .connection import (
    ConnectionConfigError,
    ConnectionSpec,
    SQLConnectionError,
    parse_connection,
)
from .identifiers import (
    quote_identifier,
    validate_charset,
    validate_collation,
    validate_database_name,
    validate_host,
    validate_table,
    validate_user_name,
)
from .privileges import normalize_privileges, privilege_delta, validate_privileges
from .providers import DatabaseProvider, GrantProvider, SQLProviderError, UserProvider
from .resources import (
    MySQLDatabase,
    MySQLDatabaseArgs,
    MySQLGrant,
    MySQLGrantArgs,
    MySQLUser,
    MySQLUserArgs,
)

__all__ = [
    "ConnectionConfigError",
    "ConnectionSpec",
    "DatabaseProvider",
    "GrantProvider",
    "MySQLDatabase",
    "MySQLDatabaseArgs",
    "MySQLGrant",
    "MySQLGrantArgs",
    "MySQLUser",
    "MySQLUserArgs",
    "SQLConnectionError",
    "SQLProviderError",
    "UserProvider",
    "normalize_privileges",
    "parse_connection",
    "privilege_delta",
    "quote_identifier",
    "validate_charset",
    "validate_collation",
    "validate_database_name",
    "validate_host",
    "validate_privileges",
    "validate_table",
    "validate_user_name",
]
