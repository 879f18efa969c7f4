"""School calendars: is a school open, in a maintenance window, is a target switched off on
purpose -- pure functions of (calendar, instant).

Every time in targets.yaml is a wall-clock time in the calendar's timezone, because that is what
a timetable, a firmware-night announcement and a PoE schedule say. So each check turns the
instant into local wall time first and compares wall times: across a daylight-saving change a
window 01:30-03:30 lasts one real hour in March (02:00-03:00 does not exist) and three in October
(02:00-03:00 happens twice), exactly as the clocks in the school show it. The collector calls
these with "now" on every scrape; tests call them with any instant.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

__all__ = [
    "DEFAULT_TIMEZONE",
    "WEEKDAYS",
    "Calendar",
    "Closure",
    "Dated",
    "Weekly",
    "closure_on",
    "expected_down",
    "in_maintenance",
    "is_open",
    "next_open",
    "wall_time",
]

DEFAULT_TIMEZONE = "Europe/Amsterdam"
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")  # datetime.weekday() order
DAY = 24 * 60  # minutes
# How far ahead next_open looks: a closure longer than a year means "no opening known".
_HORIZON_DAYS = 400


@dataclass(frozen=True)
class Weekly:
    """Every week on `weekday` (0 = Monday) from `start` to `end`, minutes after local midnight
    (0..1440). `end <= start` crosses midnight: the window ends on the next day."""

    weekday: int
    start: int
    end: int
    name: str = ""

    @property
    def crosses_midnight(self) -> bool:
        return self.end <= self.start

    def contains(self, local: datetime) -> bool:
        minute = local.hour * 60 + local.minute + local.second / 60
        day = local.weekday()
        if not self.crosses_midnight:
            return day == self.weekday and self.start <= minute < self.end
        return (day == self.weekday and minute >= self.start) or (
            day == (self.weekday + 1) % 7 and minute < self.end
        )

    def __str__(self) -> str:
        return f"{WEEKDAYS[self.weekday]} {_hhmm(self.start)}-{_hhmm(self.end)}"


@dataclass(frozen=True)
class Dated:
    """A one-off window in local wall time, `start` inclusive, `end` exclusive (naive datetimes)."""

    start: datetime
    end: datetime
    name: str = ""

    def contains(self, local: datetime) -> bool:
        return self.start <= local < self.end


@dataclass(frozen=True)
class Closure:
    """Days the school is closed all day (a holiday, a study day), `first` to `last` inclusive."""

    name: str
    first: date
    last: date


@dataclass(frozen=True)
class Calendar:
    """One named calendar of targets.yaml. `open` None means open around the clock (a calendar
    used only for closures or maintenance); () means never open."""

    name: str
    timezone: str = DEFAULT_TIMEZONE
    open: tuple[Weekly, ...] | None = None
    closed: tuple[Closure, ...] = ()
    maintenance: tuple[Weekly | Dated, ...] = ()

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)  # ZoneInfo caches instances by key


def wall_time(zone: ZoneInfo | str, instant: datetime | float) -> datetime:
    """The naive local wall-clock time of `instant` (an aware datetime or a Unix time)."""
    tz = zone if isinstance(zone, ZoneInfo) else ZoneInfo(zone)
    if isinstance(instant, datetime):
        if instant.tzinfo is None:
            raise ValueError("instant must be timezone-aware")
        aware = instant.astimezone(tz)
    else:
        aware = datetime.fromtimestamp(instant, tz)
    return aware.replace(tzinfo=None)


def closure_on(calendar: Calendar, day: date) -> Closure | None:
    for closure in calendar.closed:
        if closure.first <= day <= closure.last:
            return closure
    return None


def is_open(calendar: Calendar, instant: datetime | float) -> bool:
    """Inside school hours on a day that is not closed."""
    local = wall_time(calendar.zone, instant)
    if closure_on(calendar, local.date()) is not None:
        return False
    if calendar.open is None:
        return True
    return any(window.contains(local) for window in calendar.open)


def in_maintenance(calendar: Calendar, instant: datetime | float) -> bool:
    local = wall_time(calendar.zone, instant)
    return any(window.contains(local) for window in calendar.maintenance)


def expected_down(
    windows: tuple[Weekly, ...], zone: ZoneInfo | str, instant: datetime | float
) -> bool:
    """Inside one of a target's `expected_off` windows."""
    local = wall_time(zone, instant)
    return any(window.contains(local) for window in windows)


def next_open(calendar: Calendar, instant: datetime | float) -> datetime | None:
    """When the school opens next, as an aware UTC datetime; while it is open, when the current
    opening began (so "open, or opening within the hour" is `next_open <= now + 1h`). None if it
    does not open within about a year."""
    zone = calendar.zone
    local = wall_time(zone, instant)
    for offset in range(_HORIZON_DAYS):
        day = local.date() + timedelta(days=offset)
        if closure_on(calendar, day) is not None:
            continue
        if calendar.open is None:
            ranges = [(0, DAY)]
        else:
            ranges = sorted((w.start, w.end) for w in calendar.open if w.weekday == day.weekday())
        midnight = datetime.combine(day, time())
        for start, end in ranges:
            if midnight + timedelta(minutes=end) > local:
                # fold=0: a start inside the spring-forward gap maps to the instant the clocks
                # jump, the first of a repeated autumn hour to its first occurrence.
                begins = (midnight + timedelta(minutes=start)).replace(tzinfo=zone)
                return begins.astimezone(timezone.utc)
    return None


def _hhmm(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"
