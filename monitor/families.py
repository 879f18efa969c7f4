"""The metric contract, written once: every family the collector can expose, as data.

One `Family` per metric: its name, type, help text, the labels it adds, where its value comes from
(`source`, plus the function that reads it) and the text docs/metrics.md shows. Everything else is
derived from this table:

- the exposition renders every family from it (monitor/exposition.py);
- `monitor check` refuses a static target label whose name a per-target family already carries
  (`reserved_labels()`): a duplicate label name makes Prometheus drop the whole scrape;
- device profiles may fill only the families whose source is PROFILE (monitor/profiles);
- the tables of docs/metrics.md are generated from it: `python3 -m monitor.families` rewrites
  them, tests/test_docs.py fails while they are out of date;
- the tests iterate it instead of typing the names again.

Adding a family is one entry below: pick the source that already holds its value and give the
function that reads it (or, for PROFILE, name it in a profile's metric). See `Source` for what each
function receives.
"""

from __future__ import annotations

import enum
import functools
import re
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from operator import attrgetter
from pathlib import Path
from typing import Any

__all__ = [
    "BASE_LABELS",
    "FAMILIES",
    "SCHOOL_LABELS",
    "Family",
    "Source",
    "by_source",
    "one_line",
    "reserved_labels",
]

BASE_LABELS = ("member", "school", "target", "role")  # on every per-target series
SCHOOL_LABELS = ("member", "school")  # on every per-school series
PROMETHEUS_LABELS = ("instance", "job")  # added to every series by the scrape
_DESCR_LIMIT = 200
_SPACE = re.compile(r"\s+")


class Source(enum.Enum):
    """Where a family's values come from; it decides what the family's functions receive, which
    base labels every series has, and when the exposition renders them again.

    Per target (base labels `member, school, target, role` and the target's static `labels:`):
    - TARGET: `value(state)` / `label_values(state)` with the store's TargetState; rendered anew
      when the target's config or its `up` changes.
    - CLOCK: the same, rendered on every scrape: values that change with the time rather than
      with results (a target inside a calendar window).
    - PING: the same, only while the target has an echo round (`state.ping` is set); rendered
      anew with every round.
    - SNMP: `value(poll)` with the last SnmpPoll, failed or not.
    - DEVICE: `value(poll)` with the last SnmpPoll, only while it succeeded (stale device data
      is never shown as current).
    - PROFILE: no function: a device profile's metric names the family and the poll's samples
      carry the values (monitor/profiles/*.yaml).
    - INTERFACE: `value(interface)` for each Interface of a successful poll; labels
      `interface, alias` (the interface's name and ifAlias).
    Per school (base labels `member, school`):
    - SCHOOL: `value(member, school)` / `label_values(member, school)` for every school of the
      running config.
    The collector itself (no base labels):
    - COLLECTOR: `samples(store, states)` yields `(label_values, value)`; a summary's value is
      `(count, sum)`.
    """

    TARGET = "target"
    CLOCK = "clock"
    PING = "ping"
    SNMP = "snmp"
    DEVICE = "device"
    PROFILE = "profile"
    INTERFACE = "interface"
    SCHOOL = "school"
    COLLECTOR = "collector"

    @property
    def per_target(self) -> bool:
        return self not in (Source.SCHOOL, Source.COLLECTOR)


Value = float | int | bool


@dataclass(frozen=True)
class Family:
    name: str
    type: str  # gauge | counter | summary
    help: str  # the HELP line: one sentence
    source: Source
    labels: tuple[str, ...] = ()  # beyond the source's base labels, in exposition order
    value: Callable[..., Value | None] | None = None  # None: no series for this subject
    label_values: Callable[..., tuple[str, ...]] | None = None  # one per name in `labels`
    samples: Callable[..., Iterable[tuple[tuple[str, ...], Any]]] | None = None  # COLLECTOR
    doc: str = ""  # docs/metrics.md's "meaning" (markdown); the help text if empty

    @property
    def meaning(self) -> str:
        if self.doc:
            return self.doc
        text = self.help.rstrip(".")
        return text[0].lower() + text[1:] if text[1:2].islower() else text


def one_line(text: str) -> str:
    """sysDescr is often several lines; a label should be one short line."""
    text = _SPACE.sub(" ", text).strip()
    return text if len(text) <= _DESCR_LIMIT else text[: _DESCR_LIMIT - 1] + "…"


def _via(state) -> tuple[str, str]:
    via = state.target.via
    return (via.target, via.interface) if via else ("", "")


def _per_probe(counts: dict) -> list[tuple[tuple[str, ...], Any]]:
    return [((kind,), counts[kind]) for kind in sorted(counts)]


def _schedule_delay(health, states) -> list[tuple[tuple[str, ...], Any]]:
    rounds = health.rounds
    return [((k,), (rounds.started[k], rounds.delay_sum[k])) for k in sorted(rounds.started)]


def _statistic(name: str) -> Callable[..., list[tuple[tuple[str, ...], Any]]]:
    """Samples of a probe's own statistic (monitor/probes/base.py: Probe.statistics)."""

    def samples(health, states) -> list[tuple[tuple[str, ...], Any]]:
        return [
            (tuple(value for _, value in s.labels), s.value)
            for probe in health.probes
            for s in probe.statistics()
            if s.name == name
        ]

    return samples


def _now() -> float:
    """The instant calendar families are rendered for (tests replace it)."""
    return time.time()


@functools.lru_cache(maxsize=256)
def _calendar_at(calendar, second: int) -> tuple[bool, bool, float | None]:
    """(open, maintenance, next opening) of a calendar at a whole second: a few calendars serve
    many schools, so each is evaluated once per scrape."""
    from monitor import calendar as cal

    opens = cal.next_open(calendar, second)
    return (
        cal.is_open(calendar, second),
        cal.in_maintenance(calendar, second),
        None if opens is None else opens.timestamp(),
    )


def _school_calendar(index: int) -> Callable[..., Value | None]:
    """value(member, school) of a calendar family: only schools with a calendar have one."""

    def value(member, school) -> Value | None:
        if school.calendar is None:
            return None
        return _calendar_at(school.calendar, int(_now()))[index]

    return value


def _expected_down(state) -> Value | None:
    target = state.target
    if not target.expected_off:
        return None
    from monitor import calendar as cal

    return cal.expected_down(target.expected_off, target.timezone, _now())


_INTERFACE = ("interface", "alias")
_LINK_DOC = (
    "a link's contracted capacity in bytes per second, and where its traffic is counted "
    "(`via:` in targets.yaml)"
)

FAMILIES: dict[str, Family] = {
    f.name: f
    for f in (
        # -- per target --------------------------------------------------------------------------
        Family(
            "schoolnet_up",
            "gauge",
            "1 if the target answered its last round of probes (any kind), else 0.",
            Source.TARGET,
            ("parent",),
            value=lambda s: s.up,
            label_values=lambda s: (s.target.parent or "",),
            doc="1 if the target answered its last round of probes of any kind (ping or SNMP), "
            "else 0. `parent` is the target's `parent:` from targets.yaml (empty if none), so "
            "rules can suppress devices behind a dead parent.",
        ),
        Family(
            "schoolnet_target_info",
            "gauge",
            "Static facts about a target from targets.yaml (always 1).",
            Source.TARGET,
            ("name", "address", "parent"),
            value=lambda s: 1,
            label_values=lambda s: (
                s.target.name or s.target.id,
                s.target.host,
                s.target.parent or "",
            ),
            doc="static facts from targets.yaml (always 1)",
        ),
        Family(
            "schoolnet_link_bandwidth_bytes",
            "gauge",
            "Contracted capacity of a school's link in bytes per second.",
            Source.TARGET,
            ("via_target", "interface"),
            value=lambda s: s.target.bandwidth if s.target.role == "link" else None,
            label_values=_via,
            doc=_LINK_DOC,
        ),
        Family(
            "schoolnet_target_expected_down",
            "gauge",
            "1 inside one of the target's expected_off windows (switched off on purpose).",
            Source.CLOCK,
            value=_expected_down,
            doc="only targets with `expected_off:`: 1 inside one of those windows (switched off "
            "on purpose, e.g. a PoE schedule), else 0; wall-clock times in the school calendar's "
            "timezone (Europe/Amsterdam without a calendar)",
        ),
        Family(
            "schoolnet_ping_up",
            "gauge",
            "1 if at least one echo reply came back in the last round.",
            Source.PING,
            value=lambda s: s.ping.up,
        ),
        Family(
            "schoolnet_ping_rtt_seconds",
            "gauge",
            "Median round-trip time of the last round's replies.",
            Source.PING,
            value=lambda s: s.ping.rtt_median,
        ),
        Family(
            "schoolnet_ping_jitter_seconds",
            "gauge",
            "Mean absolute difference of consecutive RTTs in the last round.",
            Source.PING,
            value=lambda s: s.ping.jitter,
            doc="mean absolute difference of consecutive RTTs in the last round (needs ≥ 2 "
            "replies)",
        ),
        Family(
            "schoolnet_ping_loss_ratio",
            "gauge",
            "Lost / sent echo requests in the last round.",
            Source.PING,
            value=lambda s: s.ping.loss_ratio if s.ping.sent else None,
            doc="lost / sent echo requests in the last round (0..1)",
        ),
        Family(
            "schoolnet_ping_requests_total",
            "counter",
            "Echo requests sent.",
            Source.PING,
            value=lambda s: s.ping_requests_total,
        ),
        Family(
            "schoolnet_ping_replies_total",
            "counter",
            "Echo replies received in time.",
            Source.PING,
            value=lambda s: s.ping_replies_total,
            doc="echo replies received within the timeout; `1 - rate(replies)/rate(requests)` "
            "is the loss over any window",
        ),
        Family(
            "schoolnet_snmp_up",
            "gauge",
            "1 if the last SNMP poll succeeded.",
            Source.SNMP,
            value=lambda p: p.ok,
        ),
        Family(
            "schoolnet_snmp_poll_duration_seconds",
            "gauge",
            "How long the last SNMP poll took.",
            Source.SNMP,
            value=lambda p: p.duration,
            doc="how long the last SNMP poll took (failed polls: until they gave up)",
        ),
        Family(
            "schoolnet_device_uptime_seconds",
            "gauge",
            "sysUpTime of the device's SNMP agent (a drop means a reboot).",
            Source.DEVICE,
            value=lambda p: p.uptime_seconds,
            doc="sysUpTime (a drop means a reboot, or the 497-day wrap of the 32-bit tick counter)",
        ),
        Family(
            "schoolnet_device_info",
            "gauge",
            "Identity of the device as it reports itself (always 1).",
            Source.DEVICE,
            ("sys_name", "sys_descr", "vendor", "model"),
            value=lambda p: 1,
            label_values=lambda p: (p.sys_name, one_line(p.sys_descr), p.vendor, p.model),
            doc="the device's identity as it reports it (always 1); `sys_descr` is one line, "
            "at most 200 characters; `vendor` and `model` come from its device profile (`vendor` "
            "from the sysObjectID's enterprise number where no profile knows the model)",
        ),
        # -- per interface -----------------------------------------------------------------------
        Family(
            "schoolnet_interface_up",
            "gauge",
            "1 if ifOperStatus is up(1).",
            Source.INTERFACE,
            _INTERFACE,
            value=attrgetter("oper_up"),
            doc="ifOperStatus is up(1)",
        ),
        Family(
            "schoolnet_interface_admin_up",
            "gauge",
            "1 if ifAdminStatus is up(1).",
            Source.INTERFACE,
            _INTERFACE,
            value=attrgetter("admin_up"),
            doc="ifAdminStatus is up(1)",
        ),
        Family(
            "schoolnet_interface_speed_bytes",
            "gauge",
            "Interface speed in bytes per second (ifSpeed, or ifHighSpeed above 4.29 Gbit/s).",
            Source.INTERFACE,
            _INTERFACE,
            value=attrgetter("speed_bytes"),
            doc="ifSpeed / 8, or ifHighSpeed × 10⁶ / 8 where ifSpeed saturates (≥ 4.29 Gbit/s) "  # noqa: RUF001
            "or is 0",
        ),
        Family(
            "schoolnet_interface_receive_bytes_total",
            "counter",
            "Bytes received (ifHCInOctets, else ifInOctets unfolded across 32-bit wraps).",
            Source.INTERFACE,
            _INTERFACE,
            value=attrgetter("in_octets"),
            doc="ifHCInOctets, else ifInOctets",
        ),
        Family(
            "schoolnet_interface_transmit_bytes_total",
            "counter",
            "Bytes sent (ifHCOutOctets, else ifOutOctets unfolded across 32-bit wraps).",
            Source.INTERFACE,
            _INTERFACE,
            value=attrgetter("out_octets"),
            doc="ifHCOutOctets, else ifOutOctets",
        ),
        Family(
            "schoolnet_interface_receive_errors_total",
            "counter",
            "Inbound packets with errors (ifInErrors).",
            Source.INTERFACE,
            _INTERFACE,
            value=attrgetter("in_errors"),
            doc="ifInErrors",
        ),
        Family(
            "schoolnet_interface_transmit_errors_total",
            "counter",
            "Outbound packets not sent because of errors (ifOutErrors).",
            Source.INTERFACE,
            _INTERFACE,
            value=attrgetter("out_errors"),
            doc="ifOutErrors",
        ),
        Family(
            "schoolnet_interface_receive_discards_total",
            "counter",
            "Inbound packets discarded without error (ifInDiscards).",
            Source.INTERFACE,
            _INTERFACE,
            value=attrgetter("in_discards"),
            doc="ifInDiscards",
        ),
        Family(
            "schoolnet_interface_transmit_discards_total",
            "counter",
            "Outbound packets discarded without error (ifOutDiscards).",
            Source.INTERFACE,
            _INTERFACE,
            value=attrgetter("out_discards"),
            doc="ifOutDiscards",
        ),
        # -- device health, filled by device profiles --------------------------------------------
        Family(
            "schoolnet_device_cpu_usage_ratio",
            "gauge",
            "CPU utilisation 0..1 (one series per CPU or core where the device has several).",
            Source.PROFILE,
            ("cpu",),
            doc="CPU utilisation 0..1 (1-minute average where the device offers a choice); "
            "`cpu` names the CPU or core where there are several, else empty",
        ),
        Family(
            "schoolnet_device_memory_usage_ratio",
            "gauge",
            "Memory in use 0..1 (per memory pool where the device has several).",
            Source.PROFILE,
            ("pool",),
            doc="memory in use 0..1; `pool` names the memory pool where a device has several "
            '(Cisco "Processor", "I/O"; hrStorage description; board name)',
        ),
        Family(
            "schoolnet_device_memory_used_bytes",
            "gauge",
            "Memory in use in bytes, per pool.",
            Source.PROFILE,
            ("pool",),
            doc="memory in use in bytes, where the device tells",
        ),
        Family(
            "schoolnet_device_memory_total_bytes",
            "gauge",
            "Memory size in bytes, per pool.",
            Source.PROFILE,
            ("pool",),
            doc="memory size in bytes, where the device tells",
        ),
        Family(
            "schoolnet_device_temperature_celsius",
            "gauge",
            "Temperature reported by a sensor of the device.",
            Source.PROFILE,
            ("sensor",),
            doc="temperature of a sensor (ENTITY-SENSOR, CISCO-ENVMON, vendor tables)",
        ),
        Family(
            "schoolnet_device_fan_up",
            "gauge",
            "1 if the fan works, 0 if it failed.",
            Source.PROFILE,
            ("fan",),
            doc="1 if the fan works, 0 if it failed (fans the device reports as absent have no "
            "series)",
        ),
        Family(
            "schoolnet_device_psu_up",
            "gauge",
            "1 if the power supply works, 0 if it failed.",
            Source.PROFILE,
            ("psu",),
        ),
        Family(
            "schoolnet_device_poe_power_watts",
            "gauge",
            "Power delivered over Power-over-Ethernet, per power sourcing equipment (PSE).",
            Source.PROFILE,
            ("pse",),
            doc="power delivered over PoE by a power sourcing equipment (POWER-ETHERNET-MIB "
            "pethMainPseConsumptionPower; `pse` is its group index)",
        ),
        Family(
            "schoolnet_device_poe_budget_watts",
            "gauge",
            "Power-over-Ethernet budget (nominal power) per power sourcing equipment (PSE).",
            Source.PROFILE,
            ("pse",),
            doc="PoE budget of a PSE (pethMainPsePower)",
        ),
        Family(
            "schoolnet_interface_poe_delivering",
            "gauge",
            "1 if the port delivers Power-over-Ethernet, 0 if it does not.",
            Source.PROFILE,
            ("interface",),
            doc="1 if the port delivers PoE (pethPsePortDetectionStatus deliveringPower), else "
            "0; `interface` as on the interface series",
        ),
        Family(
            "schoolnet_wireless_clients",
            "gauge",
            "Associated wireless clients; one breakdown per device (by AP, radio and/or SSID), "
            "so sum() over a target is its total.",
            Source.PROFILE,
            ("ap", "radio", "ssid"),
            doc="associated clients. Each device reports one breakdown (a controller per AP and "
            "radio and/or SSID, an AP per SSID and radio), so `sum by (target)` is the device's "
            "total and `sum by (ap)` a controller's per-AP count. Devices that type these counts "
            "as Counter32 are still exposed as gauges",
        ),
        Family(
            "schoolnet_wireless_ap_up",
            "gauge",
            "1 if the controller sees the access point up, else 0.",
            Source.PROFILE,
            ("ap",),
            doc="controllers: 1 if the controller sees the AP up (associated), else 0",
        ),
        Family(
            "schoolnet_wireless_aps",
            "gauge",
            "Access points the controller knows.",
            Source.PROFILE,
            doc="controllers: access points the controller knows (up or not)",
        ),
        Family(
            "schoolnet_lldp_neighbor_info",
            "gauge",
            "A neighbour seen by LLDP on a local interface (always 1).",
            Source.PROFILE,
            ("interface", "neighbor", "neighbor_port"),
            doc="a neighbour seen by LLDP (LLDP-MIB lldpRemTable): local interface, its system "
            "name (else chassis id) and port id (else port description)",
        ),
        # -- per school --------------------------------------------------------------------------
        Family(
            "schoolnet_school_info",
            "gauge",
            "Names of a school and its member (always 1).",
            Source.SCHOOL,
            ("member_name", "school_name"),
            value=lambda member, school: 1,
            label_values=lambda member, school: (member.name, school.name),
            doc="the names people use (always 1), for dashboards and alert texts "
            "(`* on(member, school) group_left(school_name)`)",
        ),
        # The school calendar (monitor/calendar.py), at the moment of the scrape, in the
        # calendar's timezone; schools without a calendar have none of these.
        Family(
            "schoolnet_school_open",
            "gauge",
            "1 inside school hours on a day the school is not closed (its calendar).",
            Source.SCHOOL,
            value=_school_calendar(0),
            doc="only schools with a `calendar`: 1 inside school hours (`open:`) on a day that "
            "is not closed (`closed:`, `holidays:`), else 0",
        ),
        Family(
            "schoolnet_school_maintenance",
            "gauge",
            "1 inside a maintenance window of the school's calendar.",
            Source.SCHOOL,
            value=_school_calendar(1),
            doc="only schools with a `calendar`: 1 inside one of its `maintenance:` windows, "
            "else 0",
        ),
        Family(
            "schoolnet_school_next_open_timestamp_seconds",
            "gauge",
            "Unix time the school next opens; while it is open, when the current opening began.",
            Source.SCHOOL,
            value=_school_calendar(2),
            doc="only schools with a `calendar`: Unix time the school next opens; while it is "
            'open, when the current opening began (so `<= time() + 3600` means "open or opening '
            'within the hour"); absent if it does not open within about a year',
        ),
        # -- the collector itself ----------------------------------------------------------------
        # (COLLECTOR samples read the collector's own state: monitor/health.py)
        Family(
            "schoolnet_config_last_reload_successful",
            "gauge",
            "1 if the last load of targets.yaml succeeded, else 0.",
            Source.COLLECTOR,
            samples=lambda health, states: [((), health.reload.successful)],
        ),
        Family(
            "schoolnet_config_last_reload_success_timestamp_seconds",
            "gauge",
            "Unix time of the last successful load of targets.yaml.",
            Source.COLLECTOR,
            samples=lambda health, states: [((), health.reload.last_success)],
            doc="when it last succeeded",
        ),
        Family(
            "schoolnet_collector_schedule_delay_seconds",
            "summary",
            "How late probe rounds started against their schedule (count = rounds started).",
            Source.COLLECTOR,
            ("probe",),
            samples=_schedule_delay,
            doc="how late rounds started against their schedule; `_count` is the number of "
            "rounds started",
        ),
        Family(
            "schoolnet_collector_rounds_skipped_total",
            "counter",
            "Rounds not run because the previous round of the same target overran its interval.",
            Source.COLLECTOR,
            ("probe",),
            samples=lambda health, states: _per_probe(health.rounds.skipped),
        ),
        Family(
            "schoolnet_collector_snmp_requests_total",
            "counter",
            "SNMP requests sent (every GET, GETNEXT and GETBULK, not counting retries).",
            Source.COLLECTOR,
            samples=_statistic("schoolnet_collector_snmp_requests_total"),
        ),
        Family(
            "schoolnet_collector_snmp_varbinds_total",
            "counter",
            "Variable bindings received in SNMP responses.",
            Source.COLLECTOR,
            samples=_statistic("schoolnet_collector_snmp_varbinds_total"),
        ),
        Family(
            "schoolnet_collector_snmp_responses_decoded_total",
            "counter",
            "SNMP Response-PDUs decoded, by decoder: fastpath (our strict BER reader) or pyasn1.",
            Source.COLLECTOR,
            ("decoder",),
            samples=_statistic("schoolnet_collector_snmp_responses_decoded_total"),
            doc="SNMP Response-PDUs decoded by our strict BER reader (`fastpath`), or handed to "
            "`pyasn1` because the fast path does not take them (SNMPv1, values it refuses); a "
            "growing `pyasn1` share costs CPU (docs/performance.md)",
        ),
        Family(
            "schoolnet_collector_snmp_datagrams_dropped_total",
            "counter",
            "Datagrams to the SNMP client socket dropped before decoding, by reason.",
            Source.COLLECTOR,
            ("reason",),
            samples=_statistic("schoolnet_collector_snmp_datagrams_dropped_total"),
            doc="datagrams to the collector's SNMP client socket dropped before any decoding: "
            "`unmatched` answer no outstanding request (message id and source address/port must "
            "both match; ids are unpredictable), `malformed` are not an SNMP response at all; "
            "logged in at most one line a minute",
        ),
        Family(
            "schoolnet_collector_icmp_replies_ignored_total",
            "counter",
            "Echo replies thrown away, by reason.",
            Source.COLLECTOR,
            ("reason",),
            samples=_statistic("schoolnet_collector_icmp_replies_ignored_total"),
            doc="echo replies thrown away: `unmatched` answer no outstanding request (late, "
            "duplicate), `forged` have the right address and sequence but not the round's "
            "cookie, `malformed` are truncated",
        ),
        Family(
            "schoolnet_collector_icmp_send_errors_total",
            "counter",
            "Echo requests the socket refused to send.",
            Source.COLLECTOR,
            samples=_statistic("schoolnet_collector_icmp_send_errors_total"),
            doc="echo requests the socket refused to send (the round's error says why)",
        ),
        Family(
            "schoolnet_collector_targets",
            "gauge",
            "Targets by probe kind in the running config.",
            Source.COLLECTOR,
            ("probe",),
            samples=lambda health, states: [
                ((probe.kind,), sum(1 for s in states if probe.settings(s.target) is not None))
                for probe in health.probes
            ],
            doc="targets per probe kind (`icmp`, `snmp`) in the running config",
        ),
    )
}


def by_source(
    sources: Source | tuple[Source, ...], families: dict[str, Family] | None = None
) -> tuple[Family, ...]:
    """The families of these sources, in table order."""
    wanted = sources if isinstance(sources, tuple) else (sources,)
    table = FAMILIES if families is None else families
    return tuple(f for f in table.values() if f.source in wanted)


def reserved_labels() -> dict[str, str]:
    """Label names a target's static `labels:` may not use, each with the reason: every label a
    per-target family already carries (a second label of the same name makes the whole scrape
    invalid) and the ones Prometheus adds itself."""
    reserved = dict.fromkeys(BASE_LABELS, "every per-target series has it")
    for family in FAMILIES.values():
        if family.source.per_target:
            for name in family.labels:
                reserved.setdefault(name, f"{family.name} has it")
    for name in PROMETHEUS_LABELS:
        reserved.setdefault(name, "Prometheus adds it to every series")
    return reserved


def _check(families: dict[str, Family]) -> None:
    """The table's own rules, checked at import: a broken entry fails every test at once."""
    for name, f in families.items():
        rules = [
            re.fullmatch(r"schoolnet_[a-z0-9_]+", name) is not None,
            f.type in ("gauge", "counter", "summary"),
            (f.type == "counter") == name.endswith("_total"),
            f.help.endswith(".") and "\n" not in f.help and "\\" not in f.help,
            f.type != "summary" or f.source is Source.COLLECTOR,
        ]
        if f.source is Source.COLLECTOR:
            rules.append(f.samples is not None and f.value is None)
        elif f.source is Source.PROFILE:
            rules.append(f.value is None and f.samples is None)
        elif f.source is Source.INTERFACE:
            rules.append(f.value is not None and f.labels == _INTERFACE)
            rules.append(f.label_values is None)
        else:
            rules.append(f.value is not None and (f.label_values is None) == (not f.labels))
        if not all(rules):
            raise ValueError(f"monitor/families.py: {name} breaks the table's rules")


_check(FAMILIES)


# -- docs/metrics.md ------------------------------------------------------------------------------

DOC_SECTIONS = {
    "target": (Source.TARGET, Source.CLOCK, Source.PING, Source.SNMP, Source.DEVICE),
    "interface": (Source.INTERFACE,),
    "profile": (Source.PROFILE,),
    "school": (Source.SCHOOL,),
    "collector": (Source.COLLECTOR,),
}
_BLOCK = re.compile(
    r"(<!-- families: (\w+) \(generated[^\n]*-->\n)(.*?)(<!-- end of families -->)", re.S
)


def markdown_table(sources: tuple[Source, ...]) -> str:
    rows = ["| metric | type | labels | meaning |", "|---|---|---|---|"]
    for f in by_source(sources):
        labels = ", ".join(f"`{name}`" for name in f.labels)
        rows.append(f"| `{f.name}` | {f.type} | {labels} | {f.meaning} |")
    return "\n".join(rows) + "\n"


def render_docs(text: str) -> str:
    """docs/metrics.md with every generated block rewritten from the table."""

    def block(match: re.Match[str]) -> str:
        head, section, _, end = match.groups()
        return head + markdown_table(DOC_SECTIONS[section]) + end

    return _BLOCK.sub(block, text)


def main(argv: list[str]) -> int:
    """`python3 -m monitor.families [docs/metrics.md]`: rewrite the generated tables."""
    path = Path(argv[0] if argv else Path(__file__).parent.parent / "docs" / "metrics.md")
    text = path.read_text(encoding="utf-8")
    new = render_docs(text)
    if new != text:
        path.write_text(new, encoding="utf-8")
        print(f"{path}: tables rewritten from monitor/families.py")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
