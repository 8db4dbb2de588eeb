"""Make the real Pulumi engine available on a machine that reaches package registries only.

What it provides, cached outside the repository in ONE folder keyed by version,
``${FLIGHTDECK_CACHE:-$HOME/.cache/flightdeck}/pulumi``::

    cli/v<VER>/bin/pulumi                          built from Go modules (CGO_ENABLED=0)
    cli/v<VER>/bin/pulumi-language-python          flightdeck's own language host (Python)
    cli/v<VER>/bin/pulumi-language-python-exec     flightdeck's own program runner
    cli/v<VER>/bin/pulumi-resource-pulumi-python   flightdeck's own dynamic-provider host
    cli/v<VER>/build.json                          stamp: what was built, how, how long
    home/                                          PULUMI_HOME (plugin cache in home/plugins)
    logs/                                          full go output of every build step
    unavailable/                                   remembered proxy refusals (24 h)

Why the CLI is not v3.272.0 (the ``pulumi`` pin in requirements.txt): the Go module proxy
reachable here serves ``github.com/pulumi/pulumi/pkg/v3`` (the module holding
``cmd/pulumi``) only at v3.259.0 and answers "403 This module version is not available" for
every later release. The Python SDK's Automation API needs CLI >= 3.1.0, so a v3.259.0
engine works with SDK 3.272.0. Upstream's Go language host and the kubernetes / random
resource plugins are not served at all; see docs/toolchain.md.

CLI::

    python -m tools.pulumi_toolchain ensure [--cli-version 3.259.0] [--allow-missing-plugins]
    python -m tools.pulumi_toolchain env          # export lines: eval "$(... env)"
    python -m tools.pulumi_toolchain status --json
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import re
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

# Newest pkg/v3 release the Go module proxy serves here (v3.260.0 .. v3.274.x are refused).
DEFAULT_CLI_VERSION = "3.259.0"
# Resource plugins the pinned Python packages ask for (their pulumi-plugin.json).
PLUGINS: dict[str, str] = {"kubernetes": "4.34.2", "random": "4.21.4"}
# Where each plugin's Go source would come from, if the proxy served it.
PLUGIN_MODULES: dict[str, str] = {
    "kubernetes": "github.com/pulumi/pulumi-kubernetes/provider/v4",
    "random": "github.com/pulumi/pulumi-random/provider/v4",
}

PKG_MODULE = "github.com/pulumi/pulumi/pkg/v3"
SDK_MODULE = "github.com/pulumi/pulumi/sdk/v3"
VERSION_SYMBOL = "github.com/pulumi/pulumi/sdk/v3/go/common/version.Version"

# Bump when the build recipe changes, so stale cached binaries are rebuilt, not trusted.
# (The helper scripts need no bump: ensure rewrites them whenever their text changed.)
RECIPE = "1"
# How long a proxy refusal is remembered, so warm runs stay offline and fast.
UNAVAILABLE_TTL_S = 24 * 3600

REPO_ROOT = Path(__file__).resolve().parent.parent
SCRIPTS_DIR = Path(__file__).resolve().parent / "pulumi_scripts"

Progress = Callable[[str], None]


class ToolchainError(RuntimeError):
    """A step failed; the message names the step and, for builds, the log file."""


class ModuleUnavailableError(ToolchainError):
    """The Go module proxy refused a module version (a final 'no', not a time-out)."""


@dataclass
class PluginStatus:
    name: str
    version: str
    available: bool
    path: str | None = None
    reason: str | None = None


@dataclass
class Toolchain:
    cli_version: str
    bin_dir: str
    pulumi_home: str
    source: str  # "cache", "built" or "path"
    plugins: list[PluginStatus] = field(default_factory=list)

    def env(self) -> dict[str, str]:
        env = {
            "PATH": self.bin_dir,  # prepended by callers, see env_exports()
            "PULUMI_HOME": self.pulumi_home,
            "PULUMI_SKIP_UPDATE_CHECK": "true",
            "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION": "true",
        }
        if self.source != "path":
            # The engine finds our language host and dynamic-provider host beside the real
            # path of `pulumi` (bundled plugins) and resource plugins only in
            # PULUMI_HOME/plugins; ignoring PATH keeps a stray pulumi-resource-* (which the
            # engine would use without any version check) out. A `pulumi` adopted from PATH
            # has our scripts elsewhere, so there PATH lookup must stay on.
            env["PULUMI_IGNORE_AMBIENT_PLUGINS"] = "true"
        return env


# -- paths ---------------------------------------------------------------------------------


def cache_root() -> Path:
    base = os.environ.get("FLIGHTDECK_CACHE") or str(Path.home() / ".cache" / "flightdeck")
    return Path(base) / "pulumi"


def cli_dir(version: str) -> Path:
    return cache_root() / "cli" / f"v{version}"


def pulumi_home() -> Path:
    return cache_root() / "home"


def host_python() -> str:
    """The interpreter for our language host: it needs grpcio and the pulumi SDK."""
    venv_python = REPO_ROOT / ".venv" / "bin" / "python"
    return str(venv_python) if venv_python.exists() else sys.executable


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
    """Prints a step's start and end with elapsed time; errors name the step."""

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


def _go_env() -> dict[str, str]:
    env = dict(os.environ)
    env["CGO_ENABLED"] = "0"
    # -mod=mod lets go.sum gain entries the module zips lack; sums are still verified.
    flags = env.get("GOFLAGS", "").split()
    env["GOFLAGS"] = " ".join([f for f in flags if not f.startswith("-mod=")] + ["-mod=mod"])
    return env


def _run_logged(
    step: str,
    argv: Sequence[str],
    cwd: Path,
    env: dict[str, str],
    log: Path,
    progress: Progress,
    heartbeat_s: float = 20.0,
) -> None:
    """Runs a long command with its output in ``log``; prints a heartbeat with the last line."""
    log.parent.mkdir(parents=True, exist_ok=True)
    start = time.monotonic()
    counter = [0]
    last = [""]
    with log.open("w") as out:
        out.write(f"$ (cd {cwd} && {shlex.join(argv)})\n")
        out.flush()
        proc = subprocess.Popen(
            list(argv), cwd=cwd, env=env, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
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


def _unavailable_marker(module: str, version: str) -> Path:
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", f"{module}@{version}")
    return cache_root() / "unavailable" / f"{safe}.json"


def go_mod_download(module: str, version: str, progress: Progress) -> Path:
    """``go mod download -json MODULE@vVERSION`` and returns the unpacked module dir."""
    marker = _unavailable_marker(module, version)
    if marker.exists() and time.time() - marker.stat().st_mtime < UNAVAILABLE_TTL_S:
        data = json.loads(marker.read_text())
        raise ModuleUnavailableError(
            f"step 'go mod download {module}@v{version}': refused by the Go module proxy "
            f"(remembered from {data.get('when')}; delete {marker} to ask again): "
            f"{data.get('error')}"
        )
    proc = subprocess.run(
        ["go", "mod", "download", "-json", f"{module}@v{version}"],
        env=_go_env(), capture_output=True, text=True, check=False,
        cwd=cache_root(),
    )  # fmt: skip
    try:
        info = json.loads(proc.stdout) if proc.stdout.strip() else {}
    except json.JSONDecodeError:
        info = {}
    error = info.get("Error") or (proc.stderr.strip() if proc.returncode else "")
    if error:
        if "403" in error or "not available" in error or "404" in error:
            marker.parent.mkdir(parents=True, exist_ok=True)
            marker.write_text(
                json.dumps({"when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                            "error": error.splitlines()[0]})
            )  # fmt: skip
            raise ModuleUnavailableError(
                f"step 'go mod download {module}@v{version}': the Go module proxy refused it: {error.splitlines()[0]}"
            )
        raise ToolchainError(f"step 'go mod download {module}@v{version}' failed: {error}")
    return Path(info["Dir"])


def pulumi_version(binary: Path | str) -> str | None:
    try:
        proc = subprocess.run(
            [str(binary), "version"], capture_output=True, text=True, timeout=60, check=False,
            env={**os.environ, "PULUMI_SKIP_UPDATE_CHECK": "true"},
        )  # fmt: skip
    except OSError:
        return None
    return proc.stdout.strip().lstrip("v") or None if proc.returncode == 0 else None


# -- helper scripts ------------------------------------------------------------------------

SCRIPTS: dict[str, str] = {
    "pulumi-language-python": "language_host.py",
    "pulumi-language-python-exec": "language_exec.py",
    "pulumi-resource-pulumi-python": "dynamic_provider.sh",
}


def render_script(name: str, version: str) -> str:
    text = (SCRIPTS_DIR / SCRIPTS[name]).read_text()
    if name == "pulumi-language-python":
        # The host needs grpcio + the pulumi protos, so it runs under the project venv; the
        # *program* still runs under whatever virtualenv its Pulumi.yaml names.
        text = f"#!{host_python()}\n" + text.replace("@HOST_VERSION@", version)
    elif name == "pulumi-language-python-exec":
        text = "#!/usr/bin/env python3\n" + text
    return text


def install_scripts(bin_dir: Path, version: str) -> None:
    """Writes the helper scripts beside ``pulumi``; rewrites only what changed."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    for name in SCRIPTS:
        target = bin_dir / name
        text = render_script(name, version)
        if not target.exists() or target.read_text() != text:
            tmp = target.with_suffix(".tmp")
            tmp.write_text(text)
            tmp.chmod(0o755)
            tmp.replace(target)


# -- the CLI -------------------------------------------------------------------------------


def _stamp_ok(stamp: Path, version: str) -> bool:
    if not stamp.exists():
        return False
    try:
        data = json.loads(stamp.read_text())
    except json.JSONDecodeError:
        return False
    return bool(data.get("version") == version and data.get("recipe") == RECIPE)


def build_cli(version: str, progress: Progress) -> Path:
    """Builds ``pulumi`` from pkg/v3 + sdk/v3 at ``version``; returns the bin dir."""
    out_dir = cli_dir(version)
    bin_dir = out_dir / "bin"
    stamp = out_dir / "build.json"
    logs = cache_root() / "logs"
    started = time.monotonic()
    if shutil.which("go") is None:
        raise ToolchainError("step 'find go': no `go` on PATH; the CLI is built from Go modules")

    with Step(f"download {PKG_MODULE}@v{version}", progress):
        pkg_src = go_mod_download(PKG_MODULE, version, progress)
    with Step(f"download {SDK_MODULE}@v{version}", progress):
        sdk_src = go_mod_download(SDK_MODULE, version, progress)

    # pkg/go.mod says `replace sdk/v3 => ../sdk`: rebuilding the repository layout lets that
    # relative replace (and every other pin in pkg's go.mod/go.sum) work unchanged.
    work = cache_root() / "build" / f"v{version}"
    with Step("lay out pkg + sdk sources", progress):
        if work.exists():
            _rmtree(work)
        work.mkdir(parents=True)
        for src, name in ((pkg_src, "pkg"), (sdk_src, "sdk")):
            shutil.copytree(src, work / name, symlinks=True)
        _make_writable(work)

    tmp_bin = bin_dir / "pulumi.partial"
    bin_dir.mkdir(parents=True, exist_ok=True)
    # No separate `go mod download`: it fetches the whole module graph, and the proxy here
    # refuses a gocloud.dev pseudo-version that pkg/go.mod lists but cmd/pulumi never builds.
    # `go build` fetches only the modules it compiles.
    with Step("go build ./cmd/pulumi (cold: 10-20 min on 2 cores)", progress):
        _run_logged(
            "go build ./cmd/pulumi",
            ["go", "build", "-v", "-trimpath",
             "-ldflags", f"-s -w -X {VERSION_SYMBOL}=v{version}",
             "-o", str(tmp_bin), "./cmd/pulumi"],
            work / "pkg", _go_env(), logs / f"cli-v{version}-build.log", progress,
        )  # fmt: skip
    got = pulumi_version(tmp_bin)
    if got != version:
        raise ToolchainError(f"step 'check pulumi version': built binary says {got!r}, expected {version}")
    tmp_bin.replace(bin_dir / "pulumi")
    go_version = subprocess.run(["go", "env", "GOVERSION"], capture_output=True, text=True, check=False).stdout.strip()
    stamp.write_text(
        json.dumps(
            {
                "version": version,
                "recipe": RECIPE,
                "go": go_version,
                "modules": [f"{PKG_MODULE}@v{version}", f"{SDK_MODULE}@v{version}"],
                "build_seconds": round(time.monotonic() - started, 1),
                "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            },
            indent=2,
        )
    )
    # The compiled packages stay in GOCACHE; the 130 MB source copy is not needed again.
    _rmtree(work)
    return bin_dir


def _make_writable(root: Path) -> None:
    # Module-cache files are read-only; the copy must be writable for go.sum and removal.
    for dirpath, _dirnames, filenames in os.walk(root):
        os.chmod(dirpath, 0o755)  # noqa: S103 - a private build tree, as the go tool leaves it
        for name in filenames:
            path = os.path.join(dirpath, name)
            if not os.path.islink(path):
                os.chmod(path, 0o644)


def _rmtree(path: Path) -> None:
    _make_writable(path)
    shutil.rmtree(path)


def find_cli(version: str) -> tuple[Path, str] | None:
    """A usable CLI already present: the version-keyed cache first, then PATH."""
    bin_dir = cli_dir(version) / "bin"
    if _stamp_ok(cli_dir(version) / "build.json", version) and (bin_dir / "pulumi").exists():
        return bin_dir, "cache"
    on_path = shutil.which("pulumi")
    if on_path and pulumi_version(on_path) == version:
        return Path(on_path).resolve().parent, "path"
    return None


# -- resource plugins ----------------------------------------------------------------------


def plugin_cache_dir(name: str, version: str) -> Path:
    return pulumi_home() / "plugins" / f"resource-{name}-v{version}"


def install_plugin_file(pulumi: Path, name: str, version: str, binary: Path) -> None:
    """Offline install into PULUMI_HOME: the only place the engine looks for an exact version."""
    proc = subprocess.run(
        [str(pulumi), "plugin", "install", "resource", name, version, "--file", str(binary)],
        env={**os.environ, "PULUMI_HOME": str(pulumi_home()), "PULUMI_SKIP_UPDATE_CHECK": "true"},
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if proc.returncode != 0:
        raise ToolchainError(
            f"step 'pulumi plugin install resource {name} {version} --file {binary}' failed: "
            f"{proc.stderr.strip() or proc.stdout.strip()}"
        )


def ensure_plugin(pulumi: Path, name: str, version: str, progress: Progress) -> PluginStatus:
    cached = plugin_cache_dir(name, version) / f"pulumi-resource-{name}"
    if cached.exists():
        return PluginStatus(name, version, True, str(cached))
    # A binary someone built elsewhere (same machine, other recipe) can be handed in.
    supplied = os.environ.get(f"FLIGHTDECK_PULUMI_PLUGIN_{name.upper()}")
    if supplied:
        with Step(f"install plugin {name} {version} from {supplied}", progress):
            install_plugin_file(pulumi, name, version, Path(supplied))
        return PluginStatus(name, version, True, str(cached))
    module = PLUGIN_MODULES[name]
    try:
        with Step(f"download {module}@v{version}", progress):
            go_mod_download(module, version, progress)
    except ModuleUnavailableError as err:
        return PluginStatus(name, version, False, reason=str(err))
    # Reached only if the proxy starts serving the module: the recipe in
    # docs/toolchain.md (go generate + go build) has not been run here, so say so.
    return PluginStatus(
        name, version, False,
        reason=f"{module}@v{version} is now served, but its build recipe is not automated "
        "yet (see docs/toolchain.md)",
    )  # fmt: skip


# -- top level -----------------------------------------------------------------------------


def ensure(
    cli_version: str = DEFAULT_CLI_VERSION,
    progress: Progress = _stderr_progress,
    plugins: bool = True,
) -> Toolchain:
    started = time.monotonic()
    root = cache_root()
    root.mkdir(parents=True, exist_ok=True)
    with _lock(root / ".lock"):
        found = find_cli(cli_version)
        if found is None:
            progress(f"[pulumi-toolchain] no pulumi v{cli_version} in {cli_dir(cli_version)} "
                     "or on PATH: building it from Go modules")  # fmt: skip
            bin_dir, source = build_cli(cli_version, progress), "built"
        else:
            bin_dir, source = found
        if source == "path":
            # Never write into someone else's install: scripts go to our own bin dir, which
            # env() puts first on PATH, with a symlink to the PATH pulumi.
            own = cli_dir(cli_version) / "bin"
            own.mkdir(parents=True, exist_ok=True)
            link = own / "pulumi"
            if not link.exists():
                link.symlink_to(bin_dir / "pulumi")
            bin_dir = own
        install_scripts(bin_dir, cli_version)
        pulumi_home().mkdir(parents=True, exist_ok=True)
        toolchain = Toolchain(cli_version, str(bin_dir), str(pulumi_home()), source)
        if plugins:
            for name, version in PLUGINS.items():
                toolchain.plugins.append(ensure_plugin(bin_dir / "pulumi", name, version, progress))
    progress(f"[pulumi-toolchain] ready in {time.monotonic() - started:.1f}s: "
             f"pulumi v{cli_version} ({source}) in {bin_dir}")  # fmt: skip
    return toolchain


def env_exports(toolchain: Toolchain) -> str:
    lines = []
    for key, value in toolchain.env().items():
        if key == "PATH":
            lines.append(f'export PATH={shlex.quote(value)}:"$PATH"')
        else:
            lines.append(f"export {key}={shlex.quote(value)}")
    return "\n".join(lines)


def current(cli_version: str = DEFAULT_CLI_VERSION) -> Toolchain:
    """The toolchain as it is now, without building; raises if ensure has not run."""
    bin_dir = cli_dir(cli_version) / "bin"
    if not (bin_dir / "pulumi").exists() or not (bin_dir / "pulumi-language-python").exists():
        raise ToolchainError(
            f"pulumi v{cli_version} is not set up in {bin_dir}: run `python -m tools.pulumi_toolchain ensure` first"
        )
    # ensure leaves a symlink there when it adopted a `pulumi` from PATH.
    source = "path" if (bin_dir / "pulumi").is_symlink() else "cache"
    toolchain = Toolchain(cli_version, str(bin_dir), str(pulumi_home()), source)
    for name, version in PLUGINS.items():
        cached = plugin_cache_dir(name, version) / f"pulumi-resource-{name}"
        if cached.exists():
            toolchain.plugins.append(PluginStatus(name, version, True, str(cached)))
            continue
        marker = _unavailable_marker(PLUGIN_MODULES[name], version)
        reason = "not installed: run ensure"
        if marker.exists():
            refusal = json.loads(marker.read_text()).get("error", "")
            reason = f"the Go module proxy refused its module: {refusal}"
        toolchain.plugins.append(PluginStatus(name, version, False, reason=reason))
    return toolchain


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tools.pulumi_toolchain", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    sub = ap.add_subparsers(dest="command", required=True)
    for name in ("ensure", "env", "status"):
        cmd = sub.add_parser(name)
        cmd.add_argument("--cli-version", default=os.environ.get(
            "FLIGHTDECK_PULUMI_CLI_VERSION", DEFAULT_CLI_VERSION))  # fmt: skip
        if name == "ensure":
            cmd.add_argument("--allow-missing-plugins", action="store_true",
                             help="exit 0 even if a resource plugin cannot be provided")  # fmt: skip
            cmd.add_argument("--no-plugins", action="store_true")
        if name in ("ensure", "status"):
            cmd.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    version = args.cli_version.lstrip("v")
    try:
        toolchain = ensure(version, plugins=not args.no_plugins) if args.command == "ensure" else current(version)
    except ToolchainError as err:
        print(f"pulumi-toolchain: {err}", file=sys.stderr)
        return 2
    if args.command == "env":
        print(env_exports(toolchain))
        return 0
    if getattr(args, "json", False):
        print(json.dumps(asdict(toolchain), indent=2))
    else:
        for plugin in toolchain.plugins:
            state = plugin.path if plugin.available else f"MISSING: {plugin.reason}"
            print(f"resource plugin {plugin.name} {plugin.version}: {state}")
    missing = [p for p in toolchain.plugins if not p.available]
    if args.command == "ensure" and missing and not args.allow_missing_plugins:
        print(
            "pulumi-toolchain: engine ready, but resource plugin(s) "
            + ", ".join(f"{p.name} {p.version}" for p in missing)
            + " cannot be provided (rerun with --allow-missing-plugins to accept that)",
            file=sys.stderr,
        )
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
