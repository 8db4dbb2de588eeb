"""The CronJob that runs a site's cron from the cluster instead of on page loads. Pure.

WordPress: a ``curl`` (in the site's own image: the php images install it) of ``wp-cron.php``
through the site's Service, with the site's host name; called without ``doing_wp_cron``,
wp-cron.php takes WordPress's own cron lock itself ("called from external script/job"), and
``DISABLE_WP_CRON`` stops page loads from spawning it. The run happens in a web pod.

Drupal: the site image's PHP runs ``components.drupal_settings.CRON_SCRIPT`` with the web pods'
settings, Secrets and volumes (cron deletes temporary files, so it needs the files mounted).

Runs start at the minutes ``components.cron_slots`` assigns, spread over the hour; a run never
overlaps the previous one (``Forbid``) and is stopped before the next one is due.
"""

from __future__ import annotations

from typing import Any

from components import drupal_settings, wordpress_config
from components.config import SiteConfig
from components.cron_slots import cron_schedule
from components.mysql_cluster import resources_spec
from components.naming import site_labels
from components.web_pod import (
    SMALL_RESOURCES,
    PodObjects,
    config_mounts,
    container_security_context,
    env_from,
    files_mounts,
    pod_security_context,
    prepare_volume_container,
    volumes,
)

CRON_COMPONENT = "cron"
# Schedules are minutes past the hour, the same in every zone but those with a fractional
# offset; naming the zone keeps them independent of the controller-manager's.
TIME_ZONE = "Etc/UTC"
# The web pods pull the site's tag at every start (components.web_pod.image_pull_policy); a
# cron run uses the node's copy instead of asking the registry every few minutes for every
# site, and keeps running through a registry outage.
CRON_PULL_POLICY = "IfNotPresent"


def cron_job_name(site: SiteConfig) -> str:
    # A CronJob's name is at most 52 characters (its Jobs append 11): site names have at most 40.
    return f"{site.name}-cron"


def cron_pod_labels(site: SiteConfig) -> dict[str, str]:
    """Not the web selector: the Service must never send visitors to a cron pod."""
    return {**site_labels(site), "app.kubernetes.io/component": CRON_COMPONENT}


def wordpress_cron_command(site: SiteConfig, timeout_seconds: int) -> list[str]:
    return [
        "curl",
        "--fail",
        "--silent",
        "--show-error",
        "--max-time",
        str(timeout_seconds),
        "--retry",
        "2",
        "--retry-delay",
        "10",
        "--header",
        f"Host: {site.domains[0]}",
        "--header",
        "X-Forwarded-Proto: https",
        # The site's Service, in the CronJob's own namespace.
        f"http://{site.name}{wordpress_config.CRON_PATH}",
    ]


def _container(site: SiteConfig, objects: PodObjects, deadline: int) -> dict[str, Any]:
    container: dict[str, Any] = {
        "name": CRON_COMPONENT,
        "image": site.image_ref,
        "imagePullPolicy": CRON_PULL_POLICY,
        "securityContext": container_security_context(),
    }
    if site.cms == "wordpress":
        # The request runs the events in a web pod; curl only waits for it.
        return {**container, "command": wordpress_cron_command(site, deadline - 30), "resources": SMALL_RESOURCES}
    return {
        **container,
        "command": ["php", drupal_settings.CRON_SCRIPT_PATH],
        "envFrom": env_from(site, objects),
        "env": [{"name": drupal_settings.SITE_HOST_ENV, "value": site.domains[0]}],
        # Drupal's cron runs in this pod: it gets what a web pod gets.
        "resources": resources_spec(site.resources),
        "volumeMounts": files_mounts(site) + config_mounts(site, cron=True),
    }


def cron_job_spec(site: SiteConfig, objects: PodObjects, *, offset: int, period: int) -> dict[str, Any]:
    deadline = period * 60 - 60  # stopped a minute before the next run is due
    pod: dict[str, Any] = {
        "restartPolicy": "Never",
        "securityContext": pod_security_context(serves_http=False),
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "containers": [_container(site, objects, deadline)],
    }
    if site.cms == "drupal":
        pod["initContainers"] = [prepare_volume_container(site, CRON_PULL_POLICY)]
        pod["volumes"] = volumes(site, objects)
    return {
        "schedule": cron_schedule(offset, period),
        "timeZone": TIME_ZONE,
        "concurrencyPolicy": "Forbid",
        # A run missed by more than half a period (controller down) is skipped, not made up.
        "startingDeadlineSeconds": period * 30,
        "suspend": site.suspended,
        "successfulJobsHistoryLimit": 1,
        "failedJobsHistoryLimit": 3,
        "jobTemplate": {
            "metadata": {"labels": cron_pod_labels(site)},
            "spec": {
                # The next run is at most an hour away: retrying now would only pile up.
                "backoffLimit": 0,
                "activeDeadlineSeconds": deadline,
                "template": {"metadata": {"labels": cron_pod_labels(site)}, "spec": pod},
            },
        },
    }
