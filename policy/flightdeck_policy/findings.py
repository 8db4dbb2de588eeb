"""What one rule found about one resource: violations, and what it could not read yet."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Findings:
    violations: list[str] = field(default_factory=list)
    # Property paths whose values are unknown during a preview; the rule runs again on `up`.
    unknown: list[str] = field(default_factory=list)

    def extend(self, other: Findings) -> None:
        self.violations += other.violations
        self.unknown += other.unknown
