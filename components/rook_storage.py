"""RookStorage: the cluster-level CephFS file system and its storage class (optional).

For clusters whose Rook install has a CephCluster but no file system yet. The storage class
keeps volumes (``reclaimPolicy: Retain``) so deleting a claim never deletes a site's files.

The provisioner is the CephFS CSI driver's name, ``<operator namespace>.cephfs.csi.ceph.com``:
Rook v1.20.6 names its drivers after the namespace the *operator* runs in
(pkg/operator/ceph/csi/controller.go: ``driverPrefix := fmt.Sprintf("%s.", OperatorNamespace)``),
which need not be the CephCluster's namespace (``clusterID`` and the secrets' namespace).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components.config import RookStorageConfig, StackConfig
from components.naming import object_meta

DEFAULT_OPERATOR_NAMESPACE = "rook-ceph"


def csi_driver_name(operator_namespace: str, kind: str = "cephfs") -> str:
    """``rook-ceph.cephfs.csi.ceph.com``: Rook's driver (and StorageClass provisioner) names."""
    return f"{operator_namespace}.{kind}.csi.ceph.com"


def rook_operator_namespace(config: StackConfig) -> str:
    rook = config.storage.rook
    if rook is not None and rook.operator_namespace:
        return rook.operator_namespace
    return config.operators.rook_ceph.namespace or DEFAULT_OPERATOR_NAMESPACE


def filesystem_spec(rook: RookStorageConfig) -> dict[str, Any]:
    pool = {"failureDomain": rook.failure_domain, "replicated": {"size": rook.replicas}}
    return {
        "metadataPool": pool,
        "dataPools": [{"name": "data", **pool}],
        "preserveFilesystemOnDelete": True,
        "metadataServer": {"activeCount": rook.active_mds_count, "activeStandby": True},
    }


def storage_class_parameters(rook: RookStorageConfig) -> dict[str, str]:
    # Rook's v1.20 example class also names controller-publish secrets (for fencing, commit
    # 3d024ce3c: "in case the user wants to override the defaults in the clientProfile"); they
    # are left out because a StorageClass's parameters are immutable: adding them would replace
    # the class of every existing stack for no change in behaviour.
    secrets_namespace = rook.namespace
    return {
        "clusterID": rook.namespace,
        "fsName": rook.filesystem_name,
        "pool": f"{rook.filesystem_name}-data",
        "csi.storage.k8s.io/provisioner-secret-name": "rook-csi-cephfs-provisioner",
        "csi.storage.k8s.io/provisioner-secret-namespace": secrets_namespace,
        "csi.storage.k8s.io/controller-expand-secret-name": "rook-csi-cephfs-provisioner",
        "csi.storage.k8s.io/controller-expand-secret-namespace": secrets_namespace,
        "csi.storage.k8s.io/node-stage-secret-name": "rook-csi-cephfs-node",
        "csi.storage.k8s.io/node-stage-secret-namespace": secrets_namespace,
    }


class RookStorage(pulumi.ComponentResource):
    def __init__(
        self,
        name: str,
        rook: RookStorageConfig,
        *,
        storage_class: str,
        operator_namespace: str,
        depends_on: Sequence[pulumi.Resource] = (),
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("flightdeck:storage:RookStorage", name, None, opts)
        child = pulumi.ResourceOptions(parent=self, depends_on=list(depends_on))
        self.filesystem = k8s.apiextensions.CustomResource(
            f"{name}-filesystem",
            api_version="ceph.rook.io/v1",
            kind="CephFilesystem",
            metadata=object_meta(rook.filesystem_name, rook.namespace),
            spec=filesystem_spec(rook),
            opts=child.merge(pulumi.ResourceOptions(protect=True, retain_on_delete=True)),
        )
        self.storage_class = k8s.storage.v1.StorageClass(
            f"{name}-class",
            metadata=object_meta(storage_class),
            provisioner=csi_driver_name(operator_namespace),
            parameters=storage_class_parameters(rook),
            reclaim_policy="Retain",
            allow_volume_expansion=True,
            volume_binding_mode="Immediate",
            opts=child.merge(pulumi.ResourceOptions(depends_on=[self.filesystem])),
        )
        self.register_outputs({"storageClass": storage_class})
