"""What this stack deployed last time: its own outputs, read before anything is registered.

The thin I/O edge of the change guard (``components.change_guard`` is the pure part).
``pulumi:pulumi:readStackOutputs`` is the engine's builtin invoke behind ``StackReference``
(pulumi ``pkg/resource/deploy/builtins.go``, ``readStackReference``): it reads the stack's last
checkpoint through the backend and registers no resource. ``pulumi.runtime.invoke`` is
synchronous (``_sync_await``), so the answer is in hand before the program registers its first
resource: a refusal changes nothing, in ``pulumi preview``, ``pulumi up`` and the Automation
API's ``up`` alike (which runs the program once, with ``--skip-preview``). While an update runs,
the stack resource keeps the previous outputs until the program has finished (the engine's
``SameStep`` retains outputs), so the read sees the last completed deployment; a stack that was
never deployed has none (the diy backend returns an empty map for an empty checkpoint).
"""

from __future__ import annotations

from typing import Any

import pulumi

from components.change_guard import DestructiveChangeError, refuse_destructive_changes
from components.config import StackConfig

READ_STACK_OUTPUTS = "pulumi:pulumi:readStackOutputs"


def _stack_names() -> list[str]:
    # Fully qualified first: Pulumi Cloud requires `<org>/<project>/<stack>` and project-scoped
    # diy backends accept it (org "organization"); the legacy diy layout takes the bare name.
    organization = pulumi.get_organization() or "organization"
    return [f"{organization}/{pulumi.get_project()}/{pulumi.get_stack()}", pulumi.get_stack()]


def read_previous_outputs() -> dict[str, Any]:
    """The outputs of this stack's last deployment; empty for a first deployment."""
    failures = []
    for name in _stack_names():
        try:
            result = pulumi.runtime.invoke(READ_STACK_OUTPUTS, {"name": name})
        except Exception as error:
            failures.append(f"{name}: {error}")
            continue
        value = result.value if isinstance(result.value, dict) else {}
        outputs = value.get("outputs")
        return dict(outputs) if isinstance(outputs, dict) else {}
    # Without the previous deployment a destructive change cannot be ruled out: refuse to start.
    raise pulumi.RunError(
        "cannot read this stack's previous outputs, so changes that would lose data cannot be ruled out "
        "(nothing was changed): " + "; ".join(failures)
    )


def refuse_destructive_changes_since_last_deployment(config: StackConfig, stack: str | None = None) -> None:
    """Raise ``pulumi.RunError`` (no traceback) listing every refused change; call before any resource."""
    try:
        refuse_destructive_changes(read_previous_outputs(), config, stack or pulumi.get_stack())
    except DestructiveChangeError as error:
        raise pulumi.RunError(str(error)) from None
