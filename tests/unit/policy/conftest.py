"""Rendered stacks as the policies see them (rendered once per test session, then copied)."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Callable

import pytest

from tests.unit.harness import deploy, stack_file_config
from tests.unit.policy.policy_args import Resources

_RENDERED: dict[str, Resources] = {}


def rendered(stack: str) -> Resources:
    """A fresh copy of the stack's resources (tests edit them into violating variants)."""
    if stack not in _RENDERED:
        asyncio.set_event_loop(asyncio.new_event_loop())
        _RENDERED[stack] = Resources.of(deploy(stack_file_config(stack), stack=stack))
    return copy.deepcopy(_RENDERED[stack])


@pytest.fixture
def stack() -> Callable[[str], Resources]:
    return rendered
