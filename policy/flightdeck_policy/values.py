"""Resource properties as plain data, with values unknown during a preview made explicit.

pulumi-policy hands a policy its properties behind a proxy that raises ``UnknownValueError`` on
reading a value that is not known yet (``pulumi_policy/proxy.py``), and an exception in a policy
turns the whole policy into an advisory "can't run during preview" note for that resource or,
for a stack policy, for the whole stack (``_PolicyAnalyzerServicer.Analyze``/``AnalyzeStack``).
The rules read plain data instead (``dict``/``list``/scalars) in which such a value is the
``UNKNOWN`` marker, so a rule still judges everything else and says what it could not read.
"""

from __future__ import annotations

from typing import Final


class Unknown:
    """A value the engine does not know yet (it depends on another resource's output)."""

    _instance: Unknown | None = None

    def __new__(cls) -> Unknown:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "<unknown until up>"


UNKNOWN: Final = Unknown()


def lookup(value: object, *path: str | int) -> object:
    """``value[path[0]][path[1]]...``: ``None`` where a step is missing, ``UNKNOWN`` where one is unknown."""
    current = value
    for step in path:
        if current is UNKNOWN:
            return UNKNOWN
        if isinstance(step, str) and isinstance(current, dict):
            current = current.get(step)
        elif isinstance(step, int) and isinstance(current, list) and 0 <= step < len(current):
            current = current[step]
        else:
            return None
    return current


def mapping(value: object) -> dict[str, object]:
    """``value`` if it is an object, else an empty one."""
    return value if isinstance(value, dict) else {}


def items(value: object) -> list[object]:
    """``value`` if it is a list, else an empty one."""
    return value if isinstance(value, list) else []


def text(value: object) -> str | None:
    return value if isinstance(value, str) else None


def integer(value: object) -> int | None:
    """A whole number. Properties reach a policy through a protobuf Struct, whose numbers are
    all doubles (``json_format.MessageToDict`` gives ``2.0`` for ``replicas: 2``)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


def dotted(path: tuple[str | int, ...]) -> str:
    """``("spec", "containers", 0, "image")`` -> ``spec.containers[0].image``."""
    out = ""
    for step in path:
        out += f"[{step}]" if isinstance(step, int) else (f".{step}" if out else step)
    return out
