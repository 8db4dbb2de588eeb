"""How long the program takes to build its resource graph, and how much memory, per fleet size.

Runs the real program under the dry renderer (no engine, no cluster), so it measures
flightdeck's own cost: config validation, backup planning and component construction.
Run: .venv/bin/python -m bench.render_scale  (results are written down in bench/RESULTS.md)
"""

from __future__ import annotations

import asyncio
import resource
import sys
import time
from typing import Any

from tools.render_stack import deploy


def fleet(sites: int) -> dict[str, Any]:
    return {
        # Every site's account is capped (2 replicas x 25 connections): the server must fit them all.
        "mysql": {"mode": "operator", "readerCount": 2, "maxConnections": max(1000, sites * 50 + 20)},
        "certificates": {"acmeEmail": "ops@example.org", "environment": "production"},
        "backups": {"window": {"start": "00:00", "end": "23:55", "slotMinutes": 5}, "maxConcurrent": 4},
        "sites": [
            {
                "name": f"site-{i:04d}",
                "cms": "wordpress" if i % 2 else "drupal",
                "domains": [f"site-{i:04d}.example.org", f"www.site-{i:04d}.example.org"],
            }
            for i in range(sites)
        ],
    }


def main() -> None:
    sizes = [int(arg) for arg in sys.argv[1:]] or [10, 100, 300]
    print("sites  resources  seconds  peak RSS (MiB, cumulative)")
    for sites in sizes:
        asyncio.set_event_loop(asyncio.new_event_loop())
        start = time.perf_counter()
        deployment = deploy(fleet(sites), stack="bench")
        elapsed = time.perf_counter() - start
        peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"{sites:5d}  {len(deployment.registrations):9d}  {elapsed:7.2f}  {peak_mib:8.0f}")


if __name__ == "__main__":
    main()
