"""SiteWorkload: the CMS web pods, their Service and the TLS Ingress.

Pods run as the image's www-data user (uid 33), never privileged, with every capability
dropped; the unprivileged-port sysctl lets Apache keep listening on port 80 without root.
All replicas mount the site's ReadWriteMany volume (WordPress: all of wp-content; Drupal:
sites/default/files), so any pod serves any upload, plugin or theme; Drupal pods also share one
generated settings.php (components.drupal_settings).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

import pulumi
import pulumi_kubernetes as k8s
import pulumi_random as random

from components.config import SiteConfig
from components.drupal_settings import HASH_SALT_ENV, SETTINGS_PATH, render_settings, settings_digest
from components.mysql_cluster import resources_spec
from components.naming import FILES_PATHS, object_meta, site_labels, web_selector

WEB_USER_ID = 33  # www-data in the official wordpress and drupal images
HTTP_PORT = 80

# The official wordpress image configures itself from these; Drupal reads DB_* in the
# settings.php flightdeck mounts.
WORDPRESS_ENV = {
    "WORDPRESS_DB_HOST": "DB_ADDRESS",
    "WORDPRESS_DB_NAME": "DB_NAME",
    "WORDPRESS_DB_USER": "DB_USER",
    "WORDPRESS_DB_PASSWORD": "DB_PASSWORD",
}


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


def pod_security_context() -> dict[str, Any]:
    return {
        "runAsNonRoot": True,
        "runAsUser": WEB_USER_ID,
        "runAsGroup": WEB_USER_ID,
        "fsGroup": WEB_USER_ID,
        "fsGroupChangePolicy": "OnRootMismatch",
        "seccompProfile": {"type": "RuntimeDefault"},
        "sysctls": [{"name": "net.ipv4.ip_unprivileged_port_start", "value": "0"}],
    }


def container_env(site: SiteConfig, secret_name: str) -> list[dict[str, Any]]:
    env: list[dict[str, Any]] = []
    if site.cms == "wordpress":
        env += [
            {"name": name, "valueFrom": {"secretKeyRef": {"name": secret_name, "key": key}}}
            for name, key in WORDPRESS_ENV.items()
        ]
    env += [{"name": key, "value": value} for key, value in sorted(site.env.items())]
    return env


def pod_spec(site: SiteConfig, secret_name: str, claim_name: str, app_secret: str | None = None) -> dict[str, Any]:
    """``app_secret``: the Drupal site's Secret holding its hash salt (Drupal only)."""
    probe_port = {"port": HTTP_PORT}
    env_from = [{"secretRef": {"name": secret_name}}]
    mounts: list[dict[str, Any]] = [{"name": "files", "mountPath": FILES_PATHS[site.cms]}]
    volumes: list[dict[str, Any]] = [{"name": "files", "persistentVolumeClaim": {"claimName": claim_name}}]
    if site.cms == "drupal":
        env_from.append({"secretRef": {"name": app_secret or drupal_secret_name(site)}})
        mounts.append({"name": "settings", "mountPath": SETTINGS_PATH, "subPath": "settings.php", "readOnly": True})
        volumes.append({"name": "settings", "configMap": {"name": drupal_settings_name(site)}})
    return {
        "securityContext": pod_security_context(),
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "topologySpreadConstraints": [
            {
                "maxSkew": 1,
                "topologyKey": "kubernetes.io/hostname",
                "whenUnsatisfiable": "ScheduleAnyway",
                "labelSelector": {"matchLabels": web_selector(site)},
            }
        ],
        "containers": [
            {
                "name": site.cms,
                "image": site.image_ref,
                "ports": [{"name": "http", "containerPort": HTTP_PORT}],
                "envFrom": env_from,
                "env": container_env(site, secret_name),
                "resources": resources_spec(site.resources),
                "securityContext": container_security_context(),
                "volumeMounts": mounts,
                "startupProbe": {"tcpSocket": probe_port, "periodSeconds": 5, "failureThreshold": 60},
                "readinessProbe": {"tcpSocket": probe_port, "periodSeconds": 10},
                "livenessProbe": {"tcpSocket": probe_port, "periodSeconds": 20, "failureThreshold": 6},
            }
        ],
        "volumes": volumes,
    }


def drupal_settings_name(site: SiteConfig) -> str:
    return f"{site.name}-drupal-settings"


def drupal_secret_name(site: SiteConfig) -> str:
    return f"{site.name}-drupal"


def ingress_spec(site: SiteConfig, ingress_class: str, tls_secret: str) -> dict[str, Any]:
    backend = {"service": {"name": site.name, "port": {"name": "http"}}}
    return {
        "ingressClassName": ingress_class,
        "tls": [{"hosts": list(site.domains), "secretName": tls_secret}],
        "rules": [
            {"host": domain, "http": {"paths": [{"path": "/", "pathType": "Prefix", "backend": backend}]}}
            for domain in site.domains
        ],
    }


class SiteWorkload(pulumi.ComponentResource):
    def __init__(
        self,
        name: str,
        site: SiteConfig,
        *,
        namespace: pulumi.Input[str],
        secret_name: str,
        claim_name: str,
        tls_secret: str,
        ingress_class: str,
        depends_on: Sequence[pulumi.Resource] = (),
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("flightdeck:workload:SiteWorkload", name, None, opts)
        # On the resources themselves: a component's depends_on does not reach its children, and
        # the pods must roll only after the rotated password is in the Secret.
        child = pulumi.ResourceOptions(parent=self, depends_on=list(depends_on))
        labels = {**site_labels(site), **web_selector(site)}
        annotations = {"flightdeck.io/db-password-version": str(site.user.password_version)}
        pod_dependencies: list[pulumi.Resource] = []
        if site.cms == "drupal":
            settings = render_settings(site)
            annotations["flightdeck.io/settings-digest"] = settings_digest(settings)
            pod_dependencies += self._drupal_objects(name, site, namespace, settings, child)
        self.deployment = k8s.apps.v1.Deployment(
            f"{name}-deployment",
            metadata=object_meta(site.name, namespace, labels),
            spec=cast(
                "k8s.apps.v1.DeploymentSpecArgsDict",
                {
                    "replicas": site.replicas,
                    "selector": {"matchLabels": web_selector(site)},
                    "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}},
                    "template": {
                        # A new password version or settings.php rolls the pods so they pick it up.
                        "metadata": {"labels": labels, "annotations": annotations},
                        "spec": pod_spec(site, secret_name, claim_name),
                    },
                },
            ),
            opts=child.merge(pulumi.ResourceOptions(depends_on=pod_dependencies)),
        )
        self.service = k8s.core.v1.Service(
            f"{name}-service",
            metadata=object_meta(site.name, namespace, labels),
            spec=cast(
                "k8s.core.v1.ServiceSpecArgsDict",
                {
                    "selector": web_selector(site),
                    "ports": [{"name": "http", "port": HTTP_PORT, "targetPort": "http"}],
                },
            ),
            opts=child,
        )
        self.ingress = k8s.networking.v1.Ingress(
            f"{name}-ingress",
            metadata=object_meta(site.name, namespace, labels),
            spec=cast("k8s.networking.v1.IngressSpecArgsDict", ingress_spec(site, ingress_class, tls_secret)),
            opts=child.merge(pulumi.ResourceOptions(depends_on=[self.service])),
        )
        self.register_outputs({"url": f"https://{site.domains[0]}/"})

    def _drupal_objects(
        self, name: str, site: SiteConfig, namespace: pulumi.Input[str], settings: str, child: pulumi.ResourceOptions
    ) -> list[pulumi.Resource]:
        """The shared settings.php and the site's hash salt (generated once, kept in a Secret)."""
        labels = site_labels(site)
        config_map = k8s.core.v1.ConfigMap(
            f"{name}-drupal-settings",
            metadata=object_meta(drupal_settings_name(site), namespace, labels),
            data={"settings.php": settings},
            opts=child,
        )
        hash_salt = random.RandomPassword(f"{name}-drupal-hash-salt", length=64, special=False, opts=child)
        secret = k8s.core.v1.Secret(
            f"{name}-drupal-secret",
            metadata=object_meta(drupal_secret_name(site), namespace, labels),
            type="Opaque",
            string_data={HASH_SALT_ENV: hash_salt.result},
            opts=child,
        )
        return [config_map, secret]
