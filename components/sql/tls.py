"""TLS for the admin connection: the setting, and one SSL context per setting per process.

Building an ``ssl.SSLContext`` loads the system CA bundle: ~35 ms of CPU, which PyMySQL spent
on every connection, also when TLS is not asked for (it then offers TLS opportunistically,
without verification). That was 14 % of the dynamic-provider host's samples in a refresh of 100
databases (bench/RESULTS.md). A context is safe to share between threads and connections, so
each distinct setting builds one, once.
"""

from __future__ import annotations

import functools
import ssl
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class TlsSpec:
    enabled: bool = False
    ca: str | None = field(default=None, repr=False)
    verify_server_cert: bool = True


def verified_context(tls: TlsSpec) -> ssl.SSLContext:
    """The context for ``tls.enabled``: TLS required, the server verified against ``tls.ca`` alone
    (PEM text or a file, read on every call so that a replaced CA file takes effect) or, without
    it, the system CAs; unless ``verify_server_cert`` is off."""
    pem = tls.ca if tls.ca is None or "-----BEGIN" in tls.ca else Path(tls.ca).read_text(encoding="utf-8")
    return _verified_context(pem, tls.verify_server_cert)


@functools.lru_cache(maxsize=32)
def _verified_context(ca_pem: str | None, verify_server_cert: bool) -> ssl.SSLContext:
    # With a CA given, only that CA is trusted (docs/sql-providers.md); the system CAs otherwise.
    context = ssl.create_default_context(cadata=ca_pem)
    if not verify_server_cert:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


@functools.cache
def opportunistic_context() -> ssl.SSLContext:
    """What PyMySQL uses when TLS is not required: encrypt if the server offers it, verify nothing
    (PyMySQL 1.2 ``Connection._create_ssl_ctx({})``, without loading CAs that nothing checks)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.verify_flags &= ~ssl.VERIFY_X509_STRICT
    return context
