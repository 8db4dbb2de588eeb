"""The stack configuration model: every key a stack file may set, with its default.

Pure: no Pulumi, no I/O. ``components.stack_config`` reads the Pulumi config into
``StackConfig``; ``validate_stack_config`` is the one entry point that returns a valid
model or raises ``ConfigError`` listing every problem as ``path: reason``.

Keys are camelCase in YAML; unknown keys are rejected so a typo never silently falls back to
a default. Secrets (kubeconfig, external admin password) are separate stack keys, read as
Pulumi secrets, never part of this model.

Modules: ``values`` (value types and the ``Strict`` base), ``cluster``, ``backups`` and
``sites`` (the sections), ``stack`` (``StackConfig``), ``problems`` (``ConfigError``),
``validation`` (whole-config rules) and ``backup_plan`` (backup slots from the config).
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

__all__ = [
    "DEFAULT_IMAGES",
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
    "quantity_bytes",
    "validate_stack_config",
]
