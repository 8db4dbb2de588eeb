"""`flightdeck restore`: the pure plan, the runner against a fake cluster, the CLI's exit codes."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from flightdeck import api, cli, restore
from flightdeck.restore_plan import (
    LiveState,
    NamedBackup,
    PointInTime,
    RestoreError,
    RestoreRequest,
    SiteSources,
    VeleroBackup,
    choose_backup,
    database_outcome,
    parse_from,
    plan_restore,
    site_sources,
    velero_outcome,
)
from tests.unit.harness import deploy, stack_file_config

NOW = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)


@pytest.fixture(scope="module")
def sites_output() -> dict[str, Any]:
    asyncio.set_event_loop(asyncio.new_event_loop())
    outputs: dict[str, Any] = deploy(stack_file_config("prod"), stack="prod").outputs["sites"]
    return outputs


@pytest.fixture
def shop(sites_output: dict[str, Any]) -> SiteSources:
    return site_sources(sites_output, "shop")


def _backup(name: str, day: int, phase: str = "Completed", schedule: str = "site-shop") -> VeleroBackup:
    started = datetime(2026, 11, day, 1, 30, tzinfo=UTC)
    return VeleroBackup(name, phase, schedule, started, started + timedelta(minutes=12))


BACKUPS = [
    _backup("site-shop-20261128013000", 28),
    _backup("site-shop-20261129013000", 29),
    _backup("site-shop-20261130013000", 30, phase="PartiallyFailed"),
    _backup("site-blog-20261130013000", 30, schedule="site-blog"),
]
LIVE = LiveState("Active", {"shop": 4})
GONE = LiveState(None)


# -- planning (pure) ------------------------------------------------------------------------------


def test_sources_come_from_the_stack_outputs(shop: SiteSources) -> None:
    assert shop == SiteSources(
        site="shop",
        namespace="shop",
        database="shop",
        velero_namespace="velero",
        schedule="site-shop",
        database_namespace="mariadb",
        database_backup="site-shop",
        mariadb="mariadb",
    )
    with pytest.raises(RestoreError, match=r"no site 'nope'.*shop"):
        site_sources({"shop": {}}, "nope")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (None, "Latest"),
        ("site-shop-20261129013000", NamedBackup("site-shop-20261129013000")),
        ("2026-11-30T02:00:00Z", PointInTime(datetime(2026, 11, 30, 2, tzinfo=UTC))),
        ("2026-11-30T03:00:00+01:00", PointInTime(datetime(2026, 11, 30, 2, tzinfo=UTC))),
    ],
)
def test_from_takes_a_backup_name_or_a_time(text: str | None, expected: object) -> None:
    parsed = parse_from(text)
    assert (type(parsed).__name__ if expected == "Latest" else parsed) == expected


@pytest.mark.parametrize(
    ("text", "fragment"),
    [("2026-11-30T02:00", "no UTC offset"), ("2026-13-40T00:00Z", "not a time"), ("Bad_Name", "neither")],
)
def test_ambiguous_or_bad_from_is_refused(text: str, fragment: str) -> None:
    with pytest.raises(RestoreError, match=fragment):
        parse_from(text)


def test_only_the_sites_own_completed_backups_qualify() -> None:
    latest = choose_backup(BACKUPS, parse_from(None), "site-shop")
    assert latest.name == "site-shop-20261129013000"  # the newer one only partially succeeded
    at = choose_backup(BACKUPS, PointInTime(datetime(2026, 11, 29, 1, 0, tzinfo=UTC)), "site-shop")
    assert at.name == "site-shop-20261128013000"
    with pytest.raises(RestoreError, match="another site's"):
        choose_backup(BACKUPS, NamedBackup("site-blog-20261130013000"), "site-shop")
    with pytest.raises(RestoreError, match=r"no completed backup .* at or before 2026-11-01"):
        choose_backup(BACKUPS, PointInTime(datetime(2026, 11, 1, tzinfo=UTC)), "site-shop")


def test_a_live_site_is_refused_without_force(shop: SiteSources) -> None:
    with pytest.raises(RestoreError, match=r"'shop' is live .*pass --force"):
        plan_restore(RestoreRequest("shop"), shop, LIVE, backups=BACKUPS, now=NOW)


def test_restoring_a_deleted_site_needs_no_force(shop: SiteSources) -> None:
    plan = plan_restore(RestoreRequest("shop"), shop, GONE, backups=BACKUPS, now=NOW)
    assert not plan.quiesce and not plan.live
    assert plan.velero_restore == {
        "apiVersion": "velero.io/v1",
        "kind": "Restore",
        "metadata": {
            "name": "shop-20261201093000",
            "namespace": "velero",
            "labels": {
                "app.kubernetes.io/instance": "shop",
                "app.kubernetes.io/part-of": "flightdeck",
                "flightdeck.io/restore": "shop-20261201093000",
            },
        },
        "spec": {
            "backupName": "site-shop-20261129013000",
            "includedNamespaces": ["shop"],
            "excludedResources": [
                "certificaterequests.cert-manager.io",
                "orders.acme.cert-manager.io",
                "challenges.acme.cert-manager.io",
            ],
            "existingResourcePolicy": "none",
        },
    }
    assert plan.database_restore is not None
    assert plan.database_restore["metadata"]["namespace"] == "mariadb"
    assert plan.database_restore["spec"] == {
        "mariaDbRef": {"name": "mariadb"},
        "backupRef": {"name": "site-shop"},
        "database": "shop",
    }
    # The database goes back before the pods that use it are recreated.
    assert [s.split()[0:2] for s in plan.steps()] == [["restore", "database"], ["restore", "namespace"]]


def test_force_overwrites_a_live_site_and_stops_it_meanwhile(shop: SiteSources) -> None:
    request = RestoreRequest("shop", choice=parse_from("2026-11-29T12:00:00Z"), force=True)
    plan = plan_restore(request, shop, LIVE, backups=BACKUPS, now=NOW)
    assert plan.quiesce and plan.live
    assert plan.velero_restore is not None and plan.database_restore is not None
    assert plan.velero_restore["spec"]["existingResourcePolicy"] == "update"
    assert plan.velero_restore["spec"]["backupName"] == "site-shop-20261129013000"
    assert plan.database_restore["spec"]["targetRecoveryTime"] == "2026-11-29T12:00:00Z"
    assert any("keeps its contents" in note for note in plan.notes)
    assert plan.steps()[0].startswith("scale the web Deployment(s) of shop to 0")


def test_a_named_backup_picks_the_dump_taken_before_it_finished(shop: SiteSources) -> None:
    request = RestoreRequest("shop", choice=NamedBackup("site-shop-20261128013000"), force=True)
    plan = plan_restore(request, shop, LIVE, backups=BACKUPS, now=NOW)
    assert plan.database_restore is not None
    assert plan.database_restore["spec"]["targetRecoveryTime"] == "2026-11-28T01:42:00Z"


def test_into_a_new_namespace_restores_a_quiet_copy_and_leaves_the_database(shop: SiteSources) -> None:
    plan = plan_restore(RestoreRequest("shop", into="shop-copy"), shop, LIVE, backups=BACKUPS, now=NOW)
    assert plan.database_restore is None and not plan.quiesce
    assert plan.velero_restore is not None
    spec = plan.velero_restore["spec"]
    assert spec["namespaceMapping"] == {"shop": "shop-copy"}
    assert spec["includedNamespaces"] == ["shop"]
    assert {"ingresses.networking.k8s.io", "certificates.cert-manager.io", "cronjobs.batch"} <= set(
        spec["excludedResources"]
    )
    assert spec["existingResourcePolicy"] == "none"
    assert any(note.startswith("database: not restored with --into") for note in plan.notes)


@pytest.mark.parametrize(
    ("request_", "state", "fragment"),
    [
        (RestoreRequest("shop", into="shop-copy"), LiveState("Active", {"shop": 4}, True), "already exists"),
        (RestoreRequest("shop", into="shop"), LIVE, "the site's own namespace"),
        (RestoreRequest("shop", force=True), LiveState("Terminating", {"shop": 4}), "being deleted"),
    ],
)
def test_unsafe_targets_are_refused(
    shop: SiteSources, request_: RestoreRequest, state: LiveState, fragment: str
) -> None:
    with pytest.raises(RestoreError, match=fragment):
        plan_restore(request_, shop, state, backups=BACKUPS, now=NOW)


def test_parts_can_be_restored_alone(shop: SiteSources) -> None:
    files = plan_restore(RestoreRequest("shop", parts=("files",)), shop, GONE, backups=BACKUPS, now=NOW)
    assert files.database_restore is None and files.velero_restore is not None
    database = plan_restore(RestoreRequest("shop", parts=("database",), force=True), shop, LIVE, now=NOW)
    assert database.velero_restore is None and database.database_restore is not None and database.quiesce
    with pytest.raises(RestoreError, match="--only"):
        RestoreRequest("shop", parts=("everything",))


def test_outcomes_follow_the_upstream_status_fields() -> None:
    assert velero_outcome(None) == ("pending", "New")
    assert velero_outcome({"phase": "InProgress"}) == ("pending", "InProgress")
    assert velero_outcome({"phase": "Completed", "warnings": 2}) == ("succeeded", "Completed (0 errors, 2 warnings)")
    assert velero_outcome({"phase": "PartiallyFailed", "errors": 3})[0] == "failed"
    assert velero_outcome({"phase": "FailedValidation", "validationErrors": ["no backup"]}) == (
        "failed",
        "FailedValidation: no backup",
    )
    assert database_outcome(None) == ("pending", "not started")
    running = {"conditions": [{"type": "Complete", "status": "False", "reason": "JobRunning", "message": "Running"}]}
    assert database_outcome(running) == ("pending", "Running")
    ok = {"conditions": [{"type": "Complete", "status": "True", "reason": "JobComplete", "message": "Success"}]}
    assert database_outcome(ok) == ("succeeded", "Success")
    # mariadb-operator marks a failed Job Complete=True with reason JobFailed.
    failed = {"conditions": [{"type": "Complete", "status": "True", "reason": "JobFailed", "message": "Failed"}]}
    assert database_outcome(failed) == ("failed", "JobFailed: Failed")


# -- the runner against a fake cluster ------------------------------------------------------------


class FakeCluster:
    def __init__(self, *, live: bool = True, outcomes: Mapping[str, list[dict[str, Any]]] | None = None) -> None:
        self.namespaces: dict[str, str] = {"shop": "Active", "blog": "Active"} if live else {"blog": "Active"}
        self.deployments: dict[tuple[str, str], int] = (
            {("shop", "shop"): 4, ("blog", "blog"): 2} if live else {("blog", "blog"): 2}
        )
        self.cron: dict[tuple[str, str], bool] = {("shop", "shop-cron"): False} if live else {}
        self.backups = [b for b in BACKUPS]
        self.created: list[dict[str, Any]] = []
        self.log: list[str] = []
        default = {
            "Restore@mariadb": [
                {"conditions": [{"type": "Complete", "status": "False", "reason": "JobRunning", "message": "Running"}]},
                {"conditions": [{"type": "Complete", "status": "True", "reason": "JobComplete", "message": "Success"}]},
            ],
            "Restore@velero": [{"phase": "InProgress"}, {"phase": "Completed", "warnings": 1}],
        }
        self.outcomes = {key: list(value) for key, value in (outcomes or default).items()}

    def namespace_phase(self, name: str) -> str | None:
        return self.namespaces.get(name)

    def web_deployments(self, namespace: str, site: str) -> dict[str, int]:
        return {name: replicas for (ns, name), replicas in self.deployments.items() if ns == namespace and name == site}

    def web_pods(self, namespace: str, site: str) -> int:
        return sum(self.web_deployments(namespace, site).values())

    def cron_jobs(self, namespace: str, site: str) -> dict[str, bool]:
        return {name: suspended for (ns, name), suspended in self.cron.items() if ns == namespace}

    def velero_backups(self, namespace: str, schedule: str) -> list[VeleroBackup]:
        assert namespace == "velero"
        return [b for b in self.backups if b.schedule == schedule]

    def create(self, manifest: Mapping[str, Any]) -> None:
        self.created.append(dict(manifest))
        self.log.append(f"create {manifest['kind']}@{manifest['metadata']['namespace']}")

    def status(self, manifest: Mapping[str, Any]) -> Mapping[str, Any] | None:
        queue = self.outcomes[f"{manifest['kind']}@{manifest['metadata']['namespace']}"]
        return queue.pop(0) if len(queue) > 1 else queue[0]

    def scale(self, namespace: str, deployment: str, replicas: int) -> None:
        self.deployments[(namespace, deployment)] = replicas
        self.log.append(f"scale {namespace}/{deployment}={replicas}")

    def suspend(self, namespace: str, cron_job: str, suspended: bool) -> None:
        self.cron[(namespace, cron_job)] = suspended
        self.log.append(f"suspend {namespace}/{cron_job}={suspended}")


def _runner(cluster: FakeCluster, timeout: float = 60.0) -> restore.Runner:
    ticks = iter(range(10_000))
    return restore.Runner(
        cluster, timeout=timeout, poll=1.0, clock=lambda: float(next(ticks)), sleep=lambda _s: None, now=lambda: NOW
    )


def test_forced_restore_stops_restores_and_resumes_the_site(shop: SiteSources) -> None:
    cluster = FakeCluster()
    report = _runner(cluster).run(RestoreRequest("shop", force=True), shop)
    assert report.ok
    assert cluster.log == [
        "scale shop/shop=0",
        "suspend shop/shop-cron=True",
        "create Restore@mariadb",
        "create Restore@velero",
        "scale shop/shop=4",
        "suspend shop/shop-cron=False",
    ]
    # Other sites untouched: nothing else was scaled, and each restore names only this site.
    assert cluster.deployments[("blog", "blog")] == 2
    velero, database = cluster.created[1], cluster.created[0]
    assert velero["spec"]["includedNamespaces"] == ["shop"] and database["spec"]["database"] == "shop"
    assert [s.outcome for s in report.steps] == ["succeeded"] * 4


def test_a_failed_database_restore_leaves_the_site_stopped(shop: SiteSources) -> None:
    failed = [{"conditions": [{"type": "Complete", "status": "True", "reason": "JobFailed", "message": "Failed"}]}]
    cluster = FakeCluster(outcomes={"Restore@mariadb": failed, "Restore@velero": [{"phase": "Completed"}]})
    with pytest.raises(restore.RestoreFailedError, match="JobFailed") as caught:
        _runner(cluster).run(RestoreRequest("shop", force=True), shop)
    assert "create Restore@velero" not in cluster.log
    assert cluster.deployments[("shop", "shop")] == 0
    assert caught.value.report.steps[-1].detail.startswith("left stopped")


def test_a_restore_that_does_not_finish_times_out(shop: SiteSources) -> None:
    cluster = FakeCluster(live=False, outcomes={"Restore@mariadb": [{}], "Restore@velero": [{"phase": "InProgress"}]})
    with pytest.raises(restore.RestoreFailedError) as caught:
        _runner(cluster, timeout=5).run(RestoreRequest("shop"), shop)
    assert caught.value.report.steps[-1].outcome == "timed-out"


def test_dry_run_changes_nothing(shop: SiteSources) -> None:
    cluster = FakeCluster()
    report = _runner(cluster).run(RestoreRequest("shop", force=True), shop, dry_run=True)
    assert cluster.log == [] and report.dry_run and report.to_dict()["objects"]


def test_velero_backups_are_read_from_the_api_shape() -> None:
    item = {
        "metadata": {"name": "site-shop-1", "labels": {"velero.io/schedule-name": "site-shop"}},
        "status": {
            "phase": "Completed",
            "startTimestamp": "2026-11-30T01:30:00Z",
            "completionTimestamp": "2026-11-30T01:41:10Z",
        },
    }
    backup = restore.velero_backup_from(item)
    assert backup == VeleroBackup(
        "site-shop-1",
        "Completed",
        "site-shop",
        datetime(2026, 11, 30, 1, 30, tzinfo=UTC),
        datetime(2026, 11, 30, 1, 41, 10, tzinfo=UTC),
    )


# -- the CLI with a fake stack and cluster -------------------------------------------------------


class FakeFlightdeck:
    def __init__(self, sites: dict[str, Any]) -> None:
        self.sites = sites
        self.locked: list[str] = []

    def outputs(self, stack: str) -> dict[str, api.StackOutput]:
        return {"sites": api.StackOutput(self.sites)}

    def kube_access(self, stack: str) -> api.KubeAccess:
        return api.KubeAccess("apiVersion: v1\nkind: Config\n", "prod-eu1")

    @contextlib.contextmanager
    def stack_lock(self, stack: str, operation: str) -> Iterator[None]:
        self.locked.append(operation)
        yield


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch, sites_output: dict[str, Any]) -> tuple[FakeFlightdeck, FakeCluster]:
    fd, cluster = FakeFlightdeck(sites_output), FakeCluster()
    monkeypatch.setattr(cli.App, "flightdeck", lambda self: fd)
    monkeypatch.setattr(restore, "connect", lambda access: cluster)
    return fd, cluster


def _run(*argv: str) -> tuple[int, dict[str, Any], str]:
    out, err = io.StringIO(), io.StringIO()
    code = cli.main([*argv, "--json", "--poll", "0"], out=out, err=err)
    return code, json.loads(out.getvalue()), err.getvalue()


def test_cli_refuses_a_live_site_without_force(fake: tuple[FakeFlightdeck, FakeCluster]) -> None:
    fd, cluster = fake
    code, document, err = _run("restore", "shop", "-s", "prod")
    assert code == cli.EXIT_USAGE
    assert "pass --force" in document["error"]["message"] and "pass --force" in err
    assert cluster.created == [] and cluster.log == []
    assert fd.locked == ["restore shop"]


def test_cli_restores_with_force_and_reports(fake: tuple[FakeFlightdeck, FakeCluster]) -> None:
    _, cluster = fake
    code, document, _ = _run("restore", "shop", "-s", "prod", "--force", "--from", "2026-11-29T12:00:00Z")
    assert code == cli.EXIT_OK and document["ok"] is True
    report = document["restore"]
    assert report["veleroBackup"] == "site-shop-20261129013000"
    assert report["databaseTime"] == "2026-11-29T12:00:00Z"
    assert [o["kind"] for o in report["objects"]] == ["Restore", "Restore"]
    assert len(cluster.created) == 2


def test_cli_into_and_dry_run(fake: tuple[FakeFlightdeck, FakeCluster]) -> None:
    _, cluster = fake
    code, document, _ = _run("restore", "shop", "-s", "prod", "--into", "shop-restore", "--dry-run")
    assert code == cli.EXIT_OK and cluster.created == []
    (velero,) = document["restore"]["objects"]
    assert velero["spec"]["namespaceMapping"] == {"shop": "shop-restore"}


def test_cli_failed_restore_exits_1_with_the_report(fake: tuple[FakeFlightdeck, FakeCluster]) -> None:
    _, cluster = fake
    cluster.outcomes["Restore@velero"] = [{"phase": "Failed", "failureReason": "backup storage unavailable"}]
    code, document, _ = _run("restore", "shop", "-s", "prod", "--force")
    assert code == cli.EXIT_FAILED
    steps = document["restore"]["steps"]
    assert [s["kind"] for s in steps] == ["site", "database restore", "velero restore", "site"]
    assert steps[2]["detail"] == "Failed: backup storage unavailable"
    # The database was restored whole, so the site is brought back although the files failed.
    assert steps[3]["outcome"] == "succeeded" and cluster.deployments[("shop", "shop")] == 4


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["restore", "shop"], "--stack"),
        (["restore", "-s", "prod"], "site"),
        (["restore", "shop", "-s", "prod", "--only", "all"], "invalid choice"),
        (["restore", "shop", "-s", "prod", "--from", "yesterday at two"], "neither a backup name nor a time"),
        (["restore", "shop", "-s", "prod", "--into", "Shop_Copy"], "not a namespace name"),
        (["restore", "nope", "-s", "prod"], "no site 'nope'"),
        (["restore", "shop", "-s", "prod", "--force", "--from", "site-blog-20261130013000"], "another site's"),
    ],
)
def test_cli_bad_restore_arguments_exit_2(
    fake: tuple[FakeFlightdeck, FakeCluster], argv: list[str], fragment: str
) -> None:
    _, cluster = fake
    code, document, _ = _run(*argv)
    assert code == cli.EXIT_USAGE
    assert fragment in document["error"]["message"]
    assert cluster.created == []


def test_kube_access_reads_the_stack_config() -> None:
    from pulumi import automation as auto

    config = {
        "flightdeck:kubeconfig": auto.ConfigValue("apiVersion: v1\n", secret=True),
        "flightdeck:kubernetes": auto.ConfigValue(json.dumps({"context": "prod-eu1"})),
    }
    access = api.kube_access_from_config(config)
    assert access == api.KubeAccess("apiVersion: v1\n", "prod-eu1")
    assert "apiVersion" not in repr(access)
    assert api.kube_access_from_config({}) == api.KubeAccess(None, None)
