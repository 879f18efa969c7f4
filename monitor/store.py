"""The latest result of every target, shared by the event loop (writer) and HTTP threads (readers).

Each target's state is an immutable record replaced as a whole, so a reader always sees one
consistent state per target without holding a lock while it renders. The store holds results
only, keyed by probe kind; the collector's own state (reload status, round counters, probe
statistics) is in monitor/health.py.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from monitor.config.model import Config, Target
from monitor.probes.base import Key, Result
from monitor.results import PingRound, SnmpPoll

__all__ = ["Key", "ResultStore", "TargetState"]


@dataclass(frozen=True)
class TargetState:
    target: Target
    results: Mapping[str, Result] = field(default_factory=dict)  # probe kind -> latest result
    last_up: Mapping[str, Result] = field(default_factory=dict)  # kind -> latest that was up

    @property
    def ping(self) -> PingRound | None:
        return self.results.get(PingRound.KIND)  # type: ignore[return-value]

    @property
    def snmp(self) -> SnmpPoll | None:
        """The last poll, failed or not."""
        return self.results.get(SnmpPoll.KIND)  # type: ignore[return-value]

    @property
    def snmp_last_ok(self) -> SnmpPoll | None:
        """The last successful poll, for "last seen" identity on the status page."""
        return self.last_up.get(SnmpPoll.KIND)  # type: ignore[return-value]

    @property
    def ping_requests_total(self) -> int:
        return self.ping.requests_total if self.ping is not None else 0

    @property
    def ping_replies_total(self) -> int:
        return self.ping.replies_total if self.ping is not None else 0

    @property
    def up(self) -> bool | None:
        """Answered its last round of any probe kind; None until a first result exists."""
        return any(r.up for r in self.results.values()) if self.results else None

    @property
    def last_error(self) -> str | None:
        errors = [
            f"{getattr(result, 'NOUN', kind)}: {result.problem}"
            for kind, result in sorted(self.results.items())
            if not result.up
        ]
        return "; ".join(errors) or None


class ResultStore:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._states: dict[Key, TargetState] = {}
        self.config: Config | None = None  # what the targets are of: members, schools

    def sync(self, config: Config, kinds: Callable[[Target], Iterable[str]] | None = None) -> None:
        """Make the store hold exactly the targets of `config`. A target that stays keeps its
        results (with its new settings), so a reload does not reset any series; the results of a
        probe kind it no longer uses (`kinds(target)`: the kinds it does use) are dropped."""
        with self._lock:
            states: dict[Key, TargetState] = {}
            for target in config.targets():
                old = self._states.get(target.key)
                if old is None:
                    states[target.key] = TargetState(target)
                    continue
                if kinds is None:
                    states[target.key] = TargetState(target, old.results, old.last_up)
                    continue
                used = set(kinds(target))
                states[target.key] = TargetState(
                    target,
                    {k: r for k, r in old.results.items() if k in used},
                    {k: r for k, r in old.last_up.items() if k in used},
                )
            self._states = states
            self.config = config

    def record(self, key: Key, kind: str, result: Result) -> None:
        """The latest result of probe `kind` for the target; ignored for a target a reload removed
        while its round ran."""
        with self._lock:
            state = self._states.get(key)
            if state is None:
                return
            last_up = state.last_up
            if result.up:
                last_up = {**last_up, kind: result}
            self._states[key] = TargetState(state.target, {**state.results, kind: result}, last_up)

    def record_ping(self, key: Key, result: PingRound) -> None:
        """`record` for a round whose running totals are counted here (tests and benchmarks that
        fill a store without the ICMP prober)."""
        previous = self.get(key)
        result = result.counted_after(previous.ping if previous is not None else None)
        self.record(key, PingRound.KIND, result)

    def record_snmp(self, key: Key, result: SnmpPoll) -> None:
        self.record(key, SnmpPoll.KIND, result)

    def get(self, key: Key) -> TargetState | None:
        return self._states.get(key)

    def snapshot(self) -> list[TargetState]:
        with self._lock:
            return list(self._states.values())
