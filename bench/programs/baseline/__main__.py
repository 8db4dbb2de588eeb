"""Benchmark baseline: plain resources through the same engine and plugins as flightdeck.

Registers ``configMaps`` ConfigMaps (one namespace, through an explicit kubernetes provider, as
flightdeck does) and ``randoms`` random resources (``RandomString``), with no components, no
dynamic providers and no config validation: the engine's and the plugins' own per-resource
cost, which no Python program can go below. ``bench.engine_scale`` sets both counts to the
custom resources of the flightdeck stack it compares with.
"""

from __future__ import annotations

import pulumi
import pulumi_kubernetes as k8s
import pulumi_random as random

config = pulumi.Config()
config_maps = config.require_int("configMaps")
randoms = config.require_int("randoms")
namespace_name = config.get("namespace") or "bench-baseline"

provider = k8s.Provider("k8s", context=config.get("kubeContext"), enable_server_side_apply=True)
opts = pulumi.ResourceOptions(provider=provider)
namespace = k8s.core.v1.Namespace("ns", metadata={"name": namespace_name}, opts=opts)
for i in range(config_maps):
    k8s.core.v1.ConfigMap(
        f"cm-{i:05d}",
        metadata={"name": f"cm-{i:05d}", "namespace": namespace.metadata["name"]},
        data={"index": str(i)},
        opts=opts,
    )
for i in range(randoms):
    random.RandomString(f"rnd-{i:05d}", length=16, special=False)
pulumi.export("resources", config_maps + randoms + 1)
