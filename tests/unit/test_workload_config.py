"""Config of the site workloads: defaults, and every bad value named at its field."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from components.config import ConfigError, plan_cron, validate_stack_config
from tests.unit.harness import minimal_config

DIGEST = "@sha256:" + "0" * 64


def _site(index: int, **changes: Any) -> dict[str, Any]:
    config = copy.deepcopy(minimal_config())
    config["sites"][index].update(changes)
    return config


def _certificates(**changes: Any) -> dict[str, Any]:
    return minimal_config(certificates={"acmeEmail": "ops@example.org", **changes})


BAD_CONFIGS: list[tuple[str, dict[str, Any], str, str]] = [
    ("untagged image", _site(0, image="wordpress"), "sites[0].image", "names no tag or digest"),
    ("image with bad tag", _site(0, image="wordpress:-x"), "sites[0].image", "tag '-x'"),
    ("short digest", _site(0, image="wordpress@sha256:abcd"), "sites[0].image", "64 hex digits"),
    ("unknown digest algorithm", _site(0, image="wordpress@md5:" + "a" * 32), "sites[0].image", "sha256, sha512"),
    ("uppercase repository", _site(0, image="Acme/WP:1"), "sites[0].image", "lowercase"),
    ("drupal image on wordpress", _site(0, image="drupal:11.4-php8.5-apache"), "sites[0].image", "cms is wordpress"),
    ("fpm variant", _site(0, image="wordpress:7.1-php8.3-fpm"), "sites[0].image", "apache tag"),
    ("cli variant", _site(0, image="wordpress:cli"), "sites[0].image", "apache tag"),
    ("fpm alpine drupal", _site(1, image="drupal:11-fpm-alpine" + DIGEST), "sites[1].image", "apache tag"),
    ("bad mysql image", minimal_config(mysql={"mode": "operator", "image": "mariadb"}), "mysql.image", "no tag"),
    ("upload too small", _site(0, maxUploadSize="512Ki"), "sites[0].maxUploadSize", "outside 1Mi..2Gi"),
    ("upload too big", _site(0, maxUploadSize="3Gi"), "sites[0].maxUploadSize", "outside 1Mi..2Gi"),
    ("upload not a quantity", _site(0, maxUploadSize="64 megs"), "sites[0].maxUploadSize", "quantity"),
    ("php memory tiny", _site(0, php={"memoryLimit": "32Mi"}), "sites[0].php.memoryLimit", "below 64Mi"),
    (
        "php memory above the pod",
        _site(0, php={"memoryLimit": "1Gi"}),
        "sites[0].php.memoryLimit",
        "more than the pod's memory limit 512Mi",
    ),
    ("php unknown key", _site(0, php={"maxExecutionTime": 30}), "sites[0].php.maxExecutionTime", "unknown key"),
    ("salt env", _site(0, env={"WORDPRESS_AUTH_KEY": "x"}), "sites[0].env.WORDPRESS_AUTH_KEY", "reserved"),
    ("wp db env", _site(0, env={"WORDPRESS_DB_HOST": "x"}), "sites[0].env.WORDPRESS_DB_HOST", "reserved"),
    ("drupal salt env", _site(1, env={"DRUPAL_HASH_SALT": "x"}), "sites[1].env.DRUPAL_HASH_SALT", "reserved"),
    ("flightdeck env", _site(1, env={"FLIGHTDECK_SITE_HOST": "x"}), "sites[1].env.FLIGHTDECK_SITE_HOST", "reserved"),
    ("salts version zero", _site(0, saltsVersion=0), "sites[0].saltsVersion", "greater than or equal to 1"),
    ("cron period", _site(0, cron={"everyMinutes": 10}), "sites[0].cron.everyMinutes", "5, 15, 30 or 60"),
    ("proxy everyone", _certificates(ingressControllerAddresses=["0.0.0.0/0"]), "certificates", "trust every"),
    ("proxy not an ip", _certificates(ingressControllerAddresses=["ingress"]), "certificates", "CIDR"),
    ("proxy host bits", _certificates(ingressControllerAddresses=["10.0.0.1/8"]), "certificates", "CIDR"),
    ("no proxies", _certificates(ingressControllerAddresses=[]), "certificates.ingressControllerAddresses", "at least"),
]


@pytest.mark.parametrize(("case", "config", "path", "reason"), BAD_CONFIGS, ids=[c[0] for c in BAD_CONFIGS])
def test_bad_workload_config_names_its_field(case: str, config: dict[str, Any], path: str, reason: str) -> None:
    with pytest.raises(ConfigError) as caught:
        validate_stack_config(config, stack="prod")
    matching = [str(p) for p in caught.value.problems if p.path.startswith(path)]
    assert matching, f"no problem at {path!r} in:\n{caught.value}"
    assert any(reason in line for line in matching), f"{reason!r} not in {matching}"


def test_workload_defaults() -> None:
    config = validate_stack_config(minimal_config())
    site = config.sites[0]
    assert site.max_upload_size == "64Mi" and site.php.memory_limit == "256Mi"
    assert site.cron.enabled and site.cron.every_minutes == 15
    assert not site.suspended and site.salts_version == 1
    assert "10.0.0.0/8" in config.certificates.ingress_controller_addresses


def test_images_may_be_pinned_by_digest_or_come_from_any_registry() -> None:
    for image in (
        "wordpress:7.1-php8.3-apache" + DIGEST,
        "wordpress" + DIGEST,
        "registry.example.org:5000/acme/wordpress-custom:2026.11",
        "docker.io/library/wordpress:7-apache",
    ):
        assert validate_stack_config(_site(0, image=image)).sites[0].image == image


def test_memory_limit_may_equal_the_pod_limit() -> None:
    config = _site(0, php={"memoryLimit": "1Gi"}, resources={"limits": {"memory": "1Gi"}})
    assert validate_stack_config(config).sites[0].php.memory_limit == "1Gi"


def test_own_wordpress_config_extra_is_allowed() -> None:
    config = _site(0, env={"WORDPRESS_CONFIG_EXTRA": "define('WP_POST_REVISIONS', 5);"})
    assert validate_stack_config(config).sites[0].env


def test_cron_plan_covers_enabled_sites_and_keeps_suspended_ones() -> None:
    config = minimal_config()
    config["sites"][0]["suspended"] = True
    config["sites"][1]["cron"] = {"enabled": False}
    assert set(plan_cron(validate_stack_config(config))) == {"blog"}
