"""Admin connections for the SQL providers (the module's only I/O edge).

* :class:`ConnectionSpec` is parsed from the resources' ``connection`` input (or
  the provider configuration); its ``repr`` and every error built from it name
  the mode, host and port, never the password or the kubeconfig.
* :func:`get_connection` keeps **one PyMySQL connection per thread and per spec**
  for the life of the provider process (the dynamic-provider gRPC server runs
  methods on a small thread pool; PyMySQL connections are not thread-safe).
  A connection in use is handed out again without a ping: only one idle for
  longer than :data:`PING_AFTER_IDLE_S` is pinged first (a deployment's calls
  follow each other closely, and a ping is a round trip per statement); a
  connection that died anyway fails its statement with a connection-lost error,
  which the providers retry once on a fresh connection (every statement they
  send is idempotent). Nothing here is reachable from a pickled provider.
* ``mode: portForward`` reaches an in-cluster server from wherever ``pulumi``
  runs: it resolves the Service's selector to a Ready pod through the Kubernetes
  API and tunnels each client connection over the API server's port-forward
  websocket (``kubernetes.stream.portforward``) from a loopback listener.  The pod
  is resolved per client connection, so a reconnect after a primary failover
  follows the Service to the new primary.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import select
import socket
import ssl
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import pymysql
from pulumi.output import Unknown
from pulumi.runtime.rpc import UNKNOWN, unwrap_rpc_secret

from .tls import TlsSpec, opportunistic_context, verified_context

MODES = ("direct", "portForward")
DEFAULT_CONNECT_TIMEOUT = 10
# Long enough for a big ALTER DATABASE, short enough that a stuck run fails instead of hanging CI.
DEFAULT_READ_TIMEOUT = 600
# DDL waits behind a site's open transaction at most this long, then fails loudly.
LOCK_WAIT_TIMEOUT = 60
# A cached connection idle longer than this is pinged before reuse. Far below any server's
# wait_timeout and a port-forward's idle limit, far above the gap between a deployment's calls.
PING_AFTER_IDLE_S = 5.0


class ConnectionConfigError(ValueError):
    """The ``connection`` input is malformed (message names the field, never a secret value)."""


class SQLConnectionError(RuntimeError):
    """The server could not be reached or refused the admin login."""


def is_unknown(value: object) -> bool:
    """True for a value not yet known during preview (either representation the SDK uses)."""
    return isinstance(value, Unknown) or (isinstance(value, str) and value == UNKNOWN)


def contains_unknown(value: object) -> bool:
    if is_unknown(value):
        return True
    if isinstance(value, Mapping):
        return any(contains_unknown(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return any(contains_unknown(v) for v in value)
    return False


def plain(value: Any) -> Any:
    """Strip the SDK's secret wrappers at any depth (inputs may arrive wrapped), and give back
    whole numbers as ``int``: the engine carries every number as a protobuf double, so a
    ``max_user_connections`` of 0 or a port of 3306 reaches ``create`` as ``0.0``/``3306.0``."""
    value = unwrap_rpc_secret(value)
    if isinstance(value, Mapping):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


@dataclass(frozen=True)
class ConnectionSpec:
    """Where and as whom to connect.  ``password`` and ``kubeconfig`` never appear in ``repr``."""

    mode: str
    host: str
    port: int
    user: str
    password: str = field(repr=False)
    tls: TlsSpec = field(default_factory=TlsSpec)
    kubeconfig: str | None = field(default=None, repr=False)
    kube_context: str | None = None
    namespace: str | None = None
    service: str | None = None
    connect_timeout: int = DEFAULT_CONNECT_TIMEOUT

    def describe(self) -> str:
        """Secret-free description for errors and logs."""
        if self.mode == "portForward":
            ns = self.namespace or "(kubeconfig default)"
            return (
                f"mode=portForward, service={self.service or self.host}, namespace={ns}, "
                f"port={self.port}, context={self.kube_context or '(current)'}"
            )
        return f"mode=direct, host={self.host}, port={self.port}"

    def cache_key(self) -> str:
        """Distinct per target and credentials, so a rotated admin password gets a new connection."""
        material = "\x00".join(
            str(x)
            for x in (
                self.mode,
                self.host,
                self.port,
                self.user,
                self.password,
                self.tls.enabled,
                self.tls.ca,
                self.tls.verify_server_cert,
                self.kubeconfig,
                self.kube_context,
                self.namespace,
                self.service,
            )
        )
        return hashlib.sha256(material.encode("utf-8", "surrogatepass")).hexdigest()

    def secrets(self) -> list[str]:
        """Values to scrub from any text that leaves the provider."""
        return [s for s in (self.password, self.kubeconfig) if s]


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def connection_errors(value: object, field_name: str = "connection") -> list[tuple[str, str]]:
    """``(property, message)`` pairs for a malformed connection input; unknowns are accepted."""
    if is_unknown(value):
        return []
    value = plain(value)
    if not isinstance(value, Mapping):
        return [(field_name, f"{field_name}: must be an object with mode, host, port, user, password")]
    errors: list[tuple[str, str]] = []

    def err(key: str, message: str) -> None:
        errors.append((field_name, f"{field_name}.{key}: {message}"))

    mode = value.get("mode", "direct")
    if not is_unknown(mode) and mode not in MODES:
        err("mode", f"must be one of {', '.join(MODES)}")
    for key in ("host", "user"):
        item = value.get(key)
        if not is_unknown(item) and (not isinstance(item, str) or not item.strip()):
            err(key, "must be a non-empty string")
    port = value.get("port", 3306)
    port_ok = (_is_int(port) or (isinstance(port, float) and port.is_integer())) and 1 <= port <= 65535
    if not is_unknown(port) and not port_ok:
        err("port", "must be an integer between 1 and 65535")
    password = value.get("password")
    if not is_unknown(password) and not isinstance(password, str):
        err("password", "must be a string")
    tls = value.get("tls")
    if tls is not None and not is_unknown(tls):
        if not isinstance(tls, Mapping):
            err("tls", "must be an object with enabled, ca, verifyServerCert")
        else:
            for key in ("enabled", "verifyServerCert"):
                item = tls.get(key)
                if item is not None and not is_unknown(item) and not isinstance(item, bool):
                    err(f"tls.{key}", "must be a boolean")
            ca = tls.get("ca")
            if ca is not None and not is_unknown(ca) and not isinstance(ca, str):
                err("tls.ca", "must be a file path or PEM text")
    for key in ("kubeconfig", "kubeContext", "namespace", "service"):
        item = value.get(key)
        if item is not None and not is_unknown(item) and not isinstance(item, str):
            err(key, "must be a string")
    timeout = value.get("connectTimeout")
    if timeout is not None and not is_unknown(timeout) and not (_is_int(timeout) and 1 <= int(timeout) <= 300):
        err("connectTimeout", "must be an integer number of seconds between 1 and 300")
    return errors


def parse_connection(value: object, field_name: str = "connection") -> ConnectionSpec:
    """A :class:`ConnectionSpec`, or :class:`ConnectionConfigError` naming every bad field."""
    if value is None:
        raise ConnectionConfigError(
            f"{field_name}: no connection given; set the resource's connection input "
            "or the provider configuration key 'sqlConnection'"
        )
    if contains_unknown(value):
        raise ConnectionConfigError(f"{field_name}: not known yet (computed during preview)")
    errors = connection_errors(value, field_name)
    if errors:
        raise ConnectionConfigError("; ".join(message for _, message in errors))
    data = plain(value)
    assert isinstance(data, Mapping)
    tls = data.get("tls") or {}
    return ConnectionSpec(
        mode=str(data.get("mode", "direct")),
        host=str(data["host"]).strip(),
        port=int(data.get("port", 3306)),
        user=str(data["user"]),
        password=str(data.get("password") or ""),
        tls=TlsSpec(
            enabled=bool(tls.get("enabled", False)),
            ca=tls.get("ca"),
            verify_server_cert=bool(tls.get("verifyServerCert", True)),
        ),
        kubeconfig=data.get("kubeconfig"),
        kube_context=data.get("kubeContext"),
        namespace=data.get("namespace"),
        service=data.get("service"),
        connect_timeout=int(data.get("connectTimeout") or DEFAULT_CONNECT_TIMEOUT),
    )


def redact(text: str, secrets: list[str]) -> str:
    """``text`` with every secret (and its repr-escaped form) replaced by ``***``."""
    for secret in sorted(secrets, key=len, reverse=True):
        if len(secret) < 3:
            continue
        for form in {secret, repr(secret)[1:-1], secret.replace("'", "\\'"), secret.replace("'", "''")}:
            text = text.replace(form, "***")
    return text


# -- TLS ---------------------------------------------------------------------------------------
class _Connection(pymysql.connections.Connection):
    """PyMySQL's connection, with the process's shared SSL context when TLS is not required.

    Without ``ssl`` PyMySQL builds ``_create_ssl_ctx({})`` per connection, a fresh default context
    that loads the system CA bundle, to offer TLS opportunistically (unverified). Same behaviour,
    one context (components/sql/tls.py)."""

    def _create_ssl_ctx(self, sslp: Any) -> ssl.SSLContext:
        if isinstance(sslp, dict) and not sslp:
            return opportunistic_context()
        context: ssl.SSLContext = super()._create_ssl_ctx(sslp)  # type: ignore[misc]  # not in the stubs
        return context


# -- port-forward --------------------------------------------------------------------------------
class StreamSocket(Protocol):
    def recv(self, size: int) -> bytes: ...
    def sendall(self, data: bytes) -> None: ...
    def fileno(self) -> int: ...
    def close(self) -> None: ...


StreamOpener = Callable[[], StreamSocket]


def _pump(client: socket.socket, remote: StreamSocket) -> None:
    """Copy bytes both ways until either side closes."""
    try:
        sockets: list[Any] = [client, remote]
        while True:
            readable, _, broken = select.select(sockets, [], sockets, 300)
            if broken:
                return
            if not readable:
                continue  # idle admin connection; PyMySQL's own timeouts govern it
            for sock in readable:
                data = sock.recv(65536)
                if not data:
                    return
                (remote if sock is client else client).sendall(data)
    except OSError:
        return
    finally:
        for sock in (client, remote):
            with contextlib.suppress(OSError):
                sock.close()


class LocalForwarder:
    """A loopback listener; each accepted client gets its own stream from ``opener``.

    ``opener`` is the seam: the real one opens a Kubernetes port-forward websocket,
    tests pass one that dials a local server.
    """

    def __init__(self, opener: StreamOpener, description: str) -> None:
        self._opener = opener
        self._description = description
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(16)
        self.port = int(self._listener.getsockname()[1])
        self.last_error: str | None = None
        self._closed = False
        self._thread = threading.Thread(target=self._serve, name=f"sql-port-forward {description}", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            try:
                remote = self._opener()
            except Exception as exc:
                self.last_error = f"{type(exc).__name__}: {exc}"
                client.close()
                continue
            threading.Thread(target=_pump, args=(client, remote), daemon=True).start()

    def close(self) -> None:
        self._closed = True
        with contextlib.suppress(OSError):
            self._listener.close()


def _is_ready(pod: Any) -> bool:
    if getattr(pod.metadata, "deletion_timestamp", None):
        return False
    if getattr(pod.status, "phase", None) != "Running":
        return False
    return any(c.type == "Ready" and c.status == "True" for c in (pod.status.conditions or []))


def pick_pod(pods: list[Any]) -> Any | None:
    """The Ready, non-terminating pod to forward to (by name, so the choice is stable)."""
    ready = sorted((p for p in pods if _is_ready(p)), key=lambda p: str(p.metadata.name))
    return ready[0] if ready else None


def resolve_target_port(service: Any, service_port: int, pod: Any) -> int:
    """The container port behind ``service_port`` (numeric or named targetPort)."""
    for port in service.spec.ports or []:
        if port.port != service_port:
            continue
        target = port.target_port
        if target is None:
            return service_port
        if isinstance(target, int) or (isinstance(target, str) and target.isdigit()):
            return int(target)
        for container in pod.spec.containers or []:
            for cport in container.ports or []:
                if cport.name == target:
                    return int(cport.container_port)
        raise SQLConnectionError(f"pod {pod.metadata.name} has no container port named {target!r}")
    raise SQLConnectionError(f"service {service.metadata.name} has no port {service_port}")


def _kube_api(spec: ConnectionSpec) -> tuple[Any, str]:
    import yaml
    from kubernetes import client, config

    namespace = spec.namespace
    if spec.kubeconfig and ("\n" in spec.kubeconfig or spec.kubeconfig.lstrip().startswith("apiVersion")):
        data = yaml.safe_load(spec.kubeconfig)
        api_client = config.new_client_from_config_dict(data, context=spec.kube_context)  # type: ignore[no-untyped-call]
        if namespace is None:
            namespace = _context_namespace(data, spec.kube_context)
    elif spec.kubeconfig or os.path.exists(os.path.expanduser("~/.kube/config")) or os.environ.get("KUBECONFIG"):
        api_client = config.new_client_from_config(  # type: ignore[no-untyped-call]
            config_file=spec.kubeconfig, context=spec.kube_context
        )
        if namespace is None:
            contexts, active = config.list_kube_config_contexts(  # type: ignore[no-untyped-call]
                config_file=spec.kubeconfig
            )
            chosen = next((c for c in contexts if c["name"] == spec.kube_context), active)
            namespace = (chosen or {}).get("context", {}).get("namespace")
    else:
        config.load_incluster_config()  # type: ignore[no-untyped-call]
        api_client = client.ApiClient()
    return client.CoreV1Api(api_client), namespace or "default"


def _context_namespace(data: Mapping[str, Any], context: str | None) -> str | None:
    name = context or data.get("current-context")
    for entry in data.get("contexts") or []:
        if entry.get("name") == name:
            ns = (entry.get("context") or {}).get("namespace")
            return str(ns) if ns else None
    return None


class KubernetesStreamOpener:
    """Opens a port-forward stream to the Ready pod behind ``spec.service`` via the API server."""

    def __init__(self, spec: ConnectionSpec) -> None:
        self._spec = spec
        self._core, self.namespace = _kube_api(spec)
        self.service = spec.service or spec.host

    def resolve(self) -> tuple[str, int]:
        """(pod name, container port) the Service currently routes ``spec.port`` to."""
        where = f"service {self.namespace}/{self.service}"
        try:
            service = self._core.read_namespaced_service(self.service, self.namespace)
            selector = ",".join(f"{k}={v}" for k, v in sorted((service.spec.selector or {}).items()))
            if not selector:
                raise SQLConnectionError(f"{where} has no selector")
            pods = self._core.list_namespaced_pod(self.namespace, label_selector=selector).items
        except SQLConnectionError:
            raise
        except Exception as exc:
            raise SQLConnectionError(f"cannot resolve {where}: {type(exc).__name__}: {str(exc)[:300]}") from None
        pod = pick_pod(pods)
        if pod is None:
            raise SQLConnectionError(f"no Ready pod behind {where}")
        return str(pod.metadata.name), resolve_target_port(service, self._spec.port, pod)

    def __call__(self) -> StreamSocket:
        from kubernetes.stream import portforward

        pod, target = self.resolve()  # per connection: a reconnect follows a failover
        forward = portforward(self._core.connect_get_namespaced_pod_portforward, pod, self.namespace, ports=str(target))
        sock: StreamSocket = forward.socket(target)
        return sock


def kubernetes_opener(spec: ConnectionSpec) -> KubernetesStreamOpener:
    return KubernetesStreamOpener(spec)


_FORWARDERS: dict[str, LocalForwarder] = {}
_FORWARDERS_LOCK = threading.Lock()


def forwarder_for(spec: ConnectionSpec, opener: StreamOpener | None = None) -> LocalForwarder:
    """The process-wide loopback forwarder for ``spec`` (shared by all threads)."""
    key = spec.cache_key()
    with _FORWARDERS_LOCK:
        existing = _FORWARDERS.get(key)
        if existing is None:
            existing = LocalForwarder(opener or kubernetes_opener(spec), spec.describe())
            _FORWARDERS[key] = existing
        return existing


# -- connections -------------------------------------------------------------------------------
_LOCAL = threading.local()
StreamOpenerFactory = Callable[[ConnectionSpec], StreamOpener]
# Tests replace this to prove the port-forward path against a local server.
stream_opener_factory: StreamOpenerFactory | None = None


def _connections() -> dict[str, pymysql.connections.Connection[Any]]:
    cache: dict[str, pymysql.connections.Connection[Any]] | None = getattr(_LOCAL, "connections", None)
    if cache is None:
        cache = {}
        _LOCAL.connections = cache
    return cache


def _last_used() -> dict[str, float]:
    stamps: dict[str, float] | None = getattr(_LOCAL, "last_used", None)
    if stamps is None:
        stamps = {}
        _LOCAL.last_used = stamps
    return stamps


def _open(spec: ConnectionSpec) -> pymysql.connections.Connection[Any]:
    host, port = spec.host, spec.port
    forwarder: LocalForwarder | None = None
    try:
        if spec.mode == "portForward":
            if stream_opener_factory is not None:
                forwarder = forwarder_for(spec, stream_opener_factory(spec))
            else:
                with _FORWARDERS_LOCK:
                    known = _FORWARDERS.get(spec.cache_key())
                if known is None:
                    # Resolve once up front so a bad kubeconfig, Service or pod fails with a direct message.
                    opener = kubernetes_opener(spec)
                    opener.resolve()
                    forwarder = forwarder_for(spec, opener)
                else:
                    forwarder = known
            host, port = "127.0.0.1", forwarder.port
        conn = _Connection(
            host=host,
            port=port,
            user=spec.user,
            # PyMySQL would encode a str as latin-1; servers hash what `IDENTIFIED BY` received over
            # a utf8mb4 session, i.e. the UTF-8 bytes, as PHP and the mariadb CLI send them.
            password=spec.password.encode("utf-8"),
            charset="utf8mb4",
            autocommit=True,
            connect_timeout=spec.connect_timeout,
            read_timeout=DEFAULT_READ_TIMEOUT,
            write_timeout=DEFAULT_READ_TIMEOUT,
            ssl=verified_context(spec.tls) if spec.tls.enabled else None,
            init_command=f"SET SESSION lock_wait_timeout={LOCK_WAIT_TIMEOUT}",
        )
    except pymysql.err.MySQLError as exc:
        detail = _describe_error(exc)
        if forwarder is not None and forwarder.last_error:
            detail += f" (port-forward: {forwarder.last_error})"
        raise SQLConnectionError(
            redact(
                f"cannot connect to the MySQL/MariaDB server ({spec.describe()}) as user {spec.user!r}: {detail}",
                spec.secrets(),
            )
        ) from None
    except (OSError, ssl.SSLError, ValueError) as exc:
        raise SQLConnectionError(
            redact(
                f"cannot connect to the MySQL/MariaDB server ({spec.describe()}): {type(exc).__name__}: {exc}",
                spec.secrets(),
            )
        ) from None
    except SQLConnectionError as exc:
        raise SQLConnectionError(
            redact(f"cannot connect to the MySQL/MariaDB server ({spec.describe()}): {exc}", spec.secrets())
        ) from None
    except Exception as exc:
        raise SQLConnectionError(
            redact(
                f"cannot connect to the MySQL/MariaDB server ({spec.describe()}): "
                f"{type(exc).__name__}: {str(exc)[:500]}",
                spec.secrets(),
            )
        ) from None
    return conn


def _describe_error(exc: pymysql.err.MySQLError) -> str:
    if len(exc.args) >= 2:
        code, message = exc.args[0], exc.args[1]
        if code == 1045:
            return f"access denied (error 1045; wrong admin user or password): {message}"
        if code in (2003, 2013):
            return f"server unreachable (error {code}): {message}"
        return f"error {code}: {message}"
    return f"{type(exc).__name__}: {exc}"


def get_connection(spec: ConnectionSpec) -> pymysql.connections.Connection[Any]:
    """This thread's open connection for ``spec``; reconnects once if the cached one died."""
    cache = _connections()
    stamps = _last_used()
    key = spec.cache_key()
    now = time.monotonic()
    conn = cache.get(key)
    if conn is not None:
        try:
            if not conn.open:
                raise pymysql.err.InterfaceError(0, "closed")
            if now - stamps.get(key, 0.0) > PING_AFTER_IDLE_S:
                conn.ping(reconnect=False)
            stamps[key] = now
            return conn
        except pymysql.err.MySQLError:
            cache.pop(key, None)
            with contextlib.suppress(pymysql.err.Error):
                conn.close()
    conn = _open(spec)
    cache[key] = conn
    stamps[key] = time.monotonic()
    return conn


def discard_connection(spec: ConnectionSpec) -> None:
    """Drop this thread's cached connection (after an error that may have broken it)."""
    conn = _connections().pop(spec.cache_key(), None)
    if conn is not None:
        with contextlib.suppress(Exception):  # already broken
            conn.close()


def close_all() -> None:
    """Close this thread's connections and every forwarder (tests; the process exit does it too)."""
    for key in list(_connections()):
        conn = _connections().pop(key)
        with contextlib.suppress(Exception):
            conn.close()
    with _FORWARDERS_LOCK:
        for forwarder in _FORWARDERS.values():
            forwarder.close()
        _FORWARDERS.clear()
