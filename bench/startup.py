"""Program start: the program's imports and the config validation of N sites, in a fresh process.

    python -m bench.startup 100     # one JSON line: seconds since interpreter start per phase

Measures what ``__main__.py`` does before it registers its first resource, minus the engine:
import the program's modules (Pulumi SDK, the kubernetes and random SDKs, pydantic, components)
and validate a generated stack of N sites (``bench/fleet.py``). ``interpreter`` is the time from
process start to the first line here, read from the kernel's process start time.
"""

from __future__ import annotations

import time

STARTED = time.perf_counter()

import json  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402


def _since_process_start() -> float:
    """Seconds since the kernel started this process (covers the interpreter's own start-up)."""
    with open(f"/proc/{os.getpid()}/stat") as handle:
        stat = handle.read()
    start_ticks = int(stat[stat.rfind(")") + 2 :].split()[19])
    with open("/proc/uptime") as handle:
        uptime = float(handle.read().split()[0])
    return uptime - start_ticks / os.sysconf("SC_CLK_TCK")


def main() -> None:
    sites = int(sys.argv[1]) if len(sys.argv) > 1 else 100
    interpreter = _since_process_start() - (time.perf_counter() - STARTED)
    before_imports = time.perf_counter()
    import pulumi  # noqa: F401

    after_pulumi = time.perf_counter()
    from components import previous_deployment, stack_config  # noqa: F401
    from components.platform import Platform  # noqa: F401

    after_imports = time.perf_counter()
    from bench.fleet import fleet_config
    from components.config import validate_stack_config

    config = fleet_config(sites, "127.0.0.1", 3306)
    raw = {key.removeprefix("flightdeck:"): value for key, value in config.items() if key.startswith("flightdeck:")}
    validate_stack_config(raw, stack="bench")
    validated = time.perf_counter()
    print(
        json.dumps(
            {
                "sites": sites,
                "interpreter": round(max(interpreter, 0.0), 3),
                "import_pulumi": round(after_pulumi - before_imports, 3),
                "import_program": round(after_imports - before_imports, 3),
                "validate": round(validated - after_imports, 3),
                "total": round(max(interpreter, 0.0) + validated - before_imports, 3),
            }
        )
    )


if __name__ == "__main__":
    main()
