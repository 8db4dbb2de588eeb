"""``flightdeck``: the operator CLI (also ``python -m flightdeck``).

Commands::

    flightdeck preview <stack> [--markdown FILE] [--fail-on-danger] [--drift]
    flightdeck up|refresh <stack> [--yes] [--no-recover]
    flightdeck destroy <stack> --yes
    flightdeck recover <stack>
    flightdeck outputs <stack> [--show-secrets]
    flightdeck sites list -s <stack>
    flightdeck sites add <name> -s <stack> --cms wordpress --domain example.org [...] [--dry-run] [--no-preview]
    flightdeck sites remove <name> -s <stack> [--dry-run] [--no-preview]
    flightdeck rotate-password <site> -s <stack> [--dry-run] [--no-preview]
    flightdeck restore <site> -s <stack> [--from BACKUP|TIME] [--into NAMESPACE] [--force] [--only PART] [--dry-run]
    flightdeck pr-summary <preview.json> [--stack S] [--output FILE] [--fail-on-danger]

Every command takes ``--json`` (one JSON object on stdout, progress on stderr) and ``-q``.

Exit codes: 0 success; 1 the operation failed (engine error, pulumi missing); 2 bad arguments,
invalid stack config, unknown stack or site, or an unconfirmed change (nothing was changed);
3 ``--fail-on-danger`` and the preview replaces or deletes a stateful or protected resource;
4 the stack is locked by another operation; 130 interrupted. ``restore`` exits 2 when it refuses
(a live site without ``--force``, no such backup), before changing anything, and 1 when a
restore it started failed or did not finish in time.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn, TextIO

from ruamel.yaml import YAML

from components.config import ConfigError
from flightdeck import api, pr_summary, restore, restore_plan, stack_file

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_DANGER = 3
EXIT_LOCKED = 4
EXIT_INTERRUPTED = 130

OP_SYMBOLS = {
    "create": "+", "update": "~", "delete": "-", "replace": "+-", "create-replacement": "++",
    "delete-replaced": "--", "read": ">", "refresh": "~", "discard": "-", "same": " ",
}  # fmt: skip


class UsageError(Exception):
    """Bad arguments: exit 2, nothing changed."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{self.prog}: {message}")


# -- argument parsing -----------------------------------------------------------------------------


def _default_project_dir() -> Path:
    env = os.environ.get("FLIGHTDECK_PROJECT_DIR")
    if env:
        return Path(env)
    if (Path.cwd() / "Pulumi.yaml").exists():
        return Path.cwd()
    return api.REPO_ROOT


def _positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if value < 0:
        raise argparse.ArgumentTypeError("must be 0 or more seconds")
    return value


def _key_value(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"{text!r} is not KEY=VALUE")
    return key, value


POLICY_PACK_HELP = "run this policy pack (a folder with PulumiPolicy.yaml, e.g. policy); repeatable"


def _policy_packs(paths: list[str] | None) -> list[str] | None:
    """Absolute pack folders (the engine runs in the project folder, not here); bad ones exit 2."""
    if not paths:
        return None
    packs = []
    for path in paths:
        folder = Path(path).resolve()
        if not (folder / "PulumiPolicy.yaml").is_file():
            raise UsageError(f"--policy-pack {path}: no PulumiPolicy.yaml in {folder}")
        packs.append(str(folder))
    return packs


def build_parser() -> argparse.ArgumentParser:
    common = _Parser(add_help=False)
    common.add_argument("--json", action="store_true", help="print one JSON object on stdout (progress: stderr)")
    common.add_argument("-q", "--quiet", action="store_true", help="no progress display")
    common.add_argument(
        "-C", "--project-dir", type=Path, default=None,
        help="the Pulumi project (default: $FLIGHTDECK_PROJECT_DIR, the current directory if it has a "
        "Pulumi.yaml, else the flightdeck repository)",
    )  # fmt: skip

    engine = _Parser(add_help=False)
    engine.add_argument("--backend", metavar="URL", help="state backend (default: $PULUMI_BACKEND_URL or login)")
    engine.add_argument("--passphrase-file", type=Path, help="secrets passphrase file (default: environment)")
    engine.add_argument("--secrets-provider", help="secrets provider for a stack created with --create")
    engine.add_argument("--pulumi-root", type=Path, help="directory holding bin/pulumi (default: PATH)")
    engine.add_argument(
        "--lock-timeout", type=_positive_seconds, default=60.0, metavar="SECONDS",
        help="how long to wait for another operation on the stack (default 60; then exit 4)",
    )  # fmt: skip
    engine.add_argument("--create", action="store_true", help="create the stack when it does not exist")

    parser = _Parser(
        prog="flightdeck",
        description="Operate flightdeck stacks: preview/up/refresh/destroy, manage sites, PR summaries.",
        epilog=(
            "exit codes: 0 ok, 1 operation failed, 2 bad arguments or invalid config (nothing changed), "
            "3 dangerous change (--fail-on-danger), 4 stack locked, 130 interrupted"
        ),
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=_Parser)

    preview = commands.add_parser("preview", parents=[common, engine], help="show what `up` would change")
    preview.add_argument("stack")
    preview.add_argument("--refresh", action="store_true", help="refresh the state first")
    preview.add_argument("--target", action="append", metavar="URN", help="only these resources (repeatable)")
    preview.add_argument("--markdown", metavar="FILE", help="write the PR summary Markdown to FILE (`-`: stdout)")
    preview.add_argument("--fail-on-danger", action="store_true", help="exit 3 on a dangerous replacement/deletion")
    preview.add_argument("--policy-pack", action="append", metavar="DIR", help=POLICY_PACK_HELP)
    preview.add_argument(
        "--drift", action="store_true",
        help="also list what changed outside Pulumi since the last deployment (a refresh preview; changes nothing)",
    )  # fmt: skip

    no_recover = _Parser(add_help=False)
    no_recover.add_argument(
        "--no-recover", dest="recover", action="store_false",
        help="do not clear a stale engine lock or the pending operations an interrupted update left first",
    )  # fmt: skip

    for name, text in (("up", "deploy the stack"), ("refresh", "read resources back into the state")):
        command = commands.add_parser(name, parents=[common, engine, no_recover], help=text)
        command.add_argument("stack")
        command.add_argument("-y", "--yes", action="store_true", help="do not ask for confirmation")
        if name == "up":
            command.add_argument("--refresh", action="store_true", help="refresh the state first")
            command.add_argument("--target", action="append", metavar="URN", help="only these resources")
            command.add_argument("--message", help="message recorded with the update")
            command.add_argument("--policy-pack", action="append", metavar="DIR", help=POLICY_PACK_HELP)
            command.add_argument(
                "--stop-on-error", dest="continue_on_error", action="store_false",
                help="stop at the first failed resource (default: the others go on; what depends on it is skipped)",
            )  # fmt: skip

    destroy = commands.add_parser(
        "destroy", parents=[common, engine, no_recover], help="delete every resource of the stack"
    )
    destroy.add_argument("stack")
    destroy.add_argument("-y", "--yes", action="store_true", help="required: confirm the destruction")

    recover = commands.add_parser(
        "recover", parents=[common, engine],
        help="clear what an interrupted update left: a stale engine lock, pending operations (deploys nothing)",
    )  # fmt: skip
    recover.add_argument("stack")

    outputs = commands.add_parser("outputs", parents=[common, engine], help="show the stack outputs")
    outputs.add_argument("stack")
    outputs.add_argument("--show-secrets", action="store_true", help="print secret outputs in clear text")

    sites = commands.add_parser("sites", help="list, add or remove sites in Pulumi.<stack>.yaml")
    site_commands = sites.add_subparsers(
        dest="sites_command", required=True, metavar="SUBCOMMAND", parser_class=_Parser
    )
    edit = _Parser(add_help=False)
    edit.add_argument("-s", "--stack", required=True, help="the stack whose Pulumi.<stack>.yaml is edited")
    edit.add_argument("--dry-run", action="store_true", help="validate and show the file diff; write nothing")
    edit.add_argument("--no-preview", action="store_true", help="do not run a preview after the edit")

    listing = site_commands.add_parser("list", parents=[common], help="the stack's sites")
    listing.add_argument("-s", "--stack", required=True)

    add = site_commands.add_parser("add", parents=[common, engine, edit], help="add a site, then preview")
    add.add_argument("name", help="site name (lowercase letters, digits, '-')")
    add.add_argument("--cms", required=True, choices=("wordpress", "drupal"))
    add.add_argument("--domain", action="append", required=True, help="host name; repeat for more (first: primary)")
    add.add_argument("--replicas", type=int, help="web pods (default 2)")
    add.add_argument("--files-size", help="shared files volume, e.g. 20Gi (default 10Gi)")
    add.add_argument("--image", help="container image (default: the CMS's official image)")
    add.add_argument("--database-name", help="database name (default: the site name with '_' for '-')")
    add.add_argument("--user-name", help="database user (default: the database name)")
    add.add_argument(
        "--max-user-connections",
        type=int,
        help="database connection limit (default: replicas × mysql.connectionsPerReplica)",
    )
    add.add_argument("--backup-start", metavar="HH:MM", help="pin the nightly backup start")
    add.add_argument("--env", action="append", type=_key_value, default=[], metavar="KEY=VALUE", help="extra env var")
    add.add_argument(
        "--set", action="append", type=_key_value, default=[], metavar="PATH=VALUE",
        help="any other site key, e.g. resources.limits.memory=1Gi (VALUE is YAML)",
    )  # fmt: skip

    remove = site_commands.add_parser("remove", parents=[common, engine, edit], help="remove a site, then preview")
    remove.add_argument("name")

    rotate = commands.add_parser(
        "rotate-password", parents=[common, engine, edit], help="bump a site's user.passwordVersion, then preview"
    )
    rotate.add_argument("site")

    restoring = commands.add_parser(
        "restore", parents=[common, engine],
        help="restore one site's files and database from its backups (other sites untouched)",
        description="Restore one site from the backups flightdeck schedules for it: a Velero Restore of its "
        "namespace and a mariadb-operator Restore of its database, then wait and report. A live site is only "
        "overwritten with --force (its web pods and cron jobs are stopped while the database is replaced).",
    )  # fmt: skip
    restoring.add_argument("site")
    restoring.add_argument("-s", "--stack", required=True, help="the deployed stack the site belongs to")
    restoring.add_argument(
        "--from", dest="source", metavar="BACKUP|TIME",
        help="a Velero backup of the site (e.g. site-blog-20261130013000) or an RFC 3339 time with offset "
        "(2026-11-30T02:00:00Z: the newest backups taken at or before it); default: the newest",
    )  # fmt: skip
    restoring.add_argument("--into", metavar="NAMESPACE", help="restore files and objects into this new namespace")
    restoring.add_argument("--force", action="store_true", help="overwrite the live site in place")
    restoring.add_argument(
        "--only", choices=restore_plan.PARTS, action="append", help="restore only this part (repeatable)"
    )
    restoring.add_argument("--dry-run", action="store_true", help="show what would be created; change nothing")
    restoring.add_argument(
        "--timeout", type=_positive_seconds, default=3600.0, metavar="SECONDS",
        help="how long to wait for the restores (default 3600; then exit 1, they keep running)",
    )  # fmt: skip
    restoring.add_argument("--poll", type=_positive_seconds, default=5.0, metavar="SECONDS", help=argparse.SUPPRESS)

    summary = commands.add_parser("pr-summary", parents=[common], help="render `pulumi preview --json` as Markdown")
    summary.add_argument("digest", help="the preview JSON file (`-`: stdin)")
    summary.add_argument("--stack", default="", help="stack name for the heading and the comment marker")
    summary.add_argument("--title", default="Pulumi preview")
    summary.add_argument("--output", metavar="FILE", help="write the Markdown to FILE instead of stdout")
    summary.add_argument("--fail-on-danger", action="store_true", help="exit 3 when a dangerous change is present")
    return parser


# -- output ---------------------------------------------------------------------------------------


class Console:
    def __init__(self, as_json: bool, quiet: bool, out: TextIO, err: TextIO) -> None:
        self.as_json = as_json
        self.quiet = quiet
        self.out = out
        self.err = err
        self.last_progress = time.monotonic()
        self._lock = threading.Lock()

    def say(self, text: str = "") -> None:
        """Human output: stdout normally, stderr in --json mode (stdout is the JSON)."""
        stream = self.err if self.as_json else self.out
        if self.as_json and self.quiet:
            return
        print(text, file=stream, flush=True)

    def progress(self, text: str) -> None:
        if self.quiet:
            return
        with self._lock:
            print(text, file=self.err, flush=True)
            self.last_progress = time.monotonic()

    def emit(self, document: dict[str, Any]) -> None:
        if self.as_json:
            print(json.dumps(document, indent=2, sort_keys=False, default=str), file=self.out, flush=True)


class ProgressDisplay:
    """Line-based progress on stderr (fine for terminals and CI logs), with a heartbeat."""

    HEARTBEAT_SECONDS = 15.0

    def __init__(self, console: Console, operation: str, stack: str) -> None:
        self.console = console
        self.operation = operation
        self.stack = stack
        self.started = time.monotonic()
        self.running: dict[str, str] = {}
        self.done = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._heartbeat, daemon=True)

    def __enter__(self) -> ProgressDisplay:
        self.console.progress(f"{self.operation} {self.stack} ...")
        if not self.console.quiet:
            self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()

    def _heartbeat(self) -> None:
        while not self._stop.wait(1.0):
            if time.monotonic() - self.console.last_progress >= self.HEARTBEAT_SECONDS:
                names = ", ".join(sorted(self.running.values())[:3])
                busy = f"; in progress: {names}" if names else ""
                elapsed = time.monotonic() - self.started
                self.console.progress(f"  ... {elapsed:.0f}s, {self.done} steps done{busy}")

    def __call__(self, event: api.OperationEvent) -> None:
        step = event.step
        if event.kind == "waiting-for-lock":
            self.console.progress(f"  {event.message} (up to the lock timeout)")
        elif step is not None and step.op != "same":
            symbol = OP_SYMBOLS.get(step.op, "*")
            label = f"{step.type} {step.name}"
            if event.kind == "step":
                if step.status == "running":
                    self.running[step.urn] = step.name
                    self.console.progress(f"  {symbol} {step.op} {label} ...")
                else:
                    reasons = f" (because of {', '.join(step.replace_reasons)})" if step.replace_reasons else ""
                    self.console.progress(f"  {symbol} {step.op} {label}{reasons}")
            elif event.kind == "step-done" and step.status == "done":
                self.running.pop(step.urn, None)
                self.done += 1
                self.console.progress(f"  ✓ {step.op} {label}")
            elif event.kind == "step-failed":
                self.running.pop(step.urn, None)
                self.console.progress(f"  ✗ {step.op} {label} FAILED")
        elif event.kind == "recovery":
            self.console.progress(f"  recovery: {event.message}")
        elif event.kind in ("diagnostic", "policy") and event.severity in ("error", "warning"):
            lines = (event.message or "").splitlines()
            shown = "\n    ".join(lines[:12]) + ("\n    ..." if len(lines) > 12 else "")
            self.console.progress(f"  {event.severity}: {shown}")


def _summary_line(summary: dict[str, int]) -> str:
    parts = [f"{n} {op}" for op, n in summary.items() if op != "same" and n]
    same = summary.get("same", 0)
    text = ", ".join(parts) if parts else "no changes"
    return f"{text}{f' ({same} unchanged)' if same else ''}"


def _error_document(error: BaseException, code: int) -> dict[str, Any]:
    document: dict[str, Any] = {"type": type(error).__name__, "message": str(error)}
    problems = getattr(error, "problems", None)
    if problems:
        document["problems"] = [{"path": p.path, "reason": p.reason} for p in problems]
    if isinstance(error, api.StackLockedError):
        document["holder"] = error.holder
        if error.engine_locks:
            document["engineLocks"] = [
                {"host": lock.host, "user": lock.user, "pid": lock.pid, "since": lock.since, "location": lock.location}
                for lock in error.engine_locks
            ]
    result: dict[str, Any] = {"ok": False, "exitCode": code, "error": document}
    if isinstance(error, restore.RestoreFailedError):
        result["restore"] = error.report.to_dict()
    return result


# -- commands -------------------------------------------------------------------------------------


class App:
    def __init__(self, args: argparse.Namespace, console: Console) -> None:
        self.args = args
        self.console = console
        self.project_dir: Path = (args.project_dir or _default_project_dir()).resolve()

    def flightdeck(self) -> api.Flightdeck:
        args = self.args
        settings = api.Settings(
            work_dir=self.project_dir,
            backend_url=args.backend,
            secrets_provider=args.secrets_provider,
            passphrase_file=args.passphrase_file,
            pulumi_root=args.pulumi_root,
            lock_timeout=args.lock_timeout,
            create_missing=args.create,
        )
        return api.Flightdeck(settings)

    def stack_path(self, stack: str) -> Path:
        return stack_file.stack_file_path(self.project_dir, stack)

    def validate_stack_file(self, stack: str) -> None:
        """Refuse to run the engine on an invalid flightdeck stack file (exit 2, clearer than the program's)."""
        path = self.stack_path(stack)
        if not path.exists():
            return
        document = stack_file.StackFile.load(path, stack)
        if document.keys:  # flightdeck keys in either spelling (`flightdeck:sites` or bare `sites`)
            document.validate()

    def confirm(self, question: str) -> None:
        if self.args.yes:
            return
        if self.args.json or not sys.stdin.isatty():
            raise UsageError(f"{question}: pass --yes to confirm (not asking: no terminal or --json)")
        answer = input(f"{question}? [y/N] ").strip().lower()
        if answer not in ("y", "yes"):
            raise UsageError("not confirmed; nothing was changed")

    def run_operation(self, operation: str, stack: str, **kwargs: Any) -> api.OperationResult:
        fd = self.flightdeck()
        with ProgressDisplay(self.console, operation, stack) as display:
            method: Callable[..., api.OperationResult] = getattr(fd, operation)
            return method(stack, on_event=display, **kwargs)

    def preview_report(
        self, result: api.OperationResult, drift: api.OperationResult | None = None
    ) -> tuple[dict[str, Any], pr_summary.Summary]:
        summary = result.pr_summary(drift=drift)
        self.console.say(f"preview of {result.stack}: {_summary_line(result.summary)}")
        for risk in summary.risks:
            flags = " ".join(f for f, on in (("STATEFUL", risk.stateful), ("PROTECTED", risk.protected)) if on)
            reasons = f" because of {', '.join(risk.reasons)}" if risk.reasons else ""
            self.console.say(f"  {'DANGER' if risk.dangerous else 'note'}: {risk.kind} {risk.type} {risk.name}"
                             f"{' [' + flags + ']' if flags else ''}{reasons}")  # fmt: skip
        document = result.to_dict()
        document["dangerous"] = summary.dangerous
        document["risks"] = [
            {"kind": r.kind, "type": r.type, "name": r.name, "reasons": list(r.reasons), "stateful": r.stateful,
             "protected": r.protected, "dangerous": r.dangerous}
            for r in summary.risks
        ]  # fmt: skip
        if drift is not None:
            for item in summary.drift:
                fields = f": {', '.join(item.fields)}" if item.fields else ""
                self.console.say(f"  drift: {item.kind} outside Pulumi {item.type} {item.name}{fields}")
            document["drift"] = [
                {"kind": d.kind, "type": d.type, "name": d.name, "urn": d.urn, "fields": list(d.fields),
                 "stateful": d.stateful}
                for d in summary.drift
            ]  # fmt: skip
        return document, summary

    def report_recovery(self, result: api.OperationResult) -> None:
        if result.recovery is not None:
            for line in result.recovery.lines():
                self.console.say(f"  recovered: {line}")

    def write_markdown(self, summary: pr_summary.Summary, target: str | None) -> None:
        self.write_markdown_text(summary.markdown, target)

    def write_markdown_text(self, markdown: str, target: str | None) -> None:
        if not target:
            return
        if target == "-":
            self.console.out.write(markdown)
            return
        Path(target).write_text(markdown, encoding="utf-8")

    # each returns (exit code, JSON document)

    def cmd_preview(self) -> tuple[int, dict[str, Any]]:
        args = self.args
        if args.markdown == "-" and args.json:
            raise UsageError("--markdown - and --json both want stdout; give --markdown a file")
        try:
            self.validate_stack_file(args.stack)
        except ConfigError as error:
            lines = [
                pr_summary.marker(args.stack),
                f"### Pulumi preview: {pr_summary.code(args.stack)} — ❌ invalid stack config",
                "",
            ]
            lines += [f"- {pr_summary.code(p.path or 'config')}: {p.reason}" for p in error.problems]
            self.write_markdown_text("\n".join(lines) + "\n", args.markdown)
            raise
        packs = _policy_packs(args.policy_pack)
        drift = self.run_operation("drift", args.stack) if args.drift else None
        try:
            result = self.run_operation(
                "preview", args.stack, refresh=args.refresh, targets=args.target, policy_packs=packs
            )
        except api.OperationFailedError as error:
            document, summary = self.preview_report(error.result, drift)
            self.write_markdown(summary, args.markdown)
            raise
        document, summary = self.preview_report(result, drift)
        self.write_markdown(summary, args.markdown)
        code = EXIT_DANGER if args.fail_on_danger and summary.dangerous else EXIT_OK
        if code == EXIT_DANGER:
            self.console.say("dangerous change present (exit 3): a stateful or protected resource is replaced/deleted")
        return code, {"ok": code == EXIT_OK, "exitCode": code, "dangerous": summary.dangerous, "result": document}

    def cmd_up(self) -> tuple[int, dict[str, Any]]:
        args = self.args
        self.validate_stack_file(args.stack)
        packs = _policy_packs(args.policy_pack)
        if not args.yes and not args.json and sys.stdin.isatty():
            self.preview_report(
                self.run_operation("preview", args.stack, refresh=args.refresh, targets=args.target, policy_packs=packs)
            )
        self.confirm(f"deploy stack {args.stack!r}")
        result = self.run_operation(
            "up", args.stack, refresh=args.refresh, targets=args.target, message=args.message, policy_packs=packs,
            recover=args.recover, continue_on_error=args.continue_on_error,
        )  # fmt: skip
        self.report_recovery(result)
        self.console.say(f"up of {args.stack}: {_summary_line(result.summary)} in {result.duration_seconds:.1f}s")
        self._print_outputs(result.outputs, show_secrets=False)
        return EXIT_OK, {"ok": True, "exitCode": EXIT_OK, "result": result.to_dict()}

    def cmd_refresh(self) -> tuple[int, dict[str, Any]]:
        self.validate_stack_file(self.args.stack)
        self.confirm(f"refresh stack {self.args.stack!r}")
        result = self.run_operation("refresh", self.args.stack, recover=self.args.recover)
        self.report_recovery(result)
        self.console.say(f"refresh of {self.args.stack}: {_summary_line(result.summary)}")
        return EXIT_OK, {"ok": True, "exitCode": EXIT_OK, "result": result.to_dict()}

    def cmd_destroy(self) -> tuple[int, dict[str, Any]]:
        if not self.args.yes:
            raise UsageError(f"destroy deletes every resource of {self.args.stack!r}: pass --yes to confirm")
        result = self.run_operation("destroy", self.args.stack, recover=self.args.recover)
        self.report_recovery(result)
        self.console.say(f"destroy of {self.args.stack}: {_summary_line(result.summary)}")
        return EXIT_OK, {"ok": True, "exitCode": EXIT_OK, "result": result.to_dict()}

    def cmd_recover(self) -> tuple[int, dict[str, Any]]:
        stack = self.args.stack
        self.validate_stack_file(stack)
        fd = self.flightdeck()
        with ProgressDisplay(self.console, "recover", stack) as display:
            recovered = fd.recover(stack, on_event=display)
        if recovered.empty:
            self.console.say(f"{stack}: nothing to recover (no stale engine lock, no pending operations)")
        for line in recovered.lines():
            self.console.say(f"  recovered: {line}")
        if any(op.is_create for op in recovered.pending):
            self.console.say(f"run `flightdeck up {stack}` to create the cleared resources again")
        return EXIT_OK, {"ok": True, "exitCode": EXIT_OK, "stack": stack, "recovery": recovered.to_dict()}

    def _print_outputs(self, outputs: dict[str, api.StackOutput], show_secrets: bool) -> None:
        for key, value in outputs.items():
            self.console.say(f"  {key}: {json.dumps(value.shown(show_secrets), default=str)}")

    def cmd_outputs(self) -> tuple[int, dict[str, Any]]:
        outputs = self.flightdeck().outputs(self.args.stack)
        self._print_outputs(outputs, self.args.show_secrets)
        shown = {k: {"value": v.shown(self.args.show_secrets), "secret": v.secret} for k, v in outputs.items()}
        return EXIT_OK, {"ok": True, "exitCode": EXIT_OK, "outputs": shown}

    def cmd_pr_summary(self) -> tuple[int, dict[str, Any]]:
        args = self.args
        try:
            text = sys.stdin.read() if args.digest == "-" else Path(args.digest).read_text(encoding="utf-8")
        except OSError as error:
            raise UsageError(f"cannot read {args.digest}: {error.strerror}") from None
        digest = pr_summary.parse_digest(text)
        if digest is None:
            raise UsageError(f"{args.digest} holds no `pulumi preview --json` document")
        summary = pr_summary.render(digest, stack=args.stack, title=args.title)
        if args.output:
            Path(args.output).write_text(summary.markdown, encoding="utf-8")
        elif not args.json:
            self.console.out.write(summary.markdown)
        code = EXIT_DANGER if args.fail_on_danger and summary.dangerous else EXIT_OK
        document = {
            "ok": code == EXIT_OK, "exitCode": code, "dangerous": summary.dangerous, "counts": summary.counts,
            "errors": list(summary.errors), "markdown": summary.markdown,
        }  # fmt: skip
        return code, document

    # -- restore --

    def cmd_restore(self) -> tuple[int, dict[str, Any]]:
        args = self.args
        request = restore_plan.RestoreRequest(
            site=args.site,
            choice=restore_plan.parse_from(args.source),
            into=args.into,
            force=args.force,
            parts=tuple(dict.fromkeys(args.only)) if args.only else restore_plan.PARTS,
        )
        fd = self.flightdeck()
        # Held throughout: an `up` meanwhile would scale the stopped site back up mid-restore.
        with fd.stack_lock(args.stack, f"restore {args.site}"):
            sites = fd.outputs(args.stack).get("sites")
            sources = restore_plan.site_sources(sites.value if sites else None, args.site)
            cluster = restore.connect(fd.kube_access(args.stack))
            runner = restore.Runner(cluster, timeout=args.timeout, poll=args.poll, on_progress=self.console.progress)
            self.console.progress(f"restore {args.site} ({args.stack}) ...")
            try:
                report = runner.run(request, sources, dry_run=args.dry_run)
            except restore.RestoreFailedError as error:
                self._print_restore(error.report)
                raise
        self._print_restore(report)
        return EXIT_OK, {"ok": True, "exitCode": EXIT_OK, "restore": report.to_dict()}

    def _print_restore(self, report: restore.RestoreReport) -> None:
        plan = report.plan
        where = "in place" if plan.target_namespace == plan.namespace else f"into namespace {plan.target_namespace}"
        verb = "would restore" if report.dry_run else "restore of"
        self.console.say(f"{verb} {plan.site} {where}{' (live site)' if plan.live else ''}")
        if report.dry_run:
            for planned in plan.steps():
                self.console.say(f"  - {planned}")
        marks = {"succeeded": "✓", "failed": "✗"}
        for done in report.steps:
            self.console.say(f"  {marks.get(done.outcome, '…')} {done.kind} {done.target}: {done.detail}")
        for note in plan.notes:
            self.console.say(f"  note: {note}")

    # -- sites --

    def cmd_sites_list(self) -> tuple[int, dict[str, Any]]:
        sites = stack_file.list_sites(self.stack_path(self.args.stack), self.args.stack)
        for site in sites:
            self.console.say(
                f"{site.name:<24} {site.cms:<9} replicas={site.replicas:<3} db={site.database_name:<20} "
                f"{', '.join(site.domains)}"
            )
        listed = [site.model_dump(by_alias=True, mode="json") for site in sites]
        return EXIT_OK, {"ok": True, "exitCode": EXIT_OK, "stack": self.args.stack, "sites": listed}

    def site_from_args(self) -> dict[str, Any]:
        args = self.args
        site: dict[str, Any] = {"name": args.name, "cms": args.cms, "domains": list(args.domain)}
        optional = {"replicas": args.replicas, "filesSize": args.files_size, "image": args.image}
        site.update({key: value for key, value in optional.items() if value is not None})
        if args.env:
            site["env"] = dict(args.env)
        if args.database_name:
            site.setdefault("database", {})["name"] = args.database_name
        if args.user_name:
            site.setdefault("user", {})["name"] = args.user_name
        if args.max_user_connections is not None:
            site.setdefault("user", {})["maxUserConnections"] = args.max_user_connections
        if args.backup_start:
            site.setdefault("backup", {})["startTime"] = args.backup_start
        loader = YAML(typ="safe")
        for path, text in args.set:
            try:
                value = loader.load(text) if text.strip() else ""
            except Exception:
                raise UsageError(f"--set {path}: {text!r} is not a YAML value") from None
            keys = path.split(".")
            if not all(keys) or keys[0] == "name":
                raise UsageError(f"--set {path}: not a site key path such as resources.limits.memory")
            node = site
            for key in keys[:-1]:
                child = node.setdefault(key, {})
                if not isinstance(child, dict):
                    raise UsageError(f"--set {path}: {key} is not a mapping")
                node = child
            node[keys[-1]] = value
        return site

    def cmd_sites_add(self) -> tuple[int, dict[str, Any]]:
        site = self.site_from_args()
        return self._edit(lambda path, dry: stack_file.add_site(path, site, stack=self.args.stack, dry_run=dry))

    def cmd_sites_remove(self) -> tuple[int, dict[str, Any]]:
        name = self.args.name
        return self._edit(lambda path, dry: stack_file.remove_site(path, name, stack=self.args.stack, dry_run=dry))

    def cmd_rotate_password(self) -> tuple[int, dict[str, Any]]:
        site = self.args.site
        return self._edit(lambda path, dry: stack_file.rotate_password(path, site, stack=self.args.stack, dry_run=dry))

    def _edit(self, apply: Callable[[Path, bool], stack_file.EditResult]) -> tuple[int, dict[str, Any]]:
        args = self.args
        path = self.stack_path(args.stack)
        fd = None if args.dry_run or args.no_preview else self.flightdeck()
        # With a preview to follow, hold the stack's lock from the edit through the preview.
        lock = fd.stack_lock(args.stack, f"sites edit ({args.command})") if fd else contextlib.nullcontext()
        with lock:
            result = apply(path, args.dry_run)
            verb = "would change" if args.dry_run else "changed"
            self.console.say(f"{verb} {path.name}: {result.action} {result.site}")
            if result.diff():
                self.console.say(result.diff().rstrip())
            document: dict[str, Any] = {
                "ok": True, "exitCode": EXIT_OK,
                "edit": {"path": str(path), "action": result.action, "site": result.site, "written": result.written,
                         "diff": result.diff()},
            }  # fmt: skip
            if fd is None:
                return EXIT_OK, document
            try:
                preview = self.run_operation("preview", args.stack)
            except api.OperationFailedError as error:
                error.args = (f"{path.name} was changed; the preview then failed: {error}",)
                raise
            document["preview"], _ = self.preview_report(preview)
            return EXIT_OK, document


def _dispatch(app: App) -> tuple[int, dict[str, Any]]:
    command = app.args.command
    if command == "sites":
        command = f"sites_{app.args.sites_command}"
    handler: Callable[[], tuple[int, dict[str, Any]]] = getattr(app, f"cmd_{command.replace('-', '_')}")
    return handler()


def main(argv: Sequence[str] | None = None, out: TextIO | None = None, err: TextIO | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    out = out or sys.stdout
    err = err or sys.stderr
    as_json = "--json" in argv
    console = Console(as_json, "-q" in argv or "--quiet" in argv, out, err)
    try:
        args = build_parser().parse_args(argv)
    except UsageError as error:
        return _fail(console, error, EXIT_USAGE)
    except SystemExit as exit_:  # --help / --version
        return int(exit_.code or 0)
    console = Console(args.json, args.quiet, out, err)
    try:
        code, document = _dispatch(App(args, console))
    except (
        UsageError,
        ConfigError,
        stack_file.StackFileError,
        api.StackNotFoundError,
        restore_plan.RestoreError,
    ) as error:
        return _fail(console, error, EXIT_USAGE)
    except restore.RestoreFailedError as error:
        code = _fail(console, error, EXIT_FAILED)
        return code
    except api.StackLockedError as error:
        return _fail(console, error, EXIT_LOCKED)
    except api.OperationFailedError as error:
        code = _fail(console, error, EXIT_FAILED, result=error.result)
        return code
    except api.FlightdeckError as error:
        return _fail(console, error, error.exit_code)
    except KeyboardInterrupt:
        print("interrupted", file=err)
        return EXIT_INTERRUPTED
    console.emit(document)
    return code


def _fail(console: Console, error: BaseException, code: int, result: api.OperationResult | None = None) -> int:
    print(f"flightdeck: {error}", file=console.err, flush=True)
    if code == EXIT_USAGE and isinstance(error, UsageError) and "usage" not in str(error):
        print("(run `flightdeck --help` or `flightdeck COMMAND --help` for usage)", file=console.err)
    document = _error_document(error, code)
    if result is not None:
        document["result"] = result.to_dict()
        if result.operation == "preview":
            document["dangerous"] = result.pr_summary().dangerous
    console.emit(document)
    return code


if __name__ == "__main__":
    sys.exit(main())
