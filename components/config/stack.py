"""``StackConfig``: everything one stack (one cluster) deploys, section by section. Pure."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from components.config.backups import BackupsConfig
from components.config.cluster import (
    CertificatesConfig,
    KubernetesConfig,
    MySQLExternalConfig,
    MySQLOperatorConfig,
    OperatorsConfig,
    StorageConfig,
)
from components.config.sites import SiteConfig
from components.config.values import Strict


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
