"""SiteWorkload: the CMS web pods, their Service and the TLS Ingress.

Pods run as the image's www-data user (uid 33), never privileged, with every capability
dropped; the unprivileged-port sysctl lets Apache keep listening on port 80 without root.
All replicas mount the site's ReadWriteMany volume at the CMS's uploads path, so any pod can
serve any upload.
"""

from __future__ import annotations

from typing import Any, cast

import pulumi
import pulumi_kubernetes as k8s

from components.config import SiteConfig
from components.mysql_cluster import resources_spec
from components.naming import FILES_PATHS, object_meta, site_labels, web_selector

WEB_USER_ID = 33  # www-data in the official wordpress and drupal images
HTTP_PORT = 80

# The official wordpress image configures itself from these; Drupal reads DB_* in settings.php.
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


def pod_spec(site: SiteConfig, secret_name: str, claim_name: str) -> dict[str, Any]:
    probe_port = {"port": HTTP_PORT}
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
                "envFrom": [{"secretRef": {"name": secret_name}}],
                "env": container_env(site, secret_name),
                "resources": resources_spec(site.resources),
                "securityContext": container_security_context(),
                "volumeMounts": [{"name": "files", "mountPath": FILES_PATHS[site.cms]}],
                "startupProbe": {"tcpSocket": probe_port, "periodSeconds": 5, "failureThreshold": 60},
                "readinessProbe": {"tcpSocket": probe_port, "periodSeconds": 10},
                "livenessProbe": {"tcpSocket": probe_port, "periodSeconds": 20, "failureThreshold": 6},
            }
        ],
        "volumes": [{"name": "files", "persistentVolumeClaim": {"claimName": claim_name}}],
    }


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
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("flightdeck:workload:SiteWorkload", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        labels = {**site_labels(site), **web_selector(site)}
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
                        # A new password version rolls the pods so they pick up the rotated secret.
                        "metadata": {
                            "labels": labels,
                            "annotations": {"flightdeck.io/db-password-version": str(site.user.password_version)},
                        },
                        "spec": pod_spec(site, secret_name, claim_name),
                    },
                },
            ),
            opts=child,
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
