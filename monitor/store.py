"""The latest result of every target, shared by the event loop (writer) and HTTP threads (readers).

Each target's state is an immutable record replaced as a whole, so a reader always sees one
consistent state per target without holding a lock while it renders.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from dataclasses import dataclass, field

from monitor.config.model import Config, Target
from monitor.results import PingRound, SnmpPoll

Key = tuple[str, str, str]


@dataclass(frozen=True)
class TargetState:
    target: Target
    ping: PingRound | None = None
    ping_requests_total: int = 0
    ping_replies_total: int = 0
    snmp: SnmpPoll | None = None  # the last poll, failed or not
    snmp_last_ok: SnmpPoll | None = None  # the last successful one, for "last seen"

    @property
    def up(self) -> bool | None:
        """Answered its last round of any probe kind; None until a first result exists."""
        answers = []
        if self.target.ping is not None and self.ping is not None:
            answers.append(self.ping.up)
        if self.target.snmp is not None and self.snmp is not None:
            answers.append(self.snmp.ok)
        return any(answers) if answers else None

    @property
    def last_error(self) -> str | None:
        errors = []
        if self.ping is not None and not self.ping.up:
            errors.append(f"ping: {self.ping.error or 'no echo reply'}")
        if self.snmp is not None and not self.snmp.ok:
            errors.append(f"snmp: {self.snmp.error}")
        return "; ".join(errors) or None


@dataclass(frozen=True)
class ReloadStatus:
    successful: bool = True
    last_success: float = 0.0
    last_attempt: float = 0.0
    problems: tuple[str, ...] = ()


@dataclass
class CollectorCounters:
    """Collector-wide counters for self-monitoring; written only from the event loop."""

    rounds: dict[str, int] = field(default_factory=lambda: {"icmp": 0, "snmp": 0})
    skipped: dict[str, int] = field(default_factory=lambda: {"icmp": 0, "snmp": 0})
    delay_sum: dict[str, float] = field(default_factory=lambda: {"icmp": 0.0, "snmp": 0.0})
    snmp_requests: int = 0
    snmp_varbinds: int = 0


class ResultStore:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._states: dict[Key, TargetState] = {}
        self.config: Config | None = None
        self.reload = ReloadStatus()
        self.counters = CollectorCounters()
        self.started = time.time()

    def sync(self, config: Config) -> None:
        """Make the store hold exactly the targets of `config`. A target that stays keeps its
        results and counters (with its new settings), so a reload does not reset any series."""
        with self._lock:
            states: dict[Key, TargetState] = {}
            for target in config.targets():
                old = self._states.get(target.key)
                if old is None:
                    states[target.key] = TargetState(target)
                    continue
                state = dataclasses.replace(old, target=target)
                if target.ping is None:
                    state = dataclasses.replace(state, ping=None)
                if target.snmp is None:
                    state = dataclasses.replace(state, snmp=None, snmp_last_ok=None)
                states[target.key] = state
            self._states = states
            self.config = config

    def record_ping(self, key: Key, result: PingRound) -> None:
        with self._lock:
            state = self._states.get(key)
            if state is None:  # removed by a reload while the round ran
                return
            self._states[key] = dataclasses.replace(
                state,
                ping=result,
                ping_requests_total=state.ping_requests_total + result.sent,
                ping_replies_total=state.ping_replies_total + result.received,
            )

    def record_snmp(self, key: Key, result: SnmpPoll) -> None:
        with self._lock:
            state = self._states.get(key)
            if state is None:
                return
            self._states[key] = dataclasses.replace(
                state, snmp=result, snmp_last_ok=result if result.ok else state.snmp_last_ok
            )
            self.counters.snmp_requests += result.requests
            self.counters.snmp_varbinds += result.varbinds

    def get(self, key: Key) -> TargetState | None:
        return self._states.get(key)

    def snapshot(self) -> list[TargetState]:
        with self._lock:
            return list(self._states.values())
