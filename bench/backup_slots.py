"""How stable and how fast the backup spreading is.

For several window shapes and loads, adds one random site to a random set of sites many times
and counts how many *other* backups move; also times planning for large fleets.
Run: .venv/bin/python -m bench.backup_slots  (results are written down in bench/RESULTS.md)
"""

from __future__ import annotations

import random
import statistics
import time
from collections import Counter

from components.backup_slots import assign_slots

TRIALS = 400
SHAPES = [  # (slots, maxConcurrent, load)
    (16, 2, 0.50),
    (16, 2, 0.75),
    (16, 2, 0.95),
    (48, 3, 0.75),
    (48, 3, 0.95),
    (96, 4, 0.90),
]


def stability(slots: int, capacity: int, load: float, rng: random.Random) -> Counter[int]:
    moved: Counter[int] = Counter()
    size = int(slots * capacity * load) - 1
    for trial in range(TRIALS):
        jobs = {f"files/site-{rng.randrange(10**9)}" for _ in range(size)}
        before = assign_slots(jobs, slots, capacity)
        after = assign_slots(jobs | {f"db/new-{trial}"}, slots, capacity)
        moved[sum(1 for job in jobs if before[job] != after[job])] += 1
    return moved


def main() -> None:
    rng = random.Random(20261124)
    print(f"backups moved by adding one site ({TRIALS} trials each)")
    print("slots  maxConc  load   mean   p99  max  distribution")
    for slots, capacity, load in SHAPES:
        moved = stability(slots, capacity, load, rng)
        samples = sorted(moved.elements())
        p99 = samples[int(len(samples) * 0.99) - 1]
        print(
            f"{slots:5d}  {capacity:7d}  {load:4.2f}  {statistics.mean(samples):5.2f}  {p99:4d}  {max(samples):3d}  "
            + " ".join(f"{k}:{v}" for k, v in sorted(moved.items()))
        )
    print("\nplanning time")
    for sites in (100, 500, 2000):
        jobs = [f"{kind}/site-{i}" for i in range(sites) for kind in ("files", "db")]
        slots = 288  # 24 h of 5-minute slots
        capacity = -(-len(jobs) // slots) + 2
        start = time.perf_counter()
        assign_slots(jobs, slots, capacity)
        print(f"{sites:5d} sites ({len(jobs)} jobs, {slots} slots x {capacity}): {time.perf_counter() - start:.3f} s")


if __name__ == "__main__":
    main()
