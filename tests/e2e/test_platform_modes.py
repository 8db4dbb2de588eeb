"""The other ways a stack reaches its database, on the real engine beside the local stack.

* ``direct``: operator mode with ``mysql.access.mode: direct`` (the machine running ``pulumi up``
  connects to the server itself, as from a pod in the cluster), a single server
  (``readerCount: 0``), in namespace ``mariadb-direct`` backed by its own MariaDB.
* ``external``: ``mysql.mode: external``, a server flightdeck does not manage, reached with an
  admin account whose password is the stack's secret ``mysqlAdminPassword``.

Each stack is deployed, must be a no-op the second time (no SQL written), and is destroyed.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pulumi import automation as auto
from ruamel.yaml import YAML

from tests.e2e.conftest import DIRECT_MARIADB_NAMESPACE
from tests.e2e.platform_rig import REPO_ROOT, PlatformStack, Rig
from tests.e2e.sql_stack import Engine, can_login, databases, server_writes

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(1800)]


def stack_file(path: Path, mysql: dict[str, Any], sites: list[dict[str, Any]], issuer: str) -> Path:
    """The local stack file with another database server, sites and ClusterIssuer name (the
    issuer is cluster-scoped, so each stack on one cluster needs its own)."""
    yaml = YAML()
    document = yaml.load((REPO_ROOT / "Pulumi.local.yaml").read_text())
    config = document["config"]
    config["flightdeck:mysql"] = mysql
    config["flightdeck:sites"] = sites
    config["flightdeck:certificates"]["clusterIssuer"] = issuer
    with path.open("w") as handle:
        yaml.dump(document, handle)
    return path


def converge_and_check_no_op(stack: PlatformStack, server: Any) -> None:
    assert stack.up().succeeded
    with server_writes(server) as delta:
        again = stack.up()
    assert again.changes == 0
    assert delta.nonzero == {}


@pytest.fixture(scope="module")
def direct(rig: Rig, engine: Engine, tmp_path_factory: pytest.TempPathFactory) -> Iterator[PlatformStack]:
    root = tmp_path_factory.mktemp("direct-stack")
    server = rig.servers[DIRECT_MARIADB_NAMESPACE]
    source = stack_file(
        root / "Pulumi.direct.yaml",
        {"mode": "operator", "namespace": DIRECT_MARIADB_NAMESPACE, "size": "1Gi", "readerCount": 0,
         "resources": {"requests": {"cpu": "100m", "memory": "256Mi"}, "limits": {"memory": "512Mi"}},
         "access": {"mode": "direct", "host": "127.0.0.1", "port": server.port}},
        [{"name": "solo", "cms": "wordpress", "domains": ["solo.flightdeck.test"], "replicas": 1, "filesSize": "1Gi"}],
        "letsencrypt-direct",
    )  # fmt: skip
    stack = PlatformStack.create(rig, engine, root, "direct", source)
    yield stack
    assert stack.destroy_everything().succeeded


def test_direct_mode_deploys_a_single_server_stack_and_stays_a_no_op(direct: PlatformStack, rig: Rig) -> None:
    server = rig.servers[DIRECT_MARIADB_NAMESPACE]
    converge_and_check_no_op(direct, server)
    settings = rig.secret_data("solo", "solo-db")
    # A single server has no -primary Service; DB_HOST is still the write Service.
    assert settings["DB_HOST"] == f"mariadb-write.{DIRECT_MARIADB_NAMESPACE}.svc.cluster.local"
    assert "solo" in databases(server, "solo")
    assert can_login(server, settings["DB_USER"], settings["DB_PASSWORD"], "solo")
    mariadb = rig.custom().get_namespaced_custom_object(
        "k8s.mariadb.com", "v1alpha1", DIRECT_MARIADB_NAMESPACE, "mariadbs", "mariadb"
    )
    assert mariadb["spec"]["replicas"] == 1 and "galera" not in mariadb["spec"]


@pytest.fixture(scope="module")
def external(rig: Rig, engine: Engine, tmp_path_factory: pytest.TempPathFactory) -> Iterator[PlatformStack]:
    root = tmp_path_factory.mktemp("external-stack")
    server = rig.servers[DIRECT_MARIADB_NAMESPACE]
    source = stack_file(
        root / "Pulumi.external.yaml",
        {"mode": "external", "host": "127.0.0.1", "port": server.port, "adminUser": server.admin_user},
        [{"name": "outside", "cms": "drupal", "domains": ["outside.flightdeck.test"], "replicas": 1,
          "filesSize": "1Gi"}],
        "letsencrypt-external",
    )  # fmt: skip
    stack = PlatformStack.create(rig, engine, root, "external", source)
    selected = auto.Stack.create_or_select("external", stack.flightdeck().workspace())
    selected.set_config("flightdeck:mysqlAdminPassword", auto.ConfigValue(server.admin_password, secret=True))
    yield stack
    assert stack.destroy_everything().succeeded


def test_external_mode_deploys_against_a_server_it_does_not_manage(external: PlatformStack, rig: Rig) -> None:
    server = rig.servers[DIRECT_MARIADB_NAMESPACE]
    converge_and_check_no_op(external, server)
    settings = rig.secret_data("outside", "outside-db")
    assert settings["DB_HOST"] == "127.0.0.1"
    assert can_login(server, settings["DB_USER"], settings["DB_PASSWORD"], "outside")
    kinds = {r["type"] for r in external.state_resources()}
    assert "kubernetes:k8s.mariadb.com/v1alpha1:MariaDB" not in kinds
    assert server.admin_password not in external.stack_file.read_text(), "the admin password is stored encrypted"
