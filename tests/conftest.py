"""Shared fixtures: real SNMP agents on free loopback ports, started once per session."""

from __future__ import annotations

import bz2
import hashlib

import pytest

from tests.agents import DEVICES, SNMPSIM_DATA, Snmpd, Snmpsim

# Recordings served by the shared snmpsim: community -> file. snmpsim-data (BSD-2-Clause) has full
# walks; tests/data/devices holds partial LibreNMS walks (GPLv3 test data, see its README).
RECORDINGS = {
    "cisco-c3560": SNMPSIM_DATA / "network/switch/cisco-c3560.snmprec.bz2",
    "cisco-c3750": SNMPSIM_DATA / "network/switch/cisco-c3750.snmprec.bz2",
    "hpe-procurve": SNMPSIM_DATA / "network/switch/hpe-procurve-516733-b21.snmprec.bz2",
    # device profiles (tests/test_profiles_recordings.py)
    "aruba-7010": SNMPSIM_DATA / "network/wifi/aruba-7010.snmprec.bz2",
    "aruba-7210": SNMPSIM_DATA / "network/wifi/aruba-7210.snmprec.bz2",
    "cisco-controller": SNMPSIM_DATA / "network/appliance/cisco-controller.snmprec.bz2",
    "fortinet-xcu": SNMPSIM_DATA / "network/firewall/fortinet-xcu.snmprec.bz2",
    "juniper-mx960": SNMPSIM_DATA / "network/router/juniper-mx960-12-3r6-6.snmprec.bz2",
    "huawei-s5720": SNMPSIM_DATA / "network/router/huawei-s5720.snmprec.bz2",
    "ubiquiti-m5": SNMPSIM_DATA / "network/wifi/ubiquiti-m5.snmprec.bz2",
    "ruckus-scg": SNMPSIM_DATA / "network/wifi/ruckus-smartcell-gateway.snmprec.bz2",
    "paloalto-pa-5000": SNMPSIM_DATA
    / "network/firewall/paloalto-pa-5000.snmprec.bz2",  # no profile
    **{path.stem: path for path in sorted(DEVICES.glob("*.snmprec"))},
}
# Full walks of 20-40 MB take snmpsim minutes to index; these are served trimmed to the subtrees
# the collector can ask for (system group, interface tables, every OID a shipped profile reads).
# The values in those subtrees are the recording's own, byte for byte.
TRIMMED = {"cisco-controller", "fortinet-xcu", "ruckus-scg"}


def _profile_prefixes() -> list[str]:
    from monitor.profiles import registry

    oids: set[tuple[int, ...]] = {
        (1, 3, 6, 1, 2, 1, 1),
        (1, 3, 6, 1, 2, 1, 2, 2, 1),
        (1, 3, 6, 1, 2, 1, 31, 1, 1, 1),
    }
    for profile in registry().profiles.values():
        oids.update(profile.columns)
        oids.update(profile.scalars)
        oids.update(s.oid for s in profile.model if s.oid)
        oids.update(r.probe.oid for r in profile.match if r.probe)
        for metric in profile.metrics.values():
            for _, sources in metric.labels:
                oids.update(s.oid for s in sources if s.oid)
    return sorted(".".join(map(str, oid)) for oid in oids)


def write_trimmed(source, target) -> None:
    """Copy the lines of a recording under the collector's subtrees (the OID followed by '.' or
    '|', so 1.3.6.1.2.1.1 does not take 1.3.6.1.2.1.10)."""
    prefixes = tuple((p + end).encode() for p in _profile_prefixes() for end in (".", "|"))
    raw = bz2.decompress(source.read_bytes()) if source.suffix == ".bz2" else source.read_bytes()
    target.write_bytes(b"".join(line for line in raw.splitlines(True) if line.startswith(prefixes)))


def _trimmed(cache_dir, source) -> bytes:
    """The trimmed recording, kept in pytest's cache between runs (keyed by what it keeps)."""
    key = hashlib.sha256(("\n".join(_profile_prefixes()) + str(source)).encode()).hexdigest()[:16]
    cached = cache_dir / f"{source.name}.{key}.snmprec"
    if not cached.exists():
        write_trimmed(source, cached)
    return cached.read_bytes()


@pytest.fixture(scope="session")
def snmpd(tmp_path_factory):
    agent = Snmpd(tmp_path_factory.mktemp("snmpd")).start()
    yield agent
    agent.stop()


@pytest.fixture(scope="session")
def snmpsim(tmp_path_factory, request):
    workdir = tmp_path_factory.mktemp("snmpsim")
    (workdir / "data").mkdir()
    cache = getattr(request.config, "cache", None)  # absent under `-p no:cacheprovider`
    cache_dir = cache.mkdir("snmpsim-trimmed") if cache else workdir / "trimmed"
    cache_dir.mkdir(exist_ok=True)
    for community in TRIMMED:  # Snmpsim.start keeps files already in place
        target = workdir / "data" / f"{community}.snmprec"
        target.write_bytes(_trimmed(cache_dir, RECORDINGS[community]))
    agent = Snmpsim(workdir, RECORDINGS).start()
    yield agent
    agent.stop()
