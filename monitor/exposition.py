"""The /metrics view of the result store, in Prometheus text format 0.0.4.

A scrape only reads the latest results; it never probes. Every per-target series carries member,
school, target, role and the target's static `labels:` (a target without one of those label names
has it empty, which Prometheus treats as absent, so every family keeps one label set). Families
whose values do not exist yet (no reply, no poll) are left out rather than reported as 0.

Which families exist, their help, type and labels and where each value comes from is the table in
monitor/families.py; this module only knows how to render each kind of source, and caches.

prometheus-client's generic path builds an object per sample on every scrape, which for a fleet of
thousands of switches takes longer than a scrape may. Here each target's lines are rendered once
per new result and kept: a scrape joins cached strings, and only targets that reported since the
last scrape are rendered again. prometheus-client still renders its process metrics.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable

from prometheus_client import (
    CollectorRegistry,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)

from monitor.families import BASE_LABELS, FAMILIES, SCHOOL_LABELS, Family, Source, by_source
from monitor.health import Health
from monitor.store import ResultStore, TargetState

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_ESCAPE = str.maketrans({"\\": r"\\", '"': r"\"", "\n": r"\n"})

Fragments = dict[str, list[str]]  # family name -> its lines for one target, while rendering
Encoded = dict[str, bytes]  # the same, joined and encoded: what the cache keeps


def _label(name: str, value: str) -> str:
    return f'{name}="{value.translate(_ESCAPE)}"'


def _value(value: float | int | bool) -> str:
    kind = type(value)
    if kind is int:  # counters, the most common value: no formatting decisions to make
        return str(value)
    if kind is bool:
        return "1" if value else "0"
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

    def __init__(
        self,
        store: ResultStore,
        health: Health | None = None,
        families: dict[str, Family] = FAMILIES,
    ) -> None:
        """`health`: the collector's own state (monitor/health.py), rendered beside the results;
        `families`: the contract to render (tests may extend the table)."""
        self.store = store
        self.health = health if health is not None else Health()
        self._families = families
        self._by = {source: by_source(source, families) for source in Source}
        self._plans = {source: _plan(self._by[source]) for source in Source}
        self._interface = tuple((f.name, f.value) for f in self._by[Source.INTERFACE])
        self._per_target = tuple(n for n, f in families.items() if f.source.per_target)
        self._header = {
            f.name: f"# HELP {f.name} {f.help}\n# TYPE {f.name} {f.type}\n".encode()
            for f in families.values()
        }
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
            parts: dict[str, list[bytes]] = {name: [] for name in self._per_target}
            keys = set()
            clock = self._plans[Source.CLOCK]
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
                if clock:  # values that change with the time, not with results: never cached
                    for name, lines in _render(clock, state, self._base(state)).items():
                        parts[name].append("".join(lines).encode())
            for cache in (self._target, self._ping, self._snmp, self._bases):
                for key in [k for k in cache if k not in keys]:
                    del cache[key]
            out: list[bytes] = []
            for name, fragments in parts.items():
                if fragments:
                    out.append(self._header[name])
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
        return _render(self._plans[Source.TARGET], state, self._base(state))

    def _render_ping(self, state: TargetState) -> Fragments:
        if state.ping is None:
            return {}
        return _render(self._plans[Source.PING], state, self._base(state))

    def _render_snmp(self, state: TargetState) -> Fragments:
        poll = state.snmp
        if poll is None:
            return {}
        base = self._base(state)
        out = _render(self._plans[Source.SNMP], poll, base)
        if not poll.ok:
            return out  # stale device data is not reported as current
        out.update(_render(self._plans[Source.DEVICE], poll, base))
        for sample in poll.samples:
            family = self._families[sample.family]
            given = dict(sample.labels)
            extra = "".join("," + _label(n, given.get(n, "")) for n in family.labels)
            out.setdefault(family.name, []).append(
                f"{family.name}{{{base}{extra}}} {_value(sample.value)}\n"
            )
        if not poll.interfaces:
            return out
        lines: list[list[str]] = [[] for _ in self._interface]
        for interface in poll.interfaces:
            labels = self._interface_labels(base, interface.name, interface.alias)
            for into, (name, read) in zip(lines, self._interface, strict=True):
                value = read(interface)
                if value is None:
                    continue
                kind = type(value)  # (inline: this line runs for every port of every switch)
                if kind is int:
                    into.append(f"{name}{labels}{value}\n")
                elif kind is bool:
                    into.append(f"{name}{labels}{'1' if value else '0'}\n")
                else:
                    into.append(f"{name}{labels}{_value(value)}\n")
        for into, (name, _) in zip(lines, self._interface, strict=True):
            out[name] = into
        return out

    # -- per school and for the collector itself --
    def _schools(self, states: list[TargetState]) -> str:
        config = self.store.config
        if config is None:
            return ""
        out = []
        for family in self._by[Source.SCHOOL]:
            lines = []
            for member in config.members:
                for school in member.schools:
                    value = family.value(member, school)
                    if value is None:
                        continue
                    values = (member.id, school.id, *_label_values(family, member, school))
                    labels = _labels((*SCHOOL_LABELS, *family.labels), values)
                    lines.append(f"{family.name}{{{labels}}} {_value(value)}\n")
            if lines:
                out.append(self._header[family.name].decode())
                out += lines
        return "".join(out)

    def _collector(self, states: list[TargetState]) -> str:
        out = []
        for family in self._by[Source.COLLECTOR]:
            out.append(self._header[family.name].decode())
            for values, value in family.samples(self.health, states):
                labels = _labels(family.labels, values)
                labels = f"{{{labels}}}" if labels else ""
                if family.type == "summary":
                    count, total = value
                    out.append(f"{family.name}_count{labels} {_value(count)}\n")
                    out.append(f"{family.name}_sum{labels} {_value(total)}\n")
                else:
                    out.append(f"{family.name}{labels} {_value(value)}\n")
        return "".join(out)


def _labels(names: tuple[str, ...], values: tuple[str, ...]) -> str:
    return ",".join([_label(n, v) for n, v in zip(names, values, strict=True)])


def _label_values(family: Family, *subject: object) -> tuple[str, ...]:
    return family.label_values(*subject) if family.label_values is not None else ()


Plan = tuple[tuple[str, Callable, tuple[str, ...], Callable | None], ...]


def _plan(families: tuple[Family, ...]) -> Plan:
    """What `_render` needs of each family, unpacked once (it runs for every new result)."""
    return tuple((f.name, f.value, f.labels, f.label_values) for f in families)


def _render(plan: Plan, subject: object, base: str) -> Fragments:
    """One line per family whose value exists, for one subject (a target state or a poll)."""
    out: Fragments = {}
    for name, read, names, read_labels in plan:
        value = read(subject)
        if value is None:
            continue
        if names:
            extra = _labels(names, read_labels(subject))
            out[name] = [f"{name}{{{base},{extra}}} {_value(value)}\n"]
        else:
            out[name] = [f"{name}{{{base}}} {_value(value)}\n"]
    return out
