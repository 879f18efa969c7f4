"""The HTTP endpoints: /metrics, /-/healthy, /-/reload (POST) and the status page at /.

Served from threads (stdlib ThreadingHTTPServer) so that rendering a large /metrics never stalls
the event loop that times echo replies. A reload request is handed to the event loop and answered
with its outcome.
"""

from __future__ import annotations

import gzip
import logging
import socket
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from monitor import status_page
from monitor.exposition import CONTENT_TYPE, Exposition
from monitor.logs import event
from monitor.store import ResultStore

log = logging.getLogger(__name__)

ReloadHandler = Callable[[], tuple[bool, str]]


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"
    server_version = "schoolnet-monitor"

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if path == "/metrics":
            self._send(200, self.server.exposition.render(), CONTENT_TYPE, compress=True)
        elif path in ("/-/healthy", "/-/ready"):
            # A comment line of the text exposition format: Prometheus' schoolnet-health job
            # scrapes this as zero samples with `up` 1 (a bare "OK" would fail to parse).
            self._send(200, b"# OK\n", "text/plain; charset=utf-8")
        elif path == "/":
            body = status_page.render(self.server.store).encode()
            self._send(200, body, "text/html; charset=utf-8", compress=True)
        elif path == "/-/reload":
            self._send(405, b"use POST\n", "text/plain; charset=utf-8", allow="POST")
        else:
            self._send(404, b"not found\n", "text/plain; charset=utf-8")

    def do_HEAD(self) -> None:
        self.do_GET()

    def do_POST(self) -> None:
        path = self.path.split("?", 1)[0]
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(min(length, 1 << 16))
        if path != "/-/reload":
            self._send(404, b"not found\n", "text/plain; charset=utf-8")
            return
        ok, message = self.server.reload()
        self._send(
            200 if ok else 400, (message.rstrip() + "\n").encode(), "text/plain; charset=utf-8"
        )

    def _send(
        self,
        status: int,
        body: bytes,
        content_type: str,
        compress: bool = False,
        allow: str | None = None,
    ) -> None:
        if compress and "gzip" in self.headers.get("Accept-Encoding", "") and len(body) > 512:
            body = gzip.compress(body, compresslevel=1)
            encoding = "gzip"
        else:
            encoding = None
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        if encoding:
            self.send_header("Content-Encoding", encoding)
            self.send_header("Vary", "Accept-Encoding")
        if allow:
            self.send_header("Allow", allow)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        event(
            log,
            logging.DEBUG,
            "http request",
            client=self.client_address[0],
            request=self.requestline,
        )


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    exposition: Exposition
    store: ResultStore
    reload: ReloadHandler


class _Server6(_Server):
    address_family = socket.AF_INET6


class WebServer:
    def __init__(
        self,
        host: str,
        port: int,
        exposition: Exposition,
        store: ResultStore,
        reload: ReloadHandler,
    ) -> None:
        server_class = _Server6 if ":" in host else _Server
        self.httpd = server_class((host, port), _Handler)
        self.httpd.exposition = exposition
        self.httpd.store = store
        self.httpd.reload = reload
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="http", daemon=True)

    @property
    def address(self) -> tuple[str, int]:
        host, port = self.httpd.server_address[:2]
        return str(host), int(port)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
