"""The ``sites`` section of the stack config: one entry per hosted site. Pure."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from components.config.network import SiteEgressConfig
from components.config.values import (
    Charset,
    Clock,
    Collation,
    DatabaseName,
    DnsName,
    Image,
    PrivilegeList,
    ResourceAmounts,
    Resources,
    SiteName,
    StorageQuantity,
    Strict,
    TableName,
    UserHost,
    UserName,
)
from components.config.workload import PhpConfig, SiteCronConfig


class SiteDatabaseConfig(Strict):
    name: DatabaseName | None = Field(None, description="database name; none uses the site name with `-` as `_`")
    charset: Charset = Field("utf8mb4", description="default character set")
    collation: Collation = Field("utf8mb4_unicode_ci", description="default collation")
    privileges: PrivilegeList = Field(
        default_factory=lambda: ["ALL PRIVILEGES"], description="the site user's privileges on its own database"
    )
    copied_from: DatabaseName | None = Field(
        None,
        description="the database this one's data was copied from: lets an existing site change `name` "
        "(README: Change a site's database name)",
    )


class SiteUserConfig(Strict):
    name: UserName | None = Field(None, description="user name; none uses the database name (at most 32 characters)")
    host: UserHost = Field("%", description="host pattern the user may connect from")
    max_user_connections: int | None = Field(
        None,
        ge=1,
        le=100000,
        description="the account's connection limit; none uses `replicas × mysql.connectionsPerReplica`; the "
        "sum over all sites plus `mysql.reservedConnections` must fit `mysql.maxConnections`",
    )
    password_version: int = Field(1, ge=1, description="bump to rotate the password")
    require_tls: bool = Field(False, description="refuse unencrypted connections for this user")


class ExtraGrantConfig(Strict):
    database: DatabaseName = Field(description="database the grant is on")
    table: TableName = Field("*", description="table, or `*` for every table")
    privileges: PrivilegeList = Field(description="privileges, e.g. [SELECT]")


class SiteBackupConfig(Strict):
    files: bool = Field(True, description="Velero backup of the site's namespace and volume")
    database: bool = Field(True, description="logical backup of the site's database")
    start_time: Clock | None = Field(None, description="pin the start `HH:MM` (on a slot boundary in the window)")
    retention_days: int | None = Field(None, ge=1, le=3650, description="override `backups.retentionDays`")


class SiteConfig(Strict):
    name: SiteName = Field(description="site name: namespace, resource names (lowercase, digits, `-`)")
    cms: Literal["wordpress", "drupal"] = Field(description="`wordpress` or `drupal`")
    domains: list[DnsName] = Field(min_length=1, max_length=100, description="host names; the first is primary")
    image: Image | None = Field(
        None,
        description="container image (`name:tag`, `name@sha256:...` or both); none uses the CMS's maintained "
        "official tag (see *Images*)",
    )
    replicas: int = Field(2, ge=1, le=50, description="web pods (they share the files volume)")
    files_size: StorageQuantity = Field("10Gi", description="size of the shared (ReadWriteMany) files volume")
    resources: Resources = Field(
        default_factory=lambda: Resources(
            requests=ResourceAmounts(cpu="100m", memory="256Mi"), limits=ResourceAmounts(memory="512Mi")
        ),
        description="web pod resources",
    )
    env: dict[str, str] = Field(default_factory=dict, description="extra plain environment variables")
    max_upload_size: StorageQuantity = Field(
        "64Mi", description="largest file a user may upload: PHP upload limits and the Ingress body size (1Mi..2Gi)"
    )
    php: PhpConfig = Field(default_factory=PhpConfig, description="PHP settings (an ini file in the image's conf.d)")
    cron: SiteCronConfig = Field(default_factory=SiteCronConfig, description="the site's cron")
    suspended: bool = Field(
        False, description="take the site offline: no web pods, cron suspended; data, backups and certificate kept"
    )
    salts_version: int = Field(
        1, ge=1, description="bump to rotate the WordPress keys and salts or the Drupal hash salt (logs everyone out)"
    )
    database: SiteDatabaseConfig = Field(default_factory=SiteDatabaseConfig, description="the site database")
    user: SiteUserConfig = Field(default_factory=SiteUserConfig, description="the site's database user")
    grants: list[ExtraGrantConfig] = Field(default_factory=list, description="extra grants beyond its own database")
    backup: SiteBackupConfig = Field(default_factory=SiteBackupConfig, description="backup overrides")
    egress: SiteEgressConfig = Field(default_factory=SiteEgressConfig, description="extra egress for this site")
    drop_data_on_delete: bool = Field(
        False, description="allow deleting the database and volume when the site is removed (two steps; see guide)"
    )

    @property
    def database_name(self) -> str:
        return self.database.name or self.name.replace("-", "_")

    @property
    def user_name(self) -> str:
        return self.user.name or self.database_name[:32]

    @property
    def image_ref(self) -> str:
        return self.image or DEFAULT_IMAGES[self.cms]

    @property
    def web_replicas(self) -> int:
        return 0 if self.suspended else self.replicas


# The maintained official tags (docker-library/wordpress and docker-library/drupal, versions.json and
# generate-stackbrew-library.sh, checked at bf223d1 of 2026-08-19 and 305e3e2 of 2026-07-22): each
# repository rebuilds only its current releases, on the PHP version it marks as that release's
# default (WordPress 7.1 on php8.3, Drupal 11.4 on php8.5). Bump these when upstream moves on;
# sites that must not move pin a digest.
DEFAULT_IMAGES = {"wordpress": "wordpress:7.1-php8.3-apache", "drupal": "drupal:11.4-php8.5-apache"}
