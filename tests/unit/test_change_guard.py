"""Destructive changes are refused before anything is registered; harmless ones pass.

Under the dry renderer's mocks the previous deployment is what ``pulumi:pulumi:readStackOutputs``
returns (``deploy(previous_outputs=...)``); the outputs of one ``deploy`` are fed to the next, as
the engine does between two ``pulumi up`` runs. Numbers come back as floats, as over gRPC.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from components import change_guard
from components.change_guard import GUIDES, deployment_record, destructive_changes, record_from_outputs
from components.config import validate_stack_config
from tests.unit.harness import deploy, last_registrations, minimal_config, stack_file_config
from tools import render_stack

REPO = Path(__file__).resolve().parents[2]
Edit = Callable[[dict[str, Any]], None]


def outputs_of(config: dict[str, Any], stack: str = "prod") -> dict[str, Any]:
    return deploy(config, stack=stack).outputs


def refused(config: dict[str, Any], previous: dict[str, Any], stack: str = "prod") -> str:
    secrets = {"mysqlAdminPassword": "admin-secret"} if config["mysql"]["mode"] == "external" else None
    with pytest.raises(Exception) as caught:
        deploy(config, stack=stack, previous_outputs=previous, secrets=secrets)
    message = str(caught.value)
    assert "Traceback" not in message
    # Nothing but the stack itself was registered: the refusal came before the first resource.
    assert [r.typ for r in last_registrations() if r.typ != "pulumi:pulumi:Stack"] == []
    return message


def edited(config: dict[str, Any], edit: Edit) -> dict[str, Any]:
    changed = copy.deepcopy(config)
    edit(changed)
    return changed


@pytest.fixture(scope="module")
def prod() -> dict[str, Any]:
    import asyncio

    asyncio.set_event_loop(asyncio.new_event_loop())
    return stack_file_config("prod")


@pytest.fixture(scope="module")
def prod_outputs(prod: dict[str, Any]) -> dict[str, Any]:
    import asyncio

    asyncio.set_event_loop(asyncio.new_event_loop())
    return outputs_of(prod)


# -- reading the previous deployment ----------------------------------------------------------------


def test_the_previous_outputs_are_read_before_any_resource(prod: dict[str, Any]) -> None:
    deployed = deploy(prod, stack="prod")
    invokes = render_stack.last_invokes()
    assert invokes[0][0] == "pulumi:pulumi:readStackOutputs"
    before = last_registrations()[: invokes[0][1]]
    assert all(r.typ == "pulumi:pulumi:Stack" for r in before)
    monitor = render_stack.LAST_MONITOR[0]
    assert monitor.flightdeck_mocks.stack_reads == ["organization/flightdeck/prod"]
    assert deployed.outputs[change_guard.OUTPUT_NAME] == deployment_record(validate_stack_config(prod))


def test_the_real_entry_point_refuses_before_registering_anything(
    prod: dict[str, Any], prod_outputs: dict[str, Any]
) -> None:
    changed = edited(prod, lambda c: c["mysql"].update(timeZone="UTC"))
    with pytest.raises(Exception, match=r'mysql\.timeZone: "Europe/Berlin" → "UTC"'):
        deploy(changed, stack="prod", previous_outputs=prod_outputs, entry_point=True)
    assert [r.typ for r in last_registrations() if r.typ != "pulumi:pulumi:Stack"] == []
    assert render_stack.last_invokes()[0][0] == "pulumi:pulumi:readStackOutputs"
    deployed = deploy(prod, stack="prod", previous_outputs=prod_outputs, entry_point=True)
    assert deployed.named("flightdeck-mysql-mariadb").spec["galera"]["enabled"] is True


def test_first_deployment_has_nothing_to_compare(prod: dict[str, Any]) -> None:
    changed = edited(prod, lambda c: c["kubernetes"].update(namespacePrefix="prod-"))
    assert deploy(changed, stack="prod", previous_outputs={}).named("shop-namespace").metadata["name"] == "prod-shop"


def test_unreadable_previous_outputs_refuse_to_start(monkeypatch: pytest.MonkeyPatch, prod: dict[str, Any]) -> None:
    def broken(self: Any, args: Any) -> Any:
        # How the engine answers an invoke it cannot serve: a failure, not outputs.
        return {}, [("name", "backend unavailable")]

    monkeypatch.setattr(render_stack.FlightdeckMocks, "call", broken)
    message = refused(prod, {})
    assert "cannot read this stack's previous outputs" in message and "nothing was changed" in message


def test_an_unchanged_config_deploys_again(prod: dict[str, Any], prod_outputs: dict[str, Any]) -> None:
    again = deploy(prod, stack="prod", previous_outputs=prod_outputs)
    assert again.outputs == prod_outputs


HARMLESS: list[tuple[str, Edit]] = [
    ("replicas", lambda c: c["sites"][0].update(replicas=6)),
    ("image", lambda c: c["sites"][1].update(image="wordpress:6.9-php8.3-apache")),
    ("domains", lambda c: c["sites"][1]["domains"].append("www.blog.example.org")),
    ("password", lambda c: c["sites"][1].update(user={"passwordVersion": 2})),
    ("user name", lambda c: c["sites"][1].update(user={"name": "blog_app"})),
    ("more readers", lambda c: c["mysql"].update(readerCount=4)),
    ("bigger volumes", lambda c: c["mysql"].update(size="40Gi")),
    ("server memory", lambda c: c["mysql"].update(resources={"limits": {"memory": "8Gi"}})),
    ("max connections", lambda c: c["mysql"].update(maxConnections=3000)),
    ("new site", lambda c: c["sites"].append({"name": "news", "cms": "drupal", "domains": ["news.example.org"]})),
    ("remove a site", lambda c: c["sites"].pop(4)),
    ("velero retention", lambda c: c["backups"].update(velero={"enabled": True, "namespace": "velero"})),
    ("pin the database name", lambda c: c["sites"][1].update(database={"name": "blog"})),
]


@pytest.mark.parametrize(("case", "edit"), HARMLESS, ids=[h[0] for h in HARMLESS])
def test_harmless_changes_pass(case: str, edit: Edit, prod: dict[str, Any], prod_outputs: dict[str, Any]) -> None:
    # The comparison the program makes, on the outputs a real deploy exported (one full deploy
    # of a harmless change runs in test_the_two_step_rename_passes and test_an_unchanged_...).
    previous = record_from_outputs(prod_outputs)
    assert destructive_changes(previous, validate_stack_config(edited(prod, edit))) == []


# (case, edit, the key the error names, the old → new fragment, the README guide)
REFUSED: list[tuple[str, Edit, str, str, str]] = [
    (
        "namespace prefix",
        lambda c: c["kubernetes"].update(namespacePrefix="prod-"),
        "kubernetes.namespacePrefix",
        '"" → "prod-"',
        change_guard.FIXED_FOR_STACK,
    ),
    (
        "files storage class",
        lambda c: c["storage"].update(storageClass="cephfs-ssd"),
        "storage.storageClass",
        '"rook-cephfs" → "cephfs-ssd"',
        change_guard.FIXED_FOR_STACK,
    ),
    (
        "operator to external",
        lambda c: c.update(mysql={"mode": "external", "host": "10.0.0.5"}),
        "mysql.mode",
        '"operator" → "external"',
        change_guard.FIXED_FOR_STACK,
    ),
    (
        "cluster name",
        lambda c: c["mysql"].update(name="galera"),
        "mysql.name",
        '"mariadb" → "galera"',
        change_guard.FIXED_FOR_STACK,
    ),
    (
        "cluster namespace",
        lambda c: c["mysql"].update(namespace="db"),
        "mysql.namespace",
        '"mariadb" → "db"',
        change_guard.FIXED_FOR_STACK,
    ),
    (
        "server storage class",
        lambda c: c["mysql"].update(storageClass="ssd"),
        "mysql.storageClass",
        '"ceph-block" → "ssd"',
        change_guard.FIXED_FOR_STACK,
    ),
    (
        "server time zone",
        lambda c: c["mysql"].update(timeZone="UTC"),
        "mysql.timeZone",
        '"Europe/Berlin" → "UTC"',
        change_guard.FIXED_FOR_STACK,
    ),
    (
        "anti-affinity",
        lambda c: c["mysql"].update(antiAffinity=False),
        "mysql.antiAffinity",
        "true → false",
        change_guard.FIXED_FOR_STACK,
    ),
    (
        "smaller volumes",
        lambda c: c["mysql"].update(size="10Gi"),
        "mysql.size",
        '"20Gi" → "10Gi"',
        change_guard.FIXED_FOR_STACK,
    ),
    (
        "Galera to a single server",
        lambda c: c["mysql"].update(readerCount=0),
        "mysql.readerCount",
        "2 → 0 would turn a Galera cluster into a single server",
        change_guard.FIXED_FOR_STACK,
    ),
    (
        "backup storage",
        lambda c: c["backups"]["databaseBackups"]["storage"]["s3"].update(bucket="other-bucket"),
        "backups.databaseBackups.storage",
        '"other-bucket"',
        change_guard.BACKUP_STORAGE,
    ),
    (
        "backup retention",
        lambda c: c["backups"].update(retentionDays=14),
        "backups.retentionDays",
        "30 → 14",
        change_guard.BACKUP_STORAGE,
    ),
    (
        "one site's backup retention",
        lambda c: c["sites"][0].update(backup={"retentionDays": 90}),
        "sites[0].backup.retentionDays",
        "30 → 90",
        change_guard.BACKUP_STORAGE,
    ),
    (
        "database name",
        lambda c: c["sites"][2].update(database={"name": "intranet_d12"}),
        "sites[2].database.name",
        '"intranet_d11" → "intranet_d12"',
        change_guard.RENAME_DATABASE,
    ),
    (
        "site rename keeping a domain",
        lambda c: c["sites"][1].update(name="journal"),
        "sites[1].name",
        '"blog" → "journal"',
        change_guard.RENAME_SITE,
    ),
    (
        "site rename with pinned names",
        lambda c: c["sites"][1].update(
            name="journal", domains=["journal.example.org"], database={"name": "blog"}, user={"name": "blog"}
        ),
        "sites[1].name",
        "database blog and user blog",
        change_guard.RENAME_SITE,
    ),
]


@pytest.mark.parametrize(("case", "edit", "key", "change", "guide"), REFUSED, ids=[r[0] for r in REFUSED])
def test_destructive_changes_are_refused_before_anything_changes(
    case: str, edit: Edit, key: str, change: str, guide: str, prod: dict[str, Any], prod_outputs: dict[str, Any]
) -> None:
    message = refused(edited(prod, edit), prod_outputs)
    lines = message.splitlines()
    assert lines[0] == "refusing changes that would lose data or fail half-way (nothing was changed):"
    matching = [line for line in lines[1:] if line.startswith(f"  prod: {key}: ")]
    assert len(matching) == 1, message
    assert change in matching[0] and f"see README: {guide}" in matching[0]


def test_every_refusal_is_listed_at_once(prod: dict[str, Any], prod_outputs: dict[str, Any]) -> None:
    def many(c: dict[str, Any]) -> None:
        c["kubernetes"]["namespacePrefix"] = "p-"
        c["mysql"]["timeZone"] = "UTC"
        c["sites"][1]["name"] = "journal"

    message = refused(edited(prod, many), prod_outputs)
    keys = [line.split(": ")[1] for line in message.splitlines()[1:]]
    assert keys == ["kubernetes.namespacePrefix", "mysql.timeZone", "sites[1].name"]


def test_the_rook_filesystem_is_never_replaced_or_dropped() -> None:
    config = minimal_config(storage={"rook": {"filesystemName": "hostingfs"}})
    previous = deployment_record(validate_stack_config(config))
    renamed = validate_stack_config(minimal_config(storage={"rook": {"filesystemName": "sitesfs"}}))
    assert [str(p) for p in destructive_changes(previous, renamed)] == [
        'storage.rook.filesystemName: "hostingfs" → "sitesfs" would replace the protected CephFilesystem that '
        "holds every site's files; keep \"hostingfs\", or see README: Settings fixed for a stack's life"
    ]
    dropped = destructive_changes(previous, validate_stack_config(minimal_config()))
    assert [p.path for p in dropped] == ["storage.rook"]
    grown = validate_stack_config(minimal_config(storage={"rook": {"filesystemName": "hostingfs", "replicas": 5}}))
    assert destructive_changes(previous, grown) == []


def test_standalone_to_galera_is_refused() -> None:
    single = minimal_config(mysql={"mode": "operator", "readerCount": 0})
    outputs = outputs_of(single, stack="test")
    galera = edited(single, lambda c: c["mysql"].update(readerCount=2))
    message = refused(galera, outputs, stack="test")
    assert "mysql.readerCount: 0 → 2 would turn a single server into a Galera cluster" in message


def test_a_copied_database_may_be_renamed(prod: dict[str, Any], prod_outputs: dict[str, Any]) -> None:
    copied = edited(
        prod, lambda c: c["sites"][2].update(database={"name": "intranet_d12", "copiedFrom": "intranet_d11"})
    )
    deployed = deploy(copied, stack="prod", previous_outputs=prod_outputs)
    assert deployed.named("intranet-db-database").inputs["database"] == "intranet_d12"


def test_a_rename_that_would_drop_the_adopted_database_says_so() -> None:
    config = minimal_config()
    config["sites"][1]["dropDataOnDelete"] = True
    outputs = outputs_of(config, stack="test")
    renamed = edited(config, lambda c: c["sites"][1].update(name="docs", database={"name": "wiki"}))
    assert "dropDataOnDelete would drop that database" in refused(renamed, outputs, stack="test")


def test_the_two_step_rename_passes() -> None:
    config = minimal_config()
    outputs = outputs_of(config, stack="test")
    # Step 1: the new site next to the old one, with its own names and a temporary domain.
    step1 = edited(
        config, lambda c: c["sites"].append({"name": "docs", "cms": "drupal", "domains": ["docs.example.org"]})
    )
    outputs = deploy(step1, stack="test", previous_outputs=outputs).outputs

    # Step 2 (after copying the data): the domain moves and the old site goes, in one edit.
    def step2(c: dict[str, Any]) -> None:
        c["sites"] = [c["sites"][0], {**c["sites"][2], "domains": ["wiki.example.org", "docs.example.org"]}]

    deploy(edited(step1, step2), stack="test", previous_outputs=outputs)


def test_stacks_deployed_before_the_record_are_compared_through_their_outputs() -> None:
    # What flightdeck exported before this record existed: replication, DB_HOST on -primary.
    legacy = {
        "mysql": {"mode": "operator", "primaryHost": "mariadb-primary.mariadb.svc.cluster.local", "servers": 3.0},
        "sites": {
            "blog": {"namespace": "stg-blog", "database": "blog", "user": "blog", "domains": ["blog.example.org"]},
            "wiki": {"namespace": "stg-wiki", "database": "wiki", "user": "wiki", "domains": ["wiki.example.org"]},
        },
    }
    record = record_from_outputs(legacy)
    assert record is not None and record["namespacePrefix"] == "stg-"
    message = refused(minimal_config(kubernetes={"namespacePrefix": "stg-"}), legacy, stack="test")
    assert "mysql.readerCount: 2 → 2 would turn a replication cluster into a Galera cluster" in message
    assert "kubernetes.namespacePrefix" not in message
    single = {**legacy, "mysql": {**legacy["mysql"], "primaryHost": "mariadb.mariadb.svc.cluster.local", "servers": 1}}
    config = minimal_config(mysql={"mode": "operator", "readerCount": 0}, kubernetes={"namespacePrefix": "stg-"})
    deploy(config, stack="test", previous_outputs=single)


def test_every_guide_is_a_readme_heading() -> None:
    headings = {
        line.lstrip("#").strip() for line in (REPO / "README.md").read_text().splitlines() if line.startswith("#")
    }
    missing = [guide for guide in GUIDES if guide not in headings]
    assert not missing


# -- properties of the pure comparison --------------------------------------------------------------

NAMES = st.sampled_from(["alpha", "beta", "gamma", "delta", "omega", "kappa"])


def _config(names: list[str], readers: int, prefix: str) -> dict[str, Any]:
    return minimal_config(
        kubernetes={"namespacePrefix": prefix},
        mysql={"mode": "operator", "readerCount": readers, "maxConnections": 5000},
        sites=[{"name": n, "cms": "wordpress", "domains": [f"{n}.example.org"]} for n in names],
    )


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(NAMES, min_size=1, max_size=5, unique=True),
    st.lists(NAMES, min_size=0, max_size=5, unique=True),
    st.sampled_from([2, 4, 6, 8]),
    st.sampled_from([2, 4, 6, 8]),
    st.sampled_from(["", "p-"]),
)
def test_adding_removing_and_scaling_within_galera_never_refuses(
    before: list[str], after: list[str], readers_before: int, readers_after: int, prefix: str
) -> None:
    old = validate_stack_config(_config(before, readers_before, prefix))
    new = validate_stack_config(_config(after, readers_after, prefix))
    # Sites with distinct names and domains come and go freely; readers change within Galera.
    assert destructive_changes(deployment_record(old), new) == []
    assert destructive_changes(None, new) == [] and destructive_changes({}, new) == []


@settings(max_examples=80, deadline=None)
@given(st.lists(NAMES, min_size=1, max_size=5, unique=True), st.sampled_from(["", "p-"]), st.sampled_from(["", "q-"]))
def test_a_prefix_change_is_refused_exactly_when_sites_existed(names: list[str], old: str, new: str) -> None:
    previous = deployment_record(validate_stack_config(_config(names, 2, old)))
    problems = destructive_changes(previous, validate_stack_config(_config(names, 2, new)))
    assert [p.path for p in problems] == (["kubernetes.namespacePrefix"] if old != new else [])
    empty = deployment_record(validate_stack_config(_config(names, 2, old) | {"sites": []}))
    assert destructive_changes(empty, validate_stack_config(_config(names, 2, new))) == []


@settings(max_examples=80, deadline=None)
@given(st.lists(NAMES, min_size=2, max_size=5, unique=True), st.data())
def test_a_site_taking_over_a_removed_sites_domain_is_a_rename(names: list[str], data: st.DataObject) -> None:
    old_config = _config(names, 2, "")
    victim = data.draw(st.sampled_from(names))
    newcomer = data.draw(st.sampled_from(["zeta", "theta"]))
    new_config = copy.deepcopy(old_config)
    index = names.index(victim)
    new_config["sites"][index]["name"] = newcomer
    problems = destructive_changes(
        deployment_record(validate_stack_config(old_config)), validate_stack_config(new_config)
    )
    assert [p.path for p in problems] == [f"sites[{index}].name"]
    assert f'"{victim}" → "{newcomer}"' in problems[0].reason
