"""The flightdeck policy pack: ``pulumi preview --policy-pack policy`` (rules: docs/policy.md).

The Python language host runs this file with ``python -u -m pulumi.policy <engine> <this dir>``
in the virtualenv PulumiPolicy.yaml names; ``PolicyPack`` then serves the analyzer over gRPC.
"""

from pulumi_policy import EnforcementLevel, PolicyPack

from flightdeck_policy.policies import PACK_NAME, all_policies

PolicyPack(
    name=PACK_NAME,
    policies=all_policies(),
    enforcement_level=EnforcementLevel.MANDATORY,
    description="flightdeck: pod security, default-deny networking, data retention, pinned images, disruption budgets",
)
