"""The stack configuration model: every key a stack file may set, with its default.

Pure: no Pulumi, no I/O. ``components.stack_config`` reads the Pulumi config into
``StackConfig``; ``validate_stack_config`` is the one entry point that returns a valid
model or raises ``ConfigError`` listing every problem as ``path: reason``.

Keys are camelCase in YAML; unknown keys are rejected so a typo never silently falls back to
a default. Secrets (kubeconfig, external admin password) are separate stack keys, read as
Pulumi secrets, never part of this model.
"""

from __future__ import annotations

import contextlib
import re
import zoneinfo
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError
from pydantic.alias_generators import to_camel

from components.backup_slots import BackupWindow, SlotCapacityError, assign_slots, parse_clock
from components.sql import identifiers, privileges


class Strict(BaseModel):
    """Base of every config section: camelCase keys, unknown keys rejected, immutable."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        hide_input_in_errors=True,
        alias_generator=to_camel,
        validate_by_alias=True,
        validate_by_name=False,
        strict=False,
    )


# --- scalar validators -------------------------------------------------------------------------

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_K8S_NAME = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_STORAGE_QUANTITY = re.compile(r"^([0-9]+(\.[0-9]+)?)(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?$")
_CPU_QUANTITY = re.compile(r"^([0-9]+(\.[0-9]+)?)(m)?$")
_IMAGE = re.compile(r"^[a-z0-9]([a-z0-9._:/-]*[a-z0-9])?(:[A-Za-z0-9_][A-Za-z0-9._-]{0,127})?(@sha256:[a-f0-9]{64})?$")
_EMAIL = re.compile(r"^[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_SUFFIX_BYTES = {
    "": 1, "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15, "E": 10**18,
    "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60,
}  # fmt: skip


def quantity_bytes(value: str) -> float:
    """Bytes in a Kubernetes storage/memory quantity such as ``20Gi``."""
    match = _STORAGE_QUANTITY.match(value)
    if not match:
        raise ValueError(f"{value!r} is not a Kubernetes quantity such as 512Mi or 20Gi")
    return float(match.group(1)) * _SUFFIX_BYTES[match.group(3) or ""]


def _storage_quantity(value: str) -> str:
    if quantity_bytes(value) <= 0:
        raise ValueError("must be greater than zero")
    return value


def _cpu_quantity(value: str) -> str:
    if not _CPU_QUANTITY.match(value) or float(_CPU_QUANTITY.match(value).group(1)) <= 0:  # type: ignore[union-attr]
        raise ValueError(f"{value!r} is not a CPU quantity such as 250m or 1.5")
    return value


def _dns_name(value: str) -> str:
    if value != value.lower():
        raise ValueError(f"{value!r} must be lowercase")
    if value.startswith("*."):
        raise ValueError(f"{value!r}: wildcard domains need DNS-01; HTTP-01 certificates name each host")
    if len(value) > 253 or "." not in value:
        raise ValueError(f"{value!r} is not a fully qualified domain name")
    for label in value.split("."):
        if not _DNS_LABEL.match(label):
            raise ValueError(f"{value!r} is not a valid DNS name (label {label!r})")
    return value


def _k8s_name(max_length: int) -> Callable[[str], str]:
    def check(value: str) -> str:
        if len(value) > max_length:
            raise ValueError(f"{value!r} is longer than {max_length} characters")
        if not _K8S_NAME.match(value):
            raise ValueError(f"{value!r} must be lowercase letters, digits and '-', starting with a letter")
        return value

    return check


def _from_sql_check(check: Callable[[object, str], str | None]) -> Callable[[str], str]:
    def run(value: str) -> str:
        problem = check(value, "value")
        if problem:
            raise ValueError(problem.removeprefix("value: "))
        return value

    return run


def _clock(value: str) -> str:
    parse_clock(value)
    return value


def _time_zone(value: str) -> str:
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"{value!r} is not an IANA time zone such as UTC or Europe/Berlin") from None
    return value


def _image(value: str) -> str:
    if len(value) > 255 or not _IMAGE.match(value):
        raise ValueError(f"{value!r} is not a container image reference such as wordpress:6.8-apache")
    return value


def _email(value: str) -> str:
    if not _EMAIL.match(value):
        raise ValueError(f"{value!r} is not an e-mail address")
    return value


StorageQuantity = Annotated[str, AfterValidator(_storage_quantity)]
CpuQuantity = Annotated[str, AfterValidator(_cpu_quantity)]
DnsName = Annotated[str, AfterValidator(_dns_name)]
SiteName = Annotated[str, AfterValidator(_k8s_name(40))]
K8sName = Annotated[str, AfterValidator(_k8s_name(63))]
DatabaseName = Annotated[str, AfterValidator(_from_sql_check(identifiers.validate_database_name))]
UserName = Annotated[str, AfterValidator(_from_sql_check(identifiers.validate_user_name))]
UserHost = Annotated[str, AfterValidator(_from_sql_check(identifiers.validate_host))]
TableName = Annotated[str, AfterValidator(_from_sql_check(identifiers.validate_table))]
Clock = Annotated[str, AfterValidator(_clock)]
TimeZone = Annotated[str, AfterValidator(_time_zone)]
Image = Annotated[str, AfterValidator(_image)]
Email = Annotated[str, AfterValidator(_email)]
# Privileges are checked against their table in the cross-field pass, which can name the entry.
PrivilegeList = Annotated[list[str], Field(min_length=1)]
Charset = Annotated[str, AfterValidator(_from_sql_check(identifiers.validate_charset))]
Collation = Annotated[str, AfterValidator(_from_sql_check(identifiers.validate_collation))]


# --- sections ----------------------------------------------------------------------------------


class KubernetesConfig(Strict):
    """How to reach the cluster. The kubeconfig itself is the secret key ``flightdeck:kubeconfig``."""

    context: str | None = Field(None, description="kubeconfig context; none uses the kubeconfig's current context")
    namespace_prefix: str = Field(
        "", max_length=20, pattern=r"^([a-z][-a-z0-9]*-)?$",
        description="prefix for every site namespace, e.g. `prod-` (empty, or ends in `-`)",
    )  # fmt: skip
    cluster_identifier: str | None = Field(
        None, description="stable cluster id; a rotated kubeconfig then never replaces the provider"
    )


class HelmReleaseConfig(Strict):
    """One operator installed as a Helm release."""

    enabled: bool = Field(False, description="install it; leave off when the cluster already runs it")
    chart_version: str | None = Field(None, description="chart version; none uses flightdeck's pinned version")
    namespace: K8sName | None = Field(None, description="namespace of the release; none uses the operator's usual one")
    values: dict[str, Any] = Field(default_factory=dict, description="extra Helm values merged over flightdeck's")


class OperatorsConfig(Strict):
    cert_manager: HelmReleaseConfig = Field(default_factory=HelmReleaseConfig, description="cert-manager")
    velero: HelmReleaseConfig = Field(default_factory=HelmReleaseConfig, description="Velero")
    rook_ceph: HelmReleaseConfig = Field(default_factory=HelmReleaseConfig, description="Rook (operator only)")
    mariadb_operator: HelmReleaseConfig = Field(default_factory=HelmReleaseConfig, description="mariadb-operator")


class ResourceAmounts(Strict):
    cpu: CpuQuantity | None = Field(None, description="CPU, e.g. `250m`")
    memory: StorageQuantity | None = Field(None, description="memory, e.g. `512Mi`")


class Resources(Strict):
    requests: ResourceAmounts = Field(default_factory=ResourceAmounts, description="guaranteed amounts")
    limits: ResourceAmounts = Field(default_factory=ResourceAmounts, description="ceilings")


class MySQLAccessConfig(Strict):
    """How the machine running ``pulumi up`` reaches the primary to run SQL."""

    mode: Literal["direct", "portForward"] = Field(
        "portForward",
        description="`portForward` tunnels through the Kubernetes API (runs outside the cluster); "
        "`direct` connects to the primary Service address (from a pod in the MariaDB namespace: the "
        "servers' NetworkPolicy admits only it, the operator and site pods) or to `host`/`port`",
    )
    host: str | None = Field(None, description="direct mode: host to connect to instead of the primary Service")
    port: int | None = Field(None, ge=1, le=65535, description="direct mode: port instead of the Service port")


class TlsConfig(Strict):
    enabled: bool = Field(False, description="require TLS to the server")
    ca: str | None = Field(None, description="PEM CA bundle (file path or inline PEM)")
    verify_server_cert: bool = Field(True, description="verify the server certificate and host name")


class PodDisruptionBudgetConfig(Strict):
    max_unavailable: int = Field(
        1, ge=1, description="MariaDB pods a node drain may take down at once (0 would block every drain)"
    )


class MySQLOperatorConfig(Strict):
    """An HA MariaDB cluster run by mariadb-operator (primary + readers, automatic failover)."""

    mode: Literal["operator"] = Field(description="a MariaDB cluster run by mariadb-operator")
    name: K8sName = Field(
        "mariadb", description="name of the MariaDB resource; Services are `<name>-primary`, -secondary"
    )
    namespace: K8sName = Field("mariadb", description="namespace of the cluster")
    version: str = Field(
        "11.4", pattern=r"^[0-9]+\.[0-9]+(\.[0-9]+)?$", description="MariaDB server version (image tag)"
    )
    image: Image | None = Field(None, description="full image; none uses `mariadb:<version>`")
    size: StorageQuantity = Field("20Gi", description="data volume per server")
    storage_class: str | None = Field(None, description="storage class of the data volumes; none uses the default")
    reader_count: int = Field(2, ge=0, le=8, description="replicas besides the primary; 0 gives a single server")
    resources: Resources = Field(
        default_factory=lambda: Resources(
            requests=ResourceAmounts(cpu="500m", memory="1Gi"), limits=ResourceAmounts(memory="2Gi")
        ),
        description="server resources",
    )
    auto_failover: bool = Field(True, description="promote a replica when the primary fails")
    auto_failover_delay: str = Field("0s", pattern=r"^[0-9]+(s|m)$", description="wait before failing over")
    max_lag_seconds: int = Field(30, ge=0, description="replica lag at which a replica is reported not ready")
    pod_disruption_budget: PodDisruptionBudgetConfig = Field(
        default_factory=PodDisruptionBudgetConfig, description="limits voluntary evictions (node drains)"
    )
    anti_affinity: bool = Field(True, description="spread servers over different nodes")
    update_strategy: Literal["ReplicasFirstPrimaryLast", "RollingUpdate", "OnDelete", "Never"] = Field(
        "ReplicasFirstPrimaryLast", description="how server updates roll: replicas first, primary last by default"
    )
    time_zone: TimeZone = Field("UTC", description="server time zone")
    access: MySQLAccessConfig = Field(default_factory=MySQLAccessConfig, description="how `pulumi up` reaches it")


class MySQLExternalConfig(Strict):
    """A MariaDB/MySQL server not managed by flightdeck. Admin password: secret key `mysqlAdminPassword`."""

    mode: Literal["external"] = Field(description="a server managed elsewhere")
    host: str = Field(min_length=1, description="primary (write) host")
    read_host: str | None = Field(None, description="read host for sites; none uses `host`")
    port: int = Field(3306, ge=1, le=65535, description="server port")
    admin_user: UserName = Field("root", description="admin user that creates databases, users and grants")
    tls: TlsConfig = Field(default_factory=TlsConfig, description="TLS to the server")
    access: MySQLAccessConfig = Field(
        default_factory=lambda: MySQLAccessConfig(mode="direct"),
        description="how `pulumi up` reaches it (`direct` only; `host`/`port` may override)",
    )


class RookStorageConfig(Strict):
    """Cluster-level Rook objects, for a Rook cluster that has no CephFS yet."""

    namespace: K8sName = Field("rook-ceph", description="namespace of the CephCluster")
    filesystem_name: K8sName = Field("hostingfs", description="name of the CephFilesystem")
    replicas: int = Field(3, ge=1, le=7, description="replicas of the metadata and data pools")
    failure_domain: Literal["host", "osd", "zone", "rack"] = Field("host", description="pool failure domain")
    active_mds_count: int = Field(1, ge=1, le=16, description="active metadata servers (plus a standby each)")


class StorageConfig(Strict):
    storage_class: K8sName = Field("rook-cephfs", description="ReadWriteMany storage class of the site volumes")
    rook: RookStorageConfig | None = Field(
        None, description="when set, create the CephFilesystem and the storage class (reclaim policy Retain)"
    )


class CertificatesConfig(Strict):
    acme_email: Email = Field(description="Let's Encrypt account e-mail (expiry notices)")
    environment: Literal["production", "staging"] = Field(
        "staging", description="Let's Encrypt `production` (trusted) or `staging` (high rate limits, untrusted)"
    )
    ingress_class: K8sName = Field("nginx", description="ingress class that serves HTTP-01 challenges and sites")
    cluster_issuer: K8sName = Field("letsencrypt", description="name of the ClusterIssuer")
    ingress_controller_namespace: K8sName = Field(
        "ingress-nginx", description="namespace of the ingress controller (the only source of site traffic)"
    )


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


class SiteDatabaseConfig(Strict):
    name: DatabaseName | None = Field(None, description="database name; none uses the site name with `-` as `_`")
    charset: Charset = Field("utf8mb4", description="default character set")
    collation: Collation = Field("utf8mb4_unicode_ci", description="default collation")
    privileges: PrivilegeList = Field(
        default_factory=lambda: ["ALL PRIVILEGES"], description="the site user's privileges on its own database"
    )


class SiteUserConfig(Strict):
    name: UserName | None = Field(None, description="user name; none uses the database name (at most 32 characters)")
    host: UserHost = Field("%", description="host pattern the user may connect from")
    max_user_connections: int = Field(0, ge=0, le=100000, description="connection limit; 0 means unlimited")
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
    image: Image | None = Field(None, description="container image; none uses the CMS's official image")
    replicas: int = Field(2, ge=1, le=50, description="web pods (they share the files volume)")
    files_size: StorageQuantity = Field("10Gi", description="size of the shared (ReadWriteMany) files volume")
    resources: Resources = Field(
        default_factory=lambda: Resources(
            requests=ResourceAmounts(cpu="100m", memory="256Mi"), limits=ResourceAmounts(memory="512Mi")
        ),
        description="web pod resources",
    )
    env: dict[str, str] = Field(default_factory=dict, description="extra plain environment variables")
    database: SiteDatabaseConfig = Field(default_factory=SiteDatabaseConfig, description="the site database")
    user: SiteUserConfig = Field(default_factory=SiteUserConfig, description="the site's database user")
    grants: list[ExtraGrantConfig] = Field(default_factory=list, description="extra grants beyond its own database")
    backup: SiteBackupConfig = Field(default_factory=SiteBackupConfig, description="backup overrides")
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


DEFAULT_IMAGES = {"wordpress": "wordpress:6.8-php8.3-apache", "drupal": "drupal:11-php8.3-apache"}


class StackConfig(Strict):
    """Everything one stack (one cluster) deploys."""

    kubernetes: KubernetesConfig = Field(default_factory=KubernetesConfig, description="cluster access")
    operators: OperatorsConfig = Field(default_factory=OperatorsConfig, description="operators to install")
    mysql: Annotated[MySQLOperatorConfig | MySQLExternalConfig, Field(discriminator="mode")] = Field(
        description="the database server: `mode: operator` or `mode: external`"
    )
    storage: StorageConfig = Field(default_factory=StorageConfig, description="shared file storage")
    certificates: CertificatesConfig = Field(description="TLS certificates")
    backups: BackupsConfig = Field(default_factory=BackupsConfig, description="backups")
    sites: list[SiteConfig] = Field(default_factory=list, description="the hosted sites")


# --- whole-config validation -------------------------------------------------------------------


@dataclass(frozen=True)
class Problem:
    path: str
    reason: str

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}" if self.path else self.reason


class ConfigError(ValueError):
    """Every problem found in one stack config, each naming its field."""

    def __init__(self, problems: Iterable[Problem], stack: str = "") -> None:
        self.problems = tuple(problems)
        self.stack = stack
        prefix = f"{stack}: " if stack else ""
        super().__init__("invalid stack config:\n" + "\n".join(f"  {prefix}{p}" for p in self.problems))


def format_path(loc: Iterable[str | int]) -> str:
    """``('sites', 2, 'domains', 0)`` -> ``sites[2].domains[0]``."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _pydantic_problems(error: ValidationError, discriminated: Mapping[str, set[str]]) -> list[Problem]:
    problems = []
    for item in error.errors(include_input=False, include_url=False):
        loc = list(item["loc"])
        # The discriminated union adds its tag (`operator`) to the path; users never wrote it.
        if len(loc) >= 2 and isinstance(loc[0], str) and loc[1] in discriminated.get(loc[0], set()):
            del loc[1]
        message = item["msg"].removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            message = "unknown key (check spelling; keys are camelCase)"
        problems.append(Problem(format_path(loc), message))
    return problems


def _duplicates(values: Iterable[tuple[str, str]]) -> list[Problem]:
    """Problems for every (path, value) whose value was already used earlier."""
    seen: dict[str, str] = {}
    problems = []
    for path, value in values:
        if value in seen:
            problems.append(Problem(path, f"{value!r} is already used by {seen[value]}"))
        else:
            seen[value] = path
    return problems


def _site_problems(sites: list[tuple[int, SiteConfig]], config_prefix: str) -> list[Problem]:
    problems = _duplicates((f"sites[{i}].name", s.name) for i, s in sites)
    problems += _duplicates((f"sites[{i}].database.name", s.database_name) for i, s in sites)
    problems += _duplicates((f"sites[{i}].user.name", s.user_name) for i, s in sites)
    problems += _duplicates((f"sites[{i}].domains[{j}]", d) for i, s in sites for j, d in enumerate(s.domains))
    for i, site in sites:
        if site.database.name is None and identifiers.validate_database_name(site.database_name):
            problems.append(Problem(f"sites[{i}].name", "cannot derive a database name; set database.name"))
        namespace = f"{config_prefix}{site.name}"
        if len(namespace) > 63:
            problems.append(Problem(f"sites[{i}].name", f"namespace {namespace!r} would exceed 63 characters"))
        for key in site.env:
            if not _ENV_NAME.match(key) or key.startswith("DB_"):
                problems.append(Problem(f"sites[{i}].env.{key}", "not a valid variable name (DB_* is reserved)"))
        problems += _privilege_problems(site.database.privileges, "*", f"sites[{i}].database.privileges")
        problems += _resource_problems(site.resources, f"sites[{i}].resources")
        granted: dict[tuple[str, str], int] = {}
        for j, grant in enumerate(site.grants):
            path = f"sites[{i}].grants[{j}]"
            problems += _privilege_problems(grant.privileges, grant.table, f"{path}.privileges")
            if grant.database == site.database_name:
                problems.append(Problem(f"{path}.database", "the site's own database; use database.privileges"))
            target = (grant.database, grant.table)
            if target in granted:
                problems.append(
                    Problem(path, f"{grant.database}.{grant.table} is already granted by grants[{granted[target]}]")
                )
            granted.setdefault(target, j)
    return problems


def _resource_problems(resources: Resources, path: str) -> list[Problem]:
    """Requests above limits pass the model but are refused by the API server at deploy."""
    problems = []
    for kind, parse in (("cpu", _cpu_cores), ("memory", quantity_bytes)):
        request, limit = getattr(resources.requests, kind), getattr(resources.limits, kind)
        if request and limit and parse(request) > parse(limit):
            problems.append(Problem(f"{path}.requests.{kind}", f"{request} is more than the limit {limit}"))
    return problems


def _cpu_cores(value: str) -> float:
    return float(value[:-1]) / 1000 if value.endswith("m") else float(value)


def _privilege_problems(values: list[str], table: str, path: str) -> list[Problem]:
    problems = []
    for message in privileges.validate_privileges(values, table=table, field=path):
        where, _, reason = message.partition(": ")
        problems.append(Problem(where, reason))
    return problems


def backup_jobs(config: StackConfig) -> tuple[list[str], dict[str, str]]:
    """All backup job keys the config asks for, and the pinned start time of each pinned job."""
    operator_mode = isinstance(config.mysql, MySQLOperatorConfig)
    jobs: list[str] = []
    pins: dict[str, str] = {}
    for site in config.sites:
        wanted = []
        if config.backups.velero.enabled and site.backup.files:
            wanted.append(f"files/{site.name}")
        if operator_mode and config.backups.database_backups.enabled and site.backup.database:
            wanted.append(f"db/{site.name}")
        jobs += wanted
        if site.backup.start_time:
            pins.update({job: site.backup.start_time for job in wanted})
    return jobs, pins


def backup_window(config: StackConfig) -> BackupWindow:
    window = config.backups.window
    return BackupWindow.from_clock(window.start, window.end, window.slot_minutes)


def plan_backups(config: StackConfig) -> dict[str, int]:
    """Slot of every backup job; raises ``ConfigError`` when they do not fit the window."""
    window = backup_window(config)
    jobs, pin_clocks = backup_jobs(config)
    pins: dict[str, int] = {}
    problems: list[Problem] = []
    site_index = {site.name: i for i, site in enumerate(config.sites)}
    for job, clock in pin_clocks.items():
        try:
            pins[job] = window.slot_of_clock(clock)
        except ValueError as error:
            problems.append(Problem(f"sites[{site_index[job.split('/', 1)[1]]}].backup.startTime", str(error)))
    if problems:
        raise ConfigError(sorted(set(problems), key=str))
    try:
        return assign_slots(jobs, window.slot_count, config.backups.max_concurrent, pins)
    except SlotCapacityError as error:
        capacity = window.slot_count * config.backups.max_concurrent
        if len(set(jobs)) > capacity:
            reason = (
                f"{len(set(jobs))} backups (files and databases) do not fit {window.slot_count} slots of "
                f"{window.slot_minutes} minutes x maxConcurrent {config.backups.max_concurrent} = {capacity}; "
                "widen backups.window, shorten slotMinutes or raise maxConcurrent"
            )
            raise ConfigError([Problem("backups", reason)]) from None
        sites = sorted({site_index[job.split("/", 1)[1]] for job in error.jobs})
        raise ConfigError(
            Problem(
                f"sites[{i}].backup.startTime",
                f"more than maxConcurrent backups pinned to {config.sites[i].backup.start_time}",
            )
            for i in sites
        ) from None


def validate_stack_config(raw: Mapping[str, Any], *, has_admin_password: bool = True, stack: str = "") -> StackConfig:
    """The one entry point: a valid ``StackConfig`` or a ``ConfigError`` listing every problem."""
    problems: list[Problem] = []
    config: StackConfig | None = None
    try:
        config = StackConfig.model_validate(dict(raw))
    except ValidationError as error:
        problems += _pydantic_problems(error, {"mysql": {"operator", "external"}})

    # Cross-field rules also run over the sites that are valid on their own, so one message
    # lists every problem instead of revealing them one `pulumi up` at a time.
    raw_sites = raw.get("sites")
    valid_sites: list[tuple[int, SiteConfig]] = []
    if isinstance(raw_sites, list):
        for index, raw_site in enumerate(raw_sites):
            with contextlib.suppress(ValidationError):  # already reported by the whole-model pass
                valid_sites.append((index, SiteConfig.model_validate(raw_site)))
    raw_kubernetes = raw.get("kubernetes")
    prefix = raw_kubernetes.get("namespacePrefix", "") if isinstance(raw_kubernetes, Mapping) else ""
    problems += _site_problems(valid_sites, prefix if isinstance(prefix, str) else "")

    if config is not None:
        problems += _mode_problems(config, has_admin_password)
        if not problems:
            try:
                plan_backups(config)
            except ConfigError as error:
                problems += error.problems
    if problems:
        unique = list(dict.fromkeys(problems))
        raise ConfigError(unique, stack)
    assert config is not None
    return config


def _mode_problems(config: StackConfig, has_admin_password: bool) -> list[Problem]:
    problems = []
    mysql = config.mysql
    if isinstance(mysql, MySQLExternalConfig):
        if mysql.access.mode != "direct":
            problems.append(
                Problem("mysql.access.mode", "an external server is reached `direct` (no Service to forward to)")
            )
        if not has_admin_password:
            problems.append(
                Problem(
                    "mysqlAdminPassword",
                    "external mode needs the secret admin password (pulumi config set --secret mysqlAdminPassword)",
                )
            )
    else:
        if mysql.access.mode == "portForward" and (mysql.access.host or mysql.access.port):
            problems.append(Problem("mysql.access", "host/port overrides apply to `direct` mode only"))
        problems += _resource_problems(mysql.resources, "mysql.resources")
    velero_release = config.operators.velero
    if velero_release.enabled and (velero_release.namespace or "velero") != config.backups.velero.namespace:
        problems.append(
            Problem(
                "backups.velero.namespace",
                "must be the namespace the Velero release is installed in (operators.velero.namespace)",
            )
        )
    storage = config.backups.database_backups.storage
    if config.backups.database_backups.enabled and (storage.persistent_volume_claim is None) == (storage.s3 is None):
        problems.append(Problem("backups.databaseBackups.storage", "set exactly one of persistentVolumeClaim, s3"))
    for field, release in config.operators:
        if release.values and not release.enabled:
            problems.append(
                Problem(f"operators.{to_camel(field)}.values", "values given but the release is not enabled")
            )
    return problems
