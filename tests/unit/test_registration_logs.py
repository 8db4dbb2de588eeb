"""components/registration_logs.py: the SDK's per-resource progress lines stay in the program."""

from __future__ import annotations

import inspect
import re
from collections.abc import Iterator
from typing import Any

import pulumi.log
import pulumi.runtime.resource
import pulumi.runtime.rpc_manager
import pytest
from hypothesis import given
from hypothesis import strategies as st

from components import registration_logs


class _Engine:
    def __init__(self) -> None:
        self.messages: list[str] = []

    def Log(self, request: Any) -> None:  # noqa: N802 - the gRPC stub's method name
        self.messages.append(request.message)


@pytest.fixture
def engine(monkeypatch: pytest.MonkeyPatch) -> Iterator[_Engine]:
    fake = _Engine()
    monkeypatch.setattr(pulumi.log, "get_engine", lambda: fake)
    # The SDK's own function (a program run earlier in this worker may have wrapped it); restored after.
    monkeypatch.setattr(pulumi.log, "debug", getattr(pulumi.log.debug, "__wrapped__", pulumi.log.debug))
    yield fake


def test_registration_progress_is_dropped_and_everything_else_reaches_the_engine(engine: _Engine) -> None:
    registration_logs.drop_registration_progress_logs({})
    pulumi.log.debug("registering resource: ty=kubernetes:core/v1:Namespace, name=shop, custom=True, remote=False")
    pulumi.log.debug("resource registration successful: ty=x, urn=urn:pulumi:s::p::x::shop")
    pulumi.log.debug("beginning rpc register resource")
    pulumi.log.debug("exception when preparing or executing rpc for ty='x' name='shop': Traceback ...")
    pulumi.log.debug("shop: pods ready")
    pulumi.log.info("registering resource: an info line is never touched")
    assert engine.messages == [
        "exception when preparing or executing rpc for ty='x' name='shop': Traceback ...",
        "shop: pods ready",
        "registering resource: an info line is never touched",
    ]


def test_installing_twice_wraps_once(engine: _Engine) -> None:
    registration_logs.drop_registration_progress_logs({})
    first = pulumi.log.debug
    registration_logs.drop_registration_progress_logs({})
    assert pulumi.log.debug is first


@pytest.mark.parametrize("value", ["1", "true", "yes"])
def test_the_opt_out_keeps_every_line(engine: _Engine, value: str) -> None:
    registration_logs.drop_registration_progress_logs({registration_logs.KEEP_VARIABLE: value})
    pulumi.log.debug("registering resource: ty=x, name=shop, custom=True, remote=False")
    assert engine.messages == ["registering resource: ty=x, name=shop, custom=True, remote=False"]


@given(st.text())
def test_only_messages_that_start_with_a_progress_prefix_are_dropped(text: str) -> None:
    assert registration_logs.is_registration_progress(text) == any(
        text.startswith(prefix) for prefix in registration_logs.REGISTRATION_PROGRESS_PREFIXES
    )


def test_the_pinned_sdk_still_logs_exactly_these_prefixes() -> None:
    """An SDK bump that rewords the lines would silently undo the saving: fail here instead."""
    source = inspect.getsource(pulumi.runtime.resource) + inspect.getsource(pulumi.runtime.rpc_manager)
    for prefix in registration_logs.REGISTRATION_PROGRESS_PREFIXES:
        assert re.search(r'(log\.debug\(\s*|msg = )f"' + re.escape(prefix), source), prefix
