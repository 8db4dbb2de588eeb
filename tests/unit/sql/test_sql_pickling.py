"""Constructing many dynamic resources stays linear (works around a Pulumi SDK bug)."""

from __future__ import annotations

import asyncio
import pickle

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


def test_thousands_of_dynamic_resources_construct() -> None:
    # Without unwrap_pickler the ~950th construction in one program raises RecursionError
    # (the time per construction is measured by bench/render_scale.py, not asserted here).
    asyncio.set_event_loop(asyncio.new_event_loop())
    pulumi.runtime.set_mocks(FlightdeckMocks(), project="flightdeck", stack="test", preview=False)

    @pulumi.runtime.test  # type: ignore[untyped-decorator]
    def program() -> None:
        for index in range(1500):
            MySQLGrant(f"grant-{index}", MySQLGrantArgs(user=f"u{index}", database=f"d{index}", privileges=["SELECT"]))

    program()
