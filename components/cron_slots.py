"""Spread the sites' cron runs over the hour, with a per-minute bound, stably. Pure.

A cron *job* (key ``cron/<site>``) runs every ``period`` minutes, at ``offset``, ``offset +
period``, ... past each hour. Each minute of the hour may start at most ``capacity`` runs; the
plan uses ``cron_capacity``, the smallest bound that keeps the hour at most three quarters
full (the load at which the backup spreading states its stability bound), so runs start as
evenly as the fleet allows and no minute ever sees a pile-up.

The placement is the backups' (``components.backup_slots``): every job ranks its candidate
offsets by rendezvous hashing (``slot_preferences``) and jobs are served one at a time in an
order fixed by a hash of their own name, each taking the first offset it prefers whose minutes
all have room. With a single period this *is* ``assign_slots`` over ``period`` slots (the unit
tier checks the equality), so the same stability holds: adding or removing a site moves only
a short chain of others, and the result never depends on the order sites are listed in.

Periods are restricted to 5, 15, 30 and 60 minutes, a chain in which each divides the next,
and jobs are served shortest period first. Then a job's candidate offset covers minutes that
all carry the same load (every earlier job, of a period dividing this one, covers either all
of them or none), so a job finds room whenever the runs placed so far use less than the whole
hour: the placement never fails while ``sum(60 / period) <= 60 * capacity``.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping
from typing import Literal

from components.backup_slots import slot_preferences

MINUTES_PER_HOUR = 60
CRON_PERIODS: tuple[int, ...] = (5, 15, 30, 60)
CronPeriod = Literal[5, 15, 30, 60]


class CronCapacityError(ValueError):
    pass


def runs_per_hour(periods: Mapping[str, int]) -> int:
    return sum(MINUTES_PER_HOUR // period for period in periods.values())


def cron_capacity(periods: Mapping[str, int]) -> int:
    """Most runs one minute may start: ``ceil(runs per hour / 45)``, at least 1.

    It grows with the fleet by one step every 45 runs an hour (about 11 sites every 15
    minutes); a step only frees room, and the unit tier shows it moves as few runs as adding
    a site does.
    """
    return max(1, math.ceil(runs_per_hour(periods) * 4 / (3 * MINUTES_PER_HOUR)))


def run_minutes(offset: int, period: int) -> list[int]:
    """Minutes past the hour at which a job with this offset and period starts."""
    return list(range(offset, MINUTES_PER_HOUR, period))


def cron_schedule(offset: int, period: int) -> str:
    """A five-field cron expression: ``7,22,37,52 * * * *``."""
    return ",".join(map(str, run_minutes(offset, period))) + " * * * *"


def _serving_key(job: str) -> bytes:
    # The same serving order as backup_slots.assign_slots (a hash of "order" and the job key).
    return hashlib.sha256(f"order\x1f{job}".encode()).digest()


def assign_cron_offsets(periods: Mapping[str, int], capacity: int) -> dict[str, int]:
    """``offset`` (``0 <= offset < period``) of every job so no minute starts more than ``capacity``."""
    if capacity < 1:
        raise ValueError("capacity must be at least 1")
    for job, period in periods.items():
        if period not in CRON_PERIODS:
            raise ValueError(f"period {period} of {job!r} is not one of {', '.join(map(str, CRON_PERIODS))}")
    total = runs_per_hour(periods)
    if total > MINUTES_PER_HOUR * capacity:
        raise CronCapacityError(
            f"{total} cron runs an hour do not fit {MINUTES_PER_HOUR} minutes x {capacity} concurrent"
        )
    load = [0] * MINUTES_PER_HOUR
    assignment: dict[str, int] = {}
    for job in sorted(periods, key=lambda j: (periods[j], _serving_key(j))):
        period = periods[job]
        offset = next(
            (o for o in slot_preferences(job, period) if all(load[m] < capacity for m in run_minutes(o, period))),
            None,
        )
        if offset is None:  # unreachable for a period chain within capacity (module docstring)
            raise CronCapacityError(f"no minute has room for {job!r}")
        for minute in run_minutes(offset, period):
            load[minute] += 1
        assignment[job] = offset
    return assignment
