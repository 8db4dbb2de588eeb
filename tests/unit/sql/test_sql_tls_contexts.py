"""One SSL context per TLS setting per process, and PyMySQL still uses the one it is given."""

from __future__ import annotations

import ssl
from pathlib import Path

import certifi
import pytest

from components.sql.connection import _Connection
from components.sql.tls import TlsSpec, opportunistic_context, verified_context


def _pem_certificates(count: int) -> list[str]:
    """Real CA certificates in PEM (these tests never connect): the first ones of certifi's bundle."""
    bundle = ssl.create_default_context(cafile=certifi.where())
    return [ssl.DER_cert_to_PEM_cert(der) for der in bundle.get_ca_certs(binary_form=True)[:count]]


def test_the_same_setting_shares_one_context() -> None:
    first, second = _pem_certificates(2)
    assert verified_context(TlsSpec(enabled=True, ca=first)) is verified_context(TlsSpec(enabled=True, ca=first))
    assert verified_context(TlsSpec(enabled=True)) is verified_context(TlsSpec(enabled=True))
    assert verified_context(TlsSpec(enabled=True, ca=first)) is not verified_context(TlsSpec(enabled=True, ca=second))
    unverified = verified_context(TlsSpec(enabled=True, verify_server_cert=False))
    assert unverified is not verified_context(TlsSpec(enabled=True))
    assert (unverified.verify_mode, unverified.check_hostname) == (ssl.CERT_NONE, False)
    verified = verified_context(TlsSpec(enabled=True, ca=first))
    assert (verified.verify_mode, verified.check_hostname) == (ssl.CERT_REQUIRED, True)
    assert len(verified.get_ca_certs()) == 1


def test_a_replaced_ca_file_takes_effect(tmp_path: Path) -> None:
    first, second = _pem_certificates(2)
    ca_file = tmp_path / "ca.pem"
    ca_file.write_text(first)
    before = verified_context(TlsSpec(enabled=True, ca=str(ca_file)))
    assert verified_context(TlsSpec(enabled=True, ca=str(ca_file))) is before
    ca_file.write_text(second)
    after = verified_context(TlsSpec(enabled=True, ca=str(ca_file)))
    assert after is not before
    assert after.get_ca_certs() != before.get_ca_certs()


def test_a_missing_ca_file_is_an_os_error(tmp_path: Path) -> None:
    # connection._open reports it as "cannot connect ... FileNotFoundError", naming no secret.
    with pytest.raises(FileNotFoundError):
        verified_context(TlsSpec(enabled=True, ca=str(tmp_path / "missing.pem")))


def test_opportunistic_tls_verifies_nothing_and_loads_no_bundle() -> None:
    context = opportunistic_context()
    assert context is opportunistic_context()
    assert (context.verify_mode, context.check_hostname) == (ssl.CERT_NONE, False)
    assert context.get_ca_certs() == []


def test_pymysql_offers_tls_with_the_shared_context_when_tls_is_not_required() -> None:
    # The contract _Connection relies on (PyMySQL 1.2): no `ssl` argument means "offer TLS if
    # the server does, do not require it", through _create_ssl_ctx({}).
    connection = _Connection(host="127.0.0.1", port=9, defer_connect=True)
    assert connection.ctx is opportunistic_context()
    assert (connection.ssl, connection._ssl_required) == (True, False)


def test_pymysql_requires_tls_with_the_given_context() -> None:
    context = verified_context(TlsSpec(enabled=True))
    connection = _Connection(host="127.0.0.1", port=9, ssl=context, defer_connect=True)
    assert connection.ctx is context
    assert (connection.ssl, connection._ssl_required) == (True, True)
