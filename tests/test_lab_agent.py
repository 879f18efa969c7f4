"""The lab's SNMP agents against independent clients: net-snmp's tools and the collector (pysnmp).

Agents are bound to 127.0.0.1 with ports from the targets file, so no privileges are needed.
"""

from __future__ import annotations

import asyncio
import subprocess
import textwrap

import pytest

from monitor.config.loader import load_config
from monitor.probes.snmp.poll import SnmpProber
from tests.agents import NO_MIBS, V3_MATRIX, V3User, free_port, snmpget, snmpwalk
from tests.lab_proc import LabProcess

PASSWORDS = {"auth": "lab-auth-secret-1", "priv": "lab-priv-secret-2"}


def _auth_block(name: str, level: str, auth: str, priv: str) -> str:
    lines = [
        f"  {name}:",
        "    version: 3",
        f"    username: {name}",
        f"    security_level: {level}",
    ]
    if auth:
        lines += [f"    auth_protocol: {auth}", f"    auth_password: {PASSWORDS['auth']}"]
    if priv:
        lines += [f"    priv_protocol: {priv}", f"    priv_password: {PASSWORDS['priv']}"]
    return "\n".join(lines)


def _v3_name(level: str, auth: str, priv: str) -> str:
    return "-".join(x for x in (level, auth, priv) if x).lower()


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    work = tmp_path_factory.mktemp("labagent")
    ports = {"v2": free_port(), "v1": free_port()}
    auths = [
        "  v2: {version: 2c, community: lab-community-x}",
        "  v1: {version: 1, community: lab-community-y}",
    ]
    targets = [
        f"          - {{id: sw-v2, role: switch, vendor: cisco, "
        f"address: '127.0.0.1:{ports['v2']}', snmp: {{auth: v2}}}}",
        f"          - {{id: sw-v1, role: switch, vendor: hpe, address: '127.0.0.1:{ports['v1']}', "
        "snmp: {auth: v1}}",
    ]
    for level, auth, priv in V3_MATRIX:
        name = _v3_name(level, auth, priv)
        ports[name] = free_port()
        auths.append(_auth_block(name, level, auth, priv))
        targets.append(
            f"          - {{id: {name}, role: router, address: '127.0.0.1:{ports[name]}', "
            f"snmp: {{auth: {name}}}}}"
        )
    config = work / "targets.yaml"
    config.write_text(
        "auths:\n"
        + "\n".join(auths)
        + "\n"
        + textwrap.dedent("""\
        defaults:
          ping: false
          snmp: {interval: 5s, timeout: 1s, retries: 1}
        members:
          - id: m
            schools:
              - id: s
                name: Test School
                targets:
        """)
        + "\n".join(targets)
        + "\n"
    )
    proc = LabProcess(config, work, extra_args=["--no-collector"]).start()
    try:
        proc.wait_ready()
        proc.ports = ports
        yield proc
    finally:
        assert proc.stop() == 0


@pytest.mark.parametrize(
    "level,auth,priv", V3_MATRIX, ids=["-".join(x for x in row if x) for row in V3_MATRIX]
)
def test_net_snmp_speaks_every_v3_variant_with_the_lab(lab, level, auth, priv):
    name = _v3_name(level, auth, priv)
    user = V3User(
        name,
        level,
        auth,
        priv,
        PASSWORDS["auth"] if auth else "",
        PASSWORDS["priv"] if priv else "",
    )
    address = f"127.0.0.1:{lab.ports[name]}"
    values = snmpget(address, user.cli_args(), "1.3.6.1.2.1.1.5.0")
    assert values["1.3.6.1.2.1.1.5.0"] == name
    names = snmpwalk(address, user.cli_args(), "1.3.6.1.2.1.31.1.1.1.1")
    assert list(names.values()) == ["eth0", "eth1", "eth2", "eth3"]  # the generic router


def test_wrong_v3_password_is_refused(lab):
    name = _v3_name("authPriv", "SHA256", "AES")
    user = V3User(name, "authPriv", "SHA256", "AES", "wrong-password-1", PASSWORDS["priv"])
    result = subprocess.run(
        [
            "snmpget",
            *NO_MIBS,
            *user.cli_args(),
            "-t",
            "1",
            "-r",
            "0",
            f"127.0.0.1:{lab.ports[name]}",
            "1.3.6.1.2.1.1.5.0",
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode != 0
    assert "Authentication failure" in result.stderr or "authenticat" in result.stderr.lower()


def test_v2c_and_v1_walks(lab):
    v2 = f"127.0.0.1:{lab.ports['v2']}"
    walk = snmpwalk(v2, ["-v2c", "-c", "lab-community-x"], "1.3.6.1.2.1.31.1.1.1.1")
    names = list(walk.values())
    assert names[:3] == ["Gi1/0/1", "Gi1/0/2", "Gi1/0/3"] and "Te1/1/4" in names
    # v1 never sees Counter64: the HC columns are skipped, the 32-bit ones are there
    v1 = f"127.0.0.1:{lab.ports['v1']}"
    hc = snmpwalk(v1, ["-v1", "-c", "lab-community-y"], "1.3.6.1.2.1.31.1.1.1.6")
    assert hc == {}
    octets = snmpwalk(v1, ["-v1", "-c", "lab-community-y"], "1.3.6.1.2.1.2.2.1.10")
    assert len(octets) >= 52
    # a wrong community gets no answer, as from a real agent
    result = subprocess.run(
        ["snmpget", *NO_MIBS, "-v2c", "-c", "nope", "-t", "1", "-r", "0", v2, "1.3.6.1.2.1.1.5.0"],
        capture_output=True,
        text=True,
    )
    assert "Timeout" in result.stderr


def test_getbulk_is_capped_like_net_snmp(lab):
    v2 = f"127.0.0.1:{lab.ports['v2']}"
    result = subprocess.run(
        [
            "snmpbulkget",
            *NO_MIBS,
            "-v2c",
            "-c",
            "lab-community-x",
            "-Cr500",
            "-On",
            v2,
            "1.3.6.1.2.1.2.2.1",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert len(result.stdout.splitlines()) == 100


def test_collector_reads_the_lab_like_net_snmp_does(lab):
    config = load_config(lab.config)
    targets = [t for t in config.targets() if t.snmp is not None]

    async def poll_all():
        prober = SnmpProber()
        try:
            return await asyncio.gather(*(prober.poll(t, t.host) for t in targets))
        finally:
            prober.close()

    results = asyncio.run(poll_all())
    assert all(r.ok for r in results), [
        (t.id, r.error) for t, r in zip(targets, results, strict=True)
    ]
    by_id = {t.id: r for t, r in zip(targets, results, strict=True)}
    v2 = by_id["sw-v2"]
    assert v2.sys_name == "sw-v2" and v2.vendor == "cisco"
    walk = snmpwalk(
        f"127.0.0.1:{lab.ports['v2']}", ["-v2c", "-c", "lab-community-x"], "1.3.6.1.2.1.31.1.1.1.1"
    )
    assert [i.name for i in v2.interfaces] == list(walk.values())
    assert len(v2.interfaces) == 48 + 4 + 3  # 48 access ports, 4 uplinks, 3 VLANs
    assert by_id["sw-v1"].vendor == "hpe"


def test_counters_move_between_polls(lab):
    address = f"127.0.0.1:{lab.ports['v2']}"
    cli = ["-v2c", "-c", "lab-community-x"]
    first = snmpwalk(address, cli, "1.3.6.1.2.1.31.1.1.1.6")
    uptime1 = int(snmpget(address, cli, "1.3.6.1.2.1.1.3.0")["1.3.6.1.2.1.1.3.0"])
    asyncio.run(asyncio.sleep(1.5))
    second = snmpwalk(address, cli, "1.3.6.1.2.1.31.1.1.1.6")
    uptime2 = int(snmpget(address, cli, "1.3.6.1.2.1.1.3.0")["1.3.6.1.2.1.1.3.0"])
    grew = [oid for oid in first if int(second[oid]) > int(first[oid])]
    assert all(int(second[oid]) >= int(first[oid]) for oid in first)
    assert len(grew) >= 10  # the up ports carry traffic
    assert 100 <= uptime2 - uptime1 <= 400  # sysUpTime advances in hundredths


def test_each_device_has_its_own_identity(lab):
    names = set()
    macs = set()
    for key in ("v2", "v1"):
        address = f"127.0.0.1:{lab.ports[key]}"
        community = "lab-community-x" if key == "v2" else "lab-community-y"
        cli = ["-v2c" if key == "v2" else "-v1", "-c", community]
        names.add(snmpget(address, cli, "1.3.6.1.2.1.1.5.0")["1.3.6.1.2.1.1.5.0"])
        macs.add(snmpget(address, ["-Ox", *cli], "1.3.6.1.2.1.2.2.1.6.1")["1.3.6.1.2.1.2.2.1.6.1"])
    assert names == {"sw-v2", "sw-v1"} and len(macs) == 2


def test_recorded_tables_are_served_whole_or_thinned_by_rows():
    """A controller's recording: school-sized tables (the AP table) are served as recorded; a
    table of tens of thousands of rows (stations) keeps the same first rows in every column
    instead of losing whole columns."""
    import bz2

    from monitor.lab import devices

    source = devices.recordings_root() / "network/wifi/aruba-7210.snmprec.bz2"
    served = devices._parse_recording(source)
    recorded: set[tuple[int, ...]] = set()
    with bz2.open(source, "rt", encoding="latin-1") as walk:
        for line in walk:
            oid = line.partition("|")[0]
            if oid.startswith("1.3.6.1.4.1.14823.2.2.1.5."):
                recorded.add(tuple(int(x) for x in oid.split(".")))
    ap_table = (1, 3, 6, 1, 4, 1, 14823, 2, 2, 1, 5, 2, 1, 4, 1)
    stations = (1, 3, 6, 1, 4, 1, 14823, 2, 2, 1, 5, 3, 1, 7, 1)
    ap_rows = {o for o in recorded if o[: len(ap_table)] == ap_table}
    assert ap_rows and ap_rows <= set(served)
    assert sum(o[: len(stations)] == stations for o in recorded) > devices._BIG_TABLE
    columns: dict[int, set[tuple[int, ...]]] = {}
    for oid in served:
        if oid[: len(stations)] == stations:
            columns.setdefault(oid[len(stations)], set()).add(oid[len(stations) + 1 :])
    assert set(columns) == {o[len(stations)] for o in recorded if o[: len(stations)] == stations}
    rows = columns[min(columns)]  # the rows the first column lists first
    assert len(rows) == devices._KEEP_ROWS
    assert all(r <= rows for r in columns.values())
    assert sum(r == rows for r in columns.values()) * 2 > len(columns)
