"""Durations and bandwidths as written in targets.yaml."""

from __future__ import annotations

import pytest

from monitor.units import UnitError, format_duration, parse_bandwidth, parse_duration


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("500ms", 0.5),
        ("100ms", 0.1),
        ("15s", 15.0),
        ("0s", 0.0),
        ("1.5s", 1.5),
        ("2m", 120.0),
        ("1h", 3600.0),
        ("1d", 86400.0),
        ("1m30s", 90.0),
        ("1h30m", 5400.0),
        ("1d2h3m4s5ms", 93784.005),
        (" 15s ", 15.0),
    ],
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds, abs=1e-12)


def test_milliseconds_are_exact() -> None:
    # 100 * 0.001 would be 0.10000000000000002; equality matters for reload change detection.
    assert parse_duration("100ms") == 0.1
    assert parse_duration("300ms") == 0.3


@pytest.mark.parametrize("text", ["15", "0", "1.5", "-3", "1e3"])
def test_bare_number_is_not_a_duration(text: str) -> None:
    with pytest.raises(ValueError, match=r"durations need a unit, e\.g\. 15s"):
        parse_duration(text)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "empty"),
        ("15x", "unknown unit 'x'"),
        ("15S", "unknown unit 'S'"),
        ("15 s", "unknown unit ' s'"),
        ("1m30", "every number needs a unit"),
        ("30s1m", "units must go from largest to smallest"),
        ("1m1m", "units must go from largest to smallest"),
        ("-5s", "cannot be negative"),
        ("s", "use a number and a unit"),
        ("1..5s", "unknown unit '..'"),
    ],
)
def test_invalid_durations(text: str, reason: str) -> None:
    with pytest.raises(UnitError) as caught:
        parse_duration(text)
    assert reason in caught.value.reason
    assert str(caught.value).startswith(f"invalid duration {text!r}: ")
    assert isinstance(caught.value, ValueError)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0s"),
        (0.5, "500ms"),
        (0.0015, "1.5ms"),
        (15, "15s"),
        (60, "1m"),
        (90, "1m30s"),
        (3600, "1h"),
        (86400, "1d"),
        (4.8, "4.8s"),
        (60.25, "1m250ms"),
        (93784.005, "1d2h3m4.005s"),
        (0.000001, "0.001ms"),
    ],
)
def test_format_duration(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


@pytest.mark.parametrize("seconds", [0.001, 0.25, 1, 2.5, 59.999, 61, 3599, 7322.5, 172800])
def test_format_duration_round_trips(seconds: float) -> None:
    assert parse_duration(format_duration(seconds)) == pytest.approx(seconds, abs=1e-9)


@pytest.mark.parametrize("seconds", [-1, float("nan"), float("inf")])
def test_format_duration_rejects_non_durations(seconds: float) -> None:
    with pytest.raises(ValueError, match="cannot format"):
        format_duration(seconds)


@pytest.mark.parametrize(
    ("text", "bytes_per_second"),
    [
        ("500Mbit", 62_500_000.0),
        ("1Gbit", 125_000_000.0),
        ("1.5Gbit", 187_500_000.0),
        ("10Gbit", 1_250_000_000.0),
        ("1Tbit", 125_000_000_000.0),
        ("8bit", 1.0),
        ("64kbit", 8_000.0),
        ("100Mbps", 12_500_000.0),
        ("100mbps", 12_500_000.0),
        ("100MBIT", 12_500_000.0),
        ("2gbps", 250_000_000.0),
        ("16kbps", 2_000.0),
        ("800bps", 100.0),
        ("1Tbps", 125_000_000_000.0),
        ("500Mbit/s", 62_500_000.0),
    ],
)
def test_parse_bandwidth(text: str, bytes_per_second: float) -> None:
    assert parse_bandwidth(text) == bytes_per_second


@pytest.mark.parametrize("text", ["500", "1.5", "0"])
def test_bare_number_is_not_a_bandwidth(text: str) -> None:
    with pytest.raises(UnitError) as caught:
        parse_bandwidth(text)
    message = str(caught.value)
    assert "bandwidth needs a unit" in message
    for unit in ("bit", "kbit", "Mbit", "Gbit", "Tbit", "bps", "kbps", "Mbps", "Gbps", "Tbps"):
        assert unit in message


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "empty"),
        ("500MB", "unknown unit 'MB'"),
        ("500Mb", "unknown unit 'Mb'"),
        ("500Pbit", "unknown unit 'Pbit'"),
        ("500 Mbit", "use bit, kbit, Mbit"),
        ("-5Mbit", "use bit, kbit, Mbit"),
        ("100MBps", "'MBps' reads as bytes per second"),
        ("1GBps", "'GBps' reads as bytes per second"),
    ],
)
def test_invalid_bandwidths(text: str, reason: str) -> None:
    with pytest.raises(UnitError) as caught:
        parse_bandwidth(text)
    assert reason in caught.value.reason
    assert str(caught.value).startswith(f"invalid bandwidth {text!r}: ")
