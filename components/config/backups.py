"""The ``backups`` section of the stack config. Pure."""

from __future__ import annotations

from pydantic import Field

from components.config.values import Clock, K8sName, StorageQuantity, Strict, TimeZone


class BackupWindowConfig(Strict):
    start: Clock = Field("01:00", description="window start, `HH:MM`")
    end: Clock = Field("05:00", description="window end, `HH:MM` (before start: wraps past midnight)")
    time_zone: TimeZone = Field("UTC", description="time zone of start and end")
    slot_minutes: int = Field(15, ge=1, le=1440, description="length of one start slot")


class VeleroBackupsConfig(Strict):
    enabled: bool = Field(True, description="a Velero Schedule per site (namespace + file-system backup of volumes)")
    namespace: K8sName = Field("velero", description="namespace Velero runs in (Schedules live there)")
    storage_location: K8sName = Field("default", description="Velero BackupStorageLocation")


class S3BackupStorage(Strict):
    bucket: str = Field(min_length=3, description="bucket")
    endpoint: str = Field(min_length=1, description="S3 endpoint host[:port]")
    region: str | None = Field(None, description="region")
    prefix: str | None = Field(None, description="key prefix")
    credentials_secret: K8sName = Field(
        description="Secret (in the MariaDB namespace) with access-key-id, secret-access-key"
    )


class PvcBackupStorage(Strict):
    size: StorageQuantity = Field("50Gi", description="size of the backup volume")
    storage_class: str | None = Field(None, description="storage class; none uses the default")


class DatabaseBackupStorage(Strict):
    persistent_volume_claim: PvcBackupStorage | None = Field(None, description="a volume in the MariaDB namespace")
    s3: S3BackupStorage | None = Field(None, description="an S3 bucket")


class DatabaseBackupsConfig(Strict):
    enabled: bool = Field(True, description="a logical (mariadb-dump) backup per site database (operator mode)")
    storage: DatabaseBackupStorage = Field(
        default_factory=lambda: DatabaseBackupStorage(persistentVolumeClaim=PvcBackupStorage()),
        description="where dumps go (exactly one of persistentVolumeClaim, s3)",
    )


class BackupsConfig(Strict):
    velero: VeleroBackupsConfig = Field(default_factory=VeleroBackupsConfig, description="file backups")
    database_backups: DatabaseBackupsConfig = Field(default_factory=DatabaseBackupsConfig, description="database dumps")
    window: BackupWindowConfig = Field(default_factory=BackupWindowConfig, description="nightly window")
    max_concurrent: int = Field(2, ge=1, le=100, description="most backups that may start in one slot")
    retention_days: int = Field(30, ge=1, le=3650, description="days a backup is kept")
