"""Constructing many dynamic resources stays linear (works around a Pulumi SDK bug)."""

from __future__ import annotations

import asyncio
import pickle
import sys
from types import FrameType

import pulumi
from pulumi.dynamic.dynamic import serialize_provider

from components.sql import MySQLGrant, MySQLGrantArgs
from components.sql.pickling import unwrap_pickler
from components.sql.providers import GrantProvider
from tools.render_stack import FlightdeckMocks


def test_repeated_serialization_leaves_one_wrapper() -> None:
    for _ in range(50):
        unwrap_pickler()
        serialize_provider(GrantProvider())
    unwrap_pickler()
    assert "serialize_provider" not in pickle._Pickler._batch_setitems.__qualname__  # type: ignore[attr-defined]


def test_serialization_is_deterministic_and_by_reference() -> None:
    unwrap_pickler()
    first = serialize_provider(GrantProvider())
    unwrap_pickler()
    assert serialize_provider(GrantProvider()) == first
    assert len(first) < 400


def _stack_depth() -> int:
    frame: FrameType | None = sys._getframe()
    depth = 0
    while frame is not None:
        frame, depth = frame.f_back, depth + 1
    return depth


def test_many_dynamic_resources_construct_in_a_shallow_stack() -> None:
    # Without unwrap_pickler the N-th construction pickles through N nested wrappers: with
    # Python's default recursion limit the ~950th construction in one program raises
    # RecursionError. A limit of 150 frames above this test's own makes the same bug fail
    # within ~150 constructions, so 400 show it at a third of the cost (the time per
    # construction is measured by bench/render_scale.py, not asserted here).
    asyncio.set_event_loop(asyncio.new_event_loop())
    pulumi.runtime.set_mocks(FlightdeckMocks(), project="flightdeck", stack="test", preview=False)
    default_limit = sys.getrecursionlimit()

    @pulumi.runtime.test  # type: ignore[untyped-decorator]
    def program() -> None:
        sys.setrecursionlimit(_stack_depth() + 150)
        try:
            for index in range(400):
                args = MySQLGrantArgs(user=f"u{index}", database=f"d{index}", privileges=["SELECT"])
                MySQLGrant(f"grant-{index}", args)
        finally:
            sys.setrecursionlimit(default_limit)

    program()
