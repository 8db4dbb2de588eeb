"""Record the golden ``pulumi preview --json`` outputs from the real engine.

Usage (needs the engine from ``tools.pulumi_toolchain`` and Debian's mariadb-server)::

    .venv/bin/python -m tests.unit.golden.record_previews            # rewrite tests/unit/golden/previews/
    .venv/bin/python -m tests.unit.golden.record_previews --out DIR  # record elsewhere (the e2e check)

What it does: a throwaway project ``fdgolden`` (program below: per site a ``MySQLDatabase``,
optionally protected, a ``MySQLUser`` and a ``MySQLGrant`` from ``components.sql``) on a
``file://`` backend, deployed for real against a throwaway MariaDB server, then previewed
after each config change. Each scenario's stdout of ``pulumi preview --json`` is stored as
``<scenario>.json`` (only ``sourcePosition``/``stackTrace``, which hold local paths, and
``duration`` are dropped) together with ``<scenario>.md``, the Markdown
:func:`flightdeck.pr_summary.render` makes of it.

Scenarios (each preview is against the state of the first ``up``):

* ``sql-create``: a new stack, two sites: everything is created.
* ``sql-no-change``: the deployed config again.
* ``sql-replace-delete``: site ``blog`` renames its user (user and grant replaced, reason
  ``user``), site ``shop`` is removed (its database, user and grant deleted).
* ``sql-protected-replace``: the protected ``blog`` database renamed (the engine refuses:
  error diagnostic, exit 1) while ``shop``'s grant changes privileges (an update).
* ``sql-protected-delete``: site ``blog`` removed: deleting its protected database is refused.

Previews need no database (``check``/``diff`` of components/sql never connect); only the setup
``up`` does.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[3]
GOLDEN_DIR = Path(__file__).resolve().parent / "previews"
PROJECT = "fdgolden"
STACK = "golden"
PASSWORD = "golden-site-password-1"  # throwaway; never reaches the recordings (secret, masked)

PROGRAM = """
import pulumi
from components.sql import MySQLDatabase, MySQLDatabaseArgs, MySQLGrant, MySQLGrantArgs, MySQLUser, MySQLUserArgs

config = pulumi.Config()
admin = config.require_secret_object("adminConnection")
password = config.require_secret("sitePassword")
sites = config.require_object("sites")
for site in sites:
    name = site["name"]
    database = MySQLDatabase(
        f"{name}-db",
        MySQLDatabaseArgs(database=site["database"], connection=admin),
        pulumi.ResourceOptions(protect=bool(site.get("protect"))),
    )
    user = MySQLUser(f"{name}-user", MySQLUserArgs(user=site["user"], password=password, connection=admin))
    MySQLGrant(
        f"{name}-grant",
        MySQLGrantArgs(
            user=user.user,
            host=user.host,
            database=database.database,
            privileges=site.get("privileges", ["ALL PRIVILEGES"]),
            connection=admin,
        ),
    )
pulumi.export("sites", [site["name"] for site in sites])
"""

BLOG: dict[str, Any] = {"name": "blog", "database": "blog", "user": "blog", "protect": True}
SHOP: dict[str, Any] = {"name": "shop", "database": "shop", "user": "shop", "privileges": ["SELECT", "INSERT"]}
DEPLOYED: list[dict[str, Any]] = [BLOG, SHOP]
SCENARIOS: list[tuple[str, list[dict[str, Any]]]] = [
    ("sql-no-change", DEPLOYED),
    ("sql-replace-delete", [{**BLOG, "user": "blog_v2"}]),
    ("sql-protected-replace", [{**BLOG, "database": "blog_v2"}, {**SHOP, "privileges": ["SELECT"]}]),
    ("sql-protected-delete", [SHOP]),
]
DROPPED_KEYS = ("sourcePosition", "stackTrace")


def sanitize(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: sanitize(v) for k, v in node.items() if k not in DROPPED_KEYS and k != "duration"}
    if isinstance(node, list):
        return [sanitize(item) for item in node]
    return node


class Recorder:
    def __init__(self, work: Path, env: dict[str, str], secrets: list[str]) -> None:
        self.work = work
        self.env = env
        self.secrets = secrets

    def pulumi(self, *args: str, check: bool = True, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            ["pulumi", *args], cwd=self.work, env=self.env, capture_output=True, text=True, input=stdin, timeout=600
        )
        if check and proc.returncode != 0:
            raise RuntimeError(f"pulumi {' '.join(args[:2])} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
        return proc

    def set_sites(self, sites: list[dict[str, Any]]) -> None:
        self.pulumi("config", "set", "sites", json.dumps(sites))

    def preview(self, name: str, out: Path) -> dict[str, Any]:
        from flightdeck import pr_summary

        proc = self.pulumi("preview", "--json", check=False)
        digest = pr_summary.parse_digest(proc.stdout)
        if digest is None:
            raise RuntimeError(f"{name}: no JSON from pulumi preview ({proc.returncode}):\n{proc.stderr}")
        digest = dict(sanitize(digest))
        text = json.dumps(digest, indent=2) + "\n"
        for secret in self.secrets:
            if secret in text:
                raise RuntimeError(f"{name}: a secret leaked into the preview JSON; not writing it")
        (out / f"{name}.json").write_text(text)
        summary = pr_summary.render(digest, stack=STACK)
        (out / f"{name}.md").write_text(summary.markdown)
        print(f"  {name}: exit {proc.returncode}, {summary.counts}, dangerous={summary.dangerous}", file=sys.stderr)
        return digest


def record(out: Path) -> None:
    sys.path.insert(0, str(REPO_ROOT))
    from tools import pulumi_toolchain
    from tools.mariadb_server import MariaDBServer, ensure_installed

    toolchain = pulumi_toolchain.current()
    out.mkdir(parents=True, exist_ok=True)
    ensure_installed()
    server = MariaDBServer.create(server_id=41).start()
    try:
        with tempfile.TemporaryDirectory(prefix="fdgolden-") as tmp:
            root = Path(tmp)
            work, backend = root / "project", root / "backend"
            for directory in (work, backend):
                directory.mkdir()
            (work / "Pulumi.yaml").write_text(
                f"name: {PROJECT}\nruntime:\n  name: python\n  options:\n    virtualenv: {REPO_ROOT / '.venv'}\n"
            )
            (work / "__main__.py").write_text(PROGRAM)
            env = {
                **os.environ,
                **toolchain.env(),
                "PATH": os.pathsep.join([toolchain.bin_dir, os.environ.get("PATH", "")]),
                "PULUMI_BACKEND_URL": f"file://{backend}",
                "PULUMI_CONFIG_PASSPHRASE": "golden",
                "PYTHONPATH": str(REPO_ROOT),
                "NO_COLOR": "1",
            }
            admin = server.info.as_connection_input()
            recorder = Recorder(work, env, [str(admin["password"]), PASSWORD, f":{admin['port']}"])
            recorder.pulumi("stack", "init", STACK)
            recorder.pulumi("config", "set", "--secret", "adminConnection", json.dumps(admin))
            recorder.pulumi("config", "set", "--secret", "sitePassword", PASSWORD)
            recorder.set_sites(DEPLOYED)
            print(f"recording into {out} with pulumi v{toolchain.cli_version}", file=sys.stderr)
            recorder.preview("sql-create", out)
            recorder.pulumi("up", "--yes", "--skip-preview")
            for name, sites in SCENARIOS:
                recorder.set_sites(sites)
                recorder.preview(name, out)
            recorder.set_sites([{**BLOG, "protect": False}, SHOP])
            recorder.pulumi("up", "--yes", "--skip-preview")  # unprotect, then clean up
            recorder.pulumi("destroy", "--yes", "--skip-preview")
            recorder.pulumi("stack", "rm", "--yes", STACK)
    finally:
        server.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--out", type=Path, default=GOLDEN_DIR, help=f"where to write (default {GOLDEN_DIR})")
    args = parser.parse_args(argv)
    record(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
