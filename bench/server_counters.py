"""What an operation cost the MariaDB server, from its own global status counters.

``Questions`` counts every statement a client sent (not pings); ``Com_admin_commands`` counts
pings (and other admin commands nobody sends here); ``Connections`` counts connection attempts.
Round trips are statements + pings + connections (a handshake is at least one more). The
write counters are every statement kind that changes a database, an account or a grant. The
probe's own statements are measured once (:meth:`CounterProbe.calibrate`) and subtracted.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from tools.mariadb_server import SQL_PROVIDER_WRITE_COUNTERS, MariaDBServer

WRITE_COUNTERS = (
    *SQL_PROVIDER_WRITE_COUNTERS,
    "Com_set_option",
    "Com_insert",
    "Com_update",
    "Com_delete",
)
TRAFFIC_COUNTERS = ("Questions", "Com_admin_commands", "Connections")
# SET statements (Com_set_option) are session settings, not writes: the providers' connection
# init_command runs one per connection. They are reported, but not counted as writes.
NOT_WRITES = frozenset({"Com_set_option"})


@dataclass
class ServerDelta:
    counters: dict[str, int] = field(default_factory=dict)

    @property
    def statements(self) -> int:
        return self.counters.get("Questions", 0)

    @property
    def pings(self) -> int:
        return self.counters.get("Com_admin_commands", 0)

    @property
    def connections(self) -> int:
        return self.counters.get("Connections", 0)

    @property
    def round_trips(self) -> int:
        return self.statements + self.pings + self.connections

    @property
    def writes(self) -> dict[str, int]:
        return {k: v for k, v in self.counters.items() if k in WRITE_COUNTERS and k not in NOT_WRITES and v}

    def to_dict(self) -> dict[str, object]:
        return {
            "statements": self.statements,
            "pings": self.pings,
            "connections": self.connections,
            "round_trips": self.round_trips,
            "writes": self.writes,
        }


class CounterProbe:
    def __init__(self, server: MariaDBServer) -> None:
        self.server = server
        self._own: dict[str, int] = {}

    def snapshot(self) -> dict[str, int]:
        names = (*WRITE_COUNTERS, *TRAFFIC_COUNTERS)
        with self.server.connect() as conn, conn.cursor() as cur:
            cur.execute(
                "SHOW GLOBAL STATUS WHERE Variable_name IN (" + ", ".join(["%s"] * len(names)) + ")",
                names,
            )
            values = {str(name).lower(): int(value) for name, value in cur.fetchall()}
        return {name: values.get(name.lower(), 0) for name in names}

    def calibrate(self) -> None:
        """The probe's own cost: two snapshots back to back, nothing else in between."""
        first = self.snapshot()
        second = self.snapshot()
        self._own = {k: second[k] - first[k] for k in first}

    @contextmanager
    def measure(self) -> Iterator[ServerDelta]:
        delta = ServerDelta()
        before = self.snapshot()
        yield delta
        after = self.snapshot()
        delta.counters = {k: after[k] - before[k] - self._own.get(k, 0) for k in before}
