"""``flightdeck restore``: the thin edge that runs a ``restore_plan`` against the cluster.

It reads the site from the stack outputs, asks the cluster whether the site is live and which
backups exist, plans (``flightdeck.restore_plan``, pure), then creates the restores in order,
waits for each to finish and reports. All cluster access goes through ``Cluster``; the real one
uses the ``kubernetes`` client with the stack's kubeconfig, the unit tier a fake.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from flightdeck.api import FlightdeckError, KubeAccess
from flightdeck.restore_plan import (
    MARIADB_API,
    SCHEDULE_LABEL,
    LiveState,
    NamedBackup,
    Outcome,
    RestorePlan,
    RestoreRequest,
    SiteSources,
    VeleroBackup,
    database_outcome,
    plan_restore,
    velero_outcome,
)

WEB_SELECTOR = "app.kubernetes.io/instance={site},app.kubernetes.io/component=web"
SITE_SELECTOR = "app.kubernetes.io/instance={site}"


class Cluster(Protocol):
    """What the restore needs from the API server."""

    def namespace_phase(self, name: str) -> str | None: ...
    def web_deployments(self, namespace: str, site: str) -> dict[str, int]: ...
    def web_pods(self, namespace: str, site: str) -> int: ...
    def cron_jobs(self, namespace: str, site: str) -> dict[str, bool]: ...
    def velero_backups(self, namespace: str, schedule: str) -> list[VeleroBackup]: ...
    def create(self, manifest: Mapping[str, Any]) -> None: ...
    def status(self, manifest: Mapping[str, Any]) -> Mapping[str, Any] | None: ...
    def scale(self, namespace: str, deployment: str, replicas: int) -> None: ...
    def suspend(self, namespace: str, cron_job: str, suspended: bool) -> None: ...


class ClusterError(FlightdeckError):
    """The API server refused or could not be reached (the message names the call, never a secret)."""


class RestoreFailedError(Exception):
    """A restore started and did not finish well; ``report`` says what was done."""

    def __init__(self, message: str, report: RestoreReport) -> None:
        super().__init__(message)
        self.report = report


@dataclass
class StepResult:
    kind: str
    target: str
    outcome: Outcome | str
    detail: str = ""


@dataclass
class RestoreReport:
    plan: RestorePlan
    steps: list[StepResult] = field(default_factory=list)
    dry_run: bool = False

    @property
    def ok(self) -> bool:
        return all(step.outcome == "succeeded" for step in self.steps)

    def to_dict(self) -> dict[str, Any]:
        plan = self.plan
        return {
            "site": plan.site,
            "namespace": plan.namespace,
            "targetNamespace": plan.target_namespace,
            "live": plan.live,
            "veleroBackup": plan.velero_backup,
            "databaseTime": plan.database_time.strftime("%Y-%m-%dT%H:%M:%SZ") if plan.database_time else None,
            "dryRun": self.dry_run,
            "plannedSteps": plan.steps(),
            "objects": [m for m in (plan.database_restore, plan.velero_restore) if m],
            "steps": [
                {"kind": s.kind, "target": s.target, "outcome": s.outcome, "detail": s.detail} for s in self.steps
            ],
            "notes": list(plan.notes),
            "ok": self.ok,
        }


def _parse_time(value: Any) -> datetime | None:
    if not value:
        return None
    return datetime.fromisoformat(str(value).replace("Z", "+00:00")).astimezone(UTC)


def velero_backup_from(item: Mapping[str, Any]) -> VeleroBackup:
    meta, status = item.get("metadata") or {}, item.get("status") or {}
    return VeleroBackup(
        name=str(meta.get("name")),
        phase=str(status.get("phase") or ""),
        schedule=(meta.get("labels") or {}).get(SCHEDULE_LABEL),
        started=_parse_time(status.get("startTimestamp")),
        completed=_parse_time(status.get("completionTimestamp")),
    )


@dataclass
class Runner:
    cluster: Cluster
    timeout: float = 3600.0
    poll: float = 5.0
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    now: Callable[[], datetime] = lambda: datetime.now(UTC)
    on_progress: Callable[[str], None] = lambda _text: None

    def live_state(self, request: RestoreRequest, sources: SiteSources) -> LiveState:
        phase = self.cluster.namespace_phase(sources.namespace)
        deployments = self.cluster.web_deployments(sources.namespace, sources.site) if phase else {}
        target = self.cluster.namespace_phase(request.into) is not None if request.into else False
        return LiveState(namespace_phase=phase, web_deployments=deployments, target_namespace_exists=target)

    def plan(self, request: RestoreRequest, sources: SiteSources) -> RestorePlan:
        state = self.live_state(request, sources)
        backups: list[VeleroBackup] = []
        needs_backups = "files" in request.parts or isinstance(request.choice, NamedBackup)
        if needs_backups and sources.velero_namespace and sources.schedule:
            backups = self.cluster.velero_backups(sources.velero_namespace, sources.schedule)
        return plan_restore(request, sources, state, backups=backups, now=self.now())

    def run(self, request: RestoreRequest, sources: SiteSources, *, dry_run: bool = False) -> RestoreReport:
        plan = self.plan(request, sources)
        report = RestoreReport(plan, dry_run=dry_run)
        if dry_run:
            return report
        try:
            self._execute(plan, report)
        except ClusterError as error:
            report.steps.append(StepResult("cluster", plan.namespace, "failed", str(error)))
            raise RestoreFailedError(f"the restore stopped: {error}", report) from None
        return report

    def _execute(self, plan: RestorePlan, report: RestoreReport) -> None:
        deadline = self.clock() + self.timeout
        stopped: dict[str, int] = {}
        suspended: list[str] = []
        if plan.quiesce:
            stopped, suspended = self._quiesce(plan, report, deadline)
        for manifest, outcome_of in ((plan.database_restore, database_outcome), (plan.velero_restore, velero_outcome)):
            if manifest is None:
                continue
            result = self._create_and_wait(manifest, outcome_of, deadline)
            report.steps.append(result)
            if result.outcome != "succeeded":
                if plan.quiesce and manifest is plan.database_restore:
                    report.steps.append(
                        StepResult(
                            "site",
                            plan.namespace,
                            "failed",
                            "left stopped (web Deployments at 0 replicas, CronJobs suspended) so nobody uses a "
                            "half-restored database; fix the cause and restore again, or bring it back with "
                            "`flightdeck up <stack> --refresh`",
                        )
                    )
                elif plan.quiesce:  # the database is whole again: the site may serve while files are retried
                    self._resume(plan, report, stopped, suspended)
                raise RestoreFailedError(f"{result.kind} {result.target}: {result.detail}", report)
        if plan.quiesce:
            self._resume(plan, report, stopped, suspended)

    def _quiesce(self, plan: RestorePlan, report: RestoreReport, deadline: float) -> tuple[dict[str, int], list[str]]:
        namespace, site = plan.namespace, plan.site
        deployments = self.cluster.web_deployments(namespace, site)
        for name in deployments:
            self.cluster.scale(namespace, name, 0)
        crons = [name for name, is_suspended in self.cluster.cron_jobs(namespace, site).items() if not is_suspended]
        for name in crons:
            self.cluster.suspend(namespace, name, True)
        self.on_progress(
            f"  stopped {', '.join(deployments) or 'no Deployment'}; suspended {', '.join(crons) or 'no CronJob'}"
        )
        while self.cluster.web_pods(namespace, site) > 0:
            if self.clock() >= deadline:
                report.steps.append(StepResult("site", namespace, "failed", "web pods did not stop in time"))
                raise RestoreFailedError(f"the web pods of {site} did not stop before the timeout", report)
            self.sleep(self.poll)
        report.steps.append(StepResult("site", namespace, "succeeded", "web pods stopped, CronJobs suspended"))
        return deployments, crons

    def _resume(self, plan: RestorePlan, report: RestoreReport, stopped: dict[str, int], crons: list[str]) -> None:
        for name, replicas in stopped.items():
            self.cluster.scale(plan.namespace, name, replicas)
        for name in crons:
            self.cluster.suspend(plan.namespace, name, False)
        detail = ", ".join(f"{name} back to {replicas}" for name, replicas in stopped.items())
        report.steps.append(
            StepResult("site", plan.namespace, "succeeded", f"resumed ({detail or 'nothing to scale'})")
        )
        self.on_progress(f"  resumed {detail}")

    def _create_and_wait(
        self,
        manifest: Mapping[str, Any],
        outcome_of: Callable[[Mapping[str, Any] | None], tuple[Outcome, str]],
        deadline: float,
    ) -> StepResult:
        meta = manifest["metadata"]
        kind = "database restore" if manifest["apiVersion"] == MARIADB_API else "velero restore"
        target = f"{meta['namespace']}/{meta['name']}"
        self.cluster.create(manifest)
        self.on_progress(f"  created {manifest['kind']} {target} ({kind})")
        last = ""
        while True:
            outcome, detail = outcome_of(self.cluster.status(manifest))
            if detail != last:
                self.on_progress(f"  {kind} {target}: {detail}")
                last = detail
            if outcome != "pending":
                return StepResult(kind, target, outcome, detail)
            if self.clock() >= deadline:
                return StepResult(kind, target, "timed-out", f"still {detail} after the timeout; it keeps running")
            self.sleep(self.poll)


# -- the real cluster ---------------------------------------------------------------------------


def _plural(manifest: Mapping[str, Any]) -> tuple[str, str, str]:
    group, version = str(manifest["apiVersion"]).split("/", 1)
    return group, version, {"Restore": "restores"}[str(manifest["kind"])]


class KubernetesCluster:
    """``Cluster`` over the ``kubernetes`` client (``kubeconfig``: the content, or None for the ambient one)."""

    def __init__(self, kubeconfig: str | None, context: str | None) -> None:
        import yaml
        from kubernetes import client, config

        if kubeconfig:
            api_client = config.new_client_from_config_dict(  # type: ignore[no-untyped-call]
                yaml.safe_load(kubeconfig), context=context
            )
        else:
            api_client = config.new_client_from_config(context=context)  # type: ignore[no-untyped-call]
        self._client = client
        self.core = client.CoreV1Api(api_client)
        self.apps = client.AppsV1Api(api_client)
        self.batch = client.BatchV1Api(api_client)
        self.custom = client.CustomObjectsApi(api_client)

    def _missing(self, error: Exception) -> bool:
        return isinstance(error, self._client.ApiException) and error.status == 404

    def _call(self, what: str, call: Callable[[], Any]) -> Any:
        try:
            return call()
        except self._client.ApiException as error:
            raise ClusterError(f"{what}: {error.status} {error.reason}") from None
        except OSError as error:  # unreachable API server (urllib3 errors derive from OSError)
            raise ClusterError(f"{what}: {error}") from None

    def namespace_phase(self, name: str) -> str | None:
        try:
            namespace = self.core.read_namespace(name)
        except self._client.ApiException as error:
            if error.status == 404:
                return None
            raise ClusterError(f"read namespace {name}: {error.status} {error.reason}") from None
        return str((namespace.status.phase if namespace.status else None) or "Active")

    def web_deployments(self, namespace: str, site: str) -> dict[str, int]:
        listed = self._call(
            f"list Deployments in {namespace}",
            lambda: self.apps.list_namespaced_deployment(namespace, label_selector=WEB_SELECTOR.format(site=site)),
        )
        return {d.metadata.name: int(d.spec.replicas or 0) for d in listed.items}

    def web_pods(self, namespace: str, site: str) -> int:
        listed = self._call(
            f"list pods in {namespace}",
            lambda: self.core.list_namespaced_pod(namespace, label_selector=WEB_SELECTOR.format(site=site)),
        )
        return len(listed.items)

    def cron_jobs(self, namespace: str, site: str) -> dict[str, bool]:
        listed = self._call(
            f"list CronJobs in {namespace}",
            lambda: self.batch.list_namespaced_cron_job(namespace, label_selector=SITE_SELECTOR.format(site=site)),
        )
        return {c.metadata.name: bool(c.spec.suspend) for c in listed.items}

    def velero_backups(self, namespace: str, schedule: str) -> list[VeleroBackup]:
        listed = self._call(
            f"list Velero backups in {namespace}",
            lambda: self.custom.list_namespaced_custom_object(
                "velero.io", "v1", namespace, "backups", label_selector=f"{SCHEDULE_LABEL}={schedule}"
            ),
        )
        return [velero_backup_from(item) for item in listed.get("items", [])]

    def create(self, manifest: Mapping[str, Any]) -> None:
        group, version, plural = _plural(manifest)
        meta = manifest["metadata"]
        self._call(
            f"create {manifest['kind']} {meta['namespace']}/{meta['name']}",
            lambda: self.custom.create_namespaced_custom_object(
                group, version, meta["namespace"], plural, dict(manifest)
            ),
        )

    def status(self, manifest: Mapping[str, Any]) -> Mapping[str, Any] | None:
        group, version, plural = _plural(manifest)
        meta = manifest["metadata"]
        found = self._call(
            f"read {manifest['kind']} {meta['namespace']}/{meta['name']}",
            lambda: self.custom.get_namespaced_custom_object(group, version, meta["namespace"], plural, meta["name"]),
        )
        status = found.get("status") if isinstance(found, Mapping) else None
        return status if isinstance(status, Mapping) else None

    def scale(self, namespace: str, deployment: str, replicas: int) -> None:
        self._call(
            f"scale Deployment {namespace}/{deployment}",
            lambda: self.apps.patch_namespaced_deployment_scale(
                deployment, namespace, {"spec": {"replicas": replicas}}
            ),
        )

    def suspend(self, namespace: str, cron_job: str, suspended: bool) -> None:
        self._call(
            f"suspend CronJob {namespace}/{cron_job}",
            lambda: self.batch.patch_namespaced_cron_job(cron_job, namespace, {"spec": {"suspend": suspended}}),
        )


def connect(access: KubeAccess) -> Cluster:
    """The cluster of a stack (the CLI's seam: tests replace it with a fake)."""
    return KubernetesCluster(access.kubeconfig, access.context)
