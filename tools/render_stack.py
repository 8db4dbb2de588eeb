"""Dry-renders a stack: runs the real flightdeck program under Pulumi mocks and records it.

No cluster, no database, no engine: the program is built exactly as ``pulumi up`` would build
it, and every registration request is recorded (inputs, options, which values are secret).
The unit tier asserts on the recording; ``python -m tools.render_stack STACK`` writes the
Kubernetes objects and the SQL plan of a stack file to a folder for review, secrets redacted.

The previous deployment (what ``pulumi:pulumi:readStackOutputs`` returns on the engine) is fed
from ``previous_outputs``, e.g. ``--previous prev.json`` with ``pulumi stack output --json``, so
the change guard refuses exactly what ``pulumi up`` would, before any resource is registered.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import runpy
import shutil
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import yaml
from google.protobuf import struct_pb2
from pulumi.runtime import rpc
from pulumi.runtime.mocks import MockMonitor

from flightdeck.stack_file import StackFileError, flightdeck_keys, flightdeck_sections

REPO = Path(__file__).resolve().parents[1]
SECRET_KEYS = ("kubeconfig", "mysqlAdminPassword")
READ_STACK_OUTPUTS = "pulumi:pulumi:readStackOutputs"  # components.previous_deployment
REDACTED = "[secret]"
SECRET_SIG = rpc._special_secret_sig


@dataclass
class Registration:
    typ: str
    name: str
    inputs: dict[str, Any]
    request: Any
    urn: str = ""  # what the (mock) engine answered

    @property
    def protect(self) -> bool:
        return bool(self.request.protect)

    @property
    def retain_on_delete(self) -> bool:
        return bool(self.request.retainOnDelete)

    @property
    def parent(self) -> str:
        return str(self.request.parent)

    @property
    def deleted_with(self) -> str:
        return str(self.request.deletedWith)

    @property
    def additional_secret_outputs(self) -> list[str]:
        return list(self.request.additionalSecretOutputs)

    def is_secret(self, key: str) -> bool:
        value = self.request.object.fields.get(key)
        return isinstance(value, struct_pb2.Value) and _is_secret_value(value)

    @property
    def spec(self) -> dict[str, Any]:
        return dict(self.inputs.get("spec") or {})

    @property
    def metadata(self) -> dict[str, Any]:
        return dict(self.inputs.get("metadata") or {})


def _is_secret_value(value: struct_pb2.Value) -> bool:
    if value.WhichOneof("kind") != "struct_value":
        return False
    sig = value.struct_value.fields.get(rpc._special_sig_key)
    return sig is not None and sig.string_value == SECRET_SIG


def _unwrap_secrets(value: Any) -> Any:
    """Plain values for assertions; ``Registration.is_secret`` tells what was secret."""
    if isinstance(value, dict):
        if value.get(rpc._special_sig_key) == SECRET_SIG:
            return _unwrap_secrets(value["value"])
        return {key: _unwrap_secrets(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_unwrap_secrets(item) for item in value]
    return value


LAST_MONITOR: list[RecordingMonitor] = []


def last_registrations() -> list[Registration]:
    """What the latest ``deploy`` registered, even when it raised."""
    return LAST_MONITOR[0].registrations


def last_invokes() -> list[tuple[str, int]]:
    """The invokes of the latest ``deploy``: (token, resources registered before it)."""
    return LAST_MONITOR[0].invokes


class FlightdeckMocks(pulumi.runtime.Mocks):
    def __init__(self, previous_outputs: Mapping[str, Any] | None = None) -> None:
        self.previous_outputs = dict(previous_outputs or {})
        self.stack_reads: list[str] = []  # the stack names the program asked the outputs of

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        outputs = dict(args.inputs)
        if args.typ == "random:index/randomPassword:RandomPassword":
            outputs["result"] = f"mock-password-{args.name}"
        return f"{args.name}-id", outputs

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict[str, Any], list[tuple[str, str]]]:
        if args.token == READ_STACK_OUTPUTS:
            self.stack_reads.append(str(args.args["name"]))
            # The engine's builtin provider answers {name, outputs, secretOutputNames}.
            return {"name": args.args["name"], "outputs": self.previous_outputs, "secretOutputNames": []}, []
        return {}, []


class RecordingMonitor(MockMonitor):
    def __init__(self, mocks: FlightdeckMocks) -> None:
        super().__init__(mocks)
        self.flightdeck_mocks = mocks
        self.registrations: list[Registration] = []
        # (token, resources registered before it): proves an invoke ran before anything else.
        self.invokes: list[tuple[str, int]] = []

    def RegisterResource(self, request: Any) -> Any:  # noqa: N802 - gRPC method name
        inputs = _unwrap_secrets(rpc.deserialize_properties(request.object))
        registration = Registration(request.type, request.name, inputs, request)
        self.registrations.append(registration)
        response = super().RegisterResource(request)  # type: ignore[no-untyped-call]
        registration.urn = str(response.urn)
        return response

    def Invoke(self, request: Any) -> Any:  # noqa: N802 - gRPC method name
        self.invokes.append((request.tok, len(self.registrations)))
        return super().Invoke(request)  # type: ignore[no-untyped-call]


@dataclass
class Deployment:
    registrations: list[Registration]
    outputs: dict[str, Any] = field(default_factory=dict)

    def of_type(self, typ: str) -> list[Registration]:
        return [r for r in self.registrations if r.typ == typ]

    def kind(self, kind: str) -> list[Registration]:
        return [r for r in self.registrations if r.typ.endswith(f":{kind}")]

    def named(self, name: str) -> Registration:
        matches = [r for r in self.registrations if r.name == name]
        assert len(matches) == 1, f"{len(matches)} resources named {name!r}: {[r.name for r in self.registrations]}"
        return matches[0]

    def names(self) -> set[str]:
        return {r.name for r in self.registrations}


def _stack_file(stack: str, repo: Path) -> dict[str, Any]:
    document = yaml.safe_load((repo / f"Pulumi.{stack}.yaml").read_text()) or {}
    return dict(document.get("config") or {})


def stack_file_config(stack: str, repo: Path = REPO) -> dict[str, Any]:
    """The structured flightdeck sections of ``Pulumi.<stack>.yaml`` (``flightdeck:sites`` or bare ``sites``)."""
    return flightdeck_sections(_stack_file(stack, repo))


def stack_file_secret_keys(stack: str, repo: Path = REPO) -> list[str]:
    """Secret keys the stack file sets (their values stay encrypted; the render redacts them)."""
    keys = flightdeck_keys(_stack_file(stack, repo))
    return [key for key in SECRET_KEYS if key in keys]


def deploy(
    config: Mapping[str, Any],
    *,
    stack: str = "test",
    secrets: Mapping[str, str] | None = None,
    previous_outputs: Mapping[str, Any] | None = None,
    entry_point: bool = False,
) -> Deployment:
    """Run the program (``__main__``'s steps) on ``config`` under mocks; ``previous_outputs``: the last deployment.

    ``entry_point=True`` runs ``__main__.py`` itself (its exports are not collected: ``outputs`` stays empty).
    """
    from components import previous_deployment, stack_config
    from components.platform import Platform

    secrets = dict(secrets or {})
    values = {f"flightdeck:{key}": json.dumps(value) for key, value in config.items()}
    values.update({f"flightdeck:{key}": value for key, value in secrets.items()})
    pulumi.runtime.set_all_config(values, secret_keys=[f"flightdeck:{key}" for key in secrets])
    mocks = FlightdeckMocks(previous_outputs)
    monitor = RecordingMonitor(mocks)
    LAST_MONITOR[:] = [monitor]
    pulumi.runtime.set_mocks(mocks, project="flightdeck", stack=stack, preview=False, monitor=monitor)
    outputs: dict[str, Any] = {}

    @pulumi.runtime.test  # type: ignore[untyped-decorator]
    def program() -> pulumi.Output[Any]:
        if entry_point:
            runpy.run_path(str(REPO / "__main__.py"), run_name="__main__")
            return pulumi.Output.from_input(None)
        settings = stack_config.load()
        previous_deployment.refuse_destructive_changes_since_last_deployment(settings.config)
        platform = Platform("flightdeck", settings)
        return pulumi.Output.from_input(platform.summary).apply(outputs.update)

    program()
    return Deployment(monitor.registrations, outputs)


# --- command line ---------------------------------------------------------------------------


def _redact(registration: Registration) -> dict[str, Any]:
    redacted = {}
    for key, value in registration.inputs.items():
        if key == "__provider":
            continue
        redacted[key] = REDACTED if registration.is_secret(key) else value
    return redacted


def _kubernetes_object(registration: Registration) -> dict[str, Any]:
    inputs = _redact(registration)
    group_version, kind = registration.typ.removeprefix("kubernetes:").rsplit(":", 1)
    api_version = group_version.removeprefix("core/")
    return {"apiVersion": inputs.pop("apiVersion", api_version), "kind": inputs.pop("kind", kind), **inputs}


def write_render(deployment: Deployment, out: Path) -> list[Path]:
    """Kubernetes objects as YAML per namespace, and the SQL plan; secrets redacted."""
    written = []
    sql: dict[str, list[dict[str, Any]]] = {"databases": [], "users": [], "grants": []}
    for registration in deployment.registrations:
        if registration.typ.startswith("pulumi-python:dynamic/mysql:"):
            kind = registration.typ.rsplit(":", 1)[1].lower() + "s"
            entry = {k: v for k, v in _redact(registration).items() if k != "connection"}
            sql[kind].append({"resource": registration.name, **entry})
        elif registration.typ.startswith("kubernetes:") and registration.request.custom:
            obj = _kubernetes_object(registration)
            namespace = (obj.get("metadata") or {}).get("namespace") or "_cluster"
            path = out / namespace / f"{obj['kind']}-{(obj.get('metadata') or {}).get('name', registration.name)}.yaml"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(yaml.safe_dump(obj, sort_keys=False))
            written.append(path)
    path = out / "sql-plan.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(sql, sort_keys=False))
    written.append(path)
    return written


def summary_table(outputs: Mapping[str, Any]) -> str:
    rows = [("site", "url", "namespace", "database", "files backup", "db backup")]
    for name, site in sorted((outputs.get("sites") or {}).items()):
        backups = site.get("backups") or {}
        rows.append(
            (
                name,
                site["url"],
                site["namespace"],
                site["database"],
                backups.get("files") or "-",
                backups.get("database") or "-",
            )
        )
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)) for row in rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Dry-render a flightdeck stack: objects and SQL plan, no cluster.")
    parser.add_argument(
        "stack", nargs="?", default="local", help="stack name: reads Pulumi.<stack>.yaml (default: local)"
    )
    parser.add_argument("--out", type=Path, help="folder for the rendered objects (default: build/<stack>)")
    parser.add_argument("--json", action="store_true", help="print the stack outputs as JSON")
    parser.add_argument("--stack-dir", type=Path, default=REPO, help="folder of the stack files (default: the repo)")
    parser.add_argument(
        "--previous",
        type=Path,
        help="the stack's outputs from its last deployment (`pulumi stack output --json`): "
        "refuse what `pulumi up` would refuse",
    )
    args = parser.parse_args(argv)
    if not (args.stack_dir / f"Pulumi.{args.stack}.yaml").exists():
        print(f"render: no stack file Pulumi.{args.stack}.yaml", file=sys.stderr)
        return 2
    asyncio.set_event_loop(asyncio.new_event_loop())
    try:
        secrets = {key: REDACTED for key in stack_file_secret_keys(args.stack, args.stack_dir)}
        config = stack_file_config(args.stack, args.stack_dir)
        previous = json.loads(args.previous.read_text()) if args.previous else None
    except (StackFileError, OSError, ValueError) as error:
        print(f"render: {error}", file=sys.stderr)
        return 2
    try:
        deployment = deploy(config, stack=args.stack, secrets=secrets, previous_outputs=previous)
    except Exception as error:  # the program's own RunError: a config problem, already field-named
        print(str(error).strip(), file=sys.stderr)
        return 2
    out = args.out or REPO / "build" / args.stack
    if args.out is None and out.exists():
        shutil.rmtree(out)  # our own build folder: a removed site must not linger in the review
    written = write_render(deployment, out)
    if args.json:
        print(json.dumps(deployment.outputs, indent=2, default=str))
    else:
        print(f"stack {args.stack}: {len(written) - 1} Kubernetes objects and the SQL plan written to {out}")
        print(summary_table(deployment.outputs))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
