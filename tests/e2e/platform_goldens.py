"""PR-summary goldens of the whole program, recorded from the real engine and kubernetes plugin.

Each scenario edits the deployed local stack's file, runs ``pulumi preview --json`` (through the
flightdeck API) and puts the file back. The digest (only source positions, stack traces and
durations dropped, which hold local paths and timings, and each step's states trimmed to what the
summary reads) is ``tests/unit/golden/previews/<name>.json``
and the Markdown :func:`flightdeck.pr_summary.render` makes of it is ``<name>.md``; the unit tier
checks the renderer against both. The e2e tier renders the live previews again and compares them
with the stored Markdown, so a change in the engine, the plugin or the program shows up; with
``FLIGHTDECK_RECORD_GOLDENS=1`` it rewrites the files instead (review the diff).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from flightdeck import pr_summary, stack_file
from flightdeck.api import FlightdeckError
from tests.e2e.platform_rig import PlatformStack

GOLDEN_DIR = Path(__file__).resolve().parents[1] / "unit" / "golden" / "previews"
DROPPED_KEYS = ("sourcePosition", "stackTrace", "duration")
GOLDEN_STACK = "golden"  # the stack name the Markdown shows (what the unit tier renders with)


def _remove_wiki(doc: stack_file.StackFile) -> None:
    doc.remove_site("wiki")


def _rotate_blog(doc: stack_file.StackFile) -> None:
    doc.update_site("blog", lambda site: stack_file.set_key(site, "user", {"passwordVersion": 9}))


def _prefix_namespaces(doc: stack_file.StackFile) -> None:
    stack_file.set_key(doc.config["flightdeck:kubernetes"], "namespacePrefix", "x-")


def _scale_shop(doc: stack_file.StackFile) -> None:
    def change(site: Any) -> None:
        stack_file.set_key(site, "replicas", 2)
        site["domains"].append("www.shop.flightdeck.test")

    doc.update_site("shop", change)


# name -> (edit, what the preview shows)
SCENARIOS: dict[str, tuple[Callable[[stack_file.StackFile], None], str]] = {
    "k8s-site-removed": (_remove_wiki, "a Drupal site removed: its data kept, its account dropped"),
    "k8s-password-rotated": (_rotate_blog, "a password rotation: one replacement, in-place updates, pods roll"),
    "k8s-scaled-and-domain": (_scale_shop, "a site scaled to 2 (a PodDisruptionBudget appears) with a new domain"),
    "k8s-refused-prefix": (_prefix_namespaces, "a namespace prefix change, refused by the program before any step"),
}


# What of a step's old and new state the summary reads; the rest (every object's inputs and
# outputs, provider ids) would make each golden hundreds of kilobytes of noise.
STATE_KEYS = ("type", "urn", "protect", "retainOnDelete", "custom")


def sanitize(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: sanitize(v) for k, v in node.items() if k not in DROPPED_KEYS}
    if isinstance(node, list):
        return [sanitize(item) for item in node]
    return node


def compact(digest: dict[str, Any]) -> dict[str, Any]:
    for step in digest.get("steps") or []:
        for key in ("oldState", "newState"):
            if isinstance(step.get(key), dict):
                step[key] = {k: v for k, v in step[key].items() if k in STATE_KEYS}
        if step.get("replaceReasons") or step.get("diffReasons"):
            step.pop("detailedDiff", None)  # the summary falls back to it only without reasons
    return digest


def preview_digest(stack: PlatformStack, edit: Callable[[stack_file.StackFile], None]) -> dict[str, Any]:
    original = stack.stack_file.read_text()
    try:
        stack_file.edit(stack.stack_file, edit)
        try:
            digest = stack.flightdeck().preview(stack.name).preview_digest()
        except FlightdeckError as error:  # a refused change fails the preview; its digest says why
            result = getattr(error, "result", None)
            if result is None:
                raise
            digest = result.preview_digest()
    finally:
        stack.stack_file.write_text(original)
    return compact(dict(sanitize(digest)))


def record_or_compare(stack: PlatformStack, secrets: set[str], record: bool) -> dict[str, str]:
    """``{name: problem}`` for every scenario whose live Markdown differs from the stored one."""
    problems: dict[str, str] = {}
    for name, (edit, _what) in SCENARIOS.items():
        digest = preview_digest(stack, edit)
        text = json.dumps(digest, indent=2, sort_keys=True) + "\n"
        leaked = [s for s in secrets if s and s in text]
        if leaked:
            problems[name] = f"{len(leaked)} secret value(s) in the preview digest"
            continue
        markdown = pr_summary.render(digest, stack=GOLDEN_STACK).markdown
        if record:
            (GOLDEN_DIR / f"{name}.json").write_text(text)
            (GOLDEN_DIR / f"{name}.md").write_text(markdown)
        elif (GOLDEN_DIR / f"{name}.md").read_text() != markdown:
            problems[name] = f"the Markdown differs from {GOLDEN_DIR / name}.md:\n{markdown}"
    return problems
