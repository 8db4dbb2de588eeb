"""Operator Helm releases: pinned versions and every value checked against the chart's own
values.yaml at that version (the key lists below were read from the charts at their tags)."""

from __future__ import annotations

from typing import Any

import pytest

from components.config import ConfigError, validate_stack_config
from components.operators import CHARTS, release_charts
from tests.unit.harness import Deployment, deploy, minimal_config

RELEASE = "kubernetes:helm.sh/v3:Release"

# Keys present in each chart's values.yaml at the pinned version. `[]` is a list entry; a key in
# FREE_FORM holds arbitrary provider or Kubernetes data the chart passes through.
VERIFIED_KEYS: dict[str, set[str]] = {
    # cert-manager v1.21.1 deploy/charts/cert-manager/values.yaml
    "cert-manager": {"crds.enabled", "crds.keep"},
    # vmware-tanzu/helm-charts velero-12.0.0 charts/velero/values.yaml
    "velero": {
        "deployNodeAgent", "snapshotsEnabled", "backupsEnabled",
        "configuration.defaultVolumesToFsBackup", "configuration.extraArgs",
        "configuration.defaultBackupStorageLocation",
        "configuration.backupStorageLocation[].name", "configuration.backupStorageLocation[].provider",
        "configuration.backupStorageLocation[].bucket", "configuration.backupStorageLocation[].prefix",
        "configuration.backupStorageLocation[].default", "configuration.backupStorageLocation[].accessMode",
        "configuration.backupStorageLocation[].credential.name", "configuration.backupStorageLocation[].credential.key",
        "configuration.backupStorageLocation[].config",
        "credentials.useSecret", "credentials.existingSecret", "initContainers",
    },
    # rook v1.20.6 deploy/charts/rook-ceph/values.yaml
    "rook-ceph": {"crds.enabled", "csi.installCsiOperator"},
    # ceph-csi-operator v1.0.4 deploy/charts/ceph-csi-drivers/values.yaml (Rook v1.20.6's recommended values)
    "ceph-csi-drivers": {
        "operatorConfig.namespace", "operatorConfig.driverSpecDefaults.imageSet.name",
        "operatorConfig.driverSpecDefaults.nodePlugin.priorityClassName",
        "operatorConfig.driverSpecDefaults.controllerPlugin.priorityClassName",
        *(f"drivers.{kind}.{key}" for kind in ("rbd", "cephfs", "nfs", "nvmeof") for key in ("enabled", "name")),
    },
    "mariadb-operator-crds": set(),
    # mariadb-operator-26.6.0 deploy/charts/mariadb-operator/values.yaml
    "mariadb-operator": {
        "ha.enabled", "pdb.enabled", "affinity", "webhook.ha.enabled", "webhook.pdb.enabled",
        "certController.ha.enabled", "certController.pdb.enabled",
    },
}  # fmt: skip
FREE_FORM = {"configuration.backupStorageLocation[].config", "initContainers", "affinity", "configuration.extraArgs"}
PINNED = {
    "cert-manager": ("v1.21.1", "v1.21.1"),
    "velero": ("12.0.0", "1.18.0"),
    "rook-ceph": ("v1.20.6", "v1.20.6"),
    "ceph-csi-drivers": ("1.0.4", "v1.0.4"),
    "mariadb-operator-crds": ("26.6.0", "26.6.0"),
    "mariadb-operator": ("26.6.0", "26.6.0"),
}
LOCATION = {
    "pluginImage": "velero/velero-plugin-for-aws:v1.14.0",
    "bucket": "flightdeck-velero",
    "prefix": "prod",
    "region": "eu-central-1",
    "s3Url": "https://rgw.storage.example.org",
    "credentialsSecret": "velero-s3",
    "config": {"checksumAlgorithm": ""},
}


def _paths(values: Any, prefix: str = "") -> set[str]:
    if prefix in FREE_FORM:
        return {prefix}
    if isinstance(values, dict) and values:
        return {p for key, item in values.items() for p in _paths(item, f"{prefix}.{key}" if prefix else key)}
    if isinstance(values, list) and values and all(isinstance(item, dict) for item in values):
        return {p for item in values for p in _paths(item, f"{prefix}[]")}
    return {prefix}


def _all_enabled(**extra: Any) -> dict[str, Any]:
    operators = {key: {"enabled": True} for key in ("certManager", "velero", "rookCeph", "mariadbOperator")}
    backups = {"velero": {"backupStorageLocation": LOCATION}, "maxConcurrent": 3}
    return minimal_config(operators=operators, backups=backups, storage={"rook": {}}, **extra)


@pytest.fixture(scope="module")
def everything() -> Deployment:
    import asyncio

    asyncio.set_event_loop(asyncio.new_event_loop())
    return deploy(_all_enabled())


def _releases(deployed: Deployment) -> dict[str, dict[str, Any]]:
    return {r.inputs["chart"]: r.inputs for r in deployed.of_type(RELEASE)}


def test_every_value_is_a_key_of_the_pinned_chart(everything: Deployment) -> None:
    releases = _releases(everything)
    assert set(releases) == set(VERIFIED_KEYS)
    for chart, inputs in releases.items():
        unknown = _paths(inputs.get("values") or {}) - VERIFIED_KEYS[chart] - {""}
        assert not unknown, f"{chart}: {sorted(unknown)} not verified against the chart's values.yaml"


def test_versions_are_pinned_truthfully(everything: Deployment) -> None:
    releases = _releases(everything)
    for chart, (version, _installs) in PINNED.items():
        assert releases[chart]["version"] == version, chart
    declared = {c.chart: (c.version, c.app_version) for charts in CHARTS.values() for c in charts}
    assert declared == PINNED


def test_velero_gets_a_usable_location_plugin_credentials_and_concurrency(everything: Deployment) -> None:
    values = _releases(everything)["velero"]["values"]
    assert values["configuration"]["backupStorageLocation"] == [
        {
            "name": "default",
            "provider": "aws",
            "bucket": "flightdeck-velero",
            "prefix": "prod",
            "default": True,
            "accessMode": "ReadWrite",
            "credential": {"name": "velero-s3", "key": "cloud"},
            "config": {
                "region": "eu-central-1",
                "s3Url": "https://rgw.storage.example.org",
                "s3ForcePathStyle": "true",
                "checksumAlgorithm": "",
            },
        }
    ]
    assert values["credentials"] == {"useSecret": True, "existingSecret": "velero-s3"}
    assert values["initContainers"] == [
        {
            "name": "velero-plugin-for-aws",
            "image": "velero/velero-plugin-for-aws:v1.14.0",
            "imagePullPolicy": "IfNotPresent",
            "volumeMounts": [{"mountPath": "/target", "name": "plugins"}],
        }
    ]
    assert values["configuration"]["extraArgs"] == ["--concurrent-backups=3"]
    assert values["deployNodeAgent"] is True and values["snapshotsEnabled"] is False


def test_schedules_use_the_configured_location(everything: Deployment) -> None:
    schedule = everything.named("blog-backups-velero")
    assert schedule.spec["template"]["storageLocation"] == "default"
    config = _all_enabled()
    config["backups"]["velero"]["storageLocation"] = "s3-primary"
    deployed = deploy(config)
    assert deployed.named("blog-backups-velero").spec["template"]["storageLocation"] == "s3-primary"
    location = _releases(deployed)["velero"]["values"]["configuration"]
    assert location["backupStorageLocation"][0]["name"] == "s3-primary"
    assert location["defaultBackupStorageLocation"] == "s3-primary"


def test_rook_installs_the_cephfs_driver_the_storage_class_names(everything: Deployment) -> None:
    releases = _releases(everything)
    assert releases["rook-ceph"]["values"] == {"crds": {"enabled": True}, "csi": {"installCsiOperator": True}}
    drivers = releases["ceph-csi-drivers"]
    assert drivers["namespace"] == "rook-ceph"
    assert drivers["values"]["drivers"]["cephfs"] == {"enabled": True, "name": "rook-ceph.cephfs.csi.ceph.com"}
    assert everything.named("flightdeck-storage-class").inputs["provisioner"] == "rook-ceph.cephfs.csi.ceph.com"


def test_rook_driver_names_follow_the_operator_namespace() -> None:
    config = _all_enabled()
    config["operators"]["rookCeph"]["namespace"] = "storage-system"
    config["storage"] = {"rook": {"namespace": "ceph-cluster"}}
    deployed = deploy(config)
    drivers = _releases(deployed)["ceph-csi-drivers"]
    assert drivers["namespace"] == "storage-system"
    assert drivers["values"]["operatorConfig"]["namespace"] == "storage-system"
    assert drivers["values"]["drivers"]["cephfs"]["name"] == "storage-system.cephfs.csi.ceph.com"
    storage_class = deployed.named("flightdeck-storage-class").inputs
    assert storage_class["provisioner"] == "storage-system.cephfs.csi.ceph.com"
    assert storage_class["parameters"]["clusterID"] == "ceph-cluster"
    # Without the release, the operator namespace can be named on its own.
    plain = deploy(minimal_config(storage={"rook": {"namespace": "ceph-cluster", "operatorNamespace": "rook-op"}}))
    assert plain.named("flightdeck-storage-class").inputs["provisioner"] == "rook-op.cephfs.csi.ceph.com"


def test_chart_version_override_moves_the_charts_that_belong_together() -> None:
    config = _all_enabled()
    config["operators"]["mariadbOperator"]["chartVersion"] = "26.7.0"
    config["operators"]["rookCeph"]["chartVersion"] = "v1.20.7"
    charts = {
        c.chart: c
        for key in ("mariadb_operator", "rook_ceph")
        for c in release_charts(key, validate_stack_config(config))
    }
    assert charts["mariadb-operator"].version == charts["mariadb-operator-crds"].version == "26.7.0"
    assert charts["rook-ceph"].version == "v1.20.7"
    assert charts["ceph-csi-drivers"].version == "1.0.4"  # pinned to what Rook tests with


def test_own_velero_arguments_keep_the_concurrency() -> None:
    config = _all_enabled()
    config["operators"]["velero"]["values"] = {"configuration": {"extraArgs": ["--log-level=debug"]}}
    args = _releases(deploy(config))["velero"]["values"]["configuration"]["extraArgs"]
    assert args == ["--log-level=debug", "--concurrent-backups=3"]
    config["operators"]["velero"]["values"] = {"configuration": {"extraArgs": ["--concurrent-backups=8"]}}
    assert _releases(deploy(config))["velero"]["values"]["configuration"]["extraArgs"] == ["--concurrent-backups=8"]


def test_stack_values_reach_the_operator_chart_only() -> None:
    config = _all_enabled()
    config["operators"]["rookCeph"]["values"] = {"logLevel": "DEBUG"}
    releases = _releases(deploy(config))
    assert releases["rook-ceph"]["values"]["logLevel"] == "DEBUG"
    assert "logLevel" not in releases["ceph-csi-drivers"]["values"]


@pytest.mark.parametrize(
    ("change", "path", "fragment"),
    [
        (
            lambda c: c["backups"]["velero"].pop("backupStorageLocation"),
            "backups.velero.backupStorageLocation",
            "required",
        ),
        (lambda c: c["operators"].pop("velero"), "backups.velero.backupStorageLocation", "only applies"),
        (
            lambda c: c["operators"]["velero"].update(values={"credentials": {"existingSecret": "x"}}),
            "operators.velero.values.credentials",
            "backupStorageLocation",
        ),
        (
            lambda c: c["storage"]["rook"].update(operatorNamespace="elsewhere"),
            "storage.rook.operatorNamespace",
            "namespace of the Rook release",
        ),
        (
            lambda c: c["backups"]["velero"]["backupStorageLocation"].update(s3Url="rgw.example.org"),
            "backups.velero.backupStorageLocation.s3Url",
            "http(s) URL",
        ),
        (
            lambda c: c["backups"]["velero"]["backupStorageLocation"].pop("pluginImage"),
            "backups.velero.backupStorageLocation.pluginImage",
            "required",
        ),
    ],
)
def test_bad_operator_config_names_the_key(change: Any, path: str, fragment: str) -> None:
    config = _all_enabled()
    change(config)
    with pytest.raises(ConfigError) as caught:
        validate_stack_config(config)
    problems = {p.path: p.reason for p in caught.value.problems}
    assert path in problems, problems
    assert fragment in problems[path]
