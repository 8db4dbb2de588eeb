"""The peer the benchmark compares with: pulumi-mysql 3.3.0 (plugin and Python SDK), bench-only.

pulumi-mysql is what a Pulumi user picks today to manage MySQL/MariaDB databases, users and
grants. It is not a runtime dependency of flightdeck: its plugin is built here only for
``bench/`` and installed into the toolchain's own ``PULUMI_HOME`` (a cache), and its Python SDK
goes into a virtualenv of the benchmark's own, never into the project's ``.venv``.

The plugin comes from the unchanged upstream sources in ``$FLIGHTDECK_VENDOR_DIR`` (default
``../shared/vendor``: ``pulumi-mysql/`` and its ``upstream`` submodule
``terraform-provider-mysql/``), built with :func:`tools.pulumi_toolchain.build_bridged_plugin`
and its build-only stand-ins, plus the three version bumps ``SOURCES.md`` there names (the Go
module proxy refuses the pinned bridge v3.130.0 and pkg/sdk v3.242.0).

CLI::

    python -m bench.peer_toolchain ensure     # build (cold: 10-20 min on 2 cores) or reuse; print paths
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import venv
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from tools import pulumi_toolchain as toolchain

PEER_PLUGIN = "mysql"
PEER_VERSION = "3.3.0"
PEER_RECIPE = toolchain.BridgedProvider(
    name=PEER_PLUGIN,
    vendor_subdir="pulumi-mysql",
    version_symbol="github.com/pulumi/pulumi-mysql/provider/v3/pkg/version.Version",
    # provider/go.mod replaces the Terraform provider with ../upstream (a git submodule upstream).
    siblings=(("terraform-provider-mysql", "upstream"),),
    requires=(
        "github.com/pulumi/pulumi-terraform-bridge/v3@v3.135.0",
        "github.com/pulumi/pulumi/pkg/v3@v3.253.0",
        "github.com/pulumi/pulumi/sdk/v3@v3.253.0",
    ),
)

BENCH_DIR = Path(__file__).resolve().parent
REQUIREMENTS = BENCH_DIR / "requirements.txt"


@dataclass(frozen=True)
class PeerToolchain:
    plugin: Path  # installed in the toolchain's PULUMI_HOME
    python: Path  # the benchmark's own virtualenv (project requirements + bench/requirements.txt)

    @property
    def venv(self) -> Path:
        return self.python.parent.parent


def bench_cache() -> Path:
    return toolchain.cache_root().parent / "bench"


def ensure_plugin(pulumi: Path, progress: toolchain.Progress) -> Path:
    """The mysql plugin in the toolchain's PULUMI_HOME: installed, built and cached, or built now."""
    home = toolchain.pulumi_home()
    found = toolchain.installed_plugin(home, PEER_PLUGIN, PEER_VERSION)
    if found is not None:
        return found
    built = toolchain.plugin_build_dir(PEER_PLUGIN, PEER_VERSION) / f"pulumi-resource-{PEER_PLUGIN}"
    stamp = toolchain.Stamp(PEER_VERSION, recipe=f"{toolchain.RECIPE}-bench1")
    if not (stamp.matches(built.parent) and built.is_file()):
        built = toolchain.build_bridged_plugin(PEER_RECIPE, PEER_VERSION, progress)
        # build_bridged_plugin stamps with the toolchain's recipe; ours adds the bench's bumps.
        stamp.write(built.parent, 0.0, source=str(toolchain.vendor_dir() / PEER_RECIPE.vendor_subdir))
    return toolchain.install_plugin_file(pulumi, home, PEER_PLUGIN, PEER_VERSION, built)


def _requirements_digest() -> str:
    digest = hashlib.sha256()
    for path in (toolchain.REPO_ROOT / "requirements.txt", REQUIREMENTS):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def ensure_venv(progress: toolchain.Progress) -> Path:
    """A virtualenv with the program's pinned runtime set plus pulumi-mysql; rebuilt when a pin changes.

    All three benchmark programs (flightdeck, the baseline and the peer) run in it, so they use
    exactly the same interpreter and Pulumi SDK.
    """
    folder = bench_cache() / "venv"
    python = folder / "bin" / "python"
    marker = folder / "requirements.sha256"
    digest = _requirements_digest()
    if python.is_file() and marker.is_file() and marker.read_text().strip() == digest:
        return python
    with toolchain.Step(f"virtualenv {folder} (project requirements + {REQUIREMENTS.name})", progress):
        venv.EnvBuilder(clear=True, with_pip=True).create(folder)
        subprocess.run(
            [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
             "-r", str(toolchain.REPO_ROOT / "requirements.txt"), "-r", str(REQUIREMENTS)],
            check=True, cwd=toolchain.REPO_ROOT,
        )  # fmt: skip
    marker.write_text(digest + "\n")
    return python


def ensure(progress: toolchain.Progress = toolchain._stderr_progress) -> PeerToolchain:
    engine = toolchain.ensure(progress=progress)
    with toolchain._lock(toolchain.cache_root() / ".lock"):
        plugin = ensure_plugin(engine.pulumi, progress)
    return PeerToolchain(plugin=plugin, python=ensure_venv(progress))


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.peer_toolchain", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    ap.add_argument("command", choices=["ensure"])
    ap.parse_args(argv)
    try:
        peer = ensure()
    except (toolchain.ToolchainError, subprocess.CalledProcessError) as err:
        print(f"peer-toolchain: {err}", file=sys.stderr)
        return 2
    print(json.dumps({"plugin": str(peer.plugin), "python": str(peer.python)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
