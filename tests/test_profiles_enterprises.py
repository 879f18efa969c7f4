"""Vendors by IANA enterprise number (monitor/profiles/enterprises.yaml), without SNMP.

The table must name the vendor of every recording in the tree: each recording's own sysObjectID is
read from the file, and what a person reading the recording would call its maker is written here.
The live side (a recording without a profile reported with its vendor in schoolnet_device_info) is
in tests/test_profiles_recordings.py.
"""

from __future__ import annotations

import asyncio
import bz2
import re
import shutil
from pathlib import Path

import pytest

from monitor.profiles import PROFILE_DIR, device_vendor, enterprise_vendor, registry
from monitor.profiles.enterprises import ENTERPRISES_FILE, enterprises, load_enterprises
from monitor.profiles.schema import ProfileError, load_profiles
from tests.agents import DEVICES, SNMPSIM_DATA
from tests.conftest import RECORDINGS

ENTERPRISES = (1, 3, 6, 1, 4, 1)
SYS_OBJECT_ID = "1.3.6.1.2.1.1.2.0"

# number -> vendor: the table as the issue and its verification put it, restated by hand
EXPECTED = {
    9: "cisco",
    11: "hpe",
    171: "dlink",
    207: "alliedtelesis",
    311: "microsoft",
    674: "dell",
    890: "zyxel",
    1916: "extreme",
    1991: "ruckus",
    2011: "huawei",
    2604: "sophos",
    2620: "checkpoint",
    2636: "juniper",
    4526: "netgear",
    6027: "dell",
    6574: "synology",
    8072: "net-snmp",
    8741: "sonicwall",
    10002: "ubiquiti",
    11863: "tplink",
    12325: "freebsd",
    12356: "fortinet",
    14179: "cisco",
    14823: "aruba",
    14988: "mikrotik",
    17713: "cambium",
    21067: "sophos",
    25053: "ruckus",
    25461: "paloalto",
    29671: "meraki",
    41112: "ubiquiti",
    47196: "aruba",
}

# recording -> its maker, as a person reading the recording (sysDescr, MANIFEST.tsv) would say
RECORDING_VENDOR = {
    "XMG1915-10EP": "zyxel",
    "aruba-7010": "aruba",
    "aruba-7210": "aruba",
    "arubaos": "aruba",
    "arubaos-cx": "aruba",
    "cisco-c3560": "cisco",
    "cisco-c3750": "cisco",
    "cisco-controller": "cisco",
    "ciscowlc": "cisco",
    "fortinet-xcu": "fortinet",
    "hpe-procurve": "hpe",
    "huawei-s5720": "huawei",
    "ios": "cisco",
    "juniper-mx960": "juniper",
    "netgear": "netgear",
    "opnsense": "freebsd",  # bsnmpd's sysObjectID; the opnsense profile names it by sysDescr
    "paloalto-pa-5000": "paloalto",
    "procurve": "hpe",
    "routeros": "mikrotik",
    "ruckus-scg": "ruckus",
    "ruckuswireless": "ruckus",
    "ruckuswireless-sz": "ruckus",
    "ubiquiti-m5": "ubiquiti",
    "unifi": "ubiquiti",  # Frogfoot's …10002.1, as UniFi firmware reports it
}
# where the enterprise number is the SNMP agent's, not the device maker's: the profile names it
AGENT_NUMBERS = {"opnsense"}


def sys_object_id(path: Path) -> tuple[int, ...]:
    """The recording's sysObjectID, read from the file (sorted by OID: it comes early)."""
    opener = bz2.open if path.suffix == ".bz2" else open
    with opener(path, "rt", encoding="latin-1") as lines:
        for line in lines:
            oid, _, rest = line.partition("|")
            if oid == SYS_OBJECT_ID:
                tag, _, value = rest.strip().partition("|")
                assert tag == "6", f"{path.name}: sysObjectID is not an OID ({tag})"
                return tuple(int(x) for x in value.strip(".").split("."))
    raise AssertionError(f"{path.name} has no sysObjectID")


def all_recordings() -> dict[str, Path]:
    """Every recording the tests serve (tests/conftest.py) and every file in tests/data/devices."""
    found = dict(RECORDINGS)
    found.update({path.stem: path for path in DEVICES.glob("*.snmprec")})
    return found


def test_the_table_is_what_was_verified():
    assert {n: e.vendor for n, e in enterprises().items()} == EXPECTED


@pytest.mark.parametrize("number", sorted(EXPECTED))
def test_every_entry_names_its_vendor_for_any_oid_under_its_number(number):
    vendor = EXPECTED[number]
    entry = enterprises()[number]
    assert entry.registrant.strip() and entry.source.strip()
    assert enterprise_vendor((*ENTERPRISES, number)) == vendor
    assert enterprise_vendor((*ENTERPRISES, number, 1, 2, 3, 4)) == vendor
    # the number is one arc: 9 does not take 90 or 99, and only under enterprises
    assert enterprise_vendor((*ENTERPRISES, number * 10 + 7)) == EXPECTED.get(number * 10 + 7)
    assert enterprise_vendor((1, 3, 6, 1, 4, 2, number, 1)) is None
    assert enterprise_vendor((1, 3, 6, 1, 2, 1, number)) is None


def cited_recordings(source: str) -> list[str]:
    """The recordings an entry's `source` names ("recording X", "recordings X, Y and Z")."""
    found = re.findall(r"recordings? ([\w.-]+(?:(?:, | and )[\w.-]+)*)", source)
    return [name for group in found for name in re.split(r", | and ", group)]


def recording_path(name: str) -> Path:
    if name in all_recordings():
        return all_recordings()[name]
    paths = sorted(SNMPSIM_DATA.rglob(f"{name}.snmprec*"))
    assert paths, f"no recording {name!r} in the tree or in snmpsim-data"
    return paths[0]


def holds_enterprise(path: Path, number: int) -> bool:
    """The recording has something under 1.3.6.1.4.1.<number> (e.g. a WLC's Airespace tables)."""
    prefix = ".".join(map(str, (*ENTERPRISES, number))) + "."
    opener = bz2.open if path.suffix == ".bz2" else open
    with opener(path, "rt", encoding="latin-1") as lines:
        return any(line.startswith(prefix) for line in lines)


@pytest.mark.parametrize("number", sorted(EXPECTED))
def test_the_recordings_an_entry_cites_are_that_vendors(number):
    """Where an entry was verified with a real recording, the recording's sysObjectID is under
    the number (or, for a subsystem such as Airespace in a Cisco WLC, the recording holds it)."""
    for name in cited_recordings(enterprises()[number].source):
        path = recording_path(name)
        oid = sys_object_id(path)
        assert oid[:7] == (*ENTERPRISES, number) or holds_enterprise(path, number), (name, oid)


def test_unknown_numbers_and_missing_oids_have_no_vendor():
    assert enterprise_vendor((*ENTERPRISES, 99999, 1)) is None
    assert enterprise_vendor(ENTERPRISES) is None
    assert enterprise_vendor(()) is None
    assert enterprise_vendor(None) is None


def test_every_recording_in_the_tree_is_named_by_the_table():
    recordings = all_recordings()
    assert set(recordings) == set(RECORDING_VENDOR), "say who made the new recording"
    for name, path in sorted(recordings.items()):
        oid = sys_object_id(path)
        assert enterprise_vendor(oid) == RECORDING_VENDOR[name], (name, oid)


def test_the_table_agrees_with_the_profiles_on_every_recording():
    """A device reads the same whether its model has a profile or not."""
    for name, path in sorted(all_recordings().items()):
        oid = sys_object_id(path)
        ranked = [p for p, _ in registry().candidates(oid, "") if p.name != "generic"]
        if ranked and name not in AGENT_NUMBERS:
            assert ranked[0].vendor == enterprise_vendor(oid), name


def test_device_vendor_prefers_the_profile_then_the_enterprise_number():
    generic, arubaos = registry().generic, registry().profiles["arubaos"]
    aos10_ap = (*ENTERPRISES, 14823, 1, 2, 104)  # an Aruba access point under arubaProducts
    matched = asyncio.run(registry().select(aos10_ap, ""))  # no profile's rule matches it
    assert matched is generic
    assert device_vendor(matched, aos10_ap) == "aruba"
    assert device_vendor(arubaos, (*ENTERPRISES, 9, 1)) == "aruba"  # a matched profile wins
    assert device_vendor(generic, (*ENTERPRISES, 99999, 1)) == "unknown"
    assert device_vendor(generic, None) == "unknown"
    assert device_vendor(generic, "1.3.6.1.4.1.9") == "unknown"  # not a decoded OID


def test_the_table_is_not_a_profile():
    assert "enterprises" not in registry().profiles
    assert ENTERPRISES_FILE.parent == PROFILE_DIR


def test_an_operator_file_named_like_the_table_is_reported_not_ignored(tmp_path):
    (tmp_path / "enterprises.yaml").write_text("enterprises:\n  9: {vendor: cisco}\n")
    with pytest.raises(ProfileError) as caught:
        load_profiles([PROFILE_DIR, tmp_path])
    assert f"{tmp_path / 'enterprises.yaml'}:1:1: missing required key 'vendor'" in str(
        caught.value
    )


@pytest.mark.parametrize(
    "text, problem",
    [
        ("enterprise:\n  9: x\n", "t.yaml:1:1: enterprise: unknown key (allowed: enterprises)"),
        (
            "enterprises:\n  nine: {vendor: cisco, registrant: C, source: S}\n",
            "t.yaml:2:3: enterprises.nine: expected an enterprise number (a positive integer), "
            "got 'nine'",
        ),
        (
            "enterprises:\n  9: {vendor: Cisco Systems, registrant: C, source: S}\n",
            "t.yaml:2:15: enterprises.9.vendor: expected a lowercase vendor name, "
            "got 'Cisco Systems'",
        ),
        (
            "enterprises:\n  9: {vendor: cisco, registrant: C}\n",
            "t.yaml:2:3: enterprises.9: missing required key 'source'",
        ),
        (
            "enterprises:\n  9: {vendor: cisco, registrant: C, source: S, model: x}\n",
            "t.yaml:2:48: enterprises.9.model: unknown key (allowed: registrant, source, vendor)",
        ),
        (
            "enterprises:\n  9: {vendor: cisco, registrant: C, source: S}\n"
            "  9: {vendor: hpe, registrant: H, source: S}\n",
            "t.yaml:3:3: duplicate key '9' (first at line 2)",
        ),
        ("enterprises: [9]\n", "t.yaml:1:1: enterprises: expected a mapping, got list"),
    ],
)
def test_table_problems_are_file_line_column(tmp_path, text, problem):
    path = tmp_path / "t.yaml"
    path.write_text(text)
    with pytest.raises(ProfileError) as caught:
        load_enterprises(path)
    assert problem.replace("t.yaml", str(path)) in str(caught.value).splitlines()


def test_every_problem_of_the_table_is_reported_at_once(tmp_path):
    path = tmp_path / "t.yaml"
    path.write_text(
        "enterprises:\n"
        "  9: {vendor: Cisco, registrant: C, source: S}\n"
        "  11: {vendor: hpe, registrant: H, source: S}\n"
        "  -5: {vendor: x, registrant: X, source: S}\n"
    )
    with pytest.raises(ProfileError) as caught:
        load_enterprises(path)
    lines = str(caught.value).splitlines()
    assert [line.split(": ")[1] for line in lines] == ["enterprises.9.vendor", "enterprises.-5"]


def test_the_shipped_table_is_commented_yaml(tmp_path):
    text = ENTERPRISES_FILE.read_text()
    assert text.startswith("#")
    copy = tmp_path / "enterprises.yaml"
    shutil.copy(ENTERPRISES_FILE, copy)
    assert load_enterprises(copy) == enterprises()


def test_targets_yaml_accepts_every_vendor_the_collector_may_report():
    """`vendor: paloalto` is what the collector reports for a PA-5050; a file saying so (written
    by hand or by discovery) passes, and polls the generic profile under that name."""
    from monitor.config.loader import load_config_text

    assert set(EXPECTED.values()) <= set(registry().vendors)
    text = (
        "defaults: {snmp: false}\nmembers:\n  - id: m\n    schools:\n      - id: s\n"
        "        targets:\n          - {id: t, role: firewall, address: 127.0.0.1, vendor: %s}\n"
    )
    config = load_config_text(text % "PaloAlto", "t.yaml", {})
    assert next(config.targets()).vendor == "paloalto"
    selected = asyncio.run(registry().select((*ENTERPRISES, 25461, 2, 3, 9), "", "paloalto"))
    assert selected is registry().generic


def test_the_configuration_reference_lists_every_accepted_vendor():
    reference = (Path(__file__).parent.parent / "docs" / "configuration.md").read_text()
    row = next(line for line in reference.splitlines() if line.startswith("| `vendor` |"))
    assert set(re.findall(r"`([a-z0-9][a-z0-9-]*)`", row)) - {"vendor"} == set(registry().vendors)
