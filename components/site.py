"""Site: everything one hosted site owns, isolated in its own namespace."""

from __future__ import annotations

from collections.abc import Sequence

import pulumi
import pulumi_kubernetes as k8s

from components.backup_schedules import SiteBackupPlan, SiteBackups
from components.certificates import ClusterIssuer, SiteCertificate
from components.config import SiteConfig, StackConfig
from components.config.database_server import site_connection_limit
from components.data_retention import Retention
from components.mysql_cluster import MySQLCluster
from components.naming import object_meta, site_labels, site_namespace
from components.network_policies import SiteNetworkPolicies, database_target
from components.shared_volume import SharedVolume
from components.site_database import SiteDatabase
from components.site_workload import CronPlacement, SiteWorkload, database_settings


class Site(pulumi.ComponentResource):
    namespace_name: str
    url: str

    def __init__(
        self,
        name: str,
        site: SiteConfig,
        *,
        config: StackConfig,
        cluster: MySQLCluster,
        issuer: ClusterIssuer,
        backup_plan: SiteBackupPlan,
        backup_depends_on: Sequence[pulumi.Resource] = (),
        storage_depends_on: Sequence[pulumi.Resource] = (),
        database_depends_on: Sequence[pulumi.Resource] = (),
        cron_offset: int | None = None,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("flightdeck:site:Site", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.namespace_name = site_namespace(config, site)
        # Deleting a namespace deletes the claim in it, so the namespace is kept like the data.
        retention = Retention.for_site(site)
        self.namespace = k8s.core.v1.Namespace(
            f"{name}-namespace",
            metadata=object_meta(self.namespace_name, labels=site_labels(site), annotations=retention.annotations),
            opts=child.merge(retention.options),
        )
        namespace = self.namespace.metadata["name"]
        self.database = SiteDatabase(
            f"{name}-db",
            site,
            namespace=namespace,
            admin_connection=cluster.admin_connection,
            primary_host=cluster.primary_host,
            secondary_host=cluster.secondary_host,
            port=cluster.port,
            max_user_connections=site_connection_limit(site, config.mysql),
            opts=child,
        )
        self.volume = SharedVolume(
            f"{name}-files",
            site,
            namespace=namespace,
            storage_class=config.storage.storage_class,
            depends_on=storage_depends_on,
            opts=child,
        )
        self.certificate = SiteCertificate(f"{name}-tls", site, namespace=namespace, issuer=issuer, opts=child)
        self.network = SiteNetworkPolicies(
            f"{name}-network",
            site,
            namespace=self.namespace_name,
            ingress_namespace=config.certificates.ingress_controller_namespace,
            egress=config.kubernetes.egress,
            database=database_target(config, cluster.mariadb_name, cluster.namespace),
            depends_on=[self.namespace, *database_depends_on],
            opts=child,
        )
        self.workload = SiteWorkload(
            f"{name}-web",
            site,
            namespace=namespace,
            secret_name=self.database.secret_name,
            database_settings=database_settings(
                site,
                host=cluster.primary_host,
                read_host=cluster.secondary_host,
                port=cluster.port,
                password=self.database.password,
            ),
            claim_name=self.volume.claim_name,
            tls_secret=self.certificate.secret_name,
            ingress_class=config.certificates.ingress_class,
            proxy_addresses=list(config.certificates.ingress_controller_addresses),
            cron=None if cron_offset is None else CronPlacement(cron_offset, site.cron.every_minutes),
            depends_on=[self.database.secret, self.volume.claim, self.certificate.certificate],
            opts=child,
        )
        self.backups = SiteBackups(
            f"{name}-backups",
            site,
            backup_plan,
            namespace=self.namespace_name,
            backups=config.backups,
            mariadb_name=cluster.mariadb_name,
            mariadb_namespace=cluster.namespace,
            depends_on=[self.namespace, *backup_depends_on],
            opts=child,
        )
        self.url = f"https://{site.domains[0]}/"
        self.register_outputs({"namespace": self.namespace_name, "url": self.url, "database": site.database_name})
