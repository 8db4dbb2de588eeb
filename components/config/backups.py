"""The ``backups`` section of the stack config. Pure."""

from __future__ import annotations

from pydantic import Field

from components.config.values import Clock, HttpUrl, Image, K8sName, StorageQuantity, Strict, TimeZone


class BackupWindowConfig(Strict):
    start: Clock = Field("01:00", description="window start, `HH:MM`")
    end: Clock = Field("05:00", description="window end, `HH:MM` (before start: wraps past midnight)")
    time_zone: TimeZone = Field("UTC", description="time zone of start and end")
    slot_minutes: int = Field(15, ge=1, le=1440, description="length of one start slot")


class BackupStorageLocationConfig(Strict):
    """Where the Velero release flightdeck installs keeps its backups (an S3-compatible bucket)."""

    provider: str = Field(
        "aws",
        pattern=r"^[a-z0-9][a-z0-9./-]*$",
        description="object store plugin name (`aws`: any S3-compatible store)",
    )
    plugin_image: Image = Field(
        description="the provider plugin image, installed as an init container, e.g. "
        "`velero/velero-plugin-for-aws:v1.14.0` (plugin v1.14.x pairs with Velero 1.18)"
    )
    bucket: str = Field(min_length=3, max_length=63, pattern=r"^[a-z0-9][a-z0-9.-]*[a-z0-9]$", description="bucket")
    prefix: str | None = Field(
        None, pattern=r"^[A-Za-z0-9][A-Za-z0-9._/-]*$", description="key prefix inside the bucket"
    )
    region: str | None = Field(None, min_length=1, description="region (`config.region`)")
    s3_url: HttpUrl | None = Field(
        None, description="S3 endpoint URL for non-AWS stores, e.g. `https://rgw.example.org`"
    )
    s3_force_path_style: bool | None = Field(
        None, description="path-style bucket addressing; none: on when `s3Url` is set (Ceph RGW, MinIO)"
    )
    config: dict[str, str] = Field(
        default_factory=dict,
        description='further provider settings (`config`), e.g. `checksumAlgorithm: ""` for Ceph RGW',
    )
    credentials_secret: K8sName = Field(
        description="Secret in the Velero namespace holding the plugin's credentials file (AWS format)"
    )
    credentials_key: str = Field(
        "cloud", pattern=r"^[-._A-Za-z0-9]+$", description="key of the credentials file in that Secret"
    )


class VeleroBackupsConfig(Strict):
    enabled: bool = Field(True, description="a Velero Schedule per site (namespace + file-system backup of volumes)")
    namespace: K8sName = Field("velero", description="namespace Velero runs in (Schedules live there)")
    storage_location: K8sName = Field(
        "default", description="name of the BackupStorageLocation the Schedules use (and that flightdeck configures)"
    )
    backup_storage_location: BackupStorageLocationConfig | None = Field(
        None,
        description="the location's bucket and credentials; required when flightdeck installs Velero "
        "(`operators.velero.enabled`), refused otherwise (the running Velero's location is used)",
    )


class S3TlsConfig(Strict):
    enabled: bool = Field(
        True, description="HTTPS to the endpoint; turn off only for a plain-HTTP store on a trusted network"
    )
    ca_secret: K8sName | None = Field(
        None, description="Secret (in the MariaDB namespace) with a PEM CA bundle; none uses the system trust store"
    )
    ca_key: str = Field("ca.crt", pattern=r"^[-._A-Za-z0-9]+$", description="key of the bundle in `caSecret`")


class S3BackupStorage(Strict):
    bucket: str = Field(min_length=3, description="bucket")
    endpoint: str = Field(
        min_length=1, pattern=r"^[A-Za-z0-9.-]+(:[0-9]{1,5})?$", description="S3 endpoint host[:port], without a scheme"
    )
    region: str | None = Field(None, description="region")
    prefix: str | None = Field(None, description="key prefix")
    credentials_secret: K8sName = Field(
        description="Secret (in the MariaDB namespace) with access-key-id, secret-access-key"
    )
    tls: S3TlsConfig = Field(default_factory=S3TlsConfig, description="TLS to the endpoint (on by default)")


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
