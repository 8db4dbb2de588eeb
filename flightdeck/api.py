"""The importable flightdeck API: preview, up, refresh, destroy and outputs of a stack.

Built on the Pulumi Automation API with a *local program* (a ``LocalWorkspace`` whose
``work_dir`` is the project: this repository by default), so the program, its virtualenv and
the dynamic providers behave exactly as under ``pulumi up``::

    from flightdeck.api import Flightdeck, Settings

    fd = Flightdeck(Settings(backend_url="s3://flightdeck-state", passphrase_file="/run/secrets/pp"))
    preview = fd.preview("prod", on_event=lambda e: print(e.kind, e.step and e.step.name))
    print(preview.summary, [s.name for s in preview.steps if s.op == "replace"])
    print(preview.pr_summary().markdown)
    result = fd.up("prod")
    print(result.outputs["sites"].value)

Concurrency: every operation, preview included, holds a per-stack ``flock`` (a lock file under
the backend directory for ``file://`` backends, else under ``lock_dir``), so threads and
processes of one host run one operation per stack at a time; the others wait up to
``lock_timeout`` seconds and then get :class:`StackLockedError` naming the holder. The
engine's own lock (taken by up/refresh/destroy, also by plain ``pulumi`` commands) is reported
the same way. Results are typed dataclasses; secret outputs are masked in ``repr`` and
``to_dict`` unless asked for.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar, Literal

import yaml
from pulumi import automation as auto

from flightdeck import pr_summary, recovery
from flightdeck.recovery import EngineLock, Recovery

REPO_ROOT = Path(__file__).resolve().parent.parent
SECRET_MASK = "[secret]"  # noqa: S105 (the mask, not a password)

Operation = Literal["preview", "up", "refresh", "destroy", "drift", "recover"]
EventKind = Literal[
    "waiting-for-lock",
    "started",
    "step",
    "step-done",
    "step-failed",
    "diagnostic",
    "policy",
    "summary",
    "cancelled",
    "recovery",
]


# -- errors ---------------------------------------------------------------------------------------


class FlightdeckError(Exception):
    """Base of every error this API raises on purpose. ``exit_code`` is the CLI's."""

    exit_code = 1


class StackNotFoundError(FlightdeckError):
    exit_code = 2


class PulumiUnavailableError(FlightdeckError):
    """The ``pulumi`` CLI cannot be found or run."""


class StackLockedError(FlightdeckError):
    """Another operation holds the stack (ours: after waiting ``lock_timeout``; the engine's: at once)."""

    exit_code = 4

    def __init__(
        self,
        stack: str,
        holder: str,
        waited: float,
        lock_file: str | None = None,
        engine_locks: tuple[EngineLock, ...] = (),
    ) -> None:
        self.stack = stack
        self.holder = holder
        self.waited = waited
        self.lock_file = lock_file
        self.engine_locks = engine_locks
        super().__init__(f"stack {stack!r} is locked by {holder} (waited {waited:.0f}s)")


class OperationFailedError(FlightdeckError):
    """The engine ran and failed. ``result`` holds what it did and reported before failing."""

    def __init__(self, result: OperationResult, message: str) -> None:
        self.result = result
        super().__init__(message)


# -- results --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ResourceStep:
    """One engine step on one resource (``same`` steps are counted in the summary, not listed)."""

    op: str
    urn: str
    type: str
    name: str
    diffs: tuple[str, ...] = ()
    replace_reasons: tuple[str, ...] = ()
    protected: bool = False
    retained: bool = False
    status: Literal["planned", "running", "done", "failed"] = "planned"

    def to_digest_step(self) -> dict[str, Any]:
        """The ``PreviewDigest`` step shape :mod:`flightdeck.pr_summary` reads."""
        state = {"type": self.type, "protect": self.protected, "retainOnDelete": self.retained}
        step: dict[str, Any] = {"op": self.op, "urn": self.urn, "oldState": state, "newState": state}
        if self.diffs:
            step["diffReasons"] = list(self.diffs)
        if self.replace_reasons:
            step["replaceReasons"] = list(self.replace_reasons)
        return step


@dataclass(frozen=True)
class Diagnostic:
    severity: str
    message: str
    urn: str | None = None
    policy: bool = False  # a policy pack's violation (the engine's --json digest leaves these out)


@dataclass(frozen=True)
class StackOutput:
    value: Any = field(repr=False)
    secret: bool = False

    def __repr__(self) -> str:
        return f"StackOutput(value={SECRET_MASK if self.secret else repr(self.value)}, secret={self.secret})"

    def shown(self, show_secrets: bool = False) -> Any:
        return SECRET_MASK if self.secret and not show_secrets else self.value


@dataclass(frozen=True)
class OperationEvent:
    """What the ``on_event`` callback receives (on an engine thread: keep it quick)."""

    kind: EventKind
    operation: str
    stack: str
    step: ResourceStep | None = None
    message: str | None = None
    severity: str | None = None
    summary: dict[str, int] | None = None
    raw: auto.EngineEvent | None = field(default=None, repr=False, compare=False)


@dataclass
class OperationResult:
    operation: str
    stack: str
    succeeded: bool
    summary: dict[str, int]
    steps: list[ResourceStep]
    diagnostics: list[Diagnostic]
    outputs: dict[str, StackOutput] = field(default_factory=dict)
    duration_seconds: float = 0.0
    digest: dict[str, Any] | None = field(default=None, repr=False)
    # What was cleared first: stale engine locks and pending operations of an interrupted update.
    recovery: Recovery | None = None

    @property
    def changes(self) -> int:
        """Resources the operation changes (everything but ``same``)."""
        return sum(n for op, n in self.summary.items() if op != "same")

    @property
    def errors(self) -> list[str]:
        return [d.message for d in self.diagnostics if d.severity == "error"]

    def preview_digest(self) -> dict[str, Any]:
        """The ``pulumi preview --json`` digest, or one built from the engine events.

        The CLI's JSON digest carries no policy violations ("we don't handle policy events in JSON
        serialization", pulumi/pulumi ``pkg/backend/display/json.go``), so they are added from
        the event stream: a PR comment then lists every mandatory violation as an error.
        """
        if self.digest is not None:
            violations = [
                {"severity": d.severity, "message": d.message, "urn": d.urn} for d in self.diagnostics if d.policy
            ]
            if not violations:
                return self.digest
            return {**self.digest, "diagnostics": [*(self.digest.get("diagnostics") or []), *violations]}
        return {
            "changeSummary": dict(self.summary),
            "steps": [step.to_digest_step() for step in self.steps],
            "diagnostics": [{"severity": d.severity, "message": d.message, "urn": d.urn} for d in self.diagnostics],
        }

    def pr_summary(self, title: str = "Pulumi preview", drift: OperationResult | None = None) -> pr_summary.Summary:
        """The PR comment; ``drift`` (a :meth:`Flightdeck.drift` result) adds what changed outside Pulumi."""
        drift_digest = drift.preview_digest() if drift is not None else None
        return pr_summary.render(self.preview_digest(), stack=self.stack, title=title, drift=drift_digest)

    def to_dict(self, show_secrets: bool = False) -> dict[str, Any]:
        return {
            "operation": self.operation,
            "stack": self.stack,
            "succeeded": self.succeeded,
            "summary": dict(self.summary),
            "changes": self.changes,
            "steps": [
                {
                    "op": s.op,
                    "type": s.type,
                    "name": s.name,
                    "urn": s.urn,
                    "diffs": list(s.diffs),
                    "replaceReasons": list(s.replace_reasons),
                    "protected": s.protected,
                    "status": s.status,
                }
                for s in self.steps
            ],
            "diagnostics": [{"severity": d.severity, "message": d.message, "urn": d.urn} for d in self.diagnostics],
            "outputs": {k: {"value": v.shown(show_secrets), "secret": v.secret} for k, v in self.outputs.items()},
            "durationSeconds": round(self.duration_seconds, 3),
            **({"recovery": self.recovery.to_dict()} if self.recovery is not None else {}),
        }


# -- settings -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Settings:
    """Where the project, state and secrets are. Unset values fall back to the environment.

    ``env`` is passed to every ``pulumi`` process on top of this process's environment (cloud
    credentials for the backend, ``PULUMI_HOME`` ...). ``passphrase``/``passphrase_file`` set
    ``PULUMI_CONFIG_PASSPHRASE(_FILE)``; ``secrets_provider`` (``passphrase``,
    ``awskms://...`` ...) is used when a stack is created (``create_missing``).

    ``config_file`` makes the engine read the stack's config from that file instead of
    ``Pulumi.<stack>.yaml`` in ``work_dir`` (``--config-file``), and a stack created then keeps its
    secrets salt there too: nothing in the project directory is ever written.
    """

    work_dir: Path = REPO_ROOT
    backend_url: str | None = None
    secrets_provider: str | None = None
    passphrase: str | None = field(default=None, repr=False)
    passphrase_file: Path | None = None
    env: Mapping[str, str] = field(default_factory=dict, repr=False)
    pulumi_root: Path | None = None  # directory holding bin/pulumi; None: `pulumi` on PATH
    lock_dir: Path | None = None
    lock_timeout: float = 60.0
    create_missing: bool = False
    color: str = "never"
    config_file: Path | None = None

    def pulumi_env(self) -> dict[str, str]:
        env = dict(self.env)
        if self.backend_url:
            env["PULUMI_BACKEND_URL"] = self.backend_url
        if self.passphrase is not None:
            env["PULUMI_CONFIG_PASSPHRASE"] = self.passphrase
        if self.passphrase_file is not None:
            env["PULUMI_CONFIG_PASSPHRASE_FILE"] = str(self.passphrase_file)
        return env

    def effective_backend_url(self) -> str | None:
        return self.pulumi_env().get("PULUMI_BACKEND_URL") or os.environ.get("PULUMI_BACKEND_URL")


def _skip_checkpoints(selected: auto.Stack) -> None:
    """For an operation that persists nothing (a preview). The file backend otherwise serialises
    the whole deployment after every step even of a preview, only to discard it: O(N²) in the
    stack's size (30 sites: 64 s -> 20 s, bench/RESULTS.md). Never for an update: there the
    checkpoints are what a killed run recovers from. An explicit setting wins."""
    workspace = selected.workspace
    workspace.env_vars = {"PULUMI_SKIP_CHECKPOINTS": "true", **workspace.env_vars}


def project_name(work_dir: Path) -> str:
    for name in ("Pulumi.yaml", "Pulumi.yml"):
        path = work_dir / name
        if path.exists():
            document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
            return str(document.get("name", "project"))
    raise FlightdeckError(f"{work_dir} is not a Pulumi project (no Pulumi.yaml)")


def _file_backend_dir(url: str, work_dir: Path) -> Path | None:
    """The directory of a ``file://`` backend (``file:///abs``, ``file://~``, ``file://relative``)."""
    if not url.startswith("file://"):
        return None
    path = url.removeprefix("file://").split("?", 1)[0]
    resolved = Path(os.path.expanduser(path)) if path else Path.home()
    return resolved if resolved.is_absolute() else work_dir / resolved


def _safe(part: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", part) or "_"


# -- the per-stack lock ---------------------------------------------------------------------------


class StackLock:
    """An exclusive ``flock`` on one lock file; waits up to ``timeout`` seconds, then raises."""

    POLL_SECONDS = 0.2
    # Re-entry: the thread that holds a stack's lock may run operations on that stack inside it.
    _held: ClassVar[dict[str, int]] = {}  # lock file -> thread holding it
    _held_guard = threading.Lock()

    def __init__(
        self, path: Path, stack: str, operation: str, timeout: float, on_wait: Callable[[str], None] | None = None
    ) -> None:
        self.path = path
        self.stack = stack
        self.operation = operation
        self.timeout = timeout
        self.on_wait = on_wait
        self._fd: int | None = None
        self._reentered = False

    def holder(self) -> str:
        try:
            info = json.loads(self.path.read_text(encoding="utf-8") or "{}")
        except (OSError, ValueError):
            info = {}
        if not info:
            return "another flightdeck operation"
        return (
            f"{info.get('operation', '?')} by pid {info.get('pid', '?')} on {info.get('host', '?')} "
            f"since {info.get('since', '?')}"
        )

    def acquire(self) -> None:
        key = str(self.path)
        with self._held_guard:
            self._reentered = self._held.get(key) == threading.get_ident()
        if self._reentered:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        started = time.monotonic()
        announced = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                waited = time.monotonic() - started
                if waited >= self.timeout:
                    holder = self.holder()
                    os.close(fd)
                    raise StackLockedError(self.stack, holder, waited, str(self.path)) from None
                if not announced and self.on_wait is not None:
                    self.on_wait(self.holder())
                    announced = True
                time.sleep(min(self.POLL_SECONDS, max(self.timeout - waited, 0.01)))
        info = {
            "operation": self.operation,
            "stack": self.stack,
            "pid": os.getpid(),
            "thread": threading.get_ident(),
            "host": socket.gethostname(),
            "since": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(info).encode(), 0)
        self._fd = fd
        with self._held_guard:
            self._held[key] = threading.get_ident()

    def release(self) -> None:
        if self._reentered:
            self._reentered = False
            return
        if self._fd is None:
            return
        with self._held_guard:
            self._held.pop(str(self.path), None)
        with contextlib.suppress(OSError):
            os.ftruncate(self._fd, 0)
        fcntl.flock(self._fd, fcntl.LOCK_UN)
        os.close(self._fd)
        self._fd = None

    def __enter__(self) -> StackLock:
        self.acquire()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.release()


# -- engine events -> typed steps -----------------------------------------------------------------


def _step(metadata: auto.events.StepEventMetadata, status: str) -> ResourceStep:
    typ, name = pr_summary.split_urn(metadata.urn)
    states = [s for s in (metadata.old, metadata.new) if s is not None]
    return ResourceStep(
        op=metadata.op.value if hasattr(metadata.op, "value") else str(metadata.op),
        urn=metadata.urn,
        type=metadata.type or typ,
        name=name,
        # A refresh reports its changed fields only in the detailed diff (no `diffs`).
        diffs=tuple(metadata.diffs or (metadata.detailed_diff or {})),
        replace_reasons=tuple(metadata.keys or ()),
        protected=any(bool(s.protect) for s in states),
        retained=any(bool(getattr(s, "retain_on_delete", False)) for s in states),
        status=status,  # type: ignore[arg-type]
    )


def _op_map(changes: Mapping[Any, int] | None) -> dict[str, int]:
    return {(k.value if hasattr(k, "value") else str(k)): int(v) for k, v in (changes or {}).items()}


class _Recorder:
    """Turns engine events into steps/diagnostics and forwards them to the caller's callback."""

    def __init__(self, operation: str, stack: str, callback: Callable[[OperationEvent], None] | None) -> None:
        self.operation = operation
        self.stack = stack
        self.callback = callback
        self.lock = threading.Lock()
        self.steps: dict[tuple[str, str], ResourceStep] = {}
        self.diagnostics: list[Diagnostic] = []
        self.summary: dict[str, int] | None = None
        self.stdout: list[str] = []
        self.stderr: list[str] = []
        self.callback_errors = 0

    def emit(self, event: OperationEvent) -> None:
        if self.callback is None:
            return
        try:
            self.callback(event)
        except Exception:  # a broken progress callback must not break the operation
            self.callback_errors += 1

    def __call__(self, event: auto.EngineEvent) -> None:
        converted = self._convert(event)
        if converted is not None:
            self.emit(converted)

    def _convert(self, event: auto.EngineEvent) -> OperationEvent | None:
        planned = "planned" if self.operation in ("preview", "drift") else "running"
        with self.lock:
            if event.prelude_event is not None:
                return self._event("started", event)
            if event.resource_pre_event is not None:
                step = _step(event.resource_pre_event.metadata, planned)
                self._keep(step)
                return self._event("step", event, step=step)
            if event.res_outputs_event is not None:
                step = _step(event.res_outputs_event.metadata, "planned" if planned == "planned" else "done")
                self._keep(step)
                return self._event("step-done", event, step=step)
            if event.res_op_failed_event is not None:
                step = _step(event.res_op_failed_event.metadata, "failed")
                self._keep(step)
                return self._event("step-failed", event, step=step)
            if event.diagnostic_event is not None:
                diag = event.diagnostic_event
                if diag.severity == "debug":
                    return None
                message = diag.message.rstrip()
                self.diagnostics.append(Diagnostic(diag.severity, message, diag.urn))
                return self._event("diagnostic", event, message=message, severity=diag.severity)
            if event.policy_event is not None:
                policy = event.policy_event
                message = f"{policy.policy_pack_name}/{policy.policy_name}: {policy.message}".rstrip()
                severity = "error" if policy.enforcement_level == "mandatory" else "warning"
                self.diagnostics.append(Diagnostic(severity, message, policy.resource_urn, policy=True))
                return self._event("policy", event, message=message, severity=severity)
            if event.summary_event is not None:
                self.summary = _op_map(event.summary_event.resource_changes)
                return self._event("summary", event, summary=dict(self.summary))
            if event.cancel_event is not None:
                return self._event("cancelled", event)
        return None

    def _event(self, kind: EventKind, event: auto.EngineEvent, **fields: Any) -> OperationEvent:
        return OperationEvent(kind, self.operation, self.stack, raw=event, **fields)

    def _keep(self, step: ResourceStep) -> None:
        previous = self.steps.get((step.urn, step.op))
        if previous is None or previous.status != "failed":  # a late event never hides a failure
            self.steps[(step.urn, step.op)] = step

    def result(self, succeeded: bool, started: float, **extra: Any) -> OperationResult:
        with self.lock:
            # A refresh reports every unchanged resource as a `refresh` step: its `same`.
            steps = [s for s in self.steps.values() if s.op not in ("same", "refresh")]
            summary = dict(self.summary) if self.summary is not None else {}
            if not summary:
                for step in self.steps.values():
                    summary[step.op] = summary.get(step.op, 0) + 1
            return OperationResult(
                operation=self.operation,
                stack=self.stack,
                succeeded=succeeded,
                summary=summary,
                steps=steps,
                diagnostics=list(self.diagnostics),
                duration_seconds=time.monotonic() - started,
                **extra,
            )

    def failure_message(self) -> str:
        errors = [_condense(d.message) for d in self.diagnostics if d.severity == "error"]
        generic = {"update failed", "preview failed", "refresh failed", "destroy failed"}
        errors = [e for e in errors if e.strip() not in generic] or errors
        if errors:
            return "\n".join(errors[:5])
        tail = [line for line in self.stderr if line.strip()][-5:]
        return "\n".join(tail) or "the pulumi command failed"


# -- the API --------------------------------------------------------------------------------------

EventCallback = Callable[[OperationEvent], None]
OutputCallback = Callable[[str], None]


class Flightdeck:
    """Operations on the stacks of one Pulumi project. Thread-safe; one instance may serve many callers."""

    def __init__(self, settings: Settings | None = None, **overrides: Any) -> None:
        settings = settings or Settings()
        self.settings = replace(settings, **overrides) if overrides else settings
        self.work_dir = Path(self.settings.work_dir).resolve()
        self.project = project_name(self.work_dir)
        self._command: auto.PulumiCommand | None = None
        self._command_lock = threading.Lock()

    # -- plumbing ----------------------------------------------------------------------------

    def _pulumi_command(self) -> auto.PulumiCommand:
        with self._command_lock:
            if self._command is None:
                root = self.settings.pulumi_root or os.environ.get("FLIGHTDECK_PULUMI_ROOT")
                try:
                    self._command = auto.PulumiCommand(root=str(root) if root else None)
                except Exception as error:
                    where = f"in {root}/bin" if root else "on PATH"
                    raise PulumiUnavailableError(f"cannot run the pulumi CLI {where}: {error}") from None
            return self._command

    def workspace(self) -> auto.LocalWorkspace:
        return auto.LocalWorkspace(
            work_dir=str(self.work_dir),
            pulumi_command=self._pulumi_command(),
            env_vars=self.settings.pulumi_env(),
            secrets_provider=self.settings.secrets_provider,
        )

    def lock_path(self, stack: str) -> Path:
        base = self.settings.lock_dir
        if base is None:
            url = self.settings.effective_backend_url() or ""
            backend_dir = _file_backend_dir(url, self.work_dir)
            if backend_dir is not None:
                base = backend_dir / ".flightdeck" / "locks"
            else:
                digest = hashlib.sha256(url.encode()).hexdigest()[:16]
                base = Path.home() / ".cache" / "flightdeck" / "locks" / digest
        return Path(base) / _safe(self.project) / f"{_safe(stack.replace('/', '__'))}.lock"

    def stack_lock(self, stack: str, operation: str = "operation", timeout: float | None = None) -> StackLock:
        """The lock every operation holds; hold it yourself to batch edits with an operation."""
        wait = self.settings.lock_timeout if timeout is None else timeout
        return StackLock(self.lock_path(stack), stack, operation, wait)

    def _select(self, stack: str) -> auto.Stack:
        workspace = self.workspace()
        try:
            if self.settings.create_missing and self.settings.config_file is not None:
                try:
                    return auto.Stack.select(stack, workspace)
                except auto.StackNotFoundError:
                    self._create_outside(stack)
                    return auto.Stack.select(stack, workspace)
            if self.settings.create_missing:
                return auto.Stack.create_or_select(stack, workspace)
            return auto.Stack.select(stack, workspace)
        except auto.StackNotFoundError:
            raise StackNotFoundError(
                f"no stack {stack!r} in project {self.project!r} on this backend "
                "(create it with `pulumi stack init` or pass create_missing=True / --create)"
            ) from None
        except auto.CommandError as error:
            raise FlightdeckError(f"cannot select stack {stack!r}: {_first_error(str(error))}") from None

    def _create_outside(self, stack: str) -> None:
        """``pulumi stack init`` writes the new stack's secrets salt into ``Pulumi.<stack>.yaml`` of
        its working directory, so it runs in a scratch copy of the project file; the salt then
        moves into ``config_file``, the only stack file the engine reads for this stack."""
        assert self.settings.config_file is not None
        import tempfile

        from ruamel.yaml import YAML

        with tempfile.TemporaryDirectory(prefix="flightdeck-init-") as scratch:
            for name in ("Pulumi.yaml", "Pulumi.yml"):
                if (self.work_dir / name).exists():
                    (Path(scratch) / name).write_text((self.work_dir / name).read_text(encoding="utf-8"))
            workspace = auto.LocalWorkspace(
                work_dir=scratch,
                pulumi_command=self._pulumi_command(),
                env_vars=self.settings.pulumi_env(),
                secrets_provider=self.settings.secrets_provider,
            )
            auto.Stack.create(stack, workspace)
            created = Path(scratch) / f"Pulumi.{stack.split('/')[-1]}.yaml"
            yaml = YAML()
            salt = (yaml.load(created.read_text()) or {}).get("encryptionsalt") if created.exists() else None
        if salt:
            path = Path(self.settings.config_file)
            document = (yaml.load(path.read_text()) if path.exists() else None) or {}
            document["encryptionsalt"] = salt
            with path.open("w") as handle:
                yaml.dump(document, handle)

    def _run(
        self,
        operation: Operation,
        stack: str,
        call: Callable[[auto.Stack, _Recorder], Any],
        on_event: EventCallback | None,
        lock_timeout: float | None,
        *,
        recover: bool = False,
    ) -> tuple[Any, _Recorder, float, Recovery | None]:
        """Run ``call`` under the stack's lock. With ``recover``, what an interrupted update left
        behind is cleared first (:mod:`flightdeck.recovery`): pending operations before the call,
        a stale engine lock when the call meets one; either is reported as a ``recovery`` event
        and in the result."""
        recorder = _Recorder(operation, stack, on_event)
        lock = self.stack_lock(stack, operation, lock_timeout)
        lock.on_wait = lambda holder: recorder.emit(
            OperationEvent("waiting-for-lock", operation, stack, message=f"waiting for {holder}")
        )
        with lock:
            started = time.monotonic()
            selected = self._select(stack)
            recovered = Recovery()
            try:
                if recover:
                    recovered = self._clear_pending(selected, stack, recorder)
                cleared, raw = self._past_stale_locks(
                    selected, stack, lambda: call(selected, recorder), recorder, recover
                )
                recovered = recovered.merged(Recovery(cleared_locks=cleared))
                if recovered.pending:
                    recovered = self._check_adopted(selected, recovered, recorder)
                return raw, recorder, started, (None if recovered.empty else recovered)
            except auto.ConcurrentUpdateError as error:
                raise self._engine_locked(stack, recovery.parse_engine_locks(str(error)), recover) from None
            except auto.CommandError as error:
                recorder.stderr.extend(str(error).splitlines()[-20:])
                digest = _parse_digest(recorder.stdout) if operation == "preview" else None
                result = recorder.result(False, started, digest=digest)
                result.recovery = None if recovered.empty else recovered
                killed = _killed_by(str(error))
                if killed is not None:
                    message = (
                        f"{operation} of {stack!r} failed: the pulumi CLI was killed by {killed} mid-{operation}; "
                        f"the stack may hold its lock and pending operations: run `flightdeck {operation} {stack}` "
                        f"again, it clears them first (or `flightdeck recover {stack}`)"
                    )
                else:
                    message = f"{operation} of {stack!r} failed: {recorder.failure_message()}"
                raise OperationFailedError(result, message) from None

    # -- recovery from an interrupted update (flightdeck/recovery.py) -------------------------

    def _export(self, selected: auto.Stack) -> dict[str, Any]:
        """``pulumi stack export`` **without** ``--show-secrets``: secrets stay ciphertext.
        (The Automation API's ``export_stack`` always passes ``--show-secrets``.)"""
        workspace = selected.workspace
        assert isinstance(workspace, auto.LocalWorkspace)
        env = {**({"PULUMI_HOME": workspace.pulumi_home} if workspace.pulumi_home else {}), **workspace.env_vars}
        done = self._pulumi_command().run(["stack", "export", "--stack", selected.name], str(self.work_dir), env)
        exported: dict[str, Any] = json.loads(done.stdout or "{}")
        return exported

    def _emit_recovery(self, recorder: _Recorder, message: str, severity: str = "info") -> None:
        with recorder.lock:
            recorder.diagnostics.append(Diagnostic(severity, message))
        recorder.emit(
            OperationEvent("recovery", recorder.operation, recorder.stack, message=message, severity=severity)
        )

    def _clear_pending(
        self, selected: auto.Stack, stack: str, recorder: _Recorder, *, always: bool = False
    ) -> Recovery:
        """Clear the pending operations an interrupted update left: ``pulumi refresh
        --clear-pending-creates --target <urn>...`` (see :mod:`flightdeck.recovery`). With
        ``always``, the refresh runs with nothing pending too, which meets (and clears) a stale lock."""
        deployment = self._export(selected).get("deployment")
        pending = recovery.pending_operations(deployment)
        if not pending and not always:
            return Recovery()
        targets = recovery.refresh_targets(pending, recovery.state_urns(deployment), recovery.root_urn(deployment))
        if pending:
            listed = ", ".join(op.describe() for op in pending)
            self._emit_recovery(
                recorder,
                f"{len(pending)} pending operation(s) left by an interrupted update ({listed}): clearing them with "
                "`pulumi refresh --clear-pending-creates`; the creates run again (adopting what exists) "
                + ("in the next up" if recorder.operation == "recover" else f"in this {recorder.operation}"),
            )
        config_file = str(self.settings.config_file) if self.settings.config_file else None

        def clear() -> Any:
            return selected.refresh(
                clear_pending_creates=True,
                target=list(targets) or None,
                show_secrets=False,
                color=self.settings.color,
                config_file=config_file,
            )

        cleared, _ = self._past_stale_locks(selected, stack, clear, recorder, True)
        return Recovery(cleared_locks=cleared, pending=pending, refreshed=targets)

    def _past_stale_locks(
        self, selected: auto.Stack, stack: str, call: Callable[[], Any], recorder: _Recorder, recover: bool
    ) -> tuple[tuple[EngineLock, ...], Any]:
        """``call()``; when the engine refuses because of locks that are all stale (this host, no
        such ``pulumi`` process any more), ``pulumi cancel`` removes them and ``call`` runs once
        more. Any other lock raises :class:`StackLockedError` naming its holder."""
        try:
            return (), call()
        except auto.ConcurrentUpdateError as error:
            locks = recovery.parse_engine_locks(str(error))
            if not (recover and recovery.all_stale(locks, socket.gethostname(), _running_pulumi)):
                raise self._engine_locked(stack, locks, recover) from None
        for lock in locks:
            self._emit_recovery(recorder, f"removing the stale engine lock of {lock.describe()}: that process is gone")
        # `pulumi cancel` on a DIY backend deletes the stack's lock files (CancelCurrentUpdate).
        selected.cancel()
        return locks, call()

    def _check_adopted(self, selected: auto.Stack, recovered: Recovery, recorder: _Recorder) -> Recovery:
        after = recovery.state_urns(self._export(selected).get("deployment"))
        missing = recovery.unadopted(recovered.pending, after)
        recovered = replace(recovered, unadopted=missing)
        for op in missing:
            self._emit_recovery(
                recorder,
                f"{op.describe()} was being created by the interrupted update and is not declared any more: it may "
                "exist without being managed; check it and delete it by hand",
                "warning",
            )
        return recovered

    def _engine_locked(self, stack: str, locks: tuple[EngineLock, ...], recover: bool) -> StackLockedError:
        if not locks:
            holder = "another update (the engine's own lock; if none is running, `pulumi cancel` clears it)"
            return StackLockedError(stack, holder, 0.0)
        host = socket.gethostname()
        described = []
        for lock in locks:
            if lock.host != host:
                note = "on another host: if that run is gone, `pulumi cancel` clears it"
            elif _running_pulumi(lock.pid):
                note = "still running"
            else:
                note = "that process is gone: `flightdeck recover " + stack + "` clears it"
                note += "" if not recover else " (not done: another lock is live)"
            described.append(f"{lock.describe()}, {note}")
        return StackLockedError(stack, "the engine's own lock: " + "; ".join(described), 0.0, engine_locks=locks)

    def _callbacks(self, recorder: _Recorder, on_output: OutputCallback | None) -> dict[str, Any]:
        def out(line: str) -> None:
            recorder.stdout.append(line)
            if on_output is not None:
                on_output(line)

        def err(line: str) -> None:
            recorder.stderr.append(line)

        callbacks: dict[str, Any] = {
            "on_output": out,
            "on_error": err,
            "on_event": recorder,
            "color": self.settings.color,
        }
        if self.settings.config_file is not None:
            callbacks["config_file"] = str(self.settings.config_file)
        return callbacks

    # -- operations --------------------------------------------------------------------------

    def preview(
        self,
        stack: str,
        *,
        on_event: EventCallback | None = None,
        on_output: OutputCallback | None = None,
        refresh: bool = False,
        targets: list[str] | None = None,
        lock_timeout: float | None = None,
        policy_packs: list[str] | None = None,
    ) -> OperationResult:
        """What ``up`` would do. ``result.digest`` is the ``pulumi preview --json`` document (which is
        also what ``on_output`` receives, line by line). ``policy_packs``: policy pack folders to
        run (``pulumi preview --policy-pack``); a mandatory violation fails the preview."""

        def call(selected: auto.Stack, recorder: _Recorder) -> Any:
            _skip_checkpoints(selected)
            callbacks = self._callbacks(recorder, on_output)
            return selected.preview(
                json=True, refresh=refresh or None, target=targets, policy_packs=policy_packs or None, **callbacks
            )

        raw, recorder, started, _ = self._run("preview", stack, call, on_event, lock_timeout)
        digest = _parse_digest(recorder.stdout) or _parse_digest(raw.stdout.splitlines())
        result = recorder.result(True, started, digest=digest)
        result.summary = _op_map(raw.change_summary) or result.summary
        return result

    def up(
        self,
        stack: str,
        *,
        on_event: EventCallback | None = None,
        on_output: OutputCallback | None = None,
        refresh: bool = False,
        targets: list[str] | None = None,
        message: str | None = None,
        lock_timeout: float | None = None,
        policy_packs: list[str] | None = None,
        recover: bool = True,
        continue_on_error: bool = True,
    ) -> OperationResult:
        """Deploy; ``result.outputs`` holds the stack outputs afterwards. ``policy_packs`` as for
        ``preview``: a mandatory violation stops the update before the offending resource changes.

        ``recover``: first clear what an interrupted update left (a stale engine lock, pending
        operations; :mod:`flightdeck.recovery`), reported in ``result.recovery``. A CI retry of a
        killed ``up`` is then just another ``up``.

        ``continue_on_error`` (``--continue-on-error``): a resource that fails does not stop the
        others; what depends on it is skipped. One site's broken create never holds back every
        other site's change; the update still fails and names what failed.
        """

        def call(selected: auto.Stack, recorder: _Recorder) -> Any:
            if refresh:
                config_file = str(self.settings.config_file) if self.settings.config_file else None
                selected.refresh(show_secrets=False, color=self.settings.color, config_file=config_file)
            return selected.up(
                target=targets,
                message=message,
                show_secrets=False,
                policy_packs=policy_packs or None,
                continue_on_error=continue_on_error or None,
                **self._callbacks(recorder, on_output),
            )

        return self._run_update("up", stack, call, on_event, lock_timeout, with_outputs=True, recover=recover)

    def refresh(
        self,
        stack: str,
        *,
        on_event: EventCallback | None = None,
        on_output: OutputCallback | None = None,
        lock_timeout: float | None = None,
        recover: bool = True,
    ) -> OperationResult:
        """Read every resource back from the cluster/servers and update the state (``recover`` as for ``up``)."""

        def call(selected: auto.Stack, recorder: _Recorder) -> Any:
            return selected.refresh(show_secrets=False, **self._callbacks(recorder, on_output))

        return self._run_update("refresh", stack, call, on_event, lock_timeout, recover=recover)

    def destroy(
        self,
        stack: str,
        *,
        on_event: EventCallback | None = None,
        on_output: OutputCallback | None = None,
        lock_timeout: float | None = None,
        recover: bool = True,
    ) -> OperationResult:
        """Delete every resource of the stack (protected resources make it fail; ``recover`` as
        for ``up``: a create the interrupted update left pending is then reported as unadopted)."""

        def call(selected: auto.Stack, recorder: _Recorder) -> Any:
            return selected.destroy(show_secrets=False, **self._callbacks(recorder, on_output))

        return self._run_update("destroy", stack, call, on_event, lock_timeout, recover=recover)

    def drift(
        self,
        stack: str,
        *,
        on_event: EventCallback | None = None,
        on_output: OutputCallback | None = None,
        lock_timeout: float | None = None,
    ) -> OperationResult:
        """What changed outside Pulumi since the last deployment (``pulumi refresh --preview-only``):
        changes nothing. ``result.steps`` holds each drifted resource: op ``update`` (``diffs``: the
        fields changed by hand, e.g. ``spec.replicas``) or ``delete`` (deleted by hand); the next
        ``up`` sets them back. ``preview.pr_summary(drift=result)`` lists them in the PR comment."""

        def call(selected: auto.Stack, recorder: _Recorder) -> Any:
            _skip_checkpoints(selected)
            return selected.preview_refresh(**self._callbacks(recorder, on_output))

        raw, recorder, started, _ = self._run("drift", stack, call, on_event, lock_timeout)
        result = recorder.result(True, started)
        result.summary = _op_map(raw.change_summary) or result.summary
        return result

    def recover(
        self, stack: str, *, on_event: EventCallback | None = None, lock_timeout: float | None = None
    ) -> Recovery:
        """Clear what an interrupted update left, deploying nothing: a stale engine lock and the
        pending operations (:mod:`flightdeck.recovery`). ``up``, ``refresh`` and ``destroy`` do
        this themselves unless ``recover=False``; this is for looking first."""

        def call(selected: auto.Stack, recorder: _Recorder) -> Recovery:
            return self._clear_pending(selected, stack, recorder, always=True)

        found, *_ = self._run("recover", stack, call, on_event, lock_timeout)
        recovered: Recovery = found
        return recovered

    def pending_operations(self, stack: str) -> tuple[recovery.PendingOperation, ...]:
        """The operations an interrupted update started and never finished (no lock: read only)."""
        return recovery.pending_operations(self._export(self._select(stack)).get("deployment"))

    def _run_update(
        self,
        kind: Operation,
        stack: str,
        call: Callable[[auto.Stack, _Recorder], Any],
        on_event: EventCallback | None,
        lock_timeout: float | None,
        *,
        with_outputs: bool = False,
        recover: bool = False,
    ) -> OperationResult:
        """Run an up/refresh/destroy and summarise it from the engine's own change counts."""
        raw, recorder, started, recovered = self._run(kind, stack, call, on_event, lock_timeout, recover=recover)
        result = (
            recorder.result(True, started, outputs=_outputs(raw.outputs))
            if with_outputs
            else recorder.result(True, started)
        )
        result.summary = _op_map(raw.summary.resource_changes) or result.summary
        result.recovery = recovered
        return result

    def kube_access(self, stack: str) -> KubeAccess:
        """The stack's kubeconfig (decrypted, kept in memory only) and context, for tools such as restore."""
        selected = self._select(stack)
        try:
            return kube_access_from_config(selected.get_all_config())
        except auto.CommandError as error:
            raise FlightdeckError(f"cannot read the config of {stack!r}: {_first_error(str(error))}") from None

    def outputs(self, stack: str) -> dict[str, StackOutput]:
        """The stack's current outputs (no lock: reading state never conflicts)."""
        selected = self._select(stack)
        try:
            return _outputs(selected.outputs())
        except auto.CommandError as error:
            raise FlightdeckError(f"cannot read the outputs of {stack!r}: {_first_error(str(error))}") from None


@dataclass(frozen=True)
class KubeAccess:
    """How the program reaches the stack's cluster: ``flightdeck:kubeconfig`` (secret) or none for the
    ambient kubeconfig, and ``kubernetes.context``."""

    kubeconfig: str | None = field(default=None, repr=False)
    context: str | None = None


def kube_access_from_config(config: Mapping[str, auto.ConfigValue]) -> KubeAccess:
    kubeconfig = config.get("flightdeck:kubeconfig")
    section = config.get("flightdeck:kubernetes")
    context = None
    if section is not None:
        try:
            parsed = json.loads(section.value)
        except ValueError:
            parsed = None
        if isinstance(parsed, dict) and isinstance(parsed.get("context"), str):
            context = parsed["context"]
    return KubeAccess(kubeconfig.value if kubeconfig is not None else None, context)


def _outputs(raw: Mapping[str, auto.OutputValue]) -> dict[str, StackOutput]:
    return {key: StackOutput(value.value, bool(value.secret)) for key, value in raw.items()}


def _parse_digest(lines: list[str]) -> dict[str, Any] | None:
    return pr_summary.parse_digest("\n".join(lines))


# The line a Python traceback ends with: the exception's qualified name at column 0, then its message.
_EXCEPTION_LINE = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Exit|Interrupt|Warning)\b")


def _condense(message: str) -> str:
    """An engine error without the provider's Python traceback: what precedes it, and the
    exception it ends with (its message may span lines: an API error quotes a response)."""
    text = message.strip().removeprefix("error: ")
    head, marker, trace = text.partition("Traceback (most recent call last):")
    if not marker:
        return text
    lines = trace.splitlines()
    start = next((i for i in range(len(lines) - 1, -1, -1) if _EXCEPTION_LINE.match(lines[i])), None)
    tail = lines[start:] if start is not None else [next((x for x in reversed(lines) if x.strip()), "")]
    return " ".join(part for part in (head.strip(), " ".join(x.strip() for x in tail if x.strip())) if part)


def _running_pulumi(pid: int) -> bool:
    """Is ``pid`` a running ``pulumi`` process on this host? Unsure counts as yes: a lock is only
    ever removed when its process is certainly gone (a recycled pid runs something else)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    proc = Path(f"/proc/{pid}")
    try:
        state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
        program = (proc / "cmdline").read_bytes().split(b"\0", 1)[0]
    except (OSError, IndexError):
        return True
    if state == "Z":  # exited, not yet reaped by its parent
        return False
    return os.path.basename(program).startswith(b"pulumi")


_EXIT_CODE = re.compile(r"^\s*code: (-?\d+)\s*$", re.MULTILINE)


def _killed_by(command_error: str) -> str | None:
    """``SIGKILL`` when the pulumi CLI died of a signal (the Automation API reports a negative code)."""
    match = _EXIT_CODE.search(command_error)
    if match is None or int(match[1]) >= 0:
        return None
    number = -int(match[1])
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def _first_error(text: str) -> str:
    for line in text.splitlines():
        if "error:" in line:
            return line.strip()
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else "unknown error"


# -- module-level shortcuts -----------------------------------------------------------------------


def preview(stack: str, settings: Settings | None = None, **kwargs: Any) -> OperationResult:
    return Flightdeck(settings).preview(stack, **kwargs)


def up(stack: str, settings: Settings | None = None, **kwargs: Any) -> OperationResult:
    return Flightdeck(settings).up(stack, **kwargs)


def refresh(stack: str, settings: Settings | None = None, **kwargs: Any) -> OperationResult:
    return Flightdeck(settings).refresh(stack, **kwargs)


def destroy(stack: str, settings: Settings | None = None, **kwargs: Any) -> OperationResult:
    return Flightdeck(settings).destroy(stack, **kwargs)


def outputs(stack: str, settings: Settings | None = None) -> dict[str, StackOutput]:
    return Flightdeck(settings).outputs(stack)


@contextlib.contextmanager
def locked(stack: str, settings: Settings | None = None, timeout: float | None = None) -> Iterator[None]:
    """Hold ``stack``'s lock around your own work (e.g. a stack-file edit followed by ``up``)."""
    with Flightdeck(settings).stack_lock(stack, "locked", timeout):
        yield
