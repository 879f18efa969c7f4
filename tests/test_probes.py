"""The probe protocol: a new probe kind is one module plus one entry in monitor/probes/registry.py.

A test-only kind ("echo", defined here and never shipped) is registered the way a real one would
be, and the unchanged collector schedules it, stores its results beside ICMP's and SNMP's, counts
its rounds, renders its statistics and forgets removed targets.
"""

from __future__ import annotations

import asyncio
import subprocess
import time
from dataclasses import dataclass

from prometheus_client.parser import text_string_to_metric_families

from monitor import families
from monitor.collector import Collector, Listen
from monitor.config.loader import load_config
from monitor.config.model import PingSettings, Target
from monitor.probes import registry
from monitor.probes.base import Key, LogLine, Result, Statistic, up_or_down

CONFIG = """\
defaults:
  ping: {interval: 1s, count: 1, timeout: 300ms}
members:
  - id: coop
    schools:
      - id: school-a
        targets:
          - {id: t1, role: router, address: 127.0.0.31, snmp: false}
          - {id: t2, role: switch, address: 127.0.0.32, snmp: false}
"""


@dataclass(frozen=True)
class EchoResult:
    started: float
    address: str
    up: bool = True
    problem: str | None = None


class EchoProbe:
    """The whole of a probe kind: it 'probes' by remembering the address it was given."""

    kind = "echo"

    def __init__(self) -> None:
        self.rounds = 0
        self.forgotten: list[Key] = []

    def start(self, targets) -> None:
        pass

    def settings(self, target: Target) -> PingSettings | None:
        return target.ping  # rides on the ping interval; a real kind has its own settings

    async def run(self, target: Target, address: str) -> EchoResult:
        self.rounds += 1
        return EchoResult(time.time(), address)

    def failed(self, target: Target, started: float, error: str) -> EchoResult:
        return EchoResult(started, "", up=False, problem=error)

    def after(self, previous: Result | None, result: Result) -> Result:
        return result

    def changes(self, target: Target, before: Result | None, result: Result) -> LogLine | None:
        return up_or_down(target, before, result, "echo up", "echo down")

    def forget(self, key: Key) -> None:
        self.forgotten.append(key)

    def statistics(self) -> list[Statistic]:
        return [
            Statistic("schoolnet_collector_echo_rounds_total", "counter", "Echoes.", self.rounds)
        ]

    def close(self) -> None:
        pass


def test_a_registered_kind_is_scheduled_stored_counted_and_rendered(tmp_path, monkeypatch):
    monkeypatch.setattr(registry, "KINDS", (*registry.KINDS, lambda profiles: EchoProbe()))
    # its own self-metric is a row of the metric contract, like every family
    name = "schoolnet_collector_echo_rounds_total"
    monkeypatch.setitem(
        families.FAMILIES,
        name,
        families.Family(
            name, "counter", "Echoes.", families.Source.COLLECTOR, samples=families._statistic(name)
        ),
    )
    path = tmp_path / "targets.yaml"
    path.write_text(CONFIG)
    collector = Collector(load_config(path), Listen("127.0.0.1", 0), watch_interval=0)
    echo = next(p for p in collector.probes if isinstance(p, EchoProbe))

    async def run() -> tuple[bytes, dict]:
        task = asyncio.create_task(collector.run())
        deadline = time.monotonic() + 10
        while echo.rounds < 4 and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        states = {s.target.id: s for s in collector.store.snapshot()}
        body = collector.exposition.render()
        path.write_text(CONFIG.replace("          - {id: t2", "#"))
        await collector.reload("test")
        collector.stop()
        await task
        return body, states

    body, states = asyncio.run(run())
    assert echo.rounds >= 4
    assert states["t1"].results["echo"].address == "127.0.0.31"
    assert states["t2"].results["echo"].address == "127.0.0.32"
    assert set(states["t1"].results) <= {"echo", "icmp"}  # beside ICMP's, never instead of it
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(body.decode())
        for s in family.samples
    }
    assert samples[("schoolnet_collector_targets", (("probe", "echo"),))] == 2
    assert samples[("schoolnet_collector_schedule_delay_seconds_count", (("probe", "echo"),))] >= 4
    assert samples[("schoolnet_collector_rounds_skipped_total", (("probe", "echo"),))] == 0
    assert samples[("schoolnet_collector_echo_rounds_total", ())] >= 4
    assert ("coop", "school-a", "t2") in echo.forgotten  # removed by the reload
    # the real kinds' statistics are there too, and the whole page passes promtool's lint
    for reason in ("unmatched", "malformed"):
        key = ("schoolnet_collector_icmp_replies_ignored_total", (("reason", reason),))
        assert samples[key] >= 0
    for decoder in ("fastpath", "pyasn1"):
        key = ("schoolnet_collector_snmp_responses_decoded_total", (("decoder", decoder),))
        assert samples[key] == 0  # no SNMP target
    lint = subprocess.run(["promtool", "check", "metrics"], input=body, capture_output=True)
    assert lint.returncode == 0 and lint.stdout == lint.stderr == b"", lint.stderr
