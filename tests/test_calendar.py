"""School calendars (issue 14): the pure functions of monitor/calendar.py across daylight-saving
changes, `calendars:` in targets.yaml with every mistake at its FILE:LINE:COL, the shipped
holiday set of regio zuid, and the metrics the collector exposes from them."""

from __future__ import annotations

import re
import textwrap
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest

from monitor import calendar as cal
from monitor import families
from monitor.config import calendars as config_calendars
from monitor.config.loader import ConfigError, load_config, load_config_text
from monitor.config.model import Config
from monitor.exposition import Exposition
from monitor.store import ResultStore

REPO = Path(__file__).resolve().parent.parent
SHIPPED = REPO / "targets.yaml"
HOLIDAYS = REPO / "monitor" / "holidays" / "nl-zuid.yaml"
ENV = {
    "KIEN_SNMP_AUTH_PASSWORD": "auth-pass-Qx7",
    "KIEN_SNMP_PRIV_PASSWORD": "priv-pass-Zr4",
    "KIEN_SNMP_COMMUNITY": "community-Wm9",
}
UTC = timezone.utc


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def minutes_inside(check, day_start: datetime, hours: int = 30) -> int:
    """How many real minutes from `day_start` (UTC) on `check(instant)` is true."""
    return sum(1 for m in range(hours * 60) if check(day_start + timedelta(minutes=m)))


# --- monitor/calendar.py: pure functions of (calendar, instant) -------------------------------

# A Sunday-night window 01:30-03:30 wall-clock time, on the two Sundays the clocks change in 2027:
# 28 March (02:00 CET -> 03:00 CEST) and 31 October (03:00 CEST -> 02:00 CET).
NIGHT = cal.Calendar("night", maintenance=(cal.Weekly(6, 90, 210, "firmware"),))


def test_the_days_of_the_test_are_the_daylight_saving_sundays():
    zone = cal.Calendar("x").zone
    for day in (date(2027, 3, 28), date(2027, 10, 31)):
        assert day.weekday() == 6 and (day + timedelta(days=7)).month != day.month
        before = datetime(day.year, day.month, day.day, 0, 0, tzinfo=zone).utcoffset()
        after = datetime(day.year, day.month, day.day, 4, 0, tzinfo=zone).utcoffset()
        assert before != after


def test_maintenance_across_the_march_switch_lasts_one_real_hour():
    inside = lambda t: cal.in_maintenance(NIGHT, t)  # noqa: E731
    assert not inside(utc("2027-03-28T00:29"))  # 01:29 CET
    assert inside(utc("2027-03-28T00:30"))  # 01:30 CET
    assert inside(utc("2027-03-28T00:59"))  # 01:59 CET
    assert inside(utc("2027-03-28T01:00"))  # 03:00 CEST: the clocks jumped
    assert inside(utc("2027-03-28T01:29"))  # 03:29 CEST
    assert not inside(utc("2027-03-28T01:30"))  # 03:30 CEST
    assert minutes_inside(inside, utc("2027-03-27T22:00"), hours=8) == 60


def test_maintenance_across_the_october_switch_lasts_three_real_hours():
    inside = lambda t: cal.in_maintenance(NIGHT, t)  # noqa: E731
    assert not inside(utc("2027-10-30T23:29"))  # 01:29 CEST
    assert inside(utc("2027-10-30T23:30"))  # 01:30 CEST
    assert inside(utc("2027-10-31T00:30"))  # 02:30 CEST, the first time
    assert inside(utc("2027-10-31T01:30"))  # 02:30 CET, the second time
    assert inside(utc("2027-10-31T02:29"))  # 03:29 CET
    assert not inside(utc("2027-10-31T02:30"))  # 03:30 CET
    assert minutes_inside(inside, utc("2027-10-30T20:00"), hours=10) == 180


def test_school_hours_follow_the_wall_clock_across_the_switch():
    school = cal.Calendar("po", open=tuple(cal.Weekly(d, 450, 1020) for d in range(5)))
    # Friday before the switch: 07:30 CET is 06:30 UTC; Monday after: 07:30 CEST is 05:30 UTC
    assert not cal.is_open(school, utc("2027-03-26T06:29"))
    assert cal.is_open(school, utc("2027-03-26T06:30"))
    assert not cal.is_open(school, utc("2027-03-29T05:29"))
    assert cal.is_open(school, utc("2027-03-29T05:30"))
    assert not cal.is_open(school, utc("2027-03-28T10:00"))  # Sunday
    # next opening from the Sunday of the switch: Monday 07:30 CEST
    assert cal.next_open(school, utc("2027-03-28T12:00")) == utc("2027-03-29T05:30")
    # and in October, from the Sunday: Monday 07:30 CET
    assert cal.next_open(school, utc("2027-10-31T12:00")) == utc("2027-11-01T06:30")
    # while open, the opening that is under way
    assert cal.next_open(school, utc("2027-03-29T09:00")) == utc("2027-03-29T05:30")
    # after hours: tomorrow
    assert cal.next_open(school, utc("2027-03-29T16:00")) == utc("2027-03-30T05:30")


def test_expected_off_across_the_switch_in_unix_time_too():
    evening = (cal.Weekly(6, 0, 180),)  # Sunday 00:00-03:00 wall clock
    zone = "Europe/Amsterdam"
    assert cal.expected_down(evening, zone, utc("2027-03-28T00:59"))  # 01:59 CET
    assert not cal.expected_down(evening, zone, utc("2027-03-28T01:00").timestamp())  # 03:00 CEST
    assert cal.expected_down(evening, zone, utc("2027-10-31T01:59").timestamp())  # 02:59 CET
    assert not cal.expected_down(evening, zone, utc("2027-10-31T02:00"))  # 03:00 CET
    with pytest.raises(ValueError, match="timezone-aware"):
        cal.expected_down(evening, zone, datetime(2027, 1, 1))


def test_windows_that_cross_midnight_and_the_end_of_the_week():
    friday_night = cal.Weekly(4, 22 * 60, 2 * 60)
    assert friday_night.crosses_midnight
    local = datetime(2027, 1, 8, 23, 0)  # a Friday
    assert local.weekday() == 4
    assert friday_night.contains(local)
    assert friday_night.contains(local + timedelta(hours=2, minutes=59))  # Sat 01:59
    assert not friday_night.contains(local + timedelta(hours=3))  # Sat 02:00
    assert not friday_night.contains(local - timedelta(hours=2))  # Fri 21:00
    sunday_night = cal.Weekly(6, 23 * 60, 60)
    assert sunday_night.contains(datetime(2027, 1, 11, 0, 30))  # Monday 00:30
    assert not sunday_night.contains(datetime(2027, 1, 12, 0, 30))  # Tuesday 00:30
    until_midnight = cal.Weekly(0, 19 * 60, 24 * 60)
    assert until_midnight.contains(datetime(2027, 1, 11, 23, 59, 59))
    assert not until_midnight.contains(datetime(2027, 1, 12, 0, 0))


def test_closures_holidays_and_the_round_the_clock_calendar():
    christmas = cal.Closure("Kerstvakantie 2026", date(2026, 12, 19), date(2027, 1, 3))
    school = cal.Calendar(
        "po", open=tuple(cal.Weekly(d, 450, 1020) for d in range(5)), closed=(christmas,)
    )
    assert not cal.is_open(school, utc("2026-12-21T09:00"))  # a Monday in the holiday
    assert cal.closure_on(school, date(2027, 1, 3)) is christmas  # the last day is included
    assert cal.closure_on(school, date(2027, 1, 4)) is None
    assert cal.next_open(school, utc("2026-12-21T09:00")) == utc("2027-01-04T06:30")
    always = cal.Calendar("24/7", closed=(christmas,))
    assert cal.is_open(always, utc("2027-01-09T03:00"))  # a Saturday night
    assert not cal.is_open(always, utc("2026-12-25T12:00"))
    assert cal.next_open(always, utc("2026-12-25T12:00")) == utc("2027-01-03T23:00")
    never = cal.Calendar("never", open=())
    assert not cal.is_open(never, utc("2027-01-04T09:00"))
    assert cal.next_open(never, utc("2027-01-04T09:00")) is None


def test_dated_maintenance_is_local_wall_time():
    swap = cal.Dated(datetime(2027, 1, 2, 6, 0), datetime(2027, 1, 2, 14, 0), "core swap")
    school = cal.Calendar("po", maintenance=(swap,))
    assert not cal.in_maintenance(school, utc("2027-01-02T04:59"))  # 05:59 CET
    assert cal.in_maintenance(school, utc("2027-01-02T05:00"))  # 06:00 CET
    assert not cal.in_maintenance(school, utc("2027-01-02T13:00"))  # 14:00 CET
    tokyo = cal.Calendar("jp", timezone="Asia/Tokyo", maintenance=(swap,))
    assert cal.in_maintenance(tokyo, utc("2027-01-01T21:00"))  # 06:00 JST


# --- targets.yaml: calendars ------------------------------------------------------------------

BASE = """\
defaults:
  ping: {interval: 15s}
  calendar: po
calendars:
  po:
    open: {mon-tue: 07:30-17:00, wed: 07:30-13:00, thu-fri: 07:30-17:00}
    holidays: nl-zuid
    closed:
      - {name: Studiedag, from: 2027-03-15}
    maintenance:
      - {name: firmware night, weekdays: tue, time: 22:00-02:00}
      - {name: core swap, from: "2027-01-02 06:00", to: "2027-01-02 14:00"}
  vo:
    timezone: Europe/Brussels
    open:
      mon-fri: [07:30-12:00, "12:30-17:30"]
    maintenance:
      - {name: whole weekend, from: 2027-02-06, to: 2027-02-07}
members:
  - id: opod
    schools:
      - id: s1
        targets:
          - {id: rtr, role: router, address: 127.0.0.1, snmp: false}
          - id: ap
            role: ap
            address: 127.0.0.2
            snmp: false
            expected_off: {mon-fri: [00:00-06:30, 19:00-24:00], sat-sun: 00:00-24:00}
      - id: s2
        calendar: vo
        page_when_closed: true
        targets:
          - {id: rtr, role: router, address: 127.0.0.3, snmp: false}
          - {id: ap, role: ap, address: 127.0.0.4, snmp: false, page_when_closed: false}
  - id: sdl
    calendar: vo
    schools:
      - id: s3
        targets:
          - {id: rtr, role: router, address: 127.0.0.5, snmp: false, page_when_closed: true}
"""


def load(text: str) -> Config:
    return load_config_text(text, "t.yaml", {})


def problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load(text)
    return [str(problem) for problem in caught.value.problems]


def school(config: Config, school_id: str):
    (found,) = [s for s in config.schools() if s.id == school_id]
    return found


def test_calendars_load_and_are_inherited():
    config = load(BASE)
    po, vo = config.calendars["po"], config.calendars["vo"]
    assert school(config, "s1").calendar is po
    assert school(config, "s2").calendar is vo  # the school's own choice
    assert school(config, "s3").calendar is vo  # the member's choice
    assert po.timezone == "Europe/Amsterdam" and vo.timezone == "Europe/Brussels"
    assert [str(w) for w in po.open] == [
        "mon 07:30-17:00",
        "tue 07:30-17:00",
        "wed 07:30-13:00",
        "thu 07:30-17:00",
        "fri 07:30-17:00",
    ]
    assert len(vo.open) == 10
    names = [c.name for c in po.closed]
    assert "Studiedag" in names and "Kerstvakantie 2026" in names and "Zomervakantie 2028" in names
    assert [c.first for c in po.closed] == sorted(c.first for c in po.closed)
    study = next(c for c in po.closed if c.name == "Studiedag")
    assert study.first == study.last == date(2027, 3, 15)
    night, swap = po.maintenance
    assert night == cal.Weekly(1, 22 * 60, 2 * 60, "firmware night")
    assert swap == cal.Dated(datetime(2027, 1, 2, 6), datetime(2027, 1, 2, 14), "core swap")
    (weekend,) = vo.maintenance
    assert weekend.end == datetime(2027, 2, 8)  # a date as 'to' includes that day


def test_expected_off_and_page_when_closed():
    config = load(BASE)
    ap = next(t for t in school(config, "s1").targets if t.id == "ap")
    assert len(ap.expected_off) == 5 * 2 + 2
    assert cal.Weekly(5, 0, 1440) in ap.expected_off
    labels = {(t.school, t.id): dict(t.labels) for t in config.targets()}
    assert labels[("s1", "rtr")] == {}
    assert labels[("s2", "rtr")] == {"page_when_closed": "true"}  # from the school
    assert labels[("s2", "ap")] == {}  # the target says no
    assert labels[("s3", "rtr")] == {"page_when_closed": "true"}


def test_every_calendar_mistake_at_once_with_its_position():
    text = textwrap.dedent("""\
        defaults:
          calendar: poo
        calendars:
          po:
            timezone: Europe/Amsterdan
            open: {mon-fri: 07:30-17:00, wensday: 08:00-12:00, sat: 25:00-26:00, sun: "7:30"}
            closed:
              - {name: A, from: 2027-03-15, to: 2027-03-10}
              - {name: B, from: 2027-04-01, to: 2027-04-03}
              - {name: C, from: 2027-04-03}
              - {name: D, from: 2027-13-01}
            maintenance:
              - {name: m1, weekdays: tue, time: 22:00-02:00}
              - {name: m2, weekdays: wed, time: 01:00-03:00}
              - {name: m3, from: "2027-01-02 06:00", to: "2027-01-02 05:00"}
              - {name: m4, weekdays: thu}
          vo:
            open: {mon: [07:30-12:00, 11:00-17:00], tue: 17:00-07:30, wed: 08:00-08:00}
            holidays: nl-noord
        members:
          - id: opod
            schools:
              - id: s1
                calendar: vo2
                targets:
                  - {id: rtr, role: router, address: 127.0.0.1, snmp: false}
                  - id: ap
                    role: ap
                    address: 127.0.0.2
                    snmp: false
                    expected_off: {mon: 24:00-06:00, fri: [18:00-02:00], sat: 01:00-03:00}
                    labels: {page_when_closed: "yes"}
        """)
    assert problems(text) == [
        "t.yaml:2:13: unknown calendar 'poo'; did you mean 'po'?",
        "t.yaml:5:15: unknown timezone 'Europe/Amsterdan'; did you mean 'Europe/Amsterdam'?",
        "t.yaml:6:34: unknown weekday 'wensday'; did you mean 'wednesday'?",
        "t.yaml:6:61: bad time '25:00': 00:00 to 23:59 (24:00 only as the end)",
        "t.yaml:6:79: bad time range '7:30': write a time range as HH:MM-HH:MM, e.g. 07:30-16:30",
        "t.yaml:8:41: reversed range: 'to' 2027-03-10 is before 'from' 2027-03-15",
        "t.yaml:10:9: closed range 'C' (2027-04-03 to 2027-04-03) overlaps 'B' "
        "(2027-04-01 to 2027-04-03, line 9)",
        "t.yaml:11:25: 'from' must be a date such as 2026-12-19, got date 2027-13-01",
        "t.yaml:14:41: maintenance window wed 01:00-03:00 overlaps tue 22:00-02:00 (line 13)",
        "t.yaml:15:50: reversed range: 'to' is not after 'from'",
        "t.yaml:16:9: recurring maintenance window has no time",
        "t.yaml:18:31: school hours mon 11:00-17:00 overlaps mon 07:30-12:00 (line 18)",
        "t.yaml:18:50: reversed time range '17:00-07:30': school hours cannot cross midnight "
        "(write the hours after midnight under the next day)",
        "t.yaml:18:68: empty time range '08:00-08:00': start and end are the same",
        "t.yaml:19:15: unknown holiday set 'nl-noord'; shipped are nl-zuid",
        "t.yaml:24:19: unknown calendar 'vo2'; did you mean 'vo'?",
        "t.yaml:31:33: bad time '24:00': 00:00 to 23:59 (24:00 only as the end)",
        "t.yaml:31:71: expected_off sat 01:00-03:00 overlaps fri 18:00-02:00 (line 31)",
        "t.yaml:32:22: label 'page_when_closed' is reserved (page_when_closed: true sets it)",
    ]


def test_calendar_reference_without_calendars_and_bad_names():
    text = textwrap.dedent("""\
        calendars:
          "bad name": {}
        members:
          - id: opod
            calendar: po
            schools:
              - id: s1
                calendar: "bad name"
                targets:
                  - {id: rtr, role: router, address: 127.0.0.1, snmp: false}
        """)
    assert problems(text) == [
        "t.yaml:2:3: invalid calendar name 'bad name': use 1 to 64 letters, digits, '.', '_' "
        "or '-', starting with a letter or digit",
        "t.yaml:5:15: unknown calendar 'po'; defined are 'bad name'",
    ]
    assert problems(
        "members:\n  - id: m\n    calendar: po\n    schools:\n      - id: s\n        targets:\n"
        "          - {id: r, role: router, address: 127.0.0.1, snmp: false}\n"
    ) == ["t.yaml:3:15: unknown calendar 'po': there is no 'calendars' section"]


def test_a_mistake_in_a_holiday_set_is_reported_in_that_file(tmp_path, monkeypatch):
    broken = tmp_path / "nl-test.yaml"
    broken.write_text(
        "source: test\nclosed:\n"
        "  - {name: Herfst, from: 2027-10-16, to: 2027-10-24}\n"
        "  - {name: Herfst again, from: 2027-10-20, to: 2027-10-10}\n"
        "  - {name: Kerst, from: 2027-10-24, to: 2028-01-09}\n"
    )
    monkeypatch.setattr(config_calendars, "HOLIDAYS_DIR", tmp_path)
    text = BASE.replace("holidays: nl-zuid", "holidays: [nl-test]")
    assert problems(text) == [
        f"{broken}:4:48: reversed range: 'to' 2027-10-10 is before 'from' 2027-10-20",
        f"{broken}:5:5: closed range 'Kerst' (2027-10-24 to 2028-01-09) overlaps 'Herfst' "
        "(2027-10-16 to 2027-10-24, line 3)",
    ]
    # an edit to the file is seen by the next load (the running collector's reload)
    broken.write_text(
        "source: test\nclosed:\n  - {name: Herfst, from: 2027-10-16, to: 2027-10-24}\n"
    )
    config = load(text)
    assert [c.name for c in config.calendars["po"].closed] == ["Studiedag", "Herfst"]


# --- the shipped holiday set and targets.yaml -------------------------------------------------


def test_the_shipped_holidays_of_regio_zuid():
    text = HOLIDAYS.read_text()
    assert "rijksoverheid.nl" in text and "TO BE CHECKED" in text  # the source, and its status
    config = load(BASE)
    holidays = [c for c in config.calendars["po"].closed if c.name != "Studiedag"]
    kinds = ["Herfstvakantie", "Kerstvakantie", "Voorjaarsvakantie", "Meivakantie", "Zomervakantie"]
    names = [c.name for c in holidays]
    assert names == [
        f"{k} {y}" for k, y in zip(kinds, (2026, 2026, 2027, 2027, 2027), strict=True)
    ] + [f"{k} {y}" for k, y in zip(kinds, (2027, 2027, 2028, 2028, 2028), strict=True)]
    for closure in holidays:
        # a vacation runs from a Saturday to a Sunday nine days later, or one to five
        # weeks after that
        days = (closure.last - closure.first).days + 1
        assert closure.first.weekday() == 5 and closure.last.weekday() == 6, closure
        assert days % 7 == 2 and 1 <= days // 7 <= 6, closure
    # the school years 2026-2027 and 2027-2028
    assert holidays[0].first.year == 2026 and holidays[-1].last.year == 2028
    # Christmas and New Year inside the Christmas holidays; King's Day inside the May holiday
    for year in (2026, 2027):
        (xmas,) = [c for c in holidays if c.name == f"Kerstvakantie {year}"]
        assert xmas.first <= date(year, 12, 25) and date(year + 1, 1, 1) <= xmas.last
        (may,) = [c for c in holidays if c.name == f"Meivakantie {year + 1}"]
        assert may.first <= date(year + 1, 4, 27) <= may.last


def test_the_shipped_targets_yaml_uses_calendars():
    config = load_config(SHIPPED, ENV)
    for s in config.schools():
        assert s.calendar is not None, s.id
        assert any(c.name.startswith("Kerstvakantie") for c in s.calendar.closed), s.id
    assert school(config, "davinci-leerpark").calendar.name == "mbo-zuid"
    assert school(config, "sdl-overkamp").calendar.name == "vo-zuid"
    assert school(config, "opod-regenboog").calendar.name == "po-zuid"
    assert all(
        dict(t.labels).get("page_when_closed") == "true"
        for t in school(config, "petri-dordrecht").targets
    )
    off = [t.id for t in config.targets() if t.expected_off]
    assert off and all(t.startswith("ap-") for t in off)


# --- the metrics --------------------------------------------------------------------------------


CALENDAR_FAMILIES = (
    "schoolnet_school_open",
    "schoolnet_school_maintenance",
    "schoolnet_school_next_open_timestamp_seconds",
    "schoolnet_target_expected_down",
)


def exposed(config: Config, now: datetime) -> dict[tuple[str, str], float]:
    """(name, labels) -> value of the calendar families in a scrape at `now`."""
    store = ResultStore()
    store.sync(config)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(families, "_now", lambda: now.timestamp())
        text = Exposition(store).render().decode()
    samples = {}
    for line in text.splitlines():
        if line.startswith(CALENDAR_FAMILIES):
            name, labels, value = re.fullmatch(r"(\w+)\{(.*)\} (\S+)", line).groups()
            samples[(name, labels)] = float(value)
    return samples


def test_the_collector_exposes_the_calendar_at_any_instant():
    config = load(BASE)
    s1 = 'member="opod",school="s1"'
    # Tuesday 2027-03-30 23:00 CEST: closed, firmware night, the AP switched off
    samples = exposed(config, utc("2027-03-30T21:00"))
    assert samples[("schoolnet_school_open", s1)] == 0
    assert samples[("schoolnet_school_maintenance", s1)] == 1
    assert samples[("schoolnet_school_next_open_timestamp_seconds", s1)] == (
        utc("2027-03-31T05:30").timestamp()
    )
    ap = [v for (n, labels), v in samples.items() if n == "schoolnet_target_expected_down"]
    assert ap == [1]
    [(_, ap_labels)] = [k for k in samples if k[0] == "schoolnet_target_expected_down"]
    assert ap_labels.startswith('member="opod",school="s1",target="ap",role="ap"')
    # Wednesday 10:00 CEST: open, no maintenance, the AP on
    samples = exposed(config, utc("2027-03-31T08:00"))
    assert samples[("schoolnet_school_open", s1)] == 1
    assert samples[("schoolnet_school_maintenance", s1)] == 0
    assert samples[("schoolnet_school_next_open_timestamp_seconds", s1)] == (
        utc("2027-03-31T05:30").timestamp()
    )
    assert [v for (n, _), v in samples.items() if n == "schoolnet_target_expected_down"] == [0]
    # in the Christmas holiday: closed, opens again on 4 January
    samples = exposed(config, utc("2026-12-22T09:00"))
    assert samples[("schoolnet_school_open", s1)] == 0
    assert samples[("schoolnet_school_next_open_timestamp_seconds", s1)] == (
        utc("2027-01-04T06:30").timestamp()
    )
    # every school with a calendar, and only those
    schools = {labels for (n, labels) in samples if n == "schoolnet_school_open"}
    assert schools == {s1, 'member="opod",school="s2"', 'member="sdl",school="s3"'}


def test_schools_without_a_calendar_expose_nothing_and_render_is_whole():
    config = load(BASE.replace("  calendar: po\n", "", 1))
    samples = exposed(config, utc("2027-03-31T08:00"))
    assert ("schoolnet_school_open", 'member="opod",school="s1"') not in samples
    # the AP's expected_off still counts, in Europe/Amsterdam
    assert [v for (n, _), v in samples.items() if n == "schoolnet_target_expected_down"] == [0]
    store = ResultStore()
    store.sync(load(BASE))
    text = Exposition(store).render().decode()
    for family in CALENDAR_FAMILIES:
        assert f"# TYPE {family} gauge\n" in text
        assert text.count(f"# HELP {family} ") == 1


def test_the_shipped_file_exports_the_calendar_of_every_school():
    """`monitor lab` runs the collector on the shipped targets.yaml: every school has a calendar,
    so the dashboards' calendar panels have data there."""
    config = load_config(SHIPPED, ENV)
    samples = exposed(config, utc("2027-03-30T21:00"))  # a Tuesday, 23:00 CEST: firmware night
    opened = {k for k in samples if k[0] == "schoolnet_school_open"}
    assert len(opened) == sum(1 for _ in config.schools()) == 27
    assert not any(v for (n, _), v in samples.items() if n == "schoolnet_school_open")
    maintenance = {k[1] for k, v in samples.items() if k[0] == "schoolnet_school_maintenance" and v}
    assert 'member="opod",school="opod-regenboog"' in maintenance  # po-zuid: Tuesday night
    assert 'member="sdl",school="sdl-overkamp"' not in maintenance  # vo-zuid: Thursday night
    down = [v for (n, _), v in samples.items() if n == "schoolnet_target_expected_down"]
    assert down == [1, 1, 1]  # regenboog's APs at night
