"""flightdeck's ``pulumi-language-python-exec``: runs one Pulumi Python program.

Started by the language host (``language_host.py``) with the *program's* interpreter as
``python -u <this> --monitor A --engine B --project P --root_directory R --stack S --pwd D
--dry_run true|false --parallel N [--organization O] PROGRAM [ARGS...]``; stack config
arrives in ``PULUMI_CONFIG`` (JSON map) and ``PULUMI_CONFIG_SECRET_KEYS`` (JSON list).

Exit codes are the contract with the host: 0 ok, 1 after a ``pulumi.RunError`` (already
logged through the engine), 32 after any other error that was already shown to the user.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import runpy
import sys
import traceback
from concurrent.futures import ThreadPoolExecutor

try:
    import pulumi
    import pulumi.runtime
except ImportError:
    # print(), not sys.stderr.write: the engine reliably surfaces printed lines.
    print(traceback.format_exc(), file=sys.stderr)
    print(
        "The pulumi SDK is not importable by this interpreter "
        f"({sys.executable}). Check the 'virtualenv' option in Pulumi.yaml.",
        file=sys.stderr,
    )
    sys.exit(1)

EXIT_USER_ACTIONABLE = 32


def _parse() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description="Execute a Pulumi Python program")
    for flag in (
        "project", "root_directory", "stack", "parallel", "dry_run", "pwd",
        "monitor", "engine", "tracing", "organization",
    ):  # fmt: skip
        ap.add_argument(f"--{flag}")
    ap.add_argument("PROGRAM")
    ap.add_argument("ARGS", nargs="*")
    return ap.parse_args()


def _user_traceback(program: str) -> str:
    """The traceback cut to start at the user's program, which is what they can act on."""
    target = os.path.abspath(program)
    if os.path.isdir(target):
        target = os.path.join(target, "__main__.py")
    frames = traceback.extract_tb(sys.exc_info()[2])
    for index, frame in enumerate(frames):
        if os.path.abspath(frame.filename) == target:
            return traceback.format_exc(limit=-(len(frames) - index))
    return traceback.format_exc()


def main() -> int:
    args = _parse()

    pulumi.runtime.set_all_config(pulumi.runtime.get_config_env(), pulumi.runtime.get_config_secret_keys_env())
    settings = pulumi.runtime.Settings(
        monitor=args.monitor,
        engine=args.engine,
        project=args.project,
        stack=args.stack,
        parallel=int(args.parallel) if args.parallel else None,
        dry_run=args.dry_run == "true",
        organization=args.organization,
        root_directory=args.root_directory,
    )
    pulumi.runtime.configure(settings)

    sys.argv = [args.PROGRAM, *args.ARGS]
    if args.pwd:
        os.chdir(args.pwd)
    # Programs import sibling modules (e.g. dynamic-provider modules) as a script would.
    program_dir = args.PROGRAM if os.path.isdir(args.PROGRAM) else os.path.dirname(args.PROGRAM)
    sys.path.insert(0, os.path.abspath(program_dir or "."))

    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    # Blocking SDK calls (invokes, dynamic-provider pickling) run in the default executor;
    # size it from --parallel as upstream does so a large fan-out does not serialize.
    executor = ThreadPoolExecutor(max_workers=max(settings.parallel or 1, 1) * 4)
    loop.set_default_executor(executor)
    # Pulumi deliberately leaves futures unobserved when a program fails; asyncio's
    # complaints about that are noise to a user.
    logging.getLogger("asyncio").setLevel(logging.CRITICAL)

    def run_program() -> None:
        runpy.run_path(args.PROGRAM, run_name="__main__")

    code = 1
    try:
        loop.run_until_complete(pulumi.runtime.run_in_stack(run_program))
        code = 0
    except KeyboardInterrupt:
        # The engine interrupts the program when it cancels the update (e.g. after another
        # resource failed); the reason is already in its diagnostics, so leave quietly and
        # skip joining worker threads that may be blocked on the dead engine.
        print("pulumi program interrupted by the engine", file=sys.stderr, flush=True)
        os._exit(EXIT_USER_ACTIONABLE)
    except pulumi.RunError as err:
        pulumi.log.error(str(err))
    except Exception:  # every failure must reach the user, with its traceback
        pulumi.log.error("Program failed with an unhandled exception:\n" + _user_traceback(args.PROGRAM))
        code = EXIT_USER_ACTIONABLE
    finally:
        executor.shutdown(wait=True)
        loop.close()
        sys.stdout.flush()
        sys.stderr.flush()
    return code


if __name__ == "__main__":
    sys.exit(main())
