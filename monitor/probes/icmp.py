"""ICMP echo rounds for any number of targets over one socket per address family.

Why not ping3.ping() per echo: it opens a socket per call and waits for its own reply with select;
thousands of those in a thread pool burn ~30-40x fping's CPU and drop replies that another thread's
socket read first (false loss). Here one socket sends every echo and one reader callback on the
event loop matches each reply to its request by (source address, sequence) — plus our identifier
on raw sockets, where the kernel delivers every ICMP packet of the machine. The measurement behind
this choice is in docs/icmp.md.

What a reply must echo is unpredictable per target and per round: a random 8-byte cookie per round
in the payload, and sequences that start at a random number per address. A device that sees the
echoes sent to it learns only its own round's cookie, so it cannot answer for another target.
ICMP errors about our echoes (destination unreachable, time exceeded) are matched the same way,
by the echo they quote, and become the round's error with the address of the router that sent it.
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
from collections.abc import Iterable
from dataclasses import dataclass, field

from monitor import os_support
from monitor.config.model import PingSettings, Target
from monitor.logs import event
from monitor.probes.base import Key, LogLine, Result, Statistic, up_or_down
from monitor.results import PingRound

log = logging.getLogger(__name__)

_ECHO_REQUEST = {socket.AF_INET: 8, socket.AF_INET6: 128}
_ECHO_REPLY = {socket.AF_INET: 0, socket.AF_INET6: 129}
_HEADER = struct.Struct("!BBHHH")  # type, code, checksum, identifier, sequence
_ID_SEQ = struct.Struct("!HH")
_COOKIE_LEN = 8
_MAX_READS_PER_WAKEUP = 512  # keep the loop fair to timers when a flood of replies arrives
_ICMP_PROTOCOL = {socket.AF_INET: 1, socket.AF_INET6: 58}
_IPV6_HEADER = 40

# ICMP errors that answer an echo instead of the target (RFC 792, RFC 1812, RFC 4443): type ->
# (what happened, {code: what exactly}).
_ERRORS: dict[int, dict[int, tuple[str, dict[int, str]]]] = {
    socket.AF_INET: {
        3: (
            "destination unreachable",
            {
                0: "network unreachable",
                1: "host unreachable",
                2: "protocol unreachable",
                3: "port unreachable",
                4: "fragmentation needed",
                5: "source route failed",
                6: "destination network unknown",
                7: "destination host unknown",
                9: "network administratively prohibited",
                10: "host administratively prohibited",
                11: "network unreachable for its type of service",
                12: "host unreachable for its type of service",
                13: "communication administratively prohibited",
                14: "host precedence violation",
                15: "precedence cutoff in effect",
            },
        ),
        11: (
            "time exceeded",
            {
                0: "time to live exceeded in transit (a routing loop?)",
                1: "fragment reassembly time exceeded",
            },
        ),
    },
    socket.AF_INET6: {
        1: (
            "destination unreachable",
            {
                0: "no route to destination",
                1: "communication administratively prohibited",
                2: "beyond scope of source address",
                3: "address unreachable",
                4: "port unreachable",
                5: "source address failed ingress/egress policy",
                6: "reject route to destination",
            },
        ),
        3: (
            "time exceeded",
            {
                0: "hop limit exceeded in transit (a routing loop?)",
                1: "fragment reassembly time exceeded",
            },
        ),
    },
}


def explain_error(family: int, kind: int, code: int) -> str | None:
    """'host unreachable' for (AF_INET, 3, 1); None for a type that is not an error about an
    echo."""
    known = _ERRORS[family].get(kind)
    if known is None:
        return None
    general, codes = known
    return codes.get(code, f"{general} (code {code})")


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
    # What every reply of this round must carry back: fresh random bytes per round and target.
    cookie: bytes = field(default_factory=lambda: os.urandom(_COOKIE_LEN))
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
    forged: int = 0  # right address and sequence, wrong cookie: forged (or corrupted)
    errors: int = 0  # ICMP errors (unreachable, time exceeded) about one of our echoes


class IcmpProber:
    """Runs echo rounds; create one per collector and `close()` it on shutdown.

    Echoes after the first of a round are not sent by per-echo timers: they wait in buckets of
    `tick` seconds and one timer per tick sends every echo due. With thousands of targets that
    is the difference between tens of thousands of timer wake-ups a minute and a few hundred."""

    def __init__(self, tick: float = 0.005) -> None:
        self.tick = tick
        self._sockets: dict[int, os_support.IcmpSocket] = {}
        self._ident = os.getpid() & 0xFFFF ^ int.from_bytes(os.urandom(2), "big")
        self._seq: dict[str, int] = {}  # last sequence per address; starts at a random one
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
        to `settings.timeout` after the last for the replies. Never raises: a bug of ours is a
        round with an error (and a traceback in the log), so the target keeps its series."""
        try:
            return await self._round(address, settings)
        except Exception as exc:
            log.error("icmp round crashed", exc_info=exc, extra={"fields": {"address": address}})
            error = f"internal error in the ICMP probe ({type(exc).__name__}); see the log"
            return PingRound(time.time(), 0, (), error=error)

    async def _round(self, address: str, settings: PingSettings) -> PingRound:
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
        last = self._seq.get(address)
        if last is None:
            last = int.from_bytes(os.urandom(2), "big")
        seq = (last + 1) & 0xFFFF
        self._seq[address] = seq
        payload = rnd.cookie + bytes(max(0, rnd.size - _COOKIE_LEN))
        kind = _ECHO_REQUEST[icmp.family]
        header = _HEADER.pack(kind, 0, 0, self._ident, seq)
        if icmp.family == socket.AF_INET:  # ICMPv6 checksums are the kernel's (pseudo-header)
            header = _HEADER.pack(kind, 0, checksum(header + payload), self._ident, seq)
        key = (address, seq)
        rnd.attempted += 1
        rnd.last_send = self._loop.time() if self._loop is not None else 0.0
        self._pending[key] = (rnd, index, time.time())
        try:
            try:
                icmp.sock.sendto(header + payload, (address, 0))
            except OSError:
                if icmp.raw:
                    raise
                # A datagram socket reports an ICMP error that came for an earlier echo (to any
                # address) on its next call, this send: that error is in the error queue, for its
                # own round. Ours is only a real failure if it fails again.
                self._drain_errors(icmp)
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
                if not icmp.raw:  # an error queue left non-empty would wake us forever
                    self._drain_errors(icmp)
                return
            except OSError as exc:  # ICMP errors announced on a datagram socket
                event(log, logging.DEBUG, "icmp receive error", error=str(exc))
                self._drain_errors(icmp)
                continue
            try:
                self._handle(icmp, data, source, received_at)
            except (struct.error, IndexError, ValueError):  # truncated or nonsense packets
                self.stats.malformed += 1

    def _handle(
        self, icmp: os_support.IcmpSocket, data: bytes, source: str, received_at: float
    ) -> None:
        offset = (data[0] & 0x0F) * 4 if icmp.ip_header else 0
        kind = data[offset]
        if "%" in source:
            source = source.split("%", 1)[0]
        if kind != _ECHO_REPLY[icmp.family]:
            if icmp.raw:  # datagram sockets get errors as socket errors, not packets
                self._handle_error(icmp, data, offset, source)
            return
        ident, seq = _ID_SEQ.unpack_from(data, offset + 4)
        if icmp.raw and ident != self._ident:
            return  # another program's ping on this machine
        key = (source, seq)
        entry = self._pending.get(key)
        if entry is None:
            self.stats.unmatched += 1
            return
        rnd, index, sent_at = entry
        if data[offset + 8 : offset + 8 + _COOKIE_LEN] != rnd.cookie:
            # not ours to answer: leave the echo pending for the real reply
            self.stats.forged += 1
            return
        del self._pending[key]
        self.stats.received += 1
        rnd.answer(index, received_at - sent_at)

    def _drain_errors(self, icmp: os_support.IcmpSocket) -> None:
        """The datagram socket's error queue: each entry is an echo of ours and what a router
        said about it."""
        for _ in range(_MAX_READS_PER_WAKEUP):
            try:
                error = os_support.receive_error(icmp)
            except (BlockingIOError, InterruptedError):
                return
            except (OSError, ValueError):
                self.stats.malformed += 1
                continue
            if error is None or len(error.echo) < 8 + _COOKIE_LEN:
                continue
            what = explain_error(icmp.family, error.kind, error.code)
            seq = _ID_SEQ.unpack_from(error.echo, 4)[1]
            destination = error.destination.split("%", 1)[0]
            self._explain(what, destination, seq, error.echo[8 : 8 + _COOKIE_LEN], error.router)

    def _explain(self, what: str | None, target: str, seq: int, quoted: bytes, router: str) -> None:
        """Give the round of echo (target, seq) the error `what`, said by `router`. The echo stays
        pending (a reply may still come; a forged error must not cost one), and where the quote
        includes the payload its cookie must be the round's."""
        entry = self._pending.get((target, seq))
        if what is None or entry is None:
            return
        rnd = entry[0]
        if len(quoted) == _COOKIE_LEN and quoted != rnd.cookie:
            self.stats.forged += 1
            return
        self.stats.errors += 1
        rnd.errors.append(f"{what}, reported by {router}")

    def _handle_error(
        self, icmp: os_support.IcmpSocket, data: bytes, offset: int, router: str
    ) -> None:
        """An ICMP error quoting one of our echoes (raw sockets see them as packets): the round
        learns what happened and who said so."""
        family = icmp.family
        what = explain_error(family, data[offset], data[offset + 1])
        if what is None:
            return
        inner = offset + 8  # the quoted IP header of our echo request
        if family == socket.AF_INET:
            if data[inner] >> 4 != 4 or data[inner + 9] != _ICMP_PROTOCOL[family]:
                return
            target = socket.inet_ntop(family, data[inner + 16 : inner + 20])
            echo = inner + (data[inner] & 0x0F) * 4
        else:
            if data[inner] >> 4 != 6 or data[inner + 6] != _ICMP_PROTOCOL[family]:
                return
            target = socket.inet_ntop(family, data[inner + 24 : inner + 40])
            echo = inner + _IPV6_HEADER
        if data[echo] != _ECHO_REQUEST[family]:
            return
        ident, seq = _ID_SEQ.unpack_from(data, echo + 4)
        if ident == self._ident:
            self._explain(what, target, seq, data[echo + 8 : echo + 8 + _COOKIE_LEN], router)


class IcmpProbe(IcmpProber):
    """The ICMP prober as a probe kind of the scheduler (monitor/probes/base.py)."""

    kind = PingRound.KIND

    def start(self, targets: Iterable[Target]) -> None:
        """Open the IPv4 socket now if any target pings, so a missing privilege is said once at
        start (with how to grant it) instead of in every round's error."""
        if not any(t.ping is not None for t in targets):
            return
        try:
            self.open()
        except OSError as exc:
            event(
                log,
                logging.ERROR,
                "ICMP unavailable: ping rounds will fail",
                error=str(exc),
                hint=os_support.icmp_privilege_hint(),
            )

    def settings(self, target: Target) -> PingSettings | None:
        return target.ping

    async def run(self, target: Target, address: str) -> PingRound:
        assert target.ping is not None
        return await self.round(address, target.ping)

    def failed(self, target: Target, started: float, error: str) -> PingRound:
        return PingRound(started, 0, (), error=error)

    def after(self, previous: Result | None, result: Result) -> PingRound:
        assert isinstance(result, PingRound)
        return result.counted_after(previous if isinstance(previous, PingRound) else None)

    def changes(self, target: Target, before: Result | None, result: Result) -> LogLine | None:
        assert isinstance(result, PingRound)
        return up_or_down(target, before, result, "ping up", "ping down", loss=result.loss_ratio)

    def forget(self, key: Key) -> None:
        """Nothing per target: sequences are per address, totals travel with the results."""

    def statistics(self) -> list[Statistic]:
        help_ignored = (
            "Echo replies thrown away: unmatched (late, duplicate or for no request of ours), "
            "forged (right address and sequence, wrong cookie), malformed (truncated)."
        )
        return [
            Statistic(
                "schoolnet_collector_icmp_replies_ignored_total",
                "counter",
                help_ignored,
                self.stats.unmatched,
                (("reason", "unmatched"),),
            ),
            Statistic(
                "schoolnet_collector_icmp_replies_ignored_total",
                "counter",
                help_ignored,
                self.stats.forged,
                (("reason", "forged"),),
            ),
            Statistic(
                "schoolnet_collector_icmp_replies_ignored_total",
                "counter",
                help_ignored,
                self.stats.malformed,
                (("reason", "malformed"),),
            ),
            Statistic(
                "schoolnet_collector_icmp_send_errors_total",
                "counter",
                "Echo requests the socket refused to send.",
                self.stats.send_errors,
            ),
        ]
