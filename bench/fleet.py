"""Pure parts of the engine benchmark: the generated fleet, medians, the growth fit, the table."""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from typing import Any

MARIADB_NAMESPACE = "mariadb"
WEB_REPLICAS = 1  # pods are kwok fakes: more replicas load the scheduler, not Pulumi


def fleet_config(
    sites: int, mysql_host: str, mysql_port: int, kube_context: str = "flightdeck-local"
) -> dict[str, Any]:
    """The ``config:`` mapping of a stack file: the local rig's platform with ``sites`` sites.

    The same shape as ``Pulumi.local.yaml`` (operator-managed Galera MariaDB on the local control
    plane) except that SQL goes ``direct`` to the local server behind the MariaDB pods, as it does
    from a runner inside the cluster; the server's connection budget is sized for the fleet.
    """
    return {
        "pulumi:disable-default-providers": ["kubernetes"],
        "flightdeck:kubernetes": {"context": kube_context, "clusterIdentifier": kube_context},
        "flightdeck:mysql": {
            "mode": "operator",
            "size": "1Gi",
            "readerCount": 2,
            "maxConnections": max(1000, sites * WEB_REPLICAS * 25 + 100),
            "resources": {"requests": {"cpu": "100m", "memory": "256Mi"}, "limits": {"memory": "512Mi"}},
            "access": {"mode": "direct", "host": mysql_host, "port": mysql_port},
        },
        "flightdeck:storage": {"storageClass": "rook-cephfs"},
        "flightdeck:certificates": {"acmeEmail": "ops@example.org", "environment": "staging"},
        "flightdeck:backups": {
            "window": {"start": "00:00", "end": "23:55", "slotMinutes": 5},
            # Two backups (files, database) per site over 287 five-minute slots, at 75 % load at most.
            "maxConcurrent": max(4, math.ceil(2 * sites / (287 * 0.75))),
            "retentionDays": 3,
            "databaseBackups": {"storage": {"persistentVolumeClaim": {"size": "1Gi"}}},
        },
        "flightdeck:sites": [site(i) for i in range(sites)],
    }


def site(index: int) -> dict[str, Any]:
    name = f"site-{index:04d}"
    return {
        "name": name,
        "cms": "wordpress" if index % 2 else "drupal",
        "domains": [f"{name}.flightdeck.test"],
        "replicas": WEB_REPLICAS,
        "filesSize": "1Gi",
    }


# How the CLI displays a preview (engine_scale --preview-display): (arguments, environment), the
# CLI's default first. The display runs in the engine's process and keeps what it will print
# until the end (pulumi pkg/v3 v3.274.1 backend/display): "progress", the CLI's default, a deep
# copy of every resource's step, unchanged ones included (rows.go); "digest", `pulumi preview
# --json` as `flightdeck preview` runs it, the changed steps only (json.go ShowPreviewDigest);
# "stream", the same flag with streaming on, each event written as it comes and nothing kept
# (json.go ShowJSONEvents).
PREVIEW_DISPLAYS: dict[str, tuple[tuple[str, ...], dict[str, str]]] = {
    "progress": ((), {}),
    "digest": (("--json",), {}),
    "stream": (("--json",), {"PULUMI_ENABLE_STREAMING_JSON_PREVIEW": "true"}),
}
DEFAULT_DISPLAY = next(iter(PREVIEW_DISPLAYS))
# The fleet's operations in the order they run and are reported.
FLEET_OPS = ("preview", "preview_fast", "up", "noop", "preview_deployed", "refresh")


def display_key(op: str, display: str) -> str:
    """Result key of an operation in a display: "preview_fast", "preview_fast_digest", ..."""
    return op if display == DEFAULT_DISPLAY else f"{op}_{display}"


def fleet_op_keys(result: Mapping[str, Any]) -> list[str]:
    """The operation keys a fleet result holds, in order."""
    keys = (display_key(op, display) for op in FLEET_OPS for display in PREVIEW_DISPLAYS)
    return [key for key in keys if key in result]


def values_at(items: Sequence[Mapping[str, Any]], *path: str) -> list[float]:
    """The numbers found at ``path`` (nested keys) in each of ``items``; the others left out."""
    values: list[float] = []
    for item in items:
        value: Any = item
        for key in path:
            value = value.get(key) if isinstance(value, Mapping) else None
        if isinstance(value, (int, float)):
            values.append(float(value))
    return values


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values)) if values else math.nan


def growth_exponent(points: Mapping[int, float]) -> float:
    """``k`` of the least-squares fit ``y = c * n**k`` over (n, y) points (at least two, y > 0)."""
    usable = [(math.log(n), math.log(y)) for n, y in points.items() if n > 0 and y > 0]
    if len(usable) < 2:
        raise ValueError("need two or more points with n > 0 and y > 0")
    mean_x = sum(x for x, _ in usable) / len(usable)
    mean_y = sum(y for _, y in usable) / len(usable)
    var_x = sum((x - mean_x) ** 2 for x, _ in usable)
    if var_x == 0:
        raise ValueError("need two or more distinct n")
    return sum((x - mean_x) * (y - mean_y) for x, y in usable) / var_x


def ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator else math.nan


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    def cell(value: object) -> str:
        if isinstance(value, float):
            return "n/a" if math.isnan(value) else f"{value:.2f}"
        return str(value)

    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)
