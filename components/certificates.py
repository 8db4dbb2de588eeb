"""Certificates: the Let's Encrypt ClusterIssuer and a Certificate per site.

HTTP-01 through the platform's ingress class. Each site gets one Certificate covering all its
domains, in its own namespace, so a site's TLS secret is never readable by another site.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components.config import CertificatesConfig, SiteConfig
from components.naming import object_meta, site_labels, tls_secret_name

CERT_MANAGER_API = "cert-manager.io/v1"
ACME_SERVERS = {
    "production": "https://acme-v02.api.letsencrypt.org/directory",
    "staging": "https://acme-staging-v02.api.letsencrypt.org/directory",
}


def cluster_issuer_spec(certificates: CertificatesConfig) -> dict[str, Any]:
    return {
        "acme": {
            "email": certificates.acme_email,
            "server": ACME_SERVERS[certificates.environment],
            "privateKeySecretRef": {"name": f"{certificates.cluster_issuer}-account-key"},
            "solvers": [{"http01": {"ingress": {"ingressClassName": certificates.ingress_class}}}],
        }
    }


def certificate_spec(site: SiteConfig, issuer: str) -> dict[str, Any]:
    return {
        "secretName": tls_secret_name(site),
        "dnsNames": list(site.domains),
        "issuerRef": {"name": issuer, "kind": "ClusterIssuer", "group": "cert-manager.io"},
        "privateKey": {"algorithm": "ECDSA", "size": 256, "rotationPolicy": "Always"},
        "secretTemplate": {"labels": site_labels(site)},
    }


class ClusterIssuer(pulumi.ComponentResource):
    """The ACME ClusterIssuer every site's Certificate names."""

    name: str

    def __init__(
        self,
        name: str,
        certificates: CertificatesConfig,
        *,
        depends_on: Sequence[pulumi.Resource] = (),
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("flightdeck:certificates:ClusterIssuer", name, None, opts)
        self.name = certificates.cluster_issuer
        self.issuer = k8s.apiextensions.CustomResource(
            f"{name}-issuer",
            api_version=CERT_MANAGER_API,
            kind="ClusterIssuer",
            metadata=object_meta(certificates.cluster_issuer),
            spec=cluster_issuer_spec(certificates),
            opts=pulumi.ResourceOptions(parent=self, depends_on=list(depends_on)),
        )
        self.register_outputs({"name": self.name, "server": ACME_SERVERS[certificates.environment]})


class SiteCertificate(pulumi.ComponentResource):
    """One Certificate for all of a site's domains; the Ingress serves its secret."""

    secret_name: str
    dns_names: list[str]

    def __init__(
        self,
        name: str,
        site: SiteConfig,
        *,
        namespace: pulumi.Input[str],
        issuer: ClusterIssuer,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("flightdeck:certificates:SiteCertificate", name, None, opts)
        self.secret_name = tls_secret_name(site)
        self.dns_names = list(site.domains)
        self.certificate = k8s.apiextensions.CustomResource(
            f"{name}-certificate",
            api_version=CERT_MANAGER_API,
            kind="Certificate",
            metadata=object_meta(site.name, namespace, site_labels(site)),
            spec=certificate_spec(site, issuer.name),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[issuer]),
        )
        self.register_outputs({"secretName": self.secret_name, "dnsNames": self.dns_names})
