"""The SNMP prober against real device recordings served by snmpsim.

Expectations are read from the .snmprec files by tests/snmprec.py, never typed in by hand.
"""

from __future__ import annotations

import asyncio

import pytest

from monitor.config.model import SnmpAuth, SnmpSettings, Target
from monitor.probes.snmp.poll import SnmpProber
from tests import snmprec
from tests.agents import snmpwalk
from tests.conftest import RECORDINGS

SYS_OBJECT_ID, SYS_UPTIME, SYS_NAME = (
    (1, 3, 6, 1, 2, 1, 1, 2, 0),
    (1, 3, 6, 1, 2, 1, 1, 3, 0),
    (1, 3, 6, 1, 2, 1, 1, 5, 0),
)
SYSTEM = {(1, 3, 6, 1, 2, 1, 1, 1, 0), SYS_OBJECT_ID, SYS_UPTIME, SYS_NAME}
IF = (1, 3, 6, 1, 2, 1, 2, 2, 1)
IFX = (1, 3, 6, 1, 2, 1, 31, 1, 1, 1)
COLUMNS = {
    "descr": IF + (2,),
    "speed": IF + (5,),
    "admin": IF + (7,),
    "oper": IF + (8,),
    "in32": IF + (10,),
    "in_discards": IF + (13,),
    "in_errors": IF + (14,),
    "out32": IF + (16,),
    "out_discards": IF + (19,),
    "out_errors": IF + (20,),
    "name": IFX + (1,),
    "in64": IFX + (6,),
    "out64": IFX + (10,),
    "high": IFX + (15,),
    "alias": IFX + (18,),
}


def _text(raw: object) -> str | None:
    """The test's own reading of a DisplayString: None where it is not plain text."""
    if not isinstance(raw, bytes):
        return None
    try:
        text = raw.rstrip(b"\x00").strip().decode("utf-8")
    except UnicodeDecodeError:
        return None
    return text if text.isprintable() else None


def expected_interfaces(path) -> dict[int, dict[str, object]]:
    records = snmprec.read(path)
    columns = {key: snmprec.column(records, oid) for key, oid in COLUMNS.items()}
    indexes = set().union(*(c.keys() for c in columns.values()))
    return {i: {key: col.get(i) for key, col in columns.items()} for i in indexes}


def walked_indexes(snmpsim, community: str, version: str = "2c") -> set[int]:
    """The interface indexes net-snmp's own walker (an independent reader) finds in the columns
    this file compares, from the same snmpsim agent."""
    auth = [f"-v{version}", "-c", community, "-t", "5", "-r", "1"]
    columns = set(COLUMNS.values())
    indexes = set()
    for table in (IF, IFX):
        for oid in snmpwalk(snmpsim.address, auth, ".".join(map(str, table))):
            parts = tuple(int(part) for part in oid.split("."))
            if parts[:-1] in columns:
                indexes.add(parts[-1])
    return indexes


def poll_recording(snmpsim, community: str, version: str = "2c"):
    target = Target(
        member="m",
        school="s",
        id=community,
        role="switch",
        host="127.0.0.1",
        port=snmpsim.port,
        snmp=SnmpSettings(
            auth=SnmpAuth(name="sim", version=version, community=community), timeout=5, retries=1
        ),
    )

    async def run():
        prober = SnmpProber()
        try:
            return await prober.poll(target, "127.0.0.1")
        finally:
            prober.close()

    return asyncio.run(run())


@pytest.mark.parametrize("community", sorted(RECORDINGS))
def test_recorded_interfaces_are_reported_as_recorded(snmpsim, community):
    path = RECORDINGS[community]
    records = snmprec.read(path)
    result = poll_recording(snmpsim, community)
    system = {oid: value for oid, (_tag, value) in records.items() if oid in SYSTEM}
    if not system:
        assert not result.ok  # not even a system group: nothing to report as a device
        return
    assert result.ok, result.error
    uptime = system.get(SYS_UPTIME)
    if not isinstance(uptime, snmprec.Variation):  # a moving sysUpTime: any value
        assert result.uptime_seconds == (None if uptime is None else uptime / 100)
    assert result.sys_object_id == system.get(SYS_OBJECT_ID, "")
    if _text(system.get(SYS_NAME)) is not None:
        assert result.sys_name == _text(system.get(SYS_NAME))

    expected = expected_interfaces(path)
    got = {i.index: i for i in result.interfaces}
    # the recording's reader and net-snmp's walker agree on the rows, and so does the prober;
    # a recording without interface rows is one snmpwalk finds none in either
    assert sorted(expected) == sorted(walked_indexes(snmpsim, community))
    assert sorted(got) == sorted(expected)
    checked_names = 0
    for index, row in expected.items():
        interface = got[index]
        name = _text(row["name"]) or _text(row["descr"])
        if name:
            assert interface.name.split("#")[0] == name
            checked_names += 1
        in_octets = row["in64"] if row["in64"] is not None else row["in32"]
        out_octets = row["out64"] if row["out64"] is not None else row["out32"]
        assert interface.in_octets == in_octets
        assert interface.out_octets == out_octets
        assert interface.in_errors == row["in_errors"]
        assert interface.out_discards == row["out_discards"]
        if row["oper"] is not None:
            assert interface.oper_up == (row["oper"] == 1)
        if row["admin"] is not None:
            assert interface.admin_up == (row["admin"] == 1)
        if row["speed"] is not None and 0 < row["speed"] < 2**32 - 1:
            assert interface.speed_bytes == row["speed"] / 8
        elif row["high"]:
            assert interface.speed_bytes == row["high"] * 1_000_000 / 8
        if _text(row["alias"]) is not None:
            assert interface.alias == _text(row["alias"])
    if expected:
        assert checked_names > 0
    names = [i.name for i in result.interfaces]
    assert len(names) == len(set(names))  # unique, so no two series collide


def test_full_walks_have_their_ports(snmpsim):
    """The snmpsim-data switches are complete walks: many interfaces with 64-bit counters."""
    for community in ("cisco-c3560", "cisco-c3750", "hpe-procurve"):
        result = poll_recording(snmpsim, community)
        assert result.ok, result.error
        assert len(result.interfaces) >= 19
        assert sum(1 for i in result.interfaces if i.in_octets) >= 2


def test_v1_walk_of_a_recording_falls_back_to_32_bit_counters(snmpsim):
    path = RECORDINGS["cisco-c3560"]
    expected = expected_interfaces(path)
    result = poll_recording(snmpsim, "cisco-c3560", version="1")
    assert result.ok, result.error
    # every row, as net-snmp's v1 walk sees them (not a loop over nothing)
    indexes = sorted(i.index for i in result.interfaces)
    assert len(indexes) >= 19
    assert indexes == sorted(walked_indexes(snmpsim, "cisco-c3560", version="1"))
    for interface in result.interfaces:
        assert interface.in_octets == expected[interface.index]["in32"]
    assert sum(1 for i in result.interfaces if i.in_octets) >= 2  # not all zero or absent


def test_known_devices_are_polled_in_fewer_requests_and_re_identified_when_they_change(snmpsim):
    """From the second poll on, the system group rides along in the walk's first GETBULK; a
    different device answering at the same address is identified again, not read with the old
    profile."""

    def target(community: str) -> Target:
        auth = SnmpAuth(name="sim", version="2c", community=community)
        return Target(
            member="m",
            school="s",
            id="same-key",
            role="switch",
            host="127.0.0.1",
            port=snmpsim.port,
            snmp=SnmpSettings(auth=auth, timeout=5, retries=1),
        )

    async def run():
        prober = SnmpProber()
        try:
            first = await prober.poll(target("cisco-c3560"), "127.0.0.1")
            second = await prober.poll(target("cisco-c3560"), "127.0.0.1")
            swapped = await prober.poll(target("hpe-procurve"), "127.0.0.1")
            return first, second, swapped
        finally:
            prober.close()

    first, second, swapped = asyncio.run(run())
    assert first.ok and second.ok and swapped.ok
    assert second.requests < first.requests
    assert second.sys_descr == first.sys_descr and second.uptime_seconds == first.uptime_seconds
    assert [i.name for i in second.interfaces] == [i.name for i in first.interfaces]
    assert sorted(s.family for s in second.samples) == sorted(s.family for s in first.samples)
    assert first.vendor == "cisco" and swapped.vendor == "hpe"
    assert swapped.profile != first.profile
    assert {i.name for i in swapped.interfaces} != {i.name for i in first.interfaces}
