"""Runs the real flightdeck program under Pulumi mocks and records what it registers.

The mock monitor sees every registration request, so tests can assert resource options
(protect, retainOnDelete, deletedWith, parent) and which properties were sent as secrets,
not only the inputs.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import yaml
from google.protobuf import struct_pb2
from pulumi.runtime import rpc
from pulumi.runtime.mocks import MockMonitor

REPO = Path(__file__).resolve().parents[2]
SECRET_SIG = rpc._special_secret_sig


@dataclass
class Registration:
    typ: str
    name: str
    inputs: dict[str, Any]
    request: Any

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


class FlightdeckMocks(pulumi.runtime.Mocks):
    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        outputs = dict(args.inputs)
        if args.typ == "random:index/randomPassword:RandomPassword":
            outputs["result"] = f"mock-password-{args.name}"
        return f"{args.name}-id", outputs

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict[str, Any], list[tuple[str, str]] | None]:
        return {}, None


class RecordingMonitor(MockMonitor):
    def __init__(self, mocks: pulumi.runtime.Mocks) -> None:
        super().__init__(mocks)
        self.registrations: list[Registration] = []

    def RegisterResource(self, request: Any) -> Any:  # noqa: N802 - gRPC method name
        inputs = _unwrap_secrets(rpc.deserialize_properties(request.object))
        self.registrations.append(Registration(request.type, request.name, inputs, request))
        return super().RegisterResource(request)


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


def stack_file_config(stack: str) -> dict[str, Any]:
    """The ``flightdeck:`` sections of ``Pulumi.<stack>.yaml`` as plain data."""
    document = yaml.safe_load((REPO / f"Pulumi.{stack}.yaml").read_text())
    return {key.split(":", 1)[1]: value for key, value in document["config"].items() if key.startswith("flightdeck:")}


def minimal_config(**overrides: Any) -> dict[str, Any]:
    config: dict[str, Any] = {
        "mysql": {"mode": "operator"},
        "certificates": {"acmeEmail": "ops@example.org"},
        "sites": [
            {"name": "blog", "cms": "wordpress", "domains": ["blog.example.org", "www.blog.example.org"]},
            {"name": "wiki", "cms": "drupal", "domains": ["wiki.example.org"]},
        ],
    }
    config.update(overrides)
    return config


def deploy(config: Mapping[str, Any], *, stack: str = "test", secrets: Mapping[str, str] | None = None) -> Deployment:
    """Run the program (``__main__``'s steps) on ``config`` under mocks."""
    from components import stack_config
    from components.platform import Platform

    secrets = dict(secrets or {})
    values = {f"flightdeck:{key}": json.dumps(value) for key, value in config.items()}
    values.update({f"flightdeck:{key}": value for key, value in secrets.items()})
    pulumi.runtime.set_all_config(values, secret_keys=[f"flightdeck:{key}" for key in secrets])
    mocks = FlightdeckMocks()
    monitor = RecordingMonitor(mocks)
    LAST_MONITOR[:] = [monitor]
    pulumi.runtime.set_mocks(mocks, project="flightdeck", stack=stack, preview=False, monitor=monitor)
    outputs: dict[str, Any] = {}

    @pulumi.runtime.test
    def program() -> pulumi.Output[Any]:
        platform = Platform("flightdeck", stack_config.load())
        return pulumi.Output.from_input(platform.summary).apply(outputs.update)

    program()
    return Deployment(monitor.registrations, outputs)
