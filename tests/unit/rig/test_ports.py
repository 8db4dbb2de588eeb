"""tools/ports.py: explicit picks stay out of the range the kernel lends to outgoing sockets."""

from __future__ import annotations

import socket
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from tools import ports


@given(st.integers(1024, 65535), st.integers(1024, 65535))
def test_candidates_avoid_the_ephemeral_range_whenever_room_is_left(a: int, b: int) -> None:
    low, high = min(a, b), max(a, b)
    candidates = ports.candidate_range((low, high))
    assert len(candidates) > 0
    assert candidates.start >= 1024 and candidates.stop <= 65536
    if low - 20000 >= 4096 or 65535 - high >= 4096:
        assert candidates.stop <= low or candidates.start > high, "no candidate inside the ephemeral range"


def test_linux_default_range_leaves_twenty_to_thirty_two_thousand() -> None:
    assert ports.candidate_range((32768, 60999)) == range(20000, 32768)


def test_ephemeral_range_is_read_from_the_kernel_file(tmp_path: Path) -> None:
    kernel = tmp_path / "ip_local_port_range"
    kernel.write_text("40000\t50000\n")
    assert ports.ephemeral_range(kernel) == (40000, 50000)
    assert ports.ephemeral_range(tmp_path / "missing") == (32768, 60999)


def test_free_port_is_listenable_outside_the_ephemeral_range_and_not_taken() -> None:
    low, high = ports.ephemeral_range()
    first = ports.free_port()
    second = ports.free_port(taken=frozenset({first}))
    for port in (first, second):
        assert not low <= port <= high
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", port))
    assert second != first


def test_both_spellings_of_a_taken_port_are_recognised() -> None:
    assert ports.address_in_use("Can't start server: Bind on TCP/IP port. Got error: 98: Address already in use.")
    assert ports.address_in_use("listen tcp 127.0.0.1:2379: bind: address already in use")
    assert not ports.address_in_use("mariadbd exited with 1 during startup: Can't open the mysql.plugin table")


def test_a_listening_port_is_not_free() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        assert not ports.port_free(sock.getsockname()[1])
