"""PHP/nginx size syntax and the generated ini: exact, and what the config asks for."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from components.config import validate_stack_config
from components.php_settings import REQUEST_OVERHEAD_BYTES, nginx_size, php_size, render_php_ini
from tests.unit.harness import minimal_config

_FACTORS = {"": 1, "K": 2**10, "M": 2**20, "G": 2**30}


def _php_bytes(value: str) -> int:
    """How PHP reads a shorthand size (ini_parse_quantity: K, M, G are powers of 1024)."""
    suffix = value[-1] if value[-1] in "KMG" else ""
    return int(value[: len(value) - len(suffix)]) * _FACTORS[suffix]


@settings(max_examples=300, derandomize=True, deadline=None)
@given(st.integers(min_value=1, max_value=2**40))
def test_sizes_are_exact_in_both_syntaxes(size: int) -> None:
    assert _php_bytes(php_size(size)) == size
    assert _php_bytes(nginx_size(size).upper()) == size
    assert nginx_size(size) == php_size(size).lower()


def test_largest_exact_unit() -> None:
    assert php_size(64 * 2**20) == "64M"
    assert php_size(2**30) == "1G"
    assert php_size(1536 * 2**10) == "1536K"
    assert php_size(64 * 10**6) == "62500K"  # 64M in Kubernetes' decimal suffix
    assert php_size(1001) == "1001"


def test_ini_carries_upload_post_and_memory_limits() -> None:
    config = minimal_config()
    config["sites"][0].update(maxUploadSize="256Mi", php={"memoryLimit": "384Mi"})
    site = validate_stack_config(config).sites[0]
    lines = render_php_ini(site).splitlines()
    assert "upload_max_filesize = 256M" in lines
    assert f"post_max_size = {php_size(256 * 2**20 + REQUEST_OVERHEAD_BYTES)}" in lines
    assert "memory_limit = 384M" in lines
