"""The mariadb-operator stand-in's decision: when a MariaDB resource may be reported Ready."""

from __future__ import annotations

from typing import Any

import pytest

from tools.mariadb_standin import (
    OBJECTS_ANNOTATION,
    PASSWORD_ANNOTATION,
    READY_ANNOTATION,
    decide,
    password_digest,
    port_forward_object,
)

DIGEST = password_digest("root-password")


def mariadb(generation: int = 3, replicas: int = 2, **annotations: str) -> dict[str, Any]:
    return {
        "metadata": {"name": "mariadb", "namespace": "mariadb", "generation": generation, "annotations": annotations},
        "spec": {"replicas": replicas, "rootPasswordSecretKeyRef": {"name": "mariadb-root", "key": "password"}},
    }


def statefulset(
    replicas: int = 2, ready: int = 2, updated: int = 2, generation: int = 4, observed: int = 4
) -> dict[str, Any]:
    return {
        "metadata": {"generation": generation},
        "spec": {"replicas": replicas},
        "status": {"readyReplicas": ready, "updatedReplicas": updated, "observedGeneration": observed},
    }


def test_applies_once_kwok_made_the_objects_of_this_generation_and_the_servers_are_ready() -> None:
    assert decide(mariadb(**{OBJECTS_ANNOTATION: "3"}), statefulset(), DIGEST).action == "apply"


def test_done_when_this_generation_and_password_were_already_reported() -> None:
    done = mariadb(**{OBJECTS_ANNOTATION: "3", READY_ANNOTATION: "3", PASSWORD_ANNOTATION: DIGEST})
    assert decide(done, statefulset(), DIGEST).action == "done"


def test_a_changed_root_secret_is_applied_again() -> None:
    stale = mariadb(**{OBJECTS_ANNOTATION: "3", READY_ANNOTATION: "3", PASSWORD_ANNOTATION: password_digest("old")})
    assert decide(stale, statefulset(), DIGEST).action == "apply"


@pytest.mark.parametrize(
    ("resource", "sts", "digest", "reason"),
    [
        (mariadb(), statefulset(), DIGEST, "has not created the objects"),
        (mariadb(**{OBJECTS_ANNOTATION: "2"}), statefulset(), DIGEST, "generation 3"),
        (mariadb(**{OBJECTS_ANNOTATION: "3"}), None, DIGEST, "no StatefulSet"),
        (mariadb(replicas=3, **{OBJECTS_ANNOTATION: "3"}), statefulset(), DIGEST, "want 3"),
        (mariadb(**{OBJECTS_ANNOTATION: "3"}), statefulset(observed=3), DIGEST, "not observed"),
        (mariadb(**{OBJECTS_ANNOTATION: "3"}), statefulset(ready=1), DIGEST, "1/2 servers ready"),
        (mariadb(**{OBJECTS_ANNOTATION: "3"}), statefulset(updated=1), DIGEST, "servers ready"),
        (mariadb(**{OBJECTS_ANNOTATION: "3"}), statefulset(), None, "Secret missing"),
    ],
)
def test_waits_until_everything_the_operator_would_wait_for_is_there(
    resource: dict[str, Any], sts: dict[str, Any] | None, digest: str | None, reason: str
) -> None:
    decision = decide(resource, sts, digest)
    assert decision.action == "wait"
    assert reason in decision.reason


def test_a_resource_being_deleted_is_never_reported_ready() -> None:
    resource = mariadb(**{OBJECTS_ANNOTATION: "3"})
    resource["metadata"]["deletionTimestamp"] = "2026-12-01T00:00:00Z"
    assert decide(resource, statefulset(), DIGEST).action == "wait"


def test_the_digest_never_contains_the_password() -> None:
    assert "root-password" not in DIGEST
    assert password_digest("a") != password_digest("b")


def test_port_forward_sends_the_namespace_pods_mysql_port_to_the_local_server() -> None:
    body = port_forward_object("mariadb", 41234)
    assert body["kind"] == "ClusterPortForward"
    assert body["spec"]["selector"] == {"matchNamespaces": ["mariadb"]}
    assert body["spec"]["forwards"] == [{"ports": [3306], "target": {"address": "127.0.0.1", "port": 41234}}]
