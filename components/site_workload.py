"""SiteWorkload: the CMS web pods and what they need, their Service, TLS Ingress, disruption
budget and cron.

The pod itself is described in ``components.web_pod`` and the cron in ``components.cron_jobs``;
this component creates the objects: the ConfigMap of generated files, the CMS's own Secret
(WordPress keys and salts or the Drupal hash salt, generated once and independent of the
database password), the Deployment, Service, Ingress, PodDisruptionBudget and CronJob.

Drains without downtime: rolling updates never go below ``replicas`` ready pods
(``maxUnavailable: 0``), a PodDisruptionBudget lets a drain evict one web pod at a time, pods
spread over nodes and zones, and a terminating pod keeps serving for ``PRE_STOP_SECONDS`` while
the ingress controller drops it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

import pulumi
import pulumi_kubernetes as k8s
import pulumi_random as random

from components.config import DRUPAL_HASH_SALT_ENV, WORDPRESS_SALT_ENV, SiteConfig
from components.cron_jobs import cron_job_name, cron_job_spec
from components.naming import object_meta, site_labels, web_selector
from components.php_settings import BODY_SIZE_ANNOTATION, nginx_size, request_body_limit
from components.pod_inputs import CONFIG_DIGEST_ANNOTATION, SECRET_DIGEST_ANNOTATION, config_digest, secret_digest
from components.web_pod import HTTP_PORT, PodObjects, config_files, web_pod_spec
from components.wordpress_config import SALT_LENGTH

PASSWORD_VERSION_ANNOTATION = "flightdeck.io/db-password-version"  # noqa: S105 - an annotation key


@dataclass(frozen=True)
class CronPlacement:
    """When a site's cron runs: every ``period`` minutes from ``offset`` past the hour."""

    offset: int
    period: int


def database_settings(
    site: SiteConfig,
    *,
    host: pulumi.Input[str],
    read_host: pulumi.Input[str],
    port: pulumi.Input[int],
    password: pulumi.Input[str],
) -> pulumi.Output[dict[str, str]]:
    """Every input the site's database Secret (``components.site_database``) is built from."""
    settings = pulumi.Output.all(host=host, read_host=read_host, port=port, password=password).apply(
        lambda values: {
            "host": str(values["host"]),
            "readHost": str(values["read_host"]),
            "port": str(values["port"]),
            "database": site.database_name,
            "user": site.user_name,
            "password": str(values["password"]),
        }
    )
    secret: pulumi.Output[dict[str, str]] = pulumi.Output.secret(settings)
    return secret


def config_map_name(site: SiteConfig) -> str:
    return f"{site.name}-web-config"


def cms_secret_name(site: SiteConfig) -> str:
    return f"{site.name}-{site.cms}"


def deployment_strategy() -> dict[str, Any]:
    # Never below the configured capacity during a rollout; a quarter more pods while it runs.
    return {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": "25%"}}


def disruption_budget_spec(site: SiteConfig) -> dict[str, Any]:
    return {
        "maxUnavailable": 1,
        "selector": {"matchLabels": web_selector(site)},
        # A pod that is not ready serves nobody: evicting it must never block a node drain.
        "unhealthyPodEvictionPolicy": "AlwaysAllow",
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


def ingress_annotations(site: SiteConfig) -> dict[str, str]:
    return {BODY_SIZE_ANNOTATION: nginx_size(request_body_limit(site))}


class SiteWorkload(pulumi.ComponentResource):
    def __init__(
        self,
        name: str,
        site: SiteConfig,
        *,
        namespace: pulumi.Input[str],
        secret_name: str,
        database_settings: pulumi.Input[Mapping[str, str]],
        claim_name: str,
        tls_secret: str,
        ingress_class: str,
        proxy_addresses: list[str],
        cron: CronPlacement | None,
        depends_on: Sequence[pulumi.Resource] = (),
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        """``database_settings``: the (secret) values the site's database Secret holds."""
        super().__init__("flightdeck:workload:SiteWorkload", name, None, opts)
        # On the resources themselves: a component's depends_on does not reach its children, and
        # the pods must roll only after the rotated password is in the Secret.
        child = pulumi.ResourceOptions(parent=self, depends_on=list(depends_on))
        labels = {**site_labels(site), **web_selector(site)}
        objects = PodObjects(
            db_secret=secret_name, cms_secret=cms_secret_name(site), claim=claim_name, config_map=config_map_name(site)
        )

        files = config_files(site, proxy_addresses)
        self.config_map = k8s.core.v1.ConfigMap(
            f"{name}-config",
            metadata=object_meta(objects.config_map, namespace, site_labels(site)),
            data=files,
            opts=child,
        )
        cms_values = self._cms_secret_values(name, site, child)
        self.cms_secret = k8s.core.v1.Secret(
            f"{name}-{site.cms}-secret",
            metadata=object_meta(objects.cms_secret, namespace, site_labels(site)),
            type="Opaque",
            string_data=cms_values,
            opts=child,
        )
        pod_inputs = child.merge(pulumi.ResourceOptions(depends_on=[self.config_map, self.cms_secret]))

        # Everything the pods read only at start, as digests: any change rolls them.
        secrets_digest = pulumi.Output.all(database=database_settings, cms=cms_values).apply(
            lambda values: secret_digest(
                {f"database.{k}": v for k, v in values["database"].items()}
                | {f"cms.{k}": v for k, v in values["cms"].items()}
            )
        )
        annotations: dict[str, Any] = {
            PASSWORD_VERSION_ANNOTATION: str(site.user.password_version),
            CONFIG_DIGEST_ANNOTATION: config_digest(files),
            SECRET_DIGEST_ANNOTATION: pulumi.Output.unsecret(secrets_digest),
        }
        self.deployment = k8s.apps.v1.Deployment(
            f"{name}-deployment",
            metadata=object_meta(site.name, namespace, labels),
            spec=cast(
                "k8s.apps.v1.DeploymentSpecArgsDict",
                {
                    "replicas": site.web_replicas,
                    "selector": {"matchLabels": web_selector(site)},
                    "strategy": deployment_strategy(),
                    "revisionHistoryLimit": 5,
                    "template": {
                        "metadata": {"labels": labels, "annotations": annotations},
                        "spec": web_pod_spec(site, objects),
                    },
                },
            ),
            opts=pod_inputs,
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
            metadata=object_meta(site.name, namespace, labels, ingress_annotations(site)),
            spec=cast("k8s.networking.v1.IngressSpecArgsDict", ingress_spec(site, ingress_class, tls_secret)),
            opts=child.merge(pulumi.ResourceOptions(depends_on=[self.service])),
        )
        # With one pod a budget could only block drains or allow everything: none then.
        self.disruption_budget: k8s.policy.v1.PodDisruptionBudget | None = None
        if site.web_replicas >= 2:
            self.disruption_budget = k8s.policy.v1.PodDisruptionBudget(
                f"{name}-pdb",
                metadata=object_meta(site.name, namespace, labels),
                spec=cast("k8s.policy.v1.PodDisruptionBudgetSpecArgsDict", disruption_budget_spec(site)),
                opts=child,
            )
        self.cron_job: k8s.batch.v1.CronJob | None = None
        if cron is not None:
            self.cron_job = k8s.batch.v1.CronJob(
                f"{name}-cron",
                metadata=object_meta(cron_job_name(site), namespace, site_labels(site)),
                spec=cast(
                    "k8s.batch.v1.CronJobSpecArgsDict",
                    cron_job_spec(site, objects, offset=cron.offset, period=cron.period),
                ),
                opts=pod_inputs,
            )
        self.register_outputs({"url": f"https://{site.domains[0]}/"})

    def _cms_secret_values(
        self, name: str, site: SiteConfig, child: pulumi.ResourceOptions
    ) -> pulumi.Output[dict[str, str]]:
        """The CMS's generated secrets: never tied to the database password's version."""
        if site.cms == "wordpress":
            salts = {
                env: random.RandomPassword(
                    f"{name}-wordpress-{env.removeprefix('WORDPRESS_').lower().replace('_', '-')}",
                    length=SALT_LENGTH,
                    special=True,
                    keepers={"saltsVersion": str(site.salts_version)},
                    opts=child,
                ).result
                for env in WORDPRESS_SALT_ENV
            }
            wordpress: pulumi.Output[dict[str, str]] = pulumi.Output.secret(pulumi.Output.all(**salts))
            return wordpress
        # The hash salt predates saltsVersion: keepers appear only once it is bumped, so existing
        # stacks keep their salt (and their users' sessions) on upgrade.
        hash_salt = random.RandomPassword(
            f"{name}-drupal-hash-salt",
            length=64,
            special=False,
            keepers={"saltsVersion": str(site.salts_version)} if site.salts_version > 1 else None,
            opts=child,
        )
        drupal: pulumi.Output[dict[str, str]] = pulumi.Output.secret(
            hash_salt.result.apply(lambda value: {DRUPAL_HASH_SALT_ENV: value})
        )
        return drupal
