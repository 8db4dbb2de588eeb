"""The Pulumi toolchain's pure parts: versions agree with the pins, stamps, the environment."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from tools import pulumi_toolchain as tc

REPO = Path(__file__).resolve().parents[3]


def pins() -> dict[str, str]:
    found = {}
    for line in (REPO / "requirements.txt").read_text().splitlines():
        match = re.match(r"^([A-Za-z0-9_.-]+)==([^\s#]+)", line)
        if match:
            found[match.group(1).lower()] = match.group(2)
    return found


def test_the_python_sdks_are_pinned_to_exactly_the_plugins_the_toolchain_builds() -> None:
    # Each wheel's pulumi-plugin.json names the plugin version the engine loads.
    assert pins()["pulumi-kubernetes"] == tc.PLUGINS["kubernetes"]
    assert pins()["pulumi-random"] == tc.PLUGINS["random"]


def test_every_plugin_has_a_build_recipe() -> None:
    for name, version in tc.PLUGINS.items():
        assert (name == "kubernetes" and version in tc.KUBERNETES_PSEUDO_VERSIONS) or name in tc.BRIDGED


def test_the_standins_provide_what_the_bridge_schema_generator_references() -> None:
    for module, folder in tc.BRIDGE_STANDINS.items():
        go_mod = (tc.STANDINS_DIR / folder / "go.mod").read_text()
        assert go_mod.splitlines()[0] == f"module {module}"
    dotnet = (tc.STANDINS_DIR / "pulumi-language-dotnet" / "codegen" / "codegen.go").read_text()
    for name in ("CSharpPackageInfo", "CSharpPropertyInfo", "CSharpResourceInfo", "func GenerateProgram"):
        assert name in dotnet
    assert "func GenerateProgram" in (tc.STANDINS_DIR / "pulumi-yaml/pkg/pulumiyaml/codegen/codegen.go").read_text()


def test_a_stamp_matches_only_the_same_version_and_recipe(tmp_path: Path) -> None:
    stamp = tc.Stamp("4.25.0")
    assert not stamp.matches(tmp_path)
    stamp.write(tmp_path, started=0.0)
    assert stamp.matches(tmp_path)
    assert not tc.Stamp("4.25.1").matches(tmp_path)
    assert not tc.Stamp("4.25.0", recipe="older").matches(tmp_path)
    (tmp_path / "build.json").write_text("{not json")
    assert not stamp.matches(tmp_path)


def test_a_half_installed_plugin_is_not_used(tmp_path: Path) -> None:
    folder = tmp_path / "plugins" / "resource-random-v4.21.1"
    folder.mkdir(parents=True)
    (folder / "pulumi-resource-random").write_text("")
    assert tc.installed_plugin(tmp_path, "random", "4.21.1") == folder / "pulumi-resource-random"
    (tmp_path / "plugins" / "resource-random-v4.21.1.partial").write_text("")
    assert tc.installed_plugin(tmp_path, "random", "4.21.1") is None
    assert tc.installed_plugin(tmp_path, "random", "4.21.2") is None


def test_our_cache_pins_pulumi_home_and_ignores_stray_plugins_on_path() -> None:
    env = tc.Toolchain("3.274.1", "/cache/bin", "/cache/home", "cache").env()
    assert env["PULUMI_HOME"] == "/cache/home"
    assert env["PULUMI_IGNORE_AMBIENT_PLUGINS"] == "true"
    assert env["PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION"] == "true"


def test_a_complete_user_install_keeps_the_users_own_pulumi_home() -> None:
    env = tc.Toolchain("3.274.1", "/usr/local/bin", None, "path").env()
    assert "PULUMI_HOME" not in env
    assert "PULUMI_IGNORE_AMBIENT_PLUGINS" not in env


def test_system_toolchain_needs_the_exact_cli_the_host_and_every_plugin(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    pulumi = bin_dir / "pulumi"
    pulumi.write_text("#!/bin/sh\necho v3.274.1\n")
    pulumi.chmod(0o755)
    home = tmp_path / "home"
    monkeypatch.setenv("PATH", str(bin_dir))
    monkeypatch.setenv("PULUMI_HOME", str(home))
    monkeypatch.setenv("FLIGHTDECK_CACHE", str(tmp_path / "cache"))
    assert tc.system_toolchain() is None  # no language host beside it
    for name in tc.LANGUAGE_HOST_FILES:
        (bin_dir / name).write_text("")
    assert tc.system_toolchain() is None  # no plugins in the user's home
    for name, version in tc.PLUGINS.items():
        folder = home / "plugins" / f"resource-{name}-v{version}"
        folder.mkdir(parents=True)
        (folder / f"pulumi-resource-{name}").write_text("")
    found = tc.system_toolchain()
    assert found is not None and found.source == "path" and found.pulumi_home is None
    assert tc.system_toolchain("3.274.2") is None  # another version: build ours instead


def test_env_exports_are_shell_quoted() -> None:
    text = tc.env_exports(tc.Toolchain("3.274.1", "/a dir/bin", "/home x", "cache"))
    assert "export PATH='/a dir/bin':\"$PATH\"" in text
    assert "export PULUMI_HOME='/home x'" in text


def test_the_kwok_stages_are_well_formed_stage_documents() -> None:
    for path in sorted((REPO / "tools" / "kwok").glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            assert doc["apiVersion"] == "kwok.x-k8s.io/v1alpha1" and doc["kind"] == "Stage", path
            assert doc["spec"]["resourceRef"]["kind"] and doc["spec"]["selector"], path
            assert doc["spec"].get("steps") or doc["spec"].get("next"), path
            json.dumps(doc)
