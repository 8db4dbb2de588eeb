"""Daylight-saving changes and the backup slots that avoid them (robfig/cron skips a start in a
spring-forward gap and runs one in a fall-back overlap twice)."""

from __future__ import annotations

import zoneinfo
from collections import Counter
from datetime import date, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from components import dst
from components.backup_slots import SlotCapacityError, assign_slots
from components.config import ConfigError, StackConfig, validate_stack_config
from components.config.backup_plan import backup_window, dst_unsafe_slots, plan_backups
from tests.unit.harness import minimal_config, stack_file_config

YEAR = 2027
ZONES = sorted(zoneinfo.available_timezones() - {"Factory", "localtime"})


def _utc(wall: datetime, zone: zoneinfo.ZoneInfo, fold: int) -> datetime:
    return wall.replace(tzinfo=zone, fold=fold).astimezone(zoneinfo.ZoneInfo("UTC"))


def _exists_once(wall: datetime, zone: zoneinfo.ZoneInfo) -> bool:
    """A wall time exists once when both folds map to one instant that maps back to it."""
    first, second = _utc(wall, zone, 0), _utc(wall, zone, 1)
    return first == second and first.astimezone(zone).replace(tzinfo=None) == wall


def test_berlin_skips_and_repeats_two_to_three() -> None:
    changes = dst.transitions("Europe/Berlin", YEAR, 1)
    assert [(t.kind, t.local_date, t.start_minute, t.length_minutes) for t in changes] == [
        ("gap", date(2027, 3, 28), 120, 60),
        ("overlap", date(2027, 10, 31), 120, 60),
    ]
    assert dst.unsafe_minutes("Europe/Berlin", YEAR, 1) == frozenset(range(120, 180))


def test_new_york_gap_and_overlap_are_different_hours() -> None:
    changes = dst.transitions("America/New_York", YEAR, 1)
    assert [(t.kind, t.start_minute) for t in changes] == [("gap", 120), ("overlap", 60)]
    assert [t.describe() for t in dst.conflicts(90, "America/New_York", YEAR, 1)] == [
        "01:00-02:00 occurs twice on 2027-11-07"
    ]
    assert [t.describe() for t in dst.conflicts(150, "America/New_York", YEAR, 1)] == [
        "02:00-03:00 does not exist on 2027-03-14"
    ]


def test_zones_without_daylight_saving_have_no_unsafe_minutes() -> None:
    for zone in ("UTC", "Asia/Tokyo", "America/Mexico_City", "Africa/Nairobi"):
        assert dst.unsafe_minutes(zone, YEAR) == frozenset(), zone


def test_half_hour_and_midnight_changes() -> None:
    # Lord Howe moves by 30 minutes; Santiago changes at midnight (the gap starts at 00:00).
    assert dst.unsafe_minutes("Australia/Lord_Howe", YEAR, 1) == frozenset(range(90, 150))
    santiago = {t.kind: t for t in dst.transitions("America/Santiago", YEAR, 1)}
    assert santiago["gap"].start_minute == 0 and santiago["overlap"].start_minute == 23 * 60


@settings(max_examples=120, derandomize=True, deadline=None)
@given(st.sampled_from(ZONES), st.integers(min_value=0, max_value=24 * 60 - 1))
def test_reported_minutes_are_exactly_the_ones_that_do_not_exist_once(zone_name: str, minute: int) -> None:
    zone = zoneinfo.ZoneInfo(zone_name)
    changes = dst.transitions(zone_name, YEAR, 1)
    for change in changes:
        # Every minute a change reports is skipped (gap) or doubled (overlap) on its day ...
        offset = (minute - change.start_minute) % (24 * 60)
        wall = datetime.combine(change.local_date, datetime.min.time()) + timedelta(
            minutes=change.start_minute + offset
        )
        if change.covers(minute):
            assert not _exists_once(wall, zone), (zone_name, change, wall)
            if change.kind == "overlap":
                assert _utc(wall, zone, 0) != _utc(wall, zone, 1)
    # ... and a minute no change covers exists exactly once on every day of a change.
    if not any(change.covers(minute) for change in changes):
        for day in {change.local_date for change in changes} | {c.local_date + timedelta(days=1) for c in changes}:
            wall = datetime.combine(day, datetime.min.time()) + timedelta(minutes=minute)
            assert _exists_once(wall, zone), (zone_name, wall)


windows = st.tuples(
    st.sampled_from(ZONES),
    st.integers(min_value=0, max_value=23),
    st.integers(min_value=2, max_value=8),
    st.sampled_from([10, 15, 20, 30]),
)


@settings(max_examples=80, derandomize=True, deadline=None)
@given(windows, st.integers(min_value=1, max_value=6))
def test_planned_backups_never_start_in_a_daylight_saving_change(
    window: tuple[str, int, int, int], site_count: int
) -> None:
    zone, start_hour, hours, slot_minutes = window
    sites = [{"name": f"s{i}", "cms": "wordpress", "domains": [f"s{i}.example.org"]} for i in range(site_count)]
    backups = {
        "window": {
            "start": f"{start_hour:02d}:00",
            "end": f"{(start_hour + hours) % 24:02d}:00",
            "timeZone": zone,
            "slotMinutes": slot_minutes,
        },
        "maxConcurrent": 2,
    }
    config = StackConfig.model_validate(minimal_config(sites=sites, backups=backups))
    unsafe = dst.unsafe_minutes(zone, YEAR)
    try:
        plan = plan_backups(config, first_year=YEAR)
    except ConfigError as error:
        assert "do not fit" in str(error)
        return
    window_model = backup_window(config)
    for slot in plan.values():
        hour, minute = window_model.slot_start(slot)
        assert hour * 60 + minute not in unsafe, (zone, hour, minute)
    assert max(Counter(plan.values()).values()) <= 2


def _berlin(**backups: object) -> dict[str, object]:
    window = {"start": "01:00", "end": "05:00", "timeZone": "Europe/Berlin", "slotMinutes": 15}
    return minimal_config(backups={"window": window, **backups})


def test_prod_window_leaves_the_berlin_change_empty() -> None:
    config = validate_stack_config(stack_file_config("prod"))
    unsafe = dst_unsafe_slots(config, first_year=YEAR)
    window = backup_window(config)
    assert sorted(window.slot_start(s) for s in unsafe) == [(2, 0), (2, 15), (2, 30), (2, 45)]
    starts = [window.slot_start(s) for s in plan_backups(config, first_year=YEAR).values()]
    assert starts and all(hour != 2 for hour, _ in starts)


def test_a_pinned_start_in_the_change_is_refused() -> None:
    config = _berlin()
    config["sites"][0]["backup"] = {"startTime": "02:30"}
    with pytest.raises(ConfigError) as caught:
        validate_stack_config(config)
    (problem,) = caught.value.problems
    assert problem.path == "sites[0].backup.startTime"
    assert "daylight-saving change of Europe/Berlin" in problem.reason
    assert "does not exist on" in problem.reason and "occurs twice on" in problem.reason


def test_a_window_inside_the_change_cannot_hold_any_backup() -> None:
    config = minimal_config(
        backups={"window": {"start": "01:00", "end": "03:00", "timeZone": "America/New_York", "slotMinutes": 30}}
    )
    with pytest.raises(ConfigError) as caught:
        validate_stack_config(config)
    (problem,) = caught.value.problems
    assert problem.path == "backups"
    assert "4 of 4 slots start in a daylight-saving change of America/New_York" in problem.reason


def test_unavailable_slots_take_no_job_and_keep_the_others_stable() -> None:
    jobs = [f"files/site{i}" for i in range(20)]
    free = assign_slots(jobs, 16, 2)
    blocked = set(range(4, 8))
    avoided = assign_slots(jobs, 16, 2, unavailable=blocked)
    assert not blocked & set(avoided.values())
    moved = [job for job in jobs if free[job] != avoided[job]]
    displaced = [job for job in jobs if free[job] in blocked]
    # Only the jobs that wanted a blocked slot, and the chains they push, move.
    assert set(displaced) <= set(moved) and len(moved) <= len(displaced) + 6
    with pytest.raises(SlotCapacityError, match="unavailable slot"):
        assign_slots(jobs, 16, 2, pinned={"files/site0": 5}, unavailable=blocked)
    with pytest.raises(SlotCapacityError, match="12 usable slots"):
        assign_slots([f"j{i}" for i in range(25)], 16, 2, unavailable=blocked)
