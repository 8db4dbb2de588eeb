"""connection.py without a server: parsing, secret hygiene, pod/port resolution, the loopback forwarder."""

from __future__ import annotations

import socket
import threading
from types import SimpleNamespace
from typing import Any

import pytest
from pulumi.output import Unknown
from pulumi.runtime.rpc import UNKNOWN, wrap_rpc_secret

from components.sql.connection import (
    ConnectionConfigError,
    LocalForwarder,
    connection_errors,
    parse_connection,
    pick_pod,
    redact,
    resolve_target_port,
)

BASE = {"mode": "direct", "host": "db.internal", "port": 3306, "user": "root", "password": "Sup3r-Secret!"}


def test_parse_defaults_and_secret_free_repr() -> None:
    spec = parse_connection(BASE)
    assert (spec.mode, spec.host, spec.port, spec.tls.enabled) == ("direct", "db.internal", 3306, False)
    assert "Sup3r-Secret!" not in repr(spec) and "Sup3r-Secret!" not in spec.describe()
    assert spec.describe() == "mode=direct, host=db.internal, port=3306"


def test_parse_port_forward_and_tls() -> None:
    spec = parse_connection(
        {
            **BASE,
            "mode": "portForward",
            "host": "mariadb-primary",
            "namespace": "db",
            "kubeconfig": "apiVersion: v1\nusers: [{user: {token: tok-abc}}]",
            "tls": {"enabled": True, "ca": "-----BEGIN CERTIFICATE-----", "verifyServerCert": False},
        }
    )
    assert spec.describe().startswith("mode=portForward, service=mariadb-primary, namespace=db, port=3306")
    assert "tok-abc" not in repr(spec) and "BEGIN" not in repr(spec)
    assert spec.tls.enabled and not spec.tls.verify_server_cert
    assert "tok-abc" in spec.secrets()[1]


def test_secret_wrapped_inputs_are_accepted() -> None:
    spec = parse_connection(wrap_rpc_secret({**BASE, "password": wrap_rpc_secret("pw")}))
    assert spec.password == "pw"


def test_cache_key_changes_with_credentials() -> None:
    assert parse_connection(BASE).cache_key() != parse_connection({**BASE, "password": "other"}).cache_key()
    assert parse_connection(BASE).cache_key() == parse_connection(dict(BASE)).cache_key()


@pytest.mark.parametrize("unknown", [UNKNOWN, Unknown()])  # type: ignore[no-untyped-call]
def test_unknowns_are_tolerated_by_validation_and_refused_by_parsing(unknown: Any) -> None:
    assert connection_errors(unknown) == []
    assert connection_errors({**BASE, "host": unknown, "password": unknown}) == []
    with pytest.raises(ConnectionConfigError, match="not known yet"):
        parse_connection({**BASE, "password": unknown})


def test_errors_name_fields_and_never_echo_values() -> None:
    bad = {**BASE, "port": "3306; DROP", "password": 123, "tls": {"enabled": "yes"}, "connectTimeout": 0}
    errors = connection_errors(bad)
    assert all(prop == "connection" for prop, _ in errors)
    messages = [m for _, m in errors]
    assert messages == [
        "connection.port: must be an integer between 1 and 65535",
        "connection.password: must be a string",
        "connection.tls.enabled: must be a boolean",
        "connection.connectTimeout: must be an integer number of seconds between 1 and 300",
    ]
    with pytest.raises(ConnectionConfigError) as err:
        parse_connection({**BASE, "port": 0})
    assert "Sup3r-Secret!" not in str(err.value)
    with pytest.raises(ConnectionConfigError, match="no connection given"):
        parse_connection(None)


def test_redact_covers_escaped_forms() -> None:
    secret = "p'w\"x\\y"
    text = f"near 'SELECT {secret!r}' and {secret} and {secret.replace(chr(39), chr(92) + chr(39))}"
    cleaned = redact(text, [secret])
    assert secret not in cleaned and repr(secret)[1:-1] not in cleaned


def _pod(name: str, ready: bool, phase: str = "Running", deleting: bool = False, ports: Any = None) -> SimpleNamespace:
    return SimpleNamespace(
        metadata=SimpleNamespace(name=name, deletion_timestamp="now" if deleting else None),
        status=SimpleNamespace(
            phase=phase, conditions=[SimpleNamespace(type="Ready", status="True" if ready else "False")]
        ),
        spec=SimpleNamespace(
            containers=[SimpleNamespace(ports=ports or [SimpleNamespace(name="mysql", container_port=3306)])]
        ),
    )


def test_pick_pod_prefers_ready_non_terminating() -> None:
    pods = [_pod("db-2", True, deleting=True), _pod("db-1", False), _pod("db-0", True), _pod("db-3", True, "Pending")]
    chosen = pick_pod(pods)
    assert chosen is not None and chosen.metadata.name == "db-0"
    assert pick_pod([_pod("db-1", False)]) is None


def test_target_port_resolution() -> None:
    pod = _pod("db-0", True)
    service = SimpleNamespace(
        metadata=SimpleNamespace(name="primary"),
        spec=SimpleNamespace(ports=[SimpleNamespace(port=3306, target_port="mysql")]),
    )
    assert resolve_target_port(service, 3306, pod) == 3306
    numeric = SimpleNamespace(
        metadata=SimpleNamespace(name="primary"),
        spec=SimpleNamespace(ports=[SimpleNamespace(port=3306, target_port=13306)]),
    )
    assert resolve_target_port(numeric, 3306, pod) == 13306
    with pytest.raises(Exception, match="no port 3307"):
        resolve_target_port(service, 3307, pod)


@pytest.mark.timeout(30)
def test_local_forwarder_pumps_both_ways_per_connection() -> None:
    """Each accepted client gets its own stream from the opener; bytes flow both ways."""
    echo = socket.socket()
    echo.bind(("127.0.0.1", 0))
    echo.listen(4)

    def serve() -> None:
        for _ in range(2):
            conn, _ = echo.accept()
            with conn:
                while data := conn.recv(1024):
                    conn.sendall(data.upper())

    threading.Thread(target=serve, daemon=True).start()
    opened: list[int] = []

    def opener() -> socket.socket:
        opened.append(1)
        return socket.create_connection(echo.getsockname())

    forwarder = LocalForwarder(opener, "test")
    try:
        for word in (b"hello", b"again"):
            with socket.create_connection(("127.0.0.1", forwarder.port), timeout=5) as client:
                client.sendall(word)
                assert client.recv(1024) == word.upper()
        assert len(opened) == 2
    finally:
        forwarder.close()
        echo.close()


@pytest.mark.timeout(30)
def test_local_forwarder_reports_opener_failures() -> None:
    def opener() -> socket.socket:
        raise RuntimeError("no Ready pod behind service db/primary")

    forwarder = LocalForwarder(opener, "test")
    try:
        with socket.create_connection(("127.0.0.1", forwarder.port), timeout=5) as client:
            assert client.recv(10) == b""  # closed at once
        assert forwarder.last_error is not None and "no Ready pod" in forwarder.last_error
    finally:
        forwarder.close()


def test_plain_gives_back_whole_numbers_as_int() -> None:
    # The engine sends every number as a double; SQL builders require real ints.
    from components.sql.connection import plain

    assert plain({"port": 3306.0, "limits": [0.0, 2.5], "flag": True}) == {
        "port": 3306,
        "limits": [0, 2.5],
        "flag": True,
    }
    assert type(plain(0.0)) is int
