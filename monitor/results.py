"""What a probe hands to the result store: immutable records of one round or one poll.

Records are frozen so the HTTP thread can read the latest one while the event loop replaces it; the
derived numbers (median, jitter, loss) live here so every consumer computes them the same way.
"""

from __future__ import annotations

import dataclasses
import statistics
from dataclasses import dataclass
from itertools import pairwise
from typing import ClassVar

from monitor.profiles.evaluate import Sample

__all__ = ["Interface", "PingRound", "Sample", "SnmpPoll"]


@dataclass(frozen=True)
class PingRound:
    """One round of echo requests to one target."""

    KIND: ClassVar[str] = "icmp"  # the probe kind that produces it (monitor/probes/icmp.py)
    NOUN: ClassVar[str] = "ping"  # how logs and the status page name it

    started: float  # wall clock, seconds
    sent: int
    rtts: tuple[float, ...]  # seconds, of the replies received, in the order the requests went out
    error: str | None = None  # why: not sent, not resolved, or an ICMP error from a router
    # echo requests sent and replies received in time by every round of the target so far
    requests_total: int = 0
    replies_total: int = 0

    @property
    def received(self) -> int:
        return len(self.rtts)

    @property
    def up(self) -> bool:
        return bool(self.rtts)

    @property
    def problem(self) -> str | None:
        return None if self.up else self.error or "no echo reply"

    def counted_after(self, previous: PingRound | None) -> PingRound:
        """This round with the target's running totals: `previous`'s plus this round's."""
        requests, replies = (
            (previous.requests_total, previous.replies_total) if previous is not None else (0, 0)
        )
        return dataclasses.replace(
            self, requests_total=requests + self.sent, replies_total=replies + self.received
        )

    @property
    def loss_ratio(self) -> float:
        return (self.sent - self.received) / self.sent if self.sent else 1.0

    @property
    def rtt_median(self) -> float | None:
        return statistics.median(self.rtts) if self.rtts else None

    @property
    def jitter(self) -> float | None:
        """Mean absolute difference of consecutive RTTs (RFC 3550's idea without the smoothing).
        Undefined with fewer than two replies."""
        if len(self.rtts) < 2:
            return None
        return sum(abs(b - a) for a, b in pairwise(self.rtts)) / (len(self.rtts) - 1)


@dataclass(frozen=True)
class Interface:
    """One row of ifTable/ifXTable, already decoded. Counters are monotonic (32-bit wraps unfolded
    by the poller); None where the device does not report the column."""

    index: int
    name: str
    alias: str = ""
    oper_up: bool | None = None
    admin_up: bool | None = None
    in_octets: int | None = None
    out_octets: int | None = None
    in_errors: int | None = None
    out_errors: int | None = None
    in_discards: int | None = None
    out_discards: int | None = None
    speed_bytes: float | None = None


@dataclass(frozen=True)
class SnmpPoll:
    """One SNMP poll of one device. On failure only `ok`, `duration`, `error` are meaningful."""

    KIND: ClassVar[str] = "snmp"  # monitor/probes/snmp/
    NOUN: ClassVar[str] = "snmp"

    started: float
    ok: bool
    duration: float
    error: str | None = None
    uptime_seconds: float | None = None
    sys_name: str = ""
    sys_descr: str = ""
    sys_object_id: str = ""
    vendor: str = "unknown"
    model: str = ""
    profile: str = ""  # the device profile used (monitor/profiles)
    interfaces: tuple[Interface, ...] = ()
    samples: tuple[Sample, ...] = ()  # the profile's health values (schoolnet_device_* ...)
    varbinds: int = 0  # received, for the collector's own cost metrics
    requests: int = 0

    @property
    def up(self) -> bool:
        return self.ok

    @property
    def problem(self) -> str | None:
        return None if self.ok else self.error
