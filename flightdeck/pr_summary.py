"""Render a Pulumi preview as Markdown for a pull-request comment.

Pure: a ``PreviewDigest`` (the JSON of ``pulumi preview --json``, or the equivalent built from
engine events by :mod:`flightdeck.api`) in, a :class:`Summary` out. No I/O, no Pulumi import.

The comment has three parts:

1. counts per operation (``changeSummary``);
2. a risk section listing every replacement and deletion with its reason (``replaceReasons``,
   else ``diffReasons``, else the ``detailedDiff`` keys). Stateful resources (volumes, the MariaDB
   cluster, databases, users, namespaces, StatefulSets) are in bold, protected ones are marked;
3. the errors the engine reported (a preview that would delete a protected resource fails);
4. with a refresh-preview digest (``pulumi refresh --preview-only``, :meth:`flightdeck.api.Flightdeck.drift`),
   the **drift**: every resource changed or deleted outside Pulumi since the last deployment
   (a ``kubectl scale``, a deleted NetworkPolicy, an edited Secret), with the fields that differ.
   The next ``up`` sets them back: every managed object carries ``pulumi.com/patchForce``.

``Summary.dangerous`` is true when a stateful or protected resource would be replaced or deleted
(a deletion the engine skips because of ``retainOnDelete`` does not count), so CI can require a
label or an approval. A hidden marker (``<!-- flightdeck-preview:<stack> -->``) lets a workflow
find and update its own comment.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

STATEFUL_TYPES: frozenset[str] = frozenset(
    {
        "kubernetes:core/v1:PersistentVolumeClaim",
        "kubernetes:core/v1:Namespace",
        "kubernetes:k8s.mariadb.com/v1alpha1:MariaDB",
        # mariadb-operator deletes a Backup's dumps (its owned volume) with the Backup.
        "kubernetes:k8s.mariadb.com/v1alpha1:Backup",
        "kubernetes:ceph.rook.io/v1:CephFilesystem",
        "kubernetes:apps/v1:StatefulSet",
        "pulumi-python:dynamic/mysql:Database",
        "pulumi-python:dynamic/mysql:User",
    }
)

# Step ops (pkg/display + engine OpType) grouped by what they mean for the resource.
REPLACE_OPS: frozenset[str] = frozenset(
    {"replace", "create-replacement", "delete-replaced", "discard-replaced", "import-replacement", "read-replacement"}
)
DELETE_OPS: frozenset[str] = frozenset({"delete"})
DISCARD_OPS: frozenset[str] = frozenset({"discard"})

# Display order of the counts table; anything else follows alphabetically, `same` comes last.
_OP_ORDER = ("create", "update", "replace", "delete", "discard", "import", "read", "refresh")
_OP_LABELS = {"same": "unchanged"}
COMMENT_LIMIT = 60_000  # GitHub refuses comments over 65,536 characters


@dataclass(frozen=True)
class Risk:
    """One replaced, deleted or discarded resource (all of its steps folded together)."""

    kind: str  # "replace", "delete" or "discard"
    urn: str
    type: str
    name: str
    reasons: tuple[str, ...]
    stateful: bool
    protected: bool
    retained: bool  # retainOnDelete: the engine forgets it but leaves the object in place
    delete_before_replace: bool

    @property
    def dangerous(self) -> bool:
        if self.kind == "discard":
            return False
        if self.kind == "delete" and self.retained:
            return False
        return self.stateful or self.protected


@dataclass(frozen=True)
class Drift:
    """One resource whose live state differs from the state of the last deployment."""

    kind: str  # "changed" or "deleted"
    urn: str
    type: str
    name: str
    fields: tuple[str, ...]  # the changed fields (a refresh's detailed diff), e.g. spec.replicas
    stateful: bool


@dataclass(frozen=True)
class Summary:
    stack: str
    counts: dict[str, int]
    risks: tuple[Risk, ...]
    errors: tuple[str, ...]
    markdown: str = field(repr=False)
    drift: tuple[Drift, ...] = ()

    @property
    def dangerous(self) -> bool:
        return any(risk.dangerous for risk in self.risks)

    @property
    def has_changes(self) -> bool:
        return any(count for op, count in self.counts.items() if op != "same")


def parse_digest(text: str) -> dict[str, Any] | None:
    """The ``PreviewDigest`` object in ``pulumi preview --json`` output (lines before it are ignored)."""
    start = text.find("{")
    if start < 0:
        return None
    try:
        document = json.loads(text[start:])
    except ValueError:
        return None
    return document if isinstance(document, dict) else None


def split_urn(urn: str) -> tuple[str, str]:
    """``urn:pulumi:stack::project::parent$type::name`` -> (``type``, ``name``)."""
    parts = urn.split("::", 3)
    if len(parts) < 4:
        return "", urn
    return parts[2].rsplit("$", 1)[-1], parts[3]


def _state(step: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = step.get(key)
    return value if isinstance(value, Mapping) else {}


def _strings(value: Any) -> list[str]:
    if isinstance(value, Mapping):
        return [str(key) for key in value]
    if isinstance(value, Sequence) and not isinstance(value, str):
        return [str(item) for item in value]
    return []


def _reasons(steps: Iterable[Mapping[str, Any]]) -> tuple[str, ...]:
    found: list[str] = []
    for key in ("replaceReasons", "diffReasons", "detailedDiff"):
        for step in steps:
            found += _strings(step.get(key))
        if found:
            break
    return tuple(dict.fromkeys(found))


def risks(steps: Iterable[Mapping[str, Any]], stateful_types: frozenset[str] = STATEFUL_TYPES) -> tuple[Risk, ...]:
    """Every resource that a step replaces, deletes or discards: dangerous first, then by kind, type, name."""
    by_urn: dict[str, list[Mapping[str, Any]]] = {}
    for step in steps:
        op = str(step.get("op", ""))
        if op in REPLACE_OPS | DELETE_OPS | DISCARD_OPS:
            by_urn.setdefault(str(step.get("urn", "")), []).append(step)
    found = []
    for urn, group in by_urn.items():
        ops = [str(step.get("op")) for step in group]
        kind = "replace" if REPLACE_OPS.intersection(ops) else "delete" if DELETE_OPS.intersection(ops) else "discard"
        typ, name = split_urn(urn)
        typ = typ or next((str(_state(s, k).get("type")) for s in group for k in ("oldState", "newState")), "")
        states = [_state(step, key) for step in group for key in ("oldState", "newState")]
        dbr = "delete-replaced" in ops and "create-replacement" in ops
        dbr = dbr and ops.index("delete-replaced") < ops.index("create-replacement")
        found.append(
            Risk(
                kind=kind,
                urn=urn,
                type=typ,
                name=name,
                reasons=_reasons(group),
                stateful=typ in stateful_types,
                protected=any(bool(state.get("protect")) for state in states),
                retained=any(bool(state.get("retainOnDelete")) for state in states),
                delete_before_replace=dbr,
            )
        )
    kind_order = {"replace": 0, "delete": 1, "discard": 2}
    return tuple(sorted(found, key=lambda r: (not r.dangerous, kind_order[r.kind], r.type, r.name, r.urn)))


# A refresh reports a field changed by hand as `update`, a resource gone as `delete`; every
# other resource as `refresh` or `same`.
_DRIFT_OPS = {"update": "changed", "delete": "deleted"}


def drift_items(
    steps: Iterable[Mapping[str, Any]], stateful_types: frozenset[str] = STATEFUL_TYPES
) -> tuple[Drift, ...]:
    """The drifted resources of a refresh-preview digest: deleted first, then by type and name."""
    by_urn: dict[str, Drift] = {}
    for step in steps:
        kind = _DRIFT_OPS.get(str(step.get("op", "")))
        urn = str(step.get("urn", ""))
        if kind is None or not urn:
            continue
        typ, name = split_urn(urn)
        typ = typ or next((str(_state(step, k).get("type")) for k in ("oldState", "newState") if _state(step, k)), "")
        fields = tuple(dict.fromkeys([*_strings(step.get("diffReasons")), *_strings(step.get("detailedDiff"))]))
        previous = by_urn.get(urn)
        if previous is not None and previous.kind == "deleted":
            continue  # deleted wins over a changed field of the same resource
        by_urn[urn] = Drift(kind, urn, typ, name, fields, typ in stateful_types)
    return tuple(sorted(by_urn.values(), key=lambda d: (d.kind != "deleted", d.type, d.name, d.urn)))


def _drift_line(item: Drift) -> str:
    what = f"{code(item.type)} {code(item.name)}"
    if item.stateful:
        what = f"**{what}**"
    if item.kind == "deleted":
        line = f"- 🗑️ deleted outside Pulumi: {what}; `up` creates it again"
        if item.stateful:
            line += " (stateful: its data may be gone, check before `up`)"
        return line
    fields = " — " + ", ".join(code(f) for f in item.fields) if item.fields else ""
    return f"- ✏️ changed outside Pulumi: {what}{fields}; `up` sets it back"


def _counts(digest: Mapping[str, Any]) -> dict[str, int]:
    summary = digest.get("changeSummary")
    counts: dict[str, int] = {}
    if isinstance(summary, Mapping):
        counts = {str(op): int(n) for op, n in summary.items() if isinstance(n, int | float) and n}
    else:  # no summary (a failed run): count the steps themselves
        for step in digest.get("steps") or []:
            op = str(step.get("op", ""))
            counts[op] = counts.get(op, 0) + 1
    order = {op: i for i, op in enumerate(_OP_ORDER)}
    return dict(sorted(counts.items(), key=lambda kv: (kv[0] == "same", order.get(kv[0], len(order)), kv[0])))


def _errors(digest: Mapping[str, Any]) -> tuple[str, ...]:
    messages = []
    for diagnostic in digest.get("diagnostics") or []:
        if not isinstance(diagnostic, Mapping) or diagnostic.get("severity") != "error":
            continue
        message = str(diagnostic.get("message", "")).strip().removeprefix("error: ").strip()
        if message and message != "preview failed":
            messages.append(message)
    return tuple(dict.fromkeys(messages))


def code(text: str) -> str:
    """``text`` as inline code, safe for backticks inside it."""
    fence = "`"
    while fence in text:
        fence += "`"
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def marker(stack: str) -> str:
    return f"<!-- flightdeck-preview:{stack} -->"


def _risk_line(risk: Risk) -> str:
    what = f"{risk.kind} {code(risk.type)} {code(risk.name)}"
    if risk.stateful:
        what = f"**{what}**"
    icon = "⛔" if risk.dangerous else "⚠️" if risk.kind != "discard" else "ℹ️"
    notes = []
    if risk.stateful:
        notes.append("stateful")
    if risk.protected:
        notes.append("🔒 protected")
    if risk.delete_before_replace:
        notes.append("deleted before its replacement is created")
    if risk.retained:
        notes.append("retainOnDelete: the object is left in place")
    if risk.kind == "discard":
        notes.append("removed from Pulumi state only")
    line = f"- {icon} {what}"
    if notes:
        line += f" ({', '.join(notes)})"
    if risk.reasons:
        line += " — because of " + ", ".join(code(reason) for reason in risk.reasons)
    return line


def render(
    digest: Mapping[str, Any],
    *,
    stack: str = "",
    title: str = "Pulumi preview",
    stateful_types: frozenset[str] = STATEFUL_TYPES,
    limit: int = COMMENT_LIMIT,
    drift: Mapping[str, Any] | None = None,
) -> Summary:
    """The Markdown comment for one stack's preview, plus what CI needs to decide. ``drift``: a
    refresh-preview digest of the same stack (its drifted resources get a section of their own;
    they never make the change dangerous: the pull request did not cause them)."""
    counts = _counts(digest)
    found = risks(digest.get("steps") or [], stateful_types)
    errors = _errors(digest)
    dangerous = [risk for risk in found if risk.dangerous]
    drifted = drift_items(drift.get("steps") or [], stateful_types) if drift is not None else ()

    heading = f"### {title}" + (f": {code(stack)}" if stack else "")
    flags = (["❌ failed"] if errors else []) + (["⛔ dangerous changes"] if dangerous else [])
    flags += [f"🔀 drift ({len(drifted)})"] if drifted else []
    if not flags and not any(op != "same" for op in counts):
        flags.append("no changes")
    if flags:
        heading += " — " + ", ".join(flags)
    lines = [marker(stack), heading, ""]

    if any(op != "same" for op in counts):
        lines += ["| operation | count |", "|---|---:|"]
        lines += [f"| {_OP_LABELS.get(op, op)} | {n} |" for op, n in counts.items()]
        lines.append("")
    elif counts.get("same"):
        lines += [f"No changes ({counts['same']} resources unchanged).", ""]
    else:
        lines += ["No changes.", ""]

    if found:
        lines.append(f"#### Replacements and deletions ({len(found)}, {len(dangerous)} dangerous)")
        lines.append("")
        lines += [_risk_line(risk) for risk in found]
        lines.append("")
        if dangerous:
            lines.append(
                "⛔ = a stateful or protected resource would be replaced or deleted: its data "
                "(volume, database, users, namespace) would be lost. Review before merging."
            )
            lines.append("")

    if drift is not None:
        if drifted:
            lines.append(f"#### Drift since the last deployment ({len(drifted)})")
            lines.append("")
            lines += [_drift_line(item) for item in drifted]
            lines.append("")
        else:
            lines += ["No drift: the live objects match the last deployment.", ""]

    if errors:
        lines += ["#### Errors", ""]
        for message in errors:
            lines += ["```", message.replace("```", "'''"), "```"]
        lines.append("")

    markdown = "\n".join(lines).rstrip() + "\n"
    if len(markdown) > limit:
        cut = markdown[: limit - 200].rsplit("\n", 1)[0]
        markdown = f"{cut}\n\n… (truncated: {len(markdown)} characters; see the workflow log)\n"
    return Summary(stack=stack, counts=counts, risks=found, errors=errors, markdown=markdown, drift=drifted)
