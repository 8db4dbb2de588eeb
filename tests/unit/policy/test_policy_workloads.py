"""Resource rules over pods: the real site Deployments pass; each violating variant is named."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from pulumi_policy.proxy import UNKNOWN_STRING_VALUE, UnknownValueError

from tests.unit.policy.policy_args import Resource, Resources, policies, run_resource

WORKLOAD_RULES = [
    "no-privileged-containers",
    "no-root-containers",
    "no-privilege-escalation",
    "no-host-namespaces",
    "no-host-path-volumes",
    "pinned-images",
]
Mutation = Callable[[dict[str, Any]], None]
DEPLOYMENT = "kubernetes:apps/v1:Deployment"
CRON_JOB = "kubernetes:batch/v1:CronJob"


@pytest.fixture
def blog(stack: Callable[[str], Resources]) -> Resource:
    return stack("local").named("blog-web-deployment")


def pod(resource: Resource) -> dict[str, Any]:
    return resource.props["spec"]["template"]["spec"]


def container(resource: Resource) -> dict[str, Any]:
    return pod(resource)["containers"][0]


def messages(rule: str, resource: Resource) -> list[str]:
    return [v.message for v in run_resource(policies()[rule], resource)]


@pytest.mark.parametrize("rule", WORKLOAD_RULES)
@pytest.mark.parametrize("stack_name", ["local", "staging", "prod"])
def test_every_real_workload_passes(stack: Callable[[str], Resources], stack_name: str, rule: str) -> None:
    resources = stack(stack_name)
    deployments, cron_jobs = resources.of_type(DEPLOYMENT), resources.of_type(CRON_JOB)
    assert deployments and len(cron_jobs) == len(deployments)  # every site runs its cron from the cluster
    for resource in [*deployments, *cron_jobs, *resources.of_type("kubernetes:k8s.mariadb.com/v1alpha1:MariaDB")]:
        assert messages(rule, resource) == [], resource.name


def _set(path: str, value: Any) -> Mutation:
    """Set ``a.b.c`` under the first container (``c.``) or the pod spec (``p.``)."""

    def mutate(pod_spec: dict[str, Any]) -> None:
        scope, *keys = path.split(".")
        target = pod_spec["containers"][0] if scope == "c" else pod_spec
        for key in keys[:-1]:
            target = target.setdefault(key, {})
        if value is None:
            target.pop(keys[-1], None)
        else:
            target[keys[-1]] = value

    return mutate


def _add_init_container(**security: Any) -> Mutation:
    def mutate(pod_spec: dict[str, Any]) -> None:
        pod_spec["initContainers"] = [{"name": "setup", "image": "busybox:1.37", "securityContext": security}]

    return mutate


def _add_volume(volume: dict[str, Any]) -> Mutation:
    def mutate(pod_spec: dict[str, Any]) -> None:
        pod_spec["volumes"].append(volume)

    return mutate


VIOLATIONS: list[tuple[str, Mutation, str]] = [
    ("no-privileged-containers", _set("c.securityContext.privileged", True), "container 'wordpress' runs privileged"),
    (
        "no-privileged-containers",
        _set("c.securityContext.capabilities.add", ["NET_BIND_SERVICE", "CAP_SYS_ADMIN"]),
        "container 'wordpress' adds capability SYS_ADMIN",
    ),
    (
        "no-privileged-containers",
        _add_init_container(privileged=True),
        "container 'setup' runs privileged",
    ),
    ("no-root-containers", _set("c.securityContext.runAsUser", 0), "container 'wordpress' runs as root (runAsUser: 0)"),
    (
        "no-root-containers",
        lambda p: [_set("c.securityContext.runAsUser", None)(p), _set("p.securityContext.runAsUser", 0)(p)],
        "container 'wordpress' runs as root",
    ),
    (
        "no-root-containers",
        lambda p: [
            _set(f"{scope}.securityContext.{key}", None)(p) for scope in "cp" for key in ("runAsUser", "runAsNonRoot")
        ],
        "container 'wordpress' may run as root: neither runAsNonRoot: true nor a non-zero runAsUser",
    ),
    (
        "no-root-containers",
        _add_init_container(allowPrivilegeEscalation=False, runAsNonRoot=False, runAsUser=0),
        "container 'setup' runs as root",
    ),
    (
        "no-privilege-escalation",
        _set("c.securityContext.allowPrivilegeEscalation", True),
        "container 'wordpress' allows privilege escalation",
    ),
    (
        "no-privilege-escalation",
        _set("c.securityContext.allowPrivilegeEscalation", None),
        "container 'wordpress' does not set allowPrivilegeEscalation: false",
    ),
    ("no-host-namespaces", _set("p.hostNetwork", True), "the pod shares the node's network namespace"),
    ("no-host-namespaces", _set("p.hostPID", True), "the pod shares the node's process namespace (hostPID: true)"),
    ("no-host-namespaces", _set("p.hostIPC", True), "the pod shares the node's IPC namespace (hostIPC: true)"),
    (
        "no-host-namespaces",
        _set("c.ports", [{"name": "http", "containerPort": 80, "hostPort": 8080}]),
        "container 'wordpress' binds host port 8080",
    ),
    (
        "no-host-path-volumes",
        _add_volume({"name": "docker", "hostPath": {"path": "/var/run/docker.sock"}}),
        "volume 'docker' mounts the node's path /var/run/docker.sock (hostPath)",
    ),
    ("pinned-images", _set("c.image", "wordpress:latest"), "container 'wordpress' has image 'wordpress:latest'"),
    ("pinned-images", _set("c.image", "wordpress"), "container 'wordpress' has untagged image 'wordpress'"),
    ("pinned-images", _add_init_container(), ""),  # a pinned init container is fine: checked below
]


@pytest.mark.parametrize(("rule", "mutate", "expected"), VIOLATIONS)
def test_each_violation_is_reported_naming_the_resource(
    blog: Resource, rule: str, mutate: Mutation, expected: str
) -> None:
    mutate(pod(blog))
    found = messages(rule, blog)
    if not expected:
        assert found == []
        return
    assert len(found) == 1, found
    assert found[0].startswith("Deployment blog/blog (resource 'blog-web-deployment'): "), found[0]
    assert expected in found[0]


def test_other_rules_ignore_a_violation_that_is_not_theirs(blog: Resource) -> None:
    _set("c.image", "wordpress:latest")(pod(blog))
    assert [rule for rule in WORKLOAD_RULES if messages(rule, blog)] == ["pinned-images"]


def test_every_pod_bearing_kind_is_checked(blog: Resource) -> None:
    template = blog.props["spec"]["template"]
    template["spec"]["containers"][0]["securityContext"]["privileged"] = True
    shapes = {
        "kubernetes:core/v1:Pod": {"metadata": {"name": "p", "namespace": "blog"}, "spec": template["spec"]},
        "kubernetes:apps/v1:StatefulSet": {"metadata": {"name": "s"}, "spec": {"template": template}},
        "kubernetes:apps/v1:DaemonSet": {"metadata": {"name": "d"}, "spec": {"template": template}},
        "kubernetes:batch/v1:Job": {"metadata": {"name": "j"}, "spec": {"template": template}},
        "kubernetes:batch/v1:CronJob": {
            "metadata": {"name": "c"},
            "spec": {"schedule": "@daily", "jobTemplate": {"spec": {"template": template}}},
        },
        "kubernetes:core/v1:PodTemplate": {"metadata": {"name": "t"}, "template": template},
    }
    for resource_type, props in shapes.items():
        resource = Resource(resource_type, f"x-{resource_type}", f"urn:x::{resource_type}", props, blog.opts)
        found = messages("no-privileged-containers", resource)
        assert len(found) == 1 and "container 'wordpress' runs privileged" in found[0], resource_type


def test_a_resource_without_pods_is_not_judged(stack: Callable[[str], Resources]) -> None:
    service = stack("local").named("blog-web-service")
    for rule in WORKLOAD_RULES:
        assert messages(rule, service) == []


def test_the_mariadb_image_is_checked(stack: Callable[[str], Resources]) -> None:
    mariadb = stack("prod").named("flightdeck-mysql-mariadb")
    mariadb.props["spec"]["image"] = "mariadb:latest"
    found = messages("pinned-images", mariadb)
    assert found == [
        "MariaDB mariadb/mariadb (resource 'flightdeck-mysql-mariadb'): spec.image has image 'mariadb:latest': "
        "the mutable :latest tag changes under a running Deployment"
    ]
    del mariadb.props["spec"]["image"]  # the operator's default image, pinned by the operator version
    assert messages("pinned-images", mariadb) == []


def test_an_image_unknown_during_preview_defers_to_pulumi_policy(blog: Resource) -> None:
    container(blog)["image"] = UNKNOWN_STRING_VALUE
    with pytest.raises(UnknownValueError) as deferred:
        messages("pinned-images", blog)
    # pulumi-policy turns this into an advisory "can't run policy ... during preview: <message>".
    assert (
        deferred.value.message
        == "string value at .spec.template.spec.containers[0].image can't be known during preview"
    )
    # What is known is still judged: a second, unpinned container is reported, not deferred.
    pod(blog)["containers"].append({"name": "sidecar", "image": "busybox"})
    found = messages("pinned-images", blog)
    assert len(found) == 1 and "container 'sidecar' has untagged image 'busybox'" in found[0]


def cron_pod(resource: Resource) -> dict[str, Any]:
    spec: dict[str, Any] = resource.props["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    return spec


def test_the_cron_pods_are_restricted_like_the_web_pods(stack: Callable[[str], Resources]) -> None:
    """Both CMSes' cron pods (WordPress: curl; Drupal: PHP with an init container) are judged."""
    local = stack("local")
    for name, containers in {"blog-web-cron": ["cron"], "wiki-web-cron": ["prepare-volume", "cron"]}.items():
        job = local.named(name)
        spec = cron_pod(job)
        assert [c["name"] for c in (*spec.get("initContainers", []), *spec["containers"])] == containers
        assert spec["securityContext"]["runAsNonRoot"] is True and "sysctls" not in spec["securityContext"]
        for rule in WORKLOAD_RULES:
            assert messages(rule, job) == [], (name, rule)
    # The Drupal cron's init container is judged as well.
    job = local.named("wiki-web-cron")
    cron_pod(job)["initContainers"][0]["securityContext"]["runAsUser"] = 0
    assert messages("no-root-containers", job) == [
        "CronJob wiki/wiki-cron (resource 'wiki-web-cron'): container 'prepare-volume' runs as root (runAsUser: 0)"
    ]


@pytest.mark.parametrize(("rule", "mutate", "expected"), [
    ("no-root-containers", _set("c.securityContext.runAsUser", 0), "container 'cron' runs as root (runAsUser: 0)"),
    ("no-privilege-escalation", _set("c.securityContext.allowPrivilegeEscalation", None),
     "container 'cron' does not set allowPrivilegeEscalation: false"),
    ("no-privileged-containers", _set("c.securityContext.capabilities.add", ["NET_ADMIN"]),
     "container 'cron' adds capability NET_ADMIN"),
    ("no-host-namespaces", _set("p.hostNetwork", True), "the pod shares the node's network namespace"),
    ("pinned-images", _set("c.image", "drupal"), "container 'cron' has untagged image 'drupal'"),
])  # fmt: skip
def test_a_violating_cron_pod_is_named(
    stack: Callable[[str], Resources], rule: str, mutate: Mutation, expected: str
) -> None:
    job = stack("local").named("wiki-web-cron")
    mutate(cron_pod(job))
    (found,) = messages(rule, job)
    assert found.startswith("CronJob wiki/wiki-cron (resource 'wiki-web-cron'): ") and expected in found, found
