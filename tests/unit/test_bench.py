"""The benchmark's pure parts: the generated fleet is a valid stack, the growth fit, event logs."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bench.engine_run import role_of, summarize_events
from bench.fleet import display_key, fleet_config, fleet_op_keys, growth_exponent, markdown_table, median
from components.config import validate_stack_config


@pytest.mark.parametrize("sites", [1, 10, 300])
def test_the_generated_fleet_passes_config_validation(sites: int) -> None:
    config = fleet_config(sites, "127.0.0.1", 3306)
    raw = {key.removeprefix("flightdeck:"): value for key, value in config.items() if key.startswith("flightdeck:")}
    model = validate_stack_config(raw, stack="bench")
    assert len(model.sites) == sites
    assert len({site.name for site in model.sites}) == sites


@given(
    k=st.floats(min_value=0.2, max_value=2.5),
    c=st.floats(min_value=0.01, max_value=100.0),
    sizes=st.lists(st.integers(min_value=1, max_value=5000), min_size=2, max_size=6, unique=True),
)
def test_growth_exponent_recovers_a_power_law(k: float, c: float, sizes: list[int]) -> None:
    assert math.isclose(growth_exponent({n: c * n**k for n in sizes}), k, rel_tol=1e-6, abs_tol=1e-6)


def test_growth_exponent_needs_two_sizes() -> None:
    with pytest.raises(ValueError):
        growth_exponent({100: 3.0})


def test_median_and_table() -> None:
    assert median([3.0, 1.0, 2.0]) == 2.0 and math.isnan(median([]))
    table = markdown_table(["a", "b"], [[1, 0.5], ["x", math.nan]])
    assert table.splitlines() == ["| a | b |", "|---|---|", "| 1 | 0.50 |", "| x | n/a |"]


def test_process_roles() -> None:
    assert role_of(["/venv/bin/python", "/cli/pulumi-language-python-exec", "--monitor", "x"]) == "program"
    assert role_of(["/venv/bin/python", "-u", "-m", "pulumi.dynamic", "127.0.0.1:1"]) == "dynamic-provider"
    assert role_of(["/home/plugins/resource-kubernetes-v4.25.0/pulumi-resource-kubernetes", "x"]) == "kubernetes"
    assert role_of(["/cli/bin/pulumi", "up"]) == "engine"
    assert role_of(["/bin/sh", "/cli/bin/pulumi-resource-pulumi-python"]) is None  # its python child counts
    assert role_of([]) is None


def test_event_log_summary(tmp_path: Path) -> None:
    events = [
        {"resourcePreEvent": {"metadata": {"type": "pulumi:pulumi:Stack", "op": "same"}}},
        {"resourcePreEvent": {"metadata": {"type": "pulumi:providers:kubernetes", "op": "create"}}},
        {"resourcePreEvent": {"metadata": {"type": "kubernetes:core/v1:ConfigMap", "op": "create"}}},
        {"resourcePreEvent": {"metadata": {"type": "random:index/randomString:RandomString", "op": "same"}}},
        {"diagnosticEvent": {"severity": "error", "message": "boom\n"}},
        {"summaryEvent": {"resourceChanges": {"create": 1, "same": 2}}},
    ]
    log = tmp_path / "events.jsonl"
    log.write_text("\n".join(json.dumps(e) for e in events) + "\nnot json\n")
    assert summarize_events(log) == ({"create": 1, "same": 2}, {"create": 1, "same": 1}, ["boom"])


def test_fleet_operation_keys_in_order_and_per_display() -> None:
    assert display_key("preview_fast", "progress") == "preview_fast"
    assert display_key("preview_fast", "stream") == "preview_fast_stream"
    result = {"refresh": [], "preview_fast_digest": [], "up": [], "preview_fast": [], "sites": 10, "preview_x": []}
    assert fleet_op_keys(result) == ["preview_fast", "preview_fast_digest", "up", "refresh"]
