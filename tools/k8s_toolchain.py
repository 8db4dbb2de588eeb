"""Build (or reuse) the binaries of a small local Kubernetes control plane from Go modules.

This machine reaches package registries only, so every binary is compiled from modules
served by the Go module proxy with the ordinary ``go`` client:

* ``etcd``: ``go.etcd.io/etcd/server/v3`` (its module root is the etcd main package);
* ``kube-apiserver``, ``kube-controller-manager``, ``kube-scheduler`` and ``kubectl``:
  ``k8s.io/kubernetes``. Its go.mod points the ``k8s.io/*`` staging modules at
  ``./staging/...`` folders that are not part of the module zip, so a generated wrapper
  module replaces each of them with its published ``v0.<minor>.<patch>``;
* ``kwok``: ``sigs.k8s.io/kwok/cmd/kwok`` (no replace lines, ``go install`` works).

Outputs are cached outside the repository, keyed by version:
``${FLIGHTDECK_CACHE:-$HOME/.cache/flightdeck}/k8s/<component>-<version>/bin``.
A second run finds the stamp files and returns at once.

CLI: ``python -m tools.k8s_toolchain [--no-kubectl] [--json | --print-bin-dir]``.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

# Tested versions. The env overrides exist for trying a newer release (untested until
# tools/verify_controlplane.py passes with it); the cache keys follow them.
KUBERNETES_VERSION = os.environ.get("FLIGHTDECK_KUBERNETES_VERSION", "v1.34.4")
ETCD_VERSION = os.environ.get("FLIGHTDECK_ETCD_VERSION", "v3.6.8")
KWOK_VERSION = os.environ.get("FLIGHTDECK_KWOK_VERSION", "v0.8.0")

# Bump when the build recipe changes so stale cache entries are rebuilt, not trusted.
RECIPE = "1"

WRAPPER_MODULE = "flightdeck.local/k8sbuild"

Progress = Callable[[str], None]


class ToolchainError(RuntimeError):
    """A build step failed; the message names the step and points at its log."""


@dataclass(frozen=True)
class Toolchain:
    """Absolute paths of the control-plane binaries and the versions they report."""

    etcd: str
    kube_apiserver: str
    kube_controller_manager: str
    kube_scheduler: str
    kwok: str
    kubectl: str | None
    kubernetes_version: str
    etcd_version: str
    kwok_version: str

    def bin_dirs(self) -> list[str]:
        dirs: list[str] = []
        for p in (self.etcd, self.kube_apiserver, self.kwok, self.kubectl):
            if p is not None and os.path.dirname(p) not in dirs:
                dirs.append(os.path.dirname(p))
        return dirs


def cache_root() -> Path:
    base = os.environ.get("FLIGHTDECK_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "flightdeck")
    return Path(base) / "k8s"


def _stderr(msg: str) -> None:
    print(f"[k8s-toolchain] {msg}", file=sys.stderr, flush=True)


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Serialise concurrent builds (e.g. two pytest workers) on one cache folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _go_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    # Static binaries: no C toolchain needed and they run anywhere on this machine kind.
    env["CGO_ENABLED"] = "0"
    env.pop("GOOS", None)
    env.pop("GOARCH", None)
    # The wrapper module is generated; let go add the go.sum lines it needs.
    flags = env.get("GOFLAGS", "")
    flags = " ".join(f for f in flags.split() if not f.startswith("-mod="))
    env["GOFLAGS"] = (flags + " -mod=mod").strip()
    if extra:
        env.update(extra)
    return env


def _run_step(
    step: str,
    argv: Sequence[str],
    *,
    cwd: Path,
    log: Path,
    env: dict[str, str],
    progress: Progress,
    heartbeat_s: float = 30.0,
) -> str:
    """Run one build step with its output in ``log``; print a heartbeat while it runs.

    ``go build -v`` prints one line per compiled package, so the line count in the log is a
    cheap progress indicator for builds that take many minutes.
    """
    log.parent.mkdir(parents=True, exist_ok=True)
    progress(f"{step}: {' '.join(argv)}  (log: {log})")
    started = time.monotonic()
    with open(log, "ab") as out:
        out.write(f"\n### {step}: {' '.join(argv)}\n".encode())
        out.flush()
        proc = subprocess.Popen(list(argv), cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT)
        done = threading.Event()

        def beat() -> None:
            while not done.wait(heartbeat_s):
                try:
                    with open(log, "rb") as fh:
                        lines = sum(1 for _ in fh)
                except OSError:
                    lines = 0
                progress(f"{step}: still running after {time.monotonic() - started:.0f}s ({lines} log lines)")

        t = threading.Thread(target=beat, daemon=True)
        t.start()
        try:
            rc = proc.wait()
        finally:
            done.set()
            t.join()
    elapsed = time.monotonic() - started
    if rc != 0:
        tail = log.read_text(errors="replace").splitlines()[-25:]
        raise ToolchainError(
            f"step '{step}' failed with exit code {rc} after {elapsed:.0f}s; full log: {log}\n" + "\n".join(tail)
        )
    progress(f"{step}: ok in {elapsed:.0f}s")
    return log.read_text(errors="replace")


def _capture(argv: Sequence[str], env: dict[str, str] | None = None) -> str:
    res = subprocess.run(list(argv), capture_output=True, text=True, env=env, timeout=60, check=False)
    return res.stdout + res.stderr


def _version_of(binary: str, args: Sequence[str] = ("--version",)) -> str:
    try:
        return _capture([binary, *args])
    except (OSError, subprocess.SubprocessError):
        return ""


def _matches(binary: str | None, pattern: str, args: Sequence[str] = ("--version",)) -> bool:
    return bool(binary) and re.search(pattern, _version_of(str(binary), args)) is not None


def _from_path(name: str, pattern: str, args: Sequence[str] = ("--version",)) -> str | None:
    """A binary already on PATH is reused only when it reports exactly the wanted version."""
    found = shutil.which(name)
    if found and _matches(found, pattern, args):
        return os.path.abspath(found)
    return None


def _stamp_ok(dest: Path, names: Sequence[str], key: str) -> bool:
    stamp = dest / ".complete"
    if not stamp.is_file() or stamp.read_text().strip() != key:
        return False
    return all(os.access(dest / "bin" / n, os.X_OK) for n in names)


def _install_bins(staging: Path, dest: Path, names: Sequence[str], key: str) -> None:
    """Move freshly built binaries into place, then write the stamp (so a crash is a miss)."""
    (dest / "bin").mkdir(parents=True, exist_ok=True)
    for n in names:
        src = staging / n
        if not src.is_file():
            raise ToolchainError(f"step 'install {n}' failed: {src} was not produced")
        src.chmod(0o755)
        os.replace(src, dest / "bin" / n)
    (dest / ".complete").write_text(key + "\n")


def _go_version() -> str:
    go = shutil.which("go")
    if go is None:
        raise ToolchainError("step 'find go' failed: no 'go' on PATH (install Go >= 1.24)")
    return _capture([go, "env", "GOVERSION"]).strip()


def _mod_download(module: str, version: str, progress: Progress) -> dict[str, str]:
    step = f"download {module}@{version}"
    progress(step)
    env = _go_env({"GOFLAGS": os.environ.get("GOFLAGS", "")})
    try:
        res = subprocess.run(
            ["go", "mod", "download", "-json", f"{module}@{version}"],
            capture_output=True,
            text=True,
            env=env,
            timeout=1800,
            check=False,
            cwd=os.path.expanduser("~"),
        )
    except (OSError, subprocess.SubprocessError) as exc:
        raise ToolchainError(f"step '{step}' failed: {exc}") from exc
    try:
        info: dict[str, str] = json.loads(res.stdout)
    except json.JSONDecodeError:
        info = {"Error": (res.stdout + res.stderr).strip() or f"exit code {res.returncode}"}
    if res.returncode != 0 or info.get("Error"):
        raise ToolchainError(f"step '{step}' failed: {info.get('Error') or res.stderr.strip()}")
    return info


# --- etcd -----------------------------------------------------------------------------------


def ensure_etcd(version: str = ETCD_VERSION, progress: Progress = _stderr) -> str:
    want = rf"etcd Version: {re.escape(version.lstrip('v'))}\b"
    found = _from_path("etcd", want)
    if found:
        progress(f"etcd {version}: reusing {found} from PATH")
        return found
    dest = cache_root() / f"etcd-{version}"
    key = f"etcd {version} recipe {RECIPE}"
    if _stamp_ok(dest, ["etcd"], key):
        return str(dest / "bin" / "etcd")
    with _locked(dest.with_suffix(".lock")):
        if _stamp_ok(dest, ["etcd"], key):
            return str(dest / "bin" / "etcd")
        progress(f"etcd {version}: building from go.etcd.io/etcd/server/v3 (a few minutes)")
        src = dest / "src"
        src.mkdir(parents=True, exist_ok=True)
        log = dest / "build.log"
        # Only the main module's replace lines apply, so requiring server/v3 pulls its
        # sibling modules (api, client, pkg) at the published versions its go.mod names.
        (src / "go.mod").write_text(
            f"module {WRAPPER_MODULE}/etcd\n\ngo 1.24.0\n\nrequire go.etcd.io/etcd/server/v3 {version}\n"
        )
        (src / "tools.go").write_text('//go:build tools\n\npackage tools\n\nimport _ "go.etcd.io/etcd/server/v3"\n')
        env = _go_env()
        _run_step(
            "etcd: go mod tidy",
            ["go", "mod", "tidy"],
            cwd=src,
            log=log,
            env=env,
            progress=progress,
        )
        out = dest / "bin.tmp"
        shutil.rmtree(out, ignore_errors=True)
        out.mkdir()
        _run_step(
            "etcd: go build",
            [
                "go",
                "build",
                "-v",
                "-trimpath",
                "-ldflags",
                "-s -w",
                "-o",
                str(out / "etcd"),
                "go.etcd.io/etcd/server/v3",
            ],
            cwd=src,
            log=log,
            env=env,
            progress=progress,
        )
        if not _matches(str(out / "etcd"), want):
            raise ToolchainError(
                f"step 'etcd: version check' failed: {out / 'etcd'} reports "
                f"{_version_of(str(out / 'etcd'))!r}, wanted {version}"
            )
        _install_bins(out, dest, ["etcd"], key)
        shutil.rmtree(out, ignore_errors=True)
    return str(dest / "bin" / "etcd")


# --- kubernetes -----------------------------------------------------------------------------

K8S_CMDS = ("kube-apiserver", "kube-controller-manager", "kube-scheduler")


def _staging_replaces(gomod: str, kube_version: str) -> list[str]:
    """``k8s.io/api => ./staging/src/k8s.io/api`` becomes ``k8s.io/api => k8s.io/api v0.34.4``."""
    m = re.fullmatch(r"v1\.(\d+)\.(\d+)", kube_version)
    if m is None:
        raise ToolchainError(f"step 'parse version' failed: unexpected {kube_version!r}")
    published = f"v0.{m.group(1)}.{m.group(2)}"
    mods = re.findall(r"^\s*(k8s\.io/[\w.-]+)\s*=>\s*\./staging/", gomod, flags=re.MULTILINE)
    if not mods:
        raise ToolchainError("step 'read k8s.io/kubernetes go.mod' failed: no staging replaces")
    return [f"\t{mod} => {mod} {published}" for mod in mods]


def _kube_ldflags(kube_version: str, build_date: str) -> str:
    m = re.fullmatch(r"v(\d+)\.(\d+)\.\d+", kube_version)
    assert m is not None
    vals = {
        "gitVersion": kube_version,
        "gitMajor": m.group(1),
        "gitMinor": m.group(2),
        "gitTreeState": "clean",
        "buildDate": build_date,
    }
    # Both packages hold a copy of the version info (hack/lib/version.sh stamps both);
    # /version on the apiserver comes from component-base.
    parts = ["-s", "-w"]
    for pkg in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version"):
        parts += [f"-X {pkg}.{k}={v}" for k, v in vals.items()]
    return " ".join(parts)


def ensure_kubernetes(
    version: str = KUBERNETES_VERSION,
    *,
    include_kubectl: bool = True,
    progress: Progress = _stderr,
) -> dict[str, str]:
    """Return {command name: path} for the kube binaries, building what is missing."""
    names = list(K8S_CMDS) + (["kubectl"] if include_kubectl else [])
    want = rf"Kubernetes {re.escape(version)}\b"
    found: dict[str, str | None] = {n: _from_path(n, want) for n in K8S_CMDS}
    if include_kubectl:
        found["kubectl"] = _from_path(
            "kubectl",
            rf"Client Version: {re.escape(version)}\b",
            ("version", "--client"),
        )
    if all(found.values()):
        progress(f"kubernetes {version}: reusing binaries from PATH")
        return {n: str(p) for n, p in found.items()}

    dest = cache_root() / f"kubernetes-{version}"
    key = f"kubernetes {version} recipe {RECIPE}"
    bins = {n: str(dest / "bin" / n) for n in names}
    if _stamp_ok(dest, names, key):
        return bins
    with _locked(dest.with_suffix(".lock")):
        if _stamp_ok(dest, names, key):
            return bins
        progress(
            f"kubernetes {version}: building {', '.join(names)} from k8s.io/kubernetes "
            "(cold build: 10-25 minutes on 2 cores)"
        )
        src = dest / "src"
        src.mkdir(parents=True, exist_ok=True)
        log = dest / "build.log"
        info = _mod_download("k8s.io/kubernetes", version, progress)
        upstream_mod = Path(info["GoMod"]).read_text()
        go_line = re.search(r"^go (\S+)", upstream_mod, flags=re.MULTILINE)
        godebug = re.findall(r"^godebug .*$", upstream_mod, flags=re.MULTILINE)
        replaces = _staging_replaces(upstream_mod, version)
        (src / "go.mod").write_text(
            f"module {WRAPPER_MODULE}/kubernetes\n\n"
            f"go {go_line.group(1) if go_line else '1.24.0'}\n\n"
            + "".join(f"{g}\n" for g in godebug)
            + f"\nrequire k8s.io/kubernetes {version}\n\nreplace (\n"
            + "\n".join(replaces)
            + "\n)\n"
        )
        (src / "tools.go").write_text(
            "//go:build tools\n\npackage tools\n\nimport (\n"
            + "".join(f'\t_ "k8s.io/kubernetes/cmd/{n}"\n' for n in names)
            + ")\n"
        )
        env = _go_env()
        _run_step(
            "kubernetes: go mod tidy",
            ["go", "mod", "tidy"],
            cwd=src,
            log=log,
            env=env,
            progress=progress,
        )
        build_date = "1970-01-01T00:00:00Z"
        info_file = Path(info.get("Info", ""))
        if info_file.is_file():
            build_date = json.loads(info_file.read_text()).get("Time", build_date)
        out = dest / "bin.tmp"
        shutil.rmtree(out, ignore_errors=True)
        out.mkdir()
        # One go build for all commands: the shared packages are compiled once.
        _run_step(
            "kubernetes: go build",
            [
                "go",
                "build",
                "-v",
                "-trimpath",
                "-ldflags",
                _kube_ldflags(version, build_date),
                "-o",
                str(out) + "/",
            ]
            + [f"k8s.io/kubernetes/cmd/{n}" for n in names],
            cwd=src,
            log=log,
            env=env,
            progress=progress,
        )
        for n in K8S_CMDS:
            if not _matches(str(out / n), want):
                raise ToolchainError(
                    f"step 'kubernetes: version check of {n}' failed: reports "
                    f"{_version_of(str(out / n))!r}, wanted {version}"
                )
        _install_bins(out, dest, names, key)
        shutil.rmtree(out, ignore_errors=True)
    return bins


# --- kwok -----------------------------------------------------------------------------------


def ensure_kwok(version: str = KWOK_VERSION, progress: Progress = _stderr) -> str:
    want = rf"kwok version v?{re.escape(version.lstrip('v'))}\b"
    found = _from_path("kwok", want)
    if found:
        progress(f"kwok {version}: reusing {found} from PATH")
        return found
    dest = cache_root() / f"kwok-{version}"
    key = f"kwok {version} recipe {RECIPE}"
    if _stamp_ok(dest, ["kwok"], key):
        return str(dest / "bin" / "kwok")
    with _locked(dest.with_suffix(".lock")):
        if _stamp_ok(dest, ["kwok"], key):
            return str(dest / "bin" / "kwok")
        progress(f"kwok {version}: building sigs.k8s.io/kwok/cmd/kwok (a few minutes)")
        out = dest / "bin.tmp"
        shutil.rmtree(out, ignore_errors=True)
        out.mkdir(parents=True)
        # `go install pkg@version` refuses -mod flags; it builds the module as published.
        env = _go_env({"GOBIN": str(out), "GOFLAGS": os.environ.get("GOFLAGS", "")})
        _run_step(
            "kwok: go install",
            [
                "go",
                "install",
                "-v",
                "-trimpath",
                "-ldflags",
                "-s -w",
                f"sigs.k8s.io/kwok/cmd/kwok@{version}",
            ],
            cwd=dest,
            log=dest / "build.log",
            env=env,
            progress=progress,
        )
        _install_bins(out, dest, ["kwok"], key)
        shutil.rmtree(out, ignore_errors=True)
    return str(dest / "bin" / "kwok")


def kwok_module_dir(version: str = KWOK_VERSION, progress: Progress = _stderr) -> Path:
    """The unpacked kwok module (its kustomize/stage folder holds the upstream stage configs)."""
    dest = cache_root() / f"kwok-{version}"
    dest.mkdir(parents=True, exist_ok=True)
    info = _mod_download("sigs.k8s.io/kwok", version, progress)
    return Path(info["Dir"])


# --- all ------------------------------------------------------------------------------------


def ensure_toolchain(*, include_kubectl: bool = True, progress: Progress = _stderr) -> Toolchain:
    """Build or reuse every binary; safe to call from several processes at once."""
    started = time.monotonic()
    _go_version()
    etcd = ensure_etcd(progress=progress)
    kwok = ensure_kwok(progress=progress)
    kube = ensure_kubernetes(include_kubectl=include_kubectl, progress=progress)
    tc = Toolchain(
        etcd=etcd,
        kube_apiserver=kube["kube-apiserver"],
        kube_controller_manager=kube["kube-controller-manager"],
        kube_scheduler=kube["kube-scheduler"],
        kwok=kwok,
        kubectl=kube.get("kubectl"),
        kubernetes_version=KUBERNETES_VERSION,
        etcd_version=ETCD_VERSION,
        kwok_version=KWOK_VERSION,
    )
    progress(f"toolchain ready in {time.monotonic() - started:.1f}s under {cache_root()}")
    return tc


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--no-kubectl", action="store_true", help="skip building kubectl")
    fmt = ap.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true", help="print binary paths as JSON")
    fmt.add_argument(
        "--print-bin-dir",
        action="store_true",
        help="print the folders to prepend to PATH, ':'-joined",
    )
    args = ap.parse_args(argv)
    try:
        tc = ensure_toolchain(include_kubectl=not args.no_kubectl)
    except ToolchainError as exc:
        print(f"k8s_toolchain: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(asdict(tc), indent=2))
    elif args.print_bin_dir:
        print(":".join(tc.bin_dirs()))
    else:
        for k, v in asdict(tc).items():
            print(f"{k}: {v}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
