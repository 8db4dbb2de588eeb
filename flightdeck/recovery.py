"""What an interrupted ``pulumi up`` leaves behind, and what flightdeck may clear. Pure.

A ``pulumi`` process that dies mid-update (a CI runner killed, an OOM kill, a lost laptop lid)
leaves two things in the state backend:

* its **lock**: a DIY backend (``file://``, ``s3://`` ...) writes one file per update holding
  the pid, user and host of the ``pulumi`` process (pulumi/pulumi ``pkg/backend/diy/lock.go``
  ``newLockContent``) and deletes it on exit; the next update refuses with ``the stack is
  currently locked by 1 lock(s)`` and one line per lock,
  ``<url>: created by <user>@<host> (pid <pid>) at <time>`` (``checkForLock``);
* its **pending operations** (``pending_operations`` of ``pulumi stack export``): the steps it
  had started and not finished. The next update drops pending updates and deletes (it diffs the
  old state again and redoes them) but keeps pending *creates* forever, with a warning, until a
  ``pulumi refresh`` clears or imports them (``pkg/backend/snapshot.go``: "we don't want to
  clear pending CREATE operations because these must require user intervention").

flightdeck clears both without a manual ``pulumi stack export``/``import``:

* a lock only when it is provably **stale**: it names this host and its pid is no longer a
  running ``pulumi``; then ``pulumi cancel`` removes it (``CancelCurrentUpdate`` of the DIY
  backend deletes the stack's lock files). A lock of a live process, or of another host, is
  never touched: the caller gets :class:`flightdeck.api.StackLockedError` naming the holder;
* pending operations with ``pulumi refresh --clear-pending-creates --target <urn>...``: the
  pending creates are dropped from the state, and the targets are the resources whose
  interrupted update or delete left their real state unknown, read back from the cluster and
  the servers (just the stack's root resource when there are none, so the refresh stays
  small). The ``up`` that follows creates the dropped resources again, and that is safe
  because every create **adopts** what exists: Kubernetes objects are created with a
  server-side apply patch (pulumi-kubernetes ``pkg/await/await.go``: "we currently always
  upsert the object"), forced by the ``pulumi.com/patchForce`` annotation every flightdeck object
  carries, and the SQL providers' ``create`` takes over an existing database, user or grant
  (``components/sql/providers.py``). A generated password whose create was pending is generated
  again, and the user, the Secret and the pods get the new one in the same ``up``.

A cleared create that the following ``up`` no longer declares (its site was removed from the
config in between) may exist in the cluster without being managed: :func:`unadopted` names
those, so they can be checked and removed by hand instead of lingering unnoticed.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from flightdeck.pr_summary import split_urn

# pulumi/pulumi pkg/backend/diy/lock.go checkForLock: one line per lock file, after the headline.
LOCKED_TEXT = "the stack is currently locked by"
_LOCK_LINE = re.compile(
    r"^\s*(?P<location>\S+): created by (?P<user>.*)@(?P<host>[^@\s]+) \(pid (?P<pid>\d+)\) at (?P<since>\S+)\s*$"
)
# pulumi/pulumi sdk/go/common/resource OperationType values.
CREATING = "creating"
OPERATION_VERBS = {
    "creating": "create",
    "updating": "update",
    "deleting": "delete",
    "reading": "read",
    "importing": "import",
}


@dataclass(frozen=True)
class EngineLock:
    """One lock file of a DIY backend, as the engine describes it."""

    location: str
    user: str
    host: str
    pid: int
    since: str

    def describe(self) -> str:
        return f"pulumi (pid {self.pid}) run by {self.user}@{self.host} since {self.since}"


def parse_engine_locks(message: str) -> tuple[EngineLock, ...]:
    """The locks a DIY backend's "stack is currently locked" error lists (none for other errors)."""
    if LOCKED_TEXT not in message:
        return ()
    locks = []
    for line in message.splitlines():
        match = _LOCK_LINE.match(line)
        if match:
            locks.append(
                EngineLock(
                    location=match["location"],
                    user=match["user"],
                    host=match["host"],
                    pid=int(match["pid"]),
                    since=match["since"],
                )
            )
    return tuple(locks)


def is_stale(lock: EngineLock, host: str, running_pulumi: Callable[[int], bool]) -> bool:
    """Stale: written on ``host`` (this machine) by a process that is no longer a running ``pulumi``.

    A lock of another host is never stale here: its process cannot be checked from this one.
    """
    return lock.host == host and not running_pulumi(lock.pid)


def all_stale(locks: Sequence[EngineLock], host: str, running_pulumi: Callable[[int], bool]) -> bool:
    """True when there are locks and every one is stale (``pulumi cancel`` removes them all)."""
    return bool(locks) and all(is_stale(lock, host, running_pulumi) for lock in locks)


@dataclass(frozen=True)
class PendingOperation:
    """One step an interrupted update started and never finished."""

    kind: str  # creating, updating, deleting, reading, importing
    urn: str
    type: str
    name: str
    object: str | None = None  # a Kubernetes object's `namespace/name` (or `name`), from its inputs

    @property
    def is_create(self) -> bool:
        return self.kind == CREATING

    def describe(self) -> str:
        where = f" ({self.object})" if self.object and self.object != self.name else ""
        return f"{OPERATION_VERBS.get(self.kind, self.kind)} {self.type} {self.name}{where}"

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "urn": self.urn, "type": self.type, "name": self.name, "object": self.object}


def _object_name(resource: Mapping[str, Any]) -> str | None:
    metadata = (resource.get("inputs") or {}).get("metadata")
    if not isinstance(metadata, Mapping) or not isinstance(metadata.get("name"), str):
        return None
    namespace = metadata.get("namespace")
    return f"{namespace}/{metadata['name']}" if isinstance(namespace, str) and namespace else str(metadata["name"])


def pending_operations(deployment: Mapping[str, Any] | None) -> tuple[PendingOperation, ...]:
    """The pending operations of a ``pulumi stack export`` document's ``deployment``."""
    found = []
    for entry in (deployment or {}).get("pending_operations") or []:
        resource = entry.get("resource") or {}
        urn = str(resource.get("urn", ""))
        typ, name = split_urn(urn)
        found.append(
            PendingOperation(
                kind=str(entry.get("type", "")),
                urn=urn,
                type=str(resource.get("type") or typ),
                name=name,
                object=_object_name(resource) if str(resource.get("type", "")).startswith("kubernetes:") else None,
            )
        )
    return tuple(found)


def state_urns(deployment: Mapping[str, Any] | None) -> frozenset[str]:
    return frozenset(str(r.get("urn")) for r in (deployment or {}).get("resources") or [] if r.get("urn"))


def root_urn(deployment: Mapping[str, Any] | None) -> str | None:
    for resource in (deployment or {}).get("resources") or []:
        if resource.get("type") == "pulumi:pulumi:Stack":
            return str(resource["urn"])
    return None


def refresh_targets(pending: Iterable[PendingOperation], urns: frozenset[str], root: str | None) -> tuple[str, ...]:
    """What the clearing refresh reads back: every resource in the state whose interrupted update,
    delete or read left its real state unknown; the stack's root resource when there is none (an
    empty target list would refresh everything)."""
    targets = tuple(dict.fromkeys(op.urn for op in pending if not op.is_create and op.urn in urns))
    if targets:
        return targets
    return (root,) if root else ()


def unadopted(pending: Iterable[PendingOperation], urns_after: frozenset[str]) -> tuple[PendingOperation, ...]:
    """Cleared creates that the state still does not hold after the following operation: the
    interrupted run may have created them, and nothing manages them now."""
    return tuple(op for op in pending if op.is_create and op.urn not in urns_after)


@dataclass(frozen=True)
class Recovery:
    """What flightdeck cleared before an operation, and what it could not re-adopt after it."""

    cleared_locks: tuple[EngineLock, ...] = ()
    pending: tuple[PendingOperation, ...] = ()
    refreshed: tuple[str, ...] = ()  # the URNs the clearing refresh read back
    unadopted: tuple[PendingOperation, ...] = ()

    @property
    def empty(self) -> bool:
        return not self.cleared_locks and not self.pending

    def merged(self, other: Recovery) -> Recovery:
        return Recovery(
            cleared_locks=self.cleared_locks + other.cleared_locks,
            pending=self.pending + other.pending,
            refreshed=tuple(dict.fromkeys(self.refreshed + other.refreshed)),
            unadopted=self.unadopted + other.unadopted,
        )

    def lines(self) -> list[str]:
        """Human-readable, one action a line (CLI progress, diagnostics)."""
        out = [f"removed the stale lock of {lock.describe()}: that process is gone" for lock in self.cleared_locks]
        creates = [op for op in self.pending if op.is_create]
        others = [op for op in self.pending if not op.is_create]
        if creates:
            names = ", ".join(op.describe() for op in creates)
            out.append(
                f"cleared {len(creates)} interrupted create(s), to be created again, adopting what exists: {names}"
            )
        if others:
            names = ", ".join(op.describe() for op in others)
            out.append(f"read back {len(others)} resource(s) whose interrupted operation left them unknown: {names}")
        for op in self.unadopted:
            out.append(
                f"not declared any more, so not re-adopted: {op.describe()} may exist without being managed; "
                "check it and delete it by hand"
            )
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "clearedLocks": [
                {"location": lock.location, "user": lock.user, "host": lock.host, "pid": lock.pid, "since": lock.since}
                for lock in self.cleared_locks
            ],
            "pendingOperations": [op.to_dict() for op in self.pending],
            "refreshed": list(self.refreshed),
            "unadopted": [op.to_dict() for op in self.unadopted],
        }
