"""The /metrics view of the result store: every family of PRODUCT.md's metric table.

A scrape only reads the latest results (it never probes). Every per-target series carries member,
school, target, role and the target's static `labels:`; a target without one of the static label
names gets it empty, which Prometheus treats as absent, so each family keeps one label set.
Families whose values do not exist yet (no reply, no poll) are left out rather than reported as 0.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    Metric,
    SummaryMetricFamily,
)
from prometheus_client.registry import Collector

from monitor.profiles.families import FAMILIES
from monitor.store import ResultStore, TargetState

BASE_LABELS = ["member", "school", "target", "role"]
_DESCR_LIMIT = 200
_SPACE = re.compile(r"\s+")


def _short(text: str) -> str:
    """sysDescr is often several lines; a label should be one short line."""
    text = _SPACE.sub(" ", text).strip()
    return text if len(text) <= _DESCR_LIMIT else text[: _DESCR_LIMIT - 1] + "…"


class _Families:
    """Creates families lazily with the base + static label names, in a stable order."""

    def __init__(self, static: list[str]) -> None:
        self.static = static
        self.families: dict[str, Metric] = {}

    def gauge(self, name: str, doc: str, extra: tuple[str, ...] = ()) -> GaugeMetricFamily:
        family = self.families.get(name)
        if family is None:
            family = GaugeMetricFamily(name, doc, labels=BASE_LABELS + self.static + list(extra))
            self.families[name] = family
        return family  # type: ignore[return-value]

    def counter(self, name: str, doc: str, extra: tuple[str, ...] = ()) -> CounterMetricFamily:
        family = self.families.get(name)
        if family is None:
            family = CounterMetricFamily(name, doc, labels=BASE_LABELS + self.static + list(extra))
            self.families[name] = family
        return family  # type: ignore[return-value]


class StoreCollector(Collector):
    def __init__(self, store: ResultStore) -> None:
        self.store = store

    def collect(self) -> Iterator[Metric]:
        states = self.store.snapshot()
        static = sorted({name for s in states for name, _ in s.target.labels})
        fam = _Families(static)
        for state in states:
            target = state.target
            labels = dict(target.labels)
            base = [target.member, target.school, target.id, target.role] + [
                labels.get(name, "") for name in static
            ]
            _target(fam, state, base)
            if state.ping is not None:
                _ping(fam, state, base)
            if state.snmp is not None:
                _snmp(fam, state, base)
        yield from (f for f in fam.families.values() if f.samples)
        yield from self._collector_families(states)

    def _collector_families(self, states: list[TargetState]) -> Iterator[Metric]:
        reload = self.store.reload
        yield GaugeMetricFamily(
            "schoolnet_config_last_reload_successful",
            "1 if the last load of targets.yaml succeeded, else 0.",
            value=1 if reload.successful else 0,
        )
        yield GaugeMetricFamily(
            "schoolnet_config_last_reload_success_timestamp_seconds",
            "Unix time of the last successful load of targets.yaml.",
            value=reload.last_success,
        )
        counters = self.store.counters
        rounds = SummaryMetricFamily(
            "schoolnet_collector_schedule_delay_seconds",
            "How late probe rounds started against their schedule (count = rounds started).",
            labels=["probe"],
        )
        skipped = CounterMetricFamily(
            "schoolnet_collector_rounds_skipped",
            "Rounds not run because the previous round of the same target overran its interval.",
            labels=["probe"],
        )
        for kind in sorted(counters.rounds):
            rounds.add_metric([kind], counters.rounds[kind], counters.delay_sum[kind])
            skipped.add_metric([kind], counters.skipped[kind])
        yield rounds
        yield skipped
        yield CounterMetricFamily(
            "schoolnet_collector_snmp_requests",
            "SNMP requests sent (every GET, GETNEXT and GETBULK, not counting retries).",
            value=counters.snmp_requests,
        )
        yield CounterMetricFamily(
            "schoolnet_collector_snmp_varbinds",
            "Variable bindings received in SNMP responses.",
            value=counters.snmp_varbinds,
        )
        targets = GaugeMetricFamily(
            "schoolnet_collector_targets",
            "Targets by probe kind in the running config.",
            labels=["probe"],
        )
        targets.add_metric(["icmp"], sum(1 for s in states if s.target.ping is not None))
        targets.add_metric(["snmp"], sum(1 for s in states if s.target.snmp is not None))
        yield targets


def _target(fam: _Families, state: TargetState, base: list[str]) -> None:
    target = state.target
    fam.gauge(
        "schoolnet_target_info",
        "Static facts about a target from targets.yaml (always 1).",
        ("name", "address", "parent"),
    ).add_metric(base + [target.name or target.id, target.host, target.parent or ""], 1)
    up = state.up
    if up is not None:
        fam.gauge(
            "schoolnet_up",
            "1 if the target answered its last round of probes (any kind), else 0.",
            ("parent",),
        ).add_metric(base + [target.parent or ""], 1 if up else 0)
    if target.role == "link" and target.bandwidth is not None:
        via = target.via
        fam.gauge(
            "schoolnet_link_bandwidth_bytes",
            "Contracted capacity of a school's link in bytes per second.",
            ("via_target", "interface"),
        ).add_metric(
            base + [via.target if via else "", via.interface if via else ""], target.bandwidth
        )


def _ping(fam: _Families, state: TargetState, base: list[str]) -> None:
    ping = state.ping
    assert ping is not None
    fam.gauge(
        "schoolnet_ping_up", "1 if at least one echo reply came back in the last round."
    ).add_metric(base, 1 if ping.up else 0)
    if ping.sent:
        fam.gauge(
            "schoolnet_ping_loss_ratio", "Lost / sent echo requests in the last round."
        ).add_metric(base, ping.loss_ratio)
    median = ping.rtt_median
    if median is not None:
        fam.gauge(
            "schoolnet_ping_rtt_seconds", "Median round-trip time of the last round's replies."
        ).add_metric(base, median)
    jitter = ping.jitter
    if jitter is not None:
        fam.gauge(
            "schoolnet_ping_jitter_seconds",
            "Mean absolute difference of consecutive RTTs in the last round.",
        ).add_metric(base, jitter)
    fam.counter("schoolnet_ping_requests", "Echo requests sent.").add_metric(
        base, state.ping_requests_total
    )
    fam.counter("schoolnet_ping_replies", "Echo replies received in time.").add_metric(
        base, state.ping_replies_total
    )


_INTERFACE_COUNTERS = (
    (
        "schoolnet_interface_receive_bytes",
        "in_octets",
        "Bytes received (ifHCInOctets, else ifInOctets unfolded across 32-bit wraps).",
    ),
    (
        "schoolnet_interface_transmit_bytes",
        "out_octets",
        "Bytes sent (ifHCOutOctets, else ifOutOctets unfolded across 32-bit wraps).",
    ),
    (
        "schoolnet_interface_receive_errors",
        "in_errors",
        "Inbound packets with errors (ifInErrors).",
    ),
    (
        "schoolnet_interface_transmit_errors",
        "out_errors",
        "Outbound packets not sent because of errors (ifOutErrors).",
    ),
    (
        "schoolnet_interface_receive_discards",
        "in_discards",
        "Inbound packets discarded without error (ifInDiscards).",
    ),
    (
        "schoolnet_interface_transmit_discards",
        "out_discards",
        "Outbound packets discarded without error (ifOutDiscards).",
    ),
)


def _snmp(fam: _Families, state: TargetState, base: list[str]) -> None:
    poll = state.snmp
    assert poll is not None
    fam.gauge("schoolnet_snmp_up", "1 if the last SNMP poll succeeded.").add_metric(
        base, 1 if poll.ok else 0
    )
    fam.gauge(
        "schoolnet_snmp_poll_duration_seconds", "How long the last SNMP poll took."
    ).add_metric(base, poll.duration)
    if not poll.ok:
        return  # stale device data is not reported as current
    if poll.uptime_seconds is not None:
        fam.gauge(
            "schoolnet_device_uptime_seconds",
            "sysUpTime of the device's SNMP agent (a drop means a reboot).",
        ).add_metric(base, poll.uptime_seconds)
    fam.gauge(
        "schoolnet_device_info",
        "Identity of the device as it reports itself (always 1).",
        ("sys_name", "sys_descr", "vendor", "model"),
    ).add_metric(base + [poll.sys_name, _short(poll.sys_descr), poll.vendor, poll.model], 1)
    _profile_samples(fam, poll, base)
    if not poll.interfaces:
        return
    extra = ("interface", "alias")
    up = fam.gauge("schoolnet_interface_up", "1 if ifOperStatus is up(1).", extra)
    admin = fam.gauge("schoolnet_interface_admin_up", "1 if ifAdminStatus is up(1).", extra)
    speed = fam.gauge(
        "schoolnet_interface_speed_bytes",
        "Interface speed in bytes per second (ifSpeed, or ifHighSpeed above 4.29 Gbit/s).",
        extra,
    )
    counters = [(fam.counter(name, doc, extra), attr) for name, attr, doc in _INTERFACE_COUNTERS]
    for interface in poll.interfaces:
        labels = base + [interface.name, interface.alias]
        if interface.oper_up is not None:
            up.add_metric(labels, 1 if interface.oper_up else 0)
        if interface.admin_up is not None:
            admin.add_metric(labels, 1 if interface.admin_up else 0)
        if interface.speed_bytes is not None:
            speed.add_metric(labels, interface.speed_bytes)
        for family, attr in counters:
            value = getattr(interface, attr)
            if value is not None:
                family.add_metric(labels, value)


def _profile_samples(fam: _Families, poll, base: list[str]) -> None:
    """Health values from the device profile. Each family has the label names its catalogue entry
    declares (monitor/profiles/families.py), filled with "" where a device does not tell, so a
    family keeps one label set whatever the vendor."""
    for sample in poll.samples:
        family = FAMILIES[sample.family]
        labels = dict(sample.labels)
        fam.gauge(family.name, family.help, family.labels).add_metric(
            base + [labels.get(name, "") for name in family.labels], sample.value
        )
