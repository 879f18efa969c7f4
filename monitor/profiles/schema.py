"""Loading and validating device profiles (the YAML files beside this module, and the operator's
own directories given with `--profiles`).

Profiles are read with the same line-aware YAML reader as targets.yaml (monitor/config/yamltree.py)
and checked completely: an unknown key, a malformed OID, a family that does not exist, an
expression naming a column it does not define, a label the family does not have, or an `extends:`
that leads nowhere is a problem reported as `FILE:LINE:COL: key.path: message`, e.g.
`ops/cisco-ios.yaml:12:12: metrics.cpu.scale: expected a number, got 'x'`. Every problem of every
file is collected and raised together in one ProfileError. docs/profiles.md describes the format.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from monitor.config.problems import ConfigError, Problem
from monitor.config.yamltree import Mapping, Node, Scalar, Sequence, parse
from monitor.families import FAMILIES, Source
from monitor.profiles.expr import Expression, ExpressionError

OID = tuple[int, ...]
GENERIC = "generic"
AGGREGATES = ("sum", "count", "max", "min")
INDEX_FORMATS = ("dotted", "mac", "string", "hex")
VALUE_FORMATS = ("text", "mac", "hex")
_NAME = re.compile(r"^[a-z0-9][a-z0-9-]*$")
_ID = re.compile(r"^[a-z][a-z0-9_]*$")
# Data files beside the shipped profiles that are not profiles (enterprises.yaml: vendors by
# IANA enterprise number, monitor/profiles/enterprises.py).
TABLES = {"enterprises"}
_SHIPPED = Path(__file__).parent.resolve()


class ProfileError(ConfigError):
    """Broken profile files: `problems` holds every problem of every file, each with its file,
    line and column and the key it is about, file by file."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__(problems)
        self.problems.sort(key=lambda p: p.path)  # (stable: in file order within a file)
        self.args = ("\n".join(str(p) for p in self.problems),)

    def __str__(self) -> str:
        return str(self.args[0])


@dataclass(frozen=True)
class Condition:
    """`where:` a column of the same row equals one of some values, or matches a regex."""

    oid: OID
    equals: tuple[str, ...] | None = None
    regex: re.Pattern | None = None


@dataclass(frozen=True)
class LabelSource:
    """Where one label value comes from (see docs/profiles.md, "Labels")."""

    kind: str  # "index" | "oid" | "interface" | "value"
    index: tuple[int, int | None] | None = None  # a slice of the row index
    oid: OID | None = None
    via: OID | None = None
    value: str = ""
    format: str = ""
    map: tuple[tuple[str, str], ...] | None = None


@dataclass(frozen=True)
class Metric:
    id: str
    family: str
    oid: OID
    scalar: bool
    columns: tuple[tuple[str, OID], ...] = ()
    expression: Expression | None = field(default=None, compare=False)
    scale: float = 1.0
    map: tuple[tuple[str, float], ...] | None = None
    default: float | None = None
    where: tuple[Condition, ...] = ()
    labels: tuple[tuple[str, tuple[LabelSource, ...]], ...] = ()
    aggregate: str | None = None
    unless: tuple[str, ...] = ()  # skipped when any of these metrics has samples

    def oids(self) -> list[OID]:
        """The OIDs whose values this metric reads for its rows (not its label lookups)."""
        return [self.oid, *(oid for _, oid in self.columns), *(c.oid for c in self.where)]


@dataclass(frozen=True)
class Probe:
    """A match condition that asks the device: the first value under `oid` matches `regex`."""

    oid: OID
    regex: re.Pattern | None = None


@dataclass(frozen=True)
class MatchRule:
    sys_object_id: tuple[OID, ...] = ()
    sys_descr: tuple[re.Pattern, ...] = ()
    probe: Probe | None = None


@dataclass(frozen=True)
class ModelSource:
    kind: str  # "value" | "sys_descr" | "oid"
    value: str = ""
    regex: re.Pattern | None = None
    oid: OID | None = None


@dataclass
class Profile:
    name: str
    path: str
    vendor: str
    description: str = ""
    extends: str | None = None
    match: tuple[MatchRule, ...] = ()
    model: tuple[ModelSource, ...] = ()
    bulk: bool | None = None  # None while loading: inherit from the parent (True for generic)
    vendor_default: bool = False
    metrics: dict[str, Metric] = field(default_factory=dict)

    @property
    def scalars(self) -> list[OID]:
        """Instances fetched with GET together with the system group (the model is read once,
        when the profile is matched)."""
        wanted: list[OID] = []
        for metric in self.metrics.values():
            if metric.scalar:
                wanted.extend(metric.oids())
        return list(dict.fromkeys(wanted))

    @property
    def columns(self) -> list[OID]:
        """Columns walked together with the interface tables: the metrics' value and `where:`
        columns, `via:` pointers, and label columns of the same tables (their rows come along for
        free). Label columns of other tables are fetched by GET for the rows that need them."""
        walked: list[OID] = []
        for metric in self.metrics.values():
            if not metric.scalar:
                walked.extend(metric.oids())
        tables = {oid[:-1] for oid in walked}
        for metric in self.metrics.values():
            for _, sources in metric.labels:
                for source in sources:
                    if source.kind == "oid" and source.oid and source.oid[:-1] in tables:
                        walked.append(source.oid)
                    if source.via:  # the pointer column, usually of the metric's own table
                        walked.append(source.via)
        return list(dict.fromkeys(walked))

    def rank(self, sys_object_id: OID | None, sys_descr: str) -> list[tuple[tuple, MatchRule]]:
        """The rules of this profile that match without asking the device, with their
        specificity: (length of the matched sysObjectID prefix, sysDescr rule, probe)."""
        ranked = []
        for rule in self.match:
            prefix_len = 0
            if rule.sys_object_id:
                hits = [
                    len(p)
                    for p in rule.sys_object_id
                    if sys_object_id and sys_object_id[: len(p)] == p
                ]
                if not hits:
                    continue
                prefix_len = max(hits)
            if rule.sys_descr and not any(r.search(sys_descr) for r in rule.sys_descr):
                continue
            ranked.append(((prefix_len, bool(rule.sys_descr), rule.probe is not None), rule))
        return ranked


# --- parsing -------------------------------------------------------------------------------------


class _Rejected(Exception):
    """A value was rejected and its problem recorded: the part being read is abandoned."""


class _Ctx:
    """The problems of one file, placed by the key path they are about (`metrics.cpu.oid`)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.problems: list[Problem] = []
        self.keys: dict[str, Node] = {}  # key path -> where the key is written
        self.values: dict[str, Node] = {}  # key path -> where its value is written

    def index(self, node: Node, prefix: str = "") -> None:
        """Learn where every key path of the file is written."""
        if isinstance(node, Mapping):
            for key, value in node:
                path = f"{prefix}.{key.text}" if prefix else key.text
                self.keys[path], self.values[path] = key, value
                self.index(value, path)
        elif isinstance(node, Sequence):
            for i, item in enumerate(node.items):
                path = f"{prefix}[{i}]"
                self.keys[path] = self.values[path] = item
                self.index(item, path)

    def _node(self, where: str, at_key: bool) -> Node:
        path = where
        while path:
            found = (self.keys if at_key else self.values).get(path)
            if found is not None:
                # a scalar's problem is its value; a block's is where its key is written
                return found if isinstance(found, Scalar) else self.keys.get(path, found)
            path = re.sub(r"(\.[^.\[]*|\[\d+\])$", "", path)  # up one key
        return Node(1, 1)

    def report(self, where: str, message: str) -> None:
        node = self._node(where, at_key=message.startswith("unknown key"))
        text = f"{where}: {message}" if where else message
        self.problems.append(Problem(self.path, node.line, node.column, text))

    def fail(self, where: str, message: str) -> _Rejected:
        """Record the problem; the caller raises what this returns to abandon the part."""
        self.report(where, message)
        return _Rejected(message)

    def attempt(self, read, *args, default=None):
        """`read(*args)`, or `default` if it was rejected (its problem is recorded), so that one
        bad value does not hide the next."""
        try:
            return read(*args)
        except _Rejected:
            return default


def _keys(ctx: _Ctx, where: str, data: Any, allowed: set[str], required: set[str] = frozenset()):
    """Every unknown key is reported (and skipped); a missing required key or a value that is not
    a mapping abandons the part."""
    if not isinstance(data, dict):
        raise ctx.fail(where, f"expected a mapping, got {type(data).__name__}")
    for key in data:
        if key not in allowed:
            ctx.report(
                f"{where}.{key}" if where else str(key),
                f"unknown key (allowed: {', '.join(sorted(allowed))})",
            )
    missing = [key for key in sorted(required) if key not in data]
    for key in missing:
        ctx.report(where, f"missing required key {key!r}")
    if missing:
        raise _Rejected("missing keys")
    return data


def parse_oid(ctx: _Ctx, where: str, value: Any) -> OID:
    if not isinstance(value, str) or not re.fullmatch(r"\.?\d+(\.\d+)+", value.strip()):
        raise ctx.fail(where, f"expected a numeric OID like 1.3.6.1.2.1.1.1.0, got {value!r}")
    return tuple(int(x) for x in value.strip().lstrip(".").split("."))


def _regex(ctx: _Ctx, where: str, value: Any) -> re.Pattern:
    if not isinstance(value, str):
        raise ctx.fail(where, f"expected a regular expression string, got {value!r}")
    try:
        return re.compile(value)
    except re.error as exc:
        raise ctx.fail(where, f"invalid regular expression: {exc}") from None


def _list(value: Any) -> list:
    return value if isinstance(value, list) else [value]


def _number(ctx: _Ctx, where: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ctx.fail(where, f"expected a number, got {value!r}")
    if isinstance(value, str):  # allow fractions such as 1/1000 for readability
        fraction = re.fullmatch(
            r"\s*([-+]?[\d.]+(?:e[-+]?\d+)?)\s*/\s*([\d.]+(?:e[-+]?\d+)?)\s*", value
        )
        try:
            if fraction:
                return float(fraction.group(1)) / float(fraction.group(2))
            return float(value)
        except (ValueError, ZeroDivisionError):
            raise ctx.fail(where, f"expected a number, got {value!r}") from None
    return float(value)


def _scalar_text(ctx: _Ctx, where: str, value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ctx.fail(where, f"expected a number or text, got {value!r}")
    return str(value)


def _slice(ctx: _Ctx, where: str, value: Any) -> tuple[int, int | None]:
    if value is True or value == "all":
        return (0, None)
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return (value, value + 1)
    if (
        isinstance(value, list)
        and len(value) == 2
        and isinstance(value[0], int)
        and (value[1] is None or isinstance(value[1], int))
    ):
        return (value[0], value[1])
    raise ctx.fail(
        where, f"expected `all`, a position (0-based) or [start, end] of the index, got {value!r}"
    )


def _label_source(ctx: _Ctx, where: str, data: Any) -> LabelSource:
    if data == "index":
        return LabelSource("index", index=(0, None), format="dotted")
    if isinstance(data, str) and data != "index":
        raise ctx.fail(where, f"expected `index` or a mapping, got {data!r}")
    _keys(ctx, where, data, {"index", "oid", "via", "interface", "value", "format", "map"})
    kinds = [k for k in ("oid", "interface", "value") if k in data]
    if len(kinds) > 1:
        raise ctx.fail(where, f"give only one of oid, interface, value (got {', '.join(kinds)})")
    kind = kinds[0] if kinds else "index"
    if kind == "interface" and data["interface"] is not True:
        raise ctx.fail(f"{where}.interface", "expected true")
    if "via" in data and "index" in data:
        raise ctx.fail(where, "give either index or via, not both")
    if "via" in data and kind not in ("oid", "interface"):
        raise ctx.fail(f"{where}.via", "only for oid or interface sources")
    index = _slice(ctx, f"{where}.index", data["index"]) if "index" in data else None
    if kind == "index" and index is None:
        raise ctx.fail(where, "expected one of index, oid, interface, value")
    formats = INDEX_FORMATS if kind == "index" else VALUE_FORMATS
    fmt = data.get("format", formats[0])
    if fmt not in formats:
        raise ctx.fail(f"{where}.format", f"expected one of {', '.join(formats)}, got {fmt!r}")
    mapping = None
    if "map" in data:
        if not isinstance(data["map"], dict):
            raise ctx.fail(f"{where}.map", "expected a mapping of value: label text")
        mapping = tuple(
            (_scalar_text(ctx, f"{where}.map", k), _scalar_text(ctx, f"{where}.map.{k}", v))
            for k, v in data["map"].items()
        )
    return LabelSource(
        kind,
        index=index,
        oid=parse_oid(ctx, f"{where}.oid", data["oid"]) if kind == "oid" else None,
        via=parse_oid(ctx, f"{where}.via", data["via"]) if "via" in data else None,
        value=_scalar_text(ctx, f"{where}.value", data["value"]) if kind == "value" else "",
        format=fmt,
        map=mapping,
    )


_METRIC_KEYS = {
    "family",
    "oid",
    "columns",
    "value",
    "scale",
    "map",
    "default",
    "where",
    "labels",
    "aggregate",
    "unless",
}


def _metric(ctx: _Ctx, where: str, metric_id: str, data: Any) -> Metric | None:
    """The metric, or None with every problem of it recorded (each part is read on its own, so
    a bad `scale:` does not hide a bad `labels:`)."""
    before = len(ctx.problems)
    _keys(ctx, where, data, _METRIC_KEYS, {"family", "oid"})

    def read_family():
        family = FAMILIES.get(data["family"])
        if family is None or family.source is not Source.PROFILE:
            known = sorted(f.name for f in FAMILIES.values() if f.source is Source.PROFILE)
            raise ctx.fail(
                f"{where}.family", f"unknown family {data['family']!r} (known: {', '.join(known)})"
            )
        return family

    family = ctx.attempt(read_family)
    oid = ctx.attempt(parse_oid, ctx, f"{where}.oid", data["oid"])
    if oid is None:
        return None  # whether it is a scalar decides how everything else is read
    scalar = oid[-1] == 0

    def read_columns() -> list[tuple[str, OID]]:
        columns: list[tuple[str, OID]] = []
        _keys(ctx, f"{where}.columns", data["columns"], set(data["columns"] or {}))
        for name, column in data["columns"].items():
            if not isinstance(name, str) or not _ID.match(name) or name == "value":
                raise ctx.fail(f"{where}.columns.{name}", "names are lowercase words, not `value`")
            column_oid = parse_oid(ctx, f"{where}.columns.{name}", column)
            if (column_oid[-1] == 0) != scalar:
                raise ctx.fail(
                    f"{where}.columns.{name}",
                    "a scalar metric (OID ending in .0) reads only scalars; a column metric only "
                    "columns of rows with the same index",
                )
            columns.append((name, column_oid))
        return columns

    columns = ctx.attempt(read_columns, default=[]) if "columns" in data else []

    def read_expression() -> Expression | None:
        if "value" not in data:
            if columns:
                raise ctx.fail(f"{where}.columns", "columns are only used by a `value:` expression")
            return None
        try:
            return Expression(
                _scalar_text(ctx, f"{where}.value", data["value"]),
                {"value"} | {name for name, _ in columns},
            )
        except ExpressionError as exc:
            raise ctx.fail(f"{where}.value", str(exc)) from None

    def read_map() -> tuple[tuple[str, float], ...]:
        if not isinstance(data["map"], dict) or not data["map"]:
            raise ctx.fail(f"{where}.map", "expected a mapping of raw value: number")
        return tuple(
            (_scalar_text(ctx, f"{where}.map", k), _number(ctx, f"{where}.map.{k}", v))
            for k, v in data["map"].items()
        )

    def read_condition(i: int, cond: Any) -> Condition:
        cwhere = f"{where}.where[{i}]"
        _keys(ctx, cwhere, cond, {"oid", "equals", "regex"}, {"oid"})
        if ("equals" in cond) == ("regex" in cond):
            raise ctx.fail(cwhere, "give exactly one of equals, regex")
        cond_oid = parse_oid(ctx, f"{cwhere}.oid", cond["oid"])
        if (cond_oid[-1] == 0) != scalar:
            raise ctx.fail(f"{cwhere}.oid", "a condition reads the same kind of OID as the metric")
        return Condition(
            cond_oid,
            equals=tuple(_scalar_text(ctx, f"{cwhere}.equals", v) for v in _list(cond["equals"]))
            if "equals" in cond
            else None,
            regex=_regex(ctx, f"{cwhere}.regex", cond["regex"]) if "regex" in cond else None,
        )

    def read_label(name: str, spec: Any) -> tuple[str, tuple[LabelSource, ...]]:
        sources = tuple(
            _label_source(
                ctx, f"{where}.labels.{name}" + (f"[{i}]" if isinstance(spec, list) else ""), s
            )
            for i, s in enumerate(_list(spec))
        )
        if scalar and any(s.kind in ("index", "interface") or s.index or s.via for s in sources):
            raise ctx.fail(f"{where}.labels.{name}", "a scalar metric has no row index to label by")
        return name, sources

    def read_labels() -> list[tuple[str, tuple[LabelSource, ...]]]:
        raw_labels = data.get("labels") or {}
        _keys(ctx, f"{where}.labels", raw_labels, set(family.labels) if family else set(raw_labels))
        read = [ctx.attempt(read_label, name, spec) for name, spec in raw_labels.items()]
        return [label for label in read if label is not None]

    def read_aggregate() -> str | None:
        aggregate = data.get("aggregate")
        if aggregate is not None and aggregate not in AGGREGATES:
            raise ctx.fail(f"{where}.aggregate", f"expected one of {', '.join(AGGREGATES)}")
        return aggregate

    def read_unless() -> tuple[str, ...]:
        unless = tuple(_list(data.get("unless", [])))
        if any(not isinstance(u, str) or u == metric_id for u in unless):
            raise ctx.fail(f"{where}.unless", "expected ids of other metrics of this profile")
        return unless

    expression = ctx.attempt(read_expression)
    mapping = ctx.attempt(read_map) if "map" in data else None
    conditions = [
        ctx.attempt(read_condition, i, cond) for i, cond in enumerate(_list(data.get("where", [])))
    ]
    labels = ctx.attempt(read_labels, default=[])
    aggregate = ctx.attempt(read_aggregate)
    unless = ctx.attempt(read_unless, default=())
    scale = ctx.attempt(_number, ctx, f"{where}.scale", data["scale"]) if "scale" in data else 1.0
    default = (
        ctx.attempt(_number, ctx, f"{where}.default", data["default"])
        if "default" in data
        else None
    )
    if len(ctx.problems) > before:
        return None
    return Metric(
        id=metric_id,
        family=family.name,
        oid=oid,
        scalar=scalar,
        columns=tuple(columns),
        expression=expression,
        scale=scale,
        map=mapping,
        default=default,
        where=tuple(conditions),
        labels=tuple(labels),
        aggregate=aggregate,
        unless=unless,
    )


def _match(ctx: _Ctx, data: Any) -> tuple[MatchRule, ...]:
    rules = [ctx.attempt(_match_rule, ctx, i, rule) for i, rule in enumerate(_list(data))]
    return tuple(rule for rule in rules if rule is not None)


def _match_rule(ctx: _Ctx, i: int, rule: Any) -> MatchRule:
    where = f"match[{i}]"
    _keys(ctx, where, rule, {"sys_object_id", "sys_descr", "probe"})
    if not rule:
        raise ctx.fail(where, "a rule needs sys_object_id, sys_descr or probe")
    probe = None
    if "probe" in rule:
        _keys(ctx, f"{where}.probe", rule["probe"], {"oid", "regex"}, {"oid"})
        probe = Probe(
            parse_oid(ctx, f"{where}.probe.oid", rule["probe"]["oid"]),
            _regex(ctx, f"{where}.probe.regex", rule["probe"]["regex"])
            if "regex" in rule["probe"]
            else None,
        )
    return MatchRule(
        sys_object_id=tuple(
            parse_oid(ctx, f"{where}.sys_object_id", o)
            for o in _list(rule.get("sys_object_id", []))
        ),
        sys_descr=tuple(
            _regex(ctx, f"{where}.sys_descr", r) for r in _list(rule.get("sys_descr", []))
        ),
        probe=probe,
    )


def _model(ctx: _Ctx, data: Any) -> tuple[ModelSource, ...]:
    sources = []
    for i, spec in enumerate(_list(data)):
        where = f"model[{i}]" if isinstance(data, list) else "model"
        if isinstance(spec, str):
            sources.append(ModelSource("value", value=spec))
            continue
        _keys(ctx, where, spec, {"value", "sys_descr", "oid"})
        if len(spec) != 1:
            raise ctx.fail(where, "give exactly one of value, sys_descr, oid")
        if "value" in spec:
            sources.append(ModelSource("value", value=_scalar_text(ctx, where, spec["value"])))
        elif "sys_descr" in spec:
            sources.append(
                ModelSource("sys_descr", regex=_regex(ctx, f"{where}.sys_descr", spec["sys_descr"]))
            )
        else:
            sources.append(ModelSource("oid", oid=parse_oid(ctx, f"{where}.oid", spec["oid"])))
    return tuple(sources)


_PROFILE_KEYS = {
    "vendor",
    "description",
    "extends",
    "match",
    "model",
    "bulk",
    "vendor_default",
    "metrics",
}


def parse_profile(
    ctx: _Ctx, name: str, path: str, data: Any
) -> tuple[Profile, dict[str, Metric | None]] | None:
    """One file -> its Profile (without the parent's metrics) and its own metric entries, where
    None removes a metric inherited from the parent; None if the file has problems (all of them
    recorded in `ctx`)."""
    before = len(ctx.problems)
    if not _NAME.match(name):
        ctx.report("", "file names are lowercase words joined by '-' (e.g. cisco-ios.yaml)")
    try:
        _keys(ctx, "", data, _PROFILE_KEYS, {"vendor"})
    except _Rejected:
        return None
    vendor = data["vendor"]
    if not isinstance(vendor, str) or not _NAME.match(vendor):
        ctx.report("vendor", f"expected a lowercase vendor name, got {vendor!r}")
    extends = data.get("extends")
    if extends is None and name != GENERIC:
        extends = GENERIC
    if extends is not None and not isinstance(extends, str):
        ctx.report("extends", f"expected a profile name, got {extends!r}")
    for key in ("bulk", "vendor_default"):
        if key in data and not isinstance(data[key], bool):
            ctx.report(key, f"expected true or false, got {data[key]!r}")
    if "description" in data and not isinstance(data["description"], str):
        ctx.report("description", "expected text")
    metrics: dict[str, Metric | None] = {}
    raw_metrics = data.get("metrics") or {}
    if (
        ctx.attempt(
            _keys,
            ctx,
            "metrics",
            raw_metrics,
            set(raw_metrics) if isinstance(raw_metrics, dict) else set(),
        )
        is None
    ):
        raw_metrics = {}
    for metric_id, spec in raw_metrics.items():
        where = f"metrics.{metric_id}"
        if not isinstance(metric_id, str) or not _ID.match(metric_id):
            ctx.report(where, "metric ids are lowercase words joined by '_'")
            continue
        metrics[metric_id] = (
            None if spec is None else ctx.attempt(_metric, ctx, where, metric_id, spec)
        )
    match = ctx.attempt(_match, ctx, data["match"], default=()) if "match" in data else ()
    model = ctx.attempt(_model, ctx, data["model"], default=()) if "model" in data else ()
    if name == GENERIC and match:
        ctx.report("match", "the generic profile is the fallback; it matches nothing itself")
    if len(ctx.problems) > before:
        return None
    profile = Profile(
        name=name,
        path=path,
        vendor=vendor,
        description=data.get("description", ""),
        extends=extends,
        match=match,
        model=model,
        bulk=data.get("bulk"),
        vendor_default=data.get("vendor_default", False),
    )
    return profile, metrics


def _plain(ctx: _Ctx, node: Node) -> Any:
    """The positioned tree as the plain values PyYAML would have constructed."""
    if isinstance(node, Mapping):
        return {_plain(ctx, key): _plain(ctx, value) for key, value in node}
    if isinstance(node, Sequence):
        return [_plain(ctx, item) for item in node.items]
    assert isinstance(node, Scalar)
    if node.tag == "str":
        return node.text
    if node.tag in ("int", "float", "bool", "null", "timestamp"):
        return yaml.safe_load(node.raw)
    ctx.problems.append(
        Problem(ctx.path, node.line, node.column, f"unsupported YAML tag !{node.tag}")
    )
    return node.text


def _read(path: Path) -> tuple[_Ctx, Any]:
    """The file's context (problems, positions) and its plain data (None if unreadable)."""
    ctx = _Ctx(str(path))
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as error:
        ctx.problems.append(Problem(str(path), 1, 1, f"cannot read file: {error}"))
        return ctx, None
    root = parse(
        text,
        None,
        lambda node, message: ctx.problems.append(
            Problem(str(path), node.line, node.column, message)
        ),
    )
    if root is None:
        if not ctx.problems:
            ctx.problems.append(
                Problem(str(path), 1, 1, "the file is empty; it needs at least 'vendor'")
            )
        return ctx, None
    ctx.index(root)
    return ctx, _plain(ctx, root)


def load_profiles(directories: list[Path]) -> dict[str, Profile]:
    """Every *.yaml in `directories` (later directories override earlier ones by file name),
    validated, with `extends:` resolved. Raises ProfileError with every problem of every file."""
    files: dict[str, Path] = {}
    problems: list[Problem] = []
    for directory in directories:
        if not Path(directory).is_dir():
            problems.append(Problem(str(directory), 1, 1, "not a directory of profiles"))
            continue
        for path in sorted(Path(directory).glob("*.yaml")):
            if path.stem in TABLES and path.parent.resolve() == _SHIPPED:
                continue
            files[path.stem] = path
    contexts: dict[str, _Ctx] = {}
    parsed: dict[str, tuple[Profile, dict[str, Metric | None]]] = {}
    broken: set[str] = set()
    for name, path in files.items():
        ctx, data = _read(path)
        contexts[name] = ctx
        result = parse_profile(ctx, name, str(path), data) if not ctx.problems else None
        if result is None:
            broken.add(name)
            extends = data.get("extends") if isinstance(data, dict) else None
            if isinstance(extends, str) and extends not in files:  # (all problems at once)
                ctx.report("extends", f"no profile named {extends!r}")
        else:
            parsed[name] = result
    if GENERIC not in files:
        problems.append(
            Problem(f"{GENERIC}.yaml", 1, 1, "missing: every profile extends the generic profile")
        )
    resolved: dict[str, Profile] = {}
    known: dict[str, set[str]] = {}  # metric ids ever defined along each profile's extends chain

    def resolve(name: str, chain: tuple[str, ...]) -> Profile | None:
        if name in resolved:
            return resolved[name]
        if name not in parsed:
            return None
        profile, own = parsed[name]
        ctx = contexts[name]
        metrics: dict[str, Metric] = {}
        if profile.extends is not None:
            if profile.extends in broken:
                return None  # its own problems are reported
            if profile.extends not in parsed:
                raise ctx.fail("extends", f"no profile named {profile.extends!r}")
            if profile.extends in chain:
                raise ctx.fail("extends", f"circular: {' -> '.join((*chain, profile.extends))}")
            parent = resolve(profile.extends, (*chain, profile.extends))
            if parent is None:
                return None
            metrics.update(parent.metrics)
            if not profile.model:
                profile.model = parent.model
            if profile.bulk is None:
                profile.bulk = parent.bulk
        if profile.bulk is None:
            profile.bulk = True
        for metric_id, metric in own.items():
            if metric is None:
                if metric_id not in metrics:
                    raise ctx.fail(
                        f"metrics.{metric_id}", "removes a metric the parent does not have"
                    )
                del metrics[metric_id]
            else:
                metrics[metric_id] = metric
        known[name] = set(metrics) | set(own) | (known.get(profile.extends or "", set()))
        for metric in metrics.values():
            for other in metric.unless:
                if other not in known[name]:  # (a metric a child removed is simply absent)
                    raise ctx.fail(
                        f"metrics.{metric.id}.unless", f"no metric {other!r} in this profile"
                    )
        profile.metrics = metrics
        resolved[name] = profile
        return profile

    for name in parsed:
        contexts[name].attempt(resolve, name, (name,))
    defaults: dict[str, str] = {}
    for profile in resolved.values():
        if profile.vendor_default:
            if profile.vendor in defaults:
                contexts[profile.name].report(
                    "vendor_default",
                    f"{defaults[profile.vendor]} is already the default profile of vendor "
                    f"{profile.vendor!r}",
                )
            defaults[profile.vendor] = profile.name
    for ctx in contexts.values():
        problems += ctx.problems
    if problems:
        raise ProfileError(problems)
    return resolved
