"""Operators: cert-manager, Velero, Rook and mariadb-operator as pinned Helm releases.

Each is off by default, for clusters that already run it. Versions are pinned so a preview
never changes because a chart repository published something; ``chartVersion`` overrides the
operator's own chart (and the charts that must move with it). Every value flightdeck sets was
checked against that chart's ``values.yaml`` at the pinned version (cited per chart below; the
unit tier keeps a list of the verified keys and fails on any other).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components.config import BackupsConfig, HelmReleaseConfig, StackConfig
from components.rook_storage import csi_driver_name, rook_operator_namespace


@dataclass(frozen=True)
class Chart:
    chart: str
    repository: str
    version: str
    app_version: str  # what this chart version installs (its Chart.yaml appVersion / image tag)
    namespace: str
    values: dict[str, Any] = field(default_factory=dict)
    takes_values: bool = False  # the stack's `values` are merged into this chart's
    follows_chart_version: bool = False  # the stack's `chartVersion` applies to this chart


CERT_MANAGER = Chart(
    # cert-manager v1.21.1 deploy/charts/cert-manager/values.yaml: `crds.enabled` (default false)
    # installs the CRDs, `crds.keep` (default true) keeps them, and so every Certificate, when
    # the release is uninstalled. `installCRDs` is deprecated there.
    "cert-manager", "https://charts.jetstack.io", "v1.21.1", "v1.21.1", "cert-manager",
    {"crds": {"enabled": True, "keep": True}},
    takes_values=True, follows_chart_version=True,
)  # fmt: skip

VELERO = Chart(
    # vmware-tanzu/helm-charts velero-12.0.0 charts/velero: Chart.yaml `appVersion: 1.18.0`
    # (image velero/velero:v1.18.0; Velero 1.18.1 arrives with chart 12.0.2; the CRDs are the
    # same in both). values.yaml: `deployNodeAgent` (file-system backups run in the node
    # agent), `snapshotsEnabled` (no VolumeSnapshotLocation: CephFS volumes are backed up as
    # files), `backupsEnabled` (create the BackupStorageLocations listed in
    # `configuration.backupStorageLocation`), `configuration.defaultVolumesToFsBackup`.
    "velero", "https://vmware-tanzu.github.io/helm-charts", "12.0.0", "1.18.0", "velero",
    {
        "deployNodeAgent": True,
        "snapshotsEnabled": False,
        "backupsEnabled": True,
        "configuration": {"defaultVolumesToFsBackup": True},
    },
    takes_values=True, follows_chart_version=True,
)  # fmt: skip

ROOK_CEPH = Chart(
    # rook v1.20.6 deploy/charts/rook-ceph/values.yaml: `crds.enabled` (default true; turning it
    # off later can destroy the cluster), `csi.installCsiOperator` (the ceph-csi-operator
    # subchart). The CSI settings such as `csi.enableCephfsDriver` were removed in v1.20
    # (PendingReleaseNotes.md: "The CSI operator is required for managing CSI driver settings").
    "rook-ceph", "https://charts.rook.io/release", "v1.20.6", "v1.20.6", "rook-ceph",
    {"crds": {"enabled": True}, "csi": {"installCsiOperator": True}},
    takes_values=True, follows_chart_version=True,
)  # fmt: skip

CEPH_CSI_DRIVERS = Chart(
    # Rook v1.20 needs this second chart for the CSI drivers to exist at all
    # (Documentation/Helm-Charts/operator-chart.md, csi-drivers-chart.md), installed with
    # Rook's recommended values (deploy/charts/ceph-csi-drivers/values.yaml at v1.20.6) and
    # the version Rook's own tests install (tests/framework/installer/ceph_helm_installer.go:
    # cephCsiDriversChartVersion = "1.0.4"; its release sets appVersion v1.0.4).
    "ceph-csi-drivers", "https://ceph.github.io/ceph-csi-operator", "1.0.4", "v1.0.4", "rook-ceph",
)  # fmt: skip

MARIADB_OPERATOR_CRDS = Chart(
    # mariadb-operator-crds-26.6.0: the CRDs of operator v26.6.0 (Chart.yaml appVersion is a
    # placeholder "0.0.0"); installed separately because the operator chart's `crds.enabled`
    # would delete every MariaDB when the operator is uninstalled (its values.yaml warns so).
    "mariadb-operator-crds", "https://helm.mariadb.com/mariadb-operator", "26.6.0", "26.6.0", "mariadb-operator",
    follows_chart_version=True,
)  # fmt: skip

MARIADB_OPERATOR = Chart(
    # mariadb-operator-26.6.0 deploy/charts/mariadb-operator/values.yaml (appVersion "26.6.0"):
    # `ha.enabled` ("If you enable it we recommend to set `affinity` and `pdb`"), `pdb.enabled`,
    # `affinity`, and the same `ha`/`pdb` for `webhook` and `certController`, so a node drain
    # never leaves the cluster without the webhook that admits MariaDB changes.
    "mariadb-operator", "https://helm.mariadb.com/mariadb-operator", "26.6.0", "26.6.0", "mariadb-operator",
    {
        "ha": {"enabled": True},
        "pdb": {"enabled": True},
        "affinity": {
            "podAntiAffinity": {
                "preferredDuringSchedulingIgnoredDuringExecution": [
                    {
                        "weight": 100,
                        "podAffinityTerm": {
                            "labelSelector": {
                                "matchLabels": {
                                    "app.kubernetes.io/name": "mariadb-operator",
                                    "app.kubernetes.io/instance": "mariadb-operator",
                                }
                            },
                            "topologyKey": "kubernetes.io/hostname",
                        },
                    }
                ]
            }
        },
        "webhook": {"ha": {"enabled": True}, "pdb": {"enabled": True}},
        "certController": {"ha": {"enabled": True}, "pdb": {"enabled": True}},
    },
    takes_values=True, follows_chart_version=True,
)  # fmt: skip

# In install order: the CRDs before the operator, the Rook operator (with the CSI operator and
# its CRDs) before the drivers it runs.
CHARTS: dict[str, list[Chart]] = {
    "cert_manager": [CERT_MANAGER],
    "velero": [VELERO],
    "rook_ceph": [ROOK_CEPH, CEPH_CSI_DRIVERS],
    "mariadb_operator": [MARIADB_OPERATOR_CRDS, MARIADB_OPERATOR],
}


def deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        merged[key] = (
            deep_merge(merged[key], value) if isinstance(value, dict) and isinstance(merged.get(key), dict) else value
        )
    return merged


def _container_name(image: str) -> str:
    """``velero/velero-plugin-for-aws:v1.14.0`` -> ``velero-plugin-for-aws``."""
    repository = image.split("@", 1)[0].rsplit("/", 1)[-1].split(":", 1)[0]
    return re.sub(r"[^a-z0-9-]", "-", repository.lower()).strip("-")[:63] or "provider-plugin"


def velero_values(backups: BackupsConfig) -> dict[str, Any]:
    """The backup location, its provider plugin and credentials, and the concurrency (chart 12.0.0 keys).

    ``configuration.backupStorageLocation`` is a list the chart turns into BackupStorageLocations
    (templates/backupstoragelocation.yaml); ``initContainers`` copies the plugin into the shared
    ``plugins`` volume at ``/target`` (the chart's documented pattern, values.yaml); with
    ``credentials.existingSecret`` the chart mounts that Secret at ``/credentials`` and points
    ``AWS_SHARED_CREDENTIALS_FILE`` at ``/credentials/cloud`` (templates/deployment.yaml). Velero
    1.18 processes one backup at a time unless ``--concurrent-backups`` says otherwise
    (pkg/cmd/server/config/config.go, ``DefaultConcurrentBackups = 1``); chart 12.0.0 has no
    value for that flag, so it goes through ``configuration.extraArgs``.
    """
    velero = backups.velero
    values: dict[str, Any] = {
        "configuration": {"extraArgs": [f"--concurrent-backups={backups.max_concurrent}"]},
    }
    location = velero.backup_storage_location
    if location is None:
        return values
    config: dict[str, str] = {}
    if location.region:
        config["region"] = location.region
    if location.s3_url:
        config["s3Url"] = location.s3_url
    path_style = location.s3_force_path_style if location.s3_force_path_style is not None else bool(location.s3_url)
    if path_style:
        config["s3ForcePathStyle"] = "true"
    config.update(location.config)
    entry: dict[str, Any] = {
        "name": velero.storage_location,
        "provider": location.provider,
        "bucket": location.bucket,
        "default": True,
        "accessMode": "ReadWrite",
        "credential": {"name": location.credentials_secret, "key": location.credentials_key},
        "config": config,
    }
    if location.prefix:
        entry["prefix"] = location.prefix
    values["configuration"]["backupStorageLocation"] = [entry]
    values["configuration"]["defaultBackupStorageLocation"] = velero.storage_location
    values["credentials"] = {"useSecret": True, "existingSecret": location.credentials_secret}
    values["initContainers"] = [
        {
            "name": _container_name(location.plugin_image),
            "image": location.plugin_image,
            "imagePullPolicy": "IfNotPresent",
            "volumeMounts": [{"mountPath": "/target", "name": "plugins"}],
        }
    ]
    return values


def _keep_concurrency(values: dict[str, Any], max_concurrent: int) -> dict[str, Any]:
    """A stack's own ``configuration.extraArgs`` replace the list; keep the concurrency flag unless
    the stack sets it itself."""
    configuration = dict(values.get("configuration") or {})
    args = [str(arg) for arg in configuration.get("extraArgs") or []]
    if not any(arg.startswith("--concurrent-backups") for arg in args):
        args.append(f"--concurrent-backups={max_concurrent}")
    configuration["extraArgs"] = args
    return {**values, "configuration": configuration}


def ceph_csi_drivers_values(operator_namespace: str) -> dict[str, Any]:
    """Rook v1.20.6 deploy/charts/ceph-csi-drivers/values.yaml with its namespace placeholders
    ("replace rook-ceph ... with your operator namespace") filled in."""
    return {
        "operatorConfig": {
            "namespace": operator_namespace,
            "driverSpecDefaults": {
                "imageSet": {"name": "rook-csi-operator-image-set-configmap"},
                "nodePlugin": {"priorityClassName": "system-node-critical"},
                "controllerPlugin": {"priorityClassName": "system-cluster-critical"},
            },
        },
        "drivers": {
            kind: {"enabled": kind in ("rbd", "cephfs"), "name": csi_driver_name(operator_namespace, kind)}
            for kind in ("rbd", "cephfs", "nfs", "nvmeof")
        },
    }


def generated_values(key: str, chart: Chart, config: StackConfig) -> dict[str, Any]:
    """Values that depend on the rest of the stack config."""
    if key == "velero" and chart is VELERO:
        return velero_values(config.backups)
    if key == "rook_ceph" and chart is CEPH_CSI_DRIVERS:
        return ceph_csi_drivers_values(rook_operator_namespace(config))
    return {}


def release_charts(key: str, config: StackConfig) -> list[Chart]:
    """The charts of one operator with the stack's overrides applied, in install order."""
    release: HelmReleaseConfig = getattr(config.operators, key)
    namespace = release.namespace or CHARTS[key][-1].namespace
    charts = []
    for chart in CHARTS[key]:
        values = deep_merge(chart.values, generated_values(key, chart, config))
        if chart.takes_values:
            values = deep_merge(values, release.values)
        if chart is VELERO:
            values = _keep_concurrency(values, config.backups.max_concurrent)
        version = release.chart_version if chart.follows_chart_version and release.chart_version else chart.version
        charts.append(replace(chart, version=version, namespace=namespace, values=values))
    return charts


def operator_namespace(key: str, release: HelmReleaseConfig) -> str:
    return release.namespace or CHARTS[key][-1].namespace


class Operators(pulumi.ComponentResource):
    """The enabled operators; ``ready`` lists what custom resources must wait for."""

    def __init__(self, name: str, config: StackConfig, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("flightdeck:operators:Operators", name, None, opts)
        self.releases: dict[str, list[k8s.helm.v3.Release]] = {}
        for key, release in config.operators:
            if not release.enabled:
                continue
            previous: list[pulumi.Resource] = []
            for chart in release_charts(key, config):
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
