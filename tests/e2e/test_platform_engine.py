"""The whole program through the real engine: the local stack, `pulumi up` for real.

Real parts: the pulumi CLI and upstream's Python language host, the kubernetes and random
resource plugins, the SQL dynamic providers, a kube-apiserver with controller-manager, scheduler
and kwok nodes, and a MariaDB server. Simulated with kwok Stages (tools/kwok/): the status
mariadb-operator and the ingress controller would set; tools/mariadb_standin.py applies the
root password the operator would apply. The SQL reaches the server by a port-forward through
the kube-apiserver to the primary pod (the local stack's `mysql.access.mode: portForward`).

The tests run in file order on one stack: each leaves it converged for the next.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes.dynamic import DynamicClient

from components import registration_logs
from flightdeck import stack_file
from flightdeck.api import OperationFailedError, OperationResult
from tests.e2e import platform_goldens
from tests.e2e.conftest import LOCAL_MARIADB_NAMESPACE
from tests.e2e.platform_rig import PlatformStack, Rig, as_json, changed_steps, wait_for
from tests.e2e.sql_stack import Engine, can_login, databases, db_grants, server_writes
from tools.mariadb_server import MariaDBServer
from tools.render_stack import deploy, stack_file_config

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(3600)]

SITES = ("blog", "wiki", "shop")


@pytest.fixture(scope="module")
def local(rig: Rig, engine: Engine, tmp_path_factory: pytest.TempPathFactory) -> Iterator[PlatformStack]:
    stack = PlatformStack.create(rig, engine, tmp_path_factory.mktemp("local-stack"))
    yield stack


@pytest.fixture(scope="module")
def server(rig: Rig) -> MariaDBServer:
    return rig.servers[LOCAL_MARIADB_NAMESPACE]


@pytest.fixture(scope="module")
def dynamic(rig: Rig) -> DynamicClient:
    return DynamicClient(rig.api())


def planned_urns(stack: PlatformStack) -> dict[str, str]:
    """``{name: type}`` of every custom resource the program registers, under mocks (the dry
    renderer), for the stack file as it is now."""
    deployment = deploy(stack_file_config(stack.name, stack.work_dir), stack=stack.name, secrets={})
    return {r.name: r.typ for r in deployment.registrations if r.request.custom and not r.typ.startswith("pulumi:")}


def kube_object(dynamic: DynamicClient, api_version: str, kind: str, name: str, namespace: str | None) -> Any:
    resource = dynamic.resources.get(api_version=api_version, kind=kind)
    return dynamic.get(resource, name=name, namespace=namespace)


# -- preview ------------------------------------------------------------------------------------


def test_preview_plans_every_resource_without_touching_the_database(
    local: PlatformStack, server: MariaDBServer
) -> None:
    with server_writes(server) as delta:
        result = local.preview()
    assert delta.connections == 0, "a preview must never connect to the database"
    assert delta.nonzero == {}
    creates = {
        step.name: step.type
        for step in result.steps
        if step.op == "create" and not step.type.startswith(("flightdeck:", "pulumi:"))
    }
    assert creates == planned_urns(local)
    assert set(result.summary) <= {"create", "same"}


def test_the_sdks_per_resource_debug_lines_never_reach_the_engine(
    local: PlatformStack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """components/registration_logs.py, seen from the engine: its event log of a plain preview."""
    event_log = tmp_path / "events.jsonl"
    monkeypatch.setenv("PULUMI_DEBUG_COMMANDS", "true")  # --event-log is a debug flag (the Automation API sets it)
    local.pulumi("preview", "--event-log", str(event_log), "--non-interactive")
    events = [json.loads(line) for line in event_log.read_text().splitlines() if line.strip()]
    diagnostics = [e["diagnosticEvent"] for e in events if "diagnosticEvent" in e]
    debug = [d["message"] for d in diagnostics if d.get("severity") == "debug"]
    planned = sum(1 for e in events if "resourcePreEvent" in e)
    assert planned > 100, "the preview planned the whole stack"
    progress = [m for m in debug if registration_logs.is_registration_progress(m)]
    # The SDK registers the stack's root resource before the program (and its filter) runs.
    assert [m for m in progress if "pulumi:pulumi:Stack" not in m] == []
    assert len(debug) < planned, "fewer debug lines than resources (the SDK alone sends 4-5 per resource)"


# -- up -----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def deployed(local: PlatformStack) -> OperationResult:
    result = local.up()
    assert result.succeeded
    return result


def test_up_creates_every_object_in_the_apiserver(
    deployed: OperationResult, local: PlatformStack, dynamic: DynamicClient
) -> None:
    deployment = deploy(stack_file_config(local.name, local.work_dir), stack=local.name, secrets={})
    kinds: Counter[str] = Counter()
    for registration in deployment.registrations:
        if not registration.typ.startswith("kubernetes:") or not registration.request.custom:
            continue
        if registration.typ.startswith("kubernetes:helm.sh/") or registration.typ == "pulumi:providers:kubernetes":
            continue
        meta = registration.inputs.get("metadata") or {}
        obj = kube_object(
            dynamic, registration.inputs["apiVersion"], registration.inputs["kind"], meta["name"], meta.get("namespace")
        )
        assert obj.metadata.name == meta["name"]
        kinds[registration.inputs["kind"]] += 1
    for kind in ("MariaDB", "Certificate", "ClusterIssuer", "Schedule", "Backup", "PersistentVolumeClaim",
                 "Deployment", "Secret", "NetworkPolicy", "Ingress", "Namespace", "Service", "CronJob",
                 "PodDisruptionBudget", "ConfigMap"):  # fmt: skip
        assert kinds[kind] >= 1, f"the local stack declares no {kind}"


def test_the_mariadb_cluster_is_ready_and_its_claims_and_pods_are_real(
    deployed: OperationResult, rig: Rig, dynamic: DynamicClient
) -> None:
    mariadb = kube_object(dynamic, "k8s.mariadb.com/v1alpha1", "MariaDB", "mariadb", "mariadb").to_dict()
    ready = [c for c in mariadb["status"]["conditions"] if c["type"] == "Ready"]
    assert ready and ready[0]["status"] == "True"
    assert ready[0]["observedGeneration"] == mariadb["metadata"]["generation"]
    sts = rig.apps().read_namespaced_stateful_set("mariadb", "mariadb")
    assert sts.status.ready_replicas == mariadb["spec"]["replicas"] == 3  # readerCount 2: three Galera nodes
    assert mariadb["spec"]["galera"]["enabled"] is True
    cnf = mariadb["spec"]["myCnf"]
    for setting in ("max_connections=", "innodb_buffer_pool_size=", "binlog_expire_logs_seconds="):
        assert setting in cnf


def test_db_host_is_a_service_that_routes_to_the_primary_only(deployed: OperationResult, rig: Rig) -> None:
    from kubernetes import client

    service = rig.core().read_namespaced_service("mariadb-write", "mariadb")
    assert service.spec.selector["k8s.mariadb.com/role"] == "primary"
    discovery = client.DiscoveryV1Api(rig.api())
    slices = discovery.list_namespaced_endpoint_slice(
        "mariadb", label_selector="kubernetes.io/service-name=mariadb-write"
    ).items
    pods = {ep.target_ref.name for s in slices for ep in (s.endpoints or []) if ep.conditions.ready}
    assert pods == {"mariadb-0"}, "only the pod the operator labels primary takes writes"


def test_site_workloads_volumes_and_routes_are_ready(deployed: OperationResult, rig: Rig) -> None:
    from kubernetes import client

    for site in SITES:
        claim = rig.core().read_namespaced_persistent_volume_claim(f"{site}-files", site)
        assert claim.status.phase == "Bound"
        assert claim.spec.access_modes == ["ReadWriteMany"]
        deployment = rig.apps().read_namespaced_deployment(site, site)
        assert deployment.status.ready_replicas == deployment.spec.replicas
        if deployment.spec.replicas >= 2:
            budget = client.PolicyV1Api(rig.api()).read_namespaced_pod_disruption_budget(site, site)
            # The disruption controller counts the pods the budget selects: a drain may take one.
            assert budget.status.expected_pods == deployment.spec.replicas
            assert budget.status.disruptions_allowed == 1
        cron = client.BatchV1Api(rig.api()).read_namespaced_cron_job(f"{site}-cron", site)
        assert cron.spec.suspend is False
        ingress = rig.networking().read_namespaced_ingress(site, site)
        assert ingress.status.load_balancer.ingress, "the Ingress was awaited until it had an address"
        assert rig.networking().list_namespaced_network_policy(site).items


def test_web_pods_spread_over_nodes_and_zones(deployed: OperationResult, rig: Rig) -> None:
    nodes = {
        node.metadata.name: node.metadata.labels["topology.kubernetes.io/zone"] for node in rig.core().list_node().items
    }
    for site in ("blog", "wiki"):
        pods = rig.core().list_namespaced_pod(site, label_selector="app.kubernetes.io/component=web").items
        placed = [pod.spec.node_name for pod in pods if pod.metadata.deletion_timestamp is None]
        assert len(placed) == 2 and len(set(placed)) == 2, placed
        assert len({nodes[name] for name in placed}) == 2, placed


def test_a_job_from_each_cron_template_completes(deployed: OperationResult, rig: Rig) -> None:
    from kubernetes import client

    batch = client.BatchV1Api(rig.api())
    for site in SITES:
        cron = batch.read_namespaced_cron_job(f"{site}-cron", site)
        assert cron.spec.concurrency_policy == "Forbid"
        # What `kubectl create job --from=cronjob/...` does: the CronJob's own template.
        template = client.ApiClient().sanitize_for_serialization(cron.spec.job_template)
        job = {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {"name": f"{site}-cron-manual", "namespace": site, "labels": template["metadata"]["labels"]},
            "spec": template["spec"],
        }
        batch.create_namespaced_job(site, job)
    for site in SITES:
        done = wait_for(
            f"{site} cron job",
            lambda site=site: (
                (j := batch.read_namespaced_job_status(f"{site}-cron-manual", site)).status.succeeded and j
            ),
        )
        assert done.spec.template.metadata.labels["app.kubernetes.io/component"] == "cron"
        batch.delete_namespaced_job(f"{site}-cron-manual", site, propagation_policy="Background")


def test_backup_schedules_start_at_the_planned_spread_times(
    deployed: OperationResult, local: PlatformStack, rig: Rig
) -> None:
    sites = local.outputs()["sites"]
    starts = []
    for site in SITES:
        times = sites[site]["backups"]
        schedule = rig.custom().get_namespaced_custom_object("velero.io", "v1", "velero", "schedules", f"site-{site}")
        hour, minute = times["files"].split(":")
        assert schedule["spec"]["schedule"] == f"{int(minute)} {int(hour)} * * *"
        backup = rig.custom().get_namespaced_custom_object(
            "k8s.mariadb.com", "v1alpha1", "mariadb", "backups", f"site-{site}"
        )
        hour, minute = times["database"].split(":")
        assert backup["spec"]["schedule"]["cron"] == f"{int(minute)} {int(hour)} * * *"
        starts += [times["files"], times["database"]]
    # maxConcurrent 1 in the local stack: no two backups start together.
    assert len(set(starts)) == len(starts)


def test_the_server_holds_each_sites_database_user_and_grants(
    deployed: OperationResult, rig: Rig, server: MariaDBServer
) -> None:
    present = databases(server, "")
    for site in SITES:
        settings = rig.secret_data(site, f"{site}-db")
        assert settings["DB_NAME"] in present
        assert present[settings["DB_NAME"]] == ("utf8mb4", "utf8mb4_unicode_ci")
        assert can_login(server, settings["DB_USER"], settings["DB_PASSWORD"], settings["DB_NAME"])
        assert "ALL PRIVILEGES" in db_grants(server, settings["DB_USER"], settings["DB_NAME"])
        assert settings["DB_HOST"] == "mariadb-write.mariadb.svc.cluster.local"
        assert settings["DB_PORT"] == "3306"
    assert db_grants(server, "shop", "wiki") == {"SELECT"}
    # Connection budgets: replicas x connectionsPerReplica unless the site sets its own (wiki: 20).
    limits = dict(
        server.query("SELECT User, max_user_connections FROM mysql.user WHERE User IN ('blog', 'wiki', 'shop')")
    )
    assert limits == {"blog": 50, "wiki": 20, "shop": 25}


def test_a_second_up_changes_nothing_and_writes_no_sql(
    deployed: OperationResult, local: PlatformStack, server: MariaDBServer
) -> None:
    with server_writes(server) as delta:
        result = local.up()
    assert result.changes == 0, changed_steps(result)
    assert delta.nonzero == {}
    assert delta.binlog_before == delta.binlog_after


# -- minimal diffs -------------------------------------------------------------------------------


def test_adding_a_site_creates_only_its_resources(
    deployed: OperationResult, local: PlatformStack, server: MariaDBServer
) -> None:
    stack_file.add_site(local.stack_file, {"name": "news", "cms": "wordpress", "domains": ["news.flightdeck.test"],
                                           "replicas": 1, "filesSize": "1Gi"})  # fmt: skip
    result = local.up()
    steps = changed_steps(result)
    created = {name for name, op in steps.items() if op == "create"}
    assert created and all(name.startswith("news") for name in created), created
    others = {name: op for name, op in steps.items() if not name.startswith("news")}
    # Only backup start times of a few other sites may move (stable slot spreading).
    assert all(op == "update" and ("-backups-" in name) for name, op in others.items()), others
    assert len(others) <= 4
    assert "news" in databases(server, "news")


def test_changing_a_grant_runs_one_grant_update(local: PlatformStack, server: MariaDBServer) -> None:
    def widen(site: Any) -> None:
        site["grants"][0]["privileges"] = ["SELECT", "SHOW VIEW"]

    stack_file.edit(local.stack_file, lambda doc: doc.update_site("shop", widen))
    result = local.up()
    assert changed_steps(result) == {"shop-db-grant-wiki.*": "update"}
    assert db_grants(server, "shop", "wiki") == {"SELECT", "SHOW VIEW"}


def test_rotating_a_password_updates_the_user_and_secret_in_place_and_rolls_the_pods(
    local: PlatformStack, rig: Rig, server: MariaDBServer
) -> None:
    before = rig.secret_data("blog", "blog-db")
    secret_uid = rig.core().read_namespaced_secret("blog-db", "blog").metadata.uid
    template = rig.apps().read_namespaced_deployment("blog", "blog").spec.template.metadata.annotations
    stack_file.rotate_password(local.stack_file, "blog")
    result = local.up()
    steps = changed_steps(result)
    assert steps.pop("blog-db-password") == "replace"
    assert steps.pop("blog-db-user") == "update"
    assert steps.pop("blog-db-secret") == "update"
    assert steps.pop("blog-web-deployment") == "update"  # the pod template's secret digest changed
    assert steps == {}, "the salts, the other sites and the database stay as they are"
    after = rig.secret_data("blog", "blog-db")
    assert after["DB_PASSWORD"] != before["DB_PASSWORD"]
    assert rig.core().read_namespaced_secret("blog-db", "blog").metadata.uid == secret_uid
    assert rig.apps().read_namespaced_deployment("blog", "blog").spec.template.metadata.annotations != template
    assert can_login(server, after["DB_USER"], after["DB_PASSWORD"])
    assert not can_login(server, before["DB_USER"], before["DB_PASSWORD"])


def test_changing_a_collation_alters_the_database_in_place(local: PlatformStack, server: MariaDBServer) -> None:
    def collate(site: Any) -> None:
        stack_file.set_key(site, "database", {"collation": "utf8mb4_general_ci"})

    # A WordPress site: nothing else reads the collation (Drupal's settings.php names it).
    stack_file.edit(local.stack_file, lambda doc: doc.update_site("blog", collate))
    result = local.up()
    assert changed_steps(result) == {"blog-db-database": "update"}
    assert databases(server, "blog")["blog"] == ("utf8mb4", "utf8mb4_general_ci")


def test_adding_a_domain_updates_only_the_certificate_ingress_and_routing(local: PlatformStack, rig: Rig) -> None:
    def add_domain(site: Any) -> None:
        site["domains"].append("www.blog.flightdeck.test")

    stack_file.edit(local.stack_file, lambda doc: doc.update_site("blog", add_domain))
    result = local.up()
    steps = changed_steps(result)
    assert set(steps.values()) == {"update"}, steps
    assert {"blog-tls-certificate", "blog-web-ingress"} <= set(steps)
    assert all(name.startswith("blog-") for name in steps), steps
    ingress = rig.networking().read_namespaced_ingress("blog", "blog")
    assert {rule.host for rule in ingress.spec.rules} == {"blog.flightdeck.test", "www.blog.flightdeck.test"}


# -- drift --------------------------------------------------------------------------------------


def test_refresh_reports_manual_changes_and_up_repairs_them(
    local: PlatformStack, rig: Rig, server: MariaDBServer
) -> None:
    server.query("REVOKE DELETE ON `blog`.* FROM 'blog'@'%'")
    rig.apps().patch_namespaced_deployment_scale("blog", "blog", {"spec": {"replicas": 5}})
    rig.networking().delete_namespaced_network_policy("ingress-controller-only", "wiki")
    refreshed = changed_steps(local.refresh())
    assert refreshed.get("blog-db-grant-blog.*") == "update", refreshed
    assert refreshed.get("blog-web-deployment") == "update", refreshed
    assert refreshed.get("wiki-network-ingress") == "delete", refreshed
    repaired = changed_steps(local.up())
    assert repaired.get("blog-db-grant-blog.*") == "update"
    assert repaired.get("blog-web-deployment") == "update"
    assert repaired.get("wiki-network-ingress") == "create"
    assert "DELETE" in db_grants(server, "blog", "blog") or "ALL PRIVILEGES" in db_grants(server, "blog", "blog")
    wait_for("blog scaled back", lambda: rig.apps().read_namespaced_deployment("blog", "blog").spec.replicas == 2)
    assert rig.exists(lambda: rig.networking().read_namespaced_network_policy("ingress-controller-only", "wiki"))
    assert local.up().changes == 0


def test_pr_summaries_of_real_previews_match_the_goldens(local: PlatformStack, rig: Rig) -> None:
    secrets = {rig.secret_data(site, f"{site}-db")["DB_PASSWORD"] for site in ("blog", "wiki", "shop", "news")}
    secrets.add(rig.secret_data("mariadb", "mariadb-root")["password"])
    record = os.environ.get("FLIGHTDECK_RECORD_GOLDENS") == "1"
    assert platform_goldens.record_or_compare(local, secrets, record) == {}
    assert local.preview().changes == 0, "every scenario put the stack file back"


def test_a_larger_upload_limit_reaches_ingress_and_php_and_rolls_the_pods(local: PlatformStack, rig: Rig) -> None:
    before = rig.apps().read_namespaced_deployment("shop", "shop")
    stack_file.edit(
        local.stack_file, lambda doc: doc.update_site("shop", lambda s: stack_file.set_key(s, "maxUploadSize", "256Mi"))
    )
    steps = changed_steps(local.up())
    assert set(steps) == {"shop-web-config", "shop-web-ingress", "shop-web-deployment"}, steps
    ingress = rig.networking().read_namespaced_ingress("shop", "shop")
    assert ingress.metadata.annotations["nginx.ingress.kubernetes.io/proxy-body-size"].startswith("257")
    after = rig.apps().read_namespaced_deployment("shop", "shop")
    digest = "flightdeck.io/config-digest"
    assert after.spec.template.metadata.annotations[digest] != before.spec.template.metadata.annotations[digest]
    assert after.status.updated_replicas == after.spec.replicas == after.status.ready_replicas


# -- restore ------------------------------------------------------------------------------------

BACKUP_TIME = "20261130013000"


def store_finished_velero_backups(rig: Rig) -> None:
    """What a night of Velero would have left: one finished Backup per site schedule (Velero's
    CRDs have no status subresource, so the status is written with the object)."""
    for site in ("blog", "wiki"):
        name = f"site-{site}-{BACKUP_TIME}"
        body = {
            "apiVersion": "velero.io/v1",
            "kind": "Backup",
            "metadata": {"name": name, "namespace": "velero", "labels": {"velero.io/schedule-name": f"site-{site}"}},
            "spec": {"includedNamespaces": [site], "storageLocation": "default"},
        }
        rig.custom().create_namespaced_custom_object("velero.io", "v1", "velero", "backups", body)
        rig.custom().patch_namespaced_custom_object(
            "velero.io", "v1", "velero", "backups", name,
            {"status": {"phase": "Completed", "startTimestamp": "2026-11-30T01:30:00Z",
                        "completionTimestamp": "2026-11-30T01:41:00Z"}},
        )  # fmt: skip


def restores(rig: Rig) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    velero = rig.custom().list_namespaced_custom_object("velero.io", "v1", "velero", "restores")["items"]
    database = rig.custom().list_namespaced_custom_object("k8s.mariadb.com", "v1alpha1", "mariadb", "restores")
    return velero, database["items"]


def test_restore_refuses_a_live_site_without_force(local: PlatformStack, rig: Rig) -> None:
    store_finished_velero_backups(rig)
    proc = local.cli("restore", "blog", "-s", "local", "--json")
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "--force" in proc.stdout + proc.stderr
    assert restores(rig) == ([], [])


def test_restore_with_force_restores_that_site_only_and_brings_it_back(local: PlatformStack, rig: Rig) -> None:
    proc = local.cli("restore", "blog", "-s", "local", "--force", "--timeout", "300", "--json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    velero, database = restores(rig)
    assert len(velero) == 1 and len(database) == 1
    assert velero[0]["spec"]["includedNamespaces"] == ["blog"]
    assert velero[0]["spec"]["backupName"] == f"site-blog-{BACKUP_TIME}"
    assert database[0]["spec"]["database"] == "blog"
    assert database[0]["spec"]["backupRef"] == {"name": "site-blog"}
    assert rig.apps().read_namespaced_deployment("blog", "blog").spec.replicas == 2, "back up after the restore"
    assert rig.apps().read_namespaced_deployment("wiki", "wiki").spec.replicas == 2, "other sites untouched"
    assert local.up().changes == 0, "the site came back exactly as the stack declares it"


def test_restore_into_a_new_namespace_restores_only_the_files(local: PlatformStack, rig: Rig) -> None:
    before_velero, before_database = restores(rig)
    proc = local.cli("restore", "wiki", "-s", "local", "--into", "wiki-copy", "--only", "files", "--json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    velero, database = restores(rig)
    assert len(database) == len(before_database)
    (created,) = [r for r in velero if r["metadata"]["name"] not in {b["metadata"]["name"] for b in before_velero}]
    assert created["spec"]["namespaceMapping"] == {"wiki": "wiki-copy"}


# -- the database cluster ------------------------------------------------------------------------


def set_readers(local: PlatformStack, readers: int) -> None:
    stack_file.edit(
        local.stack_file, lambda doc: stack_file.set_key(doc.config["flightdeck:mysql"], "readerCount", readers)
    )


def test_readers_are_added_and_removed_in_place(local: PlatformStack, rig: Rig, dynamic: DynamicClient) -> None:
    def mariadb() -> Any:
        return kube_object(dynamic, "k8s.mariadb.com/v1alpha1", "MariaDB", "mariadb", "mariadb")

    uid = mariadb().metadata.uid
    secret_version = rig.core().read_namespaced_secret("blog-db", "blog").metadata.resource_version
    for readers in (4, 2):
        set_readers(local, readers)
        steps = changed_steps(local.up())
        assert steps == {"flightdeck-mysql-mariadb": "update"}, steps
        current = mariadb()
        assert current.metadata.uid == uid, "the same MariaDB resource, never a replacement"
        assert current.spec.replicas == readers + 1
        assert rig.apps().read_namespaced_stateful_set("mariadb", "mariadb").status.ready_replicas == readers + 1
    # DB_HOST names the write Service, so the sites saw nothing of it.
    assert rig.core().read_namespaced_secret("blog-db", "blog").metadata.resource_version == secret_version


def test_a_change_that_would_lose_data_is_refused_before_anything_changes(
    local: PlatformStack, rig: Rig, server: MariaDBServer
) -> None:
    def managed() -> dict[str, Any]:
        # Every checkpoint write re-encrypts secrets with fresh nonces and rewrites the stack
        # resource's source positions: compare what the resources hold, not those bytes.
        return {
            r["urn"]: masked((r.get("inputs"), r.get("outputs")))
            for r in local.state_resources()
            if r["type"] != "pulumi:pulumi:Stack"
        }

    before = managed()
    original = local.stack_file.read_text()
    stack_file.edit(
        local.stack_file, lambda doc: stack_file.set_key(doc.config["flightdeck:kubernetes"], "namespacePrefix", "x-")
    )
    try:
        with server_writes(server) as delta, pytest.raises(OperationFailedError) as refused:
            local.up()
    finally:
        local.stack_file.write_text(original)
    message = str(refused.value)
    assert "kubernetes.namespacePrefix" in message and '"" → "x-"' in message
    assert refused.value.result.changes == 0
    after = managed()
    assert set(after) == set(before), "no resource was added or removed"
    changed = {urn.rsplit("::", 1)[-1]: (before[urn], after[urn]) for urn in before if before[urn] != after[urn]}
    assert not changed, f"the state of {sorted(changed)} changed"
    assert delta.nonzero == {}
    assert not rig.exists(lambda: rig.core().read_namespace("x-blog"))


SECRET_SIG = "4dabf18193072939515e22adb298388d"  # the engine's marker of an encrypted value


def masked(value: Any) -> Any:
    if isinstance(value, dict):
        return "<secret>" if SECRET_SIG in value else {k: masked(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [masked(v) for v in value]
    return value


# -- the operator CLI on this stack -------------------------------------------------------------


def test_cli_adds_rotates_and_removes_a_site_on_the_real_stack(
    local: PlatformStack, rig: Rig, server: MariaDBServer, tmp_path: Path
) -> None:
    added = local.cli("sites", "add", "events", "-s", "local", "--cms", "drupal", "--domain", "events.flightdeck.test",
                "--replicas", "1", "--files-size", "1Gi", "--json")  # fmt: skip
    document = as_json(added)
    assert added.returncode == 0, added.stderr
    assert document["edit"]["written"] is True
    assert document["preview"]["summary"]["create"] >= 20, "the preview ran for real on the edited stack file"
    assert local.cli("up", "local", "--yes", "-q").returncode == 0
    events = rig.secret_data("events", "events-db")
    assert can_login(server, events["DB_USER"], events["DB_PASSWORD"])

    rotated = local.cli("rotate-password", "events", "-s", "local", "--json")
    assert rotated.returncode == 0, rotated.stderr
    assert as_json(rotated)["preview"]["summary"].get("replace") == 1
    assert local.cli("up", "local", "--yes", "-q").returncode == 0
    assert rig.secret_data("events", "events-db")["DB_PASSWORD"] != events["DB_PASSWORD"]

    removed = local.cli("sites", "remove", "events", "-s", "local", "--no-preview")
    assert removed.returncode == 0, removed.stderr
    summary = tmp_path / "summary.md"
    previewed = local.cli("preview", "local", "--markdown", str(summary), "--fail-on-danger")
    markdown = summary.read_text()
    # The site's data stays (left in place); dropping its database account is the one dangerous step.
    assert previewed.returncode == 3, previewed.stdout + previewed.stderr
    lines = {line for line in markdown.splitlines() if line.startswith("- ")}
    kept = [line for line in lines if "events-files-claim" in line or "events-db-database" in line]
    assert len(kept) == 2 and all("retainOnDelete: the object is left in place" in line for line in kept), kept
    assert [line for line in lines if "events-db-user" in line and line.startswith("- ⛔")], markdown
    assert local.cli("up", "local", "--yes", "-q").returncode == 0
    assert "events" in databases(server, "events"), "the removed site's database is kept"


# -- removal and teardown -----------------------------------------------------------------------


def test_removing_a_site_keeps_its_database_namespace_and_claim(
    local: PlatformStack, rig: Rig, server: MariaDBServer
) -> None:
    stack_file.remove_site(local.stack_file, "news")
    result = local.up()
    steps = changed_steps(result)
    assert steps and all(op == "delete" for op in steps.values() if not op.startswith("update")), steps
    assert "news" in databases(server, "news")
    assert rig.exists(lambda: rig.core().read_namespace("news"))
    assert rig.exists(lambda: rig.core().read_namespaced_persistent_volume_claim("news-files", "news"))
    assert "news" not in {u for (u,) in server.query("SELECT User FROM mysql.user")}, "the user is dropped"


def test_with_drop_data_on_delete_a_removed_site_takes_its_data(
    local: PlatformStack, rig: Rig, server: MariaDBServer
) -> None:
    stack_file.edit(
        local.stack_file, lambda doc: doc.update_site("shop", lambda s: stack_file.set_key(s, "dropDataOnDelete", True))
    )
    only_options = changed_steps(local.up())
    assert "shop-db-database" in only_options and set(only_options.values()) == {"update"}
    assert "shop" in databases(server, "shop"), "setting the flag deletes nothing"
    stack_file.remove_site(local.stack_file, "shop")
    local.up()
    assert "shop" not in databases(server, "shop")
    wait_for("namespace shop deleted", lambda: not rig.exists(lambda: rig.core().read_namespace("shop")), 180)


def test_state_and_engine_events_hold_no_plaintext_password(local: PlatformStack, rig: Rig) -> None:
    secrets = {rig.secret_data(site, f"{site}-db")["DB_PASSWORD"] for site in ("blog", "wiki")}
    secrets.add(rig.secret_data("mariadb", "mariadb-root")["password"])
    exported = json.dumps(local.export())
    events = "\n".join(
        "\n".join([*(d.message for d in r.diagnostics), *(s.urn for s in r.steps)]) for r in local.results
    )
    for secret in secrets:
        assert secret not in exported
        assert secret not in events


def test_destroy_leaves_no_orphaned_mysql_users(local: PlatformStack, server: MariaDBServer) -> None:
    assert local.destroy_everything().succeeded
    users = {str(user) for (user,) in server.query("SELECT User FROM mysql.user")}
    assert users <= {"root", "rig", "repl", "mariadb.sys", "mysql", "healthcheck", ""}, users
    assert "blog" in databases(server, "blog"), "retained databases outlive the stack"
