"""The `calendars:` section, `calendar:` references, and the time ranges of `expected_off:`.

A calendar is defined once and chosen by name (like an auth): its timezone, school hours per
weekday, closed days (its own and those of a shipped holiday set) and maintenance windows. Every
mistake is reported where it was written, all at once: an unknown weekday, a time that is no
time, a reversed or empty range, two ranges that overlap, an unknown timezone or calendar name.

Holiday sets are data files shipped in `monitor/holidays/` (one per region, e.g. `nl-zuid`), read
with the same positioned YAML reader, so `monitor check` reports a mistake in them as
`monitor/holidays/nl-zuid.yaml:LINE:COL` too, and next school year is a data edit.
"""

from __future__ import annotations

import contextlib
import re
import zoneinfo
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import cache
from pathlib import Path

from monitor.calendar import DAY, DEFAULT_TIMEZONE, WEEKDAYS, Calendar, Closure, Dated, Weekly
from monitor.config.problems import Problem
from monitor.config.schema import (
    ID_PATTERN,
    ID_RULE,
    Context,
    Invalid,
    Schema,
    as_text,
    describe,
    did_you_mean,
    expect_list,
    expect_mapping,
    shorten,
    string,
)
from monitor.config.yamltree import Mapping, Node, Scalar, Sequence, parse

__all__ = [
    "HOLIDAYS_DIR",
    "Calendars",
    "choose_calendar",
    "read_calendars",
    "read_weekly_ranges",
]

HOLIDAYS_DIR = Path(__file__).resolve().parent.parent / "holidays"
_FULL_NAMES = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_TIME = re.compile(r"(\d{1,2}):(\d{2})")
_RANGE_RULE = "write a time range as HH:MM-HH:MM, e.g. 07:30-16:30"


def _timezone(ctx: Context, node: Node, key: str) -> str:
    name = as_text(ctx, node, key)
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        hint = did_you_mean(name, _zone_names()) or "; use an IANA name such as Europe/Amsterdam"
        ctx.fail(node, f"unknown timezone {shorten(name)!r}{hint}")
    return name


@cache
def _zone_names() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


CALENDAR_SCHEMA = Schema(
    {"timezone": _timezone, "open": None, "closed": None, "holidays": None, "maintenance": None}
)
CLOSURE_SCHEMA = Schema({"name": string(), "from": None, "to": None})
MAINTENANCE_SCHEMA = Schema(
    {"name": string(), "weekdays": None, "time": None, "from": None, "to": None}
)
HOLIDAYS_SCHEMA = Schema({"source": string(), "region": string(), "closed": None})


@dataclass
class Calendars:
    """`valid` by name; `broken` names were defined but rejected, so references to them are not
    reported a second time as unknown."""

    valid: dict[str, Calendar] = field(default_factory=dict)
    broken: set[str] = field(default_factory=set)

    def names(self) -> list[str]:
        return sorted([*self.valid, *self.broken])


class _Broken:
    """The calendar chosen at some level was rejected (already reported)."""


BROKEN_CALENDAR = _Broken()


# -- values -----------------------------------------------------------------------------------


def _minutes(ctx: Context, node: Node, text: str, *, end: bool) -> int:
    match = _TIME.fullmatch(text.strip())
    if match is None:
        ctx.fail(node, f"bad time {shorten(text)!r}: {_RANGE_RULE}")
    hours, minutes = int(match.group(1)), int(match.group(2))
    if minutes > 59 or hours > 24 or (hours == 24 and (minutes or not end)):
        ctx.fail(node, f"bad time {text.strip()!r}: 00:00 to 23:59 (24:00 only as the end)")
    return hours * 60 + minutes


def _time_range(ctx: Context, node: Node, *, crossing: bool) -> tuple[int, int]:
    """HH:MM-HH:MM as minutes; the end may lie before the start (crossing midnight) only where
    `crossing` allows it."""
    if isinstance(node, Scalar) and node.tag == "int" and ":" in node.raw:
        # YAML 1.1 reads an unquoted 7:30 as the number 450.
        ctx.fail(node, f"bad time range {node.raw}: {_RANGE_RULE}")
    text = as_text(ctx, node, "time")
    if text.count("-") != 1:
        ctx.fail(node, f"bad time range {shorten(text)!r}: {_RANGE_RULE}")
    first, last = text.split("-")
    start = _minutes(ctx, node, first, end=False)
    end = _minutes(ctx, node, last, end=True)
    if start == end:
        ctx.fail(node, f"empty time range {text.strip()!r}: start and end are the same")
    if end < start and not crossing:
        ctx.fail(
            node,
            f"reversed time range {text.strip()!r}: school hours cannot cross midnight "
            "(write the hours after midnight under the next day)",
        )
    return start, end


def _weekdays(ctx: Context, node: Node) -> list[int]:
    """mon, monday, mon-fri, sat-sun, mon,wed,fri: the weekdays a spec names, in order."""
    if not isinstance(node, Scalar) or node.tag != "str" or not node.text.strip():
        ctx.fail(node, f"weekdays must be written like mon-fri or mon,wed; got {describe(node)}")
    days: list[int] = []
    for part in node.text.lower().replace(" ", "").split(","):
        ends = part.split("-")
        if len(ends) > 2 or not all(ends):
            ctx.fail(node, f"bad weekdays {shorten(node.text)!r}: write e.g. mon-fri or mon,wed")
        numbers = [_weekday(ctx, node, name) for name in ends]
        first, last = numbers[0], numbers[-1]
        span = (last - first) % 7
        days.extend((first + step) % 7 for step in range(span + 1))
    if len(set(days)) != len(days):
        ctx.fail(node, f"weekdays {shorten(node.text)!r} name a day twice")
    return days


def _weekday(ctx: Context, node: Node, name: str) -> int:
    if name in WEEKDAYS:
        return WEEKDAYS.index(name)
    if name in _FULL_NAMES:
        return _FULL_NAMES.index(name)
    hint = did_you_mean(name, WEEKDAYS + _FULL_NAMES) or "; use mon, tue, wed, thu, fri, sat, sun"
    ctx.fail(node, f"unknown weekday {shorten(name)!r}{hint}")


def _date(ctx: Context, node: Node, key: str) -> date:
    if isinstance(node, Scalar) and node.tag in ("timestamp", "str"):
        with contextlib.suppress(ValueError):
            return date.fromisoformat(node.text.strip())
    ctx.fail(node, f"'{key}' must be a date such as 2026-12-19, got {describe(node)}")


def _moment(ctx: Context, node: Node, key: str) -> tuple[datetime, bool]:
    """A local date and time (2027-01-02 06:00), or a date alone (then True: the whole day)."""
    if isinstance(node, Scalar) and node.tag in ("timestamp", "str"):
        text = node.text.strip()
        with contextlib.suppress(ValueError):
            return datetime.combine(date.fromisoformat(text), datetime.min.time()), True
        with contextlib.suppress(ValueError):
            moment = datetime.fromisoformat(text)
            if moment.tzinfo is None:
                return moment, False
    ctx.fail(
        node,
        f"'{key}' must be a local date and time such as \"2027-01-02 06:00\" (or a date), "
        f"got {describe(node)}",
    )


# -- overlaps ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Placed:
    """A weekly window with where it was written, for overlap messages."""

    window: Weekly
    node: Node

    def spans(self) -> list[tuple[int, int]]:
        """Minutes of the week it covers, split where it wraps from Sunday into Monday."""
        start = self.window.weekday * DAY + self.window.start
        end = start - self.window.start + self.window.end
        if self.window.crosses_midnight:
            end += DAY
        week = 7 * DAY
        if end <= week:
            return [(start, end)]
        return [(start, week), (0, end - week)]


def _check_weekly_overlaps(ctx: Context, placed: list[_Placed], what: str) -> None:
    for index, later in enumerate(placed):
        for earlier in placed[:index]:
            if any(a < d and c < b for a, b in earlier.spans() for c, d in later.spans()):
                ctx.error(
                    later.node,
                    f"{what} {later.window} overlaps {earlier.window} (line {earlier.node.line})",
                )
                break


def read_weekly_ranges(
    ctx: Context, node: Node, what: str, *, crossing: bool, name: str = ""
) -> tuple[Weekly, ...]:
    """A mapping of weekdays to one time range or a list of them, e.g.
    `{mon-fri: 07:30-16:30, wed: [07:30-12:00]}`. Ranges of one mapping may not overlap."""
    mapping = expect_mapping(ctx, node, f"'{what}' (weekdays: HH:MM-HH:MM)")
    placed: list[_Placed] = []
    for key, value in mapping:
        try:
            days = _weekdays(ctx, key)
        except Invalid:
            continue
        items = value.items if isinstance(value, Sequence) else [value]
        for item in items:
            try:
                start, end = _time_range(ctx, item, crossing=crossing)
            except Invalid:
                continue
            placed += [_Placed(Weekly(day, start, end, name), item) for day in days]
    before = ctx.count()
    _check_weekly_overlaps(ctx, placed, what)
    if ctx.count() != before:
        raise Invalid(what)
    return tuple(p.window for p in placed)


# -- closures and holiday sets ----------------------------------------------------------------


@dataclass(frozen=True)
class _PlacedClosure:
    closure: Closure
    node: Node
    path: str


def _read_closures(ctx: Context, node: Node, what: str) -> list[_PlacedClosure]:
    found: list[_PlacedClosure] = []
    try:
        items = expect_list(ctx, node, what).items
    except Invalid:
        return found
    for item in items:
        with contextlib.suppress(Invalid):
            mapping = expect_mapping(ctx, item, "each closed range ({name, from, to})")
            fields = CLOSURE_SCHEMA.read(ctx, mapping, "closed range")
            for required in ("name", "from"):
                if not fields.written(required):
                    ctx.error(mapping, f"closed range has no {required}")
            if not fields.written("from") or "name" not in fields.values:
                continue
            first = _date(ctx, fields.nodes["from"], "from")
            last = _date(ctx, fields.nodes["to"], "to") if fields.written("to") else first
            if last < first:
                ctx.fail(
                    fields.nodes["to"],
                    f"reversed range: 'to' {last} is before 'from' {first}",
                )
            closure = Closure(fields.values["name"], first, last)
            found.append(_PlacedClosure(closure, mapping, ctx.path))
    return found


def _check_closure_overlaps(ctx: Context, closures: list[_PlacedClosure]) -> None:
    """Reported at the later one of two overlapping ranges, where it is written in the file of
    `ctx` (a holiday set's own overlaps are its file's problems, checked when it is read)."""
    for index, later in enumerate(closures):
        if later.path != ctx.path:
            continue
        for earlier in closures[:index]:
            a, b = earlier.closure, later.closure
            if a.first <= b.last and b.first <= a.last:
                where = f"line {earlier.node.line}"
                if earlier.path != later.path:
                    where = f"{earlier.path}:{earlier.node.line}"
                ctx.error(
                    later.node,
                    f"closed range '{b.name}' ({b.first} to {b.last}) overlaps '{a.name}' "
                    f"({a.first} to {a.last}, {where})",
                )
                break


def _holiday_set(path: Path) -> tuple[tuple[_PlacedClosure, ...], tuple[Problem, ...]]:
    """The closures of a shipped holiday set and the problems of its file, read once per
    version of the file (every calendar naming it shares them)."""
    try:
        stamp = path.stat().st_mtime_ns
    except OSError:
        stamp = 0
    return _read_holiday_file(path, stamp)


@cache
def _read_holiday_file(
    path: Path, stamp: int
) -> tuple[tuple[_PlacedClosure, ...], tuple[Problem, ...]]:
    ctx = Context(str(path))
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        ctx.error(Node(1, 1), f"cannot read holiday set: {error.strerror or error}")
        return (), tuple(ctx.problems)
    root = parse(text, {}, ctx.error)
    closures: list[_PlacedClosure] = []
    if isinstance(root, Mapping):
        fields = HOLIDAYS_SCHEMA.read(ctx, root, "a holiday set")
        for required in ("source", "closed"):
            if not fields.written(required):
                ctx.error(root, f"the holiday set has no '{required}'")
        if fields.written("closed"):
            closures = _read_closures(ctx, fields.nodes["closed"], "closed")
            _check_closure_overlaps(ctx, closures)
    elif not ctx.problems:
        ctx.error(root or Node(1, 1), "a holiday set is a mapping with 'source' and 'closed'")
    return tuple(closures), tuple(ctx.problems)


def holiday_sets() -> list[str]:
    """The names `holidays:` accepts: the files in monitor/holidays/."""
    return sorted(p.stem for p in HOLIDAYS_DIR.glob("*.yaml"))


def _read_holidays(ctx: Context, node: Node) -> list[_PlacedClosure]:
    names = node.items if isinstance(node, Sequence) else [node]
    found: list[_PlacedClosure] = []
    for name_node in names:
        try:
            name = as_text(ctx, name_node, "holidays")
        except Invalid:
            continue
        if name not in holiday_sets():
            known = holiday_sets()
            hint = did_you_mean(name, known) or "; shipped are " + ", ".join(known)
            ctx.error(name_node, f"unknown holiday set {shorten(name)!r}{hint}")
            continue
        closures, problems = _holiday_set(HOLIDAYS_DIR / f"{name}.yaml")
        ctx.problems.extend(problems)
        found.extend(closures)
    return found


# -- maintenance ------------------------------------------------------------------------------


def _read_maintenance(ctx: Context, node: Node) -> tuple[Weekly | Dated, ...]:
    items = expect_list(ctx, node, "maintenance").items
    weekly: list[_Placed] = []
    dated: list[tuple[Dated, Node]] = []
    failed = False
    for item in items:
        before = ctx.count()
        with contextlib.suppress(Invalid):
            mapping = expect_mapping(ctx, item, "each maintenance window")
            fields = MAINTENANCE_SCHEMA.read(ctx, mapping, "maintenance window")
            name = fields.get("name", "")
            if not fields.written("name"):
                ctx.error(mapping, "maintenance window has no name")
            recurring = fields.written("weekdays") or fields.written("time")
            once = fields.written("from") or fields.written("to")
            if recurring == once:
                ctx.fail(
                    mapping,
                    "a maintenance window is either recurring (weekdays and time) or dated "
                    "(from and to)",
                )
            if recurring:
                for key in ("weekdays", "time"):
                    if not fields.written(key):
                        ctx.fail(mapping, f"recurring maintenance window has no {key}")
                days = _weekdays(ctx, fields.nodes["weekdays"])
                start, end = _time_range(ctx, fields.nodes["time"], crossing=True)
                weekly += [
                    _Placed(Weekly(day, start, end, name), fields.nodes["time"]) for day in days
                ]
            else:
                for key in ("from", "to"):
                    if not fields.written(key):
                        ctx.fail(mapping, f"dated maintenance window has no '{key}'")
                start_at, _ = _moment(ctx, fields.nodes["from"], "from")
                end_at, whole_day = _moment(ctx, fields.nodes["to"], "to")
                if whole_day:
                    end_at += timedelta(days=1)  # a date as 'to' includes that day
                if end_at <= start_at:
                    ctx.fail(fields.nodes["to"], "reversed range: 'to' is not after 'from'")
                dated.append((Dated(start_at, end_at, name), mapping))
        failed = failed or ctx.count() != before
    before = ctx.count()
    _check_weekly_overlaps(ctx, weekly, "maintenance window")
    for index, (later, node_later) in enumerate(dated):
        for earlier, node_earlier in dated[:index]:
            if earlier.start < later.end and later.start < earlier.end:
                ctx.error(
                    node_later,
                    f"maintenance window '{later.name}' overlaps '{earlier.name}' "
                    f"(line {node_earlier.line})",
                )
                break
    if failed or ctx.count() != before:
        raise Invalid("maintenance")
    return tuple(p.window for p in weekly) + tuple(d for d, _ in dated)


# -- calendars --------------------------------------------------------------------------------


def read_calendars(ctx: Context, node: Node | None) -> Calendars:
    calendars = Calendars()
    if node is None:
        return calendars
    try:
        mapping = expect_mapping(ctx, node, "'calendars'")
    except Invalid:
        return calendars
    for key, value in mapping:
        name = key.text
        before = ctx.count()
        if not ID_PATTERN.fullmatch(name):
            ctx.error(key, f"invalid calendar name {shorten(name)!r}: {ID_RULE}")
        calendar = None
        with contextlib.suppress(Invalid):
            calendar = _read_calendar(ctx, name, expect_mapping(ctx, value, f"calendar '{name}'"))
        if calendar is not None and ctx.count() == before:
            calendars.valid[name] = calendar
        else:
            calendars.broken.add(name)
    return calendars


def _read_calendar(ctx: Context, name: str, node: Mapping) -> Calendar | None:
    fields = CALENDAR_SCHEMA.read(ctx, node, f"calendar '{name}'")
    hours: tuple[Weekly, ...] | None = None
    if fields.written("open"):
        with contextlib.suppress(Invalid):
            hours = read_weekly_ranges(ctx, fields.nodes["open"], "school hours", crossing=False)
    closures: list[_PlacedClosure] = []
    if fields.written("holidays"):
        closures += _read_holidays(ctx, fields.nodes["holidays"])
    if fields.written("closed"):
        own = _read_closures(ctx, fields.nodes["closed"], "closed")
        closures += own
    _check_closure_overlaps(ctx, closures)
    maintenance: tuple[Weekly | Dated, ...] = ()
    if fields.written("maintenance"):
        with contextlib.suppress(Invalid):
            maintenance = _read_maintenance(ctx, fields.nodes["maintenance"])
    return Calendar(
        name=name,
        timezone=fields.get("timezone", DEFAULT_TIMEZONE),
        open=hours,
        closed=tuple(sorted((p.closure for p in closures), key=lambda c: c.first)),
        maintenance=maintenance,
    )


def choose_calendar(
    ctx: Context, node: Node | None, inherited: Calendar | _Broken | None, calendars: Calendars
) -> Calendar | _Broken | None:
    """The calendar a level (defaults, member, school) chooses with `calendar: NAME`, else the
    one it inherits."""
    if node is None:
        return inherited
    try:
        name = as_text(ctx, node, "calendar")
    except Invalid:
        return BROKEN_CALENDAR
    if name in calendars.valid:
        return calendars.valid[name]
    if name not in calendars.broken:
        if isinstance(node, Scalar) and node.substituted:
            ctx.error(node, f"unknown calendar ({describe(node)}): it is not in 'calendars'")
        elif not calendars.names():
            ctx.error(node, f"unknown calendar '{shorten(name)}': there is no 'calendars' section")
        else:
            hint = did_you_mean(name, calendars.names()) or (
                "; defined are " + ", ".join(f"'{n}'" for n in calendars.names())
            )
            ctx.error(node, f"unknown calendar '{shorten(name)}'{hint}")
    return BROKEN_CALENDAR
