"""Platform: the whole stack for one cluster, built from the validated config."""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components.backup_schedules import SiteBackupPlan
from components.certificates import ClusterIssuer
from components.change_guard import OUTPUT_NAME, deployment_record
from components.config import MySQLOperatorConfig, backup_window, plan_backups, plan_cron
from components.config.database_server import topology
from components.mysql_cluster import MySQLCluster
from components.operators import Operators, operator_namespace
from components.rook_storage import RookStorage, rook_operator_namespace
from components.site import Site
from components.stack_config import StackSettings


class Platform(pulumi.ComponentResource):
    sites: dict[str, Site]

    def __init__(self, name: str, settings: StackSettings, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("flightdeck:platform:Platform", name, None, opts)
        config = settings.config
        self.provider = k8s.Provider(
            f"{name}-kubernetes",
            kubeconfig=settings.kubeconfig,
            context=config.kubernetes.context,
            cluster_identifier=config.kubernetes.cluster_identifier,
            # Rotating a password updates the Secret in place instead of replacing it.
            enable_secret_mutable=True,
            enable_config_map_mutable=True,
            opts=pulumi.ResourceOptions(parent=self),
        )
        child = pulumi.ResourceOptions(parent=self, providers=[self.provider])

        self.operators = Operators(f"{name}-operators", config, opts=child)
        self.cluster = MySQLCluster(
            f"{name}-mysql",
            config.mysql,
            kubeconfig=settings.kubeconfig,
            kube_context=config.kubernetes.context,
            admin_password=settings.mysql_admin_password,
            operator_namespace=operator_namespace("mariadb_operator", config.operators.mariadb_operator),
            depends_on=self.operators.ready("mariadb_operator"),
            opts=child,
        )
        self.storage = (
            RookStorage(
                f"{name}-storage",
                config.storage.rook,
                storage_class=config.storage.storage_class,
                operator_namespace=rook_operator_namespace(config),
                depends_on=self.operators.ready("rook_ceph"),
                opts=child,
            )
            if config.storage.rook
            else None
        )
        self.issuer = ClusterIssuer(
            f"{name}-issuer", config.certificates, depends_on=self.operators.ready("cert_manager"), opts=child
        )

        slots = plan_backups(config)
        cron_offsets = plan_cron(config)
        window = backup_window(config)
        backup_dependencies: list[pulumi.Resource] = [
            *self.operators.ready("velero"),
            *([self.cluster.mariadb] if self.cluster.mariadb else []),
        ]
        storage_dependencies: list[pulumi.Resource] = (
            [self.storage.filesystem, self.storage.storage_class] if self.storage else []
        )
        self.sites = {
            site.name: Site(
                site.name,
                site,
                config=config,
                cluster=self.cluster,
                issuer=self.issuer,
                backup_plan=SiteBackupPlan.from_slots(site, slots, window),
                backup_depends_on=backup_dependencies,
                storage_depends_on=storage_dependencies,
                database_depends_on=self.cluster.namespace_resources,
                cron_offset=cron_offsets.get(site.name),
                opts=child,
            )
            for site in config.sites
        }
        self.summary = {
            "mysql": {
                "mode": config.mysql.mode,
                "primaryHost": self.cluster.primary_host,
                "secondaryHost": self.cluster.secondary_host,
                "port": self.cluster.port,
                "servers": config.mysql.reader_count + 1 if isinstance(config.mysql, MySQLOperatorConfig) else None,
                "topology": topology(config.mysql),
            },
            "sites": {name: self._site_summary(site) for name, site in self.sites.items()},
            # What the next run compares against before it changes anything (components.change_guard).
            OUTPUT_NAME: deployment_record(config),
        }
        self.register_outputs(self.summary)

    @staticmethod
    def _site_summary(site: Site) -> dict[str, Any]:
        return {
            "namespace": site.namespace_name,
            "url": site.url,
            "domains": site.certificate.dns_names,
            "database": site.database.database.database,
            "user": site.database.user.user,
            "filesClaim": site.volume.claim_name,
            "backups": site.backups.times,
            "backupSources": site.backups.sources,
        }
