"""Site workloads as a production host needs them (issue 10 items 1, 2, 4-7; issue 9 item 6),
checked on what the program registers under mocks."""

from __future__ import annotations

import asyncio
import copy
from collections import Counter
from typing import Any

import pytest
from google.protobuf import struct_pb2
from pulumi.runtime import rpc

from components.config import WORDPRESS_SALT_ENV, plan_cron, validate_stack_config
from components.cron_slots import cron_schedule, run_minutes
from components.pod_inputs import secret_digest
from components.sql.providers import UserProvider
from tests.unit.harness import Deployment, Registration, deploy, minimal_config, stack_file_config

DEPLOYMENT = "kubernetes:apps/v1:Deployment"
CRON_JOB = "kubernetes:batch/v1:CronJob"
PDB = "kubernetes:policy/v1:PodDisruptionBudget"
RANDOM_PASSWORD = "random:index/randomPassword:RandomPassword"


@pytest.fixture(scope="module")
def prod() -> Deployment:
    asyncio.set_event_loop(asyncio.new_event_loop())
    return deploy(stack_file_config("prod"), stack="prod")


@pytest.fixture(scope="module")
def minimal() -> Deployment:
    asyncio.set_event_loop(asyncio.new_event_loop())
    return deploy(minimal_config())


def _pod(deployed: Deployment, site: str) -> dict[str, Any]:
    return dict(deployed.named(f"{site}-web-deployment").spec["template"])


def _container(deployed: Deployment, site: str) -> dict[str, Any]:
    return dict(_pod(deployed, site)["spec"]["containers"][0])


def _annotations(deployed: Deployment, site: str) -> dict[str, str]:
    return dict(_pod(deployed, site)["metadata"]["annotations"])


def _env(container: dict[str, Any]) -> dict[str, Any]:
    return {item["name"]: item.get("value", item.get("valueFrom")) for item in container.get("env", [])}


def _depends_on(registration: Registration, *names: str) -> bool:
    urns = list(registration.request.dependencies)
    return all(any(urn.endswith(f"::{name}") for urn in urns) for name in names)


def _holds_a_secret(value: struct_pb2.Value) -> bool:
    kind = value.WhichOneof("kind")
    if kind == "struct_value":
        fields = value.struct_value.fields
        sig = fields.get(rpc._special_sig_key)
        if sig is not None and sig.string_value == rpc._special_secret_sig:
            return True
        return any(_holds_a_secret(item) for item in fields.values())
    if kind == "list_value":
        return any(_holds_a_secret(item) for item in value.list_value.values)
    return False


def _with_site(index: int, **changes: Any) -> dict[str, Any]:
    config = minimal_config()
    config["sites"][index].update(changes)
    return config


# --- item 1: WordPress salts, Drupal trusted hosts, proxies, private files ---------------------


def test_wordpress_gets_eight_generated_salts_in_their_own_secret(minimal: Deployment) -> None:
    generators = [r for r in minimal.of_type(RANDOM_PASSWORD) if r.name.startswith("blog-web-wordpress-")]
    assert len(generators) == 8
    for generator in generators:
        assert generator.inputs["length"] == 64
        assert generator.inputs["special"] is True  # read through getenv, never parsed as PHP
        # Not keyed by the password version: a password rotation never logs anyone out.
        assert generator.inputs["keepers"] == {"saltsVersion": "1"}
    secret = minimal.named("blog-web-wordpress-secret")
    assert secret.metadata["name"] == "blog-wordpress"
    assert secret.is_secret("stringData")
    values = secret.inputs["stringData"]
    assert sorted(values) == sorted(WORDPRESS_SALT_ENV)
    assert len(set(values.values())) == 8
    container = _container(minimal, "blog")
    assert {"secretRef": {"name": "blog-wordpress"}} in container["envFrom"]
    assert _depends_on(minimal.named("blog-web-deployment"), "blog-web-wordpress-secret")


def test_password_rotation_leaves_salts_alone() -> None:
    rotated = deploy(_with_site(0, user={"passwordVersion": 7}))
    assert rotated.named("blog-db-password").inputs["keepers"] == {"passwordVersion": "7"}
    for generator in rotated.of_type(RANDOM_PASSWORD):
        if generator.name.startswith(("blog-web-wordpress-", "wiki-web-drupal-")):
            assert "passwordVersion" not in (generator.inputs.get("keepers") or {})


def test_salts_version_rotates_wordpress_and_drupal_salts(minimal: Deployment) -> None:
    assert "keepers" not in minimal.named("wiki-web-drupal-hash-salt").inputs  # existing stacks keep theirs
    config = minimal_config()
    for site in config["sites"]:
        site["saltsVersion"] = 2
    rotated = deploy(config)
    assert rotated.named("blog-web-wordpress-auth-key").inputs["keepers"] == {"saltsVersion": "2"}
    assert rotated.named("wiki-web-drupal-hash-salt").inputs["keepers"] == {"saltsVersion": "2"}


def test_drupal_trusts_its_domains_and_the_configured_proxies_only() -> None:
    config = minimal_config(
        certificates={"acmeEmail": "ops@example.org", "ingressControllerAddresses": ["10.244.0.0/16", "fd00:10::/64"]}
    )
    config["sites"][1]["domains"] = ["wiki.example.org", "docs-wiki.example.org"]
    deployed = deploy(config)
    settings = deployed.named("wiki-web-config").inputs["data"]["settings.php"]
    assert (
        "$settings['trusted_host_patterns'] = [\n  '^wiki\\.example\\.org$',\n  '^docs-wiki\\.example\\.org$'\n];"
        in (settings)
    )
    assert "$settings['reverse_proxy_addresses'] = [\n  '10.244.0.0/16',\n  'fd00:10::/64'\n];" in settings
    assert "REMOTE_ADDR" not in settings  # it used to trust whoever connected
    remoteip = deployed.named("blog-web-config").inputs["data"]["remoteip.conf"]
    assert "RemoteIPInternalProxy 10.244.0.0/16\nRemoteIPInternalProxy fd00:10::/64\n" in remoteip
    assert "192.168.0.0/16" not in remoteip


def test_drupal_private_files_and_config_sync_are_outside_the_web_root(minimal: Deployment) -> None:
    settings = minimal.named("wiki-web-config").inputs["data"]["settings.php"]
    assert "$settings['file_private_path'] = '/opt/drupal/private';" in settings
    assert "$settings['config_sync_directory'] = '/opt/drupal/config/sync';" in settings
    mounts = {m["mountPath"]: m for m in _container(minimal, "wiki")["volumeMounts"] if m["name"] == "files"}
    assert {path: m["subPath"] for path, m in mounts.items()} == {
        "/opt/drupal/web/sites/default/files": "public",
        "/opt/drupal/private": "private",
        "/opt/drupal/config/sync": "config-sync",
    }
    web_root = "/opt/drupal/web/"
    assert [path for path in mounts if path.startswith(web_root)] == ["/opt/drupal/web/sites/default/files"]
    # The public mount is a subdirectory of the volume, so nothing beside it is served.
    init = _pod(minimal, "wiki")["spec"]["initContainers"][0]
    assert init["command"] == ["mkdir", "-p", "/volume/public", "/volume/private", "/volume/config-sync"]
    assert init["securityContext"]["runAsUser"] == 33 and init["volumeMounts"] == [
        {"name": "files", "mountPath": "/volume"}
    ]


# --- item 2: drains without downtime ------------------------------------------------------------


def test_disruption_budget_per_site_with_two_or_more_replicas(prod: Deployment) -> None:
    budget = prod.named("shop-web-pdb")
    assert budget.metadata == {**budget.metadata, "name": "shop", "namespace": "shop"}
    assert budget.spec == {
        "maxUnavailable": 1,
        "selector": {"matchLabels": {"app.kubernetes.io/instance": "shop", "app.kubernetes.io/component": "web"}},
        "unhealthyPodEvictionPolicy": "AlwaysAllow",
    }
    assert len(prod.of_type(PDB)) == 6  # every prod site runs 2+ replicas
    single = deploy(_with_site(0, replicas=1))
    assert [r.name for r in single.of_type(PDB)] == ["wiki-web-pdb"]


def test_pods_spread_over_nodes_and_zones_and_roll_without_losing_capacity(prod: Deployment) -> None:
    spec = prod.named("shop-web-deployment").spec
    assert spec["strategy"] == {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": "25%"}}
    pod = spec["template"]["spec"]
    spread = {c["topologyKey"]: c for c in pod["topologySpreadConstraints"]}
    assert set(spread) == {"kubernetes.io/hostname", "topology.kubernetes.io/zone"}
    for constraint in spread.values():
        assert constraint["maxSkew"] == 1
        assert constraint["labelSelector"]["matchLabels"] == {
            "app.kubernetes.io/instance": "shop",
            "app.kubernetes.io/component": "web",
        }
        assert constraint["matchLabelKeys"] == ["pod-template-hash"]
        assert constraint["nodeTaintsPolicy"] == "Honor"
    container = pod["containers"][0]
    assert container["lifecycle"] == {"preStop": {"sleep": {"seconds": 5}}}
    assert pod["terminationGracePeriodSeconds"] > 5


# --- item 4: uploads and PHP limits -------------------------------------------------------------


def test_upload_size_reaches_the_ingress_and_php(minimal: Deployment) -> None:
    ingress = minimal.named("blog-web-ingress")
    assert ingress.metadata["annotations"] == {
        "nginx.ingress.kubernetes.io/proxy-body-size": "65m",
        "pulumi.com/patchForce": "true",  # as on every object (tests/unit/test_ownership_annotation.py)
    }
    ini = minimal.named("blog-web-config").inputs["data"]["php.ini"]
    assert "upload_max_filesize = 64M\n" in ini and "post_max_size = 65M\n" in ini
    assert "memory_limit = 256M\n" in ini
    for site in ("blog", "wiki"):
        assert {
            "name": "config",
            "mountPath": "/usr/local/etc/php/conf.d/zz-flightdeck.ini",
            "subPath": "php.ini",
            "readOnly": True,
        } in _container(minimal, site)["volumeMounts"]
    bigger = deploy(_with_site(0, maxUploadSize="1Gi", php={"memoryLimit": "384Mi"}))
    assert bigger.named("blog-web-ingress").metadata["annotations"]["nginx.ingress.kubernetes.io/proxy-body-size"] == (
        "1025m"
    )
    assert "memory_limit = 384M" in bigger.named("blog-web-config").inputs["data"]["php.ini"]
    extra = _env(_container(bigger, "blog"))["WORDPRESS_CONFIG_EXTRA"]
    assert "define('WP_MEMORY_LIMIT', '384M');" in extra and "define('WP_MAX_MEMORY_LIMIT', '384M');" in extra


# --- item 5: probes -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("site", "alive", "ready"),
    [("blog", "/wp-includes/images/blank.gif", "/wp-login.php"), ("wiki", "/core/misc/favicon.ico", "/user/login")],
)
def test_http_probes_with_the_site_host(minimal: Deployment, site: str, alive: str, ready: str) -> None:
    container = _container(minimal, site)
    host = {"blog": "blog.example.org", "wiki": "wiki.example.org"}[site]
    headers = [{"name": "Host", "value": host}, {"name": "X-Forwarded-Proto", "value": "https"}]
    for probe, path in (("startupProbe", alive), ("livenessProbe", alive), ("readinessProbe", ready)):
        assert container[probe]["httpGet"] == {"path": path, "port": "http", "httpHeaders": headers}, probe
    startup = container["startupProbe"]
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 300  # slow first boots
    assert container["readinessProbe"]["failureThreshold"] <= 3
    assert container["livenessProbe"]["failureThreshold"] * container["livenessProbe"]["periodSeconds"] >= 60


# --- item 6: cron ------------------------------------------------------------------------------


def test_wordpress_cron_runs_from_the_cluster(minimal: Deployment) -> None:
    extra = _env(_container(minimal, "blog"))["WORDPRESS_CONFIG_EXTRA"]
    assert "define('DISABLE_WP_CRON', true);" in extra
    job = minimal.named("blog-web-cron")
    assert job.metadata["name"] == "blog-cron"
    spec = job.spec
    assert spec["concurrencyPolicy"] == "Forbid" and spec["suspend"] is False and spec["timeZone"] == "Etc/UTC"
    template = spec["jobTemplate"]["spec"]["template"]
    assert template["metadata"]["labels"]["app.kubernetes.io/component"] == "cron"
    assert template["metadata"]["labels"]["app.kubernetes.io/instance"] == "blog"
    container = template["spec"]["containers"][0]
    assert container["command"][0] == "curl" and container["image"] == "wordpress:7.1-php8.3-apache"
    assert container["command"][-1] == "http://blog/wp-cron.php"
    assert "Host: blog.example.org" in container["command"]
    assert template["spec"]["restartPolicy"] == "Never"
    assert template["spec"]["automountServiceAccountToken"] is False
    assert spec["jobTemplate"]["spec"]["activeDeadlineSeconds"] < 15 * 60


def test_a_sites_own_config_extra_follows_flightdecks() -> None:
    own = "define('WP_POST_REVISIONS', 5);"
    container = _container(deploy(_with_site(0, env={"WORDPRESS_CONFIG_EXTRA": own, "TZ": "UTC"})), "blog")
    names = [item["name"] for item in container["env"]]
    assert names.count("WORDPRESS_CONFIG_EXTRA") == 1 and "TZ" in names
    extra = _env(container)["WORDPRESS_CONFIG_EXTRA"]
    assert extra.index("DISABLE_WP_CRON") < extra.index(own)


def test_drupal_cron_runs_its_cron_service_with_the_web_pods_settings(minimal: Deployment) -> None:
    settings = minimal.named("wiki-web-config").inputs["data"]["settings.php"]
    assert "$config['automated_cron.settings']['interval'] = 0;" in settings
    script = minimal.named("wiki-web-config").inputs["data"]["cron.php"]
    assert "DrupalKernel::createFromRequest" in script and "get('cron')->run()" in script
    pod = minimal.named("wiki-web-cron").spec["jobTemplate"]["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["command"] == ["php", "/opt/flightdeck/cron.php"]
    assert container["envFrom"] == _container(minimal, "wiki")["envFrom"]
    assert _env(container) == {"FLIGHTDECK_SITE_HOST": "wiki.example.org"}
    paths = {m["mountPath"] for m in container["volumeMounts"]}
    assert {
        "/opt/drupal/web/sites/default/settings.php",
        "/opt/flightdeck/cron.php",
        "/opt/drupal/private",
        "/usr/local/etc/php/conf.d/zz-flightdeck.ini",
    } <= paths
    assert pod["initContainers"][0]["name"] == "prepare-volume"
    assert _depends_on(minimal.named("wiki-web-cron"), "wiki-db-secret", "wiki-web-config", "wiki-web-drupal-secret")


def test_cron_runs_are_spread_over_the_hour_within_the_bound(prod: Deployment) -> None:
    runs: Counter[int] = Counter()
    for job in prod.of_type(CRON_JOB):
        minutes = [int(m) for m in job.spec["schedule"].split()[0].split(",")]
        assert job.spec["schedule"].endswith(" * * * *")
        assert minutes == run_minutes(minutes[0], 15)  # the default period
        runs.update(minutes)
    assert len(prod.of_type(CRON_JOB)) == 6
    assert max(runs.values()) == 1  # 24 runs an hour: one minute each
    assert len({job.spec["schedule"] for job in prod.of_type(CRON_JOB)}) > 1


def test_adding_a_site_leaves_other_cron_schedules_alone(prod: Deployment) -> None:
    base = stack_file_config("prod")
    offsets = plan_cron(validate_stack_config(base))
    for name, offset in offsets.items():  # what the program renders is the plan
        assert prod.named(f"{name}-web-cron").spec["schedule"] == cron_schedule(offset, 15)
    grown = copy.deepcopy(base)
    grown["sites"].append({"name": "newsroom", "cms": "wordpress", "domains": ["news.example.org"]})
    after = plan_cron(validate_stack_config(grown))
    moved = [name for name in offsets if offsets[name] != after[name]]
    assert len(moved) <= 2, moved  # a short displacement chain, as for backups
    assert "newsroom" in after


def test_cron_follows_the_site_settings() -> None:
    config = minimal_config()
    config["sites"][0]["cron"] = {"everyMinutes": 5}
    config["sites"][1]["cron"] = {"enabled": False}
    deployed = deploy(config)
    assert len(deployed.named("blog-web-cron").spec["schedule"].split()[0].split(",")) == 12
    assert not deployed.of_type(CRON_JOB)[1:]  # the Drupal site keeps its page-load cron
    settings = deployed.named("wiki-web-config").inputs["data"]["settings.php"]
    assert "automated_cron" not in settings


def test_a_suspended_site_has_no_web_pods_and_a_suspended_cron() -> None:
    deployed = deploy(_with_site(0, suspended=True))
    assert deployed.named("blog-web-deployment").spec["replicas"] == 0
    assert deployed.named("blog-web-cron").spec["suspend"] is True
    assert "blog-web-pdb" not in deployed.names()
    # Its data and their protection are untouched.
    for name in ("blog-files-claim", "blog-db-database", "blog-backups-velero", "blog-tls-certificate"):
        assert name in deployed.names()
    # Suspending moves no other site's cron.
    minimal = deploy(minimal_config())
    assert deployed.named("wiki-web-cron").spec["schedule"] == minimal.named("wiki-web-cron").spec["schedule"]


# --- item 7: images ----------------------------------------------------------------------------


def test_default_images_are_maintained_tags_pulled_for_rebuilds(minimal: Deployment) -> None:
    assert _container(minimal, "blog")["image"] == "wordpress:7.1-php8.3-apache"
    assert _container(minimal, "wiki")["image"] == "drupal:11.4-php8.5-apache"
    assert _container(minimal, "blog")["imagePullPolicy"] == "Always"
    cron = minimal.named("blog-web-cron").spec["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]
    assert cron["imagePullPolicy"] == "IfNotPresent"


def test_a_digest_pins_the_image() -> None:
    image = "wordpress:7.1-php8.3-apache@sha256:" + "ab" * 32
    container = _container(deploy(_with_site(0, image=image)), "blog")
    assert container["image"] == image and container["imagePullPolicy"] == "IfNotPresent"


# --- issue 9 item 6: pods restart when anything they read at start changes -----------------------


def _digests(deployed: Deployment, site: str = "blog") -> tuple[str, str]:
    annotations = _annotations(deployed, site)
    return annotations["flightdeck.io/secret-digest"], annotations["flightdeck.io/config-digest"]


def test_secret_digest_covers_the_database_settings_and_salts(minimal: Deployment) -> None:
    expected = secret_digest(
        {
            "database.host": "mariadb-write.mariadb.svc.cluster.local",
            "database.readHost": "mariadb-secondary.mariadb.svc.cluster.local",
            "database.port": "3306",
            "database.database": "blog",
            "database.user": "blog",
            "database.password": "mock-password-blog-db-password",
        }
        | {
            f"cms.{env}": f"mock-password-blog-web-wordpress-{env.removeprefix('WORDPRESS_').lower().replace('_', '-')}"
            for env in WORDPRESS_SALT_ENV
        }
    )
    assert _digests(minimal)[0] == expected


def test_the_digest_knows_every_key_of_the_database_secret(minimal: Deployment) -> None:
    # Every value here derives from the inputs database_settings() digests. A new key in
    # SiteDatabase's Secret fails this test: add its input to site_workload.database_settings.
    assert set(minimal.named("blog-db-secret").inputs["stringData"]) == {
        "DB_HOST", "DB_READ_HOST", "DB_PORT", "DB_ADDRESS", "DB_NAME", "DB_USER", "DB_PASSWORD",
    }  # fmt: skip


def test_digests_are_not_secret_and_reveal_nothing(minimal: Deployment) -> None:
    deployment = minimal.named("blog-web-deployment")
    # Unsecreted on purpose (previews keep showing which sites roll): a digest of values of
    # 190+ random bits cannot be reversed (components.pod_inputs).
    assert not _holds_a_secret(deployment.request.object.fields["spec"])
    secret_values = minimal.named("blog-db-secret").inputs["stringData"]["DB_PASSWORD"]
    rendered = repr(deployment.inputs)
    assert secret_values not in rendered and "mock-password" not in rendered


@pytest.mark.parametrize(
    ("change", "which"),
    [
        ({"user": {"name": "blog_app"}}, "secret"),
        ({"database": {"name": "blog_2026"}}, "secret"),
        ({"maxUploadSize": "128Mi"}, "config"),
        ({"php": {"memoryLimit": "128Mi"}}, "config"),
    ],
)
def test_a_changed_start_input_changes_the_pod_template(
    minimal: Deployment, change: dict[str, Any], which: str
) -> None:
    before = dict(zip(("secret", "config"), _digests(minimal), strict=True))
    after = dict(zip(("secret", "config"), _digests(deploy(_with_site(0, **change))), strict=True))
    assert before[which] != after[which]
    other = {"secret": "config", "config": "secret"}[which]
    assert before[other] == after[other]


def test_drupal_settings_reach_the_config_digest(minimal: Deployment) -> None:
    renamed = deploy(_with_site(1, domains=["wiki.example.org", "kb.example.org"]))
    assert _digests(renamed, "wiki")[1] != _digests(minimal, "wiki")[1]  # trusted_host_patterns changed


def test_harmless_rerender_changes_no_digest(minimal: Deployment) -> None:
    assert _digests(deploy(minimal_config())) == _digests(minimal)


def test_old_user_is_dropped_only_after_the_new_pods_are_ready(minimal: Deployment) -> None:
    """The ordering a user rename relies on (README: "Rename a site's database user").

    1. The user is replaced create-before-delete: its provider never asks for delete-before-replace
       and the resource sets no deleteBeforeReplace, so the engine creates the new account and
       defers deleting the old one to the end of the update (Pulumi runs every delete of a
       replaced resource after all creates and updates).
    2. The Secret depends on the user and its grants, the Deployment on the Secret, and the
       Deployment's template changes with the user name (secret digest), so it rolls after the
       new account exists.
    3. pulumi-kubernetes waits for the rollout (no skipAwait): the update of the Deployment ends
       only when the new pods are ready, before the deferred delete runs.
    """
    user = minimal.named("blog-db-user")
    assert user.request.deleteBeforeReplace is False
    diff = UserProvider().diff("blog@%", {"user": "blog", "host": "%"}, {"user": "blog_app", "host": "%"})
    assert diff.replaces == ["user"] and diff.delete_before_replace is False
    assert _depends_on(minimal.named("blog-db-secret"), "blog-db-user")
    deployment = minimal.named("blog-web-deployment")
    assert _depends_on(deployment, "blog-db-secret")
    assert "pulumi.com/skipAwait" not in (deployment.metadata.get("annotations") or {})
    renamed = deploy(_with_site(0, user={"name": "blog_app"}))
    assert _digests(renamed)[0] != _digests(minimal)[0]
