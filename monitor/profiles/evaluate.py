"""From the values a poll fetched to samples: rows, `where:` filters, value maps, expressions,
scaling, labels, aggregation and `unless:`.

Inputs are plain data, so this runs the same against a live device and in unit tests:
- `scalars`: {instance OID: value} from the GET with the system group,
- `table`: {column OID: {row index: value}} from the walk,
- `lookups`: {(column OID, row index): value} fetched by GET for labels of other tables,
- `interfaces`: {ifIndex: interface name as exposed on interface series}.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

from monitor.families import FAMILIES
from monitor.profiles.schema import OID, LabelSource, Metric, ModelSource, Profile
from monitor.profiles.values import comparable, format_index, format_value, number


@dataclass(frozen=True)
class Sample:
    family: str
    labels: tuple[tuple[str, str], ...]
    value: float


@dataclass
class Data:
    scalars: Mapping[OID, object] = field(default_factory=dict)
    table: Mapping[OID, Mapping[OID, object]] = field(default_factory=dict)
    lookups: Mapping[tuple[OID, OID], object] = field(default_factory=dict)
    interfaces: Mapping[int, str] = field(default_factory=dict)

    def column(self, oid: OID, index: OID) -> object:
        column = self.table.get(oid)
        if column is not None:
            return column.get(index)
        return self.lookups.get((oid, index))


def _rows(metric: Metric, data: Data) -> Iterator[OID]:
    if metric.scalar:
        if metric.oid in data.scalars:
            yield ()
        return
    yield from data.table.get(metric.oid, {})


def _get(metric: Metric, data: Data, oid: OID, index: OID) -> object:
    return data.scalars.get(oid) if metric.scalar else data.column(oid, index)


def _source_index(source: LabelSource, index: OID, data: Data) -> OID | None:
    """The index at which an oid/interface source looks its value up, for the row `index`."""
    if source.via is not None:
        pointer = data.column(source.via, index)
        if isinstance(pointer, bool) or not isinstance(pointer, int | tuple) or not pointer:
            return None
        return pointer if isinstance(pointer, tuple) else (pointer,)
    if source.index is not None:
        start, end = source.index
        return index[start:end]
    return index


def lookup_keys(profile: Profile, data: Data) -> set[tuple[OID, OID]]:
    """(column, index) pairs that label sources need and the walk did not bring: fetched by GET."""
    wanted: set[tuple[OID, OID]] = set()
    for metric in profile.metrics.values():
        if metric.scalar:
            continue
        for index in _rows(metric, data):
            for _, sources in metric.labels:
                for source in sources:
                    if source.kind != "oid" or source.oid in data.table:
                        continue
                    at = _source_index(source, index, data)
                    if at:
                        wanted.add((source.oid, at))  # type: ignore[arg-type]
    return wanted


def _label(metric: Metric, sources: tuple[LabelSource, ...], index: OID, data: Data) -> str:
    for source in sources:
        text = ""
        if source.kind == "value":
            text = source.value
        elif source.kind == "index":
            start, end = source.index or (0, None)
            text = format_index(index[start:end], source.format)
        elif metric.scalar:
            raw = data.scalars.get(source.oid)  # type: ignore[arg-type]
            text = _mapped(source, raw)
        else:
            at = _source_index(source, index, data)
            if at:
                if source.kind == "interface":
                    text = data.interfaces.get(at[0], "") if len(at) == 1 else ""
                else:
                    text = _mapped(source, data.column(source.oid, at))  # type: ignore[arg-type]
        text = text.strip()
        if text:
            return text
    return ""


def _mapped(source: LabelSource, raw: object) -> str:
    if raw is None:
        return ""
    if source.map is not None:
        key = comparable(raw)
        for k, v in source.map:
            if k == key:
                return v
    return format_value(raw, source.format)


def _passes(metric: Metric, index: OID, data: Data) -> bool:
    for condition in metric.where:
        raw = _get(metric, data, condition.oid, index)
        if raw is None:
            return False
        text = comparable(raw)
        if condition.equals is not None and text not in condition.equals:
            return False
        if condition.regex is not None and not condition.regex.search(text):
            return False
    return True


def _value(metric: Metric, index: OID, data: Data) -> float | None:
    raw = _get(metric, data, metric.oid, index)
    if raw is None:
        return None
    if metric.map is not None:
        key = comparable(raw)
        value = next((v for k, v in metric.map if k == key), metric.default)
    else:
        value = number(raw)
    if value is None and (metric.expression is None or "value" in metric.expression.names):
        return None
    if metric.expression is not None:
        names: dict[str, float | None] = {"value": value}
        for name, oid in metric.columns:
            names[name] = number(_get(metric, data, oid, index))
        value = metric.expression.evaluate(names)
        if value is None:
            return None
    return value * metric.scale


def metric_samples(metric: Metric, data: Data) -> list[Sample]:
    family = FAMILIES[metric.family]
    label_specs = dict(metric.labels)
    rows: list[tuple[tuple[str, ...], float, OID]] = []
    for index in _rows(metric, data):
        if not _passes(metric, index, data):
            continue
        value = _value(metric, index, data)
        if value is None and metric.aggregate != "count":
            continue
        labels = tuple(
            _label(metric, label_specs[name], index, data) if name in label_specs else ""
            for name in family.labels
        )
        rows.append((labels, 0.0 if value is None else value, index))
    if metric.aggregate is not None:
        groups: dict[tuple[str, ...], list[float]] = {}
        for labels, value, _ in rows:
            groups.setdefault(labels, []).append(value)
        combine = {"sum": sum, "count": len, "max": max, "min": min}[metric.aggregate]
        return [
            Sample(
                metric.family,
                tuple(zip(family.labels, labels, strict=True)),
                float(combine(values)),
            )
            for labels, values in groups.items()
        ]
    samples = []
    seen: set[tuple[str, ...]] = set()
    varying = [i for i, name in enumerate(family.labels) if name in label_specs]
    for labels, value, index in rows:
        if labels in seen:
            if not varying:
                continue
            # two rows with the same label values: keep both, told apart by their index
            position = varying[0]
            labels = (
                *labels[:position],
                f"{labels[position]}#{'.'.join(map(str, index))}",
                *labels[position + 1 :],
            )
        seen.add(labels)
        samples.append(Sample(metric.family, tuple(zip(family.labels, labels, strict=True)), value))
    return samples


def evaluate(profile: Profile, data: Data) -> list[Sample]:
    produced = {mid: metric_samples(metric, data) for mid, metric in profile.metrics.items()}
    final: dict[str, list[Sample]] = {}

    def resolve(mid: str, seen: tuple[str, ...]) -> list[Sample]:
        if mid not in final:
            others = [
                u for u in profile.metrics[mid].unless if u in profile.metrics and u not in seen
            ]
            if any(resolve(u, (*seen, mid)) for u in others):
                final[mid] = []
            else:
                final[mid] = produced[mid]
        return final[mid]

    samples: list[Sample] = []
    for mid in profile.metrics:
        samples.extend(resolve(mid, (mid,)))
    return samples


def model_text(source: ModelSource, sys_descr: str) -> str:
    """The model a fixed value or a sysDescr regex gives (OID sources are read by the poller)."""
    if source.kind == "value":
        return source.value
    if source.kind == "sys_descr" and source.regex is not None:
        found = source.regex.search(sys_descr)
        if not found:
            return ""
        if "model" in source.regex.groupindex:
            return found.group("model") or ""
        return (found.group(1) if source.regex.groups else found.group(0)) or ""
    return ""
