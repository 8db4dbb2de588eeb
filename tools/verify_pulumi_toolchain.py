"""End-to-end proof that the Pulumi toolchain from ``tools.pulumi_toolchain`` really works.

Everything runs in a fresh temporary directory against a ``file://`` backend with
``PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION=true``, so nothing is fetched and any missing
plugin fails at once. Checks, in order:

1. ``pulumi version`` of the engine the toolchain selected.
2. CLI flow on a tiny Python program with a dynamic-provider resource whose provider class
   lives in an importable module (``fdverify_provider.py``, pickled by reference), plus a
   ``pulumi_random.RandomPassword`` when the random plugin is available:
   ``up`` -> second ``up --expect-no-changes`` -> ``refresh`` -> ``destroy``.
3. The same program through the Automation API (``LocalWorkspace`` on that directory).
4. The kubernetes plugin starts: ``preview`` with a ``pulumi_kubernetes.Provider`` pointed
   at a kubeconfig context that does not exist must fail with a kube error, not a
   missing-plugin error.

Usage: ``python -m tools.verify_pulumi_toolchain [--keep] [--allow-missing-plugins]``.
Exit 0 when every check passed (or, with --allow-missing-plugins, was only skipped for a
missing plugin); 1 otherwise. Deterministic: fixed names, fixed inputs, bounded timeouts.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from tools import pulumi_toolchain

VENV = pulumi_toolchain.REPO_ROOT / ".venv"
CMD_TIMEOUT_S = 300

PROVIDER_MODULE = '''
"""A dynamic provider in an importable module, so it is pickled by reference."""

import hashlib

from pulumi.dynamic import CreateResult, DiffResult, ResourceProvider, UpdateResult


class GreetingProvider(ResourceProvider):
    def create(self, props):
        name = props["name"]
        outs = {"name": name, "greeting": f"hello {name}"}
        return CreateResult(hashlib.sha256(name.encode()).hexdigest()[:16], outs)

    def diff(self, _id, olds, news):
        changed = olds.get("name") != news.get("name")
        return DiffResult(changes=changed, replaces=["name"] if changed else [])

    def update(self, _id, olds, news):
        return UpdateResult({"name": news["name"], "greeting": f"hello {news['name']}"})

    def delete(self, _id, _props):
        pass
'''

PROGRAM = """
import pulumi
from pulumi.dynamic import Resource

from fdverify_provider import GreetingProvider

WITH_RANDOM = {with_random}


class Greeting(Resource, module="fdverify", name="Greeting"):
    def __init__(self, name, props, opts=None):
        super().__init__(GreetingProvider(), name, {{"greeting": None, **props}}, opts)


greeting = Greeting("hello", {{"name": "flightdeck"}})
pulumi.export("greeting", greeting.greeting)

if WITH_RANDOM:
    import pulumi_random

    password = pulumi_random.RandomPassword("db", length=24, special=False)
    pulumi.export("password_length", password.result.apply(len))
"""

K8S_PROGRAM = """
import pulumi
import pulumi_kubernetes as k8s

provider = k8s.Provider(
    "nowhere", kubeconfig="{kubeconfig}", context="fdverify-no-such-context"
)
k8s.core.v1.ConfigMap(
    "probe",
    metadata={{"name": "fdverify-probe", "namespace": "default"}},
    data={{"a": "b"}},
    opts=pulumi.ResourceOptions(provider=provider),
)
"""

PULUMI_YAML = f"""name: fdverify
runtime:
  name: python
  options:
    virtualenv: {VENV}
"""

MISSING_PLUGIN_MARKERS = (
    "no resource plugin",
    "could not find plugin",
    "failed to load plugin",
    "plugin not found",
    "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION",
)


@dataclass
class Check:
    name: str
    status: str  # PASS, FAIL, SKIP
    seconds: float
    detail: str = ""


class Verifier:
    def __init__(self, toolchain: pulumi_toolchain.Toolchain, work: Path) -> None:
        self.toolchain = toolchain
        self.work = work
        self.checks: list[Check] = []
        self.env = dict(os.environ)
        self.env.update(toolchain.env())
        self.env["PATH"] = os.pathsep.join([toolchain.bin_dir, os.environ.get("PATH", "")])
        backend = work / "backend"
        backend.mkdir(parents=True)
        self.env.update(
            {
                "PULUMI_BACKEND_URL": f"file://{backend}",
                "PULUMI_CONFIG_PASSPHRASE": "x",
                "PULUMI_SKIP_UPDATE_CHECK": "true",
                "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION": "true",
                "PULUMI_AUTOMATION_API_SKIP_VERSION_CHECK": "false",
                "NO_COLOR": "1",
            }
        )
        self.plugins = {p.name: p for p in toolchain.plugins}

    def pulumi(self, args: Sequence[str], cwd: Path) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [str(Path(self.toolchain.bin_dir) / "pulumi"), *args, "--non-interactive"],
            cwd=cwd, env=self.env, capture_output=True, text=True,
            timeout=CMD_TIMEOUT_S, check=False,
        )  # fmt: skip
        return proc

    def expect_ok(self, args: Sequence[str], cwd: Path) -> str:
        proc = self.pulumi(args, cwd)
        if proc.returncode != 0:
            raise AssertionError(
                f"`pulumi {' '.join(args)}` exited {proc.returncode}:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
            )
        return proc.stdout

    def run(self, name: str, fn: Callable[[], str]) -> None:
        start = time.monotonic()
        try:
            detail = fn()
            status = "PASS"
            if detail.startswith("SKIP:"):
                status, detail = "SKIP", detail[5:].strip()
        except Exception as err:  # every failure becomes a reported check
            status, detail = "FAIL", str(err)
        check = Check(name, status, round(time.monotonic() - start, 1), detail)
        self.checks.append(check)
        print(f"[{check.status}] {name} ({check.seconds}s) {detail.splitlines()[0] if detail else ''}",
              flush=True)  # fmt: skip
        if status == "FAIL":
            print(textwrap.indent(detail, "    "), flush=True)

    # -- projects -------------------------------------------------------------------------

    def project(self, name: str, program: str, provider_module: bool = True) -> Path:
        proj = self.work / name
        proj.mkdir()
        (proj / "Pulumi.yaml").write_text(PULUMI_YAML.replace("fdverify", name))
        (proj / "__main__.py").write_text(program)
        if provider_module:
            (proj / "fdverify_provider.py").write_text(PROVIDER_MODULE)
        return proj

    @property
    def with_random(self) -> bool:
        plugin = self.plugins.get("random")
        return bool(plugin and plugin.available)

    # -- checks ---------------------------------------------------------------------------

    def check_version(self) -> str:
        out = self.expect_ok(["version"], self.work).strip()
        expected = f"v{self.toolchain.cli_version}"
        if out != expected:
            raise AssertionError(f"pulumi version printed {out!r}, expected {expected}")
        return out

    def check_cli_flow(self) -> str:
        proj = self.project("fdcli", PROGRAM.format(with_random=self.with_random))
        self.expect_ok(["stack", "init", "dev"], proj)
        up1 = self.expect_ok(["up", "--yes", "--skip-preview"], proj)
        if "created" not in up1:
            raise AssertionError(f"first up created nothing:\n{up1}")
        outputs = json.loads(self.expect_ok(["stack", "output", "--json"], proj))
        if outputs.get("greeting") != "hello flightdeck":
            raise AssertionError(f"unexpected outputs {outputs}")
        if self.with_random and outputs.get("password_length") != 24:
            raise AssertionError(f"unexpected outputs {outputs}")
        # --expect-no-changes makes the engine itself fail if anything would change.
        self.expect_ok(["up", "--yes", "--expect-no-changes"], proj)
        self.expect_ok(["preview", "--expect-no-changes"], proj)
        self.expect_ok(["refresh", "--yes", "--expect-no-changes"], proj)
        state = json.loads(self.expect_ok(["stack", "export"], proj))
        provider = [
            r for r in state["deployment"]["resources"]
            if r["type"] == "pulumi-python:dynamic/fdverify:Greeting"
        ]  # fmt: skip
        if not provider:
            raise AssertionError("dynamic resource missing from state")
        self.expect_ok(["destroy", "--yes"], proj)
        left = json.loads(self.expect_ok(["stack", "export"], proj))
        if left["deployment"].get("resources"):
            raise AssertionError("resources left after destroy")
        self.expect_ok(["stack", "rm", "--yes"], proj)
        kinds = "dynamic resource" + (" + RandomPassword" if self.with_random else "")
        note = "" if self.with_random else " (random plugin missing: RandomPassword left out)"
        return f"up / up+preview+refresh --expect-no-changes / destroy of {kinds}{note}"

    def check_automation(self) -> str:
        from pulumi import automation as auto

        proj = self.project("fdauto", PROGRAM.format(with_random=self.with_random))
        ws = auto.LocalWorkspace(
            work_dir=str(proj),
            pulumi_command=auto.PulumiCommand(root=str(Path(self.toolchain.bin_dir).parent)),
            env_vars={k: v for k, v in self.env.items() if k.startswith("PULUMI_")} | {"PATH": self.env["PATH"]},
        )
        stack = auto.Stack.create("dev", ws)
        try:
            up1 = stack.up()
            created = (up1.summary.resource_changes or {}).get(auto.OpType.CREATE, 0)
            if created < 2:
                raise AssertionError(f"first up: {up1.summary.resource_changes}")
            if up1.outputs["greeting"].value != "hello flightdeck":
                raise AssertionError(f"outputs: {up1.outputs}")
            up2 = stack.up()
            changes = {k: v for k, v in (up2.summary.resource_changes or {}).items() if k != auto.OpType.SAME}
            if changes:
                raise AssertionError(f"second up changed things: {changes}")
            stack.destroy()
        finally:
            ws.remove_stack("dev", force=True)
        return f"LocalWorkspace up/up(no changes)/destroy with CLI v{ws.pulumi_version}"

    def check_kubernetes_plugin(self) -> str:
        plugin = self.plugins.get("kubernetes")
        proj = self.project(
            "fdk8s",
            K8S_PROGRAM.format(kubeconfig=self.work / "no-such-kubeconfig"),
            provider_module=False,
        )
        self.expect_ok(["stack", "init", "dev"], proj)
        proc = self.pulumi(["preview"], proj)
        output = proc.stdout + proc.stderr
        self.pulumi(["stack", "rm", "--yes", "--force"], proj)
        if proc.returncode == 0:
            raise AssertionError("preview against a missing kube context succeeded?!")
        if any(m.lower() in output.lower() for m in MISSING_PLUGIN_MARKERS):
            if plugin is not None and not plugin.available:
                return "SKIP: kubernetes plugin unavailable: " + (plugin.reason or "")
            raise AssertionError(f"engine could not load the kubernetes plugin:\n{output}")
        if "context" not in output.lower() and "kube" not in output.lower():
            raise AssertionError(f"preview failed, but not with a kube error:\n{output}")
        return "preview failed with a kube error, so the plugin started"


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    ap.add_argument("--allow-missing-plugins", action="store_true")
    ap.add_argument("--cli-version", default=pulumi_toolchain.DEFAULT_CLI_VERSION)
    args = ap.parse_args(argv)

    toolchain = pulumi_toolchain.ensure(args.cli_version)
    work = Path(tempfile.mkdtemp(prefix="fdverify-"))
    verifier = Verifier(toolchain, work)
    # Automation API reads these from os.environ too (e.g. the version check opt-out).
    os.environ.update({k: v for k, v in verifier.env.items() if k.startswith("PULUMI_")})
    try:
        verifier.run("pulumi version", verifier.check_version)
        verifier.run("CLI up/up/destroy", verifier.check_cli_flow)
        verifier.run("Automation API", verifier.check_automation)
        verifier.run("kubernetes plugin starts", verifier.check_kubernetes_plugin)
    finally:
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    failed = [c for c in verifier.checks if c.status == "FAIL"]
    skipped = [c for c in verifier.checks if c.status == "SKIP"]
    missing = [p for p in toolchain.plugins if not p.available]
    for plugin in missing:
        print(f"[MISSING] resource plugin {plugin.name} {plugin.version}: {plugin.reason}")
    if failed or ((skipped or missing) and not args.allow_missing_plugins):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
