"""Operators: cert-manager, Velero, Rook and mariadb-operator as pinned Helm releases.

Each is off by default, for clusters that already run it. Versions are pinned so a preview
never changes because a chart repository published something; ``chartVersion`` overrides.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components.config import HelmReleaseConfig, OperatorsConfig


@dataclass(frozen=True)
class Chart:
    chart: str
    repository: str
    version: str
    namespace: str
    values: dict[str, Any] = field(default_factory=dict)


# Versions match the CRDs the tests apply (see ../shared/crds/SOURCES.md).
CHARTS: dict[str, list[Chart]] = {
    "cert_manager": [
        Chart("cert-manager", "https://charts.jetstack.io", "v1.21.1", "cert-manager", {"crds": {"enabled": True}}),
    ],
    "velero": [
        Chart(
            "velero",
            "https://vmware-tanzu.github.io/helm-charts",
            "12.0.0",
            "velero",
            {"deployNodeAgent": True, "snapshotsEnabled": False, "configuration": {"defaultVolumesToFsBackup": True}},
        ),
    ],
    "rook_ceph": [
        Chart(
            "rook-ceph", "https://charts.rook.io/release", "v1.20.6", "rook-ceph", {"csi": {"enableCephfsDriver": True}}
        ),
    ],
    "mariadb_operator": [
        Chart("mariadb-operator-crds", "https://helm.mariadb.com/mariadb-operator", "26.6.0", "mariadb-operator"),
        Chart(
            "mariadb-operator",
            "https://helm.mariadb.com/mariadb-operator",
            "26.6.0",
            "mariadb-operator",
            {"ha": {"enabled": True}},
        ),
    ],
}


def deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        merged[key] = (
            deep_merge(merged[key], value) if isinstance(value, dict) and isinstance(merged.get(key), dict) else value
        )
    return merged


def release_charts(key: str, release: HelmReleaseConfig) -> list[Chart]:
    """The charts of one operator with the stack's overrides applied."""
    charts = CHARTS[key]
    return [
        Chart(
            chart.chart,
            chart.repository,
            release.chart_version or chart.version,
            release.namespace or chart.namespace,
            # The stack's values apply to the operator itself, the last chart.
            deep_merge(chart.values, release.values) if index == len(charts) - 1 else chart.values,
        )
        for index, chart in enumerate(charts)
    ]


def operator_namespace(key: str, release: HelmReleaseConfig) -> str:
    return release.namespace or CHARTS[key][-1].namespace


class Operators(pulumi.ComponentResource):
    """The enabled operators; ``ready`` lists what custom resources must wait for."""

    def __init__(self, name: str, operators: OperatorsConfig, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("flightdeck:operators:Operators", name, None, opts)
        self.releases: dict[str, list[k8s.helm.v3.Release]] = {}
        for key, release in operators:
            if not release.enabled:
                continue
            previous: list[pulumi.Resource] = []
            for chart in release_charts(key, release):
                helm_release = k8s.helm.v3.Release(
                    f"{name}-{chart.chart}",
                    name=chart.chart,
                    chart=chart.chart,
                    version=chart.version,
                    namespace=chart.namespace,
                    create_namespace=True,
                    repository_opts={"repo": chart.repository},
                    values=chart.values,
                    atomic=True,
                    opts=pulumi.ResourceOptions(parent=self, depends_on=previous),
                )
                previous = [helm_release]
                self.releases.setdefault(key, []).append(helm_release)
        self.register_outputs({key: [r.status for r in releases] for key, releases in self.releases.items()})

    def ready(self, key: str) -> list[pulumi.Resource]:
        return list(self.releases.get(key, []))
