"""The collector's own state, beside the result store: the last reload, the scheduler's round
counters and the probes (whose statistics are read when rendered). The exposition renders it as
the schoolnet_config_* and schoolnet_collector_* families; the status page shows the reload."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from monitor.probes.base import Probe


@dataclass(frozen=True)
class ReloadStatus:
    successful: bool = True
    last_success: float = 0.0
    last_attempt: float = 0.0
    problems: tuple[str, ...] = ()


@dataclass
class RoundCounters:
    """Per probe kind; written only from the event loop by the scheduler."""

    started: dict[str, int] = field(default_factory=dict)
    skipped: dict[str, int] = field(default_factory=dict)
    delay_sum: dict[str, float] = field(default_factory=dict)

    def add_kind(self, kind: str) -> None:
        self.started.setdefault(kind, 0)
        self.skipped.setdefault(kind, 0)
        self.delay_sum.setdefault(kind, 0.0)


@dataclass
class Health:
    reload: ReloadStatus = field(default_factory=ReloadStatus)
    rounds: RoundCounters = field(default_factory=RoundCounters)
    probes: Sequence[Probe] = ()

    def __post_init__(self) -> None:
        for probe in self.probes:
            self.rounds.add_kind(probe.kind)
