"""Planning a one-site restore: which backups, which objects, in which order. Pure.

``flightdeck restore <site> --stack S [--from BACKUP|TIME] [--into NAMESPACE] [--force]`` restores
one site from the backups flightdeck schedules for it and touches nothing else:

* **Files and objects**: a Velero ``Restore`` of the site's namespace alone
  (``includedNamespaces: [<ns>]``) from one of the site's own backups (the ``velero.io/schedule-name``
  label must name the site's Schedule), optionally into a new namespace (``namespaceMapping``).
* **Database**: a mariadb-operator ``Restore`` from the site's own ``Backup``, which dumps that
  database alone, with ``database: <db>`` so even a dump of several databases would replay only
  this one (``mariadb --one-database``, mariadb-operator v26.6 pkg/command/backup.go).

Order and safety, each a rule below with its reason:

* A *live* site (its namespace and web Deployment exist) is overwritten only with ``--force``
  (``refusal``). Then its web pods and cron jobs are stopped while the database is replaced:
  the dump drops and recreates each table, and a WordPress that finds no options table offers its
  installer to whoever asks first (``RestorePlan.quiesce``).
* The database goes back before the files: pods that Velero recreates must not start against a
  database that is still being replayed.
* ``existingResourcePolicy``: ``none`` (Velero's default, objects that exist are left as they are)
  unless ``--force`` overwrites a live site, then ``update``. Velero fills a volume only through
  pods it creates itself (Velero v1.18 pkg/restore/restore.go starts pod volume restores for
  created pods only), so the contents of a files claim that still exists are not rolled back; the
  plan says so, and ``--into`` restores them beside the site.
* ``--into`` restores files and objects only: the operator's Restore has no target-database option
  and replays into the database it dumped, the live one. The copy gets no Ingress, Certificate or
  CronJob (it must not take the live site's host names, order certificates or run jobs), and its
  pods cannot reach the database: the database side admits only the live namespace.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

VELERO_API = "velero.io/v1"
MARIADB_API = "k8s.mariadb.com/v1alpha1"
SCHEDULE_LABEL = "velero.io/schedule-name"
RESTORE_LABEL = "flightdeck.io/restore"
PARTS = ("files", "database")
# Never restored: cert-manager's in-flight ACME state is recreated from the Certificate.
ALWAYS_EXCLUDED = (
    "certificaterequests.cert-manager.io",
    "orders.acme.cert-manager.io",
    "challenges.acme.cert-manager.io",
)
# Not restored into a copy beside the live site (it would take the live host names or act).
COPY_EXCLUDED = ("ingresses.networking.k8s.io", "certificates.cert-manager.io", "cronjobs.batch")
_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")
_NAMESPACE = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")


class RestoreError(Exception):
    """A restore that cannot or must not be done (bad arguments, refusal): nothing was changed."""


# -- inputs ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SiteSources:
    """Where one deployed site and its backups are, from the stack outputs."""

    site: str
    namespace: str
    database: str
    velero_namespace: str | None = None
    schedule: str | None = None
    database_namespace: str | None = None
    database_backup: str | None = None
    mariadb: str | None = None


def site_sources(sites_output: Any, site: str) -> SiteSources:
    """The site's entry in the ``sites`` stack output (``Platform._site_summary``)."""
    if not isinstance(sites_output, Mapping) or not sites_output:
        raise RestoreError("the stack has no `sites` output: deploy it first (flightdeck up)")
    entry = sites_output.get(site)
    if not isinstance(entry, Mapping):
        known = ", ".join(sorted(str(name) for name in sites_output)) or "none"
        raise RestoreError(f"no site {site!r} in the deployed stack (sites: {known})")
    sources = entry.get("backupSources")
    if not isinstance(sources, Mapping):
        raise RestoreError(f"the stack outputs of {site!r} name no backups: run `flightdeck up` once with this version")
    velero = sources.get("velero") or {}
    database = sources.get("database") or {}
    return SiteSources(
        site=site,
        namespace=str(entry["namespace"]),
        database=str(entry["database"]),
        velero_namespace=velero.get("namespace"),
        schedule=velero.get("schedule"),
        database_namespace=database.get("namespace"),
        database_backup=database.get("backup"),
        mariadb=database.get("mariadb"),
    )


@dataclass(frozen=True)
class Latest:
    """The newest successful backup of each part."""


@dataclass(frozen=True)
class NamedBackup:
    name: str


@dataclass(frozen=True)
class PointInTime:
    at: datetime  # aware, UTC


BackupChoice = Latest | NamedBackup | PointInTime


def parse_from(text: str | None) -> BackupChoice:
    """``--from``: nothing (latest), an RFC 3339 time with its offset, or a Velero backup name."""
    if text is None or not text.strip():
        return Latest()
    text = text.strip()
    if re.match(r"^\d{4}-\d{2}-\d{2}", text):
        try:
            at = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
        except ValueError:
            raise RestoreError(f"--from {text!r} is not a time such as 2026-11-30T02:00:00Z") from None
        if at.tzinfo is None:
            raise RestoreError(f"--from {text!r} has no UTC offset: write it as 2026-11-30T02:00:00Z or +01:00")
        return PointInTime(at.astimezone(UTC))
    if not _NAME.match(text):
        raise RestoreError(f"--from {text!r} is neither a backup name nor a time such as 2026-11-30T02:00:00Z")
    return NamedBackup(text)


@dataclass(frozen=True)
class VeleroBackup:
    name: str
    phase: str
    schedule: str | None
    started: datetime | None
    completed: datetime | None


def choose_backup(backups: Iterable[VeleroBackup], choice: BackupChoice, schedule: str) -> VeleroBackup:
    """The site's Velero backup to restore from; only backups of the site's own Schedule qualify."""
    own = [b for b in backups if b.schedule == schedule]
    if isinstance(choice, NamedBackup):
        named = next((b for b in own if b.name == choice.name), None)
        if named is None:
            raise RestoreError(f"no backup {choice.name!r} of schedule {schedule!r} (another site's, or gone)")
        if named.phase not in ("Completed", "PartiallyFailed"):
            raise RestoreError(f"backup {choice.name!r} is {named.phase or 'not finished'}, not Completed")
        return named
    done = [b for b in own if b.phase == "Completed" and b.started is not None]
    if isinstance(choice, PointInTime):
        done = [b for b in done if b.started is not None and b.started <= choice.at]
    if not done:
        when = f" taken at or before {_iso(choice.at)}" if isinstance(choice, PointInTime) else ""
        raise RestoreError(f"no completed backup of schedule {schedule!r}{when}")
    return max(done, key=lambda b: (b.started, b.name))


def database_time(choice: BackupChoice, files_backup: VeleroBackup | None) -> datetime | None:
    """The mariadb-operator ``targetRecoveryTime``: it picks the dump "closest to, but not after"
    that time (pkg/backup/processor.go ``GetBackupTargetFile``); none means the newest dump."""
    if isinstance(choice, PointInTime):
        return choice.at
    if isinstance(choice, NamedBackup) and files_backup is not None:
        return files_backup.completed or files_backup.started
    return None


@dataclass(frozen=True)
class LiveState:
    """What the cluster says about the site before anything is changed."""

    namespace_phase: str | None  # None: the namespace does not exist
    web_deployments: Mapping[str, int] = field(default_factory=dict)  # name -> spec.replicas
    target_namespace_exists: bool = False  # --into

    @property
    def live(self) -> bool:
        return self.namespace_phase is not None and bool(self.web_deployments)


@dataclass(frozen=True)
class RestoreRequest:
    site: str
    choice: BackupChoice = field(default_factory=Latest)
    into: str | None = None
    force: bool = False
    parts: tuple[str, ...] = PARTS

    def __post_init__(self) -> None:
        if self.into is not None and not _NAMESPACE.match(self.into):
            raise RestoreError(f"--into {self.into!r} is not a namespace name (lowercase letters, digits, '-')")
        unknown = [p for p in self.parts if p not in PARTS]
        if unknown or not self.parts:
            raise RestoreError(f"--only takes {' or '.join(PARTS)}")


# -- the plan -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RestorePlan:
    site: str
    namespace: str
    target_namespace: str
    live: bool
    velero_backup: str | None
    database_time: datetime | None
    database_restore: dict[str, Any] | None
    velero_restore: dict[str, Any] | None
    quiesce: bool  # stop the web pods and cron jobs while the database is replaced
    notes: tuple[str, ...] = ()

    def steps(self) -> list[str]:
        steps = []
        if self.quiesce:
            steps.append(f"scale the web Deployment(s) of {self.site} to 0 and suspend its CronJobs")
        if self.database_restore:
            steps.append(
                f"restore database {self.database_restore['spec']['database']} ({_object_ref(self.database_restore)})"
            )
        if self.velero_restore:
            where = f" into {self.target_namespace}" if self.target_namespace != self.namespace else ""
            source = f"from {self.velero_backup} ({_object_ref(self.velero_restore)})"
            steps.append(f"restore namespace {self.namespace}{where} {source}")
        if self.quiesce:
            steps.append("scale the web Deployment(s) back and resume the CronJobs")
        return steps


def _iso(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _object_ref(manifest: Mapping[str, Any]) -> str:
    meta = manifest["metadata"]
    return f"{manifest['kind']} {meta['namespace']}/{meta['name']}"


def restore_name(site: str, now: datetime) -> str:
    """``<site>-<UTC timestamp>``: at most 40 + 15 characters, a valid Job name for the operator."""
    return f"{site}-{now.astimezone(UTC):%Y%m%d%H%M%S}"


def _labels(site: str, name: str) -> dict[str, str]:
    return {"app.kubernetes.io/instance": site, "app.kubernetes.io/part-of": "flightdeck", RESTORE_LABEL: name}


def refusal(request: RestoreRequest, sources: SiteSources, state: LiveState) -> str | None:
    """Why this restore must not run, or ``None``."""
    if request.into is not None:
        if request.into == sources.namespace:
            return f"--into {request.into!r} is the site's own namespace; leave --into out to restore in place"
        if state.target_namespace_exists:
            return f"namespace {request.into!r} already exists; --into restores into a new namespace only"
        return None
    if state.namespace_phase == "Terminating":
        return f"namespace {sources.namespace!r} is being deleted; wait until it is gone, then restore"
    if state.live and not request.force:
        pods = ", ".join(f"{name} ({replicas} replicas)" for name, replicas in sorted(state.web_deployments.items()))
        return (
            f"site {request.site!r} is live (namespace {sources.namespace!r}, Deployment {pods}): restoring in place "
            "replaces its database and resets its objects; pass --force to do so, or --into NAMESPACE to restore "
            "beside it"
        )
    return None


def plan_restore(
    request: RestoreRequest,
    sources: SiteSources,
    state: LiveState,
    *,
    backups: Iterable[VeleroBackup] = (),
    now: datetime,
) -> RestorePlan:
    """Everything the edge will create, in order; raises ``RestoreError`` before anything changes."""
    reason = refusal(request, sources, state)
    if reason:
        raise RestoreError(reason)
    in_place = request.into is None
    target = request.into or sources.namespace
    name = restore_name(request.site, now)
    notes: list[str] = []
    wants_files = "files" in request.parts
    wants_database = "database" in request.parts and in_place

    files_backup: VeleroBackup | None = None
    velero_restore: dict[str, Any] | None = None
    if wants_files or isinstance(request.choice, NamedBackup):
        if not (sources.schedule and sources.velero_namespace):
            if wants_files:
                raise RestoreError(f"site {request.site!r} has no Velero schedule (backup.files is off)")
            raise RestoreError(f"--from names a Velero backup, but site {request.site!r} has none; give a time")
        else:
            files_backup = choose_backup(backups, request.choice, sources.schedule)
    if wants_files and files_backup is not None and sources.velero_namespace:
        excluded = [*ALWAYS_EXCLUDED, *([] if in_place else COPY_EXCLUDED)]
        spec: dict[str, Any] = {
            "backupName": files_backup.name,
            "includedNamespaces": [sources.namespace],
            "excludedResources": excluded,
            "existingResourcePolicy": "update" if in_place and request.force and state.live else "none",
        }
        if not in_place:
            spec["namespaceMapping"] = {sources.namespace: target}
        velero_restore = {
            "apiVersion": VELERO_API,
            "kind": "Restore",
            "metadata": {"name": name, "namespace": sources.velero_namespace, "labels": _labels(request.site, name)},
            "spec": spec,
        }
        if in_place and state.live:
            notes.append(
                "files: the existing files claim keeps its contents (Velero fills only volumes of pods it creates); "
                "restore with --into NAMESPACE to get the backed-up files beside the site"
            )

    target_time = database_time(request.choice, files_backup)
    database_restore: dict[str, Any] | None = None
    if "database" in request.parts and not in_place:
        notes.append(
            "database: not restored with --into (mariadb-operator's Restore replays a dump into the database it "
            "came from, which is the live site's); the copy cannot reach the database"
        )
    if wants_database:
        if not (sources.database_backup and sources.database_namespace and sources.mariadb):
            raise RestoreError(
                f"site {request.site!r} has no database Backup (backup.database is off, or external mode)"
            )
        db_spec: dict[str, Any] = {
            "mariaDbRef": {"name": sources.mariadb},
            "backupRef": {"name": sources.database_backup},
            "database": sources.database,
        }
        if target_time is not None:
            db_spec["targetRecoveryTime"] = _iso(target_time)
        database_restore = {
            "apiVersion": MARIADB_API,
            "kind": "Restore",
            "metadata": {"name": name, "namespace": sources.database_namespace, "labels": _labels(request.site, name)},
            "spec": db_spec,
        }
    if in_place and (velero_restore or database_restore):
        notes.append(
            "afterwards run `flightdeck up <stack> --refresh` so the objects flightdeck manages match the config"
        )
    return RestorePlan(
        site=request.site,
        namespace=sources.namespace,
        target_namespace=target,
        live=state.live,
        velero_backup=files_backup.name if velero_restore and files_backup else None,
        database_time=target_time if database_restore else None,
        database_restore=database_restore,
        velero_restore=velero_restore,
        quiesce=bool(database_restore) and state.live,
        notes=tuple(notes),
    )


# -- progress -------------------------------------------------------------------------------------

Outcome = Literal["pending", "succeeded", "failed"]


def velero_outcome(status: Mapping[str, Any] | None) -> tuple[Outcome, str]:
    """A Velero Restore's phase (velero.io_restores.yaml ``status.phase``) as an outcome."""
    status = status or {}
    phase = str(status.get("phase") or "New")
    counts = f"{status.get('errors', 0) or 0} errors, {status.get('warnings', 0) or 0} warnings"
    if phase == "Completed":
        return "succeeded", f"Completed ({counts})"
    if phase in ("Failed", "PartiallyFailed", "FailedValidation"):
        detail = status.get("failureReason") or "; ".join(status.get("validationErrors") or []) or counts
        return "failed", f"{phase}: {detail}"
    return "pending", phase


def database_outcome(status: Mapping[str, Any] | None) -> tuple[Outcome, str]:
    """A mariadb-operator Restore's ``Complete`` condition. A failed Job also sets it ``True``,
    with reason ``JobFailed`` (v26.6 pkg/condition/complete.go ``SetCompleteWithJob``)."""
    conditions = (status or {}).get("conditions") or []
    complete = next((c for c in conditions if c.get("type") == "Complete"), None)
    if complete is None:
        return "pending", "not started"
    reason, message = str(complete.get("reason") or ""), str(complete.get("message") or "")
    if complete.get("status") == "True":
        if reason == "JobFailed":
            return "failed", f"{reason}: {message}".rstrip(": ")
        return "succeeded", message or reason or "Complete"
    return "pending", message or reason or "running"
