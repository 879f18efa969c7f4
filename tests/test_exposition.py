"""The fast exposition says exactly what prometheus-client's generic path says, and never serves
a stale cached value."""

from __future__ import annotations

import dataclasses
import subprocess

from prometheus_client.parser import text_string_to_metric_families

from bench.exposition import reference_render, synthetic_store
from monitor.exposition import Exposition
from monitor.results import PingRound, SnmpPoll


def samples(text: bytes) -> set[tuple]:
    out = set()
    for family in text_string_to_metric_families(text.decode()):
        if not family.name.startswith("schoolnet_") or family.name.startswith(
            ("schoolnet_collector", "schoolnet_config", "schoolnet_school_")
        ):
            continue
        for sample in family.samples:
            out.add((sample.name, tuple(sorted(sample.labels.items())), sample.value))
    return out


def test_same_samples_as_prometheus_client():
    store, results = synthetic_store(60)
    # a failed poll, a round without replies, label values that need escaping
    key, _ping, poll = results[1]
    store.record_snmp(key, SnmpPoll(poll.started, False, 2.0, error="no response"))
    store.record_ping(results[2][0], PingRound(0.0, 5, (), error=None))
    key, _ping, poll = results[12]
    odd = dataclasses.replace(poll.interfaces[0], alias='room "7" \\ east\nwing')
    store.record_snmp(key, dataclasses.replace(poll, interfaces=(odd, *poll.interfaces[1:])))
    ours = samples(Exposition(store).render())
    reference = samples(reference_render(store))
    assert ours == reference
    assert len(ours) > 3000


def test_promtool_accepts_it():
    store, _ = synthetic_store(30)
    result = subprocess.run(
        ["promtool", "check", "metrics"], input=Exposition(store).render(), capture_output=True
    )
    assert result.returncode == 0 and result.stdout == b"" and result.stderr == b""


def test_new_results_replace_cached_lines():
    store, results = synthetic_store(20)
    exposition = Exposition(store)
    first = exposition.render()
    key, ping, poll = results[1]  # the switch of the first school
    store.record_ping(key, ping)  # counters move: the cached ping lines must not be served
    changed = dataclasses.replace(
        poll,
        interfaces=(dataclasses.replace(poll.interfaces[0], in_octets=123456789012345),)
        + poll.interfaces[1:],
    )
    store.record_snmp(key, changed)
    second = exposition.render()
    assert second != first
    assert samples(second) == samples(reference_render(store))
    assert b"123456789012345" in second
