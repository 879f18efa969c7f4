"""Runs every target's probes on their intervals, and applies config changes to the running set.

Each target gets one asyncio task per probe kind. Its rounds sit at a fixed phase within the
interval, derived from a hash of the target's key: thousands of targets spread evenly instead of
bursting together, and the phase survives reloads and restarts, so a target's samples stay evenly
spaced. A round that cannot start on time (the previous one overran) is skipped and counted, never
queued: a backlog would only make every later result stale.
"""

from __future__ import annotations

import asyncio
import logging
import time
import zlib
from collections.abc import Sequence

from monitor.config.model import Config, Target
from monitor.health import RoundCounters
from monitor.logs import event
from monitor.probes.base import Key, Probe
from monitor.resolver import ResolveError, Resolver
from monitor.store import ResultStore

log = logging.getLogger(__name__)


def phase(key: Key, kind: str, interval: float) -> float:
    """Stable offset of a target's rounds within its interval."""
    digest = zlib.crc32("/".join((*key, kind)).encode())
    return (digest / 0xFFFFFFFF) * interval


class Scheduler:
    """Drives every registered probe kind (monitor/probes) for every target that uses it."""

    def __init__(
        self,
        store: ResultStore,
        probes: Sequence[Probe],
        rounds: RoundCounters | None = None,
        resolver: Resolver | None = None,
    ) -> None:
        self.store = store
        self.probes = list(probes)
        self.rounds = rounds if rounds is not None else RoundCounters()
        for probe in self.probes:
            self.rounds.add_kind(probe.kind)
        self.resolver = resolver or Resolver()
        self._tasks: dict[Key, list[asyncio.Task]] = {}
        self._targets: dict[Key, Target] = {}

    def kinds(self, target: Target) -> list[str]:
        """The probe kinds `target` uses."""
        return [p.kind for p in self.probes if p.settings(target) is not None]

    def apply(self, config: Config) -> tuple[int, int, int]:
        """Start new targets, stop removed ones, restart changed ones; unchanged ones keep running
        untouched. A probe forgets a target that is removed or whose address or settings of that
        kind changed. Returns (added, removed, changed)."""
        wanted = {t.key: t for t in config.targets()}
        added = removed = changed = 0
        for key in list(self._targets):
            if key not in wanted:
                self._stop(key)
                for probe in self.probes:
                    probe.forget(key)
                removed += 1
        self.store.sync(config, self.kinds)
        for key, target in wanted.items():
            old = self._targets.get(key)
            if old == target:
                continue
            if old is None:
                added += 1
            else:
                self._stop(key)
                changed += 1
                for probe in self.probes:
                    if old.host != target.host or probe.settings(old) != probe.settings(target):
                        probe.forget(key)
            self._start(target)
        return added, removed, changed

    async def stop(self) -> None:
        tasks = [t for ts in self._tasks.values() for t in ts]
        for key in list(self._tasks):
            self._stop(key)
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    def _start(self, target: Target) -> None:
        name = "/".join(target.key)
        self._tasks[target.key] = [
            asyncio.create_task(self._every(target, probe), name=f"{probe.kind} {name}")
            for probe in self.probes
            if probe.settings(target) is not None
        ]
        self._targets[target.key] = target

    def _stop(self, key: Key) -> None:
        for task in self._tasks.pop(key, []):
            task.cancel()
        self._targets.pop(key, None)

    async def _every(self, target: Target, probe: Probe) -> None:
        loop = asyncio.get_running_loop()
        kind = probe.kind
        settings = probe.settings(target)
        assert settings is not None
        interval = settings.interval
        # Align to wall-clock multiples of the interval plus the target's phase, on the loop clock.
        now_wall, now_loop = time.time(), loop.time()
        offset = phase(target.key, kind, interval)
        next_wall = now_wall - (now_wall % interval) + offset
        if next_wall < now_wall:
            next_wall += interval
        due = now_loop + (next_wall - now_wall)
        rounds = self.rounds
        while True:
            await asyncio.sleep(max(0.0, due - loop.time()))
            delay = max(0.0, loop.time() - due)
            rounds.started[kind] += 1
            rounds.delay_sum[kind] += delay
            try:
                await self._once(target, probe)
            except asyncio.CancelledError:
                raise
            except Exception:  # a bug must cost one round of one target, not the collector
                log.exception(
                    "probe crashed",
                    extra={"fields": {"target": "/".join(target.key), "probe": kind}},
                )
            due += interval
            late = loop.time() - due
            if late > 0:
                missed = int(late // interval) + 1
                rounds.skipped[kind] += missed
                due += missed * interval
                event(
                    log,
                    logging.WARNING,
                    "round overran its interval",
                    target="/".join(target.key),
                    probe=kind,
                    skipped=missed,
                )

    async def _once(self, target: Target, probe: Probe) -> None:
        try:
            address = await self.resolver.resolve(target.host)
        except ResolveError as exc:
            result = probe.failed(target, time.time(), str(exc))
        else:
            result = await probe.run(target, address)
        previous = self.store.get(target.key)
        before = previous.results.get(probe.kind) if previous is not None else None
        result = probe.after(before, result)
        self.store.record(target.key, probe.kind, result)
        line = probe.changes(target, before, result)
        if line is not None:
            event(log, line.level, line.message, **line.fields)
