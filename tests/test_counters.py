"""Counter bookkeeping between polls: 32-bit wraps unfolded, reboots and the sysUpTime wrap told
apart. Corner cases with made-up numbers; the real agents are in test_snmp_*.py."""

from __future__ import annotations

from monitor.probes.snmp.interfaces import UPTIME_WRAP, CounterUnwrapper, uptime_dropped

COLUMN = (1, 3, 6, 1, 2, 1, 2, 2, 1, 10)


def test_a_32_bit_wrap_is_unfolded():
    u = CounterUnwrapper(max_gap=180)
    u.begin(1000.0, 5000.0)
    assert u.value(1, COLUMN, 2**32 - 100) == 2**32 - 100
    u.begin(1060.0, 5060.0)
    assert u.value(1, COLUMN, 50) == 2**32 + 50  # wrapped once: 150 bytes later
    u.begin(1120.0, 5120.0)
    assert u.value(1, COLUMN, 1050) == 2**32 + 1050


def test_a_reboot_starts_the_counter_over():
    u = CounterUnwrapper(max_gap=180)
    u.begin(1000.0, 5000.0)
    u.value(1, COLUMN, 900_000)
    u.begin(1060.0, 30.0)  # sysUpTime went down: rebooted
    assert u.value(1, COLUMN, 1000) == 1000


def test_a_long_gap_starts_the_counter_over():
    u = CounterUnwrapper(max_gap=180)
    u.begin(1000.0, 5000.0)
    u.value(1, COLUMN, 900_000)
    u.begin(2000.0, 6000.0)  # polls missing for longer than max_gap: wraps are unknowable
    assert u.value(1, COLUMN, 10) == 10


def test_the_497_day_uptime_wrap_is_not_a_reboot():
    before = UPTIME_WRAP - 20  # 20 s before sysUpTime wraps
    assert not uptime_dropped(before, 40.0, 60.0)  # 60 s later it reads 40 s
    assert uptime_dropped(3_000_000.0, 40.0, 60.0)  # far from the wrap: a reboot
    assert uptime_dropped(before, 4000.0, 60.0)  # after the wrap, but too far: a reboot
    assert not uptime_dropped(100.0, 160.0, 60.0)  # going up is never a drop
    u = CounterUnwrapper(max_gap=180)
    u.begin(1000.0, before)
    u.value(1, COLUMN, 2**32 - 10)
    u.begin(1060.0, 40.0)
    assert u.value(1, COLUMN, 20) == 2**32 + 20  # counters keep unfolding across the wrap
