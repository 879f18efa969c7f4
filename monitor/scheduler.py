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
from collections.abc import Awaitable, Callable

from monitor.config.model import Config, Target
from monitor.logs import event
from monitor.probes.icmp import IcmpProber
from monitor.probes.snmp import SnmpProber
from monitor.resolver import ResolveError, Resolver
from monitor.results import PingRound, SnmpPoll
from monitor.store import Key, ResultStore

log = logging.getLogger(__name__)


def phase(key: Key, kind: str, interval: float) -> float:
    """Stable offset of a target's rounds within its interval."""
    digest = zlib.crc32("/".join((*key, kind)).encode())
    return (digest / 0xFFFFFFFF) * interval


class Scheduler:
    def __init__(
        self,
        store: ResultStore,
        icmp: IcmpProber,
        snmp: SnmpProber,
        resolver: Resolver | None = None,
    ) -> None:
        self.store = store
        self.icmp = icmp
        self.snmp = snmp
        self.resolver = resolver or Resolver()
        self._tasks: dict[Key, list[asyncio.Task]] = {}
        self._targets: dict[Key, Target] = {}

    @property
    def targets(self) -> dict[Key, Target]:
        return dict(self._targets)

    def apply(self, config: Config) -> tuple[int, int, int]:
        """Start new targets, stop removed ones, restart changed ones; unchanged ones keep running
        untouched. Returns (added, removed, changed)."""
        wanted = {t.key: t for t in config.targets()}
        added = removed = changed = 0
        for key in list(self._targets):
            if key not in wanted:
                self._stop(key)
                self.snmp.forget(key)
                removed += 1
        self.store.sync(config)
        for key, target in wanted.items():
            old = self._targets.get(key)
            if old == target:
                continue
            if old is None:
                added += 1
            else:
                self._stop(key)
                changed += 1
                if old.snmp != target.snmp or old.host != target.host:
                    self.snmp.forget(key)
            self._start(target)
        return added, removed, changed

    async def stop(self) -> None:
        tasks = [t for ts in self._tasks.values() for t in ts]
        for key in list(self._tasks):
            self._stop(key)
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    def _start(self, target: Target) -> None:
        tasks = []
        name = "/".join(target.key)
        if target.ping is not None:
            tasks.append(
                asyncio.create_task(
                    self._every(target, "icmp", target.ping.interval, self._ping_once),
                    name=f"icmp {name}",
                )
            )
        if target.snmp is not None:
            tasks.append(
                asyncio.create_task(
                    self._every(target, "snmp", target.snmp.interval, self._snmp_once),
                    name=f"snmp {name}",
                )
            )
        self._tasks[target.key] = tasks
        self._targets[target.key] = target

    def _stop(self, key: Key) -> None:
        for task in self._tasks.pop(key, []):
            task.cancel()
        self._targets.pop(key, None)

    async def _every(
        self,
        target: Target,
        kind: str,
        interval: float,
        once: Callable[[Target], Awaitable[None]],
    ) -> None:
        loop = asyncio.get_running_loop()
        # Align to wall-clock multiples of the interval plus the target's phase, on the loop clock.
        now_wall, now_loop = time.time(), loop.time()
        offset = phase(target.key, kind, interval)
        next_wall = now_wall - (now_wall % interval) + offset
        if next_wall < now_wall:
            next_wall += interval
        due = now_loop + (next_wall - now_wall)
        counters = self.store.counters
        while True:
            await asyncio.sleep(max(0.0, due - loop.time()))
            delay = max(0.0, loop.time() - due)
            counters.rounds[kind] += 1
            counters.delay_sum[kind] += delay
            try:
                await once(target)
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
                counters.skipped[kind] += missed
                due += missed * interval
                event(
                    log,
                    logging.WARNING,
                    "round overran its interval",
                    target="/".join(target.key),
                    probe=kind,
                    skipped=missed,
                )

    async def _ping_once(self, target: Target) -> None:
        assert target.ping is not None
        try:
            address = await self.resolver.resolve(target.host)
        except ResolveError as exc:
            result = PingRound(time.time(), 0, (), error=str(exc))
        else:
            result = await self.icmp.round(address, target.ping)
        previous = self.store.get(target.key)
        self.store.record_ping(target.key, result)
        before = previous.ping.up if previous is not None and previous.ping is not None else None
        if _changed(before, result.up):
            event(
                log,
                logging.INFO if result.up else logging.WARNING,
                "ping up" if result.up else "ping down",
                target="/".join(target.key),
                address=target.host,
                loss=result.loss_ratio,
                error=result.error or "",
            )

    async def _snmp_once(self, target: Target) -> None:
        assert target.snmp is not None
        try:
            address = await self.resolver.resolve(target.host)
        except ResolveError as exc:
            result = SnmpPoll(time.time(), False, 0.0, error=str(exc))
        else:
            result = await self.snmp.poll(target, address)
        previous = self.store.get(target.key)
        self.store.record_snmp(target.key, result)
        before = previous.snmp if previous is not None else None
        if _changed(before.ok if before else None, result.ok) or (
            not result.ok and before is not None and before.error != result.error
        ):
            if result.ok:
                event(
                    log,
                    logging.INFO,
                    "snmp up",
                    target="/".join(target.key),
                    interfaces=len(result.interfaces),
                )
            else:
                event(
                    log,
                    logging.WARNING,
                    "snmp poll failed",
                    target="/".join(target.key),
                    address=target.host,
                    error=result.error,
                )


def _changed(before: bool | None, now: bool) -> bool:
    """Log transitions, and a target that is down from its very first round."""
    return before != now if before is not None else not now
