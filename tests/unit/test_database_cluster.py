"""The database cluster: Galera topology, server config, connection limits, and DB_HOST on the primary.

Upstream behaviour relied on (mariadb-operator v26.6, /work/shared/crds and its sources):
* the MariaDB CRD's CEL rule refuses an even Galera size unless ``replicasAllowEvenNumber``;
* its webhook (``validateHA``) refuses HA with one replica and more than one replica without HA;
* ``reconcilePodLabels`` labels the current primary ``k8s.mariadb.com/role=primary`` in every
  topology, which is what flightdeck's ``<name>-write`` Service selects.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from components.config import ConfigError, MySQLOperatorConfig, SiteConfig, quantity_bytes, validate_stack_config
from components.config.database_server import (
    MAX_BUFFER_POOL_SHARE,
    innodb_buffer_pool_bytes,
    site_connection_limit,
)
from components.mysql_cluster import ROLE_LABEL, mariadb_spec, server_cnf
from tests.unit.harness import Deployment, deploy, minimal_config, stack_file_config

MARIADB = "flightdeck-mysql-mariadb"


def operator(**fields: Any) -> MySQLOperatorConfig:
    return MySQLOperatorConfig.model_validate({"mode": "operator", **fields})


def cnf_values(text: str) -> dict[str, str]:
    lines = [line for line in text.splitlines() if "=" in line]
    return dict(line.split("=", 1) for line in lines)


# -- topology ---------------------------------------------------------------------------------------


def _crd_accepts(spec: dict[str, Any]) -> bool:
    """The CRD's CEL rule and the webhook's validateHA, evaluated on a rendered spec.

    The CEL rule (``!has(self.galera) || !self.galera.enabled || (self.replicas % 2 == 1 ||
    self.replicasAllowEvenNumber)``) is enforced for real by kube-apiserver in
    tests/e2e/test_platform_on_apiserver.py::test_galera_sizes_match_the_real_crd.
    """
    galera = bool((spec.get("galera") or {}).get("enabled"))
    odd_or_allowed = spec["replicas"] % 2 == 1 or bool(spec.get("replicasAllowEvenNumber"))
    cel = (not galera) or odd_or_allowed
    validate_ha = (spec["replicas"] > 1) if galera else (spec["replicas"] <= 1)
    return cel and validate_ha


@pytest.mark.parametrize("readers", range(0, 9))
def test_every_reader_count_config_accepts_is_one_the_operator_accepts(readers: int) -> None:
    config = minimal_config(mysql={"mode": "operator", "readerCount": readers})
    try:
        model = validate_stack_config(config)
    except ConfigError as error:
        assert readers % 2 == 1 and [p.path for p in error.problems] == ["mysql.readerCount"]
        spec = mariadb_spec(operator(readerCount=readers), "root")
        assert not _crd_accepts(spec)  # refused before `up`, where the operator would refuse it after
        return
    assert isinstance(model.mysql, MySQLOperatorConfig)
    spec = mariadb_spec(model.mysql, "root")
    assert _crd_accepts(spec)
    assert spec["replicas"] == readers + 1
    assert ("galera" in spec) is (readers > 0)
    assert "replication" not in spec  # no alpha replication, no scale-out that needs bootstrapFrom


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            out.update(_flatten(item, f"{prefix}.{key}" if prefix else key))
        return out
    return {prefix: value}


def _mariadb(readers: int) -> tuple[Deployment, dict[str, Any]]:
    deployed = deploy(minimal_config(mysql={"mode": "operator", "readerCount": readers}))
    return deployed, deployed.named(MARIADB).inputs


@pytest.mark.parametrize(("before", "after"), [(2, 4), (8, 2)])
def test_changing_reader_count_is_an_in_place_update(before: int, after: int) -> None:
    old_deployment, old = _mariadb(before)
    new_deployment, new = _mariadb(after)
    # Same resource (URN: type and name), same object identity (what pulumi-kubernetes replaces on).
    assert old_deployment.named(MARIADB).typ == new_deployment.named(MARIADB).typ
    for key in ("apiVersion", "kind"):
        assert old[key] == new[key]
    assert (old["metadata"]["name"], old["metadata"]["namespace"]) == (
        new["metadata"]["name"],
        new["metadata"]["namespace"],
    )
    changed = {k for k in _flatten(old) | _flatten(new) if _flatten(old).get(k) != _flatten(new).get(k)}
    assert changed == {"spec.replicas"}
    assert new["spec"]["replicas"] == after + 1

    # Nothing else in the stack changes either: DB_HOST, the Services and every site stay as they were.
    def resources(deployment: Deployment) -> set[str]:
        return {r.name for r in deployment.registrations if r.typ != "pulumi:pulumi:Stack"}

    assert resources(old_deployment) == resources(new_deployment)
    for registration in old_deployment.registrations:
        if registration.name != MARIADB and registration.typ != "pulumi:pulumi:Stack":
            assert registration.inputs == new_deployment.named(registration.name).inputs, registration.name


def test_galera_spec_keeps_data_and_quorum() -> None:
    spec = mariadb_spec(
        operator(readerCount=4, storageClass="ceph-block", podDisruptionBudget={"maxUnavailable": 2}), "root"
    )
    galera = spec["galera"]
    assert galera["sst"] == "mariabackup"  # the operator's recommended SST: donors stay online
    assert galera["config"]["reuseStorageVolume"] is False
    assert galera["config"]["volumeClaimTemplate"]["storageClassName"] == "ceph-block"
    assert spec["storage"]["storageClassName"] == "ceph-block"
    assert spec["podDisruptionBudget"] == {"maxUnavailable": 2}  # 3 of 5 remain: quorum
    assert "podIndex" not in galera["primary"]  # the operator moves it on failover; flightdeck never pins it


# -- DB_HOST: the primary only, in every topology ---------------------------------------------------


@pytest.mark.parametrize("readers", [0, 2, 6])
def test_db_host_is_the_primary_only_service_for_every_reader_count(readers: int) -> None:
    deployed, _ = _mariadb(readers)
    service = deployed.named("flightdeck-mysql-write")
    assert service.metadata["name"] == "mariadb-write" and service.metadata["namespace"] == "mariadb"
    assert service.spec["selector"] == {
        "app.kubernetes.io/name": "mariadb",
        "app.kubernetes.io/instance": "mariadb",
        ROLE_LABEL: "primary",
    }
    assert ROLE_LABEL == "k8s.mariadb.com/role"
    for site in ("blog", "wiki"):
        data = deployed.named(f"{site}-db-secret").inputs["stringData"]
        assert data["DB_HOST"] == "mariadb-write.mariadb.svc.cluster.local"
        assert data["DB_ADDRESS"] == "mariadb-write.mariadb.svc.cluster.local:3306"
        assert data["DB_READ_HOST"] == (
            "mariadb-secondary.mariadb.svc.cluster.local" if readers else "mariadb-write.mariadb.svc.cluster.local"
        )
    connection = deployed.named("blog-db-user").inputs["connection"]
    assert connection["service"] == "mariadb-write"  # SQL too goes through the primary-only Service
    assert deployed.outputs["mysql"]["primaryHost"] == "mariadb-write.mariadb.svc.cluster.local"


@pytest.fixture(scope="module")
def prod() -> Deployment:
    import asyncio

    asyncio.set_event_loop(asyncio.new_event_loop())
    return deploy(stack_file_config("prod"), stack="prod")


def _depends_on(registration: Any, name: str) -> bool:
    return any(urn.endswith(f"::{name}") for urn in registration.request.dependencies)


def test_sql_waits_for_the_write_service_and_the_service_for_the_servers(prod: Deployment) -> None:
    deployed = prod
    assert _depends_on(deployed.named("flightdeck-mysql-write"), MARIADB)
    for name in ("shop-db-database", "shop-db-user", "shop-db-grant-shop.*"):
        assert _depends_on(deployed.named(name), "flightdeck-mysql-write"), name


# -- server config (myCnf) --------------------------------------------------------------------------


def test_default_server_config_purges_binlogs_and_uses_the_memory() -> None:
    values = cnf_values(server_cnf(operator()))
    assert values["binlog_expire_logs_seconds"] == str(3 * 86400)
    assert values["innodb_buffer_pool_size"] == "1024M"  # half of the 2Gi limit
    assert values["max_connections"] == "1000"
    assert values["character-set-server"] == "utf8mb4" and values["binlog_format"] == "row"
    assert values["innodb_autoinc_lock_mode"] == "2"  # Galera's requirement


def test_server_config_follows_the_config() -> None:
    cluster = operator(
        binlogExpireDays=7,
        innodbBufferPoolSize="3Gi",
        maxConnections=4000,
        resources={"limits": {"memory": "6Gi"}},
    )
    values = cnf_values(server_cnf(cluster))
    assert values["binlog_expire_logs_seconds"] == str(7 * 86400)
    assert values["innodb_buffer_pool_size"] == "3072M"
    assert values["max_connections"] == "4000"
    assert (
        cnf_values(server_cnf(operator(innodbBufferPoolFraction=0.7, resources={"limits": {"memory": "10Gi"}})))[
            "innodb_buffer_pool_size"
        ]
        == str(int(10 * 1024 * 0.7)) + "M"
    )
    only_request = operator(resources={"requests": {"memory": "4Gi"}})
    assert cnf_values(server_cnf(only_request))["innodb_buffer_pool_size"] == "2048M"


def test_servers_before_10_6_get_expire_logs_days() -> None:
    values = cnf_values(server_cnf(operator(version="10.5", binlogExpireDays=5)))
    assert values["expire_logs_days"] == "5" and "binlog_expire_logs_seconds" not in values


def test_the_cr_carries_the_server_config(prod: Deployment) -> None:
    values = cnf_values(prod.named(MARIADB).spec["myCnf"])
    assert values["innodb_buffer_pool_size"] == "3072M"  # half of prod's 6Gi limit
    assert "binlog_expire_logs_seconds" in values


MEMORY = st.builds(lambda n, unit: f"{n}{unit}", st.integers(1, 4096), st.sampled_from(["Mi", "Gi"]))


@settings(max_examples=100, deadline=None)
@given(MEMORY, st.floats(0.1, 0.8))
def test_buffer_pool_never_exceeds_its_share_of_memory(memory: str, fraction: float) -> None:
    cluster = operator(innodbBufferPoolFraction=fraction, resources={"limits": {"memory": memory}})
    pool = innodb_buffer_pool_bytes(cluster)
    assert pool is not None and pool % 2**20 == 0 and pool >= 2**20
    assert pool <= max(quantity_bytes(memory) * fraction, 2**20)
    assert pool <= quantity_bytes(memory) * MAX_BUFFER_POOL_SHARE or quantity_bytes(memory) < 2 * 2**20


# -- connection limits ------------------------------------------------------------------------------


def test_site_accounts_get_limits_from_replicas(prod: Deployment) -> None:
    assert prod.named("shop-db-user").inputs["max_user_connections"] == 200  # explicit
    assert prod.named("blog-db-user").inputs["max_user_connections"] == 2 * 25  # replicas x connectionsPerReplica
    assert prod.named("intranet-db-user").inputs["max_user_connections"] == 100
    assert prod.named("museum-db-user").inputs["max_user_connections"] == 50
    config = minimal_config(mysql={"mode": "operator", "connectionsPerReplica": 40})
    config["sites"][0]["replicas"] = 3
    assert deploy(config).named("blog-db-user").inputs["max_user_connections"] == 120


SITES = st.lists(st.tuples(st.integers(1, 10), st.one_of(st.none(), st.integers(1, 400))), min_size=1, max_size=12)


@settings(max_examples=60, deadline=None)
@given(SITES, st.integers(50, 3000), st.integers(1, 60), st.integers(10, 100))
def test_connection_budget_is_refused_exactly_when_it_does_not_fit(
    sites: list[tuple[int, int | None]], max_connections: int, per_replica: int, reserved: int
) -> None:
    config = minimal_config(
        mysql={
            "mode": "operator",
            "maxConnections": max_connections,
            "connectionsPerReplica": per_replica,
            "reservedConnections": reserved,
        },
        backups={"velero": {"enabled": False}, "databaseBackups": {"enabled": False}},
    )
    config["sites"] = [
        {
            "name": f"s{i}",
            "cms": "wordpress",
            "domains": [f"s{i}.example.org"],
            "replicas": replicas,
            **({"user": {"maxUserConnections": limit}} if limit else {}),
        }
        for i, (replicas, limit) in enumerate(sites)
    ]
    needed = sum(limit or replicas * per_replica for replicas, limit in sites) + reserved
    try:
        model = validate_stack_config(config)
    except ConfigError as error:
        assert needed > max_connections
        assert [p.path for p in error.problems] == ["mysql.maxConnections"]
        assert f"= {needed}" in error.problems[0].reason
        return
    assert needed <= max_connections
    assert sum(site_connection_limit(s, model.mysql) for s in model.sites) + reserved == needed


def test_a_site_limit_is_never_unlimited() -> None:
    site = SiteConfig.model_validate({"name": "a", "cms": "drupal", "domains": ["a.example.org"], "replicas": 3})
    assert site_connection_limit(site, operator()) == 75
    with pytest.raises(ConfigError, match="maxUserConnections: Input should be greater than or equal to 1"):
        config = copy.deepcopy(minimal_config())
        config["sites"][0]["user"] = {"maxUserConnections": 0}
        validate_stack_config(config)
