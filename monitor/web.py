"""The HTTP endpoints: /metrics, the status page at /, /runbooks, /-/healthy, /-/reload.

The standard library's HTTP parser on a server that bounds what every client can take:

- a fixed pool of worker threads with a bounded queue (a burst of connections beyond it is closed
  at once, counted in one rate-limited log line) instead of a thread per connection, and a listen
  backlog that absorbs a burst;
- a limit per client address (16 connections served or waiting), so one hostile or broken host
  cannot take the workers that Prometheus needs;
- one deadline per request for the TLS handshake, the request line, headers and body together
  (a byte every few seconds does not keep a connection), and a deadline for writing the answer;
- strict request framing: `Content-Length` must be digits (one value), a body above 64 KiB is
  refused with 413 and the connection closed (never parsed as the next request), a
  `Transfer-Encoding` body is refused (nothing here takes one);
- one log line per event (a client that disconnects is a debug line, never a traceback).

Rendering runs in these threads, so a large /metrics never stalls the event loop that times echo
replies. `--web.config.file` (monitor/web_config.py) adds TLS, basic auth and headers to every
endpoint, /-/healthy included (exporter-toolkit protects everything it serves); it can be swapped
while serving (`set_config`), connections and requests use the one current when they start.
Lifecycle endpoints (POST/PUT /-/reload) answer only with `--web.enable-lifecycle`, like
Prometheus: otherwise 403.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import gzip
import io
import logging
import re
import socket
import socketserver
import ssl
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from urllib.parse import urlsplit

from monitor import runbooks, status_page
from monitor.exposition import CONTENT_TYPE, Exposition
from monitor.logs import event
from monitor.store import ResultStore
from monitor.web_config import WebConfig, peer_has_allowed_san

log = logging.getLogger(__name__)

ReloadHandler = Callable[[], tuple[bool, str]]

TEXT = "text/plain; charset=utf-8"
HTML = "text/html; charset=utf-8"
# On every answer; pages with inline CSS widen the CSP by exactly their stylesheet's hash. The
# operator's `http_server_config.headers` win over these.
DEFAULT_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
}
_CONTENT_LENGTH = re.compile(r"[0-9]{1,18}")
_TLS_HANDSHAKE = 0x16  # first byte of a TLS record carrying a handshake


@dataclass(frozen=True)
class Limits:
    """What one client may take. The defaults serve Prometheus, a few browsers and curl."""

    workers: int = 32  # connections served at the same time
    queue: int = 128  # connections waiting for a worker; beyond that they are closed
    per_client: int = 16  # connections of one client address served or waiting at the same time
    backlog: int = 1024  # the kernel's accept queue (capped by net.core.somaxconn)
    request_timeout: float = 5.0  # TLS handshake; request line, headers and body together
    write_timeout: float = 30.0  # writing one answer
    max_body: int = 64 * 1024


class _DeadlineReader(io.RawIOBase):
    """The socket as a raw stream whose every receive waits only until `deadline`: a timeout per
    receive alone lets a client keep a worker forever with one byte every few seconds."""

    def __init__(self, sock: socket.socket) -> None:
        super().__init__()
        self.sock = sock
        self.deadline = float("inf")
        self.received = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[override]
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("request not received in time")
        self.sock.settimeout(remaining)
        count = self.sock.recv_into(buffer)
        self.received += count
        return count


class _Writer(io.BufferedIOBase):
    def __init__(self, sock: socket.socket, timeout: float) -> None:
        super().__init__()
        self.sock = sock
        self.timeout = timeout

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:  # type: ignore[override]
        self.sock.settimeout(self.timeout)
        self.sock.sendall(data)
        with memoryview(data) as view:
            return view.nbytes


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"
    server_version = "schoolnet-monitor"
    sys_version = ""

    # -- connection and framing ------------------------------------------------------------------

    def setup(self) -> None:
        self.connection = self.request
        self._reader = _DeadlineReader(self.connection)
        self.rfile = io.BufferedReader(self._reader, 16384)
        self.wfile = _Writer(self.connection, self.server.limits.write_timeout)
        self._extra: dict[str, str] = {}
        self._config = self.server.web_config
        self._linger = False

    def finish(self) -> None:
        if self._linger:
            self._drain()
        self.rfile.close()

    def _drain(self) -> None:
        """After refusing a request whose body was not read: stop sending, then read (and drop)
        what the client still sends for a moment. Closing with unread data makes the kernel send
        a reset, which can destroy the error answer before the client reads it."""
        deadline = time.monotonic() + 1.0
        try:
            self.connection.shutdown(socket.SHUT_WR)
            for _ in range(64):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self.connection.settimeout(remaining)
                if not self.connection.recv(65536):
                    break
        except OSError:
            pass

    def handle(self) -> None:
        try:
            super().handle()
        except (OSError, ssl.SSLError) as exc:  # the client went away (broken pipe, reset)
            event(
                log,
                logging.DEBUG,
                "http client disconnected",
                client=self.client_address[0],
                error=type(exc).__name__,
            )

    def handle_one_request(self) -> None:
        self._reader.deadline = time.monotonic() + self.server.limits.request_timeout
        self._extra = {}
        self._config = self.server.web_config
        self.raw_requestline = b""
        self.requestline = ""
        started = self._reader.received
        try:
            self.raw_requestline = self.rfile.readline(65537)
            if not self.raw_requestline:
                self.close_connection = True
                return
            if len(self.raw_requestline) > 65536:
                self.request_version = "HTTP/1.1"
                self.command = ""
                self.send_error(414)
                return
            if not self.parse_request() or not self._read_body():
                return
            self._dispatch()
            self.wfile.flush()
        except TimeoutError:
            self.close_connection = True
            if self.raw_requestline or self._reader.received > started:
                event(
                    log,
                    logging.INFO,
                    "http request timed out",
                    client=self.client_address[0],
                    request=self.requestline[:200],
                )

    def handle_expect_100(self) -> bool:
        if not self._length_ok():
            return False
        self.wfile.write(f"{self.protocol_version} 100 Continue\r\n\r\n".encode())
        return True

    def _length_ok(self) -> bool:
        """Checks Content-Length and Transfer-Encoding; answers the error itself."""
        self._linger = True  # until the framing is known to be good
        if self.headers.get_all("Transfer-Encoding"):
            self.send_error(501, "request bodies with Transfer-Encoding are not supported")
            return False
        values = self.headers.get_all("Content-Length") or []
        if not values:
            self._length = 0
            return True
        distinct = {v.strip() for v in values}
        if len(distinct) != 1 or not _CONTENT_LENGTH.fullmatch(values[0].strip()):
            self.send_error(400, "invalid Content-Length")
            return False
        self._length = int(values[0])
        if self._length > self.server.limits.max_body:
            self.send_error(413, f"request body above {self.server.limits.max_body} bytes")
            return False
        self._linger = False
        return True

    def _read_body(self) -> bool:
        """Reads (and discards) the whole body, so the next request starts where it should."""
        if not self._length_ok():
            return False
        remaining = self._length
        while remaining:
            chunk = self.rfile.read(min(remaining, 65536))
            if not chunk:
                self.close_connection = True
                return False
            remaining -= len(chunk)
        return True

    # -- answers ---------------------------------------------------------------------------------

    def _dispatch(self) -> None:
        if self.command not in ("GET", "HEAD", "POST", "PUT"):
            self.send_error(501, f"unsupported method ({self.command})")
            return
        auth = self._config.auth
        if auth is not None and not self._authorized(auth):
            self._extra["WWW-Authenticate"] = "Basic"
            self._send(401, b"Unauthorized\n", TEXT)
            return
        path = urlsplit(self.path).path
        if path == "/-/reload":
            self._reload()
            return
        if self.command not in ("GET", "HEAD"):
            known = path in ("/", "/metrics", "/runbooks", "/-/healthy", "/-/ready")
            if known:
                self._extra["Allow"] = "GET, HEAD"
            self._send(405 if known else 404, b"method not allowed\n", TEXT)
            return
        if path == "/metrics":
            self._send(200, self.server.exposition.render(), CONTENT_TYPE, compress=True)
        elif path in ("/-/healthy", "/-/ready"):
            # A comment line of the text exposition format: Prometheus' schoolnet-health job
            # scrapes this as zero samples with `up` 1 (a bare "OK" would fail to parse).
            self._send(200, b"# OK\n", TEXT)
        elif path == "/":
            self._extra["Content-Security-Policy"] = status_page.CONTENT_SECURITY_POLICY
            body = status_page.render(
                self.server.store, self.server.exposition.health.reload
            ).encode()
            self._send(200, body, HTML, compress=True)
        elif path == "/runbooks":
            self._extra["Content-Security-Policy"] = runbooks.CONTENT_SECURITY_POLICY
            self._send(200, runbooks.page(), HTML, compress=True)
        else:
            self._send(404, b"not found\n", TEXT)

    def _reload(self) -> None:
        if self.command in ("GET", "HEAD"):
            self._extra["Allow"] = "POST, PUT"
            self._send(405, b"Only POST or PUT requests allowed.\n", TEXT)
        elif not self.server.lifecycle:
            self._send(403, b"Lifecycle API is not enabled.\n", TEXT)
        else:
            ok, message = self.server.reload()
            self._send(200 if ok else 400, (message.rstrip() + "\n").encode(), TEXT)

    def _authorized(self, auth) -> bool:
        scheme, _, value = (self.headers.get("Authorization") or "").partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            decoded = base64.b64decode(value.strip(), validate=True)
        except (binascii.Error, ValueError):
            return False
        user, sep, password = decoded.partition(b":")
        return bool(sep) and auth.check(user.decode("utf-8", "surrogateescape"), password)

    def _send(self, status: int, body: bytes, content_type: str, compress: bool = False) -> None:
        if compress and "gzip" in self.headers.get("Accept-Encoding", "") and len(body) > 512:
            body = gzip.compress(body, compresslevel=1)
            self._extra["Content-Encoding"] = "gzip"
            self._extra["Vary"] = "Accept-Encoding"
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def end_headers(self) -> None:
        for name, value in {**DEFAULT_HEADERS, **self._extra, **self._config.headers}.items():
            self.send_header(name, value)
        super().end_headers()

    # -- logs: one line per event ----------------------------------------------------------------

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        event(
            log,
            logging.DEBUG,
            "http request",
            client=self.client_address[0],
            request=self.requestline[:200],
            status=getattr(code, "value", code),
        )

    def log_error(self, format: str, *args: object) -> None:
        event(
            log,
            logging.INFO,
            "http request refused",
            client=self.client_address[0],
            reason=(format % args)[:200],
        )

    def log_message(self, format: str, *args: object) -> None:
        event(log, logging.DEBUG, (format % args)[:200], client=self.client_address[0])


class _Server(socketserver.TCPServer):
    """Accepts on one thread, serves on a bounded pool (see the module docstring)."""

    allow_reuse_address = True

    def __init__(
        self,
        address: tuple[str, int],
        family: socket.AddressFamily,
        limits: Limits,
        web_config: WebConfig,
    ) -> None:
        self.address_family = family
        self.request_queue_size = limits.backlog
        self.limits = limits
        self.web_config = web_config
        self._pool = ThreadPoolExecutor(limits.workers, thread_name_prefix="http")
        self._slots = threading.BoundedSemaphore(limits.workers + limits.queue)
        self._refused = 0
        self._refused_logged: dict[str, float] = {}
        self._active: set[socket.socket] = set()
        self._active_lock = threading.Lock()
        self._per_client: dict[str, int] = {}
        super().__init__(address, _Handler)  # calls server_close() if it cannot bind

    exposition: Exposition
    store: ResultStore
    reload: ReloadHandler
    lifecycle: bool

    def process_request(self, request, client_address) -> None:  # type: ignore[override]
        client = client_address[0]
        with self._active_lock:
            crowded = self._per_client.get(client, 0) >= self.limits.per_client
            if not crowded:
                self._per_client[client] = self._per_client.get(client, 0) + 1
        if crowded or not self._slots.acquire(blocking=False):
            if not crowded:
                self._release_client(client)
            self.shutdown_request(request)
            self._log_refused(client, "this client's connections" if crowded else "every worker")
            return
        try:
            self._pool.submit(self._serve, request, client_address)
        except RuntimeError:  # shutting down
            self._slots.release()
            self._release_client(client)
            self.shutdown_request(request)

    def _release_client(self, client: str) -> None:
        with self._active_lock:
            left = self._per_client.pop(client, 1) - 1
            if left > 0:
                self._per_client[client] = left

    def _serve(self, request: socket.socket, client_address) -> None:
        with self._active_lock:
            self._active.add(request)
        raw = request
        try:
            request = self._secure(request, client_address)
            if request is not None and request is not raw:  # TLS: the wrapper owns the socket now
                with self._active_lock:
                    self._active.discard(raw)
                    self._active.add(request)
            if request is not None:
                self.finish_request(request, client_address)
        except Exception:
            self.handle_error(request, client_address)
        finally:
            if request is not None:
                self.shutdown_request(request)
            with self._active_lock:
                self._active.discard(raw)
                self._active.discard(request)
            self._release_client(client_address[0])
            self._slots.release()

    def _secure(self, sock: socket.socket, client_address) -> socket.socket | None:
        """The connection as TLS when the web config says so (handshake within the request
        deadline); None (and closed) when the client fails it."""
        config = self.web_config
        if config.tls is None:
            return sock
        sock.settimeout(self.limits.request_timeout)
        try:
            first = sock.recv(1, socket.MSG_PEEK)
            if first and first[0] != _TLS_HANDSHAKE:
                # plain HTTP to the TLS port: say so, as Go's servers do
                sock.sendall(
                    b"HTTP/1.0 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\n"
                    b"Connection: close\r\n\r\nClient sent an HTTP request to an HTTPS server.\n"
                )
                event(log, logging.INFO, "http request to the TLS port", client=client_address[0])
                sock.close()
                return None
            tls = config.tls.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        except OSError as exc:
            event(
                log,
                logging.DEBUG,
                "http client disconnected",
                client=client_address[0],
                error=type(exc).__name__,
            )
            sock.close()
            return None
        try:
            tls.do_handshake()
            if config.client_allowed_sans is not None and not peer_has_allowed_san(
                tls.getpeercert() or {}, config.client_allowed_sans
            ):
                raise ssl.SSLError("client certificate has none of client_allowed_sans")
        except (ssl.SSLError, OSError) as exc:
            reason = getattr(exc, "reason", None) or str(exc) or type(exc).__name__
            event(
                log,
                logging.INFO,
                "tls handshake failed",
                client=client_address[0],
                reason=str(reason)[:200],
            )
            tls.close()
            return None
        return tls

    def _log_refused(self, client: str, busy: str) -> None:
        """One line per 10 s and kind at most, however hard a flood hammers."""
        self._refused += 1
        now = time.monotonic()
        if now - self._refused_logged.get(busy, -10.0) >= 10:
            self._refused_logged[busy] = now
            event(
                log,
                logging.WARNING,
                "http connection refused: busy",
                client=client,
                busy=busy,
                refused_total=self._refused,
            )

    def handle_error(self, request, client_address) -> None:  # type: ignore[override]
        exc = sys.exc_info()[1]
        log.error(
            "http handler failed",
            exc_info=True,
            extra={"fields": {"client": client_address[0], "error": repr(exc)[:200]}},
        )

    def server_close(self) -> None:
        """Stops listening and ends the connections being served (a worker waiting for a slow
        client would otherwise hold the process' exit until its deadline)."""
        super().server_close()
        with self._active_lock:
            for sock in self._active:
                with contextlib.suppress(OSError):
                    socket.socket.shutdown(sock, socket.SHUT_RDWR)
        self._pool.shutdown(wait=False, cancel_futures=True)


class WebServer:
    def __init__(
        self,
        host: str,
        port: int,
        exposition: Exposition,
        store: ResultStore,
        reload: ReloadHandler,
        web_config: WebConfig | None = None,
        lifecycle: bool = False,
        limits: Limits | None = None,
    ) -> None:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.httpd = _Server((host, port), family, limits or Limits(), web_config or WebConfig())
        self.httpd.exposition = exposition
        self.httpd.store = store
        self.httpd.reload = reload
        self.httpd.lifecycle = lifecycle
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="http", daemon=True)

    @property
    def address(self) -> tuple[str, int]:
        host, port = self.httpd.server_address[:2]
        return str(host), int(port)

    @property
    def config(self) -> WebConfig:
        return self.httpd.web_config

    def set_config(self, web_config: WebConfig) -> None:
        """New connections and requests use `web_config` from now on."""
        self.httpd.web_config = web_config

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
