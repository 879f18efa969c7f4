"""Shared fixtures: real SNMP agents on free loopback ports, started once per session."""

from __future__ import annotations

import pytest

from tests.agents import DEVICES, SNMPSIM_DATA, Snmpd, Snmpsim

# Recordings served by the shared snmpsim: community -> file. snmpsim-data (BSD-2-Clause) has full
# walks; tests/data/devices holds partial LibreNMS walks (GPLv3 test data, see its README).
RECORDINGS = {
    "cisco-c3560": SNMPSIM_DATA / "network/switch/cisco-c3560.snmprec.bz2",
    "cisco-c3750": SNMPSIM_DATA / "network/switch/cisco-c3750.snmprec.bz2",
    "hpe-procurve": SNMPSIM_DATA / "network/switch/hpe-procurve-516733-b21.snmprec.bz2",
    **{path.stem: path for path in sorted(DEVICES.glob("*.snmprec"))},
}


@pytest.fixture(scope="session")
def snmpd(tmp_path_factory):
    agent = Snmpd(tmp_path_factory.mktemp("snmpd")).start()
    yield agent
    agent.stop()


@pytest.fixture(scope="session")
def snmpsim(tmp_path_factory):
    agent = Snmpsim(tmp_path_factory.mktemp("snmpsim"), RECORDINGS).start()
    yield agent
    agent.stop()
