"""Daylight-saving changes of a time zone as wall-clock minutes that a daily schedule must avoid.

Pure: no clock is read (the caller names the years) and nothing is written; the zone rules
come from the IANA database that ``zoneinfo`` reads.

Why: Velero Schedules (``CRON_TZ=<zone> m h * * *``) and mariadb-operator Backups (a
Kubernetes CronJob with ``timeZone``) both run on robfig/cron v3, whose ``SpecSchedule.Next``
walks forward in absolute time (``t.Add(1 * time.Hour)``, ``t.Add(1 * time.Minute)``;
robfig/cron v3.0.1 ``spec.go``). A start time inside a spring-forward gap is therefore never
reached that night (the backup is skipped), and one inside a fall-back overlap is reached
twice (the backup runs twice). Each transition is described by the wall-clock interval it
affects; ``unsafe_minutes`` tells whether a minute of the day falls in any of them.
"""

from __future__ import annotations

import zoneinfo
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from typing import Literal

MINUTES_PER_DAY = 24 * 60
# Offsets change at most a few times a year; a coarse scan finds each change, a bisection
# then finds its minute. Six hours is shorter than any gap between two changes in tzdata.
_SCAN_STEP = timedelta(hours=6)


@dataclass(frozen=True)
class Transition:
    """One change of a zone's UTC offset, as the wall clock sees it."""

    local_date: date  # the local date on which the affected wall-clock interval starts
    start_minute: int  # first affected minute of that day (0..1439)
    length_minutes: int  # how many wall-clock minutes are skipped or repeated
    kind: Literal["gap", "overlap"]  # gap: spring forward (skipped); overlap: fall back (twice)

    def covers(self, minute_of_day: int) -> bool:
        offset = (minute_of_day - self.start_minute) % MINUTES_PER_DAY
        return offset < self.length_minutes

    def describe(self) -> str:
        what = "does not exist" if self.kind == "gap" else "occurs twice"
        hour, minute = divmod(self.start_minute, 60)
        end_hour, end_minute = divmod((self.start_minute + self.length_minutes) % MINUTES_PER_DAY, 60)
        return f"{hour:02d}:{minute:02d}-{end_hour:02d}:{end_minute:02d} {what} on {self.local_date.isoformat()}"


def _offset(zone: zoneinfo.ZoneInfo, instant: datetime) -> timedelta:
    offset = instant.astimezone(zone).utcoffset()
    assert offset is not None  # a ZoneInfo always knows its offset
    return offset


@lru_cache(maxsize=512)
def transitions(time_zone: str, first_year: int, years: int) -> tuple[Transition, ...]:
    """Every offset change of ``time_zone`` from 1 January ``first_year`` for ``years`` years."""
    zone = zoneinfo.ZoneInfo(time_zone)
    instant = datetime(first_year, 1, 1, tzinfo=UTC)
    end = datetime(first_year + years, 1, 1, tzinfo=UTC)
    found: list[Transition] = []
    before = _offset(zone, instant)
    while instant < end:
        following = instant + _SCAN_STEP
        after = _offset(zone, following)
        if after != before:
            low, high = 0, int(_SCAN_STEP.total_seconds() // 60)  # minutes after `instant`
            while high - low > 1:
                middle = (low + high) // 2
                if _offset(zone, instant + timedelta(minutes=middle)) == before:
                    low = middle
                else:
                    high = middle
            found.append(_transition(instant + timedelta(minutes=high), before, after))
        before = after
        instant = following
    return tuple(found)


def _transition(at: datetime, before: timedelta, after: timedelta) -> Transition:
    delta = after - before
    minutes = abs(int(delta.total_seconds() // 60))
    # A gap skips [at+before, at+after); an overlap repeats [at+after, at+before).
    first = (at + before) if delta > timedelta(0) else (at + after)
    wall = first.replace(tzinfo=None)
    return Transition(
        local_date=wall.date(),
        start_minute=wall.hour * 60 + wall.minute,
        length_minutes=minutes,
        kind="gap" if delta > timedelta(0) else "overlap",
    )


def conflicts(minute_of_day: int, time_zone: str, first_year: int, years: int = 10) -> list[Transition]:
    """The transitions in which a daily job at ``minute_of_day`` would be skipped or run twice."""
    return [t for t in transitions(time_zone, first_year, years) if t.covers(minute_of_day)]


def unsafe_minutes(time_zone: str, first_year: int, years: int = 10) -> frozenset[int]:
    """Every minute of the day at which a daily job is skipped or doubled on some day."""
    minutes: set[int] = set()
    for transition in transitions(time_zone, first_year, years):
        minutes.update((transition.start_minute + i) % MINUTES_PER_DAY for i in range(transition.length_minutes))
    return frozenset(minutes)
