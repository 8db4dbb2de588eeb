"""flightdeck's own Python language host for the Pulumi engine.

Installed by ``tools.pulumi_toolchain`` as ``pulumi-language-python`` with a shebang naming a
Python that has ``grpcio`` and the ``pulumi`` SDK (the project venv).

Why this exists: upstream's Go language host lives in the nested module
``github.com/pulumi/pulumi/sdk/python/cmd/pulumi-language-python/v3``, which the Go module
proxy reachable from this machine does not serve at any version. The Python SDK ships the
generated gRPC stubs for the LanguageRuntime service, so this host implements the subset of
that service the engine uses for ``preview``/``up``/``refresh``/``destroy``/``about``.

The engine starts us as ``pulumi-language-python [flags] ENGINE_ADDRESS`` and reads the port
we listen on from the first line of our stdout.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from concurrent import futures
from pathlib import Path
from typing import Any

import grpc  # type: ignore[import-untyped]
from google.protobuf import empty_pb2, json_format
from pulumi.runtime.proto import (
    language_pb2,
    language_pb2_grpc,
    plugin_pb2,
)

# Replaced by tools.pulumi_toolchain when the script is installed.
HOST_VERSION = "@HOST_VERSION@"

# The exec script exits with this code after it has already shown the user the error, so the
# engine must not print a second "exited with non-zero exit code" message.
EXIT_USER_ACTIONABLE = 32

# Matches the engine's own gRPC limits so large stack configs and checkpoints fit.
_MAX_MSG = 400 * 1024 * 1024
_GRPC_OPTIONS = [
    ("grpc.max_receive_message_length", _MAX_MSG),
    ("grpc.max_send_message_length", _MAX_MSG),
]

# Lists the pulumi-plugin.json files of every installed distribution; run inside the
# *program's* interpreter so the plugin set matches the venv named in Pulumi.yaml.
_LIST_PLUGINS = r"""
import json, importlib.metadata as md
out = []
for dist in md.distributions():
    for f in dist.files or []:
        if f.name == "pulumi-plugin.json" and f.parent.name and "/" not in str(f.parent):
            try:
                data = json.loads(f.read_text())
            except Exception:
                continue
            out.append({"package": dist.metadata["Name"], "plugin": data})
print(json.dumps(out))
"""

_LIST_DEPS = r"""
import json, importlib.metadata as md
print(json.dumps(sorted({(d.metadata["Name"], d.version) for d in md.distributions()})))
"""


def _log(msg: str) -> None:
    # The engine shows a plugin's stderr only with -v; that is where diagnostics belong.
    print(f"pulumi-language-python: {msg}", file=sys.stderr, flush=True)


class PythonRuntime:
    """Chooses the interpreter for a program, honouring the Pulumi.yaml runtime options."""

    def __init__(self, root: str, options: dict[str, Any]) -> None:
        self.root = root
        self.options = options

    @property
    def virtualenv(self) -> str | None:
        venv = self.options.get("virtualenv") or os.environ.get("PULUMI_RUNTIME_VIRTUALENV")
        if not venv:
            return None
        path = Path(str(venv))
        if not path.is_absolute():
            path = Path(self.root) / path
        return str(path)

    def python(self) -> str:
        venv = self.virtualenv
        if venv:
            exe = Path(venv) / "bin" / "python"
            if not exe.exists():
                raise RuntimeError(
                    f"The 'virtualenv' option in Pulumi.yaml is set to {venv!r}, but it has no bin/python"
                )
            return str(exe)
        return os.environ.get("PULUMI_PYTHON_CMD", "python3")

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        venv = self.virtualenv
        if venv:
            env["VIRTUAL_ENV"] = venv
            env["PATH"] = os.pathsep.join([str(Path(venv) / "bin"), env.get("PATH", "")])
            env.pop("PYTHONHOME", None)
        return env

    def run_json(self, code: str) -> Any:
        proc = subprocess.run(
            [self.python(), "-c", code],
            env=self.env(),
            cwd=self.root or None,
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0:
            raise RuntimeError(f"{self.python()} failed: {proc.stderr.strip()}")
        return json.loads(proc.stdout)


def _options(info: language_pb2.ProgramInfo | None) -> dict[str, Any]:
    if info is None or not info.HasField("options"):
        return {}
    options: dict[str, Any] = json_format.MessageToDict(info.options)
    return options


class LanguageHost(language_pb2_grpc.LanguageRuntimeServicer):
    def __init__(self, exec_script: str, engine_address: str, root: str) -> None:
        self.exec_script = exec_script
        self.engine_address = engine_address
        self.root = root
        self._children: set[subprocess.Popen[bytes]] = set()
        self._lock = threading.Lock()

    # -- plumbing -----------------------------------------------------------------------

    def Handshake(  # noqa: N802 - gRPC service method
        self,
        request: language_pb2.LanguageHandshakeRequest,
        context: grpc.ServicerContext,
    ) -> language_pb2.LanguageHandshakeResponse:
        self.engine_address = request.engine_address or self.engine_address
        if request.HasField("root_directory"):
            self.root = request.root_directory
        return language_pb2.LanguageHandshakeResponse()

    def GetPluginInfo(self, request: empty_pb2.Empty, context: grpc.ServicerContext) -> plugin_pb2.PluginInfo:  # noqa: N802 - gRPC service method
        return plugin_pb2.PluginInfo(version=HOST_VERSION)

    def Cancel(self, request: empty_pb2.Empty, context: grpc.ServicerContext) -> empty_pb2.Empty:  # noqa: N802 - gRPC service method
        with self._lock:
            for child in self._children:
                child.send_signal(signal.SIGINT)
        return empty_pb2.Empty()

    def RuntimeOptionsPrompts(  # noqa: N802 - gRPC service method
        self, request: language_pb2.RuntimeOptionsRequest, context: grpc.ServicerContext
    ) -> language_pb2.RuntimeOptionsResponse:
        return language_pb2.RuntimeOptionsResponse()

    # -- dependencies -------------------------------------------------------------------

    def _runtime(self, info: language_pb2.ProgramInfo | None) -> PythonRuntime:
        root = info.root_directory if info is not None and info.root_directory else self.root
        return PythonRuntime(root, _options(info))

    def _plugins(self, info: language_pb2.ProgramInfo | None) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        for entry in self._runtime(info).run_json(_LIST_PLUGINS):
            plugin = entry["plugin"]
            # The pulumi SDK itself ships no resource plugin; only resource packages count.
            if not plugin.get("resource") or not plugin.get("name"):
                continue
            found.append(plugin)
        return found

    def GetRequiredPackages(  # noqa: N802 - gRPC service method
        self,
        request: language_pb2.GetRequiredPackagesRequest,
        context: grpc.ServicerContext,
    ) -> language_pb2.GetRequiredPackagesResponse:
        info = request.info if request.HasField("info") else None
        packages = [
            plugin_pb2.PackageDependency(
                kind="resource",
                name=p["name"],
                version=str(p.get("version", "")),
                server=str(p.get("server", "")),
            )
            for p in self._plugins(info)
        ]
        return language_pb2.GetRequiredPackagesResponse(packages=packages)

    def GetRequiredPlugins(  # noqa: N802 - gRPC service method
        self,
        request: language_pb2.GetRequiredPluginsRequest,
        context: grpc.ServicerContext,
    ) -> language_pb2.GetRequiredPluginsResponse:
        info = request.info if request.HasField("info") else None
        plugins = [
            plugin_pb2.PluginDependency(
                kind="resource",
                name=p["name"],
                version=str(p.get("version", "")),
                server=str(p.get("server", "")),
            )
            for p in self._plugins(info)
        ]
        return language_pb2.GetRequiredPluginsResponse(plugins=plugins)

    def GetProgramDependencies(  # noqa: N802 - gRPC service method
        self,
        request: language_pb2.GetProgramDependenciesRequest,
        context: grpc.ServicerContext,
    ) -> language_pb2.GetProgramDependenciesResponse:
        info = request.info if request.HasField("info") else None
        deps = self._runtime(info).run_json(_LIST_DEPS)
        return language_pb2.GetProgramDependenciesResponse(
            dependencies=[language_pb2.DependencyInfo(name=n, version=v) for n, v in deps]
        )

    def About(self, request: language_pb2.AboutRequest, context: grpc.ServicerContext) -> language_pb2.AboutResponse:  # noqa: N802 - gRPC service method
        info = request.info if request.HasField("info") else None
        runtime = self._runtime(info)
        version = runtime.run_json("import json, sys; print(json.dumps(sys.version.split()[0]))")
        return language_pb2.AboutResponse(executable=runtime.python(), version=version)

    def InstallDependencies(  # noqa: N802 - gRPC service method
        self,
        request: language_pb2.InstallDependenciesRequest,
        context: grpc.ServicerContext,
    ) -> Iterator[language_pb2.InstallDependenciesResponse]:
        # The project venv is built from pinned requirements by the repo's own setup; a
        # second installer here would race it and could change pins behind its back.
        yield language_pb2.InstallDependenciesResponse(
            stdout=b"flightdeck language host: dependencies are managed outside pulumi\n"
        )

    # -- running the program ------------------------------------------------------------

    def Run(self, request: language_pb2.RunRequest, context: grpc.ServicerContext) -> language_pb2.RunResponse:  # noqa: N802 - gRPC service method
        info = request.info if request.HasField("info") else None
        runtime = self._runtime(info)
        if info is not None and info.program_directory:
            program = os.path.join(info.program_directory, info.entry_point or ".")
        else:
            program = request.program or "."

        args = [
            runtime.python(),
            "-u",
            self.exec_script,
            "--monitor", request.monitor_address,
            "--engine", self.engine_address,
            "--project", request.project,
            "--root_directory", runtime.root,
            "--stack", request.stack,
            "--pwd", request.pwd,
            "--dry_run", "true" if request.dryRun else "false",
            "--parallel", str(request.parallel),
        ]  # fmt: skip
        if request.organization:
            args += ["--organization", request.organization]
        args.append(program)
        args.extend(request.args)

        env = runtime.env()
        env["PULUMI_CONFIG"] = json.dumps(dict(request.config))
        env["PULUMI_CONFIG_SECRET_KEYS"] = json.dumps(list(request.configSecretKeys))

        # The child inherits our stdout/stderr, which the engine streams into its display.
        try:
            child = subprocess.Popen(args, env=env, cwd=request.pwd or None)
        except OSError as err:
            return language_pb2.RunResponse(error=f"Problem executing program (could not run language executor): {err}")
        with self._lock:
            self._children.add(child)
        try:
            code = child.wait()
        finally:
            with self._lock:
                self._children.discard(child)
        if code == 0:
            return language_pb2.RunResponse()
        if code == EXIT_USER_ACTIONABLE:
            return language_pb2.RunResponse(bail=True)
        return language_pb2.RunResponse(error=f"Program exited with non-zero exit code: {code}")


_VALUE_FLAGS = {
    "root",
    "tracing",
    "virtualenv",
    "toolchain",
    "typechecker",
    "use-executor",
}


def _parse_argv(argv: list[str]) -> tuple[str, str]:
    """Returns (engine_address, root) from Go-style flags (-root=X or -root X) + ENGINE."""
    engine = ""
    root = os.getcwd()
    it = iter(argv)
    for arg in it:
        if not arg.startswith("-"):
            engine = arg
            continue
        name, eq, value = arg.lstrip("-").partition("=")
        if not eq and name in _VALUE_FLAGS:
            value = next(it, "")
        if name == "root" and value:
            root = value
    return engine, root


def main() -> None:
    engine, root = _parse_argv(sys.argv[1:])
    exec_script = os.path.realpath(sys.argv[0]) + "-exec"
    if not os.path.exists(exec_script):
        exec_script = os.path.abspath(sys.argv[0]) + "-exec"
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8), options=_GRPC_OPTIONS)
    language_pb2_grpc.add_LanguageRuntimeServicer_to_server(LanguageHost(exec_script, engine, root), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    print(port, flush=True)
    # The engine stops plugins with SIGINT when it is done; that is a normal exit, not an
    # error whose traceback should land in the user's diagnostics.
    signal.signal(signal.SIGINT, lambda *_: server.stop(grace=1))
    signal.signal(signal.SIGTERM, lambda *_: server.stop(grace=1))
    server.wait_for_termination()


if __name__ == "__main__":
    main()
