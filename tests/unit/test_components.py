"""Every component's real properties, from what the program registers under mocks."""

from __future__ import annotations

import copy
from collections import Counter
from typing import Any

import pytest

from tests.unit.harness import Deployment, deploy, last_registrations, minimal_config, stack_file_config

MARIADB = "kubernetes:k8s.mariadb.com/v1alpha1:MariaDB"
PVC = "kubernetes:core/v1:PersistentVolumeClaim"
NAMESPACE = "kubernetes:core/v1:Namespace"
DEPLOYMENT = "kubernetes:apps/v1:Deployment"
SCHEDULE = "kubernetes:velero.io/v1:Schedule"
DB_BACKUP = "kubernetes:k8s.mariadb.com/v1alpha1:Backup"
CERTIFICATE = "kubernetes:cert-manager.io/v1:Certificate"
SECRET = "kubernetes:core/v1:Secret"


@pytest.fixture(scope="module")
def prod() -> Deployment:
    import asyncio

    asyncio.set_event_loop(asyncio.new_event_loop())
    return deploy(stack_file_config("prod"), stack="prod")


def test_mariadb_cluster_is_highly_available(prod: Deployment) -> None:
    mariadb = prod.named("flightdeck-mysql-mariadb")
    spec = mariadb.spec
    assert mariadb.inputs["apiVersion"] == "k8s.mariadb.com/v1alpha1"
    assert spec["replicas"] == 3  # readerCount 2 + primary: three Galera nodes
    assert "replication" not in spec  # "still in alpha" in the v26.6 CRD; Galera is the production HA
    assert spec["galera"]["enabled"] is True
    assert spec["galera"]["primary"] == {"autoFailover": True}  # podIndex stays the operator's to move
    assert spec["galera"]["recovery"] == {"enabled": True}
    assert spec["podDisruptionBudget"] == {"maxUnavailable": 1}
    assert spec["affinity"]["antiAffinityEnabled"] is True
    assert spec["updateStrategy"]["type"] == "ReplicasFirstPrimaryLast"
    assert spec["storage"]["size"] == "20Gi"
    assert spec["storage"]["storageClassName"] == "ceph-block"
    assert "character-set-server=utf8mb4" in spec["myCnf"]
    assert mariadb.protect and mariadb.retain_on_delete


def test_root_password_is_generated_into_a_secret(prod: Deployment) -> None:
    mariadb = prod.named("flightdeck-mysql-mariadb")
    ref = mariadb.spec["rootPasswordSecretKeyRef"]
    secret = prod.named("flightdeck-mysql-root-secret")
    assert ref["name"] == secret.metadata["name"] and ref["key"] in secret.inputs["stringData"]
    assert secret.is_secret("stringData")
    password = prod.named("flightdeck-mysql-root-password")
    assert password.inputs["length"] >= 32


def test_single_server_has_no_replication() -> None:
    config = minimal_config(mysql={"mode": "operator", "readerCount": 0})
    spec = deploy(config).named("flightdeck-mysql-mariadb").spec
    assert spec["replicas"] == 1
    assert "replication" not in spec and "galera" not in spec


def test_outputs_name_primary_and_secondary_hosts(prod: Deployment) -> None:
    mysql = prod.outputs["mysql"]
    assert mysql["primaryHost"] == "mariadb-write.mariadb.svc.cluster.local"
    assert mysql["secondaryHost"] == "mariadb-secondary.mariadb.svc.cluster.local"
    assert mysql["port"] == 3306


def test_site_secret_has_connection_settings(prod: Deployment) -> None:
    secret = prod.named("shop-db-secret")
    data = secret.inputs["stringData"]
    assert secret.is_secret("stringData")
    assert data["DB_HOST"] == "mariadb-write.mariadb.svc.cluster.local"
    assert data["DB_READ_HOST"] == "mariadb-secondary.mariadb.svc.cluster.local"
    assert data["DB_PORT"] == "3306"
    assert data["DB_NAME"] == "shop" and data["DB_USER"] == "shop"
    assert data["DB_PASSWORD"] == "mock-password-shop-db-password"
    assert secret.metadata["namespace"] == "shop"


def test_sql_resources_get_secret_credentials(prod: Deployment) -> None:
    database = prod.named("intranet-db-database")
    user = prod.named("intranet-db-user")
    assert database.typ == "pulumi-python:dynamic/mysql:Database"
    assert database.inputs["database"] == "intranet_d11"
    assert database.inputs["charset"] == "utf8mb4"
    assert database.inputs["collation"] == "utf8mb4_unicode_ci"
    assert database.is_secret("connection") and user.is_secret("connection")
    assert user.is_secret("password")
    assert user.inputs["user"] == "intranet_app" and user.inputs["host"] == "%"
    assert user.inputs["max_user_connections"] == 100
    connection = database.inputs["connection"]
    assert connection["mode"] == "portForward"
    assert connection["service"] == "mariadb-write" and connection["namespace"] == "mariadb"
    assert connection["kubeContext"] == "prod-eu1"


def test_grants_cover_own_database_and_extras(prod: Deployment) -> None:
    own = prod.named("docs-db-grant-docs.*")
    extra = prod.named("docs-db-grant-intranet_d11.*")
    assert own.inputs["privileges"] == ["ALL PRIVILEGES"] and own.inputs["database"] == "docs"
    assert extra.inputs["privileges"] == ["SELECT"] and extra.inputs["database"] == "intranet_d11"
    assert extra.inputs["user"] == "docs" and extra.inputs["host"] == "%"
    # Dropping the user drops its grants: no REVOKE round-trips when a site is removed.
    assert own.deleted_with.endswith("docs-db-user")


def test_data_is_kept_by_default(prod: Deployment) -> None:
    for name in ("shop-db-database", "shop-files-claim", "shop-namespace"):
        assert prod.named(name).retain_on_delete, name
    assert prod.named("shop-db-database").inputs["drop_on_delete"] is False
    # Users are not data: removing a site drops its account.
    assert not prod.named("shop-db-user").retain_on_delete


def test_drop_data_on_delete_is_per_site() -> None:
    config = minimal_config()
    config["sites"][1]["dropDataOnDelete"] = True
    deployed = deploy(config)
    assert deployed.named("blog-files-claim").retain_on_delete
    for name in ("wiki-db-database", "wiki-files-claim", "wiki-namespace"):
        assert not deployed.named(name).retain_on_delete, name
    assert deployed.named("wiki-db-database").inputs["drop_on_delete"] is True


def test_files_volume_is_shared_cephfs(prod: Deployment) -> None:
    claim = prod.named("shop-files-claim")
    assert claim.spec["accessModes"] == ["ReadWriteMany"]
    assert claim.spec["storageClassName"] == "rook-cephfs"
    assert claim.spec["resources"]["requests"]["storage"] == "50Gi"
    assert claim.metadata == {**claim.metadata, "name": "shop-files", "namespace": "shop"}


def test_rook_storage_retains_volumes() -> None:
    deployed = deploy(minimal_config(storage={"storageClass": "hosting-fs", "rook": {"replicas": 2}}))
    storage_class = deployed.named("flightdeck-storage-class")
    assert storage_class.inputs["reclaimPolicy"] == "Retain"
    assert storage_class.inputs["provisioner"] == "rook-ceph.cephfs.csi.ceph.com"
    assert storage_class.metadata["name"] == "hosting-fs"
    filesystem = deployed.named("flightdeck-storage-filesystem")
    assert filesystem.spec["metadataPool"]["replicated"]["size"] == 2
    assert filesystem.spec["preserveFilesystemOnDelete"] is True
    assert filesystem.protect
    assert deployed.named("blog-files-claim").spec["storageClassName"] == "hosting-fs"


def test_certificates_cover_every_domain(prod: Deployment) -> None:
    certificate = prod.named("docs-tls-certificate")
    assert certificate.spec["dnsNames"] == ["docs.example.org", "help.example.org"]
    assert certificate.spec["issuerRef"] == {
        "name": "letsencrypt-production",
        "kind": "ClusterIssuer",
        "group": "cert-manager.io",
    }
    assert certificate.spec["secretName"] == "docs-tls"
    assert certificate.metadata["namespace"] == "docs"
    issuer = prod.named("flightdeck-issuer-issuer").spec["acme"]
    assert issuer["server"] == "https://acme-v02.api.letsencrypt.org/directory"
    assert issuer["solvers"] == [{"http01": {"ingress": {"ingressClassName": "nginx"}}}]
    assert issuer["email"] == "hosting-ops@example.org"


def test_staging_uses_lets_encrypt_staging() -> None:
    deployed = deploy(stack_file_config("staging"), stack="staging")
    issuer = deployed.named("flightdeck-issuer-issuer")
    assert "acme-staging-v02" in issuer.spec["acme"]["server"]
    assert deployed.named("shop-namespace").metadata["name"] == "stg-shop"


def test_workload_is_unprivileged_and_shares_files(prod: Deployment) -> None:
    deployment = prod.named("shop-web-deployment")
    spec = deployment.spec
    pod = spec["template"]["spec"]
    container = pod["containers"][0]
    assert spec["replicas"] == 4
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["fsGroup"] == 33
    context = container["securityContext"]
    assert context["allowPrivilegeEscalation"] is False and context["privileged"] is False
    assert context["capabilities"] == {"drop": ["ALL"]}
    # All of wp-content (uploads, plugins, themes) is shared, not only uploads.
    assert container["volumeMounts"][0] == {"name": "files", "mountPath": "/var/www/html/wp-content"}
    assert pod["volumes"][0] == {"name": "files", "persistentVolumeClaim": {"claimName": "shop-files"}}
    assert container["envFrom"] == [{"secretRef": {"name": "shop-db"}}, {"secretRef": {"name": "shop-wordpress"}}]
    assert {
        "name": "WORDPRESS_DB_PASSWORD",
        "valueFrom": {"secretKeyRef": {"name": "shop-db", "key": "DB_PASSWORD"}},
    } in container["env"]
    assert {"readinessProbe", "livenessProbe", "startupProbe"} <= set(container)
    assert container["resources"] == {"requests": {"cpu": "500m", "memory": "512Mi"}, "limits": {"memory": "1Gi"}}
    assert spec["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    assert pod["automountServiceAccountToken"] is False


def test_drupal_mounts_its_files_directory(prod: Deployment) -> None:
    container = prod.named("intranet-web-deployment").spec["template"]["spec"]["containers"][0]
    assert container["volumeMounts"][0] == {
        "name": "files",
        "mountPath": "/opt/drupal/web/sites/default/files",
        "subPath": "public",
    }
    # Every replica reads the same generated settings.php (the image ships none).
    assert {
        "name": "config",
        "mountPath": "/opt/drupal/web/sites/default/settings.php",
        "subPath": "settings.php",
        "readOnly": True,
    } in container["volumeMounts"]
    assert {"secretRef": {"name": "intranet-drupal"}} in container["envFrom"]
    assert container["image"] == "drupal:11.4-php8.5-apache"
    assert (
        prod.named("museum-web-deployment").spec["template"]["spec"]["containers"][0]["image"]
        == "drupal:11.3-php8.4-apache"
    )


def test_ingress_serves_the_certificate(prod: Deployment) -> None:
    ingress = prod.named("docs-web-ingress").spec
    assert ingress["ingressClassName"] == "nginx"
    assert ingress["tls"] == [{"hosts": ["docs.example.org", "help.example.org"], "secretName": "docs-tls"}]
    assert [rule["host"] for rule in ingress["rules"]] == ["docs.example.org", "help.example.org"]


def test_network_policies_isolate_sites(prod: Deployment) -> None:
    ingress = prod.named("blog-network-ingress")
    assert ingress.metadata["namespace"] == "blog"
    assert ingress.spec["podSelector"] == {}
    assert ingress.spec["ingress"][0]["from"] == [
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}}}
    ]
    database = prod.named("blog-network-database")
    assert database.metadata["namespace"] == "mariadb"
    # mariadb-operator's own selector labels for the server pods (pkg/builder/labels).
    assert database.spec["podSelector"] == {
        "matchLabels": {"app.kubernetes.io/name": "mariadb", "app.kubernetes.io/instance": "mariadb"}
    }
    peer = database.spec["ingress"][0]["from"][0]
    assert peer["namespaceSelector"] == {"matchLabels": {"kubernetes.io/metadata.name": "blog"}}
    assert peer["podSelector"] == {
        "matchLabels": {"app.kubernetes.io/instance": "blog"},
        "matchExpressions": [{"key": "app.kubernetes.io/component", "operator": "In", "values": ["web", "cron"]}],
    }
    assert database.spec["ingress"][0]["ports"] == [{"protocol": "TCP", "port": 3306}]
    web_labels = prod.named("blog-web-deployment").spec["template"]["metadata"]["labels"]
    assert peer["podSelector"]["matchLabels"].items() <= web_labels.items()
    assert web_labels["app.kubernetes.io/component"] in peer["podSelector"]["matchExpressions"][0]["values"]


def _start_times(deployed: Deployment) -> dict[str, str]:
    times = {}
    for schedule in deployed.of_type(SCHEDULE):
        times[schedule.name] = schedule.spec["schedule"]
    for backup in deployed.of_type(DB_BACKUP):
        times[backup.name] = backup.spec["schedule"]["cron"]
    return times


def test_backups_are_spread_within_the_bound(prod: Deployment) -> None:
    times = _start_times(prod)
    assert len(times) == 12  # files + database for six sites
    starts = Counter(cron.removeprefix("CRON_TZ=Europe/Berlin ") for cron in times.values())
    assert max(starts.values()) <= 2  # maxConcurrent
    assert prod.named("events-backups-velero").spec["schedule"] == "CRON_TZ=Europe/Berlin 45 4 * * *"
    for cron in starts:
        minute, hour = map(int, cron.split()[:2])
        assert 1 <= hour < 5 and minute % 15 == 0


def test_velero_schedule_backs_up_the_site_namespace(prod: Deployment) -> None:
    schedule = prod.named("shop-backups-velero")
    template = schedule.spec["template"]
    assert schedule.metadata["namespace"] == "velero"
    assert template["includedNamespaces"] == ["shop"]
    assert template["defaultVolumesToFsBackup"] is True
    assert template["ttl"] == "720h0m0s"
    backup = prod.named("shop-backups-database")
    assert backup.spec["databases"] == ["shop"]
    assert backup.spec["mariaDbRef"] == {"name": "mariadb"}
    assert backup.spec["timeZone"] == "Europe/Berlin"
    assert backup.spec["storage"]["s3"]["prefix"] == "prod/shop"


def test_adding_a_site_leaves_other_schedules_alone() -> None:
    base = stack_file_config("prod")
    before = _start_times(deploy(base, stack="prod"))
    grown = copy.deepcopy(base)
    grown["sites"].append({"name": "newsroom", "cms": "wordpress", "domains": ["news.example.org"]})
    after = _start_times(deploy(grown, stack="prod"))
    changed = [name for name in before if before[name] != after[name]]
    assert len(changed) <= 2, changed
    assert {"newsroom-backups-velero", "newsroom-backups-database"} <= set(after)


def test_harmless_changes_keep_every_name() -> None:
    base = minimal_config()
    changed = copy.deepcopy(base)
    changed["sites"][0].update(
        replicas=5, image="wordpress:6.9-apache", domains=["blog.example.org", "new.example.org"]
    )
    changed["sites"][0]["user"] = {"passwordVersion": 2}
    before, after = deploy(base), deploy(changed)
    assert before.names() == after.names()
    for registration in before.registrations:
        if "metadata" in registration.inputs:
            assert registration.metadata.get("name") == after.named(registration.name).metadata.get("name")


def test_password_rotation_changes_the_generator_and_rolls_pods() -> None:
    config = minimal_config()
    config["sites"][0]["user"] = {"passwordVersion": 3}
    deployed = deploy(config)
    assert deployed.named("blog-db-password").inputs["keepers"] == {"passwordVersion": "3"}
    annotations = deployed.named("blog-web-deployment").spec["template"]["metadata"]["annotations"]
    assert annotations["flightdeck.io/db-password-version"] == "3"


def test_external_mode_uses_the_given_server() -> None:
    config = minimal_config(
        mysql={"mode": "external", "host": "db.internal", "readHost": "db-ro.internal", "port": 3307},
        kubernetes={"egress": {"databaseCidrs": ["10.0.5.0/28"]}},
    )
    deployed = deploy(config, secrets={"mysqlAdminPassword": "s3cret-admin"})
    assert not deployed.of_type(MARIADB) and not deployed.of_type(DB_BACKUP)
    assert not any(r.name.endswith("-network-database") for r in deployed.registrations)
    # Site pods reach the external server only at its configured addresses and port.
    assert deployed.named("blog-network-egress-database").spec["egress"] == [
        {"to": [{"ipBlock": {"cidr": "10.0.5.0/28"}}], "ports": [{"protocol": "TCP", "port": 3307}]}
    ]
    database = deployed.named("blog-db-database")
    assert database.is_secret("connection")
    assert database.inputs["connection"]["host"] == "db.internal"
    assert database.inputs["connection"]["mode"] == "direct"
    assert database.inputs["connection"]["password"] == "s3cret-admin"
    data = deployed.named("blog-db-secret").inputs["stringData"]
    assert (data["DB_HOST"], data["DB_READ_HOST"], data["DB_PORT"]) == ("db.internal", "db-ro.internal", "3307")


def test_direct_access_override_for_sql_only() -> None:
    config = minimal_config(
        mysql={"mode": "operator", "access": {"mode": "direct", "host": "127.0.0.1", "port": 13306}}
    )
    deployed = deploy(config)
    connection = deployed.named("blog-db-user").inputs["connection"]
    assert (connection["mode"], connection["host"], connection["port"]) == ("direct", "127.0.0.1", 13306)
    # Sites still reach the primary Service from inside the cluster.
    data = deployed.named("blog-db-secret").inputs["stringData"]
    assert data["DB_HOST"] == "mariadb-write.mariadb.svc.cluster.local"
    assert data["DB_PORT"] == "3306"  # the in-cluster port, not the override for the machine running `up`


def test_operators_are_pinned_helm_releases() -> None:
    config = minimal_config(
        operators={
            "certManager": {"enabled": True},
            "mariadbOperator": {"enabled": True, "values": {"ha": {"replicas": 3}}},
        }
    )
    deployed = deploy(config)
    releases = {r.inputs["chart"]: r.inputs for r in deployed.of_type("kubernetes:helm.sh/v3:Release")}
    assert releases["cert-manager"]["version"] == "v1.21.1"
    assert releases["mariadb-operator"]["version"] == "26.6.0"
    assert releases["mariadb-operator"]["values"]["ha"] == {"enabled": True, "replicas": 3}
    assert "mariadb-operator-crds" in releases
    assert "velero" not in releases


def test_components_use_flightdeck_type_tokens_and_parents(prod: Deployment) -> None:
    components = [r for r in prod.registrations if not r.request.custom and r.typ != "pulumi:pulumi:Stack"]
    assert components and all(r.typ.startswith("flightdeck:") and r.typ.count(":") == 2 for r in components)
    for registration in prod.registrations:
        if registration.typ.startswith(("kubernetes:", "pulumi-python:", "random:")):
            assert "flightdeck:" in registration.parent, registration.name


def test_kubernetes_provider_is_explicit(prod: Deployment) -> None:
    provider = prod.named("flightdeck-kubernetes")
    assert provider.inputs["context"] == "prod-eu1"
    assert provider.inputs["clusterIdentifier"] == "prod-eu1"
    assert provider.inputs["enableSecretMutable"] in (True, "true")


def test_invalid_config_registers_nothing() -> None:
    config = minimal_config()
    config["sites"][0]["domains"] = ["NOT VALID"]
    with pytest.raises(Exception) as caught:
        deploy(config, stack="prod")
    assert "prod: sites[0].domains[0]" in str(caught.value)
    assert "Traceback" not in str(caught.value)
    assert [r.typ for r in last_registrations() if r.typ != "pulumi:pulumi:Stack"] == []


def test_unknown_stack_key_is_rejected() -> None:
    with pytest.raises(Exception, match="unknown stack key flightdeck:site"):
        deploy({**minimal_config(), "site": {"name": "x"}})


def _labels(registration: Any) -> dict[str, str]:
    return dict(registration.metadata.get("labels") or {})


def test_site_objects_are_labelled(prod: Deployment) -> None:
    for registration in prod.of_type(PVC) + prod.of_type(CERTIFICATE) + prod.of_type(DEPLOYMENT):
        labels = _labels(registration)
        assert labels["app.kubernetes.io/part-of"] == "flightdeck"
        assert labels["app.kubernetes.io/instance"] in {"shop", "blog", "intranet", "docs", "events", "museum"}


def _depends_on(registration: Any, *names: str) -> bool:
    urns = list(registration.request.dependencies)
    return all(any(urn.endswith(f"::{name}") for urn in urns) for name in names)


def test_pods_roll_only_after_the_rotated_secret_is_written(prod: Deployment) -> None:
    # A component's depends_on never reaches its children; it must sit on the resources.
    deployment = prod.named("shop-web-deployment")
    assert _depends_on(deployment, "shop-db-secret", "shop-files-claim", "shop-tls-certificate")
    secret = prod.named("shop-db-secret")
    assert _depends_on(secret, "shop-db-user", "shop-db-grant-shop.*")


def test_network_policies_wait_for_their_namespaces(prod: Deployment) -> None:
    assert _depends_on(prod.named("shop-network-ingress"), "shop-namespace", "flightdeck-mysql-namespace")
    assert _depends_on(prod.named("shop-network-database"), "shop-namespace", "flightdeck-mysql-namespace")


def test_claims_wait_for_the_rook_storage_class() -> None:
    deployed = deploy(minimal_config(storage={"rook": {}}))
    assert _depends_on(deployed.named("blog-files-claim"), "flightdeck-storage-class", "flightdeck-storage-filesystem")


def test_acme_solver_is_reachable_from_the_ingress_controller(prod: Deployment) -> None:
    ports = prod.named("blog-network-ingress").spec["ingress"][0]["ports"]
    assert {"protocol": "TCP", "port": 8089} in ports  # cert-manager's HTTP-01 solver pod


def test_sql_waits_for_ready_servers(prod: Deployment) -> None:
    mariadb = prod.named("flightdeck-mysql-mariadb")
    assert mariadb.metadata["annotations"]["pulumi.com/waitFor"] == "condition=Ready"
    assert _depends_on(mariadb, "flightdeck-mysql-root-secret")
    assert prod.named("flightdeck-mysql-root-password").protect
    assert _depends_on(prod.named("shop-db-database"), "flightdeck-mysql-mariadb")


def test_new_schedules_do_not_back_up_at_once(prod: Deployment) -> None:
    assert prod.named("shop-backups-velero").spec["skipImmediately"] is True


def test_database_dumps_outlive_a_removed_site(prod: Deployment) -> None:
    assert prod.named("shop-backups-database").retain_on_delete
    config = minimal_config()
    config["sites"][0]["dropDataOnDelete"] = True
    assert not deploy(config).named("blog-backups-database").retain_on_delete


def test_drupal_settings_are_shared_and_salted(prod: Deployment) -> None:
    settings = prod.named("intranet-web-config").inputs["data"]["settings.php"]
    assert "getenv('DB_PASSWORD')" in settings and "getenv('DRUPAL_HASH_SALT')" in settings
    assert "'^intranet\\.example\\.org$'" in settings
    salt = prod.named("intranet-web-drupal-secret")
    assert salt.is_secret("stringData") and "DRUPAL_HASH_SALT" in salt.inputs["stringData"]
    deployment = prod.named("intranet-web-deployment")
    assert _depends_on(deployment, "intranet-web-config", "intranet-web-drupal-secret")
    assert deployment.spec["template"]["metadata"]["annotations"]["flightdeck.io/config-digest"]
    assert not any(r.name.startswith("shop-web-drupal") for r in prod.registrations)  # WordPress has none
