"""Device profiles against real recordings served by snmpsim.

For every recording: the profile, vendor and model detected, and every health value the recording
holds for the metrics its profile defines, exposed equal to the recorded value after scaling. The
expectation is computed here from the .snmprec file (tests/snmprec.py and this file's own small
evaluation of the profile's definition), never typed in by hand; spot checks below restate the
meaning of the main vendors' OIDs explicitly.
"""

from __future__ import annotations

import ast
import asyncio
import functools
import re
import subprocess
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from monitor.config.model import Config, Member, School, SnmpAuth, SnmpSettings, Target
from monitor.exposition import Exposition
from monitor.families import Source, by_source
from monitor.probes.snmp.poll import RECHECK_POLLS, SnmpProber
from monitor.probes.snmp.transport import SnmpClient
from monitor.profiles import registry
from monitor.store import ResultStore
from tests import snmprec
from tests.conftest import RECORDINGS

# recording -> (profile, vendor, model): what a person reading the recording would say
PROFILE_FAMILIES = {f.name: f for f in by_source(Source.PROFILE)}
DETECTED = {
    "aruba-7010": ("arubaos", "aruba", "7010"),
    "aruba-7210": ("arubaos", "aruba", "7210"),
    "arubaos": ("arubaos", "aruba", ""),
    "arubaos-cx": ("aruba-cx", "aruba", "JL635A 8325"),
    "cisco-c3560": ("cisco-ios", "cisco", "WS-C3560G-48TS-E"),
    "cisco-c3750": ("cisco-ios", "cisco", "WS-C3750G-12S-S"),
    "cisco-controller": ("cisco-wlc", "cisco", "AIR-CT5508-K9"),
    "ciscowlc": ("cisco-wlc", "cisco", ""),
    "ios": ("cisco-ios", "cisco", "C2950"),
    "fortinet-xcu": ("fortinet-fortigate", "fortinet", "FGT_3000D"),
    "hpe-procurve": ("hpe-procurve", "hpe", "516733-B21"),
    "procurve": ("hpe-procurve", "hpe", ""),
    "huawei-s5720": ("huawei-vrp", "huawei", "S5720-36C-EI-AC"),
    "juniper-mx960": ("juniper-junos", "juniper", "mx960"),
    "netgear": ("netgear", "netgear", "GS724Tv4"),
    "opnsense": ("opnsense", "opnsense", "OPNsense"),
    "paloalto-pa-5000": ("generic", "paloalto", "PA-5050"),  # enterprise 25461; entPhysicalModel
    "routeros": ("mikrotik-routeros", "mikrotik", ""),
    "ruckus-scg": ("ruckus-sz", "ruckus", "SmartCell Gateway"),
    "ruckuswireless": ("ruckus-zd", "ruckus", "ZD1200"),
    "ruckuswireless-sz": ("ruckus-sz", "ruckus", "SZ104"),
    "ubiquiti-m5": ("ubiquiti-airos", "ubiquiti", "NanoStation M5"),
    "unifi": ("ubiquiti-unifi", "ubiquiti", "UAP"),
    "XMG1915-10EP": ("zyxel", "zyxel", "XMG1915-10EP"),
}
ANY = object()  # a value snmpsim computes at run time (variation module): present, any value


def target(community: str, port: int, version: str = "2c") -> Target:
    return Target(
        member="m",
        school="s",
        id=community.lower(),
        role="switch",
        host="127.0.0.1",
        port=port,
        labels=(("building", "B"),),
        snmp=SnmpSettings(
            auth=SnmpAuth(name="sim", version=version, community=community), timeout=5, retries=1
        ),
    )


class CountingClient(SnmpClient):
    """Records every request: (kind, [oids])."""

    def __init__(self) -> None:
        super().__init__()
        self.log: list[tuple[str, list]] = []

    async def get(self, endpoint, auth, oids):
        self.log.append(("get", list(oids)))
        return await super().get(endpoint, auth, oids)

    async def get_next(self, endpoint, auth, oids):
        self.log.append(("next", list(oids)))
        return await super().get_next(endpoint, auth, oids)

    async def get_bulk(self, endpoint, auth, oids, max_repetitions, non_repeaters=0):
        # non-repeaters ask for the OID just before a scalar: log the scalar itself
        scalars = [
            (*o[:-2], o[-2] + 1) if o[-1] == 0xFFFFFFFF else (*o, 0) for o in oids[:non_repeaters]
        ]
        self.log.append(("bulk", scalars + list(oids[non_repeaters:])))
        return await super().get_bulk(endpoint, auth, oids, max_repetitions, non_repeaters)


@pytest.fixture(scope="module")
def polls(snmpsim):
    """Every recording polled twice by one prober: {community: (first, second, requests log of
    the second poll)}."""

    for community in DETECTED:
        SERVED[community] = snmpsim.workdir / "data" / f"{community}.snmprec"

    async def run():
        client = CountingClient()
        prober = SnmpProber(client)
        out = {}
        try:
            for community in DETECTED:
                t = target(community, snmpsim.port)
                first = await prober.poll(t, "127.0.0.1")
                client.log.clear()
                second = await prober.poll(t, "127.0.0.1")
                out[community] = (first, second, list(client.log))
        finally:
            prober.close()
        return out

    return asyncio.run(run())


SERVED: dict[str, Path] = {}  # community -> the file snmpsim serves (set by the polls fixture)


@functools.cache
def records(community: str) -> dict:
    """The recording as served: the file itself, decompressed, or for the biggest ones trimmed to
    the subtrees the collector can ask for (tests/conftest.py; the values are the recording's)."""
    return snmprec.read(SERVED.get(community, RECORDINGS[community]))


# --- the test's own reading of a profile over a recording ---------------------------------------


def _text(raw) -> str:
    if isinstance(raw, bytes):
        data = raw.rstrip(b"\x00").strip()
        try:
            text = data.decode("utf-8")
            if text.isprintable():
                return text
        except UnicodeDecodeError:
            pass
        try:
            text = data.decode("latin-1")
            if text.isprintable():
                return text
        except UnicodeDecodeError:
            pass
        return data.hex(":")
    return "" if raw is None else str(raw)


def _num(raw):
    if isinstance(raw, snmprec.Variation):
        return ANY
    if isinstance(raw, int):
        return float(raw)
    if isinstance(raw, bytes):
        found = re.search(r"[-+]?\d+(?:\.\d+)?", raw.decode("latin-1"))
        return float(found.group()) if found else None
    return None


def _column(recs: dict, prefix: tuple) -> dict:
    n = len(prefix)
    return {o[n:]: v for o, (_t, v) in recs.items() if o[:n] == prefix and len(o) > n}


def _label(metric, sources, index, recs, interfaces) -> str:
    for s in sources:
        text = ""
        if s.kind == "value":
            text = s.value
        elif s.kind == "index":
            part = index[s.index[0] : s.index[1]]
            if s.format == "mac":
                text = ":".join(f"{p:02x}" for p in part)
            elif s.format == "string":
                chars = part[1:] if part and part[0] == len(part) - 1 else part
                text = _text(bytes(chars))
            else:
                text = ".".join(map(str, part))
        else:
            at = index
            if s.via:
                pointer = recs.get(s.via + index, (0, None))[1]
                at = (pointer,) if isinstance(pointer, int) and pointer else None
            elif s.index:
                at = index[s.index[0] : s.index[1]]
            if at:
                if s.kind == "interface":
                    text = interfaces.get(at[0], "") if len(at) == 1 else ""
                else:
                    key = s.oid if metric.scalar else s.oid + at
                    raw = recs.get(key, (0, None))[1]
                    mapped = dict(s.map or ())
                    text = mapped.get(_text(raw), _text(raw))
        if text.strip():
            return text.strip()
    return ""


def expected_samples(profile, recs, interfaces) -> dict:
    produced = {}
    for mid, metric in profile.metrics.items():
        family = PROFILE_FAMILIES[metric.family]
        if metric.scalar:
            rows = [()] if metric.oid in recs else []
        else:
            rows = list(_column(recs, metric.oid))

        def get(oid, index, metric=metric):
            key = oid if metric.scalar else oid + index
            return recs[key][1] if key in recs else None

        out = []
        for index in rows:
            ok = True
            for cond in metric.where:
                raw = get(cond.oid, index)
                text = str(raw) if isinstance(raw, int) else _text(raw)
                if raw is None or (cond.equals and text not in cond.equals):
                    ok = False
                if cond.regex is not None and not re.search(cond.regex.pattern, text):
                    ok = False
            if not ok:
                continue
            raw = get(metric.oid, index)
            if metric.map is not None:
                value = dict(metric.map).get(str(raw) if isinstance(raw, int) else _text(raw))
                value = metric.default if value is None else value
            else:
                value = _num(raw)
            names = {"value": value}
            for name, column in metric.columns:
                names[name] = _num(get(column, index))
            if metric.expression is not None:
                used = {n for n in names if re.search(rf"\b{n}\b", metric.expression.text)}
                if any(names[n] is ANY for n in used):
                    value = ANY
                elif any(names[n] is None for n in used):
                    value = None
                else:
                    try:
                        tree = ast.parse(metric.expression.text, mode="eval")
                        value = eval(compile(tree, "<profile>", "eval"), {}, names)
                    except ZeroDivisionError:
                        value = None
            if value is None and metric.aggregate != "count":
                continue
            if value is not ANY and value is not None:
                value = value * metric.scale
            labels = dict.fromkeys(family.labels, "")
            for name, sources in metric.labels:
                labels[name] = _label(metric, sources, index, recs, interfaces)
            out.append((tuple(labels.items()), value, index))
        if metric.aggregate:
            groups: dict = {}
            for labels, value, _ in out:
                groups.setdefault(labels, []).append(value)
            fn = {"sum": sum, "count": len, "max": max, "min": min}[metric.aggregate]
            out = [(labels, float(fn(v)), None) for labels, v in groups.items()]
        produced[mid] = (metric, out)
    result = {}
    for metric, out in produced.values():
        if any(produced.get(u, (None, []))[1] for u in metric.unless if u in produced):
            continue
        for labels, value, _index in out:
            key = (metric.family, labels)
            if key in result:  # the collector keeps both rows apart with '#index' on a label
                continue
            result[key] = value
    return result


# --- tests ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("community", sorted(DETECTED))
def test_profile_vendor_and_model_are_detected(polls, community):
    first, second, _ = polls[community]
    assert first.ok, first.error
    assert (first.profile, first.vendor, first.model) == DETECTED[community]
    assert (second.profile, second.vendor, second.model) == DETECTED[community]


@pytest.mark.parametrize("community", sorted(DETECTED))
def test_every_recorded_health_value_is_reported_as_recorded(polls, community):
    first, second, _ = polls[community]
    profile = registry().profiles[first.profile]
    interfaces = {i.index: i.name for i in first.interfaces}
    expected = expected_samples(profile, records(community), interfaces)
    for poll in (first, second):
        got = {(s.family, s.labels): s.value for s in poll.samples}
        for key, value in expected.items():
            assert key in got, key
            if value is not ANY:
                assert got[key] == pytest.approx(value), key
        # nothing invented: every sample is an expected one (or a '#index' twin of one)
        for family, labels in got:
            if (family, labels) not in expected:
                assert any("#" in v for _, v in labels), (family, labels)


def test_recordings_hold_what_the_profiles_read():
    """Guard against a vacuous comparison: the recordings exercise every family."""
    seen = set()
    for community in DETECTED:
        profile = registry().profiles[DETECTED[community][0]]
        seen.update(f for f, _ in expected_samples(profile, records(community), {}))
    missing = set(PROFILE_FAMILIES) - seen - {"schoolnet_interface_poe_delivering"}
    assert not missing, missing


def _exposition(polls) -> str:
    store = ResultStore()
    targets = [
        target(c, 161) for c in DETECTED
    ]  # the port does not matter: only results are rendered
    school = School(id="s", name="S", member="m", targets=tuple(targets))
    store.sync(Config(path="t.yaml", members=(Member(id="m", name="M", schools=(school,)),)))
    for t in targets:
        community = next(c for c in DETECTED if c.lower() == t.id)
        store.record_snmp(t.key, polls[community][1])
    return Exposition(store).render().decode()


def test_exposition_has_one_label_set_per_family_and_passes_promtool(polls, tmp_path):
    text = _exposition(polls)
    families = {f.name: f for f in text_string_to_metric_families(text)}
    for name, family in PROFILE_FAMILIES.items():
        if name not in families:
            assert name == "schoolnet_interface_poe_delivering"  # no recording has per-port PoE
            continue
        assert families[name].type == "gauge"  # Counter32 client counts too
        expected = {"member", "school", "target", "role", "building", *family.labels}
        for sample in families[name].samples:
            assert set(sample.labels) == expected, (name, sample.labels)
    path = tmp_path / "metrics.txt"
    path.write_text(text)
    check = subprocess.run(
        ["promtool", "check", "metrics"], input=text, capture_output=True, text=True
    )
    assert check.returncode == 0 and not check.stdout.strip() and not check.stderr.strip(), (
        check.stdout + check.stderr
    )


def test_exposed_values_equal_the_polled_samples(polls):
    text = _exposition(polls)
    exposed = {}
    for family in text_string_to_metric_families(text):
        if family.name in PROFILE_FAMILIES:
            for sample in family.samples:
                labels = dict(sample.labels)
                key = (labels.pop("target"), family.name)
                for base in ("member", "school", "role", "building"):
                    labels.pop(base)
                exposed[(*key, tuple(sorted(labels.items())))] = sample.value
    count = 0
    for community in DETECTED:
        for s in polls[community][1].samples:
            key = (community.lower(), s.family, tuple(sorted(s.labels)))
            assert exposed[key] == pytest.approx(s.value), key
            count += 1
    assert count == len(exposed)


# --- spot checks: the meaning of the main vendors' OIDs, restated --------------------------------


def _samples(polls, community, family):
    return {s.labels: s.value for s in polls[community][0].samples if s.family == family}


def test_cisco_ios_cpu_memory_and_environment(polls):
    recs = records("cisco-c3560")
    cpu = _samples(polls, "cisco-c3560", "schoolnet_device_cpu_usage_ratio")
    one_minute = recs[(1, 3, 6, 1, 4, 1, 9, 9, 109, 1, 1, 1, 1, 7, 1)][1]  # cpmCPUTotal1minRev
    assert list(cpu.values()) == [one_minute / 100]
    pools = _samples(polls, "cisco-c3560", "schoolnet_device_memory_usage_ratio")
    used = recs[(1, 3, 6, 1, 4, 1, 9, 9, 48, 1, 1, 1, 5, 1)][1]
    free = recs[(1, 3, 6, 1, 4, 1, 9, 9, 48, 1, 1, 1, 6, 1)][1]
    assert pools[(("pool", "Processor"),)] == pytest.approx(used / (used + free))
    temperature = _samples(polls, "cisco-c3560", "schoolnet_device_temperature_celsius")
    assert list(temperature.values()) == [recs[(1, 3, 6, 1, 4, 1, 9, 9, 13, 1, 3, 1, 3, 1005)][1]]


def test_aruba_controller_aps_clients_and_text_temperature(polls):
    recs = records("aruba-7210")
    status = _column(recs, (1, 3, 6, 1, 4, 1, 14823, 2, 2, 1, 5, 2, 1, 4, 1, 19))
    up = _samples(polls, "aruba-7210", "schoolnet_wireless_ap_up")
    assert len(up) == len(status) and sum(up.values()) == sum(v == 1 for v in status.values())
    assert _samples(polls, "aruba-7210", "schoolnet_wireless_aps") == {(): len(status)}
    bssid_clients = _column(recs, (1, 3, 6, 1, 4, 1, 14823, 2, 2, 1, 5, 2, 1, 7, 1, 12))
    clients = _samples(polls, "aruba-7210", "schoolnet_wireless_clients")
    assert sum(clients.values()) == sum(bssid_clients.values())
    raw = recs[(1, 3, 6, 1, 4, 1, 14823, 2, 2, 1, 2, 1, 10, 0)][1]  # "22.00 degrees Celsius ..."
    temperature = _samples(polls, "aruba-7210", "schoolnet_device_temperature_celsius")
    assert temperature == {(("sensor", "internal"),): float(raw.split()[0])}


def test_cisco_wlc_hundreds_of_aps_and_counter32_client_counts(polls):
    recs = records("cisco-controller")
    names = _column(recs, (1, 3, 6, 1, 4, 1, 14179, 2, 2, 1, 1, 3))
    users = {
        o: (tag, v)
        for o, (tag, v) in recs.items()
        if o[:12] == (1, 3, 6, 1, 4, 1, 14179, 2, 2, 2, 1, 15)
    }
    assert len(names) > 200 and {tag for tag, _ in users.values()} == {65}  # Counter32
    assert _samples(polls, "cisco-controller", "schoolnet_wireless_aps") == {(): len(names)}
    clients = _samples(polls, "cisco-controller", "schoolnet_wireless_clients")
    assert sum(clients.values()) == sum(v for _, v in users.values())
    assert {dict(k)["ap"] for k in clients} == {_text(n) for n in names.values()}


def test_unifi_with_frogfoot_sysobjectid_is_recognised_by_asking(polls):
    recs = records("unifi")
    assert recs[(1, 3, 6, 1, 2, 1, 1, 2, 0)][1] == "1.3.6.1.4.1.10002.1"
    vaps = _column(recs, (1, 3, 6, 1, 4, 1, 41112, 1, 6, 1, 2, 1, 8))
    clients = _samples(polls, "unifi", "schoolnet_wireless_clients")
    assert sum(clients.values()) == sum(vaps.values()) and len(clients) > 1


def test_mikrotik_is_walked_with_getnext(polls):
    _, _, log = polls["routeros"]
    assert log and not [kind for kind, _ in log if kind == "bulk"]
    clients = _samples(polls, "routeros", "schoolnet_wireless_clients")
    counts = _column(records("routeros"), (1, 3, 6, 1, 4, 1, 14988, 1, 1, 1, 3, 1, 6))
    assert sorted(clients.values()) == sorted(float(v) for v in counts.values())
    _, _, bulk_log = polls["cisco-c3560"]
    assert any(kind == "bulk" for kind, _ in bulk_log)


def test_a_device_without_a_profile_gets_the_generic_result_and_its_vendor(polls):
    """No profile knows the PA-5050; its sysObjectID (…25461.2.3.9) still names Palo Alto, in
    the poll and in schoolnet_device_info as Prometheus would scrape it."""
    first, _, _ = polls["paloalto-pa-5000"]
    assert first.ok and (first.profile, first.vendor) == ("generic", "paloalto")
    info = [
        s.labels
        for family in text_string_to_metric_families(_exposition(polls))
        if family.name == "schoolnet_device_info"
        for s in family.samples
        if s.labels.get("target") == "paloalto-pa-5000"
    ]
    assert [(i["vendor"], i["model"]) for i in info] == [("paloalto", "PA-5050")]


def test_what_a_device_lacks_is_not_asked_again(polls, snmpsim):
    """ciscowlc.snmprec has three scalars and nothing else: everything else the profile reads is
    asked once, then not again until RECHECK_POLLS polls later."""
    first, second, log = polls["ciscowlc"]
    assert second.requests < first.requests and second.varbinds <= first.varbinds
    profile = registry().profiles["cisco-wlc"]
    asked = {tuple(o) for _, oids in log for o in oids}
    recs = records("ciscowlc")
    lacking = [c for c in profile.columns if not _column(recs, c)]
    lacking += [s for s in profile.scalars if s not in recs]
    assert lacking and not asked & set(lacking)
    # one GETBULK: the system group and the scalars ride along with the interface columns
    assert [kind for kind, _ in log] == ["bulk"]

    async def later():
        client = CountingClient()
        prober = SnmpProber(client)
        t = target("ciscowlc", snmpsim.port)
        try:
            await prober.poll(t, "127.0.0.1")
            prober.devices[t.key].polls += RECHECK_POLLS
            client.log.clear()
            await prober.poll(t, "127.0.0.1")
        finally:
            prober.close()
        return {tuple(o) for _, oids in client.log for o in oids}

    assert set(lacking) <= asyncio.run(later())  # asked again after a while
