"""ICMP echo rounds for any number of targets over one socket per address family.

Why not ping3.ping() per echo: it opens a socket per call and waits for its own reply with select;
thousands of those in a thread pool burn ~30-40x fping's CPU and drop replies that another thread's
socket read first (false loss). Here one socket sends every echo and one reader callback on the
event loop matches each reply to its request by (source address, sequence) — plus our identifier
on raw sockets, where the kernel delivers every ICMP packet of the machine. The measurement behind
this choice is in docs/icmp.md.
"""

from __future__ import annotations

import asyncio
import heapq
import logging
import math
import os
import socket
import struct
import time
from dataclasses import dataclass, field

from monitor import os_support
from monitor.config.model import PingSettings
from monitor.logs import event
from monitor.results import PingRound

log = logging.getLogger(__name__)

_ECHO_REQUEST = {socket.AF_INET: 8, socket.AF_INET6: 128}
_ECHO_REPLY = {socket.AF_INET: 0, socket.AF_INET6: 129}
_HEADER = struct.Struct("!BBHHH")  # type, code, checksum, identifier, sequence
_ID_SEQ = struct.Struct("!HH")
_COOKIE_LEN = 8
_MAX_READS_PER_WAKEUP = 512  # keep the loop fair to timers when a flood of replies arrives


def checksum(data: bytes) -> int:
    """RFC 1071 internet checksum, summing in C via struct rather than a Python loop."""
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    total = (total >> 16) + (total & 0xFFFF)
    total += total >> 16
    return ~total & 0xFFFF


def family_of(address: str) -> int:
    return socket.AF_INET6 if ":" in address else socket.AF_INET


@dataclass(eq=False)
class _Round:
    """Replies of one round as they arrive; `done` is set when every echo is answered or the
    deadline passed."""

    icmp: os_support.IcmpSocket
    address: str
    size: int
    timeout: float
    rtts: list[float | None]
    outstanding: int
    done: asyncio.Future
    keys: list[tuple[str, int]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    sent: int = 0
    attempted: int = 0  # echoes handed to the socket (sent or failed)
    last_send: float = 0.0  # loop time of the latest send
    deadline: asyncio.TimerHandle | None = None

    def answer(self, index: int, rtt: float) -> None:
        if self.rtts[index] is not None or rtt > self.timeout:
            return
        self.rtts[index] = max(rtt, 0.0)
        self.outstanding -= 1
        if self.outstanding == 0:
            self.finish()

    def finish(self) -> None:
        if not self.done.done():
            self.done.set_result(None)


@dataclass
class IcmpStats:
    """Prober-wide counters for the collector's self-metrics."""

    sent: int = 0
    received: int = 0
    send_errors: int = 0
    unmatched: int = 0  # replies that matched no outstanding request (late or foreign)
    malformed: int = 0


class IcmpProber:
    """Runs echo rounds; create one per collector and `close()` it on shutdown.

    Echoes after the first of a round are not sent by per-echo timers: they wait in buckets of
    `tick` seconds and one timer per tick sends every echo due. With thousands of targets that
    is the difference between tens of thousands of timer wake-ups a minute and a few hundred."""

    def __init__(self, tick: float = 0.005) -> None:
        self.tick = tick
        self._sockets: dict[int, os_support.IcmpSocket] = {}
        self._ident = os.getpid() & 0xFFFF ^ int.from_bytes(os.urandom(2), "big")
        self._cookie = os.urandom(_COOKIE_LEN)
        self._seq: dict[str, int] = {}
        self._pending: dict[tuple[str, int], tuple[_Round, int, float]] = {}
        self._buckets: dict[int, list[tuple[_Round, int]]] = {}
        self._ticks: list[int] = []  # heap of bucket ticks
        self._armed: tuple[int, asyncio.TimerHandle] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.stats = IcmpStats()

    def open(self, family: int = socket.AF_INET) -> os_support.IcmpSocket:
        """Open (once) the socket of `family`; raises os_support.IcmpUnavailable with a hint."""
        icmp = self._sockets.get(family)
        if icmp is None:
            icmp = os_support.open_icmp_socket(family)
            self._loop = asyncio.get_running_loop()
            self._loop.add_reader(icmp.sock.fileno(), self._on_readable, icmp)
            self._sockets[family] = icmp
            event(
                log,
                logging.INFO,
                "icmp socket open",
                family="ipv4" if family == socket.AF_INET else "ipv6",
                kind="raw" if icmp.raw else "datagram",
                kernel_timestamps=icmp.kernel_timestamps,
            )
        return icmp

    def close(self) -> None:
        for icmp in self._sockets.values():
            if self._loop is not None and not self._loop.is_closed():
                self._loop.remove_reader(icmp.sock.fileno())
            icmp.close()
        self._sockets.clear()
        if self._armed is not None:
            self._armed[1].cancel()
            self._armed = None
        for rnd, _, _ in self._pending.values():
            rnd.finish()
        self._pending.clear()
        self._buckets.clear()
        self._ticks.clear()

    async def round(self, address: str, settings: PingSettings) -> PingRound:
        """Send `settings.count` echoes to the IP `address`, `settings.spacing` apart, and wait up
        to `settings.timeout` after the last for the replies."""
        loop = asyncio.get_running_loop()
        started = time.time()
        try:
            icmp = self.open(family_of(address))
        except OSError as exc:
            return PingRound(started, 0, (), error=str(exc))
        count = settings.count
        rnd = _Round(
            icmp,
            address,
            settings.size,
            settings.timeout,
            [None] * count,
            count,
            loop.create_future(),
        )
        begin = loop.time()
        self._send(rnd, 0)
        for index in range(1, count):
            self._schedule(begin + index * settings.spacing, rnd, index)
        rnd.deadline = loop.call_at(
            begin + (count - 1) * settings.spacing + settings.timeout, self._expire, rnd
        )
        try:
            await rnd.done
        finally:
            if rnd.deadline is not None:
                rnd.deadline.cancel()
            rnd.outstanding = -1  # echoes still queued for this round are not sent
            for key in rnd.keys:
                self._pending.pop(key, None)
        rtts = tuple(r for r in rnd.rtts if r is not None)
        error = "; ".join(dict.fromkeys(rnd.errors)) or None
        return PingRound(started, rnd.sent, rtts, error=error)

    def _expire(self, rnd: _Round) -> None:
        """The round's deadline: every echo gets its full timeout from when it actually left. An
        echo sent late (the loop was busy when its tick came) moves the deadline with it, so a
        busy collector never reports loss that did not happen."""
        assert self._loop is not None
        if rnd.attempted < len(rnd.rtts) or self._loop.time() < rnd.last_send + rnd.timeout:
            later = max(rnd.last_send + rnd.timeout, self._loop.time() + self.tick)
            rnd.deadline = self._loop.call_at(later, self._expire, rnd)
            return
        rnd.finish()

    def _schedule(self, when: float, rnd: _Round, index: int) -> None:
        tick = math.ceil(when / self.tick)
        bucket = self._buckets.get(tick)
        if bucket is None:
            bucket = self._buckets[tick] = []
            heapq.heappush(self._ticks, tick)
            if self._armed is None or tick < self._armed[0]:
                self._arm(tick)
        bucket.append((rnd, index))

    def _arm(self, tick: int) -> None:
        assert self._loop is not None
        if self._armed is not None:
            self._armed[1].cancel()
        self._armed = (tick, self._loop.call_at(tick * self.tick, self._send_due))

    def _send_due(self) -> None:
        assert self._loop is not None
        self._armed = None
        now_tick = math.floor(self._loop.time() / self.tick)
        while self._ticks and self._ticks[0] <= now_tick:
            for rnd, index in self._buckets.pop(heapq.heappop(self._ticks)):
                if rnd.outstanding >= 0 and not rnd.done.done():
                    self._send(rnd, index)
        if self._ticks:
            self._arm(self._ticks[0])

    def _send(self, rnd: _Round, index: int) -> None:
        icmp, address = rnd.icmp, rnd.address
        seq = (self._seq.get(address, -1) + 1) & 0xFFFF
        self._seq[address] = seq
        payload = self._cookie + bytes(max(0, rnd.size - _COOKIE_LEN))
        kind = _ECHO_REQUEST[icmp.family]
        header = _HEADER.pack(kind, 0, 0, self._ident, seq)
        if icmp.family == socket.AF_INET:  # ICMPv6 checksums are the kernel's (pseudo-header)
            header = _HEADER.pack(kind, 0, checksum(header + payload), self._ident, seq)
        key = (address, seq)
        rnd.attempted += 1
        rnd.last_send = self._loop.time() if self._loop is not None else 0.0
        self._pending[key] = (rnd, index, time.time())
        try:
            icmp.sock.sendto(header + payload, (address, 0))
        except OSError as exc:
            self._pending.pop(key, None)
            self.stats.send_errors += 1
            rnd.errors.append(f"send to {address} failed: {exc.strerror or exc}")
            rnd.outstanding -= 1
            if rnd.outstanding == 0:
                rnd.finish()
            return
        rnd.keys.append(key)
        rnd.sent += 1
        self.stats.sent += 1

    def _on_readable(self, icmp: os_support.IcmpSocket) -> None:
        for _ in range(_MAX_READS_PER_WAKEUP):
            try:
                data, source, received_at = os_support.receive(icmp)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # e.g. ICMP errors queued on a datagram socket
                event(log, logging.DEBUG, "icmp receive error", error=str(exc))
                continue
            try:
                self._handle(icmp, data, source, received_at)
            except (struct.error, IndexError):
                self.stats.malformed += 1

    def _handle(
        self, icmp: os_support.IcmpSocket, data: bytes, source: str, received_at: float
    ) -> None:
        offset = (data[0] & 0x0F) * 4 if icmp.ip_header else 0
        if data[offset] != _ECHO_REPLY[icmp.family]:
            return  # errors and, on datagram sockets without a filter, anything else
        ident, seq = _ID_SEQ.unpack_from(data, offset + 4)
        if icmp.raw and ident != self._ident:
            return  # another program's ping on this machine
        if data[offset + 8 : offset + 8 + _COOKIE_LEN] != self._cookie:
            self.stats.malformed += 1
            return
        if "%" in source:
            source = source.split("%", 1)[0]
        entry = self._pending.pop((source, seq), None)
        if entry is None:
            self.stats.unmatched += 1
            return
        rnd, index, sent_at = entry
        self.stats.received += 1
        rnd.answer(index, received_at - sent_at)
