"""`monitor run --shard K/N`: N collectors split the cooperative by whole schools."""

from __future__ import annotations

import dataclasses

import pytest

from monitor.config.loader import load_config
from monitor.config.model import School
from monitor.config.shard import parse_shard, select_shard
from tests.collector_proc import CollectorProcess
from tests.lab_proc import REPO

ENV = {
    "KIEN_SNMP_AUTH_PASSWORD": "shard-auth-1",
    "KIEN_SNMP_PRIV_PASSWORD": "shard-priv-1",
    "KIEN_SNMP_COMMUNITY": "shard-community",
}


def test_parse():
    assert parse_shard("0/1") == (0, 1) and parse_shard("2/3") == (2, 3)
    for bad in ("3/3", "-1/2", "1", "a/b", "1/0"):
        with pytest.raises(ValueError, match="K/N"):
            parse_shard(bad)


@pytest.mark.parametrize("count", [2, 3, 5])
def test_shards_partition_the_cooperative_by_school(count):
    config = load_config(REPO / "targets.yaml", ENV)
    shards = [select_shard(config, k, count) for k in range(count)]
    keys = [{t.key for t in shard.targets()} for shard in shards]
    assert set().union(*keys) == {t.key for t in config.targets()}
    assert sum(len(k) for k in keys) == len(list(config.targets()))  # disjoint
    for shard in shards:
        for school in shard.schools():  # whole schools only
            original = next(s for s in config.schools() if s.id == school.id)
            assert school.targets == original.targets
    assert all(keys)  # 27 schools: no shard is empty
    # stable: a new school somewhere does not move anyone else
    grown = dataclasses.replace(
        config,
        members=(
            dataclasses.replace(
                config.members[0],
                schools=config.members[0].schools
                + (School(id="new-school", name="New", member=config.members[0].id),),
            ),
            *config.members[1:],
        ),
    )
    for k in range(count):
        before = {s.id for s in shards[k].schools()}
        after = {s.id for s in select_shard(grown, k, count).schools()} - {"new-school"}
        assert before == after


def test_two_collectors_split_the_targets(tmp_path):
    config = tmp_path / "targets.yaml"
    schools = "".join(
        f"      - id: school-{i}\n        targets:\n"
        f"          - {{id: rtr, role: router, address: 127.0.{60 + i}.1, snmp: false}}\n"
        f"          - {{id: internet, role: link, address: 127.0.{60 + i}.254}}\n"
        for i in range(8)
    )
    config.write_text(
        "defaults:\n  ping: {interval: 1s, count: 1, timeout: 500ms}\n"
        "members:\n  - id: m\n    schools:\n" + schools
    )
    seen = []
    for k in range(2):
        proc = CollectorProcess(config, extra_args=["--shard", f"{k}/2"]).start()
        try:
            proc.wait_for(lambda p=proc: p.samples("schoolnet_ping_up"), timeout=20)
            seen.append(
                {
                    (labels["school"], labels["target"])
                    for labels, _ in proc.samples("schoolnet_target_info")
                }
            )
        finally:
            proc.stop()
    assert seen[0] and seen[1] and not seen[0] & seen[1]
    assert seen[0] | seen[1] == {(f"school-{i}", t) for i in range(8) for t in ("rtr", "internet")}
