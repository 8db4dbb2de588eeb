"""Spread backup start times over a nightly window, with a concurrency bound, stably.

Pure logic, no I/O. A backup *job* is a string key such as ``files/blog`` or ``db/blog``.
The window is cut into equal slots; each slot may start at most ``capacity`` jobs.

Why this algorithm: the schedule is rendered into Kubernetes objects, so a pull request that
adds one site must not show a diff for every other site. Round-robin over sorted names would
shift every job after the new one. Instead each job ranks all slots by a hash of
``(job, slot)`` (rendezvous hashing) and jobs are served in a fixed order given by a hash of
the job alone (serial dictatorship). Both orders depend only on the job's own name, so:

* the result is deterministic and independent of the order sites are listed in;
* adding (or removing) one job changes the occupancy of exactly one slot at each step of the
  serving order, so the jobs it displaces form a single chain, each moving to a slot it ranks
  lower; with free capacity in the window that chain is short (see ``bench/backup_slots.py``
  for the measured distribution and the property tests for the bound).

Pinned jobs (a site that sets its own ``startTime``) are placed first and count against the
capacity of their slot. Slots can be marked unavailable (the config layer marks those that
start inside a daylight-saving change, see ``components.dst``): they take no job, and every
job keeps its own ranking of the remaining slots, so the stability argument above still holds.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

MINUTES_PER_DAY = 24 * 60


class SlotCapacityError(ValueError):
    """The jobs do not fit the window; ``jobs`` names the ones that could not be placed."""

    def __init__(self, message: str, jobs: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.jobs = jobs


@dataclass(frozen=True)
class BackupWindow:
    """A daily window ``[start, start + length)`` in minutes after midnight, cut into slots."""

    start_minute: int
    length_minutes: int
    slot_minutes: int

    def __post_init__(self) -> None:
        if not 0 <= self.start_minute < MINUTES_PER_DAY:
            raise ValueError(f"start_minute {self.start_minute} is outside 0..1439")
        if not 0 < self.length_minutes <= MINUTES_PER_DAY:
            raise ValueError(f"length_minutes {self.length_minutes} is outside 1..1440")
        if not 0 < self.slot_minutes <= self.length_minutes:
            raise ValueError(f"slot_minutes {self.slot_minutes} must be within 1..{self.length_minutes}")

    @classmethod
    def from_clock(cls, start: str, end: str, slot_minutes: int) -> BackupWindow:
        """Build from ``HH:MM`` strings; an end at or before the start wraps past midnight."""
        start_minute, end_minute = parse_clock(start), parse_clock(end)
        length = (end_minute - start_minute) % MINUTES_PER_DAY or MINUTES_PER_DAY
        return cls(start_minute, length, slot_minutes)

    @property
    def slot_count(self) -> int:
        return self.length_minutes // self.slot_minutes

    def slot_start(self, slot: int) -> tuple[int, int]:
        """(hour, minute) at which ``slot`` starts."""
        if not 0 <= slot < self.slot_count:
            raise ValueError(f"slot {slot} is outside 0..{self.slot_count - 1}")
        minute_of_day = (self.start_minute + slot * self.slot_minutes) % MINUTES_PER_DAY
        return divmod(minute_of_day, 60)

    def slot_of_clock(self, clock: str) -> int:
        """The slot a ``HH:MM`` time starts; it must lie in the window on a slot boundary."""
        offset = (parse_clock(clock) - self.start_minute) % MINUTES_PER_DAY
        slot, remainder = divmod(offset, self.slot_minutes)
        if offset >= self.length_minutes or slot >= self.slot_count:
            raise ValueError(f"{clock} is outside the backup window")
        if remainder:
            raise ValueError(f"{clock} is not on a {self.slot_minutes}-minute slot boundary of the window")
        return slot


def parse_clock(value: str) -> int:
    """Minutes after midnight of a ``HH:MM`` 24-hour time."""
    parts = value.split(":")
    if len(parts) != 2 or not all(p.isdigit() and len(p) == 2 for p in parts):
        raise ValueError(f"{value!r} is not a HH:MM time")
    hour, minute = int(parts[0]), int(parts[1])
    if hour > 23 or minute > 59:
        raise ValueError(f"{value!r} is not a valid 24-hour time")
    return hour * 60 + minute


def _rank(*parts: str | int) -> bytes:
    return hashlib.sha256("\x1f".join(map(str, parts)).encode()).digest()


def slot_preferences(job: str, slot_count: int) -> list[int]:
    """Every slot, in the order ``job`` prefers them (rendezvous hashing).

    The same order as sorting by ``_rank("slot", job, slot)``, computed from one hash of the
    common prefix (``hashlib``'s ``copy()``): config validation ranks every slot for every
    backup, 574,000 hashes for 1,000 sites over a day of five-minute slots.
    """
    prefix = hashlib.sha256(f"slot\x1f{job}\x1f".encode())

    def rank(slot: int) -> bytes:
        hasher = prefix.copy()
        hasher.update(str(slot).encode())
        return hasher.digest()

    return sorted(range(slot_count), key=rank)


def assign_slots(
    jobs: Iterable[str],
    slot_count: int,
    capacity: int,
    pinned: Mapping[str, int] | None = None,
    unavailable: Iterable[int] = (),
) -> dict[str, int]:
    """Map every job to a slot so that no slot starts more than ``capacity`` jobs.

    ``pinned`` maps jobs to the slot they must use; ``unavailable`` slots take no job (a job
    pinned to one is refused). Raises ``SlotCapacityError`` when the jobs cannot fit, before
    anything is assigned.
    """
    if slot_count < 1:
        raise ValueError("slot_count must be at least 1")
    if capacity < 1:
        raise ValueError("capacity must be at least 1")
    pinned = dict(pinned or {})
    blocked = {slot for slot in unavailable if 0 <= slot < slot_count}
    usable = slot_count - len(blocked)
    all_jobs = sorted(set(jobs) | set(pinned))
    if len(all_jobs) > usable * capacity:
        raise SlotCapacityError(
            f"{len(all_jobs)} backup jobs do not fit {usable} {'usable ' if blocked else ''}slots"
            f" x {capacity} concurrent",
            tuple(all_jobs),
        )
    # An unavailable slot counts as full: nothing is placed there, pinned or not.
    load = [capacity if slot in blocked else 0 for slot in range(slot_count)]
    assignment: dict[str, int] = {}
    overfull: list[str] = []
    for job in sorted(pinned):
        slot = pinned[job]
        if not 0 <= slot < slot_count:
            raise ValueError(f"pinned slot {slot} of {job!r} is outside 0..{slot_count - 1}")
        if slot in blocked:
            raise SlotCapacityError(f"{job!r} is pinned to unavailable slot {slot}", (job,))
        if load[slot] >= capacity:
            overfull.append(job)
            continue
        load[slot] += 1
        assignment[job] = slot
    if overfull:
        raise SlotCapacityError(
            "more pinned backup jobs than the concurrency bound allows in one slot: " + ", ".join(overfull),
            tuple(overfull),
        )
    for job in sorted((j for j in all_jobs if j not in pinned), key=lambda j: _rank("order", j)):
        slot = next(s for s in slot_preferences(job, slot_count) if load[s] < capacity)
        load[slot] += 1
        assignment[job] = slot
    return assignment
