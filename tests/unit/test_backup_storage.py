"""Database dumps go to S3 over TLS unless a stack opts out, and the restore command finds each
site's backups in the stack outputs."""

from __future__ import annotations

from typing import Any

import pytest

from components.config import ConfigError, validate_stack_config
from tests.unit.harness import Deployment, deploy, minimal_config, stack_file_config

S3 = {"bucket": "flightdeck-db", "endpoint": "rgw.example.org:8443", "credentialsSecret": "db-backup-s3"}


@pytest.fixture(scope="module")
def prod() -> Deployment:
    import asyncio

    asyncio.set_event_loop(asyncio.new_event_loop())
    return deploy(stack_file_config("prod"), stack="prod")


def _with_s3(**s3: Any) -> dict[str, Any]:
    return minimal_config(backups={"databaseBackups": {"storage": {"s3": {**S3, **s3}}}})


def test_dumps_use_tls_by_default(prod: Deployment) -> None:
    storage = prod.named("shop-backups-database").spec["storage"]
    assert storage["s3"]["tls"] == {"enabled": True}
    assert storage["s3"]["endpoint"] == "rgw.storage.example.org"


def test_a_private_ca_can_be_named() -> None:
    spec = deploy(_with_s3(tls={"caSecret": "internal-ca"})).named("blog-backups-database").spec
    assert spec["storage"]["s3"]["tls"] == {"enabled": True, "caSecretKeyRef": {"name": "internal-ca", "key": "ca.crt"}}


def test_plain_http_is_an_explicit_opt_out() -> None:
    spec = deploy(_with_s3(tls={"enabled": False})).named("blog-backups-database").spec
    assert spec["storage"]["s3"]["tls"] == {"enabled": False}


@pytest.mark.parametrize(
    ("s3", "path", "fragment"),
    [
        (
            {"tls": {"enabled": False, "caSecret": "ca"}},
            "backups.databaseBackups.storage.s3.tls.caSecret",
            "tls.enabled",
        ),
        ({"endpoint": "https://rgw.example.org"}, "backups.databaseBackups.storage.s3.endpoint", "pattern"),
    ],
)
def test_bad_s3_config_names_the_key(s3: dict[str, Any], path: str, fragment: str) -> None:
    with pytest.raises(ConfigError) as caught:
        validate_stack_config(_with_s3(**s3))
    problems = {p.path: p.reason for p in caught.value.problems}
    assert path in problems and fragment in problems[path], problems


def test_outputs_name_every_sites_backups_for_restores(prod: Deployment) -> None:
    outputs = prod.outputs
    assert outputs["sites"]["shop"]["backupSources"] == {
        "velero": {"namespace": "velero", "schedule": "site-shop"},
        "database": {"namespace": "mariadb", "backup": "site-shop", "mariadb": "mariadb"},
    }
    config = minimal_config()
    config["sites"][0]["backup"] = {"database": False}
    assert deploy(config).outputs["sites"]["blog"]["backupSources"]["database"] is None
