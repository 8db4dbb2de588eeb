"""The policy pack as its own process, started exactly as the Python language host starts it.

``RunPlugin`` for an analyzer runs ``<venv python> -u -m pulumi.policy <engine address> <pack dir>``
with the pack directory as working directory and the stack config in ``PULUMI_CONFIG``
(pulumi/pulumi ``sdk/python/cmd/pulumi-language-python/main.go``); the pack prints its gRPC port
and the engine talks to it over the Analyzer service. Here the test is the engine: same command,
same environment, same RPCs, over loopback. What only the real engine adds (the handshake, the
proxy that collects the config) is for the e2e tier.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import empty_pb2, json_format, struct_pb2
from pulumi.runtime.proto import analyzer_pb2, analyzer_pb2_grpc

from tests.unit.harness import deploy, stack_file_config

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

PACK = Path(__file__).resolve().parents[2] / "policy"


@pytest.fixture(scope="module")
def analyzer() -> Iterator[analyzer_pb2_grpc.AnalyzerStub]:
    sites = stack_file_config("staging")["sites"]  # docs opts into dropDataOnDelete
    env = {
        **os.environ,
        "PULUMI_CONFIG": json.dumps({"flightdeck:sites": json.dumps(sites)}),
        "PULUMI_PROJECT": "flightdeck",
        "PULUMI_STACK": "staging",
        "PULUMI_DRY_RUN": "true",
    }
    process = subprocess.Popen(
        [sys.executable, "-u", "-m", "pulumi.policy", "127.0.0.1:1", str(PACK)],
        cwd=PACK, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        port = process.stdout.readline().decode().strip()
        assert port.isdigit(), process.stderr.read().decode() if process.stderr else port
        channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        grpc.channel_ready_future(channel).result(timeout=30)
        yield analyzer_pb2_grpc.AnalyzerStub(channel)
        channel.close()
    finally:
        process.terminate()
        process.wait(timeout=10)


def _struct(props: dict[str, Any]) -> struct_pb2.Struct:
    return json_format.ParseDict(props, struct_pb2.Struct())


def test_the_pack_serves_its_mandatory_rules(analyzer: analyzer_pb2_grpc.AnalyzerStub) -> None:
    info = analyzer.GetAnalyzerInfo(empty_pb2.Empty())
    assert info.name == "flightdeck" and len(info.policies) == 9
    assert {p.enforcementLevel for p in info.policies} == {analyzer_pb2.MANDATORY}


def test_a_violating_resource_is_rejected_by_name(analyzer: analyzer_pb2_grpc.AnalyzerStub) -> None:
    props = {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "shop"},
        "spec": {"template": {"spec": {"hostPID": True, "containers": [
            {"name": "app", "image": "nginx:1.29", "securityContext": {
                "runAsNonRoot": True, "runAsUser": 101, "allowPrivilegeEscalation": False}}]}}},
    }  # fmt: skip
    request = analyzer_pb2.AnalyzeRequest(
        type="kubernetes:apps/v1:Deployment", name="shop-web", properties=_struct(props),
        urn="urn:pulumi:staging::flightdeck::kubernetes:apps/v1:Deployment::shop-web",
    )  # fmt: skip
    (diagnostic,) = analyzer.Analyze(request).diagnostics
    assert diagnostic.policyName == "no-host-namespaces" and diagnostic.enforcementLevel == analyzer_pb2.MANDATORY
    assert diagnostic.message.endswith(
        "Deployment shop/web (resource 'shop-web'): the pod shares the node's process namespace (hostPID: true)"
    )


def test_the_stack_config_reaches_the_pack(analyzer: analyzer_pb2_grpc.AnalyzerStub) -> None:
    """docs is opted in through PULUMI_CONFIG, so its data marked for deletion passes."""
    asyncio.set_event_loop(asyncio.new_event_loop())  # Pulumi's mock runtime wants one (#6465)
    deployment = deploy(stack_file_config("staging"), stack="staging")
    resources = [
        analyzer_pb2.AnalyzerResource(
            type=r.typ, name=r.name, urn=r.urn, parent=str(r.request.parent),
            properties=r.request.object,
            options=analyzer_pb2.AnalyzerResourceOptions(protect=r.protect, parent=str(r.request.parent)),
        )
        for r in deployment.registrations
    ]  # fmt: skip

    def found(items: list[Any]) -> set[tuple[str, str]]:
        request = analyzer_pb2.AnalyzeStackRequest(resources=items)
        return {(d.policyName, d.urn.rsplit("::", 1)[-1]) for d in analyzer.AnalyzeStack(request).diagnostics}

    # The real stack passes every rule; docs' objects are marked for deletion and pass only by its opt-in.
    docs_claim = next(r for r in resources if r.name == "docs-files-claim")
    assert docs_claim.properties["metadata"]["annotations"]["flightdeck.io/on-delete"] == "delete"
    assert found(resources) == set()
    # The same marker on a site that did not opt in fails.
    shop_claim = next(r for r in resources if r.name == "shop-files-claim")
    shop_claim.properties["metadata"]["annotations"]["flightdeck.io/on-delete"] = "delete"
    assert found(resources) == {("data-is-retained", "shop-files-claim")}
