"""`monitor lab` with the shipped targets.yaml (probe intervals shortened), end to end.

The lab runs as root here (CI and the development machines are root): SNMP agents on port 161 of
127.x addresses, and its own nftables table for taking targets down.
"""

from __future__ import annotations

import re
import subprocess
import time

import pytest

from monitor.config.loader import load_config
from monitor.families import FAMILIES
from monitor.lab.firewall import lab_tables
from monitor.lab.runner import demo_environment
from tests.lab_proc import REPO, LabProcess, fast_copy

DOWN = "opod-regenboog/internet"


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    work = tmp_path_factory.mktemp("lab")
    config = work / "targets.yaml"
    fast_copy(REPO / "targets.yaml", config)
    proc = LabProcess(config, work).start()
    try:
        proc.wait_ready()
        env, _ = demo_environment(config, {})
        proc.cooperative = load_config(config, env)
        yield proc
    finally:
        proc.stop()


def _by_target(lab, name: str) -> dict[tuple[str, str], float]:
    return {(labels["school"], labels["target"]): value for labels, value in lab.samples(name)}


def test_every_target_is_up(lab):
    targets = list(lab.cooperative.targets())
    polled = {(t.school, t.id) for t in targets if t.snmp is not None}

    def all_up():
        up = _by_target(lab, "schoolnet_up")
        snmp = _by_target(lab, "schoolnet_snmp_up")
        return (
            len(up) == len(targets)
            and all(v == 1 for v in up.values())
            and set(snmp) == polled
            and all(v == 1 for v in snmp.values())
        )

    lab.wait_for(all_up, timeout=90)
    info = {
        (labels["school"], labels["target"]): labels
        for labels, _ in lab.samples("schoolnet_device_info")
    }
    assert set(info) == polled
    for target in targets:
        if target.snmp is not None:
            assert info[(target.school, target.id)]["sys_name"] == target.id


def test_every_family_the_lab_exposes_is_in_the_contract_and_documented(lab):
    """What a whole cooperative's scrape holds is exactly what monitor/families.py and
    docs/metrics.md say, family by family (name, type, help)."""

    def scraped() -> dict[str, tuple[str, str]]:
        text = lab.metrics_text()
        types = dict(re.findall(r"^# TYPE (\S+) (\S+)$", text, re.M))
        helps = dict(re.findall(r"^# HELP (\S+) (.*)$", text, re.M))
        return {name: (kind, helps[name]) for name, kind in types.items()}

    # wait for a controller's poll: then every source has filled its families
    lab.wait_for(lambda: "schoolnet_wireless_ap_up" in scraped(), timeout=60)
    families = scraped()
    docs = (REPO / "docs" / "metrics.md").read_text()
    documented = set(re.findall(r"`(schoolnet_[a-z0-9_]+)`", docs))
    ours = {name: spec for name, spec in families.items() if name.startswith("schoolnet_")}
    assert not set(ours) - set(FAMILIES), "exposed but not in monitor/families.py"
    assert not set(ours) - documented, "exposed but not in docs/metrics.md"
    for name, (kind, help_text) in ours.items():
        assert (kind, help_text) == (FAMILIES[name].type, FAMILIES[name].help), name
    others = set(families) - set(ours)
    assert others and all(n.startswith(("process_", "python_")) for n in others), others
    for source in {f.source for f in FAMILIES.values()}:  # not vacuous: every kind is here
        assert any(FAMILIES[name].source is source for name in ours), source


def test_every_link_is_counted_on_its_via_interface(lab):
    lab.wait_for(
        lambda: len(lab.samples("schoolnet_interface_receive_bytes_total")) > 1000, timeout=60
    )
    interfaces = {
        (labels["school"], labels["target"], labels["interface"])
        for labels, _ in lab.samples("schoolnet_interface_receive_bytes_total")
    }
    for labels, _ in lab.samples("schoolnet_link_bandwidth_bytes"):
        assert (labels["school"], labels["via_target"], labels["interface"]) in interfaces


def test_traffic_counters_increase(lab):
    def wan_bytes():
        return {
            (labels["school"], labels["via_target"]): None
            for labels, _ in lab.samples("schoolnet_link_bandwidth_bytes")
        }

    links = wan_bytes()
    lab.wait_for(
        lambda: len(lab.samples("schoolnet_interface_receive_bytes_total")) > 1000, timeout=60
    )

    def counters():
        return {
            (labels["school"], labels["target"], labels["interface"]): value
            for labels, value in lab.samples("schoolnet_interface_receive_bytes_total")
            if (labels["school"], labels["target"]) in links
        }

    first = counters()
    time.sleep(21)  # two SNMP intervals of the shortened file
    second = counters()
    grew = [k for k in first if second.get(k, 0) > first[k]]
    assert len(grew) >= len(links)  # at least every school's WAN port moved
    assert all(second[k] >= first[k] for k in first if k in second)


def test_down_takes_one_school_off_and_up_brings_it_back(lab):
    lab.wait_for(
        lambda: all(v == 1 for v in _by_target(lab, "schoolnet_ping_up").values()), timeout=60
    )
    result = lab.command("down", DOWN)
    assert result.returncode == 0, result.stderr
    assert "took down" in result.stdout
    school = DOWN.split("/")[0]
    started = time.monotonic()
    lab.wait_for(
        lambda: _by_target(lab, "schoolnet_ping_up")[(school, "internet")] == 0, timeout=10
    )
    # one ping interval (2 s) plus a round (0.6 s + 0.5 s timeout), plus the scrape
    assert time.monotonic() - started < 6
    ping = _by_target(lab, "schoolnet_ping_up")
    others = {k: v for k, v in ping.items() if k[0] != school}
    assert others and all(v == 1 for v in others.values())
    # the school's devices are behind its link: unreachable too
    lab.wait_for(
        lambda: all(
            v == 0 for k, v in _by_target(lab, "schoolnet_ping_up").items() if k[0] == school
        ),
        timeout=10,
    )
    status = lab.command("status")
    assert f"down: {school}/internet" in status.stdout
    result = lab.command("up", DOWN)
    assert result.returncode == 0 and "brought up" in result.stdout
    lab.wait_for(
        lambda: _by_target(lab, "schoolnet_ping_up")[(school, "internet")] == 1, timeout=10
    )


def test_degrade_loses_about_the_configured_share(lab):
    school = "opod-kompas"

    def totals():
        req = sum(
            v
            for labels, v in lab.samples("schoolnet_ping_requests_total")
            if labels["school"] == school
        )
        rep = sum(
            v
            for labels, v in lab.samples("schoolnet_ping_replies_total")
            if labels["school"] == school
        )
        return req, rep

    result = lab.command("degrade", school, "--loss", "30%")
    assert result.returncode == 0, result.stderr
    time.sleep(2.5)  # let rounds that started before the change finish
    req0, rep0 = totals()
    time.sleep(24)
    req1, rep1 = totals()
    lab.command("degrade", school, "--loss", "0%")
    sent = req1 - req0
    loss = 1 - (rep1 - rep0) / sent
    assert sent >= 200  # 0.3 +- 0.1 is more than 3 sigma at this many echoes
    assert 0.2 <= loss <= 0.4, (loss, sent)


def test_load_fills_the_link(lab):
    school = "opod-regenboog"
    link = next(t for t in lab.cooperative.targets() if t.school == school and t.role == "link")
    result = lab.command("load", school, "--utilisation", "90%")
    assert result.returncode == 0, result.stderr

    def wan():
        for labels, value in lab.samples("schoolnet_interface_receive_bytes_total"):
            if (labels["school"], labels["target"], labels["interface"]) == (
                school,
                link.via.target,
                link.via.interface,
            ):
                return value
        return None

    time.sleep(11)  # a poll that already sees the new load

    def next_change(value):
        return lab.wait_for(lambda: (v := wan()) != value and v, timeout=25, interval=0.1)

    first = next_change(wan())
    second = next_change(first)
    lab.command("load", school, "--utilisation", "day")
    # polls are exactly one SNMP interval (10 s) apart on the collector's schedule
    rate = (second - first) / 10.0
    assert rate == pytest.approx(0.9 * link.bandwidth, rel=0.1)


def test_unknown_names_and_no_lab(lab, tmp_path):
    result = lab.command("down", "no-such-school/internet")
    assert result.returncode == 1 and "no school" in result.stderr
    missing = subprocess.run(
        ["python", "-m", "monitor", "lab", "down", DOWN, "--control", str(tmp_path / "x.sock")],
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    assert missing.returncode == 1 and "no lab is running" in missing.stderr


def test_stopping_leaves_nothing_behind(tmp_path):
    """Its own small lab, stopped mid-way with a target down: no process, rule or socket stays."""
    config = tmp_path / "targets.yaml"
    config.write_text((REPO / "tests" / "data" / "small-lab.yaml").read_text())
    proc = LabProcess(config, tmp_path).start()
    proc.wait_ready()
    assert proc.command("down", "s1/internet").returncode == 0
    tables = lab_tables()
    assert any(t.endswith(str(proc.process.pid)) for t in tables)
    collector_pids = subprocess.run(
        ["pgrep", "-P", str(proc.process.pid)], capture_output=True, text=True
    ).stdout.split()
    assert collector_pids  # the collector runs as the lab's child
    assert proc.stop() == 0
    assert not any(t.endswith(str(proc.process.pid)) for t in lab_tables())
    for pid in collector_pids:
        assert subprocess.run(["kill", "-0", pid], capture_output=True).returncode != 0
    assert not proc.control.exists()
    sockets = subprocess.run(["ss", "-uln"], capture_output=True, text=True).stdout
    assert "127.9.1.1:161" not in sockets
