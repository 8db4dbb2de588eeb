"""Markdown tables (for bench/RESULTS.md) from the JSON files ``bench.engine_scale`` writes.

.venv/bin/python -m bench.report ~/.cache/flightdeck/bench/results/engine-*.json
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from bench.fleet import fleet_op_keys, growth_exponent, markdown_table, median, ratio, values_at

ROLES = ("engine", "program", "dynamic-provider", "kubernetes", "random", "mysql", "language-host")


def med(items: Sequence[Mapping[str, Any]], *path: str) -> float:
    return median(values_at(items, *path))


def _seconds(items: Sequence[Mapping[str, Any]]) -> str:
    """``median (min-max, n runs)`` of the successful runs; failures are counted apart."""
    ok = [i for i in items if i.get("ok")]
    failed = len(items) - len(ok)
    values = sorted(values_at(ok, "seconds"))
    if not values:
        return f"failed ({failed})" if failed else "-"
    text = f"{median(values):.2f}"
    if len(values) > 1:
        text += f" ({values[0]:.1f}-{values[-1]:.1f}, n={len(values)})"
    return text + (f", {failed} failed" if failed else "")


def _writes(items: Sequence[Mapping[str, Any]]) -> str:
    totals = [sum(((i.get("server") or {}).get("writes") or {}).values()) for i in items]
    return "-" if not totals else str(max(totals))


def _peaks(items: Sequence[Mapping[str, Any]]) -> dict[str, float]:
    peaks: dict[str, float] = {}
    for item in items:
        for role, mib in (item.get("peak_mib") or {}).items():
            peaks[role] = max(peaks.get(role, 0.0), float(mib))
    return peaks


def fleet_rows(results: Sequence[Mapping[str, Any]]) -> str:
    rows: list[list[object]] = []
    for result in sorted(results, key=lambda r: int(r["sites"])):
        part = result["parts"].get("fleet") or {}
        sites = int(result["sites"])
        for op in fleet_op_keys(part):
            items = part.get(op) or []
            if not items:
                continue
            peaks = _peaks(items)
            at_once = max((float(i.get("peak_total_mib") or 0) for i in items), default=0.0)
            rows.append([
                sites, op, _seconds(items), med(items, "load_before"),
                med(items, "server", "round_trips") / sites, med(items, "server", "connections"), _writes(items),
                " / ".join(f"{peaks.get(role, 0):.0f}" for role in ("engine", "program", "dynamic-provider",
                                                                    "kubernetes", "random")),
                f"{at_once:.0f}" if at_once else "-",
            ])  # fmt: skip
    header = ["sites", "operation", "seconds: median (range, runs)", "load", "SQL round trips / site",
              "connections", "SQL writes", "peak RSS MiB: engine / program / dynamic host / k8s / random",
              "all processes at once MiB"]  # fmt: skip
    return markdown_table(header, rows)


def state_rows(results: Sequence[Mapping[str, Any]]) -> str:
    rows: list[list[object]] = []
    for result in sorted(results, key=lambda r: int(r["sites"])):
        part = result["parts"].get("fleet") or {}
        if part.get("state_bytes"):
            sites = int(result["sites"])
            planned = part.get("planned") or {}
            rows.append([sites, sum(planned.values()), f"{part['state_bytes'] / 1024:.0f}",
                         f"{part['state_bytes'] / 1024 / sites:.1f}"])  # fmt: skip
    return markdown_table(["sites", "resources", "state file KiB", "KiB / site"], rows)


def baseline_rows(results: Sequence[Mapping[str, Any]]) -> str:
    rows: list[list[object]] = []
    for result in sorted(results, key=lambda r: int(r["sites"])):
        fleet_part = result["parts"].get("fleet") or {}
        base = result["parts"].get("baseline") or {}
        if not base:
            continue
        for op in ("preview", "preview_fast", "up", "noop"):
            ours, theirs = fleet_part.get(op) or [], base.get(op) or []
            if ours and theirs:
                rows.append([int(result["sites"]), f"{base['configMaps']} ConfigMaps + {base['randoms']} random", op,
                             _seconds(ours), _seconds(theirs),
                             ratio(med(ours, "seconds"), med(theirs, "seconds"))])  # fmt: skip
    return markdown_table(["sites", "baseline resources", "operation", "flightdeck s", "baseline s", "ratio"], rows)


SQL_LABELS = {
    "flightdeck-databases": "flightdeck, databases",
    "peer-databases": "pulumi-mysql, databases",
    "flightdeck-sites": "flightdeck, database + user + grant",
    "peer-databases-x3": "pulumi-mysql, 3 databases per site",
}


def sql_rows(result: Mapping[str, Any]) -> str:
    part = result["parts"]["sql"]
    sites = int(part["sites"])
    rows: list[list[object]] = []
    for label, case in part["cases"].items():
        for op in ("create", "noop", "refresh"):
            items = case[op]
            server = [i.get("server") or {} for i in items]
            rows.append([
                SQL_LABELS.get(label, label), case["resources"], op, _seconds(items), med(items, "load_before"),
                median([s.get("statements", 0) for s in server]) / sites,
                median([s.get("round_trips", 0) for s in server]) / sites,
                median([s.get("connections", 0) for s in server]), _writes(items),
            ])  # fmt: skip
    header = ["program", "resources", "operation", "seconds: median (range, runs)", "load", "statements / site",
              "round trips / site", "connections", "SQL writes"]  # fmt: skip
    return markdown_table(header, rows)


def sql_targets(result: Mapping[str, Any]) -> str:
    cases = result["parts"]["sql"]["cases"]

    def m(label: str, op: str) -> float:
        return med([i for i in cases.get(label, {}).get(op, []) if i.get("ok")], "seconds")

    rows = [
        ["databases create: pulumi-mysql / flightdeck (target >= 2)",
         ratio(m("peer-databases", "create"), m("flightdeck-databases", "create"))],
        ["databases no-op: flightdeck / pulumi-mysql (target <= 1)",
         ratio(m("flightdeck-databases", "noop"), m("peer-databases", "noop"))],
        ["databases refresh: flightdeck / pulumi-mysql (target <= 1)",
         ratio(m("flightdeck-databases", "refresh"), m("peer-databases", "refresh"))],
        ["sites (300 resources) create / pulumi-mysql 300 databases create (target <= 1.5)",
         ratio(m("flightdeck-sites", "create"), m("peer-databases-x3", "create"))],
    ]  # fmt: skip
    return markdown_table(["target", "measured ratio of medians"], rows)


def growth(results: Sequence[Mapping[str, Any]]) -> str:
    lines: list[str] = []
    for op in ("preview", "preview_fast"):
        points: dict[int, float] = {}
        memory: dict[int, float] = {}
        for result in results:
            items = (result["parts"].get("fleet") or {}).get(op) or []
            ok = [i for i in items if i.get("ok")]
            if ok:
                points[int(result["sites"])] = med(ok, "seconds")
                memory[int(result["sites"])] = max(sum((i.get("peak_mib") or {}).values()) for i in ok)
        if len(points) < 2:
            lines.append(f"- {op}: fewer than two fleet sizes measured")
            continue
        lines.append(
            f"- {op}: time ~ N^{growth_exponent(points):.2f}, summed peak RSS of all processes "
            f"~ N^{growth_exponent(memory):.2f}, over N = {sorted(points)}"
        )
    return "\n".join(lines)


def program_start(results: Sequence[Mapping[str, Any]]) -> str:
    rows: list[list[object]] = []
    for result in sorted(results, key=lambda r: int(r["sites"])):
        runs = (result.get("program_start") or {}).get("runs") or []
        if runs:
            rows.append([int(result["sites"]), med(runs, "interpreter"), med(runs, "import_program"),
                         med(runs, "validate"), med(runs, "total"), len(runs)])  # fmt: skip
    return markdown_table(["sites", "interpreter s", "imports s", "config validation s", "total s", "runs"], rows)


def main(argv: Sequence[str] | None = None) -> int:
    files = [Path(a) for a in (argv if argv is not None else sys.argv[1:])]
    results = [json.loads(f.read_text()) for f in files]
    print("## Program start\n\n" + program_start(results) + "\n")
    with_fleet = [r for r in results if r["parts"].get("fleet")]
    if with_fleet:
        print("## Fleet on the engine\n\n" + fleet_rows(with_fleet) + "\n")
        print(state_rows(with_fleet) + "\n")
        print("## Against the baseline\n\n" + baseline_rows(with_fleet) + "\n")
        print(growth(with_fleet) + "\n")
    for result in results:
        if result["parts"].get("sql"):
            print(f"## SQL, {result['sites']} sites ({result['started']}, {result['components']})\n")
            print(sql_rows(result) + "\n")
            print(sql_targets(result) + "\n")
            findings = result["parts"]["sql"].get("findings") or {}
            print("```json\n" + json.dumps(findings, indent=1) + "\n```\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
