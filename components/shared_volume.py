"""SharedVolume: the ReadWriteMany CephFS claim that every web pod of a site mounts.

CephFS through the Rook CSI driver gives a POSIX file system shared by many pods without
root, privileged pods or an NFS server. The claim outlives the site's removal from config
(``retain_on_delete``) unless the site opted in with ``dropDataOnDelete``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

import pulumi
import pulumi_kubernetes as k8s

from components.config import SiteConfig
from components.data_retention import Retention
from components.naming import files_claim_name, object_meta, site_labels

ACCESS_MODES = ["ReadWriteMany"]


class SharedVolume(pulumi.ComponentResource):
    claim_name: str

    def __init__(
        self,
        name: str,
        site: SiteConfig,
        *,
        namespace: pulumi.Input[str],
        storage_class: str,
        depends_on: Sequence[pulumi.Resource] = (),
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("flightdeck:storage:SharedVolume", name, None, opts)
        self.claim_name = files_claim_name(site)
        retention = Retention.for_site(site)
        self.claim = k8s.core.v1.PersistentVolumeClaim(
            f"{name}-claim",
            metadata=object_meta(self.claim_name, namespace, site_labels(site), retention.annotations),
            spec=cast(
                "k8s.core.v1.PersistentVolumeClaimSpecArgsDict",
                {
                    "accessModes": ACCESS_MODES,
                    "storageClassName": storage_class,
                    "resources": {"requests": {"storage": site.files_size}},
                },
            ),
            opts=pulumi.ResourceOptions(parent=self, depends_on=list(depends_on)).merge(retention.options),
        )
        self.register_outputs({"claimName": self.claim_name})
