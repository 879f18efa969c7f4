"""`monitor run` end to end: real agents, real ICMP, real HTTP, read with independent tools."""

from __future__ import annotations

import gzip
import subprocess
import textwrap

import pytest

from monitor.families import Source, by_source
from tests import snmprec
from tests.agents import free_port, snmpget, snmpwalk
from tests.collector_proc import CollectorProcess
from tests.conftest import RECORDINGS

# Every per-target family whose value the collector reads itself (device-health families depend
# on the device's profile), and the reload status.
PRODUCT_FAMILIES = [
    *(
        f.name
        for f in by_source(
            (Source.TARGET, Source.PING, Source.SNMP, Source.DEVICE, Source.INTERFACE)
        )
    ),
    "schoolnet_config_last_reload_successful",
    "schoolnet_config_last_reload_success_timestamp_seconds",
]


def write_config(path, snmpd, snmpsim, dead_port: int) -> None:
    user = snmpd.user("authPriv", "SHA256", "AES")
    path.write_text(
        textwrap.dedent(f"""\
        defaults:
          ping: {{interval: 1s, count: 2, spacing: 200ms, timeout: 500ms}}
          snmp: {{interval: 2s, timeout: 1s, retries: 0, auth: v2}}
        auths:
          v2: {{version: 2c, community: "${{TEST_COMMUNITY}}"}}
          v3:
            version: 3
            username: {user.name}
            security_level: authPriv
            auth_protocol: SHA256
            auth_password: ${{TEST_AUTH_PASSWORD}}
            priv_protocol: AES
            priv_password: ${{TEST_PRIV_PASSWORD}}
          sim-c3560: {{version: 2c, community: cisco-c3560}}
          sim-procurve: {{version: 1, community: hpe-procurve}}
        members:
          - id: coop
            name: Test Cooperative
            schools:
              - id: school-a
                name: School A
                targets:
                  - {{id: rtr-a, role: router, address: "127.0.0.1:{snmpd.port}",
                      snmp: {{auth: v3}}}}
                  - id: sw-a
                    role: switch
                    address: "127.0.0.1:{snmpsim.port}"
                    snmp: {{auth: sim-c3560, interval: 5s, timeout: 3s, retries: 1}}
                    labels: {{building: B}}
                  - {{id: ap-a, role: ap, address: 127.0.0.3, snmp: false, parent: sw-a}}
                  - id: internet
                    role: link
                    address: 127.0.0.4
                    bandwidth: 500Mbit
                    via: {{target: rtr-a, interface: lo}}
              - id: school-b
                name: School B
                targets:
                  - {{id: sw-dead, role: switch, address: "127.0.0.5:{dead_port}"}}
                  - {{id: sw-old, role: switch, address: "127.0.0.1:{snmpsim.port}",
                      snmp: {{auth: sim-procurve, interval: 5s, timeout: 3s, retries: 1}}}}
        """)
    )


@pytest.fixture(scope="module")
def collector(snmpd, snmpsim, tmp_path_factory):
    config = tmp_path_factory.mktemp("collector") / "targets.yaml"
    write_config(config, snmpd, snmpsim, free_port())
    user = snmpd.user("authPriv", "SHA256", "AES")
    proc = CollectorProcess(
        config,
        env={
            "TEST_COMMUNITY": snmpd.community,
            "TEST_AUTH_PASSWORD": user.auth_password,
            "TEST_PRIV_PASSWORD": user.priv_password,
        },
    ).start()
    try:
        proc.wait_for(
            lambda: (
                proc.value("schoolnet_snmp_up", target="rtr-a") == 1
                and proc.value("schoolnet_snmp_up", target="sw-a") == 1
                and proc.value("schoolnet_snmp_up", target="sw-old") == 1
                and proc.value("schoolnet_snmp_up", target="sw-dead") == 0
                and proc.value("schoolnet_ping_up", target="ap-a") == 1
            )
        )
        yield proc
    finally:
        code = proc.stop()
    assert code == 0


def test_promtool_finds_nothing_to_complain_about(collector):
    result = subprocess.run(
        ["promtool", "check", "metrics"],
        input=collector.metrics_text(),
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0
    assert result.stdout == "" and result.stderr == ""


def test_every_family_of_the_contract_is_exposed(collector):
    text = collector.metrics_text()
    names = {
        line.split("{")[0].split(" ")[0]
        for line in text.splitlines()
        if line and not line.startswith("#")
    }
    missing = [name for name in PRODUCT_FAMILIES if name not in names]
    assert not missing
    for name in PRODUCT_FAMILIES:
        if name.startswith("schoolnet_config"):
            continue
        for labels, _ in collector.samples(name):
            assert {"member", "school", "target", "role"} <= labels.keys(), (name, labels)
            assert labels["member"] == "coop"


def test_snmpd_values_agree_with_snmpwalk(collector, snmpd):
    cli = ["-v2c", "-c", snmpd.community]
    names = snmpwalk(snmpd.address, cli, "1.3.6.1.2.1.31.1.1.1.1")
    before = snmpwalk(snmpd.address, cli, "1.3.6.1.2.1.31.1.1.1.6")
    exposed = {
        labels["interface"]: value
        for labels, value in collector.samples("schoolnet_interface_receive_bytes_total")
        if labels["target"] == "rtr-a"
    }
    after = snmpwalk(snmpd.address, cli, "1.3.6.1.2.1.31.1.1.1.6")
    assert set(exposed) == set(names.values())
    for oid, name in names.items():
        index = oid.rsplit(".", 1)[1]
        column = f"1.3.6.1.2.1.31.1.1.1.6.{index}"
        # the collector's value is from its last poll, at most one interval before `before`
        assert exposed[name] <= int(after[column])
        assert exposed[name] >= int(before[column]) - 10_000_000
    sys_name = snmpget(snmpd.address, cli, "1.3.6.1.2.1.1.5.0")["1.3.6.1.2.1.1.5.0"]
    [(info, value)] = [
        s for s in collector.samples("schoolnet_device_info") if s[0]["target"] == "rtr-a"
    ]
    assert value == 1 and info["sys_name"] == sys_name
    uptime = collector.value("schoolnet_device_uptime_seconds", target="rtr-a")
    assert uptime is not None and uptime > 0


def test_recording_values_are_exposed_as_recorded(collector):
    records = snmprec.read(RECORDINGS["cisco-c3560"])
    names = snmprec.column(records, (1, 3, 6, 1, 2, 1, 31, 1, 1, 1, 1))
    hc_in = snmprec.column(records, (1, 3, 6, 1, 2, 1, 31, 1, 1, 1, 6))
    in32 = snmprec.column(records, (1, 3, 6, 1, 2, 1, 2, 2, 1, 10))
    exposed = {
        labels["interface"]: (labels, value)
        for labels, value in collector.samples("schoolnet_interface_receive_bytes_total")
        if labels["target"] == "sw-a"
    }
    assert len(exposed) == len(names)
    for index, raw_name in names.items():
        labels, value = exposed[raw_name.decode()]
        assert value == hc_in.get(index, in32.get(index))
        assert labels["building"] == "B" and labels["role"] == "switch"
    [(info, _)] = [
        s for s in collector.samples("schoolnet_device_info") if s[0]["target"] == "sw-a"
    ]
    assert info["vendor"] == "cisco"
    assert info["sys_descr"].startswith("Cisco")


def test_v1_device_reports_32_bit_counters(collector):
    records = snmprec.read(RECORDINGS["hpe-procurve"])
    in32 = snmprec.column(records, (1, 3, 6, 1, 2, 1, 2, 2, 1, 10))
    values = sorted(
        v
        for labels, v in collector.samples("schoolnet_interface_receive_bytes_total")
        if labels["target"] == "sw-old"
    )
    assert values == sorted(in32.values())


def test_link_carries_its_bandwidth_and_where_it_is_counted(collector):
    [(labels, value)] = collector.samples("schoolnet_link_bandwidth_bytes")
    assert value == 500e6 / 8
    assert labels["target"] == "internet" and labels["role"] == "link"
    assert labels["via_target"] == "rtr-a" and labels["interface"] == "lo"
    assert collector.value("schoolnet_ping_up", target="internet") == 1
    assert collector.value("schoolnet_snmp_up", target="internet") is None


def test_dead_snmp_agent_and_ping_only_target(collector):
    assert collector.value("schoolnet_snmp_up", target="sw-dead") == 0
    assert collector.value("schoolnet_ping_up", target="sw-dead") == 1
    assert collector.value("schoolnet_up", target="sw-dead") == 1  # it answers ping
    assert collector.value("schoolnet_device_info", target="sw-dead") is None
    assert collector.value("schoolnet_snmp_up", target="ap-a") is None
    assert collector.value("schoolnet_up", target="ap-a", parent="sw-a") == 1
    assert (
        "snmp poll failed" in collector.log() and "target=coop/school-b/sw-dead" in collector.log()
    )


def test_ping_counters_and_round_values(collector):
    requests = collector.value("schoolnet_ping_requests_total", target="ap-a")
    replies = collector.value("schoolnet_ping_replies_total", target="ap-a")
    assert requests >= 2 and requests == replies and requests % 2 == 0
    assert collector.value("schoolnet_ping_loss_ratio", target="ap-a") == 0
    rtt = collector.value("schoolnet_ping_rtt_seconds", target="ap-a")
    assert 0 < rtt < 0.5
    later = collector.wait_for(
        lambda: (
            (v := collector.value("schoolnet_ping_requests_total", target="ap-a")) > requests and v
        ),
        timeout=5,
    )
    assert later > requests


def test_secrets_appear_nowhere(collector, snmpd):
    user = snmpd.user("authPriv", "SHA256", "AES")
    _, page, _ = collector.get("/")
    surfaces = {
        "metrics": collector.metrics_text(),
        "status page": page.decode(),
        "log": collector.log(),
    }
    for secret in (snmpd.community, user.auth_password, user.priv_password):
        for where, text in surfaces.items():
            assert secret not in text, f"a secret leaked into the {where}"


def test_status_page_lists_schools_targets_and_errors(collector):
    status, body, headers = collector.get("/")
    page = body.decode()
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    for text in ("Test Cooperative", "School A", "School B", "rtr-a", "sw-dead", "internet"):
        assert text in page
    assert "snmp: no response" in page


def test_http_endpoints(collector):
    assert collector.get("/-/healthy")[0] == 200
    assert collector.get("/-/reload")[0] == 405
    assert collector.get("/nope")[0] == 404
    status, body, headers = collector.get("/metrics", {"Accept-Encoding": "gzip"})
    assert status == 200 and headers.get("Content-Encoding") == "gzip"
    assert b"schoolnet_up" in gzip.decompress(body)
