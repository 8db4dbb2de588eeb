"""BackupSchedules: each site's Velero Schedule and logical database Backup.

Start times come from ``components.backup_slots`` (via ``config.plan_backups``): spread over
the nightly window, at most ``maxConcurrent`` starting per slot, and stable when sites come
and go. Velero backs up the site's namespace with a file-system backup of its RWX volume;
mariadb-operator dumps the site's database alone (``databases: [<db>]``), so one site can be
restored without touching the others.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components.backup_slots import BackupWindow
from components.config import BackupsConfig, DatabaseBackupStorage, S3TlsConfig, SiteConfig
from components.data_retention import Retention
from components.naming import db_backup_name, object_meta, site_labels, velero_schedule_name


@dataclass(frozen=True)
class SiteBackupPlan:
    """When one site's backups start; ``None`` means that backup is off."""

    files_at: tuple[int, int] | None
    database_at: tuple[int, int] | None

    @property
    def files_clock(self) -> str | None:
        return _clock(self.files_at)

    @property
    def database_clock(self) -> str | None:
        return _clock(self.database_at)

    @classmethod
    def from_slots(cls, site: SiteConfig, slots: Mapping[str, int], window: BackupWindow) -> SiteBackupPlan:
        def start(job: str) -> tuple[int, int] | None:
            return window.slot_start(slots[job]) if job in slots else None

        return cls(start(f"files/{site.name}"), start(f"db/{site.name}"))


def _clock(at: tuple[int, int] | None) -> str | None:
    return f"{at[0]:02d}:{at[1]:02d}" if at else None


def daily_cron(at: tuple[int, int]) -> str:
    hour, minute = at
    return f"{minute} {hour} * * *"


def with_time_zone(cron: str, time_zone: str) -> str:
    """Velero reads robfig/cron's ``CRON_TZ=`` prefix; without it the schedule runs in UTC."""
    return cron if time_zone == "UTC" else f"CRON_TZ={time_zone} {cron}"


def retention_hours(site: SiteConfig, backups: BackupsConfig) -> str:
    days = site.backup.retention_days or backups.retention_days
    return f"{days * 24}h0m0s"


def velero_schedule_spec(
    site: SiteConfig, namespace: str, at: tuple[int, int], backups: BackupsConfig
) -> dict[str, Any]:
    return {
        "schedule": with_time_zone(daily_cron(at), backups.window.time_zone),
        "useOwnerReferencesInBackup": False,
        # Otherwise a new Schedule backs up at once, and the first deploy starts them all together.
        "skipImmediately": True,
        "template": {
            "includedNamespaces": [namespace],
            "defaultVolumesToFsBackup": True,
            "snapshotVolumes": False,
            "storageLocation": backups.velero.storage_location,
            "ttl": retention_hours(site, backups),
            "metadata": {"labels": site_labels(site)},
        },
    }


def s3_tls(tls: S3TlsConfig) -> dict[str, Any]:
    """The Backup's ``storage.s3.tls``: the operator talks plain HTTP to S3 unless ``enabled`` is set
    (mariadb-operator v26.6 Backup CRD, ``storage.s3.tls.enabled``), so flightdeck turns it on by default."""
    spec: dict[str, Any] = {"enabled": tls.enabled}
    if tls.enabled and tls.ca_secret:
        spec["caSecretKeyRef"] = {"name": tls.ca_secret, "key": tls.ca_key}
    return spec


def database_backup_storage(site: SiteConfig, storage: DatabaseBackupStorage) -> dict[str, Any]:
    if storage.s3 is not None:
        s3 = storage.s3
        prefix = f"{s3.prefix.rstrip('/')}/{site.name}" if s3.prefix else site.name
        return {
            "s3": {
                "bucket": s3.bucket,
                "endpoint": s3.endpoint,
                "prefix": prefix,
                **({"region": s3.region} if s3.region else {}),
                "accessKeyIdSecretKeyRef": {"name": s3.credentials_secret, "key": "access-key-id"},
                "secretAccessKeySecretKeyRef": {"name": s3.credentials_secret, "key": "secret-access-key"},
                "tls": s3_tls(s3.tls),
            }
        }
    assert storage.persistent_volume_claim is not None
    claim = storage.persistent_volume_claim
    return {
        "persistentVolumeClaim": {
            "accessModes": ["ReadWriteOnce"],
            "resources": {"requests": {"storage": claim.size}},
            **({"storageClassName": claim.storage_class} if claim.storage_class else {}),
        }
    }


def database_backup_spec(
    site: SiteConfig, mariadb_name: str, at: tuple[int, int], backups: BackupsConfig
) -> dict[str, Any]:
    return {
        "mariaDbRef": {"name": mariadb_name},
        "databases": [site.database_name],
        "schedule": {"cron": daily_cron(at)},
        "timeZone": backups.window.time_zone,
        "maxRetention": retention_hours(site, backups),
        "compression": "gzip",
        "storage": database_backup_storage(site, backups.database_backups.storage),
    }


class SiteBackups(pulumi.ComponentResource):
    """The site's entry in the backup schedule: a Velero Schedule and a database Backup."""

    def __init__(
        self,
        name: str,
        site: SiteConfig,
        plan: SiteBackupPlan,
        *,
        namespace: str,
        backups: BackupsConfig,
        mariadb_name: str | None,
        mariadb_namespace: str | None,
        depends_on: Sequence[pulumi.Resource] = (),
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("flightdeck:backups:SiteBackups", name, None, opts)
        child = pulumi.ResourceOptions(parent=self, depends_on=list(depends_on))
        self.schedule: k8s.apiextensions.CustomResource | None = None
        self.database_backup: k8s.apiextensions.CustomResource | None = None
        if plan.files_at is not None:
            self.schedule = k8s.apiextensions.CustomResource(
                f"{name}-velero",
                api_version="velero.io/v1",
                kind="Schedule",
                metadata=object_meta(velero_schedule_name(site), backups.velero.namespace, site_labels(site)),
                spec=velero_schedule_spec(site, namespace, plan.files_at, backups),
                opts=child,
            )
        if plan.database_at is not None and mariadb_name and mariadb_namespace:
            retention = Retention.for_site(site)
            self.database_backup = k8s.apiextensions.CustomResource(
                f"{name}-database",
                api_version="k8s.mariadb.com/v1alpha1",
                kind="Backup",
                metadata=object_meta(db_backup_name(site), mariadb_namespace, site_labels(site), retention.annotations),
                spec=database_backup_spec(site, mariadb_name, plan.database_at, backups),
                # mariadb-operator owns a Backup's volume: deleting the Backup deletes the dumps.
                opts=child.merge(retention.options),
            )
        self.times = {"files": plan.files_clock, "database": plan.database_clock, "timeZone": backups.window.time_zone}
        # What `flightdeck restore` needs to find this site's backups, from the deployed stack.
        self.sources: dict[str, Any] = {
            "velero": (
                {"namespace": backups.velero.namespace, "schedule": velero_schedule_name(site)}
                if self.schedule is not None
                else None
            ),
            "database": (
                {"namespace": mariadb_namespace, "backup": db_backup_name(site), "mariadb": mariadb_name}
                if self.database_backup is not None
                else None
            ),
        }
        self.register_outputs({**self.times, "sources": self.sources})
