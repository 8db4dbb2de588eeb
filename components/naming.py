"""Kubernetes names and labels derived from the config. Pure.

Every object name here is explicit and derived only from the site's name, so a harmless
config change (replicas, image, domains) never renames, and so never replaces, anything.
"""

from __future__ import annotations

from typing import Any, cast

import pulumi
import pulumi_kubernetes as k8s

from components.config import SiteConfig, StackConfig

PART_OF = "flightdeck"

# Where each CMS keeps user uploads: the part of the docroot that must be shared by all pods.
FILES_PATHS = {
    # All of wp-content: plugins and themes installed from the admin UI must reach every pod.
    "wordpress": "/var/www/html/wp-content",
    "drupal": "/opt/drupal/web/sites/default/files",
}


# The stack config is the source of truth for every field flightdeck sets: a manual edit of one
# (`kubectl scale`, `kubectl edit`) is drift that the next `up` repairs. Without this,
# server-side apply refuses to take a field back from the manager that changed it, and `up`
# fails with a field conflict (pulumi-kubernetes provider/pkg/await/await.go, patchForce).
OWNED_BY_THE_STACK = {"pulumi.com/patchForce": "true"}


def object_meta(
    name: str,
    namespace: pulumi.Input[str] | None = None,
    labels: dict[str, str] | None = None,
    annotations: dict[str, str] | None = None,
) -> k8s.meta.v1.ObjectMetaArgsDict:
    meta: dict[str, Any] = {"name": name}
    if namespace is not None:
        meta["namespace"] = namespace
    if labels:
        meta["labels"] = labels
    meta["annotations"] = {**(annotations or {}), **OWNED_BY_THE_STACK}
    # pulumi-kubernetes 4.25 types its ArgsDicts as plain Mappings under mypy.
    return cast("k8s.meta.v1.ObjectMetaArgsDict", meta)


def site_namespace(config: StackConfig, site: SiteConfig) -> str:
    return f"{config.kubernetes.namespace_prefix}{site.name}"


def site_labels(site: SiteConfig) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": site.cms,
        "app.kubernetes.io/instance": site.name,
        "app.kubernetes.io/part-of": PART_OF,
        "app.kubernetes.io/managed-by": "pulumi",
    }


def web_selector(site: SiteConfig) -> dict[str, str]:
    """The web pods' selector; immutable on a Deployment, so it never includes changeable fields."""
    return {"app.kubernetes.io/instance": site.name, "app.kubernetes.io/component": "web"}


def site_component_selector(site: SiteConfig, *components: str) -> dict[str, Any]:
    """A label selector for the site's pods of the given components (``web``, ``cron``)."""
    return {
        "matchLabels": {"app.kubernetes.io/instance": site.name},
        "matchExpressions": [{"key": "app.kubernetes.io/component", "operator": "In", "values": list(components)}],
    }


def cron_pod_labels(site: SiteConfig) -> dict[str, str]:
    """Labels the site's cron pods carry (the site CronJob's pod template)."""
    return {"app.kubernetes.io/instance": site.name, "app.kubernetes.io/component": "cron"}


def mariadb_pod_labels(mariadb_name: str) -> dict[str, str]:
    """The labels mariadb-operator puts on a MariaDB's server pods and selects them by.

    mariadb-operator v26.6 ``pkg/builder/labels/labels.go`` ``WithMariaDBSelectorLabels``:
    ``app.kubernetes.io/name: mariadb`` and ``app.kubernetes.io/instance: <MariaDB name>``.
    Both are needed: the instance label alone also matches other pods named after the resource.
    """
    return {"app.kubernetes.io/name": "mariadb", "app.kubernetes.io/instance": mariadb_name}


def files_claim_name(site: SiteConfig) -> str:
    return f"{site.name}-files"


def db_secret_name(site: SiteConfig) -> str:
    return f"{site.name}-db"


def tls_secret_name(site: SiteConfig) -> str:
    return f"{site.name}-tls"


def velero_schedule_name(site: SiteConfig) -> str:
    return f"site-{site.name}"


def db_backup_name(site: SiteConfig) -> str:
    return f"site-{site.name}"
