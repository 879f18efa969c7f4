"""Device profiles as data: loading, validation, matching and evaluation, without SNMP."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest
import yaml

from monitor.config.loader import ConfigError, load_config_text
from monitor.families import FAMILIES
from monitor.profiles import PROFILE_DIR, Data, Registry, evaluate, registry
from monitor.profiles.enterprises import enterprises
from monitor.profiles.schema import TABLES, ProfileError, load_profiles

DOCS = Path(__file__).parent.parent / "docs"


def oid(text: str) -> tuple[int, ...]:
    return tuple(int(x) for x in text.split("."))


def test_every_shipped_profile_loads_and_names_known_families():
    profiles = registry().profiles
    files = sorted(p.stem for p in PROFILE_DIR.glob("*.yaml") if p.stem not in TABLES)
    assert sorted(profiles) == files
    assert len(files) >= 18
    for profile in profiles.values():
        assert profile.vendor == profile.vendor.lower()
        for metric in profile.metrics.values():
            assert metric.family in FAMILIES
    assert registry().generic.vendor == "unknown"


def test_known_vendors_come_from_the_profiles():
    vendors = registry().vendors
    for vendor in ("aruba", "cisco", "hpe", "juniper", "netgear", "zyxel", "ubiquiti", "ruckus"):
        assert vendor in vendors
    for vendor in ("mikrotik", "fortinet", "opnsense", "pfsense", "huawei"):
        assert vendor in vendors
    text = (
        "defaults: {snmp: false}\nmembers:\n  - id: m\n    schools:\n      - id: s\n"
        "        targets:\n          - {id: t, role: switch, address: 127.0.0.1, vendor: %s}\n"
    )
    for vendor in vendors:
        load_config_text(text % vendor.upper(), "t.yaml", {})  # (matched case-insensitively)
    with pytest.raises(ConfigError, match="unknown vendor 'cisco'"):
        load_config_text(text % "cisco", "t.yaml", {}, vendors=("acme",))


def test_every_family_is_documented():
    text = (DOCS / "metrics.md").read_text()
    for name in FAMILIES:
        assert f"`{name}`" in text, name
    assert "profiles.md" in text


def _with(tmp_path: Path, name: str, text: str) -> Path:
    shutil.copy(PROFILE_DIR / "generic.yaml", tmp_path / "generic.yaml")
    (tmp_path / f"{name}.yaml").write_text(text)
    return tmp_path


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("vendor: x\nmatchh: []\n", "broken.yaml:2:1: matchh: unknown key"),
        (
            "match: [{sys_object_id: 1.3.6.1.4.1.9}]\n",
            "broken.yaml:1:1: missing required key 'vendor'",
        ),
        (
            "vendor: x\nmetrics:\n  cpu:\n    family: schoolnet_device_cpu\n    oid: 1.3.6.1.2.1\n",
            "broken.yaml:4:13: metrics.cpu.family: unknown family 'schoolnet_device_cpu'",
        ),
        (
            "vendor: x\nmetrics:\n  cpu:\n    family: schoolnet_device_cpu_usage_ratio\n"
            "    oid: 1.3.6.x\n",
            "broken.yaml:5:10: metrics.cpu.oid: expected a numeric OID",
        ),
        (
            "vendor: x\nmetrics:\n  cpu:\n    family: schoolnet_device_cpu_usage_ratio\n"
            "    oid: 1.3.6.1.2.1\n    value: value / total\n",
            "broken.yaml:6:12: metrics.cpu.value: unknown name 'total'",
        ),
        (
            "vendor: x\nmetrics:\n  cpu:\n    family: schoolnet_device_cpu_usage_ratio\n"
            "    oid: 1.3.6.1.2.1\n    value: __import__('os')\n",
            "broken.yaml:6:12: metrics.cpu.value: only numbers, names",
        ),
        (
            "vendor: x\nmetrics:\n  cpu:\n    family: schoolnet_device_cpu_usage_ratio\n"
            "    oid: 1.3.6.1.2.1\n    labels: {sensor: index}\n",
            "broken.yaml:6:14: metrics.cpu.labels.sensor: unknown key",
        ),
        (
            "vendor: x\nmetrics:\n  cpu:\n    family: schoolnet_device_cpu_usage_ratio\n"
            "    oid: 1.3.6.1.2.1\n    scale: lots\n",
            "broken.yaml:6:12: metrics.cpu.scale: expected a number",
        ),
        ("vendor: x\nextends: nothere\n", "broken.yaml:2:10: extends: no profile named 'nothere'"),
        (
            "vendor: x\nmatch: [{sys_descr: '(('}]\n",
            "broken.yaml:2:21: match[0].sys_descr: invalid",
        ),
        ("vendor: x\nmetrics:\n  nothere: null\n", "broken.yaml:3:12: metrics.nothere: removes"),
        ("vendor: [x\n", "broken.yaml:2:1: invalid YAML"),
    ],
)
def test_a_broken_profile_is_a_clear_error_naming_file_line_column_and_key(tmp_path, text, message):
    with pytest.raises(ProfileError) as caught:
        load_profiles([_with(tmp_path, "broken", text)])
    text = str(caught.value)
    assert text.startswith(f"{tmp_path}/") and "\n" not in text, text
    assert text.removeprefix(f"{tmp_path}/").startswith(message), text


def test_a_new_vendor_is_a_new_file(tmp_path):
    directory = _with(
        tmp_path,
        "acme",
        "vendor: acme\nmatch: [{sys_object_id: 1.3.6.1.4.1.99999}]\nmodel: Road Runner\n",
    )
    found = Registry(load_profiles([directory]))
    profile = asyncio.run(found.select(oid("1.3.6.1.4.1.99999.1.2"), "whatever"))
    assert (profile.name, profile.vendor, profile.extends) == ("acme", "acme", "generic")
    assert "cpu" in profile.metrics  # inherited from generic
    by_number = {e.vendor for e in enterprises().values()}  # (always known: enterprises.yaml)
    assert found.vendors == tuple(sorted({"acme"} | by_number))


def _select(sys_object_id: str, descr: str, vendor=None, probe_answer=None):
    async def probe(_probe):
        return bool(probe_answer)

    return asyncio.run(
        registry().select(
            oid(sys_object_id), descr, vendor, probe if probe_answer is not None else None
        )
    ).name


def test_most_specific_prefix_then_sysdescr_wins():
    assert _select("1.3.6.1.4.1.9.1.617", "Cisco IOS Software, C3560 Software") == "cisco-ios"
    assert _select("1.3.6.1.4.1.9.1.1069", "Cisco Controller") == "cisco-wlc"
    assert _select("1.3.6.1.4.1.14823.1.1.32", "ArubaOS (MODEL: Aruba7210)") == "arubaos"
    assert _select("1.3.6.1.4.1.47196.4.1.1.1.50", "Aruba JL635A 8325") == "aruba-cx"
    assert _select("1.3.6.1.4.1.12325.1.1.2.1.1", "OPNsense fw 18.1") == "opnsense"
    assert _select("1.3.6.1.4.1.12325.1.1.2.1.1", "pfSense fw 2.6") == "pfsense"
    assert _select("1.3.6.1.4.1.8072.3.2.10", "Linux web 5.10.0") == "linux"


def test_unifi_behind_foreign_sysobjectids():
    # net-snmp's sysObjectID: the sysDescr tells
    assert _select("1.3.6.1.4.1.8072.3.2.10", "UAP-AC-Pro 6.5.28") == "ubiquiti-unifi"
    # Frogfoot's: only the device's 802.11 product name tells (a probe)
    assert _select("1.3.6.1.4.1.10002.1", "Linux 3.3.8 #1 mips", probe_answer=True) == (
        "ubiquiti-unifi"
    )
    assert _select("1.3.6.1.4.1.10002.1", "Linux 3.3.8 #1 mips", probe_answer=False) == "generic"
    assert _select("1.3.6.1.4.1.10002.1", "Linux 3.3.8 #1 mips") == "generic"  # cannot ask


def test_vendor_in_targets_overrides_detection():
    # UniFi with nothing to recognise it by: vendor: ubiquiti picks the vendor's default profile
    assert _select("1.3.6.1.4.1.10002.1", "Linux 3.3.8", vendor="ubiquiti") == "ubiquiti-unifi"
    # a detected profile of another vendor is not used
    assert _select("1.3.6.1.4.1.9.1.617", "Cisco IOS", vendor="hpe") == "hpe-procurve"
    # among the vendor's profiles, the matching one wins over the default
    assert _select("1.3.6.1.4.1.41112.1.4", "Linux 2.6.32", vendor="ubiquiti") == "ubiquiti-airos"
    assert _select("1.3.6.1.4.1.1", "x", vendor="linux") == "linux"


def test_unknown_device_gets_generic():
    assert _select("1.3.6.1.4.1.25461.2.3.6", "Palo Alto Networks PA-5000") == "generic"


def test_counter_typed_client_counts_and_value_maps_and_text_values():
    profile = registry().profiles["cisco-wlc"]
    ap = (0, 58, 152, 176, 46, 112)
    data = Data(
        scalars={},
        table={
            oid("1.3.6.1.4.1.14179.2.2.1.1.3"): {ap: b"ap-1"},
            oid("1.3.6.1.4.1.14179.2.2.1.1.6"): {ap: 2},
            oid("1.3.6.1.4.1.14179.2.2.2.1.15"): {(*ap, 0): 4294967295, (*ap, 1): 7},
            oid("1.3.6.1.4.1.14179.2.2.2.1.2"): {(*ap, 0): 1, (*ap, 1): 2},
        },
    )
    got = {(s.family, s.labels): s.value for s in evaluate(profile, data)}
    clients = "schoolnet_wireless_clients"
    assert got[(clients, (("ap", "ap-1"), ("radio", "5GHz"), ("ssid", "")))] == 7
    assert got[(clients, (("ap", "ap-1"), ("radio", "2.4GHz"), ("ssid", "")))] == 4294967295
    assert got[("schoolnet_wireless_ap_up", (("ap", "ap-1"),))] == 0  # disassociating
    assert got[("schoolnet_wireless_aps", ())] == 1


def test_absent_values_give_absent_metrics_not_zero():
    assert evaluate(registry().profiles["cisco-ios"], Data()) == []
    fortinet = registry().profiles["fortinet-fortigate"]
    sensors = oid("1.3.6.1.4.1.12356.101.4.3.2.1")
    data = Data(
        table={
            sensors + (2,): {(1,): b"CPU 0 Core 0", (2,): b"FAN1", (3,): b"PS1 Status"},
            sensors + (3,): {(1,): b"50", (2,): b"2900", (3,): b"0"},
            sensors + (4,): {(1,): 0, (2,): 1, (3,): 0},
        }
    )
    got = {(s.family, s.labels): s.value for s in evaluate(fortinet, data)}
    assert got == {
        ("schoolnet_device_temperature_celsius", (("sensor", "CPU 0 Core 0"),)): 50.0,
        ("schoolnet_device_fan_up", (("fan", "FAN1"),)): 0.0,
        ("schoolnet_device_psu_up", (("psu", "PS1 Status"),)): 1.0,
    }


def test_unless_prefers_the_better_source():
    generic = registry().generic
    hr = {oid("1.3.6.1.2.1.25.3.3.1.2"): {(196608,): 30}}
    idle = {oid("1.3.6.1.4.1.2021.11.11.0"): 75}
    both = evaluate(generic, Data(scalars=idle, table=hr))
    assert [(s.labels, s.value) for s in both] == [((("cpu", "196608"),), 0.3)]
    only_ucd = evaluate(generic, Data(scalars=idle))
    assert [(s.labels, s.value) for s in only_ucd] == [((("cpu", ""),), 0.25)]


def test_duplicate_label_values_stay_apart():
    generic = registry().generic
    sensor = oid("1.3.6.1.2.1.99.1.1.1")
    data = Data(
        table={
            sensor + (1,): {(1,): 8, (2,): 8},
            sensor + (2,): {(1,): 9, (2,): 9},
            sensor + (3,): {(1,): 1, (2,): 0},
            sensor + (4,): {(1,): 215, (2,): 30},
        },
        lookups={(oid("1.3.6.1.2.1.47.1.1.1.1.7"), (i,)): b"Temp" for i in (1, 2)},
    )
    got = sorted((dict(s.labels)["sensor"], s.value) for s in evaluate(generic, data))
    assert got == [("Temp", 21.5), ("Temp#2", 30.0)]


def test_profile_files_are_plain_yaml_with_comments():
    for path in PROFILE_DIR.glob("*.yaml"):
        if path.stem in TABLES:  # (enterprises.yaml: tests/test_profiles_enterprises.py)
            continue
        data = yaml.safe_load(path.read_text())
        assert isinstance(data, dict) and "vendor" in data, path.name
        assert path.read_text().lstrip().startswith("#"), f"{path.name}: say what it is for"
