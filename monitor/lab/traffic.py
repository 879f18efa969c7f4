"""Believable, moving counters without per-request state.

A school's traffic follows its day: almost nothing at night, a climb from eight, a dip at lunch,
quiet after four. The lab compresses that day (by default into ten minutes) so a demo shows shape
quickly. Every counter is a closed-form function of time — the integral of its rate — so any
request at any moment gets a consistent, monotonic value, and thousands of devices cost no
background work at all.
"""

from __future__ import annotations

import itertools
import math
import random
from dataclasses import dataclass

# Fraction of peak traffic by hour of the school day (0..24), linearly interpolated.
DAY_PROFILE = [
    0.03,
    0.03,
    0.03,
    0.03,
    0.03,
    0.03,
    0.05,
    0.12,
    0.60,
    0.90,
    1.00,
    0.95,
    0.55,
    0.85,
    0.90,
    0.70,
    0.40,
    0.15,
    0.08,
    0.06,
    0.05,
    0.04,
    0.03,
    0.03,
    0.03,
]
_CUMULATIVE = [0.0]
for _a, _b in itertools.pairwise(DAY_PROFILE):
    _CUMULATIVE.append(_CUMULATIVE[-1] + (_a + _b) / 2)
_DAY_TOTAL = _CUMULATIVE[-1]  # area under one day, in peak-hours


def _area(hours: float) -> float:
    """Area under DAY_PROFILE from 0 to `hours` (0 <= hours <= 24), in peak-hours."""
    i = min(int(hours), 23)
    frac = hours - i
    a, b = DAY_PROFILE[i], DAY_PROFILE[i + 1]
    return _CUMULATIVE[i] + frac * (a + (a + (b - a) * frac)) / 2


def day_fraction(t: float, day_seconds: float, shift: float = 0.0) -> float:
    """The profile value (0..1) at time t."""
    hours = ((t / day_seconds * 24.0) + shift) % 24.0
    i = min(int(hours), 23)
    a, b = DAY_PROFILE[i], DAY_PROFILE[i + 1]
    return a + (b - a) * (hours - i)


@dataclass(frozen=True)
class Flow:
    """The rate of one counter: `peak` units per second at the busiest hour of the day, the day
    shifted by `shift` hours, plus a gentle wobble so no two ports draw the same line."""

    peak: float
    shift: float = 0.0
    wobble: float = 0.0  # amplitude as a fraction of peak
    period: float = 97.0  # seconds
    phase: float = 0.0

    def total(self, t: float, day_seconds: float) -> float:
        """Units accumulated from t = 0 to t (t in seconds since the lab's epoch)."""
        if self.peak <= 0:
            return 0.0
        start = self.shift
        hours = t / day_seconds * 24.0 + start
        days, rest = divmod(hours, 24.0)
        area = days * _DAY_TOTAL + _area(rest) - _area(start % 24.0)
        base = area * day_seconds / 24.0
        omega = 2 * math.pi / self.period
        wobble = self.wobble / omega * (math.cos(self.phase) - math.cos(omega * t + self.phase))
        return self.peak * (base + wobble)

    def rate(self, t: float, day_seconds: float) -> float:
        omega = 2 * math.pi / self.period
        return self.peak * (
            day_fraction(t, day_seconds, self.shift)
            + self.wobble * math.sin(omega * t + self.phase)
        )


def flow_for(seed: str, peak: float) -> Flow:
    """A Flow whose shape is fixed by `seed` (so a restarted lab draws the same lines)."""
    rnd = random.Random(seed)
    return Flow(
        peak=peak,
        shift=rnd.uniform(-0.7, 0.7),
        wobble=rnd.uniform(0.005, 0.025),
        period=rnd.uniform(40, 180),
        phase=rnd.uniform(0, 2 * math.pi),
    )


@dataclass(frozen=True)
class Ticks:
    """An event counter that steps at deterministic, irregular moments (errors, discards):
    on average once every `mean_interval` seconds."""

    mean_interval: float
    seed: int

    def total(self, t: float) -> int:
        if self.mean_interval <= 0 or t <= 0:
            return 0
        # Steps at k*mean_interval + jitter(k) with jitter in [0, mean_interval): monotonic.
        k = int(t // self.mean_interval)
        jitter = random.Random(self.seed * 1_000_003 + k).random() * self.mean_interval
        return k + (1 if t - k * self.mean_interval >= jitter else 0)
