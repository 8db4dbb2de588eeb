"""RookStorage: the cluster-level CephFS file system and its storage class (optional).

For clusters whose Rook install has a CephCluster but no file system yet. The storage class
keeps volumes (``reclaimPolicy: Retain``) so deleting a claim never deletes a site's files.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components.config import RookStorageConfig
from components.naming import object_meta

CEPHFS_PROVISIONER_SUFFIX = "cephfs.csi.ceph.com"


def filesystem_spec(rook: RookStorageConfig) -> dict[str, Any]:
    pool = {"failureDomain": rook.failure_domain, "replicated": {"size": rook.replicas}}
    return {
        "metadataPool": pool,
        "dataPools": [{"name": "data", **pool}],
        "preserveFilesystemOnDelete": True,
        "metadataServer": {"activeCount": rook.active_mds_count, "activeStandby": True},
    }


def storage_class_parameters(rook: RookStorageConfig) -> dict[str, str]:
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
            provisioner=f"{rook.namespace}.{CEPHFS_PROVISIONER_SUFFIX}",
            parameters=storage_class_parameters(rook),
            reclaim_policy="Retain",
            allow_volume_expansion=True,
            volume_binding_mode="Immediate",
            opts=child.merge(pulumi.ResourceOptions(depends_on=[self.filesystem])),
        )
        self.register_outputs({"storageClass": storage_class})
