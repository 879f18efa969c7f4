"""The validated, fully resolved form of targets.yaml.

Everything downstream (scheduler, probes, exposition) reads only these frozen dataclasses: defaults
are already merged, `${ENV}` secrets substituted, durations in seconds and bandwidth in bytes per
second. Equality of two `Target`s is what a reload uses to decide whether a target changed, so every
setting that affects probing must be a field here.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from monitor.calendar import DEFAULT_TIMEZONE, Calendar, Weekly

ROLES = ("router", "firewall", "switch", "ap", "controller", "link", "server", "other")

SnmpVersion = Literal["1", "2c", "3"]
SecurityLevel = Literal["noAuthNoPriv", "authNoPriv", "authPriv"]

AUTH_PROTOCOLS = ("MD5", "SHA", "SHA224", "SHA256", "SHA384", "SHA512")
# AES192/AES256 follow net-snmp and snmp_exporter: Blumenthal key extension; the "C" variants use
# the Reeder ("Cisco") key extension that Cisco and some others implement instead.
PRIV_PROTOCOLS = ("DES", "3DES", "AES", "AES192", "AES256", "AES192C", "AES256C")


@dataclass(frozen=True)
class PingSettings:
    """One round = `count` echo requests, `spacing` apart, each waited for up to `timeout`."""

    interval: float = 15.0
    count: int = 5
    timeout: float = 1.0
    spacing: float = 1.0
    size: int = 56  # ICMP payload bytes, as ping(8)


@dataclass(frozen=True)
class SnmpAuth:
    """A named credential set from `auths:`. Secrets are excluded from repr so they never leak into
    logs or tracebacks by accident."""

    name: str
    version: SnmpVersion
    community: str = field(default="", repr=False)
    username: str = ""
    security_level: SecurityLevel = "noAuthNoPriv"
    auth_protocol: str = ""
    auth_password: str = field(default="", repr=False)
    priv_protocol: str = ""
    priv_password: str = field(default="", repr=False)
    context: str = ""

    def secrets(self) -> tuple[str, ...]:
        """The values that must never appear in output (used by log redaction and tests)."""
        return tuple(s for s in (self.community, self.auth_password, self.priv_password) if s)


@dataclass(frozen=True)
class SnmpSettings:
    interval: float = 60.0
    timeout: float = 2.0
    retries: int = 1
    auth: SnmpAuth | None = None
    max_repetitions: int = 25
    bulk: bool = True  # False: walk with GETNEXT even on v2c/v3 (devices with broken GETBULK)


@dataclass(frozen=True)
class Via:
    """Where a link's traffic is counted: an interface (by ifName/ifDescr) of a target of the same
    school."""

    target: str
    interface: str


@dataclass(frozen=True)
class Target:
    member: str
    school: str
    id: str
    role: str
    host: str  # IP literal or DNS name, without port or brackets
    port: int | None = None  # SNMP port from `host:port`; None means 161
    ping: PingSettings | None = PingSettings()
    snmp: SnmpSettings | None = None
    bandwidth: float | None = None  # bytes per second (links)
    via: Via | None = None
    parent: str | None = None
    vendor: str | None = None
    name: str | None = None
    labels: tuple[tuple[str, str], ...] = ()
    # Wall-clock windows (the school calendar's timezone) in which it is switched off on purpose,
    # e.g. an AP on a PoE schedule: no DeviceDown then, and an info alert if it answers.
    expected_off: tuple[Weekly, ...] = ()
    timezone: str = DEFAULT_TIMEZONE  # of expected_off: its school's calendar's
    line: int = field(default=0, compare=False)  # where it starts in the file, for messages

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.member, self.school, self.id)

    @property
    def snmp_port(self) -> int:
        return self.port or 161


@dataclass(frozen=True)
class School:
    id: str
    name: str
    member: str
    targets: tuple[Target, ...] = ()
    calendar: Calendar | None = None  # None: no calendar, on call as if always open


@dataclass(frozen=True)
class Member:
    id: str
    name: str
    schools: tuple[School, ...] = ()


@dataclass(frozen=True)
class Config:
    path: Path
    members: tuple[Member, ...] = ()
    auths: dict[str, SnmpAuth] = field(default_factory=dict, compare=False)
    calendars: dict[str, Calendar] = field(default_factory=dict, compare=False)

    def targets(self) -> Iterator[Target]:
        for member in self.members:
            for school in member.schools:
                yield from school.targets

    def schools(self) -> Iterator[School]:
        for member in self.members:
            yield from member.schools

    def secrets(self) -> tuple[str, ...]:
        return tuple(s for a in self.auths.values() for s in a.secrets())
