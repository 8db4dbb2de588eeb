"""The pack as a whole: the real stacks pass every rule, the pack as the analyzer serves it, its files."""

from __future__ import annotations

import copy
import importlib.metadata
import runpy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pulumi_policy
import pytest
import yaml
from google.protobuf import json_format, struct_pb2
from pulumi.runtime import proto
from pulumi_policy.policy import _PolicyAnalyzerServicer
from pulumi_policy.proxy import UNKNOWN_STRING_VALUE

from flightdeck_policy.policies import PACK_NAME, all_policies
from tests.unit.policy.policy_args import Resource, Resources, run_all

REPO = Path(__file__).resolve().parents[3]
PACK = REPO / "policy"

OPTED_IN = {"local": [], "staging": ["docs"], "prod": []}
DEFAULT_DENY = "site-namespaces-default-deny"
PDB_RULE = "replicated-deployments-have-pdb"


@pytest.mark.parametrize("stack_name", sorted(OPTED_IN))
def test_real_stacks_pass_every_rule(stack: Callable[[str], Resources], stack_name: str) -> None:
    assert run_all(stack(stack_name), OPTED_IN[stack_name]) == []


def test_each_stack_rule_judges_the_real_stack(stack: Callable[[str], Resources]) -> None:
    """Passing is not vacuous: removing what the program renders for each rule fails it."""
    prod = stack("prod")
    stripped = prod.without(lambda r: r.name in {"museum-network-default-deny", "museum-network-egress",
                                                 "events-web-pdb"})  # fmt: skip
    stripped.named("docs-files-claim").props["metadata"]["annotations"].clear()
    found = {(v.policy, (v.urn or "").rsplit("::", 1)[-1]) for v in run_all(stripped)}
    assert found == {
        (DEFAULT_DENY, "museum-namespace"),
        (PDB_RULE, "events-web-deployment"),
        ("data-is-retained", "docs-files-claim"),
    }


def test_every_rule_is_mandatory_and_documented() -> None:
    names = [p.name for p in all_policies()]
    assert len(names) == len(set(names)) == 9
    docs = (REPO / "docs" / "policy.md").read_text()
    for policy in all_policies():
        assert policy.enforcement_level == pulumi_policy.EnforcementLevel.MANDATORY, policy.name
        assert f"`{policy.name}`" in docs, policy.name


# -- the pack as the engine talks to it (pulumi-policy's own analyzer servicer, no engine) ----------


@pytest.fixture
def servicer() -> _PolicyAnalyzerServicer:
    return _PolicyAnalyzerServicer(
        PACK_NAME, "1.0.0", all_policies(opted_in=frozenset), pulumi_policy.EnforcementLevel.MANDATORY,
        None, None, None, None, None, None, None,
    )  # fmt: skip


def _struct(props: dict[str, Any]) -> struct_pb2.Struct:
    return json_format.ParseDict(props, struct_pb2.Struct())


def _analyze_request(resource: Resource) -> Any:
    options = proto.AnalyzerResourceOptions(protect=resource.opts.protect, parent=resource.parent or "")
    return proto.AnalyzeRequest(
        type=resource.resource_type, properties=_struct(resource.props), urn=resource.urn, name=resource.name,
        options=options,
    )  # fmt: skip


def test_the_served_pack_lists_its_rules_as_mandatory(servicer: _PolicyAnalyzerServicer) -> None:
    info = servicer.GetAnalyzerInfo(None, None)
    assert info.name == PACK_NAME
    assert {p.name for p in info.policies} == {p.name for p in all_policies()}
    assert {p.enforcementLevel for p in info.policies} == {proto.MANDATORY}


def test_the_served_pack_rejects_a_violating_resource_naming_it(
    servicer: _PolicyAnalyzerServicer, stack: Callable[[str], Resources]
) -> None:
    deployment = stack("local").named("blog-web-deployment")
    assert list(servicer.Analyze(_analyze_request(deployment), None).diagnostics) == []
    deployment.props["spec"]["template"]["spec"]["hostNetwork"] = True
    (diagnostic,) = servicer.Analyze(_analyze_request(deployment), None).diagnostics
    assert diagnostic.policyName == "no-host-namespaces"
    assert diagnostic.enforcementLevel == proto.MANDATORY
    # pulumi-policy puts the rule's description first, then our message.
    assert diagnostic.message == (
        "No pod uses the node's network, process or IPC namespace, or binds a host port.\n"
        "Deployment blog/blog (resource 'blog-web-deployment'): the pod shares the node's network namespace "
        "(hostNetwork: true)"
    )


def test_the_served_pack_judges_the_stack_and_defers_unknowns(
    servicer: _PolicyAnalyzerServicer, stack: Callable[[str], Resources]
) -> None:
    resources = stack("staging")

    def stack_request(items: list[Resource]) -> Any:
        return proto.AnalyzeStackRequest(
            resources=[
                proto.AnalyzerResource(
                    type=r.resource_type, properties=_struct(r.props), urn=r.urn, name=r.name, parent=r.parent or "",
                    options=proto.AnalyzerResourceOptions(protect=r.opts.protect, parent=r.parent or ""),
                )
                for r in items
            ]
        )  # fmt: skip

    diagnostics = servicer.AnalyzeStack(stack_request(resources.items), None).diagnostics
    # docs opts into dropDataOnDelete in the stack file; this servicer's config opts nothing in.
    by_policy = {(d.policyName, d.urn.rsplit("::", 1)[-1]) for d in diagnostics}
    assert {u for p, u in by_policy if p == "data-is-retained"} == {
        "docs-namespace", "docs-files-claim", "docs-db-database", "docs-backups-database"
    }  # fmt: skip
    assert {p for p, _ in by_policy} == {"data-is-retained"}
    assert {d.enforcementLevel for d in diagnostics} == {proto.MANDATORY}
    # A site namespace without its default deny and egress policies, judged by the served pack.
    open_shop = [r for r in resources.items if r.name not in {"shop-network-default-deny", "shop-network-egress"}]
    (deny,) = [
        d for d in servicer.AnalyzeStack(stack_request(open_shop), None).diagnostics if d.policyName == DEFAULT_DENY
    ]  # fmt: skip
    assert deny.urn == resources.named("shop-namespace").urn and deny.enforcementLevel == proto.MANDATORY
    assert "no NetworkPolicy denies egress by default" in deny.message
    # During a preview a value can be unknown; then the rule is reported as not run (advisory).
    claim = copy.deepcopy(resources.named("shop-files-claim"))
    claim.props["metadata"]["annotations"] = UNKNOWN_STRING_VALUE
    only = [r for r in resources.items if r.resource_type != "kubernetes:core/v1:PersistentVolumeClaim"]
    only = [r for r in only if not r.name.startswith("docs")]
    (deferred,) = [
        d for d in servicer.AnalyzeStack(stack_request([*only, claim]), None).diagnostics
        if d.policyName == "data-is-retained"
    ]  # fmt: skip
    assert deferred.enforcementLevel == proto.ADVISORY
    assert "can't run policy 'data-is-retained'" in deferred.message and "during preview" in deferred.message


# -- the pack's files -------------------------------------------------------------------------------


def test_the_entry_point_serves_all_rules_as_mandatory(monkeypatch: pytest.MonkeyPatch) -> None:
    served: dict[str, Any] = {}

    def record(**kwargs: Any) -> None:  # instead of starting the gRPC server
        served.update(kwargs)

    monkeypatch.setattr(pulumi_policy, "PolicyPack", record)
    monkeypatch.syspath_prepend(str(PACK))
    runpy.run_path(str(PACK / "__main__.py"), run_name="__main__")
    assert served["name"] == PACK_NAME
    assert served["enforcement_level"] == pulumi_policy.EnforcementLevel.MANDATORY
    assert [p.name for p in served["policies"]] == [p.name for p in all_policies()]


def test_the_pack_runs_in_the_project_virtualenv_with_the_pinned_sdk() -> None:
    pack = yaml.safe_load((PACK / "PulumiPolicy.yaml").read_text())
    project = yaml.safe_load((REPO / "Pulumi.yaml").read_text())
    assert pack["runtime"]["name"] == "python" and pack["version"]
    assert (PACK / pack["runtime"]["options"]["virtualenv"]).resolve() == (
        REPO / project["runtime"]["options"]["virtualenv"]
    ).resolve()
    pins = [line for line in (PACK / "requirements.txt").read_text().splitlines() if line and line[0] != "#"]
    assert pins == [f"pulumi-policy=={importlib.metadata.version('pulumi-policy')}"]
