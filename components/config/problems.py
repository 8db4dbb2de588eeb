"""Config problems: each names the field (``sites[2].domains[0]``) and the reason. Pure."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    path: str
    reason: str

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}" if self.path else self.reason


class ConfigError(ValueError):
    """Every problem found in one stack config, each naming its field."""

    def __init__(self, problems: Iterable[Problem], stack: str = "") -> None:
        self.problems = tuple(problems)
        self.stack = stack
        prefix = f"{stack}: " if stack else ""
        super().__init__("invalid stack config:\n" + "\n".join(f"  {prefix}{p}" for p in self.problems))


def format_path(loc: Iterable[str | int]) -> str:
    """``('sites', 2, 'domains', 0)`` -> ``sites[2].domains[0]``."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out
