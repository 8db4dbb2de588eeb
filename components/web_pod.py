"""The pod a site's web Deployment (and its cron) runs: containers, mounts, probes, spreading. Pure.

Pods run as the image's www-data user (uid 33), never privileged, with every capability
dropped; the unprivileged-port sysctl lets Apache keep listening on port 80 without root.
All replicas mount the site's ReadWriteMany volume (WordPress: all of wp-content; Drupal: its
public, private and config-sync directories, see ``components.drupal_settings``), so any pod
serves any upload, plugin or theme; the generated files (PHP ini, settings.php, Apache's
remoteip.conf) come from one ConfigMap.

Probes send the site's primary host name (Drupal's trusted_host_patterns refuse any other)
and ``X-Forwarded-Proto: https`` (the image's wp-config.php then treats the request as TLS, as
it does behind the ingress, instead of redirecting it). Startup and liveness fetch a static
file: they prove Apache answers without depending on the database, so a database failover
never restarts web pods; readiness loads a login page, which needs PHP and a database read
and writes nothing, so a pod that cannot serve pages leaves the Service.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from components import drupal_settings, wordpress_config
from components.config import WORDPRESS_CONFIG_EXTRA_ENV, SiteConfig
from components.image_reference import parse_image
from components.mysql_cluster import resources_spec
from components.naming import FILES_PATHS, web_selector
from components.php_settings import INI_PATH, render_php_ini

WEB_USER_ID = 33  # www-data in the official wordpress and drupal images
HTTP_PORT = 80
FILES_VOLUME = "files"
CONFIG_VOLUME = "config"
PHP_INI_KEY = "php.ini"
REMOTEIP_KEY = "remoteip.conf"
SETTINGS_KEY = "settings.php"
CRON_SCRIPT_KEY = "cron.php"
# Long enough for the ingress controller to drop a terminating pod from its upstreams before
# Apache stops taking requests (the endpoint update is asynchronous).
PRE_STOP_SECONDS = 5
TERMINATION_GRACE_SECONDS = 60
# The official wordpress image configures itself from these; Drupal reads DB_* in settings.php.
WORDPRESS_DB_KEYS = {
    "WORDPRESS_DB_HOST": "DB_ADDRESS",
    "WORDPRESS_DB_NAME": "DB_NAME",
    "WORDPRESS_DB_USER": "DB_USER",
    "WORDPRESS_DB_PASSWORD": "DB_PASSWORD",
}
SMALL_RESOURCES = {"requests": {"cpu": "10m", "memory": "16Mi"}, "limits": {"memory": "64Mi"}}


@dataclass(frozen=True)
class PodObjects:
    """Names of the objects a site's pods use."""

    db_secret: str
    cms_secret: str
    claim: str
    config_map: str


def container_security_context() -> dict[str, Any]:
    return {
        "runAsNonRoot": True,
        "runAsUser": WEB_USER_ID,
        "runAsGroup": WEB_USER_ID,
        "allowPrivilegeEscalation": False,
        "privileged": False,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def pod_security_context(*, serves_http: bool = True) -> dict[str, Any]:
    context: dict[str, Any] = {
        "runAsNonRoot": True,
        "runAsUser": WEB_USER_ID,
        "runAsGroup": WEB_USER_ID,
        "fsGroup": WEB_USER_ID,
        "fsGroupChangePolicy": "OnRootMismatch",
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    if serves_http:
        context["sysctls"] = [{"name": "net.ipv4.ip_unprivileged_port_start", "value": "0"}]
    return context


def image_pull_policy(site: SiteConfig) -> str:
    """A tag is rebuilt upstream for security fixes: pull it at every start, or a node keeps the
    first copy it cached forever. A digest never changes, so the cached copy is the image."""
    return "IfNotPresent" if parse_image(site.image_ref).pinned else "Always"


def probe_headers(site: SiteConfig) -> list[dict[str, str]]:
    return [{"name": "Host", "value": site.domains[0]}, {"name": "X-Forwarded-Proto", "value": "https"}]


def _http_probe(site: SiteConfig, path: str, **timing: int) -> dict[str, Any]:
    return {"httpGet": {"path": path, "port": "http", "httpHeaders": probe_headers(site)}, **timing}


def probes(site: SiteConfig) -> dict[str, Any]:
    cms = wordpress_config if site.cms == "wordpress" else drupal_settings
    return {
        # A first start copies WordPress into the pod (the image's entrypoint) before Apache
        # listens; five minutes before liveness takes over.
        "startupProbe": _http_probe(site, cms.LIVENESS_PATH, periodSeconds=5, timeoutSeconds=3, failureThreshold=60),
        "livenessProbe": _http_probe(site, cms.LIVENESS_PATH, periodSeconds=20, timeoutSeconds=5, failureThreshold=6),
        "readinessProbe": _http_probe(
            site, cms.READINESS_PATH, periodSeconds=10, timeoutSeconds=5, failureThreshold=3, successThreshold=1
        ),
    }


def config_files(site: SiteConfig, proxy_addresses: list[str]) -> dict[str, str]:
    """The ConfigMap of generated files, by key."""
    files = {PHP_INI_KEY: render_php_ini(site)}
    if site.cms == "wordpress":
        files[REMOTEIP_KEY] = wordpress_config.render_remoteip_conf(proxy_addresses)
    else:
        files[SETTINGS_KEY] = drupal_settings.render_settings(site, proxy_addresses)
        files[CRON_SCRIPT_KEY] = drupal_settings.CRON_SCRIPT
    return files


def _config_mount(key: str, path: str) -> dict[str, Any]:
    # subPath mounts never see ConfigMap updates: the config digest rolls the pods instead.
    return {"name": CONFIG_VOLUME, "mountPath": path, "subPath": key, "readOnly": True}


def files_mounts(site: SiteConfig) -> list[dict[str, Any]]:
    if site.cms == "wordpress":
        return [{"name": FILES_VOLUME, "mountPath": FILES_PATHS["wordpress"]}]
    return [
        {"name": FILES_VOLUME, "mountPath": path, "subPath": directory}
        for directory, path in drupal_settings.VOLUME_DIRECTORIES.items()
    ]


def config_mounts(site: SiteConfig, *, cron: bool = False) -> list[dict[str, Any]]:
    mounts = [_config_mount(PHP_INI_KEY, INI_PATH)]
    if site.cms == "wordpress":
        mounts.append(_config_mount(REMOTEIP_KEY, wordpress_config.REMOTEIP_CONF_PATH))
    else:
        mounts.append(_config_mount(SETTINGS_KEY, drupal_settings.SETTINGS_PATH))
        if cron:
            mounts.append(_config_mount(CRON_SCRIPT_KEY, drupal_settings.CRON_SCRIPT_PATH))
    return mounts


def volumes(site: SiteConfig, objects: PodObjects) -> list[dict[str, Any]]:
    return [
        {"name": FILES_VOLUME, "persistentVolumeClaim": {"claimName": objects.claim}},
        {"name": CONFIG_VOLUME, "configMap": {"name": objects.config_map, "defaultMode": 0o444}},
    ]


def env_from(site: SiteConfig, objects: PodObjects) -> list[dict[str, Any]]:
    # The site's database Secret (DB_*), then the CMS's own Secret (WordPress keys and salts,
    # or the Drupal hash salt).
    return [{"secretRef": {"name": objects.db_secret}}, {"secretRef": {"name": objects.cms_secret}}]


def container_env(site: SiteConfig, objects: PodObjects) -> list[dict[str, Any]]:
    env: list[dict[str, Any]] = []
    if site.cms == "wordpress":
        env += [
            {"name": name, "valueFrom": {"secretKeyRef": {"name": objects.db_secret, "key": key}}}
            for name, key in WORDPRESS_DB_KEYS.items()
        ]
        env.append({"name": WORDPRESS_CONFIG_EXTRA_ENV, "value": wordpress_config.config_extra(site)})
    env += [
        {"name": key, "value": value}
        for key, value in sorted(site.env.items())
        if not (site.cms == "wordpress" and key == WORDPRESS_CONFIG_EXTRA_ENV)  # merged above
    ]
    return env


def prepare_volume_container(site: SiteConfig, pull_policy: str) -> dict[str, Any]:
    """Drupal: create the volume's directories as www-data before anything mounts them.

    A subPath that does not exist yet is created by the kubelet as root, which the web user
    may then be unable to write; creating them here (``mkdir -p`` is a no-op afterwards) keeps
    them owned by uid 33.
    """
    root = "/volume"
    return {
        "name": "prepare-volume",
        "image": site.image_ref,
        "imagePullPolicy": pull_policy,
        "command": ["mkdir", "-p", *(f"{root}/{directory}" for directory in drupal_settings.VOLUME_DIRECTORIES)],
        "resources": SMALL_RESOURCES,
        "securityContext": container_security_context(),
        "volumeMounts": [{"name": FILES_VOLUME, "mountPath": root}],
    }


def topology_spread(site: SiteConfig) -> list[dict[str, Any]]:
    """One pod per node and per zone as far as the cluster allows.

    ``ScheduleAnyway``: a hard rule would leave pods Pending whenever a node or zone lacks room
    (or a cluster has no zone labels), which costs more availability than it buys; the PDB is
    what makes drains safe. ``matchLabelKeys`` spreads each rollout's new pods on their own,
    ``nodeTaintsPolicy: Honor`` ignores cordoned (draining) nodes.
    """
    return [
        {
            "maxSkew": 1,
            "topologyKey": key,
            "whenUnsatisfiable": "ScheduleAnyway",
            "labelSelector": {"matchLabels": web_selector(site)},
            "matchLabelKeys": ["pod-template-hash"],
            "nodeTaintsPolicy": "Honor",
        }
        for key in ("kubernetes.io/hostname", "topology.kubernetes.io/zone")
    ]


def web_pod_spec(site: SiteConfig, objects: PodObjects) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "securityContext": pod_security_context(),
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "terminationGracePeriodSeconds": TERMINATION_GRACE_SECONDS,
        "topologySpreadConstraints": topology_spread(site),
        "containers": [
            {
                "name": site.cms,
                "image": site.image_ref,
                "imagePullPolicy": image_pull_policy(site),
                "ports": [{"name": "http", "containerPort": HTTP_PORT}],
                "envFrom": env_from(site, objects),
                "env": container_env(site, objects),
                "resources": resources_spec(site.resources),
                "securityContext": container_security_context(),
                "volumeMounts": files_mounts(site) + config_mounts(site),
                "lifecycle": {"preStop": {"sleep": {"seconds": PRE_STOP_SECONDS}}},
                **probes(site),
            }
        ],
        "volumes": volumes(site, objects),
    }
    if site.cms == "drupal":
        spec["initContainers"] = [prepare_volume_container(site, image_pull_policy(site))]
    return spec
