"""The stack configuration model: every key a stack file may set, with its default.

Pure: no Pulumi, no I/O. ``components.stack_config`` reads the Pulumi config into
``StackConfig``; ``validate_stack_config`` is the one entry point that returns a valid
model or raises ``ConfigError`` listing every problem as ``path: reason``.

Keys are camelCase in YAML; unknown keys are rejected so a typo never silently falls back to
a default. Secrets (kubeconfig, external admin password) are separate stack keys, read as
Pulumi secrets, never part of this model.

Modules: ``values`` (value types and the ``Strict`` base), ``cluster``, ``backups`` and
``sites`` (the sections), ``workload`` (the sites' PHP, cron and proxy settings), ``stack``
(``StackConfig``), ``problems`` (``ConfigError``), ``validation`` and ``workload_rules``
(whole-config rules), ``backup_plan`` and ``cron_plan`` (backup slots and cron minutes).
"""

from components.config.backup_plan import backup_jobs, backup_window, plan_backups
from components.config.backups import (
    BackupsConfig,
    BackupStorageLocationConfig,
    BackupWindowConfig,
    DatabaseBackupsConfig,
    DatabaseBackupStorage,
    PvcBackupStorage,
    S3BackupStorage,
    S3TlsConfig,
    VeleroBackupsConfig,
)
from components.config.cluster import (
    CertificatesConfig,
    HelmReleaseConfig,
    KubernetesConfig,
    MySQLAccessConfig,
    MySQLExternalConfig,
    MySQLOperatorConfig,
    OperatorsConfig,
    PodDisruptionBudgetConfig,
    RookStorageConfig,
    StorageConfig,
    TlsConfig,
)
from components.config.cron_plan import plan_cron
from components.config.network import DnsConfig, EgressConfig, EgressRule, SiteEgressConfig
from components.config.problems import ConfigError, Problem, format_path
from components.config.sites import (
    DEFAULT_IMAGES,
    ExtraGrantConfig,
    SiteBackupConfig,
    SiteConfig,
    SiteDatabaseConfig,
    SiteUserConfig,
)
from components.config.stack import StackConfig
from components.config.validation import validate_stack_config
from components.config.values import ResourceAmounts, Resources, Strict, quantity_bytes
from components.config.workload import (
    DRUPAL_HASH_SALT_ENV,
    WORDPRESS_CONFIG_EXTRA_ENV,
    WORDPRESS_DB_ENV,
    WORDPRESS_SALT_ENV,
    PhpConfig,
    SiteCronConfig,
)

__all__ = [
    "DEFAULT_IMAGES",
    "DRUPAL_HASH_SALT_ENV",
    "WORDPRESS_CONFIG_EXTRA_ENV",
    "WORDPRESS_DB_ENV",
    "WORDPRESS_SALT_ENV",
    "BackupStorageLocationConfig",
    "BackupWindowConfig",
    "BackupsConfig",
    "CertificatesConfig",
    "ConfigError",
    "DatabaseBackupStorage",
    "DatabaseBackupsConfig",
    "DnsConfig",
    "EgressConfig",
    "EgressRule",
    "ExtraGrantConfig",
    "HelmReleaseConfig",
    "KubernetesConfig",
    "MySQLAccessConfig",
    "MySQLExternalConfig",
    "MySQLOperatorConfig",
    "OperatorsConfig",
    "PhpConfig",
    "PodDisruptionBudgetConfig",
    "Problem",
    "PvcBackupStorage",
    "ResourceAmounts",
    "Resources",
    "RookStorageConfig",
    "S3BackupStorage",
    "S3TlsConfig",
    "SiteBackupConfig",
    "SiteConfig",
    "SiteCronConfig",
    "SiteDatabaseConfig",
    "SiteEgressConfig",
    "SiteUserConfig",
    "StackConfig",
    "StorageConfig",
    "Strict",
    "TlsConfig",
    "VeleroBackupsConfig",
    "backup_jobs",
    "backup_window",
    "format_path",
    "plan_backups",
    "plan_cron",
    "quantity_bytes",
    "validate_stack_config",
]
