"""The real Pulumi toolchain on a machine that reaches package registries only.

What the program needs to run through the engine, and where each piece comes from:

=====================================  ==========  ==============================================
piece                                  version     built from
=====================================  ==========  ==============================================
``pulumi`` (CLI + engine)              3.274.1     ``github.com/pulumi/pulumi/pkg/v3`` + ``sdk/v3``
                                                   (Go module proxy)
``pulumi-language-python`` + its two   3.259.0     upstream's sources, vendored unchanged in
scripts (program runner, dynamic-                  ``$FLIGHTDECK_VENDOR_DIR/pulumi-python``
provider host)                                     (default ``../shared/vendor``), linked with the
                                                   engine's pkg/sdk (3.274.1)
resource plugin ``kubernetes``         4.25.0      ``pulumi-kubernetes/provider/v4`` at the v4.25.0
                                                   commit (Go module proxy), in a wrapper module
resource plugin ``random``             4.21.1      ``$FLIGHTDECK_VENDOR_DIR/pulumi-random`` plus two
                                                   build-only stand-in modules (``tools/go_standins``)
=====================================  ==========  ==============================================

The plugin versions are exactly the ones the pinned Python SDKs name in their
``pulumi-plugin.json`` (``pulumi-kubernetes==4.25.0``, ``pulumi-random==4.21.1``); a unit test
keeps ``requirements.txt`` and :data:`PLUGINS` equal.

Everything is cached outside the repository in one folder keyed by version,
``${FLIGHTDECK_CACHE:-$HOME/.cache/flightdeck}/pulumi``::

    cli/v<VER>/bin/pulumi                          the engine, version-stamped
    cli/v<VER>/bin/pulumi-language-python          upstream's host (copied beside the engine,
    cli/v<VER>/bin/pulumi-language-python-exec     which finds its "bundled" plugins there)
    cli/v<VER>/bin/pulumi-resource-pulumi-python
    language-python/v<VER>/                        the host as built, with its stamp
    plugins/<name>-v<VER>/                         each resource plugin as built, with its stamp
    home/                                          PULUMI_HOME; plugins installed into home/plugins
    logs/<step>.log                                full go output of every build step

A warm ``ensure`` checks the stamps and returns in well under a second. On a machine where
``pulumi`` at the right version is on PATH with its language host beside it and the plugins
are installed in the user's own ``PULUMI_HOME`` (a normal laptop), ``ensure`` uses those and
builds nothing.

CLI::

    python -m tools.pulumi_toolchain ensure            # build or reuse everything; exit 2 on failure
    python -m tools.pulumi_toolchain env               # export lines: eval "$(... env)"
    python -m tools.pulumi_toolchain status [--json]   # what is there, without building
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import shlex
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Self

CLI_VERSION = "3.274.1"
LANGUAGE_HOST_VERSION = "3.259.0"
# Resource plugins, at exactly the versions the pinned Python SDKs ask the engine for.
PLUGINS: dict[str, str] = {"kubernetes": "4.25.0", "random": "4.21.1"}

PKG_MODULE = "github.com/pulumi/pulumi/pkg/v3"
SDK_MODULE = "github.com/pulumi/pulumi/sdk/v3"
SDK_VERSION_SYMBOL = "github.com/pulumi/pulumi/sdk/v3/go/common/version.Version"
# The v4.25.0 release commit of pulumi-kubernetes, as the proxy serves it (no tagged version).
KUBERNETES_MODULE = "github.com/pulumi/pulumi-kubernetes/provider/v4"
KUBERNETES_PSEUDO_VERSIONS = {"4.25.0": "v4.0.0-20260115033456-f47bc2d6f199"}
KUBERNETES_VERSION_SYMBOL = "github.com/pulumi/pulumi-kubernetes/provider/v4/pkg/version.Version"
RANDOM_VERSION_SYMBOL = "github.com/pulumi/pulumi-random/provider/v4/pkg/version.Version"
# Modules that only the Terraform bridge's schema generator imports (never run when a bridged
# provider serves); the proxy refuses them, so small stand-ins of our own take their place.
BRIDGE_STANDINS = {
    "github.com/pulumi/pulumi-dotnet/pulumi-language-dotnet/v3": "pulumi-language-dotnet",
    "github.com/pulumi/pulumi-yaml": "pulumi-yaml",
}

# Bump when a build recipe changes, so stale cached binaries are rebuilt, not trusted.
RECIPE = "2"

REPO_ROOT = Path(__file__).resolve().parent.parent
STANDINS_DIR = Path(__file__).resolve().parent / "go_standins"

Progress = Callable[[str], None]


class ToolchainError(RuntimeError):
    """A step failed; the message names the step and, for builds, the log file."""


@dataclass
class PluginStatus:
    name: str
    version: str
    available: bool
    path: str | None = None
    source: str = ""  # "cache", "built", "home" (the user's PULUMI_HOME) or "file" (handed in)
    reason: str | None = None


@dataclass
class Toolchain:
    cli_version: str
    bin_dir: str
    # None: the user's own PULUMI_HOME (a laptop with everything installed); else ours.
    pulumi_home: str | None
    source: str  # "cache", "built" or "path"
    plugins: list[PluginStatus] = field(default_factory=list)

    def env(self) -> dict[str, str]:
        env = {
            "PATH": self.bin_dir,  # prepended by callers, see env_exports()
            "PULUMI_SKIP_UPDATE_CHECK": "true",
            # Never download anything: a missing plugin is an error at once.
            "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION": "true",
        }
        if self.pulumi_home is not None:
            env["PULUMI_HOME"] = self.pulumi_home
            # Our plugins are in our PULUMI_HOME; a stray pulumi-resource-* on PATH (which the
            # engine would use without a version check) must not shadow them.
            env["PULUMI_IGNORE_AMBIENT_PLUGINS"] = "true"
        return env

    @property
    def pulumi(self) -> Path:
        return Path(self.bin_dir) / "pulumi"

    @property
    def ready(self) -> bool:
        return all(p.available for p in self.plugins)


# -- paths ---------------------------------------------------------------------------------


def cache_root() -> Path:
    base = os.environ.get("FLIGHTDECK_CACHE") or str(Path.home() / ".cache" / "flightdeck")
    return Path(base) / "pulumi"


def vendor_dir() -> Path:
    env = os.environ.get("FLIGHTDECK_VENDOR_DIR")
    return Path(env).resolve() if env else (REPO_ROOT / ".." / "shared" / "vendor").resolve()


def cli_dir(version: str) -> Path:
    return cache_root() / "cli" / f"v{version}"


def language_host_dir(version: str) -> Path:
    return cache_root() / "language-python" / f"v{version}"


def plugin_build_dir(name: str, version: str) -> Path:
    return cache_root() / "plugins" / f"{name}-v{version}"


def pulumi_home() -> Path:
    return cache_root() / "home"


def user_pulumi_home() -> Path:
    return Path(os.environ.get("PULUMI_HOME") or Path.home() / ".pulumi")


def installed_plugin(home: Path, name: str, version: str) -> Path | None:
    """The plugin binary the engine would load from ``home``, if fully installed there."""
    folder = home / "plugins" / f"resource-{name}-v{version}"
    binary = folder / f"pulumi-resource-{name}"
    # The engine writes <folder>.partial while installing and removes it when done.
    partial = folder.with_name(folder.name + ".partial")
    return binary if binary.is_file() and not partial.exists() else None


# -- small helpers -------------------------------------------------------------------------


def _stderr_progress(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


@contextmanager
def _lock(path: Path) -> Iterator[None]:
    """Serialises concurrent ensure runs (e.g. two test sessions) on one cache."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


class Step:
    """Prints a step's start and end with elapsed time."""

    def __init__(self, name: str, progress: Progress) -> None:
        self.name = name
        self.progress = progress
        self.start = time.monotonic()

    def __enter__(self) -> Self:
        self.progress(f"[pulumi-toolchain] {self.name} ...")
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        elapsed = time.monotonic() - self.start
        status = "done" if exc is None else "FAILED"
        self.progress(f"[pulumi-toolchain] {self.name}: {status} in {elapsed:.1f}s")


def _go_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env["CGO_ENABLED"] = "0"
    # -mod=mod lets go.sum gain entries the module zips lack; sums are still verified.
    flags = env.get("GOFLAGS", "").split()
    env["GOFLAGS"] = " ".join([f for f in flags if not f.startswith("-mod=")] + ["-mod=mod"])
    env.update(extra)
    return env


def _run_logged(
    step: str,
    argv: Sequence[str],
    cwd: Path,
    env: dict[str, str],
    progress: Progress,
    heartbeat_s: float = 30.0,
) -> None:
    """Runs a long command with its output in ``logs/<step>.log``; prints a heartbeat."""
    log = cache_root() / "logs" / (step.replace(" ", "-").replace("/", "_") + ".log")
    log.parent.mkdir(parents=True, exist_ok=True)
    start = time.monotonic()
    counter = [0]
    last = [""]
    with log.open("w") as out:
        out.write(f"$ (cd {cwd} && {shlex.join(argv)})\n")
        out.flush()
        proc = subprocess.Popen(
            list(argv), cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        stop = threading.Event()

        def beat() -> None:
            while not stop.wait(heartbeat_s):
                progress(
                    f"[pulumi-toolchain]   {step}: {time.monotonic() - start:.0f}s, "
                    f"{counter[0]} lines of go output, last: {last[0][:100]}"
                )

        ticker = threading.Thread(target=beat, daemon=True)
        ticker.start()
        assert proc.stdout is not None
        for line in proc.stdout:
            out.write(line)
            counter[0] += 1
            last[0] = line.rstrip()
        code = proc.wait()
        stop.set()
    if code != 0:
        tail = log.read_text().splitlines()[-25:]
        raise ToolchainError(f"step '{step}' failed (exit {code}); full log: {log}\n" + "\n".join(tail))


def go_mod_download(module: str, version: str) -> Path:
    """``go mod download -json MODULE@VERSION``; the unpacked (read-only) module directory."""
    step = f"go mod download {module}@{version}"
    cache_root().mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(
        ["go", "mod", "download", "-json", f"{module}@{version}"],
        env=_go_env(), capture_output=True, text=True, check=False, cwd=cache_root(),
    )  # fmt: skip
    try:
        info = json.loads(proc.stdout) if proc.stdout.strip() else {}
    except json.JSONDecodeError:
        info = {}
    error = info.get("Error") or (proc.stderr.strip() if proc.returncode else "")
    if error:
        raise ToolchainError(f"step '{step}' failed: {error}")
    return Path(info["Dir"])


def go_build(
    step: str, cwd: Path, package: str, out: Path, version_symbol: str, version: str, progress: Progress
) -> None:
    """``go build`` of one main package, version-stamped, stripped, reproducible paths."""
    ldflags = f"-s -w -X {version_symbol}={version}"
    argv = ["go", "build", "-v", "-trimpath", "-ldflags", ldflags, "-o", str(out), package]
    _run_logged(step, argv, cwd, _go_env(), progress)


def pulumi_version(binary: Path | str) -> str | None:
    try:
        proc = subprocess.run(
            [str(binary), "version"], capture_output=True, text=True, timeout=60, check=False,
            env={**os.environ, "PULUMI_SKIP_UPDATE_CHECK": "true"},
        )  # fmt: skip
    except OSError:
        return None
    return (proc.stdout.strip().lstrip("v") or None) if proc.returncode == 0 else None


def _make_writable(root: Path) -> None:
    # Module-cache files are read-only; the copy must be writable for go.sum and removal.
    for dirpath, _dirnames, filenames in os.walk(root):
        os.chmod(dirpath, 0o755)  # noqa: S103 - a private build tree, as the go tool leaves it
        for name in filenames:
            path = os.path.join(dirpath, name)
            if not os.path.islink(path):
                os.chmod(path, 0o644)


def _rmtree(path: Path) -> None:
    if path.exists():
        _make_writable(path)
        shutil.rmtree(path)


def _fresh_build_dir(name: str) -> Path:
    work = cache_root() / "build" / name
    _rmtree(work)
    work.mkdir(parents=True)
    return work


def _copy_tree(src: Path, dst: Path) -> None:
    shutil.copytree(src, dst, symlinks=True, dirs_exist_ok=True)
    _make_writable(dst)


def _go_version() -> str:
    return subprocess.run(["go", "env", "GOVERSION"], capture_output=True, text=True, check=False).stdout.strip()


@dataclass(frozen=True)
class Stamp:
    """What a cached build is: the same version and recipe mean the binary can be reused."""

    version: str
    recipe: str = RECIPE

    def path(self, folder: Path) -> Path:
        return folder / "build.json"

    def matches(self, folder: Path) -> bool:
        try:
            data = json.loads(self.path(folder).read_text())
        except (OSError, json.JSONDecodeError):
            return False
        return bool(data.get("version") == self.version and data.get("recipe") == self.recipe)

    def write(self, folder: Path, started: float, **details: object) -> None:
        record = {
            "version": self.version,
            "recipe": self.recipe,
            "go": _go_version(),
            "build_seconds": round(time.monotonic() - started, 1),
            "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            **details,
        }
        self.path(folder).write_text(json.dumps(record, indent=2) + "\n")


def _need_go() -> None:
    if shutil.which("go") is None:
        raise ToolchainError("step 'find go': no `go` on PATH; the toolchain is built from Go modules (Go >= 1.26)")


def _need_vendor(subdir: str) -> Path:
    path = vendor_dir() / subdir
    if not path.is_dir():
        raise ToolchainError(
            f"step 'find vendored sources': {path} is missing; set FLIGHTDECK_VENDOR_DIR to the folder "
            "holding the unchanged upstream sources (see ../shared/vendor/SOURCES.md)"
        )
    return path


# -- the CLI -------------------------------------------------------------------------------


def build_cli(version: str, progress: Progress) -> Path:
    """Builds ``pulumi`` from pkg/v3 + sdk/v3 at ``version``; returns its bin dir."""
    _need_go()
    out_dir = cli_dir(version)
    started = time.monotonic()
    with Step(f"download {PKG_MODULE}@v{version} and {SDK_MODULE}@v{version}", progress):
        pkg_src = go_mod_download(PKG_MODULE, f"v{version}")
        sdk_src = go_mod_download(SDK_MODULE, f"v{version}")
    # pkg/go.mod says `replace sdk/v3 => ../sdk`: rebuilding the repository layout lets that
    # relative replace (and every other pin in pkg's go.mod/go.sum) work unchanged.
    work = _fresh_build_dir(f"cli-v{version}")
    _copy_tree(pkg_src, work / "pkg")
    _copy_tree(sdk_src, work / "sdk")
    bin_dir = out_dir / "bin"
    bin_dir.mkdir(parents=True, exist_ok=True)
    partial = bin_dir / "pulumi.partial"
    # No separate `go mod download`: it would fetch the whole module graph, including modules
    # cmd/pulumi never compiles; `go build` fetches only what it compiles.
    with Step(f"go build pulumi v{version} (cold: 5-15 min on 2 cores)", progress):
        go_build(
            f"build-pulumi-v{version}",
            work / "pkg",
            "./cmd/pulumi",
            partial,
            SDK_VERSION_SYMBOL,
            f"v{version}",
            progress,
        )
    got = pulumi_version(partial)
    if got != version:
        raise ToolchainError(f"step 'check pulumi version': the built binary says {got!r}, expected {version}")
    partial.replace(bin_dir / "pulumi")
    Stamp(version).write(out_dir, started, modules=[f"{PKG_MODULE}@v{version}", f"{SDK_MODULE}@v{version}"])
    _rmtree(work)  # the compiled packages stay in GOCACHE
    return bin_dir


# -- upstream's Python language host -------------------------------------------------------

LANGUAGE_HOST_SOURCE = "pulumi-python/sdk/python"
LANGUAGE_HOST_FILES = ("pulumi-language-python", "pulumi-language-python-exec", "pulumi-resource-pulumi-python")


def build_language_host(version: str, libraries: str, progress: Progress) -> Path:
    """Upstream's ``pulumi-language-python`` (Go) at ``version`` and its two scripts, linked with
    pkg/sdk at ``libraries`` (the engine's own version); returns their folder."""
    _need_go()
    source = _need_vendor(LANGUAGE_HOST_SOURCE)
    out_dir = language_host_dir(version)
    started = time.monotonic()
    work = _fresh_build_dir(f"language-python-v{version}")
    _copy_tree(source / "cmd" / "pulumi-language-python", work)
    # Upstream builds it inside the pulumi repository (relative replaces of pkg and sdk), so a
    # release's host links that release's pkg/sdk; here they come from the proxy at the engine's
    # version, as in upstream's own release of that engine, and share its compiled packages.
    with Step(f"go mod tidy (language host v{version} with pkg/sdk v{libraries})", progress):
        _run_logged(
            f"language-python-v{version}-mod",
            ["go", "mod", "edit", f"-dropreplace={PKG_MODULE}", f"-dropreplace={SDK_MODULE}",
             f"-require={PKG_MODULE}@v{libraries}", f"-require={SDK_MODULE}@v{libraries}"],
            work, _go_env(), progress,
        )  # fmt: skip
        _run_logged(f"language-python-v{version}-tidy", ["go", "mod", "tidy"], work, _go_env(), progress)
    bin_dir = out_dir / "bin"
    bin_dir.mkdir(parents=True, exist_ok=True)
    with Step(f"go build pulumi-language-python v{version} (cold: 2-5 min)", progress):
        host = bin_dir / "pulumi-language-python"
        go_build(f"build-language-python-v{version}", work, ".", host, SDK_VERSION_SYMBOL, version, progress)
    # Module zips and our copies drop execute bits; the engine runs these directly.
    for script, relative in (
        ("pulumi-language-python-exec", "cmd/pulumi-language-python-exec"),
        ("pulumi-resource-pulumi-python", "dist/pulumi-resource-pulumi-python"),
    ):
        shutil.copyfile(source / relative, bin_dir / script)
    for name in LANGUAGE_HOST_FILES:
        (bin_dir / name).chmod(0o755)
    host_stamp(version, libraries).write(out_dir, started, source=str(source), libraries=f"v{libraries}")
    _rmtree(work)
    return bin_dir


def host_stamp(version: str, libraries: str) -> Stamp:
    return Stamp(f"{version}+pkg{libraries}")


def install_language_host(host_bin: Path, cli_bin: Path) -> None:
    """Puts the host beside ``pulumi``: the engine loads its bundled language plugins from there,
    and the host looks for ``pulumi-language-python-exec`` beside itself."""
    for name in LANGUAGE_HOST_FILES:
        target = cli_bin / name
        if target.is_file() and target.read_bytes() == (host_bin / name).read_bytes():
            continue
        tmp = target.with_name(target.name + ".tmp")
        shutil.copyfile(host_bin / name, tmp)
        tmp.chmod(0o755)
        tmp.replace(target)


# -- resource plugins ----------------------------------------------------------------------


def _generate_schema(step: str, cmd_dir: Path, version: str, progress: Progress) -> None:
    """Each provider's generate.go stamps its schema with the version and writes *-embed.json."""
    _run_logged(step, ["go", "run", "generate.go"], cmd_dir, _go_env(VERSION=version), progress)


def build_kubernetes_plugin(version: str, progress: Progress) -> Path:
    """pulumi-resource-kubernetes from the provider module, built in a wrapper module of ours:
    the module's own go.mod replaces sdk/v4 with a relative path that a dependency's replace
    cannot carry, so its main package is copied out and built as a dependent module."""
    _need_go()
    pseudo = KUBERNETES_PSEUDO_VERSIONS.get(version)
    if pseudo is None:
        raise ToolchainError(f"step 'kubernetes plugin': no known module version for {version}")
    with Step(f"download {KUBERNETES_MODULE}@{pseudo} (= v{version})", progress):
        module = go_mod_download(KUBERNETES_MODULE, pseudo)
    out_dir = plugin_build_dir("kubernetes", version)
    started = time.monotonic()
    work = _fresh_build_dir(f"kubernetes-v{version}")
    for name in ("main.go", "generate.go", "schema.json", "terraform-mapping.json"):
        shutil.copyfile(module / "cmd" / "pulumi-resource-kubernetes" / name, work / name)
    _make_writable(work)
    go_directive = _go_directive(module / "go.mod")
    (work / "go.mod").write_text(
        f"module flightdeck.local/kubernetesplugin\n\ngo {go_directive}\n\nrequire {KUBERNETES_MODULE} {pseudo}\n"
    )
    with Step(f"go mod tidy (kubernetes plugin v{version})", progress):
        _run_logged(f"kubernetes-v{version}-tidy", ["go", "mod", "tidy"], work, _go_env(), progress)
    with Step("generate the kubernetes schema", progress):
        _generate_schema(f"kubernetes-v{version}-generate", work, version, progress)
    out_dir.mkdir(parents=True, exist_ok=True)
    binary = out_dir / "pulumi-resource-kubernetes"
    with Step(f"go build pulumi-resource-kubernetes v{version} (cold: 10-20 min on 2 cores)", progress):
        go_build(f"build-kubernetes-v{version}", work, ".", binary, KUBERNETES_VERSION_SYMBOL, version, progress)
    Stamp(version).write(out_dir, started, module=f"{KUBERNETES_MODULE}@{pseudo}")
    _rmtree(work)
    return binary


def _go_directive(go_mod: Path) -> str:
    for line in go_mod.read_text().splitlines():
        if line.startswith("go "):
            return line.split()[1]
    return "1.24"


@dataclass(frozen=True)
class BridgedProvider:
    """A Terraform-bridged provider whose unchanged upstream source is vendored."""

    name: str
    vendor_subdir: str  # holds provider/ (and any sibling folders its go.mod replaces to)
    version_symbol: str
    siblings: tuple[tuple[str, str], ...] = ()  # (vendor subdir, name beside provider/) to lay out
    requires: tuple[str, ...] = ()  # go mod edit -require bumps for versions the proxy refuses


BRIDGED: dict[str, BridgedProvider] = {
    "random": BridgedProvider("random", "pulumi-random", RANDOM_VERSION_SYMBOL),
}


def build_bridged_plugin(recipe: BridgedProvider, version: str, progress: Progress) -> Path:
    """``pulumi-resource-<name>`` from its vendored source, with the build-only stand-ins."""
    _need_go()
    source = _need_vendor(recipe.vendor_subdir)
    out_dir = plugin_build_dir(recipe.name, version)
    started = time.monotonic()
    work = _fresh_build_dir(f"{recipe.name}-v{version}")
    _copy_tree(source, work)
    for sibling, target in recipe.siblings:
        _copy_tree(_need_vendor(sibling), work / target)
    provider = work / "provider"
    edits = [f"-replace={module}={STANDINS_DIR / folder}" for module, folder in BRIDGE_STANDINS.items()]
    edits += [f"-require={requirement}" for requirement in recipe.requires]
    with Step(f"go mod edit ({recipe.name} plugin v{version}: stand-ins for the schema generator)", progress):
        _run_logged(f"{recipe.name}-v{version}-mod", ["go", "mod", "edit", *edits], provider, _go_env(), progress)
    with Step(f"generate the {recipe.name} schema", progress):
        _generate_schema(
            f"{recipe.name}-v{version}-generate", provider / "cmd" / f"pulumi-resource-{recipe.name}", version, progress
        )
    out_dir.mkdir(parents=True, exist_ok=True)
    binary = out_dir / f"pulumi-resource-{recipe.name}"
    with Step(f"go build pulumi-resource-{recipe.name} v{version} (cold: 3-10 min)", progress):
        main_package = f"./cmd/pulumi-resource-{recipe.name}"
        go_build(
            f"build-{recipe.name}-v{version}", provider, main_package, binary, recipe.version_symbol, version, progress
        )
    Stamp(version).write(out_dir, started, source=str(source))
    _rmtree(work)
    return binary


def build_plugin(name: str, version: str, progress: Progress) -> Path:
    if name == "kubernetes":
        return build_kubernetes_plugin(version, progress)
    if name in BRIDGED:
        return build_bridged_plugin(BRIDGED[name], version, progress)
    raise ToolchainError(f"step 'build plugin {name}': no build recipe for the {name} plugin")


def install_plugin_file(pulumi: Path, home: Path, name: str, version: str, binary: Path) -> Path:
    """``pulumi plugin install resource NAME VERSION --file BIN`` into ``home``: offline, and the
    only place the engine looks for an exact plugin version."""
    step = f"pulumi plugin install resource {name} {version} --file {binary}"
    proc = subprocess.run(
        [str(pulumi), "plugin", "install", "resource", name, version, "--file", str(binary)],
        env={**os.environ, "PULUMI_HOME": str(home), "PULUMI_SKIP_UPDATE_CHECK": "true"},
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    installed = installed_plugin(home, name, version)
    if proc.returncode != 0 or installed is None:
        raise ToolchainError(f"step '{step}' failed: {proc.stderr.strip() or proc.stdout.strip()}")
    return installed


def ensure_plugin(pulumi: Path, name: str, version: str, progress: Progress) -> PluginStatus:
    """The plugin installed in our PULUMI_HOME: already there, from the user's, handed in, or built."""
    home = pulumi_home()
    found = installed_plugin(home, name, version)
    if found is not None:
        return PluginStatus(name, version, True, str(found), "cache")
    built = plugin_build_dir(name, version) / f"pulumi-resource-{name}"
    supplied = os.environ.get(f"FLIGHTDECK_PULUMI_PLUGIN_{name.upper()}")
    users = installed_plugin(user_pulumi_home(), name, version)
    if supplied:
        binary, source = Path(supplied), "file"
    elif users is not None:
        binary, source = users, "home"
    elif Stamp(version).matches(built.parent) and built.is_file():
        binary, source = built, "cache"
    else:
        binary, source = build_plugin(name, version, progress), "built"
    with Step(f"install resource plugin {name} {version}", progress):
        path = install_plugin_file(pulumi, home, name, version, binary)
    return PluginStatus(name, version, True, str(path), source)


# -- top level -----------------------------------------------------------------------------


def system_toolchain(cli_version: str = CLI_VERSION) -> Toolchain | None:
    """A complete install of the user's own (``pulumi`` on PATH, plugins in their PULUMI_HOME)."""
    on_path = shutil.which("pulumi")
    if on_path is None or str(cache_root()) in str(Path(on_path).resolve()):
        return None
    bin_dir = Path(on_path).resolve().parent
    if not all((bin_dir / name).is_file() for name in LANGUAGE_HOST_FILES):
        return None
    if pulumi_version(on_path) != cli_version:
        return None
    home = user_pulumi_home()
    plugins = []
    for name, version in PLUGINS.items():
        found = installed_plugin(home, name, version)
        if found is None:
            return None
        plugins.append(PluginStatus(name, version, True, str(found), "home"))
    return Toolchain(cli_version, str(bin_dir), None, "path", plugins)


def ensure(cli_version: str = CLI_VERSION, progress: Progress = _stderr_progress) -> Toolchain:
    """Everything the engine needs, built only where missing. Raises ToolchainError naming the step."""
    started = time.monotonic()
    system = system_toolchain(cli_version)
    if system is not None:
        progress(f"[pulumi-toolchain] using the installed pulumi v{cli_version} in {system.bin_dir} "
                 f"and the plugins in {user_pulumi_home()}")  # fmt: skip
        return system
    root = cache_root()
    root.mkdir(parents=True, exist_ok=True)
    with _lock(root / ".lock"):
        bin_dir = cli_dir(cli_version) / "bin"
        if Stamp(cli_version).matches(cli_dir(cli_version)) and (bin_dir / "pulumi").is_file():
            source = "cache"
        else:
            progress(f"[pulumi-toolchain] no pulumi v{cli_version} in {bin_dir}: building it from Go modules")
            bin_dir, source = build_cli(cli_version, progress), "built"
        host_dir = language_host_dir(LANGUAGE_HOST_VERSION)
        if not host_stamp(LANGUAGE_HOST_VERSION, cli_version).matches(host_dir):
            build_language_host(LANGUAGE_HOST_VERSION, cli_version, progress)
        install_language_host(host_dir / "bin", bin_dir)
        pulumi_home().mkdir(parents=True, exist_ok=True)
        toolchain = Toolchain(cli_version, str(bin_dir), str(pulumi_home()), source)
        for name, version in PLUGINS.items():
            toolchain.plugins.append(ensure_plugin(bin_dir / "pulumi", name, version, progress))
    plugins = ", ".join(f"{p.name} {p.version} ({p.source})" for p in toolchain.plugins)
    progress(f"[pulumi-toolchain] ready in {time.monotonic() - started:.1f}s: pulumi v{cli_version} ({source}) "
             f"in {bin_dir}; plugins {plugins}")  # fmt: skip
    return toolchain


def current(cli_version: str = CLI_VERSION) -> Toolchain:
    """The toolchain as it is now, without building anything (plugins may be missing)."""
    system = system_toolchain(cli_version)
    if system is not None:
        return system
    bin_dir = cli_dir(cli_version) / "bin"
    if not (bin_dir / "pulumi").is_file() or not (bin_dir / "pulumi-language-python").is_file():
        raise ToolchainError(
            f"pulumi v{cli_version} is not set up in {bin_dir}: run `python -m tools.pulumi_toolchain ensure` first"
        )
    toolchain = Toolchain(cli_version, str(bin_dir), str(pulumi_home()), "cache")
    for name, version in PLUGINS.items():
        found = installed_plugin(pulumi_home(), name, version)
        reason = None if found else "not installed: run `python -m tools.pulumi_toolchain ensure`"
        toolchain.plugins.append(PluginStatus(name, version, found is not None, str(found or ""), "cache", reason))
    return toolchain


def env_exports(toolchain: Toolchain) -> str:
    lines = []
    for key, value in toolchain.env().items():
        if key == "PATH":
            lines.append(f'export PATH={shlex.quote(value)}:"$PATH"')
        else:
            lines.append(f"export {key}={shlex.quote(value)}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tools.pulumi_toolchain", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    sub = ap.add_subparsers(dest="command", required=True)
    for name in ("ensure", "env", "status"):
        cmd = sub.add_parser(name)
        if name in ("ensure", "status"):
            cmd.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    try:
        toolchain = ensure() if args.command == "ensure" else current()
    except ToolchainError as err:
        print(f"pulumi-toolchain: {err}", file=sys.stderr)
        return 2
    if args.command == "env":
        print(env_exports(toolchain))
        return 0 if toolchain.ready else 3
    if getattr(args, "json", False):
        print(json.dumps(asdict(toolchain), indent=2))
    else:
        print(f"pulumi v{toolchain.cli_version} ({toolchain.source}): {toolchain.pulumi}")
        for plugin in toolchain.plugins:
            state = plugin.path if plugin.available else f"MISSING: {plugin.reason}"
            print(f"resource plugin {plugin.name} {plugin.version}: {state}")
    return 0 if toolchain.ready else 3


if __name__ == "__main__":
    sys.exit(main())
