"""`make local`: deploy the local default stack (Pulumi.local.yaml) for real, and print the sites.

One command on a fresh machine: it builds or reuses the toolchains (``tools/setup.sh all`` has
run before it), starts what is not running yet (a MariaDB server, the local control plane with
the mariadb-operator stand-in), runs ``pulumi up`` of the ``local`` stack through the flightdeck
API (file backend and passphrase under the cache folder, no Pulumi Cloud account) and prints
every site with its URL, namespace, database, user and backup times from the stack outputs, and
how to reach the database. A second run changes nothing.

Everything lives in ``${FLIGHTDECK_CACHE:-~/.cache/flightdeck}/local``::

    mariadb/        the MariaDB server (tools.mariadb_server state dir; as root, where the server's
                    unprivileged user can reach it: /var/lib/flightdeck/local/mariadb, or
                    $FLIGHTDECK_LOCAL_MARIADB_DIR)
    controlplane/   the control plane (tools.controlplane state dir; kubeconfig inside)
    backend/        the Pulumi file backend with the stack's state
    passphrase      the stack's secrets passphrase (generated once, mode 0600)
    Pulumi.local.yaml  the repository's stack file plus this machine's secrets salt

The repository's ``Pulumi.local.yaml`` is never written: the engine reads the copy above
(``--config-file``), which is refreshed from the repository's file on every run and keeps only
``encryptionsalt`` (which belongs to this machine's passphrase) of its own.

CLI::

    python -m tools.local up        # what `make local` runs
    python -m tools.local down      # stop everything `up` started (`make local-down`)
    python -m tools.local status
    python -m tools.local env       # export lines for running pulumi/kubectl against the stack by hand
"""

from __future__ import annotations

import argparse
import os
import secrets
import shlex
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

from flightdeck.api import Flightdeck, FlightdeckError, OperationEvent, Settings
from tools import pulumi_toolchain
from tools.controlplane import ControlPlane, ControlPlaneError
from tools.mariadb_server import MariaDBServer, MariaDBServerError, ensure_installed

REPO_ROOT = Path(__file__).resolve().parent.parent
STACK = "local"
RIG_ADMIN = "rig"  # the server's own admin; `root` belongs to the (simulated) operator


def state_root() -> Path:
    base = os.environ.get("FLIGHTDECK_CACHE") or str(Path.home() / ".cache" / "flightdeck")
    return Path(base) / "local"


@dataclass(frozen=True)
class LocalPaths:
    root: Path

    @property
    def mariadb(self) -> Path:
        override = os.environ.get("FLIGHTDECK_LOCAL_MARIADB_DIR")
        if override:
            return Path(override)
        if os.geteuid() == 0:
            # As root the server runs as the unprivileged `mysql` user (tools/mariadb_server.py),
            # which cannot enter root's home; a system folder it can reach keeps the data across reboots.
            return Path("/var/lib/flightdeck/local/mariadb")
        return self.root / "mariadb"

    @property
    def controlplane(self) -> Path:
        return self.root / "controlplane"

    @property
    def backend(self) -> Path:
        return self.root / "backend"

    @property
    def passphrase(self) -> Path:
        return self.root / "passphrase"

    @property
    def config_file(self) -> Path:
        return self.root / f"Pulumi.{STACK}.yaml"


def say(message: str) -> None:
    print(f"[local] {message}", file=sys.stderr, flush=True)


def mysql_namespace(stack_path: Path) -> str:
    """The namespace of the stack's MariaDB resource (what the stand-in must serve)."""
    from flightdeck.stack_file import StackFile

    config = StackFile.load(stack_path, STACK).validate()
    return str(getattr(config.mysql, "namespace", "mariadb"))


def sync_config_file(paths: LocalPaths) -> Path:
    """The repository's stack file plus this machine's ``encryptionsalt``, written to the cache."""
    yaml = YAML()
    yaml.preserve_quotes = True
    document = yaml.load((REPO_ROOT / f"Pulumi.{STACK}.yaml").read_text())
    if paths.config_file.exists():
        previous = yaml.load(paths.config_file.read_text()) or {}
        if previous.get("encryptionsalt"):
            document["encryptionsalt"] = previous["encryptionsalt"]
    paths.root.mkdir(parents=True, exist_ok=True)
    tmp = paths.config_file.with_suffix(".tmp")
    with tmp.open("w") as handle:
        yaml.dump(document, handle)
    tmp.replace(paths.config_file)
    return paths.config_file


def ensure_passphrase(paths: LocalPaths) -> Path:
    if not paths.passphrase.exists():
        paths.root.mkdir(parents=True, exist_ok=True)
        fd = os.open(paths.passphrase, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(32))
    return paths.passphrase


def ensure_mariadb(paths: LocalPaths) -> MariaDBServer:
    if (paths.mariadb / "info.json").exists():
        server = MariaDBServer.from_state_dir(paths.mariadb)
        if server.is_running():
            return server
        say(f"starting the MariaDB server in {paths.mariadb} again")
        # Same port, data and accounts: the stand-in has since set root's password from the Secret.
        return server.restart()
    ensure_installed()
    say(f"starting a MariaDB server in {paths.mariadb}")
    return MariaDBServer.create(paths.mariadb, admin_user=RIG_ADMIN).start()


def control_plane(paths: LocalPaths, namespace: str | None = None) -> ControlPlane:
    servers: dict[str, str | os.PathLike[str]] = {namespace: paths.mariadb} if namespace else {}
    return ControlPlane(paths.controlplane, mariadb_servers=servers)


def settings(paths: LocalPaths, toolchain: pulumi_toolchain.Toolchain, kubeconfig: Path) -> Settings:
    env = dict(toolchain.env())
    env["PATH"] = f"{toolchain.bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"
    # The program's kubernetes Provider and the SQL port-forward use the ambient kubeconfig.
    env["KUBECONFIG"] = str(kubeconfig)
    paths.backend.mkdir(parents=True, exist_ok=True)
    return Settings(
        work_dir=REPO_ROOT,
        backend_url=f"file://{paths.backend}",
        secrets_provider="passphrase",
        passphrase_file=ensure_passphrase(paths),
        env=env,
        pulumi_root=Path(toolchain.bin_dir).parent,
        create_missing=True,
        config_file=sync_config_file(paths),
    )


def print_event(event: OperationEvent) -> None:
    if event.kind == "step-done" and event.step is not None and event.step.op not in ("same", "read"):
        say(f"  {event.step.op:<8} {event.step.type} {event.step.name}")
    elif event.kind == "diagnostic" and event.severity in ("error", "warning") and event.message:
        say(f"  {event.severity}: {event.message.strip()[:500]}")


def site_table(sites: dict[str, Any]) -> str:
    header = ("site", "url", "namespace", "database", "user", "files backup", "db backup")
    rows = [header]
    for name, site in sorted(sites.items()):
        backups = site.get("backups") or {}
        zone = backups.get("timeZone") or ""
        rows.append(
            (
                name,
                str(site.get("url", "")),
                str(site.get("namespace", "")),
                str(site.get("database", "")),
                str(site.get("user", "")),
                f"{backups.get('files') or '-'} {zone}".strip(),
                f"{backups.get('database') or '-'} {zone}".strip(),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)) for row in rows)


def up(paths: LocalPaths) -> int:
    started = time.monotonic()
    toolchain = pulumi_toolchain.ensure(progress=say)
    namespace = mysql_namespace(REPO_ROOT / f"Pulumi.{STACK}.yaml")
    server = ensure_mariadb(paths)
    plane = control_plane(paths, namespace)
    running = plane.read_state()
    if running is not None and running.mariadb_servers != plane.mariadb_servers and plane.is_running():
        say("the control plane serves other MariaDB namespaces: restarting it")
        plane.stop()
    kubeconfig = plane.start()
    fd = Flightdeck(settings(paths, toolchain, kubeconfig))
    say(f"pulumi up of stack {STACK!r} (state in {paths.backend})")
    result = fd.up(STACK, on_event=print_event)
    changes = {op: n for op, n in result.summary.items() if op != "same" and n}
    say(
        f"done in {time.monotonic() - started:.0f}s: "
        + (", ".join(f"{n} {op}" for op, n in changes.items()) or "no changes")
    )
    outputs = {key: value.value for key, value in result.outputs.items()}
    print(site_table(outputs.get("sites") or {}))
    mysql = outputs.get("mysql") or {}
    cluster = plane.read_state()
    built = Path(cluster.binaries["kube-apiserver"]).with_name("kubectl") if cluster else None
    # `python -m tools.k8s_toolchain` builds it (tools/setup.sh leaves it out); any kubectl works.
    kubectl = built if built is not None and built.is_file() else "kubectl"
    print()
    print(f"database: {mysql.get('servers')} MariaDB server(s) behind {mysql.get('primaryHost')}:{mysql.get('port')}")
    print(f"  from here: mysql -h 127.0.0.1 -P {server.port} -u {RIG_ADMIN} -p   (password: "
          f"python -m tools.mariadb_server info --state-dir {paths.mariadb})")  # fmt: skip
    print(f"  through the cluster: KUBECONFIG={kubeconfig} {kubectl} -n {namespace} "
          f"port-forward svc/{str(mysql.get('primaryHost', '')).split('.')[0]} 3306")  # fmt: skip
    print("  each site's credentials: the DB_* keys of the Secret <site>-db in the site's namespace")
    print('shell for pulumi/kubectl by hand: eval "$(python -m tools.local env)"; stop everything: make local-down')
    return 0


def down(paths: LocalPaths) -> int:
    if paths.controlplane.exists():
        control_plane(paths).stop()
    if (paths.mariadb / "info.json").exists():
        MariaDBServer.from_state_dir(paths.mariadb).stop(remove_state=False)
        say("MariaDB stopped")
    say(f"nothing of the local platform is running any more (its data stays in {paths.root})")
    return 0


def status(paths: LocalPaths) -> int:
    healthy = True
    if (paths.mariadb / "info.json").exists():
        running = MariaDBServer.from_state_dir(paths.mariadb).is_running()
        healthy &= running
        print(f"mariadb                  {'running' if running else 'stopped'}")
    else:
        healthy = False
        print("mariadb                  not created")
    for row in control_plane(paths).status():
        healthy &= row.healthy
        state = "healthy" if row.healthy else ("running" if row.running else "stopped")
        print(f"{row.name:<24} {state:<8} {row.detail[:80]}")
    return 0 if healthy else 1


def env(paths: LocalPaths) -> int:
    toolchain = pulumi_toolchain.current()
    print(pulumi_toolchain.env_exports(toolchain))
    values = {
        "KUBECONFIG": str(paths.controlplane / "kubeconfig"),
        "PULUMI_BACKEND_URL": f"file://{paths.backend}",
        "PULUMI_CONFIG_PASSPHRASE_FILE": str(paths.passphrase),
    }
    for key, value in values.items():
        print(f"export {key}={shlex.quote(value)}")
    print(f"# then: pulumi preview --stack {STACK} --config-file {shlex.quote(str(paths.config_file))}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tools.local", description=__doc__.split("\n")[0])
    ap.add_argument("command", choices=("up", "down", "status", "env"))
    args = ap.parse_args(argv)
    paths = LocalPaths(state_root())
    commands = {"up": up, "down": down, "status": status, "env": env}
    try:
        return commands[args.command](paths)
    except (FlightdeckError, ControlPlaneError, MariaDBServerError, pulumi_toolchain.ToolchainError) as error:
        say(f"{args.command} failed: {error}")
        return 1


if __name__ == "__main__":
    sys.exit(main())
