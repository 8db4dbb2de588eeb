"""Throwaway MariaDB servers for tests, benchmarks and the local demo stack.

One module, three users: the integration tier (``tests/conftest.py`` session
fixtures ``mariadb_primary`` / ``mariadb_replica``), the end-to-end tier and the
benchmarks.  Nothing here touches the machine's own MariaDB service: each server
gets its own state directory (data dir, socket, pid file, error log, generated
``my.cnf``), listens on a free ``127.0.0.1`` port only, and runs as an
unprivileged user (the ``mysql`` system user when we are root, as in CI;
otherwise the current user).

Python use::

    from tools.mariadb_server import MariaDBServer, ensure_installed
    ensure_installed()                      # apt-installs Debian's mariadb-server if missing
    primary = MariaDBServer.create(state_dir=None)   # None: a fresh temp dir
    primary.start()
    replica = MariaDBServer.create(state_dir=None).start_replica_of(primary)
    with primary.connect() as conn: ...     # PyMySQL connection as the admin user
    primary.info.as_connection_input()      # the flightdeck ``connection`` dict
    replica.stop(); primary.stop()

CLI use (the e2e tier and the demo stack)::

    python -m tools.mariadb_server start --state-dir .state/db --port 3307
    python -m tools.mariadb_server start --state-dir .state/db2 --replica-of .state/db
    python -m tools.mariadb_server info --state-dir .state/db     # JSON incl. admin password
    python -m tools.mariadb_server stop --state-dir .state/db

``start`` prints the connection info as JSON and leaves the server running;
``info.json`` in the state dir (mode 0600) holds the admin credentials so a later
``stop``/``info`` (or another process) can find the server again.
"""

from __future__ import annotations

import argparse
import atexit
import json
import os
import pwd
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pymysql

from tools.ports import address_in_use, free_port

REPO_ROOT = Path(__file__).resolve().parent.parent
SERVER_BINARIES = ("mariadbd", "mysqld")
SEARCH_DIRS = ("/usr/sbin", "/usr/bin", "/usr/local/sbin", "/usr/local/bin")
ADMIN_USER = "root"
REPLICATION_USER = "repl"
START_TIMEOUT_S = 90.0
STOP_TIMEOUT_S = 60.0
# Global status counters of every statement kind the SQL providers can write with: the tests'
# and benchmarks' proof that an operation wrote nothing.
SQL_PROVIDER_WRITE_COUNTERS = (
    "Com_create_db",
    "Com_alter_db",
    "Com_drop_db",
    "Com_create_user",
    "Com_alter_user",
    "Com_drop_user",
    "Com_rename_user",
    "Com_grant",
    "Com_revoke",
    "Com_revoke_all",
)


class MariaDBServerError(RuntimeError):
    """A server could not be installed, started, replicated or stopped."""


def _find_binary(names: tuple[str, ...]) -> str | None:
    for name in names:
        found = shutil.which(name)
        if found:
            return found
        for directory in SEARCH_DIRS:
            candidate = Path(directory) / name
            if candidate.is_file() and os.access(candidate, os.X_OK):
                return str(candidate)
    return None


def server_binary() -> str | None:
    """Path of ``mariadbd`` (or ``mysqld``), or None when not installed."""
    return _find_binary(SERVER_BINARIES)


def ensure_installed() -> str:
    """Return the server binary, installing Debian's mariadb-server when missing.

    Installation goes through the project's own ``tools/setup.sh mariadb`` so a
    fresh CI machine needs nothing beyond the repository.
    """
    binary = server_binary()
    if binary and _find_binary(("mariadb-install-db", "mysql_install_db")):
        return binary
    setup = REPO_ROOT / "tools" / "setup.sh"
    result = subprocess.run(["bash", str(setup), "mariadb"], capture_output=True, text=True, timeout=900, check=False)
    binary = server_binary()
    if result.returncode != 0 or binary is None:
        raise MariaDBServerError(
            f"installing mariadb-server via {setup} failed (exit {result.returncode}):\n"
            f"{result.stdout[-2000:]}\n{result.stderr[-2000:]}"
        )
    return binary


def _run_as() -> str | None:
    """The unprivileged user to run the server as, or None for "the current user"."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam("mysql")
    except KeyError as exc:
        raise MariaDBServerError(
            "running as root but the 'mysql' system user does not exist; "
            "install mariadb-server (bash tools/setup.sh mariadb)"
        ) from exc
    return "mysql"


@dataclass(frozen=True)
class ServerInfo:
    """How to reach a running server.  ``admin_password`` is a secret: never log it."""

    host: str
    port: int
    socket: str
    admin_user: str
    admin_password: str
    state_dir: str
    server_id: int
    pid: int | None = None

    def as_connection_input(self) -> dict[str, Any]:
        """The flightdeck SQL providers' ``connection`` input for this server (mode direct)."""
        return {
            "mode": "direct",
            "host": self.host,
            "port": self.port,
            "user": self.admin_user,
            "password": self.admin_password,
        }

    def __repr__(self) -> str:  # keeps the password out of pytest failure output
        return (
            f"ServerInfo(host={self.host!r}, port={self.port}, state_dir={self.state_dir!r}, "
            f"server_id={self.server_id}, pid={self.pid})"
        )


class MariaDBServer:
    """One unprivileged mariadbd process with its own state directory.

    Build with :meth:`create`, then :meth:`start` (a primary with binary logs and
    GTIDs) or :meth:`start_replica_of` (a GTID replica of a running primary).
    """

    def __init__(
        self, state_dir: Path, port: int, server_id: int, owns_state_dir: bool, admin_user: str = ADMIN_USER
    ) -> None:
        self.state_dir = state_dir
        self.port = port
        self.server_id = server_id
        self.admin_user = admin_user
        self._owns_state_dir = owns_state_dir
        self.tls = False
        self._process: subprocess.Popen[bytes] | None = None
        self._admin_password = secrets.token_urlsafe(18)
        self.primary: MariaDBServer | None = None

    @classmethod
    def create(
        cls,
        state_dir: str | Path | None = None,
        port: int | None = None,
        server_id: int = 1,
        tls: bool = False,
        admin_user: str = ADMIN_USER,
    ) -> MariaDBServer:
        """A server object (not started).  ``state_dir=None`` makes a temp dir removed on stop.

        ``tls=True`` generates a throwaway CA and a server certificate for 127.0.0.1 (with the
        ``openssl`` CLI); clients find the CA at :attr:`ca_file`.

        ``admin_user`` other than ``root`` leaves ``root`` to someone else: the local platform's
        server, whose ``root`` account the simulated mariadb-operator gives the password the
        program generated (``tools/mariadb_standin.py``), as the real operator does.
        """
        owns = state_dir is None
        # Under /tmp directly: pytest's tmp dirs are 0700 and the mysql user could not reach them;
        # also keeps the socket path well under the 108-byte sun_path limit.
        path = Path(tempfile.mkdtemp(prefix="fd-mariadb-")) if state_dir is None else Path(state_dir)
        path = path.resolve()
        path.mkdir(parents=True, exist_ok=True)
        server = cls(path, port or free_port(), server_id, owns, admin_user)
        server.tls = tls
        return server

    # -- paths ---------------------------------------------------------------------------
    @property
    def datadir(self) -> Path:
        return self.state_dir / "data"

    @property
    def tmp_dir(self) -> Path:
        return self.state_dir / "tmp"

    @property
    def socket_path(self) -> Path:
        return self.state_dir / "mysqld.sock"

    @property
    def pid_file(self) -> Path:
        return self.state_dir / "mysqld.pid"

    @property
    def error_log(self) -> Path:
        return self.state_dir / "error.log"

    @property
    def config_file(self) -> Path:
        return self.state_dir / "my.cnf"

    @property
    def ca_file(self) -> Path:
        return self.state_dir / "ca.pem"

    def _make_certificates(self, user: str | None) -> None:
        if self.ca_file.exists():
            return
        openssl = _find_binary(("openssl",))
        if openssl is None:
            raise MariaDBServerError("openssl not found; it is needed to start a TLS test server")
        d = self.state_dir
        (d / "san.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
        steps = [
            [
                openssl,
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-keyout",
                str(d / "ca.key"),
                "-out",
                str(self.ca_file),
                "-days",
                "2",
                "-subj",
                "/CN=flightdeck-test-ca",
            ],
            [
                openssl,
                "req",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-keyout",
                str(d / "server.key"),
                "-out",
                str(d / "server.csr"),
                "-subj",
                "/CN=127.0.0.1",
            ],
            [
                openssl,
                "x509",
                "-req",
                "-in",
                str(d / "server.csr"),
                "-CA",
                str(self.ca_file),
                "-CAkey",
                str(d / "ca.key"),
                "-CAcreateserial",
                "-out",
                str(d / "server.pem"),
                "-days",
                "2",
                "-extfile",
                str(d / "san.ext"),
            ],
        ]
        for cmd in steps:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False)
            if done.returncode != 0:
                raise MariaDBServerError(f"openssl failed: {done.stderr[-1000:]}")
        if user:
            entry = pwd.getpwnam(user)
            for name in ("server.key", "server.pem", "ca.pem"):
                os.chown(d / name, entry.pw_uid, entry.pw_gid)

    @property
    def info_file(self) -> Path:
        return self.state_dir / "info.json"

    @property
    def info(self) -> ServerInfo:
        pid = self._process.pid if self._process else _read_pid(self.pid_file)
        return ServerInfo(
            host="127.0.0.1",
            port=self.port,
            socket=str(self.socket_path),
            admin_user=self.admin_user,
            admin_password=self._admin_password,
            state_dir=str(self.state_dir),
            server_id=self.server_id,
            pid=pid,
        )

    # -- lifecycle -----------------------------------------------------------------------
    def _write_config(self, user: str | None) -> None:
        lines = [
            "[mariadbd]",
            f"datadir={self.datadir}",
            # Its own, not /tmp: concurrent bootstraps (two pytest workers) lost each other's
            # internal temporary tables there ("Could not remove temporary table '/tmp/#sql-...'").
            f"tmpdir={self.tmp_dir}",
            f"socket={self.socket_path}",
            f"pid-file={self.pid_file}",
            f"log-error={self.error_log}",
            f"port={self.port}",
            "bind-address=127.0.0.1",
            "skip-networking=0",
            # TCP clients then match on 127.0.0.1 without a DNS lookup; the admin user is created for it.
            "skip-name-resolve",
            f"server-id={self.server_id}",
            "log-bin=binlog",
            "binlog-format=ROW",
            "gtid-strict-mode=1",
            "log-slave-updates=1",
            "character-set-server=utf8mb4",
            "collation-server=utf8mb4_unicode_ci",
            # Small footprint: CI machines have 2 cores and tests start two servers.
            "innodb-buffer-pool-size=64M",
            "innodb-log-file-size=16M",
            "performance-schema=0",
            "max-connections=300",
            "skip-log-bin-trust-function-creators=0",
        ]
        if self.tls:
            lines += [
                f"ssl-ca={self.ca_file}",
                f"ssl-cert={self.state_dir / 'server.pem'}",
                f"ssl-key={self.state_dir / 'server.key'}",
            ]
        if user:
            lines.append(f"user={user}")
        self.config_file.write_text("\n".join(lines) + "\n")
        self.config_file.chmod(0o644)

    def _check_reachable(self, user: str) -> None:
        """Fail clearly when the unprivileged server user cannot even reach the state dir."""
        entry = pwd.getpwnam(user)
        for parent in self.state_dir.parents:
            st = parent.stat()
            if st.st_uid == entry.pw_uid:
                bit = 0o100
            elif st.st_gid == entry.pw_gid:
                bit = 0o010
            else:
                bit = 0o001
            if not st.st_mode & bit:
                raise MariaDBServerError(
                    f"the '{user}' user cannot enter {parent} (mode {oct(st.st_mode & 0o777)}), so it cannot "
                    f"use the state dir {self.state_dir}; pick a state dir under a world-traversable "
                    f"directory (e.g. /tmp) or run: chmod o+x {parent}"
                )

    def _prepare_dirs(self, user: str | None) -> None:
        if user:
            self._check_reachable(user)
        self.state_dir.chmod(0o755)
        self.datadir.mkdir(exist_ok=True)
        self.tmp_dir.mkdir(mode=0o700, exist_ok=True)
        if user:
            entry = pwd.getpwnam(user)
            for folder in (self.state_dir, self.datadir, self.tmp_dir):
                os.chown(folder, entry.pw_uid, entry.pw_gid)

    def _install_db(self, user: str | None) -> None:
        if (self.datadir / "mysql").is_dir():
            return
        install = _find_binary(("mariadb-install-db", "mysql_install_db"))
        if install is None:
            raise MariaDBServerError("mariadb-install-db not found; run: bash tools/setup.sh mariadb")
        cmd = [
            install,
            f"--defaults-file={self.config_file}",
            "--auth-root-authentication-method=normal",
            "--skip-test-db",
            "--basedir=/usr",
        ]
        if user:
            cmd.append(f"--user={user}")
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False, stdin=subprocess.DEVNULL)
        if result.returncode != 0:
            output = (result.stdout[-1500:] + "\n" + result.stderr[-1500:]).strip()
            # The bootstrap server writes its own errors to the configured log-error file, not to
            # the script's output, which only says "Installation of system tables failed!".
            raise MariaDBServerError(
                f"mariadb-install-db failed (exit {result.returncode}):\n{output}\n"
                f"error log {self.error_log}:\n{self.log_tail()}"
            )

    def _spawn(self) -> None:
        binary = ensure_installed()
        user = _run_as()
        self._write_config(user)
        self._prepare_dirs(user)
        if self.tls:
            self._make_certificates(user)
        self._install_db(user)
        log = open(self.state_dir / "stdout.log", "ab")  # noqa: SIM115 - owned by the child
        self._process = subprocess.Popen(
            [binary, f"--defaults-file={self.config_file}"],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # a Ctrl-C in the test runner must not kill it mid-write
        )
        log.close()
        self._wait_ready()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        last: Exception | None = None
        while time.monotonic() < deadline:
            if self._process is not None and self._process.poll() is not None:
                raise MariaDBServerError(
                    f"mariadbd exited with {self._process.returncode} during startup; log tail:\n{self.log_tail()}"
                )
            try:
                # Freshly installed, root has no password; once bootstrapped, the socket login is refused.
                conn = pymysql.connect(unix_socket=str(self.socket_path), user="root", connect_timeout=2)
                conn.close()
                return
            except pymysql.err.OperationalError as exc:
                if exc.args and exc.args[0] == 1045:  # already bootstrapped: password is set
                    return
                last = exc
            time.sleep(0.2)
        self.kill()
        raise MariaDBServerError(
            f"mariadbd did not become ready in {START_TIMEOUT_S}s ({last}); log:\n{self.log_tail()}"
        )

    def _bootstrap_admin(self) -> None:
        """Create the admin and replication users, unlogged so replicas never replay them."""
        conn = pymysql.connect(unix_socket=str(self.socket_path), user="root", autocommit=True)
        admin = self.admin_user
        try:
            with conn.cursor() as cur:
                cur.execute("SET SESSION sql_log_bin=0")
                # mariadb-install-db also makes password-less root@<hostname> and root@::1 accounts;
                # with a separate admin, root@127.0.0.1 goes too, so TCP logins as root reach the
                # root@'%' account that whoever owns root creates.
                keep = ("localhost", "127.0.0.1") if admin == "root" else ("localhost",)
                cur.execute("SELECT User, Host FROM mysql.user WHERE User='root'")
                for user, host in list(cur.fetchall()):
                    if host not in keep:
                        cur.execute("DROP USER %s@%s", (user, host))
                if admin != "root":
                    # Nobody knows this one: root over the socket is closed until its owner sets it.
                    cur.execute("ALTER USER 'root'@'localhost' IDENTIFIED BY %s", (secrets.token_urlsafe(24),))
                for host in ("localhost", "127.0.0.1"):
                    cur.execute("CREATE USER IF NOT EXISTS %s@%s", (admin, host))
                    cur.execute("ALTER USER %s@%s IDENTIFIED BY %s", (admin, host, self._admin_password))
                    cur.execute("GRANT ALL PRIVILEGES ON *.* TO %s@%s WITH GRANT OPTION", (admin, host))
                cur.execute("CREATE USER IF NOT EXISTS %s@'127.0.0.1'", (REPLICATION_USER,))
                cur.execute("ALTER USER %s@'127.0.0.1' IDENTIFIED BY %s", (REPLICATION_USER, self._admin_password))
                cur.execute("GRANT REPLICATION SLAVE ON *.* TO %s@'127.0.0.1'", (REPLICATION_USER,))
                cur.execute("FLUSH PRIVILEGES")
        finally:
            conn.close()

    def _save_info(self, replica_of: str | None = None) -> None:
        data = asdict(self.info)
        data["replica_of"] = replica_of
        fd = os.open(self.info_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump(data, handle, indent=2)

    def start(self) -> MariaDBServer:
        """Install (if needed), initialise the data dir, start and create the admin user."""
        if self._owns_state_dir:
            # A throwaway server must not outlive a crashed test run; CLI servers (explicit dir) are meant to.
            atexit.register(self.stop)
        try:
            self._spawn()
        except MariaDBServerError as exc:
            # The port was free when picked; another process can bind it before mariadbd does
            # (seconds later, after mariadb-install-db). One retry on a fresh port.
            if not address_in_use(str(exc)):
                raise
            self.port = free_port(taken=frozenset({self.port}))
            self._spawn()
        self._bootstrap_admin()
        self._save_info()
        return self

    def start_replica_of(self, primary: MariaDBServer) -> MariaDBServer:
        """Start this server as a GTID replica of ``primary`` (which must be running)."""
        if self.server_id == primary.server_id:
            self.server_id = primary.server_id + 1
        self.start()
        with primary.connect() as pconn, pconn.cursor() as cur:
            cur.execute("SELECT @@GLOBAL.gtid_binlog_pos")
            row = cur.fetchone()
            gtid_pos = str(row[0]) if row and row[0] else ""
        with self.connect() as conn, conn.cursor() as cur:
            cur.execute("STOP SLAVE")
            # Start after what the primary already has: its own bootstrap was not logged, and
            # this replica already has the same system schema from mariadb-install-db.
            cur.execute("SET GLOBAL gtid_slave_pos = %s", (gtid_pos,))
            cur.execute(
                "CHANGE MASTER TO MASTER_HOST=%s, MASTER_PORT=%s, MASTER_USER=%s, "
                "MASTER_PASSWORD=%s, MASTER_USE_GTID=slave_pos, MASTER_CONNECT_RETRY=1",
                ("127.0.0.1", primary.port, REPLICATION_USER, primary.admin_password),
            )
            cur.execute("START SLAVE")
        self.primary = primary
        self._wait_replicating()
        self._save_info(replica_of=str(primary.state_dir))
        return self

    def _wait_replicating(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        status: dict[str, Any] = {}
        while time.monotonic() < deadline:
            status = self.replica_status()
            if status.get("Slave_IO_Running") == "Yes" and status.get("Slave_SQL_Running") == "Yes":
                return
            time.sleep(0.2)
        raise MariaDBServerError(
            f"replica did not start: IO={status.get('Slave_IO_Running')} SQL={status.get('Slave_SQL_Running')} "
            f"error={status.get('Last_IO_Error') or status.get('Last_SQL_Error')}"
        )

    def replica_status(self) -> dict[str, Any]:
        with self.connect() as conn, conn.cursor(pymysql.cursors.DictCursor) as cur:
            cur.execute("SHOW SLAVE STATUS")
            row = cur.fetchone()
        return dict(row) if row else {}

    def wait_for_replica_catch_up(self, timeout: float = 30.0) -> None:
        """Block until this replica has applied everything its primary has logged so far."""
        if self.primary is None:
            raise MariaDBServerError("not a replica")
        with self.primary.connect() as pconn, pconn.cursor() as cur:
            cur.execute("SELECT @@GLOBAL.gtid_binlog_pos")
            row = cur.fetchone()
            target = str(row[0]) if row and row[0] else ""
        with self.connect() as conn, conn.cursor() as cur:
            cur.execute("SELECT MASTER_GTID_WAIT(%s, %s)", (target, timeout))
            res = cur.fetchone()
        if not res or res[0] != 0:
            raise MariaDBServerError(f"replica did not reach {target} within {timeout}s: {self.replica_status()}")

    @property
    def admin_password(self) -> str:
        return self._admin_password

    def is_running(self) -> bool:
        pid = self._process.pid if self._process else _read_pid(self.pid_file)
        return pid is not None and _pid_alive(pid)

    def stop(self, remove_state: bool | None = None) -> None:
        """Shut down cleanly (SIGTERM, then SIGKILL after a timeout); remove a temp state dir."""
        pid = self._process.pid if self._process else _read_pid(self.pid_file)
        if pid is not None and _pid_alive(pid):
            os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + STOP_TIMEOUT_S
            while time.monotonic() < deadline and _pid_alive(pid):
                if self._process is not None and self._process.poll() is not None:
                    break
                time.sleep(0.1)
            if _pid_alive(pid):
                os.kill(pid, signal.SIGKILL)
        if self._process is not None:
            with suppress(subprocess.TimeoutExpired):
                self._process.wait(timeout=10)
            self._process = None
        if remove_state if remove_state is not None else self._owns_state_dir:
            shutil.rmtree(self.state_dir, ignore_errors=True)

    def kill(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
            self._process.wait(timeout=10)

    def crash(self, timeout: float = 10.0) -> None:
        """SIGKILL the server (no shutdown: InnoDB recovers on the next start), as a node failure
        or an OOM kill would. The state dir stays; :meth:`restart` brings the server back."""
        pid = self._process.pid if self._process else _read_pid(self.pid_file)
        if pid is None or not _pid_alive(pid):
            return
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + timeout
        while _pid_alive(pid):
            if self._process is not None and self._process.poll() is not None:
                break
            if time.monotonic() > deadline:
                raise MariaDBServerError(f"mariadbd (pid {pid}) still running {timeout:.0f}s after SIGKILL")
            time.sleep(0.05)
        if self._process is not None:
            self._process.wait(timeout=timeout)
            self._process = None

    def restart(self) -> MariaDBServer:
        """Start a stopped or crashed server again on the same port, data and accounts."""
        if self.is_running():
            return self
        self._spawn()
        self._save_info(replica_of=str(self.primary.state_dir) if self.primary is not None else None)
        return self

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.error_log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no error log)"

    # -- clients -------------------------------------------------------------------------
    @contextmanager
    def connect(
        self, user: str | None = None, password: str | None = None, database: str | None = None, **kwargs: Any
    ) -> Iterator[pymysql.connections.Connection[Any]]:
        """A PyMySQL TCP connection (admin unless ``user`` is given), closed on exit."""
        conn = pymysql.connect(
            host="127.0.0.1",
            port=self.port,
            user=user or self.admin_user,
            # UTF-8 bytes, as real clients send them (PyMySQL would use latin-1 for a str).
            password=(self._admin_password if user is None else (password or "")).encode("utf-8"),
            database=database,
            autocommit=True,
            charset="utf8mb4",
            connect_timeout=10,
            **kwargs,
        )
        try:
            yield conn
        finally:
            conn.close()

    def query(self, sql: str, params: tuple[Any, ...] | None = None) -> list[tuple[Any, ...]]:
        """Run one admin statement and return all rows."""
        with self.connect() as conn, conn.cursor() as cur:
            cur.execute(sql, params)
            return list(cur.fetchall())

    @classmethod
    def from_state_dir(cls, state_dir: str | Path) -> MariaDBServer:
        """Re-attach to a server started earlier (for example by the CLI)."""
        path = Path(state_dir).resolve()
        data = json.loads((path / "info.json").read_text())
        admin = str(data.get("admin_user") or ADMIN_USER)
        server = cls(path, int(data["port"]), int(data["server_id"]), owns_state_dir=False, admin_user=admin)
        server._admin_password = str(data["admin_password"])
        if data.get("replica_of"):
            server.primary = cls.from_state_dir(data["replica_of"])
        return server


def _read_pid(pid_file: Path) -> int | None:
    try:
        return int(pid_file.read_text().strip())
    except (OSError, ValueError):
        return None


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child still answers kill(0); reap-free check via /proc.
    try:
        return "Z" not in Path(f"/proc/{pid}/stat").read_text().split()[2]
    except OSError:
        return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.mariadb_server", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    start = sub.add_parser("start", help="start a server and print its connection info as JSON")
    start.add_argument("--state-dir", required=True)
    start.add_argument("--port", type=int, default=0, help="0 = a free port")
    start.add_argument("--server-id", type=int, default=1)
    start.add_argument("--replica-of", help="state dir of a running primary to replicate from (GTID)")
    start.add_argument(
        "--admin-user", default=ADMIN_USER, help="the admin account (not root: root is left to its owner)"
    )
    for name in ("stop", "info"):
        cmd = sub.add_parser(name)
        cmd.add_argument("--state-dir", required=True)
    args = parser.parse_args(argv)

    if args.command == "start":
        server = MariaDBServer.create(args.state_dir, args.port or None, args.server_id, admin_user=args.admin_user)
        if args.replica_of:
            server.start_replica_of(MariaDBServer.from_state_dir(args.replica_of))
        else:
            server.start()
        print(json.dumps({k: v for k, v in asdict(server.info).items() if k != "admin_password"}))
        return 0
    server = MariaDBServer.from_state_dir(args.state_dir)
    if args.command == "stop":
        server.stop(remove_state=False)
        return 0
    print(json.dumps(asdict(server.info)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
