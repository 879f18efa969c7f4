"""Exposition: time to render /metrics for a whole fleet, ours against prometheus-client's path.

    python -m bench exposition [--devices 5000] [--repeat 5]

Fills a result store with a fleet's worth of results (schools of ten devices: a 48-port switch,
a router, eight access points, plus the link) and renders it with our exposition and with the
reference: the same families built as prometheus-client metric families and rendered by
`generate_latest` (what the collector did before). Both outputs must parse to the same samples.
Figures are medians of CPU time: a cold scrape (nothing rendered before) and a steady one, as
Prometheus sees it every 30 s: every target has a new ping round since the last scrape (ping
every 15 s) and half of the devices a new SNMP poll (every 60 s); plus gzip at the level the
collector uses.
"""

from __future__ import annotations

import argparse
import dataclasses
import gzip
import statistics
import time
from pathlib import Path

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from monitor.calendar import Calendar, Weekly
from monitor.config.model import Config, Member, PingSettings, School, SnmpSettings, Target
from monitor.exposition import Exposition
from monitor.families import FAMILIES, Source
from monitor.profiles.evaluate import Sample
from monitor.results import Interface, PingRound, SnmpPoll
from monitor.store import ResultStore


def _interfaces(count: int, prefix: str, seed: int) -> tuple[Interface, ...]:
    return tuple(
        Interface(
            index=i,
            name=f"{prefix}{i}",
            alias=f"room {i % 40}" if i % 3 else "",
            oper_up=i % 4 != 0,
            admin_up=True,
            in_octets=seed * 1_000_003 + i * 7919,
            out_octets=seed * 999_983 + i * 104_729,
            in_errors=i % 5,
            out_errors=0,
            in_discards=i % 7,
            out_discards=0,
            speed_bytes=125_000_000.0,
        )
        for i in range(1, count + 1)
    )


# Every school on one calendar, the APs on a PoE schedule: the calendar families render too.
CALENDAR = Calendar(
    "school",
    open=tuple(Weekly(day, 450, 1020) for day in range(5)),
    maintenance=(Weekly(1, 1320, 120, "firmware night"),),
)
POE_SCHEDULE = tuple(Weekly(day, 1140, 1440) for day in range(7))


def synthetic_store(devices: int) -> tuple[ResultStore, list[tuple]]:
    """A store as a fleet's collector holds it; also returns (key, ping, poll) per target so a
    benchmark can report new results for some of them."""
    schools = []
    results = []
    now = time.time()
    for i in range(max(1, devices // 10)):
        targets = [
            Target(
                member="m",
                school=f"s{i}",
                id="rtr",
                role="router",
                host=f"10.{i}.0.1",
                snmp=SnmpSettings(),
            ),
            Target(
                member="m",
                school=f"s{i}",
                id="sw",
                role="switch",
                host=f"10.{i}.0.2",
                snmp=SnmpSettings(),
                parent="rtr",
                labels=(("building", "A"),),
            ),
        ]
        targets += [
            Target(
                member="m",
                school=f"s{i}",
                id=f"ap-{a}",
                role="ap",
                host=f"10.{i}.0.{11 + a}",
                snmp=SnmpSettings(),
                parent="sw",
                expected_off=POE_SCHEDULE,
            )
            for a in range(8)
        ]
        targets.append(
            Target(
                member="m",
                school=f"s{i}",
                id="internet",
                role="link",
                host=f"10.{i}.0.254",
                ping=PingSettings(),
                bandwidth=62_500_000.0,
            )
        )
        schools.append(
            School(
                id=f"s{i}",
                name=f"School {i}",
                member="m",
                targets=tuple(targets),
                calendar=CALENDAR,
            )
        )
        for t in targets:
            ping = PingRound(now, 5, (0.0012, 0.0011, 0.0013, 0.0012, 0.0014))
            poll = None
            if t.role != "link":
                ports, prefix = {"switch": (55, "Gi1/0/"), "router": (10, "Gi0/0/")}.get(
                    t.role, (4, "wlan")
                )
                samples = [
                    Sample("schoolnet_device_cpu_usage_ratio", (("cpu", "0"),), 0.12),
                    Sample("schoolnet_device_memory_usage_ratio", (), 0.43),
                    Sample("schoolnet_device_temperature_celsius", (("sensor", "chassis"),), 41.0),
                ]
                if t.role == "switch":
                    samples += [
                        Sample(
                            "schoolnet_interface_poe_delivering",
                            (("interface", f"Gi1/0/{p}"),),
                            float(p % 2),
                        )
                        for p in range(1, 49)
                    ]
                if t.role == "ap":
                    samples += [
                        Sample("schoolnet_wireless_clients", (("radio", r),), 7.0)
                        for r in ("2.4GHz", "5GHz")
                    ]
                poll = SnmpPoll(
                    now,
                    True,
                    0.05,
                    uptime_seconds=123456.7,
                    sys_name=t.id,
                    sys_descr="Cisco IOS Software, C9200L",
                    vendor="cisco",
                    model="C9200L-48P-4X",
                    profile="cisco-ios",
                    interfaces=_interfaces(ports, prefix, i),
                    samples=tuple(samples),
                )
            results.append((t.key, ping, poll))
    config = Config(path=Path("fleet.yaml"), members=(Member("m", "Member", tuple(schools)),))
    store = ResultStore()
    store.sync(config)
    for key, ping, poll in results:
        store.record_ping(key, ping)
        if poll is not None:
            store.record_snmp(key, poll)
    return store, results


def reference_render(store: ResultStore) -> bytes:
    """The same samples through prometheus-client's generic path, as the collector did first:
    one metric family object per family of the table (monitor/families.py), filled from the same
    value functions, and rendered by `generate_latest`. Per-target families only (the school and
    collector families are a handful of lines)."""
    states = store.snapshot()
    static = sorted({n for s in states for n, _ in s.target.labels})
    base_names = ["member", "school", "target", "role", *static]
    families: dict[str, object] = {}

    def add(name: str, extra_names: tuple[str, ...], values: list[str], value) -> None:
        if name not in families:
            spec = FAMILIES[name]
            cls = CounterMetricFamily if spec.type == "counter" else GaugeMetricFamily
            metric = name[:-6] if name.endswith("_total") else name
            families[name] = cls(metric, spec.help, labels=base_names + list(extra_names))
        families[name].add_metric(values, value)

    def each(source: Source, subject, base: list[str]) -> None:
        for spec in FAMILIES.values():
            if spec.source is source and (value := spec.value(subject)) is not None:
                extra = list(spec.label_values(subject)) if spec.label_values else []
                add(spec.name, spec.labels, base + extra, value)

    for state in states:
        t = state.target
        labels = dict(t.labels)
        base = [t.member, t.school, t.id, t.role] + [labels.get(n, "") for n in static]
        each(Source.TARGET, state, base)
        each(Source.CLOCK, state, base)
        if state.ping is not None:
            each(Source.PING, state, base)
        poll = state.snmp
        if poll is None:
            continue
        each(Source.SNMP, poll, base)
        if not poll.ok:
            continue
        each(Source.DEVICE, poll, base)
        for sample in poll.samples:
            spec = FAMILIES[sample.family]
            given = dict(sample.labels)
            add(
                spec.name, spec.labels, base + [given.get(n, "") for n in spec.labels], sample.value
            )
        for i in poll.interfaces:
            each(Source.INTERFACE, i, base + [i.name, i.alias])

    class _Families:
        def collect(self):
            return iter([families[n] for n in FAMILIES if n in families])

    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Families())
    return generate_latest(registry)


def _cpu(fn) -> float:
    start = time.process_time()
    fn()
    return time.process_time() - start


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench exposition")
    parser.add_argument("--devices", type=int, default=5000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)
    store, results = synthetic_store(args.devices)
    exposition = Exposition(store)
    body = exposition.render()
    lines = body.count(b"\n")
    cold, warm, zipped, reference = [], [], [], []
    for r in range(args.repeat):
        exposition = Exposition(store)  # nothing cached: every target renders
        cold.append(_cpu(exposition.render))
        for n, (key, ping, poll) in enumerate(results):  # what 30 s bring
            store.record_ping(key, ping)
            if poll is not None and n % 2 == r % 2:
                store.record_snmp(key, dataclasses.replace(poll, duration=poll.duration + 1e-6))
        warm.append(_cpu(exposition.render))
        body = exposition.render()
        zipped.append(_cpu(lambda b=body: gzip.compress(b, compresslevel=1)))
        reference.append(_cpu(lambda: reference_render(store)))
    cold_s, warm_s = statistics.median(cold), statistics.median(warm)
    gzip_s, ref_s = statistics.median(zipped), statistics.median(reference)
    print(
        f"{args.devices} devices: {lines} lines, {len(body) / 2**20:.1f} MiB "
        f"({len(gzip.compress(body, 1)) / 2**20:.1f} MiB gzipped)"
    )
    print(f"  ours, cold (every target new)   {cold_s:7.3f} CPU-s")
    print(f"  ours, steady (30 s of results)  {warm_s:7.3f} CPU-s  (+ gzip {gzip_s:.3f})")
    print(f"  prometheus-client generate_latest {ref_s:7.3f} CPU-s")
    print(
        f"RESULT exposition_seconds={warm_s + gzip_s:.3f} ratio={warm_s / ref_s:.2f} "
        f"(warm scrape with gzip; cold {cold_s:.3f}; prometheus-client {ref_s:.3f})"
    )
    return 0
