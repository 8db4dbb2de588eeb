"""Free loopback ports for the rig's servers, picked outside the kernel's ephemeral range.

A port the kernel chose (``bind(("127.0.0.1", 0))``) comes from ``ip_local_port_range``, the
same range every outgoing connection on the machine takes its local port from. Between the
pick and the server's own ``bind`` (seconds, for a MariaDB that first runs
``mariadb-install-db``), any client socket of a busy rig (engine, plugins, kube-apiserver,
a second pytest worker) can land on it, and the server fails with "Address already in use".
Ports below that range are never handed out implicitly, so only another explicit pick can
collide: a random pick among thousands, and the servers retry once on fresh ports.
"""

from __future__ import annotations

import secrets
import socket
from pathlib import Path

_EPHEMERAL_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")
# Well above the registered services a developer machine runs (databases, dev servers).
_LOWEST = 20000
_ATTEMPTS = 200


def ephemeral_range(path: Path = _EPHEMERAL_RANGE) -> tuple[int, int]:
    """The kernel's range for implicitly bound ports (Linux default 32768-60999)."""
    try:
        low, high = (int(part) for part in path.read_text().split())
    except (OSError, ValueError):
        return 32768, 60999
    return low, high


def candidate_range(ephemeral: tuple[int, int]) -> range:
    """Where explicit picks go: below the ephemeral range or, if that is too narrow, above it."""
    low, high = ephemeral
    if low - _LOWEST >= 4096:
        return range(_LOWEST, low)
    if 65535 - high >= 4096:
        return range(high + 1, 65536)
    return range(1024, 65536)  # a machine that lends every port out: the bind check still holds


def port_free(port: int) -> bool:
    """Whether a server could listen on ``127.0.0.1:port`` now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # As the servers themselves do; otherwise a port in TIME_WAIT from our own previous
        # run counts as taken and a restart moves to new ports for no reason.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def address_in_use(message: str) -> bool:
    """Whether a server's error says its port was taken (errno 98; Go and MariaDB spell it differently)."""
    return "address already in use" in message.lower()


def free_port(taken: frozenset[int] = frozenset()) -> int:
    """A port nothing listens on, outside the ephemeral range and not in ``taken``."""
    candidates = candidate_range(ephemeral_range())
    for _ in range(_ATTEMPTS):
        port = secrets.choice(candidates)
        if port not in taken and port_free(port):
            return port
    raise OSError(f"no free loopback port in {candidates.start}-{candidates.stop - 1} after {_ATTEMPTS} tries")
