"""The /metrics view of the result store, in Prometheus text format 0.0.4.

A scrape only reads the latest results; it never probes. Every per-target series carries member,
school, target, role and the target's static `labels:` (a target without one of those label names
has it empty, which Prometheus treats as absent, so every family keeps one label set). Families
whose values do not exist yet (no reply, no poll) are left out rather than reported as 0.

prometheus-client's generic path builds an object per sample on every scrape, which for a fleet of
thousands of switches takes longer than a scrape may. Here each target's lines are rendered once
per new result and kept: a scrape joins cached strings, and only targets that reported since the
last scrape are rendered again. prometheus-client still renders its process metrics.
"""

from __future__ import annotations

import math
import re
import threading
from dataclasses import dataclass

from prometheus_client import (
    CollectorRegistry,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)

from monitor.profiles.families import FAMILIES
from monitor.store import ResultStore, TargetState

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
BASE_LABELS = ("member", "school", "target", "role")
_DESCR_LIMIT = 200
_SPACE = re.compile(r"\s+")


@dataclass(frozen=True)
class Family:
    name: str
    type: str  # gauge | counter
    help: str


def _families() -> dict[str, Family]:
    builtin = [
        (
            "schoolnet_up",
            "gauge",
            "1 if the target answered its last round of probes (any kind), else 0.",
        ),
        (
            "schoolnet_target_info",
            "gauge",
            "Static facts about a target from targets.yaml (always 1).",
        ),
        ("schoolnet_school_info", "gauge", "Names of a school and its member (always 1)."),
        (
            "schoolnet_link_bandwidth_bytes",
            "gauge",
            "Contracted capacity of a school's link in bytes per second.",
        ),
        ("schoolnet_ping_up", "gauge", "1 if at least one echo reply came back in the last round."),
        (
            "schoolnet_ping_rtt_seconds",
            "gauge",
            "Median round-trip time of the last round's replies.",
        ),
        (
            "schoolnet_ping_jitter_seconds",
            "gauge",
            "Mean absolute difference of consecutive RTTs in the last round.",
        ),
        ("schoolnet_ping_loss_ratio", "gauge", "Lost / sent echo requests in the last round."),
        ("schoolnet_ping_requests_total", "counter", "Echo requests sent."),
        ("schoolnet_ping_replies_total", "counter", "Echo replies received in time."),
        ("schoolnet_snmp_up", "gauge", "1 if the last SNMP poll succeeded."),
        ("schoolnet_snmp_poll_duration_seconds", "gauge", "How long the last SNMP poll took."),
        (
            "schoolnet_device_uptime_seconds",
            "gauge",
            "sysUpTime of the device's SNMP agent (a drop means a reboot).",
        ),
        (
            "schoolnet_device_info",
            "gauge",
            "Identity of the device as it reports itself (always 1).",
        ),
        ("schoolnet_interface_up", "gauge", "1 if ifOperStatus is up(1)."),
        ("schoolnet_interface_admin_up", "gauge", "1 if ifAdminStatus is up(1)."),
        (
            "schoolnet_interface_speed_bytes",
            "gauge",
            "Interface speed in bytes per second (ifSpeed, or ifHighSpeed above 4.29 Gbit/s).",
        ),
        (
            "schoolnet_interface_receive_bytes_total",
            "counter",
            "Bytes received (ifHCInOctets, else ifInOctets unfolded across 32-bit wraps).",
        ),
        (
            "schoolnet_interface_transmit_bytes_total",
            "counter",
            "Bytes sent (ifHCOutOctets, else ifOutOctets unfolded across 32-bit wraps).",
        ),
        (
            "schoolnet_interface_receive_errors_total",
            "counter",
            "Inbound packets with errors (ifInErrors).",
        ),
        (
            "schoolnet_interface_transmit_errors_total",
            "counter",
            "Outbound packets not sent because of errors (ifOutErrors).",
        ),
        (
            "schoolnet_interface_receive_discards_total",
            "counter",
            "Inbound packets discarded without error (ifInDiscards).",
        ),
        (
            "schoolnet_interface_transmit_discards_total",
            "counter",
            "Outbound packets discarded without error (ifOutDiscards).",
        ),
    ]
    families = {name: Family(name, kind, text) for name, kind, text in builtin}
    for family in FAMILIES.values():
        families[family.name] = Family(family.name, "gauge", family.help)
    return families


FAMILY = _families()
_INTERFACE_COUNTERS = (
    ("schoolnet_interface_receive_bytes_total", "in_octets"),
    ("schoolnet_interface_transmit_bytes_total", "out_octets"),
    ("schoolnet_interface_receive_errors_total", "in_errors"),
    ("schoolnet_interface_transmit_errors_total", "out_errors"),
    ("schoolnet_interface_receive_discards_total", "in_discards"),
    ("schoolnet_interface_transmit_discards_total", "out_discards"),
)
_ESCAPE = str.maketrans({"\\": r"\\", '"': r"\"", "\n": r"\n"})

Fragments = dict[str, list[str]]  # family name -> its lines for one target, while rendering
Encoded = dict[str, bytes]  # the same, joined and encoded: what the cache keeps


def _short(text: str) -> str:
    """sysDescr is often several lines; a label should be one short line."""
    text = _SPACE.sub(" ", text).strip()
    return text if len(text) <= _DESCR_LIMIT else text[: _DESCR_LIMIT - 1] + "…"


def _label(name: str, value: str) -> str:
    return f'{name}="{value.translate(_ESCAPE)}"'


def _value(value: float | int | bool) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value))


def _same(old: tuple, new: tuple) -> bool:
    """Results are immutable and replaced when they change: identity says "unchanged" without a
    deep comparison of sixty interfaces (the cache holds the old objects, so ids stay unique)."""
    return all(a is b or (type(a) is int and a == b) for a, b in zip(old, new, strict=True))


class Exposition:
    """Renders a store; create one per store and call `render()` from any thread."""

    def __init__(self, store: ResultStore) -> None:
        self.store = store
        self._lock = threading.Lock()
        self._static: tuple[str, ...] = ()
        self._ping: dict[tuple, tuple[tuple, Encoded]] = {}
        self._snmp: dict[tuple, tuple[tuple, Encoded]] = {}
        self._target: dict[tuple, tuple[tuple, Encoded]] = {}
        self._bases: dict[tuple, tuple[object, str]] = {}
        self._interfaces: dict[tuple[str, str, str], str] = {}
        self._process = CollectorRegistry()
        ProcessCollector(registry=self._process)
        PlatformCollector(registry=self._process)

    def render(self) -> bytes:
        with self._lock:
            states = self.store.snapshot()
            static = tuple(sorted({name for s in states for name, _ in s.target.labels}))
            if static != self._static:  # a reload changed the label set: render everything anew
                self._static = static
                self._bases.clear()
                self._interfaces.clear()
                self._ping.clear()
                self._snmp.clear()
                self._target.clear()
            parts: dict[str, list[bytes]] = {name: [] for name in FAMILY}
            keys = set()
            for state in states:
                key = state.target.key
                keys.add(key)
                for cache, source, render in (
                    (self._target, (state.target, state.up), self._render_target),
                    (
                        self._ping,
                        (state.target, state.ping, state.ping_requests_total),
                        self._render_ping,
                    ),
                    (self._snmp, (state.target, state.snmp), self._render_snmp),
                ):
                    cached = cache.get(key)
                    if cached is None or not _same(cached[0], source):
                        encoded = {
                            name: "".join(lines).encode()
                            for name, lines in render(state).items()
                            if lines
                        }
                        cached = (source, encoded)
                        cache[key] = cached
                    for name, fragment in cached[1].items():
                        parts[name].append(fragment)
            for cache in (self._target, self._ping, self._snmp, self._bases):
                for key in [k for k in cache if k not in keys]:
                    del cache[key]
            out: list[bytes] = []
            for name, fragments in parts.items():
                if fragments:
                    family = FAMILY[name]
                    out.append(
                        f"# HELP {name} {family.help}\n# TYPE {name} {family.type}\n".encode()
                    )
                    out.extend(fragments)
            out.append(self._schools(states).encode())
            out.append(self._collector(states).encode())
            out.append(generate_latest(self._process))
        return b"".join(out)

    # -- per target --
    def _base(self, state: TargetState) -> str:
        """The target's labels as text, built once per target (and label set)."""
        target = state.target
        cached = self._bases.get(target.key)
        if cached is not None and cached[0] is target:
            return cached[1]
        labels = dict(target.labels)
        values = (target.member, target.school, target.id, target.role)
        parts = [_label(n, v) for n, v in zip(BASE_LABELS, values, strict=True)]
        parts += [_label(n, labels.get(n, "")) for n in self._static]
        base = ",".join(parts)
        self._bases[target.key] = (target, base)
        return base

    def _interface_labels(self, base: str, name: str, alias: str) -> str:
        """`{base,interface="..",alias=".."} `; names and aliases rarely change between polls."""
        key = (base, name, alias)
        labels = self._interfaces.get(key)
        if labels is None:
            if len(self._interfaces) > 1_000_000:
                self._interfaces.clear()
            labels = self._interfaces[key] = (
                f"{{{base},{_label('interface', name)},{_label('alias', alias)}}} "
            )
        return labels

    def _render_target(self, state: TargetState) -> Fragments:
        target = state.target
        base = self._base(state)
        out: Fragments = {}
        parent = _label("parent", target.parent or "")
        out["schoolnet_target_info"] = [
            f"schoolnet_target_info{{{base},{_label('name', target.name or target.id)},"
            f"{_label('address', target.host)},{parent}}} 1\n"
        ]
        if state.up is not None:
            out["schoolnet_up"] = [f"schoolnet_up{{{base},{parent}}} {_value(state.up)}\n"]
        if target.role == "link" and target.bandwidth is not None:
            via = target.via
            out["schoolnet_link_bandwidth_bytes"] = [
                f"schoolnet_link_bandwidth_bytes{{{base},"
                f"{_label('via_target', via.target if via else '')},"
                f"{_label('interface', via.interface if via else '')}}} "
                f"{_value(target.bandwidth)}\n"
            ]
        return out

    def _render_ping(self, state: TargetState) -> Fragments:
        ping = state.ping
        if ping is None:
            return {}
        base = self._base(state)
        out: Fragments = {"schoolnet_ping_up": [f"schoolnet_ping_up{{{base}}} {_value(ping.up)}\n"]}
        if ping.sent:
            out["schoolnet_ping_loss_ratio"] = [
                f"schoolnet_ping_loss_ratio{{{base}}} {_value(ping.loss_ratio)}\n"
            ]
        if (median := ping.rtt_median) is not None:
            out["schoolnet_ping_rtt_seconds"] = [
                f"schoolnet_ping_rtt_seconds{{{base}}} {_value(median)}\n"
            ]
        if (jitter := ping.jitter) is not None:
            out["schoolnet_ping_jitter_seconds"] = [
                f"schoolnet_ping_jitter_seconds{{{base}}} {_value(jitter)}\n"
            ]
        out["schoolnet_ping_requests_total"] = [
            f"schoolnet_ping_requests_total{{{base}}} {state.ping_requests_total}\n"
        ]
        out["schoolnet_ping_replies_total"] = [
            f"schoolnet_ping_replies_total{{{base}}} {state.ping_replies_total}\n"
        ]
        return out

    def _render_snmp(self, state: TargetState) -> Fragments:
        poll = state.snmp
        if poll is None:
            return {}
        base = self._base(state)
        out: Fragments = {
            "schoolnet_snmp_up": [f"schoolnet_snmp_up{{{base}}} {_value(poll.ok)}\n"],
            "schoolnet_snmp_poll_duration_seconds": [
                f"schoolnet_snmp_poll_duration_seconds{{{base}}} {_value(poll.duration)}\n"
            ],
        }
        if not poll.ok:
            return out  # stale device data is not reported as current
        if poll.uptime_seconds is not None:
            out["schoolnet_device_uptime_seconds"] = [
                f"schoolnet_device_uptime_seconds{{{base}}} {_value(poll.uptime_seconds)}\n"
            ]
        out["schoolnet_device_info"] = [
            f"schoolnet_device_info{{{base},{_label('sys_name', poll.sys_name)},"
            f"{_label('sys_descr', _short(poll.sys_descr))},{_label('vendor', poll.vendor)},"
            f"{_label('model', poll.model)}}} 1\n"
        ]
        for sample in poll.samples:
            family = FAMILIES[sample.family]
            given = dict(sample.labels)
            extra = "".join("," + _label(n, given.get(n, "")) for n in family.labels)
            out.setdefault(family.name, []).append(
                f"{family.name}{{{base}{extra}}} {_value(sample.value)}\n"
            )
        if not poll.interfaces:
            return out
        up, admin, speed = [], [], []
        counters: list[list[str]] = [[] for _ in _INTERFACE_COUNTERS]
        for interface in poll.interfaces:
            labels = self._interface_labels(base, interface.name, interface.alias)
            if interface.oper_up is not None:
                up.append(f"schoolnet_interface_up{labels}{'1' if interface.oper_up else '0'}\n")
            if interface.admin_up is not None:
                admin.append(
                    f"schoolnet_interface_admin_up{labels}{'1' if interface.admin_up else '0'}\n"
                )
            if interface.speed_bytes is not None:
                speed.append(
                    f"schoolnet_interface_speed_bytes{labels}{_value(interface.speed_bytes)}\n"
                )
            for lines, (name, attr) in zip(counters, _INTERFACE_COUNTERS, strict=True):
                value = getattr(interface, attr)
                if value is not None:  # counters are ints: no formatting decisions to make
                    lines.append(f"{name}{labels}{value}\n")
        out["schoolnet_interface_up"] = up
        out["schoolnet_interface_admin_up"] = admin
        out["schoolnet_interface_speed_bytes"] = speed
        for lines, (name, _) in zip(counters, _INTERFACE_COUNTERS, strict=True):
            out[name] = lines
        return out

    # -- per school and for the collector itself --
    def _schools(self, states: list[TargetState]) -> str:
        config = self.store.config
        if config is None:
            return ""
        lines = [
            "# HELP schoolnet_school_info " + FAMILY["schoolnet_school_info"].help + "\n",
            "# TYPE schoolnet_school_info gauge\n",
        ]
        for member in config.members:
            for school in member.schools:
                lines.append(
                    f"schoolnet_school_info{{{_label('member', member.id)},"
                    f"{_label('school', school.id)},{_label('member_name', member.name)},"
                    f"{_label('school_name', school.name)}}} 1\n"
                )
        return "".join(lines) if len(lines) > 2 else ""

    def _collector(self, states: list[TargetState]) -> str:
        reload = self.store.reload
        counters = self.store.counters
        kinds = sorted(counters.rounds)
        out = [
            "# HELP schoolnet_config_last_reload_successful 1 if the last load of targets.yaml "
            "succeeded, else 0.\n# TYPE schoolnet_config_last_reload_successful gauge\n"
            f"schoolnet_config_last_reload_successful {_value(reload.successful)}\n",
            "# HELP schoolnet_config_last_reload_success_timestamp_seconds Unix time of the last "
            "successful load of targets.yaml.\n"
            "# TYPE schoolnet_config_last_reload_success_timestamp_seconds gauge\n"
            "schoolnet_config_last_reload_success_timestamp_seconds "
            f"{_value(reload.last_success)}\n",
            "# HELP schoolnet_collector_schedule_delay_seconds How late probe rounds started "
            "against their schedule (count = rounds started).\n"
            "# TYPE schoolnet_collector_schedule_delay_seconds summary\n",
        ]
        for kind in kinds:
            out.append(
                f'schoolnet_collector_schedule_delay_seconds_count{{probe="{kind}"}} '
                f"{counters.rounds[kind]}\n"
            )
            out.append(
                f'schoolnet_collector_schedule_delay_seconds_sum{{probe="{kind}"}} '
                f"{_value(counters.delay_sum[kind])}\n"
            )
        out.append(
            "# HELP schoolnet_collector_rounds_skipped_total Rounds not run because the "
            "previous round of the same target overran its interval.\n"
            "# TYPE schoolnet_collector_rounds_skipped_total counter\n"
        )
        out += [
            f'schoolnet_collector_rounds_skipped_total{{probe="{kind}"}} {counters.skipped[kind]}\n'
            for kind in kinds
        ]
        out.append(
            "# HELP schoolnet_collector_snmp_requests_total SNMP requests sent (every GET, GETNEXT "
            "and GETBULK, not counting retries).\n"
            "# TYPE schoolnet_collector_snmp_requests_total counter\n"
            f"schoolnet_collector_snmp_requests_total {counters.snmp_requests}\n"
            "# HELP schoolnet_collector_snmp_varbinds_total Variable bindings received in SNMP "
            "responses.\n# TYPE schoolnet_collector_snmp_varbinds_total counter\n"
            f"schoolnet_collector_snmp_varbinds_total {counters.snmp_varbinds}\n"
            "# HELP schoolnet_collector_targets Targets by probe kind in the running config.\n"
            "# TYPE schoolnet_collector_targets gauge\n"
            f'schoolnet_collector_targets{{probe="icmp"}} '
            f"{sum(1 for s in states if s.target.ping is not None)}\n"
            f'schoolnet_collector_targets{{probe="snmp"}} '
            f"{sum(1 for s in states if s.target.snmp is not None)}\n"
        )
        return "".join(out)
