"""Every Kubernetes object flightdeck declares carries ``pulumi.com/patchForce: "true"``.

Without it, server-side apply refuses to take back a field a manual edit changed (``kubectl
scale``, ``kubectl edit``) and ``up`` fails with a field conflict instead of repairing the drift
(pulumi-kubernetes ``provider/pkg/await/await.go``, ``patchForce``). The fault tier also tells
flightdeck's objects from everything else in the cluster by it (its orphan check).
"""

from __future__ import annotations

import pytest

from components.naming import OWNED_BY_THE_STACK
from tools.render_stack import REDACTED, deploy, stack_file_config, stack_file_secret_keys


@pytest.mark.parametrize("stack", ["local", "staging", "prod"])
def test_every_declared_kubernetes_object_carries_patch_force(stack: str) -> None:
    secrets = {key: REDACTED for key in stack_file_secret_keys(stack)}
    deployment = deploy(stack_file_config(stack), stack=stack, secrets=secrets)
    objects = [
        r for r in deployment.registrations
        if r.typ.startswith("kubernetes:") and r.request.custom and "metadata" in r.inputs
    ]  # fmt: skip
    assert len(objects) > 20
    missing = sorted(
        f"{r.typ} {r.name}"
        for r in objects
        if any((r.metadata.get("annotations") or {}).get(key) != value for key, value in OWNED_BY_THE_STACK.items())
    )
    assert missing == []
    kinds = {r.typ.rsplit(":", 1)[1] for r in objects}
    assert {"MariaDB", "Ingress", "Schedule", "Deployment", "Secret", "NetworkPolicy", "Certificate"} <= kinds
