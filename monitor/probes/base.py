"""What every probe kind is to the scheduler: one interface, so a new kind is one new module plus
one line in `monitor/probes/__init__.py`.

The scheduler knows nothing of ICMP or SNMP: it asks each registered probe for the settings of a
target (None: the target does not use that kind; else `settings.interval` is its period), runs
rounds with `run()`, hands the results to the result store under `probe.kind`, and tells the probe
to `forget()` a target that is removed or whose settings or address changed. `statistics()` are
the probe's own counters (replies nobody asked for, decoder fallbacks, ...), rendered by the
exposition beside the collector's other self-metrics.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Protocol

from monitor.config.model import Target

Key = tuple[str, str, str]


class Result(Protocol):
    """A round's outcome as the store and the status page see it, whatever the kind."""

    started: float  # wall clock

    @property
    def up(self) -> bool: ...

    @property
    def problem(self) -> str | None:
        """Why the round failed, safe to log and show; None when up."""
        ...


class Settings(Protocol):
    interval: float  # seconds between rounds


@dataclass(frozen=True)
class Statistic:
    """One sample of a probe's self-metric: `name` is a Prometheus family (a counter ends in
    `_total`), `labels` its label pairs (the same names for every sample of one family)."""

    name: str
    type: str  # counter | gauge
    help: str
    value: float
    labels: tuple[tuple[str, str], ...] = ()


class Probe(Protocol):
    """One probe kind. Implementations: probes/icmp.py (IcmpProber), probes/snmp/poll.py
    (SnmpProber)."""

    kind: str  # label value of `probe=` in the collector's metrics: icmp, snmp, ...

    def start(self, targets: Iterable[Target]) -> None:
        """Called once when the collector starts: open what must be open, say what is missing."""
        ...

    def settings(self, target: Target) -> Settings | None:
        """This kind's settings of `target`, None if the target is not probed by it."""
        ...

    async def run(self, target: Target, address: str) -> Result:
        """One round for `target` at the resolved `address`; device trouble is a result that is
        not up, never an exception."""
        ...

    def failed(self, target: Target, started: float, error: str) -> Result:
        """The result of a round that could not start (the address did not resolve)."""
        ...

    def after(self, previous: Result | None, result: Result) -> Result:
        """The result to store, given the stored one (counters that accumulate across rounds)."""
        ...

    def changes(self, target: Target, before: Result | None, result: Result) -> LogLine | None:
        """What to log when a round's outcome differs from the last one's; None: nothing."""
        ...

    def forget(self, key: Key) -> None:
        """Drop what the probe remembers about a target (removed, or changed)."""
        ...

    def statistics(self) -> Iterable[Statistic]: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class LogLine:
    level: int
    message: str
    fields: Mapping[str, object]


def transition(before: Result | None, result: Result) -> bool:
    """The rule every kind logs by: a change of up/down, a target that is down from its very first
    round, and a down target whose reason changed."""
    if before is None:
        return not result.up
    if before.up != result.up:
        return True
    return not result.up and before.problem != result.problem


def up_or_down(
    target: Target, before: Result | None, result: Result, up: str, down: str, **fields: object
) -> LogLine | None:
    """The usual LogLine of `changes()`: `up` at INFO, `down` at WARNING with the problem."""
    if not transition(before, result):
        return None
    name = "/".join(target.key)
    if result.up:
        return LogLine(logging.INFO, up, {"target": name, **fields})
    return LogLine(
        logging.WARNING,
        down,
        {"target": name, "address": target.host, **fields, "error": result.problem or ""},
    )
