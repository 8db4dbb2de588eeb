"""Keeps Pulumi's dynamic-provider pickling linear in the number of resources.

``pulumi.dynamic.serialize_provider`` (SDK 3.272.0) wraps ``pickle._Pickler._batch_setitems``
in a key-sorting wrapper every time a dynamic resource is constructed, and never unwraps it.
The N-th resource then pickles through N nested wrappers: quadratic time, and a
``RecursionError`` after roughly 950 dynamic resources in one program (about 300 sites with
a database, a user and a grant each). Measured in bench/render_scale.py; see pulumi/pulumi#17803.

``unwrap_pickler`` restores the original method before each construction, so exactly one
sorting wrapper (the one that makes the pickle deterministic) is in place while pickling.
"""

from __future__ import annotations

import pickle
from typing import Any

_WRAPPER_SCOPE = "serialize_provider.<locals>."


def _original(method: Any) -> Any:
    while _WRAPPER_SCOPE in getattr(method, "__qualname__", "") and method.__closure__:
        inner = next(
            (cell.cell_contents for cell in method.__closure__ if callable(cell.cell_contents)),
            None,
        )
        if inner is None:
            break
        method = inner
    return method


def unwrap_pickler() -> None:
    """Undo the wrappers earlier dynamic-resource constructions left on the pure-Python pickler."""
    pickler: Any = pickle._Pickler
    pickler._batch_setitems = _original(pickler._batch_setitems)
