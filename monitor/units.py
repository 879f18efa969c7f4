"""Durations and bandwidths as people write them in targets.yaml ("15s", "1m30s", "500Mbit").

A bare number is always an error: "interval: 15" could be seconds or milliseconds and "bandwidth:
500" could be bits, bytes, kilo or mega anything; guessing wrong silently skews every alert.
"""

from __future__ import annotations

import math
import re

__all__ = ["UnitError", "format_duration", "parse_bandwidth", "parse_duration"]


class UnitError(ValueError):
    """A value that is not a valid duration or bandwidth.

    `reason` is kept apart from the offending text so that callers which must not echo the text
    (it may come from a secret environment variable) can build their own message.
    """

    def __init__(self, kind: str, text: str, reason: str) -> None:
        self.kind = kind
        self.text = text
        self.reason = reason
        super().__init__(f"invalid {kind} {text!r}: {reason}")


# Largest first: compound durations must be written in this order, each unit at most once, so that
# "1m1m" or "30s1m" (most likely typos) are rejected instead of summed.
_DURATION_UNITS: tuple[tuple[str, float], ...] = (
    ("d", 86400.0),
    ("h", 3600.0),
    ("m", 60.0),
    ("s", 1.0),
    ("ms", 0.001),
)
_DURATION_FACTOR = dict(_DURATION_UNITS)
_DURATION_RANK = {unit: rank for rank, (unit, _) in enumerate(_DURATION_UNITS)}
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(\D*)")
_BARE_NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")
_DURATION_HINT = "use a number and a unit ms, s, m, h or d, e.g. 15s or 1m30s"


def parse_duration(text: str) -> float:
    """Parse "500ms", "15s", "2m", "1h", "1d" or a compound such as "1m30s" into seconds."""
    value = text.strip()
    if not value:
        raise UnitError("duration", text, "empty; " + _DURATION_HINT)
    if _BARE_NUMBER.fullmatch(value):
        raise UnitError("duration", text, "durations need a unit, e.g. 15s")
    if value.startswith("-"):
        raise UnitError("duration", text, "durations cannot be negative")
    total = 0.0
    position = 0
    last_rank = -1
    while position < len(value):
        match = _DURATION_PART.match(value, position)
        if match is None:
            raise UnitError("duration", text, _DURATION_HINT)
        number, unit = match.groups()
        if not unit:
            raise UnitError("duration", text, f"every number needs a unit; {_DURATION_HINT}")
        if unit not in _DURATION_FACTOR:
            raise UnitError("duration", text, f"unknown unit {unit!r}; {_DURATION_HINT}")
        rank = _DURATION_RANK[unit]
        if rank <= last_rank:
            raise UnitError(
                "duration", text, "units must go from largest to smallest, each once, e.g. 1h30m"
            )
        last_rank = rank
        # Divide for milliseconds so that "100ms" is exactly 0.1, not 100 * 0.001.
        total += float(number) / 1000 if unit == "ms" else float(number) * _DURATION_FACTOR[unit]
        position = match.end()
    return total


def format_duration(seconds: float) -> str:
    """How messages show a duration: the way a person would write it in targets.yaml ("1m30s",
    "4.8s", "500ms"), and always something parse_duration reads back (to the microsecond)."""
    if math.isnan(seconds) or math.isinf(seconds) or seconds < 0:
        raise ValueError(f"cannot format {seconds!r} as a duration")
    micros = round(seconds * 1_000_000)
    if micros == 0:
        return "0s"
    parts = []
    for unit, factor in _DURATION_UNITS[:3]:  # d, h, m: whole units
        count, micros = divmod(micros, round(factor * 1_000_000))
        if count:
            parts.append(f"{count}{unit}")
    if micros >= 1_000_000:
        parts.append(_decimal(micros, 1_000_000) + "s")
    elif micros:
        parts.append(_decimal(micros, 1_000) + "ms")
    return "".join(parts)


def _decimal(micros: int, per_unit: int) -> str:
    whole, fraction = divmod(micros, per_unit)
    if not fraction:
        return str(whole)
    digits = len(str(per_unit)) - 1
    return f"{whole}.{fraction:0{digits}d}".rstrip("0")


# Decimal (SI) prefixes, as link contracts and interface speeds are quoted.
_BIT_PREFIXES = {"": 1.0, "k": 1e3, "m": 1e6, "g": 1e9, "t": 1e12}
_BANDWIDTH = re.compile(r"(\d+(?:\.\d+)?)([A-Za-z/]*)")
_BANDWIDTH_UNIT = re.compile(r"([kmgt]?)(?:bit|bit/s|bps)", re.IGNORECASE)
_BANDWIDTH_HINT = "use bit, kbit, Mbit, Gbit or Tbit (or bps, kbps, Mbps, Gbps, Tbps), e.g. 500Mbit"


def parse_bandwidth(text: str) -> float:
    """Parse "500Mbit", "1.5Gbit", "100Mbps" (bits per second, decimal prefixes) into bytes per
    second, the base unit the metrics use."""
    value = text.strip()
    if not value:
        raise UnitError("bandwidth", text, "empty; " + _BANDWIDTH_HINT)
    if _BARE_NUMBER.fullmatch(value):
        raise UnitError("bandwidth", text, "bandwidth needs a unit; " + _BANDWIDTH_HINT)
    match = _BANDWIDTH.fullmatch(value)
    if match is None:
        raise UnitError("bandwidth", text, _BANDWIDTH_HINT)
    number, unit = match.groups()
    unit_match = _BANDWIDTH_UNIT.fullmatch(unit)
    if unit_match is None:
        raise UnitError("bandwidth", text, f"unknown unit {unit!r}; {_BANDWIDTH_HINT}")
    # Units are case-insensitive, except that a capital B before "ps" ("MBps") conventionally
    # means bytes; reading it as bits would be off by a factor 8 without anyone noticing.
    if unit.endswith("Bps"):
        raise UnitError(
            "bandwidth",
            text,
            f"{unit!r} reads as bytes per second; bandwidth is given in bits: {_BANDWIDTH_HINT}",
        )
    bits = float(number) * _BIT_PREFIXES[unit_match.group(1).lower()]
    return bits / 8
