"""What happens to a data-bearing object when it leaves the program: kept, unless its site opted in.

``retain_on_delete`` makes Pulumi forget an object instead of deleting it. The policy pack
(``policy/``) cannot see that option: the analyzer protocol passes a resource's ``protect`` flag
but not ``retainOnDelete`` (pulumi/pulumi ``proto/pulumi/analyzer.proto``,
``AnalyzerResourceOptions``; pulumi-policy's ``PolicyResourceOptions``). So every data-bearing
Kubernetes object also carries the same decision as an annotation, and both come from here, so
the option and the annotation can never disagree (``tests/unit/test_data_retention.py``).
Protected objects (the MariaDB resource, the CephFilesystem) need no annotation: the policy
sees ``protect`` itself.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

from components.config import SiteConfig

ON_DELETE_ANNOTATION = "flightdeck.io/on-delete"
RETAIN = "retain"
DELETE = "delete"


@dataclass(frozen=True)
class Retention:
    keep: bool

    @classmethod
    def for_site(cls, site: SiteConfig) -> Retention:
        """A site's data is kept unless the site set ``dropDataOnDelete``."""
        return cls(keep=not site.drop_data_on_delete)

    @classmethod
    def always(cls) -> Retention:
        """Shared data no site may drop (e.g. the MariaDB namespace)."""
        return cls(keep=True)

    @property
    def annotations(self) -> dict[str, str]:
        return {ON_DELETE_ANNOTATION: RETAIN if self.keep else DELETE}

    @property
    def options(self) -> pulumi.ResourceOptions:
        return pulumi.ResourceOptions(retain_on_delete=self.keep)
