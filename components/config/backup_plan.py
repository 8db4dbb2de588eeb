"""The backup plan a config asks for: which jobs, pinned where, in which slots. Pure."""

from __future__ import annotations

from components.backup_slots import BackupWindow, SlotCapacityError, assign_slots
from components.config.cluster import MySQLOperatorConfig
from components.config.problems import ConfigError, Problem
from components.config.stack import StackConfig


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


def plan_backups(config: StackConfig) -> dict[str, int]:
    """Slot of every backup job; raises ``ConfigError`` when they do not fit the window."""
    window = backup_window(config)
    jobs, pin_clocks = backup_jobs(config)
    pins: dict[str, int] = {}
    problems: list[Problem] = []
    site_index = {site.name: i for i, site in enumerate(config.sites)}
    for job, clock in pin_clocks.items():
        try:
            pins[job] = window.slot_of_clock(clock)
        except ValueError as error:
            problems.append(Problem(f"sites[{site_index[job.split('/', 1)[1]]}].backup.startTime", str(error)))
    if problems:
        raise ConfigError(sorted(set(problems), key=str))
    try:
        return assign_slots(jobs, window.slot_count, config.backups.max_concurrent, pins)
    except SlotCapacityError as error:
        capacity = window.slot_count * config.backups.max_concurrent
        if len(set(jobs)) > capacity:
            reason = (
                f"{len(set(jobs))} backups (files and databases) do not fit {window.slot_count} slots of "
                f"{window.slot_minutes} minutes x maxConcurrent {config.backups.max_concurrent} = {capacity}; "
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
