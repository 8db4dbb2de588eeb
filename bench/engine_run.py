"""One timed Pulumi CLI operation, and what it cost: wall time, peak memory per process, steps.

:func:`run_pulumi` runs ``pulumi <args>`` exactly as an operator or CI would (a fresh CLI
process, file backend, passphrase secrets), with ``--event-log`` so the step counts come from
the engine itself. A :class:`ProcessSampler` walks ``/proc`` while it runs and keeps the peak
resident set (``VmHWM``, which the kernel keeps per process, so a sampling gap loses nothing but
a process that lived shorter than one interval) of every process the CLI started: the engine,
the language host, the program, the dynamic-provider host and each resource plugin. The peaks
of different processes need not coincide, so it also keeps the largest sum of their current
resident sets (``VmRSS``) seen in one pass: what the machine had to hold at once.
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# Process roles by command line; first match wins.
ROLES: tuple[tuple[str, str], ...] = (
    ("pulumi-language-python-exec", "program"),
    ("pulumi.dynamic", "dynamic-provider"),
    ("pulumi-resource-kubernetes", "kubernetes"),
    ("pulumi-resource-random", "random"),
    ("pulumi-resource-mysql", "mysql"),
    ("pulumi-language-python", "language-host"),
    ("pulumi-analyzer-policy", "policy"),
)


def role_of(argv: Sequence[str]) -> str | None:
    """The role of a process from its argv; ``None`` for helpers (shells, the CLI's own children)."""
    if not argv:
        return None
    joined = " ".join(argv)
    for needle, role in ROLES:
        if needle in joined:
            return role
    if os.path.basename(argv[0]) == "pulumi":
        return "engine"
    return None


def _read(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return handle.read()
    except OSError:
        return None


def _ppid(pid: int) -> int | None:
    stat = _read(f"/proc/{pid}/stat")
    if stat is None:
        return None
    # Field 2 (comm) may contain spaces and parentheses: split after the last ')'.
    rest = stat[stat.rfind(")") + 2 :].split()
    return int(rest[1]) if len(rest) > 1 else None


def _cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of one process so far (fields 14 and 15 of /proc/<pid>/stat)."""
    stat = _read(f"/proc/{pid}/stat")
    if stat is None:
        return None
    rest = stat[stat.rfind(")") + 2 :].split()
    return (int(rest[11]) + int(rest[12])) / _CLOCK_TICKS if len(rest) > 12 else None


_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def _memory_kib(pid: int) -> tuple[int, int] | None:
    """(VmHWM, VmRSS) of a live process."""
    status = _read(f"/proc/{pid}/status")
    if status is None:
        return None
    hwm = rss = None
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            hwm = int(line.split()[1])
        elif line.startswith("VmRSS:"):
            rss = int(line.split()[1])
    return (hwm, rss) if hwm is not None and rss is not None else None


class ProcessSampler:
    """Peak RSS (MiB) per role over the life of ``root`` and its descendants."""

    def __init__(self, root: int, interval: float = 0.2) -> None:
        self.root = root
        self.interval = interval
        self.peak_kib: dict[str, int] = {}
        self.peak_total_kib = 0
        self._cpu: dict[int, tuple[str, float]] = {}  # pid -> (role, CPU seconds last seen)
        self._members: dict[int, str | None] = {root: "engine"}
        self._strangers: set[int] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="rss-sampler", daemon=True)

    def __enter__(self) -> ProcessSampler:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _scan(self) -> None:
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            pid = int(entry)
            if pid in self._strangers or pid in self._members:
                continue
            parent = _ppid(pid)
            if parent is None:
                continue
            if parent in self._members:
                argv = (_read(f"/proc/{pid}/cmdline") or "").split("\0")
                self._members[pid] = role_of([a for a in argv if a])
            else:
                # A process whose parent is not (yet) ours; it may be a child of a member seen
                # later in this pass, so only remember strangers that are older than the root.
                if pid < self.root:
                    self._strangers.add(pid)
        total = 0
        for pid, role in list(self._members.items()):
            if role is None:
                continue
            memory = _memory_kib(pid)
            if memory is not None:
                hwm, rss = memory
                self.peak_kib[role] = max(self.peak_kib.get(role, 0), hwm)
                total += rss
            cpu = _cpu_seconds(pid)
            if cpu is not None:
                self._cpu[pid] = (role, cpu)
        self.peak_total_kib = max(self.peak_total_kib, total)

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._scan()
            self._stop.wait(self.interval)
        self._scan()

    def peak_mib(self) -> dict[str, float]:
        return {role: round(kib / 1024, 1) for role, kib in sorted(self.peak_kib.items())}

    def peak_total_mib(self) -> float:
        return round(self.peak_total_kib / 1024, 1)

    def cpu_seconds(self) -> dict[str, float]:
        """CPU time per role (as last sampled: up to one interval of a process's end is missed)."""
        totals: dict[str, float] = {}
        for role, seconds in self._cpu.values():
            totals[role] = totals.get(role, 0.0) + seconds
        return {role: round(seconds, 2) for role, seconds in sorted(totals.items())}


@dataclass
class Operation:
    """What one ``pulumi`` command did."""

    command: str
    seconds: float
    ok: bool
    load_before: float  # 1-minute load average when it started
    peak_mib: dict[str, float] = field(default_factory=dict)
    peak_total_mib: float = 0.0  # the largest sum of the processes' resident sets at one time
    cpu_seconds: dict[str, float] = field(default_factory=dict)
    changes: dict[str, int] = field(default_factory=dict)  # the engine's summary: op -> count
    steps: dict[str, int] = field(default_factory=dict)  # resource steps by op (pre-events)
    errors: list[str] = field(default_factory=list)
    output_tail: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "command": self.command,
            "seconds": round(self.seconds, 2),
            "ok": self.ok,
            "load_before": round(self.load_before, 2),
            "peak_mib": self.peak_mib,
            "peak_total_mib": self.peak_total_mib,
            "cpu_seconds": self.cpu_seconds,
            "changes": self.changes,
            "steps": self.steps,
            "errors": self.errors[:5],
        }


def _events(path: Path) -> Iterator[dict[str, Any]]:
    try:
        text = path.read_text()
    except OSError:
        return
    for line in text.splitlines():
        if line.strip():
            try:
                yield json.loads(line)
            except json.JSONDecodeError:
                continue


def summarize_events(path: Path) -> tuple[dict[str, int], dict[str, int], list[str]]:
    """(summary changes, resource steps by op, error diagnostics) from an engine event log."""
    changes: dict[str, int] = {}
    steps: dict[str, int] = {}
    errors: list[str] = []
    for event in _events(path):
        summary = event.get("summaryEvent")
        if summary is not None:
            changes = {str(k): int(v) for k, v in (summary.get("resourceChanges") or {}).items()}
        pre = event.get("resourcePreEvent")
        if pre is not None:
            metadata = pre.get("metadata") or {}
            kind = str(metadata.get("type") or "")
            if kind != "pulumi:pulumi:Stack" and not kind.startswith("pulumi:providers:"):
                op = str(metadata.get("op") or "")
                steps[op] = steps.get(op, 0) + 1
        diagnostic = event.get("diagnosticEvent")
        if diagnostic is not None and diagnostic.get("severity") == "error":
            errors.append(str(diagnostic.get("message") or "").strip()[:2000])
    return changes, steps, errors


def _tail(path: Path, size: int = 64 * 1024) -> str:
    """The end of a log that may be large (a streamed JSON preview of 1,000 sites)."""
    with path.open("rb") as log:
        log.seek(max(0, path.stat().st_size - size))
        return log.read().decode(errors="replace")


def run_pulumi(
    pulumi: Path,
    args: Sequence[str],
    cwd: Path,
    env: Mapping[str, str],
    log_dir: Path,
    label: str,
    timeout: float = 3600.0,
) -> Operation:
    """``pulumi ARGS --non-interactive --event-log ...``, timed and sampled."""
    log_dir.mkdir(parents=True, exist_ok=True)
    event_log = log_dir / f"{label}.events.jsonl"
    event_log.unlink(missing_ok=True)
    output_log = log_dir / f"{label}.log"
    argv = [str(pulumi), *args, "--non-interactive", "--event-log", str(event_log)]
    load = os.getloadavg()[0]
    with output_log.open("w") as out:
        out.write(f"$ {' '.join(argv)}\n")
        out.flush()
        start = time.perf_counter()
        proc = subprocess.Popen(argv, cwd=cwd, env=dict(env), stdout=out, stderr=subprocess.STDOUT)
        with ProcessSampler(proc.pid) as sampler:
            try:
                code = proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                code = proc.wait()
            except BaseException:
                proc.kill()  # interrupted (SIGTERM -> SystemExit): leave no engine behind
                proc.wait()
                raise
        seconds = time.perf_counter() - start
    changes, steps, errors = summarize_events(event_log)
    tail = "\n".join(_tail(output_log).splitlines()[-30:])
    return Operation(
        command=" ".join(args[:1]),
        seconds=seconds,
        ok=code == 0,
        load_before=load,
        peak_mib=sampler.peak_mib(),
        peak_total_mib=sampler.peak_total_mib(),
        cpu_seconds=sampler.cpu_seconds(),
        changes=changes,
        steps=steps,
        errors=errors,
        output_tail=tail,
    )
