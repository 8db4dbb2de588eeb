"""TLS for the admin connection (CA file, inline PEM, verification) and require_tls accounts."""

from __future__ import annotations

import ssl
from collections.abc import Callable
from typing import Any

import certifi
import pytest
from sql_support import can_login, checked, schemata

from components.sql.connection import discard_connection, get_connection, parse_connection
from components.sql.providers import DatabaseProvider, SQLProviderError, UserProvider
from components.sql.tls import opportunistic_context
from tools.mariadb_server import MariaDBServer

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]


def _conn(server: MariaDBServer, **tls: Any) -> dict[str, Any]:
    return {**server.info.as_connection_input(), "tls": {"enabled": True, **tls}}


def test_server_has_tls(mariadb_tls: MariaDBServer) -> None:
    assert mariadb_tls.query("SELECT @@have_ssl") == [("YES",)]


@pytest.mark.parametrize("ca_form", ["path", "pem"])
def test_verified_tls_admin_connection(
    mariadb_tls: MariaDBServer, sql_names: Callable[[str], str], ca_form: str
) -> None:
    ca = str(mariadb_tls.ca_file) if ca_form == "path" else mariadb_tls.ca_file.read_text()
    conn = _conn(mariadb_tls, ca=ca, verifyServerCert=True)
    name = sql_names("tls")
    DatabaseProvider().create(checked(DatabaseProvider(), {"connection": conn, "database": name}))
    assert name in schemata(mariadb_tls)
    with get_connection(parse_connection(conn)).cursor() as cur:
        cur.execute("SHOW SESSION STATUS LIKE 'Ssl_cipher'")
        row = cur.fetchone()
    assert row is not None and row[1], "the admin session must be encrypted"


def test_untrusted_server_certificate_is_refused_clearly(
    mariadb_tls: MariaDBServer, sql_names: Callable[[str], str]
) -> None:
    conn = _conn(mariadb_tls, verifyServerCert=True)  # system CAs only: our test CA is not trusted
    with pytest.raises(SQLProviderError) as err:
        DatabaseProvider().create(checked(DatabaseProvider(), {"connection": conn, "database": sql_names("x")}))
    message = str(err.value)
    assert f"mode=direct, host=127.0.0.1, port={mariadb_tls.port}" in message
    assert "CERTIFICATE_VERIFY_FAILED" in message or "certificate" in message.lower()
    assert mariadb_tls.admin_password not in message


def test_unverified_tls_still_encrypts(mariadb_tls: MariaDBServer) -> None:
    conn = _conn(mariadb_tls, verifyServerCert=False)
    with get_connection(parse_connection(conn)).cursor() as cur:
        cur.execute("SHOW SESSION STATUS LIKE 'Ssl_version'")
        row = cur.fetchone()
    assert row is not None and str(row[1]).startswith("TLS")


def test_without_tls_enabled_the_session_is_still_encrypted_when_the_server_offers_it(
    mariadb_tls: MariaDBServer,
) -> None:
    # TLS not asked for: offered opportunistically, unverified (docs/sql-providers.md), and every
    # connection shares the process's one context (components/sql/tls.py).
    spec = parse_connection(mariadb_tls.info.as_connection_input())
    assert not spec.tls.enabled
    for _ in range(2):
        discard_connection(spec)
        connection = get_connection(spec)
        with connection.cursor() as cur:
            cur.execute("SHOW SESSION STATUS LIKE 'Ssl_version'")
            row = cur.fetchone()
        assert row is not None and str(row[1]).startswith("TLS")
        assert connection.ctx is opportunistic_context()  # type: ignore[attr-defined]
    discard_connection(spec)


def test_a_ca_given_is_the_only_one_trusted(mariadb_tls: MariaDBServer, sql_names: Callable[[str], str]) -> None:
    # A public CA's certificate as tls.ca: the test server's own CA is not trusted through it.
    public_ca = ssl.create_default_context(cafile=certifi.where()).get_ca_certs(binary_form=True)[0]
    conn = _conn(mariadb_tls, ca=ssl.DER_cert_to_PEM_cert(public_ca), verifyServerCert=True)
    with pytest.raises(SQLProviderError) as err:
        DatabaseProvider().create(checked(DatabaseProvider(), {"connection": conn, "database": sql_names("x")}))
    assert "CERTIFICATE_VERIFY_FAILED" in str(err.value) or "certificate" in str(err.value).lower()


def test_require_tls_account(mariadb_tls: MariaDBServer, sql_names: Callable[[str], str]) -> None:
    admin = _conn(mariadb_tls, ca=str(mariadb_tls.ca_file))
    user = sql_names("sec")
    UserProvider().create(
        checked(UserProvider(), {"connection": admin, "user": user, "password": "tls-pw-1", "require_tls": True})
    )
    assert not can_login(mariadb_tls, user, "tls-pw-1")  # plain TCP is refused
    ctx = ssl.create_default_context(cafile=str(mariadb_tls.ca_file))
    with mariadb_tls.connect(user=user, password="tls-pw-1", ssl=ctx) as conn, conn.cursor() as cur:
        cur.execute("SELECT CURRENT_USER()")
        row = cur.fetchone()
    assert row is not None and str(row[0]).startswith(user)
