"""The cron plan a config asks for: when in the hour each site's cron runs. Pure."""

from __future__ import annotations

from components.config.sites import SiteConfig
from components.config.stack import StackConfig
from components.cron_slots import assign_cron_offsets, cron_capacity


def cron_job_key(site: SiteConfig) -> str:
    return f"cron/{site.name}"


def plan_cron(config: StackConfig) -> dict[str, int]:
    """Offset (minute past the hour of the first run) of every site whose cron runs from the cluster.

    A suspended site keeps its place, so suspending and resuming it moves no other site's cron.
    """
    sites = [site for site in config.sites if site.cron.enabled]
    periods = {cron_job_key(site): site.cron.every_minutes for site in sites}
    offsets = assign_cron_offsets(periods, cron_capacity(periods))
    return {site.name: offsets[cron_job_key(site)] for site in sites}
