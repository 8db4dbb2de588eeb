"""Keeps the Pulumi SDK's per-resource progress lines off the engine's wire.

The Python SDK (3.272.0, ``pulumi/runtime/resource.py`` and ``rpc_manager.py``) logs four to five
``debug`` lines for every resource it registers ("registering resource: ...", "resource
registration prepared", "beginning rpc register resource", "resource registration successful",
...). Each is a *synchronous* ``Engine.Log`` RPC from the program's event loop, and the engine
turns each into an event: a 1,000-site fleet sent ~150,000 of them per preview, which the CLI
only shows under ``--debug`` and the event log (every Automation API run) stores. The Node SDK
gates the same lines behind ``excessiveDebugOutput``; the Python SDK has no switch.

Measured on the real engine (``bench/RESULTS.md``, 30 sites, alternating runs): the preview took
14 % less wall time and 16 % less CPU in all, 28 % less in the engine, with these lines dropped.

Only those routine progress lines are dropped: every other debug message (the SDK's exception
traces, flightdeck's own) still reaches the engine. ``FLIGHTDECK_SDK_REGISTRATION_LOGS=1`` keeps
them all, for debugging the SDK itself with ``pulumi up --debug``.
*Upstream*: gate them as the Node SDK does, or send them only when the engine's log level asks.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any

import pulumi.log

KEEP_VARIABLE = "FLIGHTDECK_SDK_REGISTRATION_LOGS"

# The messages the SDK's registration, read and RPC bookkeeping log for every resource.
REGISTRATION_PROGRESS_PREFIXES = (
    "registering resource: ",
    "resource registration prepared: ",
    "resource registration successful: ",
    "register resource outputs prepared: ",
    "beginning rpc ",
    "reading resource: ",
    "read prepared: ",
    "resource read successful: ",
)


def is_registration_progress(message: object) -> bool:
    return isinstance(message, str) and message.startswith(REGISTRATION_PROGRESS_PREFIXES)


def _filtered(debug: Callable[..., None]) -> Callable[..., None]:
    def debug_without_registration_progress(msg: str, *args: Any, **kwargs: Any) -> None:
        if not is_registration_progress(msg):
            debug(msg, *args, **kwargs)

    debug_without_registration_progress.__wrapped__ = debug  # type: ignore[attr-defined]
    return debug_without_registration_progress


def drop_registration_progress_logs(environ: Mapping[str, str] = os.environ) -> None:
    """Filter ``pulumi.log.debug`` (which the SDK's runtime looks up at each call); idempotent."""
    if environ.get(KEEP_VARIABLE, "") not in ("", "0", "false"):
        return
    current = pulumi.log.debug
    if getattr(current, "__wrapped__", None) is None:
        pulumi.log.debug = _filtered(current)
