"""The collector's HTTP server against hostile and careless clients (issue 15's HTTP findings), with
real sockets on loopback against a real `monitor run`: deadlines, bounded workers, the listen
backlog, strict body framing, quiet disconnects, coalesced reloads, security headers, lifecycle.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import re
import socket
import struct
import subprocess
import time
from pathlib import Path

import pytest

from tests.collector_proc import CollectorProcess

TARGETS = 300  # enough rows that the status page is larger than a socket buffer


def write_targets(path, extra: int = 0) -> None:
    lines = [
        "defaults:",
        "  ping: {interval: 60s, count: 1, timeout: 500ms}",
        "members:",
        "  - id: coop",
        "    schools:",
        "      - id: school-a",
        "        targets:",
    ]
    for i in range(TARGETS + extra):
        lines.append(
            f"          - {{id: t{i}, role: ap, address: 127.0.{3 + i // 250}.{1 + i % 250}, "
            "snmp: false}"
        )
    path.write_text("\n".join(lines) + "\n")


@pytest.fixture(scope="module")
def collector(tmp_path_factory):
    config = tmp_path_factory.mktemp("web") / "targets.yaml"
    write_targets(config)
    proc = CollectorProcess(
        config, extra_args=["--web.enable-lifecycle", "--watch-interval", "0"]
    ).start()
    try:
        yield proc
    finally:
        proc.stop()


def connect(proc: CollectorProcess, source: str = "127.0.0.1") -> socket.socket:
    return socket.create_connection(
        ("127.0.0.1", proc.port), timeout=10, source_address=(source, 0)
    )


def read_until_closed(sock: socket.socket, limit: float) -> tuple[bytes, float]:
    """Everything the server sends until it closes (or `limit` seconds pass); and how long."""
    start = time.monotonic()
    data = b""
    sock.settimeout(0.5)
    while time.monotonic() - start < limit:
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            continue
        except ConnectionResetError:
            break
        if not chunk:
            break
        data += chunk
    return data, time.monotonic() - start


def threads_of(proc: CollectorProcess) -> int:
    status = Path(f"/proc/{proc.process.pid}/status").read_text()
    return int(re.search(r"^Threads:\s+(\d+)", status, re.M).group(1))


def test_a_request_that_trickles_in_is_cut_at_its_deadline(collector):
    with connect(collector) as sock:
        sock.sendall(b"GET /metrics HTTP/1.1\r\nHost: a\r\n")
        start = time.monotonic()
        closed = False
        while time.monotonic() - start < 12:
            try:
                sock.sendall(b"X")  # one byte a second: each receive alone would never time out
            except OSError:
                closed = True
                break
            sock.settimeout(1)
            try:
                if sock.recv(1024) == b"":
                    closed = True
                    break
            except TimeoutError:
                pass
            except OSError:
                closed = True
                break
        assert closed, "the server kept a trickling request open for 12 s"
        assert time.monotonic() - start < 8


def hold_half_open(proc: CollectorProcess, sources: list[str], count: int) -> list[socket.socket]:
    held = []
    for i in range(count):
        sock = connect(proc, sources[i % len(sources)])
        held.append(sock)
        with contextlib.suppress(OSError):  # beyond the limits the server closes at once
            sock.sendall(b"GET /metrics HTTP/1.1\r\n")  # and never the rest
    return held


def test_half_open_requests_take_no_thread_each_and_the_server_recovers(collector):
    before = threads_of(collector)
    held = []
    try:
        held = hold_half_open(collector, [f"127.0.9.{i}" for i in range(1, 31)], 300)
        time.sleep(1)
        assert threads_of(collector) <= before + 40  # a bounded pool, not a thread per request
    finally:
        for sock in held:
            sock.close()
    # the held requests are gone by their deadline at the latest; everyone else is served again
    collector.wait_for(lambda: collector.get("/-/healthy")[0] == 200, timeout=15)


def test_one_host_holding_connections_does_not_starve_the_others(collector):
    held = hold_half_open(collector, ["127.0.0.5"], 100)
    try:
        time.sleep(0.5)
        start = time.monotonic()
        assert collector.get("/-/healthy")[0] == 200  # from 127.0.0.1
        assert time.monotonic() - start < 2
    finally:
        for sock in held:
            sock.close()
    assert re.search(r'msg="http connection refused: busy" client=127.0.0.5', collector.log())


def test_listen_backlog_absorbs_a_burst(collector):
    out = subprocess.run(
        ["ss", "-ltnH", f"sport = :{collector.port}"], capture_output=True, text=True, check=True
    ).stdout.split()
    # for a listening socket, ss shows the backlog in Send-Q (the third column)
    assert int(out[2]) >= 128, out


def test_a_body_beyond_64k_is_refused_not_parsed_as_the_next_request(collector):
    smuggled = b"GET /metrics HTTP/1.1\r\nHost: a\r\n\r\n"
    body = b"x" * 65536 + smuggled
    with connect(collector) as sock:
        sock.sendall(
            b"POST /-/reload HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\n\r\n" % len(body) + body
        )
        data, _ = read_until_closed(sock, 10)
    assert data.startswith(b"HTTP/1.1 413"), data[:200]
    assert b"schoolnet_" not in data and data.count(b"HTTP/1.") == 1


@pytest.mark.parametrize("length", [b"-1", b"+5", b"1e3", b"5, 6", b"\xd9\xa1"])
def test_an_invalid_content_length_is_refused_at_once(collector, length):
    with connect(collector) as sock:
        sock.sendall(
            b"POST /-/reload HTTP/1.1\r\nHost: a\r\nContent-Length: " + length + b"\r\n\r\n"
        )
        data, took = read_until_closed(sock, 10)
    assert data.startswith(b"HTTP/1.1 400"), data[:200]
    assert took < 3  # answered, not read until the client gives up


def test_chunked_request_body_is_refused(collector):
    with connect(collector) as sock:
        sock.sendall(
            b"POST /-/reload HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"5\r\nhello\r\n0\r\n\r\nGET /metrics HTTP/1.1\r\nHost: a\r\n\r\n"
        )
        data, _ = read_until_closed(sock, 10)
    assert data.startswith(b"HTTP/1.1 501") and data.count(b"HTTP/1.") == 1


def test_keep_alive_serves_several_requests_on_one_connection(collector):
    with connect(collector) as sock:
        sock.sendall(b"GET /-/healthy HTTP/1.1\r\nHost: a\r\n\r\n" * 2)
        sock.sendall(b"GET /-/healthy HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
        data, _ = read_until_closed(sock, 10)
    assert data.count(b"HTTP/1.1 200 OK") == 3


def test_clients_that_vanish_make_one_quiet_line_not_a_traceback(collector):
    for i in range(40):
        with connect(collector, f"127.0.8.{1 + i}") as sock:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
            # close with a reset at once: the server's write of the page then fails
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    assert collector.get("/-/healthy")[0] == 200
    time.sleep(0.5)
    log = collector.log()
    assert "Traceback" not in log and "Exception occurred" not in log
    for line in log.splitlines():
        assert line.startswith("ts="), f"not one line per event: {line!r}"


def test_concurrent_reloads_share_one_load_and_see_every_edit(collector):
    def reloads() -> int:
        return len(re.findall(r'msg="config reloaded"', collector.log()))

    before = reloads()
    with concurrent.futures.ThreadPoolExecutor(12) as pool:
        for _ in range(4):
            answers = list(pool.map(lambda _: collector.post("/-/reload"), range(12)))
            assert all(status == 200 for status, _ in answers), answers
    time.sleep(0.5)
    # 48 requests in 4 bursts of 12: one load per request would be 48; the bursts share loads
    # (one running and one waiting, at most, per burst)
    assert reloads() - before <= 8
    # a request made after an edit is answered by a load that saw it
    write_targets(collector.config, extra=1)
    status, body = collector.post("/-/reload")
    assert status == 200 and "1 added" in body, body
    write_targets(collector.config)
    assert "1 removed" in collector.post("/-/reload")[1]


@pytest.mark.parametrize("path", ["/", "/runbooks"])
def test_pages_carry_security_headers_and_a_strict_policy(collector, path):
    status, _, headers = collector.get(path)
    assert status == 200
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["X-Frame-Options"] == "DENY"
    policy = headers["Content-Security-Policy"]
    assert "default-src 'none'" in policy and "frame-ancestors 'none'" in policy
    assert "unsafe-inline" not in policy and re.search(
        r"style-src 'sha256-[A-Za-z0-9+/=]+'", policy
    )


def test_reload_is_a_lifecycle_endpoint(collector, tmp_path):
    assert collector.get("/-/reload")[0] == 405
    config = tmp_path / "targets.yaml"
    write_targets(config)
    plain = CollectorProcess(config, extra_args=["--watch-interval", "0"]).start()
    try:
        status, body = plain.post("/-/reload")
        assert status == 403 and "Lifecycle API is not enabled" in body
        assert plain.get("/-/reload")[0] == 405
        assert plain.post("/metrics")[0] == 405
    finally:
        plain.stop()


def test_a_load_that_crashes_is_a_reported_failure_and_the_next_edit_applies(collector):
    collector.config.write_text("members: " + "[" * 5000 + "]" * 5000 + "\n")
    status, body = collector.post("/-/reload")
    assert status == 400, body  # answered, whatever the loader did with it
    assert collector.value("schoolnet_config_last_reload_successful") == 0
    write_targets(collector.config)
    status, body = collector.post("/-/reload")
    assert status == 200, body
    assert collector.value("schoolnet_config_last_reload_successful") == 1
    assert "Traceback" not in collector.log()
