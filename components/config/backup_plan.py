"""The backup plan a config asks for: which jobs, pinned where, in which slots. Pure, except
that the daylight-saving check starts at the current year unless the caller names one.
"""

from __future__ import annotations

from datetime import UTC, datetime

from components import dst
from components.backup_slots import BackupWindow, SlotCapacityError, assign_slots
from components.config.cluster import MySQLOperatorConfig
from components.config.problems import ConfigError, Problem
from components.config.stack import StackConfig

# Transitions are looked for this many years ahead: longer than any announced rule change.
DST_YEARS = 10


def backup_jobs(config: StackConfig) -> tuple[list[str], dict[str, str]]:
    """All backup job keys the config asks for, and the pinned start time of each pinned job."""
    operator_mode = isinstance(config.mysql, MySQLOperatorConfig)
    jobs: list[str] = []
    pins: dict[str, str] = {}
    for site in config.sites:
        wanted = []
        if config.backups.velero.enabled and site.backup.files:
            wanted.append(f"files/{site.name}")
        if operator_mode and config.backups.database_backups.enabled and site.backup.database:
            wanted.append(f"db/{site.name}")
        jobs += wanted
        if site.backup.start_time:
            pins.update({job: site.backup.start_time for job in wanted})
    return jobs, pins


def backup_window(config: StackConfig) -> BackupWindow:
    window = config.backups.window
    return BackupWindow.from_clock(window.start, window.end, window.slot_minutes)


def dst_unsafe_slots(config: StackConfig, first_year: int | None = None) -> dict[int, list[dst.Transition]]:
    """Slots whose start lies in a daylight-saving change of the window's zone, with the changes.

    The schedulers would skip such a start on the spring-forward night and run it twice on the
    fall-back night (see ``components.dst``), so the plan leaves these slots empty.
    """
    window = backup_window(config)
    year = first_year if first_year is not None else datetime.now(UTC).year
    unsafe: dict[int, list[dst.Transition]] = {}
    for slot in range(window.slot_count):
        hour, minute = window.slot_start(slot)
        found = dst.conflicts(hour * 60 + minute, config.backups.window.time_zone, year, DST_YEARS)
        if found:
            unsafe[slot] = found
    return unsafe


def plan_backups(config: StackConfig, *, first_year: int | None = None) -> dict[str, int]:
    """Slot of every backup job; raises ``ConfigError`` when they do not fit the window."""
    window = backup_window(config)
    jobs, pin_clocks = backup_jobs(config)
    unsafe = dst_unsafe_slots(config, first_year)
    time_zone = config.backups.window.time_zone
    pins: dict[str, int] = {}
    problems: list[Problem] = []
    site_index = {site.name: i for i, site in enumerate(config.sites)}
    for job, clock in pin_clocks.items():
        path = f"sites[{site_index[job.split('/', 1)[1]]}].backup.startTime"
        try:
            pins[job] = window.slot_of_clock(clock)
        except ValueError as error:
            problems.append(Problem(path, str(error)))
            continue
        if pins[job] in unsafe:
            changes = "; ".join(t.describe() for t in unsafe[pins[job]][:2])
            problems.append(
                Problem(
                    path,
                    f"{clock} lies in a daylight-saving change of {time_zone} ({changes}): the backup would be "
                    "skipped or run twice that night; pick a time outside it",
                )
            )
    if problems:
        raise ConfigError(sorted(set(problems), key=str))
    try:
        return assign_slots(jobs, window.slot_count, config.backups.max_concurrent, pins, unavailable=unsafe)
    except SlotCapacityError as error:
        usable = window.slot_count - len(unsafe)
        capacity = usable * config.backups.max_concurrent
        if len(set(jobs)) > capacity:
            skipped = (
                f" ({len(unsafe)} of {window.slot_count} slots start in a daylight-saving change of {time_zone} "
                "and stay empty)"
                if unsafe
                else ""
            )
            reason = (
                f"{len(set(jobs))} backups (files and databases) do not fit {usable} slots of "
                f"{window.slot_minutes} minutes x maxConcurrent {config.backups.max_concurrent} = {capacity}{skipped}; "
                "widen backups.window, shorten slotMinutes or raise maxConcurrent"
            )
            raise ConfigError([Problem("backups", reason)]) from None
        sites = sorted({site_index[job.split("/", 1)[1]] for job in error.jobs})
        raise ConfigError(
            Problem(
                f"sites[{i}].backup.startTime",
                f"more than maxConcurrent backups pinned to {config.sites[i].backup.start_time}",
            )
            for i in sites
        ) from None
