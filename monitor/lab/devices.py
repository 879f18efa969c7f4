"""Simulated devices: what each lab agent serves.

A `Template` is the MIB of one kind of device (a model from catalogue.yaml, with its ports named):
the sorted OIDs, their BER encodings, and for each either a fixed encoded value or a `Slot` that a
`Device` fills in at request time (its name, its counters, its port states). Devices of one model
share one template, so a fleet of thousands costs little memory; what makes a device itself is a
seed (its target key) from which its identity, port states and traffic are derived.
"""

from __future__ import annotations

import bisect
import bz2
import dataclasses
import functools
import hashlib
import os
import pickle
import random
import time
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import yaml

from monitor.config.model import Target
from monitor.lab.traffic import Flow, Ticks, flow_for
from monitor.probes.snmp import ber

OID = tuple[int, ...]

# Slot kinds (small ints: the request path dispatches on them)
SYS_DESCR, SYS_NAME, SYS_LOCATION, SYS_CONTACT, UPTIME = range(5)
IF_PHYS, IF_ADMIN, IF_OPER, IF_LAST_CHANGE, IF_ALIAS = range(5, 10)
IN_OCTETS, OUT_OCTETS, IN_UCAST, OUT_UCAST, IN_ERRORS, OUT_ERRORS = range(10, 16)
IN_DISCARDS, OUT_DISCARDS, CPU_LOAD, MEM_USED, TEMPERATURE, POE_USED = range(16, 22)
POE_PORT, SERIAL, LLDP_NAME, LLDP_PORT, LLDP_CHASSIS = range(22, 27)


@dataclass(frozen=True)
class Slot:
    kind: int
    port: int = 0  # position in Template.ports (or entity index)
    bits: int = 64  # counters: 32 or 64
    text: str = ""  # SERIAL: the recorded serial to make unique


@dataclass(frozen=True)
class Port:
    index: int  # ifIndex
    name: str
    descr: str
    if_type: int
    speed_mbps: int
    kind: str  # access | uplink | wan | lan | radio | logical


@dataclass
class Template:
    key: str
    model: Model
    ports: list[Port]
    oids: list[OID] = field(default_factory=list)
    encoded_oids: list[bytes] = field(default_factory=list)
    values: list[bytes | Slot] = field(default_factory=list)
    position: dict[OID, int] = field(default_factory=dict)
    counter64: list[bool] = field(default_factory=list)  # v1 must skip these
    lldp_port: int | None = None

    def freeze(self, entries: dict[OID, bytes | Slot]) -> None:
        self.oids = sorted(entries)
        self.encoded_oids = [ber.oid(o) for o in self.oids]
        self.values = [entries[o] for o in self.oids]
        self.position = {o: i for i, o in enumerate(self.oids)}
        self.counter64 = [
            (
                isinstance(v, Slot)
                and v.kind in (IN_OCTETS, OUT_OCTETS, IN_UCAST, OUT_UCAST)
                and v.bits == 64
            )
            or (isinstance(v, bytes) and v[:1] == b"\x46")
            for v in self.values
        ]

    def next_position(self, oid: OID) -> int:
        """Position of the first OID after `oid` (len(oids) at the end of the MIB)."""
        return bisect.bisect_right(self.oids, oid)


@dataclass(frozen=True)
class Model:
    name: str
    sys_object_id: str
    sys_descr: str
    model: str
    ports: tuple[tuple[str, int, int], ...]
    descr: tuple[tuple[str, ...], ...] = ()
    vlans: tuple[str, ...] = ()
    poe: int = 0
    recording: str = ""


@functools.lru_cache(maxsize=1)
def catalogue() -> dict:
    text = resources.files("monitor.lab").joinpath("catalogue.yaml").read_text()
    data = yaml.safe_load(text)
    models = {}
    for name, spec in data["models"].items():
        models[name] = Model(
            name=name,
            sys_object_id=spec["sys_object_id"],
            sys_descr=spec["sys_descr"],
            model=spec.get("model", ""),
            ports=tuple(tuple(p) for p in spec["ports"]),
            descr=tuple(tuple(d) for d in spec.get("descr", ())),
            vlans=tuple(spec.get("vlans", ())),
            poe=int(spec.get("poe", 0)),
            recording=spec.get("recording", ""),
        )
    return {"defaults": data["defaults"], "vendors": data["vendors"], "models": models}


def model_for(role: str, vendor: str | None) -> Model:
    cat = catalogue()
    name = cat["vendors"].get(vendor or "generic", {}).get(role) or cat["defaults"].get(
        role, "generic-server"
    )
    return cat["models"][name]


# --- building a template -------------------------------------------------------------------

_SYS = (1, 3, 6, 1, 2, 1, 1)
_IF = (1, 3, 6, 1, 2, 1, 2, 2, 1)
_IFX = (1, 3, 6, 1, 2, 1, 31, 1, 1, 1)
_HR = (1, 3, 6, 1, 2, 1, 25)
_ENT = (1, 3, 6, 1, 2, 1, 47, 1, 1, 1, 1)
_ENT_SENSOR = (1, 3, 6, 1, 2, 1, 99, 1, 1, 1)
_PETH_MAIN = (1, 3, 6, 1, 2, 1, 105, 1, 3, 1, 1)
_PETH_PORT = (1, 3, 6, 1, 2, 1, 105, 1, 1, 1)
_LLDP_REM = (1, 0, 8802, 1, 1, 2, 1, 4, 1, 1)
# Subtrees a recording supplies when present (the rest is generated)
_RECORDED = (
    (1, 3, 6, 1, 4, 1),
    (1, 3, 6, 1, 2, 1, 47),
    (1, 3, 6, 1, 2, 1, 99),
    (1, 3, 6, 1, 2, 1, 25, 2),
    (1, 3, 6, 1, 2, 1, 25, 3),
    (1, 3, 6, 1, 2, 1, 105),
)
_BIG_TABLE = 5000  # a recorded table with more records than this is thinned ...
_KEEP_ROWS = 64  # ... to this many rows (a school-sized controller)


def _int(value: int, tag: int = ber.INTEGER) -> bytes:
    return ber.integer(value, tag)


def _str(text: str | bytes) -> bytes:
    return ber.tlv(ber.OCTET_STRING, text.encode() if isinstance(text, str) else text)


def _oid_value(dotted: str) -> bytes:
    return ber.oid(tuple(int(x) for x in dotted.split(".")))


def _ports(model: Model, role: str, wan: str | None, core: bool = False) -> list[Port]:
    if core:  # a core switch: the model's uplink ports, 24 of them, no access ports, no PoE
        pattern, _count, speed = model.ports[-1] if len(model.ports) > 1 else model.ports[0]
        model = dataclasses.replace(
            model,
            ports=((pattern, 24, max(speed, 10000)),),
            descr=model.descr[-1:] if model.descr else (),
        )
        role = "core"
    ports: list[Port] = []
    index = 1
    number = 1  # running port number for patterns without a prefix (HPE "1".."52")
    for group, (pattern, count, speed) in enumerate(model.ports):
        descr_pattern = model.descr[group][0] if group < len(model.descr) else pattern
        for n in range(count):
            nn = number if pattern[:1] == "{" else n + 1  # "{n}" alone: numbered across groups
            name = pattern.format(n=nn, n0=n)
            descr = descr_pattern.format(n=nn, n0=n)
            number += 1
            if role in ("router", "firewall"):
                kind = "wan" if not ports else "lan"
            elif "radio" in name or "wifi" in name or "wlan" in name or "Dot11" in name:
                kind = "radio"
            elif role == "switch" and group == 0:
                kind = "access"
            else:
                kind = "uplink"
            if_type = 71 if kind == "radio" else 6
            ports.append(Port(index, name, descr, if_type, speed, kind))
            index += 1
    if wan and ports:
        first = ports[0]
        if all(p.name != wan for p in ports):
            ports[0] = Port(first.index, wan, wan, first.if_type, first.speed_mbps, "wan")
        else:  # the named interface is the WAN port
            ports = [
                Port(
                    p.index,
                    p.name,
                    p.descr,
                    p.if_type,
                    p.speed_mbps,
                    "wan" if p.name == wan else ("lan" if p.kind == "wan" else p.kind),
                )
                for p in ports
            ]
    for name in model.vlans:
        ports.append(Port(index, name, name, 24 if name.startswith("lo") else 53, 1000, "logical"))
        index += 1
    return ports


def _sys_services(role: str) -> int:
    return {"switch": 6, "router": 78, "firewall": 78, "ap": 2, "controller": 72}.get(role, 72)


def build_template(
    model: Model, role: str, wan: str | None, lldp: bool, core: bool = False
) -> Template:
    """The MIB of `model` in `role`; `wan` names the router port a link is counted on, `lldp`
    adds a neighbour (the parent) on the uplink, `core` makes a switch a core switch."""
    ports = _ports(model, role, wan, core)
    if core:
        model = dataclasses.replace(model, poe=0)
    template = Template(key=f"{model.name}/{role}/{wan}/{lldp}/{core}", model=model, ports=ports)
    e: dict[OID, bytes | Slot] = {
        _SYS + (1, 0): Slot(SYS_DESCR),
        _SYS + (2, 0): _oid_value(model.sys_object_id),
        _SYS + (3, 0): Slot(UPTIME),
        _SYS + (4, 0): Slot(SYS_CONTACT),
        _SYS + (5, 0): Slot(SYS_NAME),
        _SYS + (6, 0): Slot(SYS_LOCATION),
        _SYS + (7, 0): _int(_sys_services(role)),
        (1, 3, 6, 1, 2, 1, 2, 1, 0): _int(len(ports)),
    }
    for pos, port in enumerate(ports):
        i = (port.index,)
        speed = port.speed_mbps * 1_000_000
        e[_IF + (1,) + i] = _int(port.index)
        e[_IF + (2,) + i] = _str(port.descr)
        e[_IF + (3,) + i] = _int(port.if_type)
        e[_IF + (4,) + i] = _int(1500)
        e[_IF + (5,) + i] = _int(min(speed, 0xFFFFFFFF), ber.GAUGE32)
        e[_IF + (6,) + i] = Slot(IF_PHYS, pos)
        e[_IF + (7,) + i] = Slot(IF_ADMIN, pos)
        e[_IF + (8,) + i] = Slot(IF_OPER, pos)
        e[_IF + (9,) + i] = Slot(IF_LAST_CHANGE, pos)
        e[_IF + (10,) + i] = Slot(IN_OCTETS, pos, 32)
        e[_IF + (11,) + i] = Slot(IN_UCAST, pos, 32)
        e[_IF + (13,) + i] = Slot(IN_DISCARDS, pos)
        e[_IF + (14,) + i] = Slot(IN_ERRORS, pos)
        e[_IF + (16,) + i] = Slot(OUT_OCTETS, pos, 32)
        e[_IF + (17,) + i] = Slot(OUT_UCAST, pos, 32)
        e[_IF + (19,) + i] = Slot(OUT_DISCARDS, pos)
        e[_IF + (20,) + i] = Slot(OUT_ERRORS, pos)
        e[_IFX + (1,) + i] = _str(port.name)
        e[_IFX + (6,) + i] = Slot(IN_OCTETS, pos, 64)
        e[_IFX + (7,) + i] = Slot(IN_UCAST, pos, 64)
        e[_IFX + (10,) + i] = Slot(OUT_OCTETS, pos, 64)
        e[_IFX + (11,) + i] = Slot(OUT_UCAST, pos, 64)
        e[_IFX + (15,) + i] = _int(port.speed_mbps, ber.GAUGE32)
        e[_IFX + (18,) + i] = Slot(IF_ALIAS, pos)

    recorded = _recording(model.recording) if model.recording else {}
    provided = {prefix for prefix in _RECORDED if any(o[: len(prefix)] == prefix for o in recorded)}
    for oid, value in recorded.items():
        if oid[: len(_ENT) + 1] == _ENT + (11,) and value[:1] == b"\x04":
            e[oid] = Slot(SERIAL, text=value.decode("latin-1"))
        else:
            e[oid] = value
    if (1, 3, 6, 1, 2, 1, 25, 3) not in provided:
        for cpu in range(2 if role in ("switch", "ap") else 4):
            e[_HR + (3, 3, 1, 2, 196608 + cpu)] = Slot(CPU_LOAD, cpu)
    if (1, 3, 6, 1, 2, 1, 25, 2) not in provided:
        ram_kib = {"ap": 524288, "switch": 2097152}.get(role, 8388608)
        entry = _HR + (2, 3, 1)
        e[entry + (1, 1)] = _int(1)
        e[entry + (2, 1)] = _oid_value("1.3.6.1.2.1.25.2.1.2")  # hrStorageRam
        e[entry + (3, 1)] = _str("Physical memory")
        e[entry + (4, 1)] = _int(1024)
        e[entry + (5, 1)] = _int(ram_kib)
        e[entry + (6, 1)] = Slot(MEM_USED, bits=ram_kib)
    if (1, 3, 6, 1, 2, 1, 47) not in provided:
        e[_ENT + (2, 1)] = _str(model.model or model.name)
        e[_ENT + (5, 1)] = _int(3)  # chassis
        e[_ENT + (7, 1)] = _str("Chassis")
        e[_ENT + (11, 1)] = Slot(SERIAL, text="LAB")
        e[_ENT + (13, 1)] = _str(model.model)
        e[_ENT + (2, 2)] = _str("Chassis temperature sensor")
        e[_ENT + (5, 2)] = _int(8)  # sensor
        e[_ENT + (7, 2)] = _str("Temperature Sensor 1")
    if (1, 3, 6, 1, 2, 1, 99) not in provided:
        e[_ENT_SENSOR + (1, 2)] = _int(8)  # celsius
        e[_ENT_SENSOR + (2, 2)] = _int(9)  # units
        e[_ENT_SENSOR + (3, 2)] = _int(0)
        e[_ENT_SENSOR + (4, 2)] = Slot(TEMPERATURE)
        e[_ENT_SENSOR + (5, 2)] = _int(1)  # ok
    if model.poe and (1, 3, 6, 1, 2, 1, 105) not in provided:
        e[_PETH_MAIN + (2, 1)] = _int(model.poe, ber.GAUGE32)
        e[_PETH_MAIN + (3, 1)] = _int(1)  # on
        e[_PETH_MAIN + (4, 1)] = Slot(POE_USED)
        for pos, port in enumerate(ports):
            if port.kind == "access":
                e[_PETH_PORT + (3, 1, port.index)] = _int(1)  # admin enable: true
                e[_PETH_PORT + (6, 1, port.index)] = Slot(POE_PORT, pos)
    if lldp:
        uplinks = [
            pos
            for pos, p in enumerate(ports)
            if p.kind in ("uplink", "lan", "wan") and p.if_type == 6
        ] or [0]
        pos = uplinks[-1] if role != "ap" else 0
        template.lldp_port = pos
        row = (0, ports[pos].index, 1)
        e[_LLDP_REM + (4,) + row] = _int(4)  # chassis id subtype: macAddress
        e[_LLDP_REM + (5,) + row] = Slot(LLDP_CHASSIS, pos)
        e[_LLDP_REM + (6,) + row] = _int(5)  # port id subtype: interfaceName
        e[_LLDP_REM + (7,) + row] = Slot(LLDP_PORT, pos)
        e[_LLDP_REM + (9,) + row] = Slot(LLDP_NAME, pos)
    template.freeze(e)
    return template


# --- recordings (the optional `lab` extra: snmpsim-data) ---------------------------------------


def recordings_root() -> Path | None:
    try:
        import snmpsim_data  # type: ignore[import-not-found]
    except ImportError:
        return None
    return Path(snmpsim_data.__file__).parent / "data"


_TAGS = {
    "2": ber.INTEGER,
    "4": ber.OCTET_STRING,
    "5": ber.NULL,
    "6": ber.OID,
    "64": ber.IP_ADDRESS,
    "65": ber.COUNTER32,
    "66": ber.GAUGE32,
    "67": ber.TIMETICKS,
    "68": ber.OPAQUE,
    "70": ber.COUNTER64,
}


@functools.lru_cache(maxsize=32)
def _recording(relative: str) -> dict[OID, bytes]:
    """The recorded vendor and entity subtrees of a walk, BER-encoded, with tables bigger than a
    school's (a controller's list of thousands of clients) thinned to their first rows. Parsed
    once and cached on disk: the biggest walks have over half a million lines."""
    root = recordings_root()
    if root is None or not (root / relative).exists():
        return {}
    source = root / relative
    stat = source.stat()
    cache = _cache_dir() / (
        hashlib.sha1(
            f"{_CACHE_VERSION}:{source}:{stat.st_size}:{stat.st_mtime_ns}".encode()
        ).hexdigest()
        + ".pickle"
    )
    try:
        with open(cache, "rb") as f:
            return pickle.load(f)
    except (OSError, pickle.PickleError, EOFError):
        pass
    records = _parse_recording(source)
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_suffix(f".{os.getpid()}.tmp")
        with open(tmp, "wb") as f:
            pickle.dump(records, f, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, cache)
    except OSError:
        pass  # a read-only home only costs the parse next time
    return records


_CACHE_VERSION = 2  # bumped when _parse_recording changes what it keeps


def _cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "schoolnet-monitor" / "lab"


def _parse_recording(source: Path) -> dict[OID, bytes]:
    raw = source.read_bytes()
    if source.suffix == ".bz2":
        raw = bz2.decompress(raw)
    prefixes = tuple(".".join(map(str, p)) + "." for p in _RECORDED)
    kept: list[tuple[list[str], str]] = []
    for line in raw.decode("latin-1").splitlines():
        if not line.startswith(prefixes):
            continue
        oid_text, sep, rest = line.partition("|")
        if sep:
            kept.append((oid_text.split("."), rest))
    records: dict[OID, bytes] = {}
    for arcs, rest in _thin(kept, 7):
        tag_text, sep, value = rest.partition("|")
        tag = _TAGS.get(tag_text.rstrip("x"))
        if not sep or tag is None:  # variation modules and exotic types: not static
            continue
        try:
            oid = tuple(int(x) for x in arcs)
            records[oid] = _encode_recorded(tag, value, tag_text.endswith("x"))
        except (ValueError, ber.BerError):
            continue  # anonymised or malformed values (e.g. "346288XXYYZZ")
    return records


Lines = list[tuple[list[str], str]]


def _thin(lines: Lines, depth: int, entry: bool = False) -> Lines:
    """Lines of a sorted walk below one OID prefix of `depth` arcs, with tables bigger than a
    school's (a controller's thousands of clients) thinned to their first _KEEP_ROWS rows.

    SMI tables are `table.1.column.index`. A subtree of more than _BIG_TABLE records is split by
    its next arc; a node whose only child is `1`, with columns below that share their indexes, is
    a table: every column keeps the rows its first column lists first, so no column goes missing
    and rows stay whole. A node of very many children is a one-column table: its first rows are
    kept. Anything else is split further, and kept whole where it is no table."""
    if len(lines) <= _BIG_TABLE:
        return lines
    children: dict[str, Lines] = {}
    out: Lines = []
    for line in lines:
        if len(line[0]) > depth:
            children.setdefault(line[0][depth], []).append(line)
        else:
            out.append(line)
    groups = list(children.values())
    if entry:
        keep: set[tuple[str, ...]] = set()
        for arcs, _ in groups[0]:
            if len(keep) >= _KEEP_ROWS:
                break
            keep.add(tuple(arcs[depth + 1 :]))
        out.extend(line for line in lines if tuple(line[0][depth + 1 :]) in keep)
        return out
    if list(children) == ["1"] and _columns_share_rows(groups[0], depth + 1):
        return out + _thin(groups[0], depth + 1, entry=True)
    if len(groups) > _KEEP_ROWS and len(lines) < 4 * len(groups):  # rows of a one-column table
        for rows in groups[:_KEEP_ROWS]:
            out.extend(rows)
        return out
    for group in groups:
        out.extend(_thin(group, depth + 1))
    return out


def _columns_share_rows(lines: Lines, depth: int) -> bool:
    """Whether the first two subtrees at arc `depth` (an entry's first columns) hold mostly the
    same index tails: columns of one table do, a MIB's branches side by side do not."""
    tails: dict[str, set[tuple[str, ...]]] = {}
    for arcs, _ in lines:
        if len(arcs) > depth:
            if arcs[depth] not in tails and len(tails) == 2:
                break
            tails.setdefault(arcs[depth], set()).add(tuple(arcs[depth + 1 :]))
    sets = list(tails.values())  # one subtree alone is no proof: it may be the entry's parent
    both = sets[0] | sets[1] if len(sets) == 2 else set()
    if not both or () in both:  # leaves are rows, not columns
        return False
    if all(tail[0] == "1" for tail in both):  # tables side by side: `1` is their entry arc
        return False
    if len(sets[0]) <= _KEEP_ROWS:  # nothing to thin (and scalar groups look alike)
        return False
    return len(sets[0] & sets[1]) * 2 > len(both)


def _encode_recorded(tag: int, value: str, hexed: bool) -> bytes:
    if tag in (ber.OCTET_STRING, ber.OPAQUE):
        data = bytes.fromhex(value) if hexed else value.encode("latin-1")
        return ber.tlv(tag, data)
    if tag == ber.IP_ADDRESS:
        data = bytes.fromhex(value) if hexed else bytes(int(x) for x in value.split("."))
        return ber.tlv(tag, data)
    if tag == ber.OID:
        return ber.oid(tuple(int(x) for x in value.split(".")))
    if tag == ber.NULL:
        return ber.NULL_VALUE
    number = int(value, 16) if hexed else int(value)
    return ber.integer(number, tag)


# --- devices ---------------------------------------------------------------------------------


def _seeded(seed: str) -> random.Random:
    return random.Random(hashlib.sha256(seed.encode()).digest())


@dataclass
class V3User:
    name: str
    level: str
    auth: str
    auth_password: str
    priv: str
    priv_password: str


class Device:
    """One simulated device: a template plus everything that makes it this device."""

    def __init__(
        self,
        target: Target,
        template: Template,
        school_name: str,
        parent: str | None,
        link_bandwidth: float | None,
        day_seconds: float,
        now: float | None = None,
    ) -> None:
        self.target = target
        self.template = template
        self.day_seconds = day_seconds
        self.parent = parent
        seed = "/".join(target.key)
        rnd = _seeded(seed)
        now = time.time() if now is None else now
        self.boot = now - rnd.uniform(2 * 86400, 120 * 86400)
        self.engine_boots = 1
        self.engine_id = (
            bytes.fromhex("80001f8804") + b"lab-" + hashlib.sha1(seed.encode()).digest()[:8]
        )
        self.down = False
        self.loss = 0.0  # share of requests dropped (`monitor lab degrade`)
        self.identity = {
            SYS_DESCR: _str(template.model.sys_descr.format(name=target.id)),
            SYS_NAME: _str(target.id),
            SYS_LOCATION: _str(f"{school_name}, {target.school}"),
            SYS_CONTACT: _str("servicedesk@kien.example"),
        }
        self.mac_base = bytes(
            (0x02, rnd.randrange(256), rnd.randrange(256), rnd.randrange(256), 0, 0)
        )
        ports = template.ports
        self.oper = []
        self.flows_in: list[Flow | None] = []
        self.flows_out: list[Flow | None] = []
        self.errors: list[Ticks | None] = []
        self.discards: list[Ticks | None] = []
        self.poe_on: list[bool] = []
        self.offsets: dict[tuple[int, int], float] = {}
        for pos, port in enumerate(ports):
            up = True
            if port.kind == "access":
                up = rnd.random() < 0.7
            elif port.kind == "lan":
                up = rnd.random() < 0.5
            elif port.kind == "uplink" and pos > 0:
                up = rnd.random() < 0.6
            self.oper.append(up)
            bps = _peak_bits(port, link_bandwidth, rnd) if up else 0.0
            fin = flow_for(f"{seed}/{pos}/in", bps / 8) if bps else None
            fout = flow_for(f"{seed}/{pos}/out", bps / 8 * _asymmetry(port)) if bps else None
            self.flows_in.append(fin)
            self.flows_out.append(fout)
            flaky = up and port.kind == "access" and rnd.random() < 0.1
            self.errors.append(
                Ticks(rnd.uniform(30, 180), rnd.randrange(1 << 30)) if flaky else None
            )
            self.discards.append(
                Ticks(rnd.uniform(120, 600), rnd.randrange(1 << 30))
                if up and port.kind in ("uplink", "wan")
                else None
            )
            self.poe_on.append(up and port.kind == "access" and rnd.random() < 0.6)
        self.load: float | None = None
        self.cpu_base = rnd.uniform(3, 20)
        self.temp_base = rnd.uniform(34, 46)
        self.v3_users: dict[bytes, V3User] = {}
        self.communities: dict[int, set[bytes]] = {0: set(), 1: set()}

    # -- lab controls --
    def set_load(self, utilisation: float | None, bandwidth: float | None, now: float) -> None:
        """Make the WAN port carry `utilisation` of the link's bandwidth (bytes per second, as in
        the config model), flat; None goes back to the school day."""
        for pos, port in enumerate(self.template.ports):
            if port.kind != "wan" or not self.oper[pos]:
                continue
            t = now - self.boot
            for direction, flows in ((0, self.flows_in), (1, self.flows_out)):
                old = flows[pos]
                before = self.offsets.get((pos, direction), 0.0) + (
                    old.total(t, self.day_seconds) if old else 0.0
                )
                if utilisation is None:
                    new = flow_for(
                        f"{'/'.join(self.target.key)}/{pos}/{direction}",
                        (bandwidth or 1.25e7) * 0.65 * (0.2 if direction else 1.0),
                    )
                else:
                    share = utilisation if direction == 0 else utilisation * 0.2
                    new = _FlatFlow((bandwidth or 1.25e7) * share)
                flows[pos] = new
                self.offsets[(pos, direction)] = before - new.total(t, self.day_seconds)
        self.load = utilisation

    def reboot(self, now: float) -> None:
        self.boot = now
        self.engine_boots += 1
        self.offsets.clear()

    # -- values --
    def uptime(self, now: float) -> float:
        return now - self.boot

    def value(self, position: int, now: float) -> bytes:
        value = self.template.values[position]
        if isinstance(value, bytes):
            return value
        return self.slot(value, now)

    def slot(self, s: Slot, now: float) -> bytes:
        kind = s.kind
        t = now - self.boot
        if kind <= SYS_CONTACT and kind != UPTIME:
            return self.identity[kind]
        if kind == UPTIME:
            return ber.integer(int(t * 100) & 0xFFFFFFFF, ber.TIMETICKS)
        pos = s.port
        if kind in (IN_OCTETS, OUT_OCTETS, IN_UCAST, OUT_UCAST):
            direction = 0 if kind in (IN_OCTETS, IN_UCAST) else 1
            flow = (self.flows_in if direction == 0 else self.flows_out)[pos]
            total = self.offsets.get((pos, direction), 0.0)
            if flow is not None:
                total += flow.total(t, self.day_seconds)
            count = int(total) if kind in (IN_OCTETS, OUT_OCTETS) else int(total / 700)
            if s.bits == 32:
                return ber.integer(count & 0xFFFFFFFF, ber.COUNTER32)
            return ber.integer(count & 0xFFFFFFFFFFFFFFFF, ber.COUNTER64)
        if kind in (IN_ERRORS, OUT_ERRORS):
            ticks = self.errors[pos]
            count = ticks.total(t) // (1 if kind == IN_ERRORS else 3) if ticks else 0
            return ber.integer(count & 0xFFFFFFFF, ber.COUNTER32)
        if kind in (IN_DISCARDS, OUT_DISCARDS):
            ticks = self.discards[pos]
            count = ticks.total(t) if ticks and kind == OUT_DISCARDS else 0
            return ber.integer(count & 0xFFFFFFFF, ber.COUNTER32)
        if kind == IF_OPER:
            return ber.integer(1 if self.oper[pos] else 2)
        if kind == IF_ADMIN:
            port = self.template.ports[pos]
            return ber.integer(1 if self.oper[pos] or port.kind == "access" else 2)
        if kind == IF_PHYS:
            return _str(self.mac_base[:4] + pos.to_bytes(2, "big"))
        if kind == IF_LAST_CHANGE:
            return ber.integer(min(int(t * 100) & 0xFFFFFFFF, 360000), ber.TIMETICKS)
        if kind == IF_ALIAS:
            port = self.template.ports[pos]
            alias = {
                "wan": "internet uplink",
                "uplink": f"uplink {self.parent}"
                if self.parent and pos == self.template.lldp_port
                else "",
            }.get(port.kind, "")
            return _str(alias)
        if kind == CPU_LOAD:
            busy = self._busy(now)
            return ber.integer(int(min(99, self.cpu_base + 35 * busy + 3 * (pos % 2))))
        if kind == MEM_USED:
            return ber.integer(int(s.bits * (0.45 + 0.2 * self._busy(now))))
        if kind == TEMPERATURE:
            return ber.integer(int(self.temp_base + 8 * self._busy(now)))
        if kind == POE_USED:
            watts = sum(self.poe_on) * (7.5 + 5 * self._busy(now))
            return ber.integer(int(min(watts, self.template.model.poe)), ber.GAUGE32)
        if kind == POE_PORT:
            return ber.integer(3 if self.poe_on[pos] else 2)  # deliveringPower | searching
        if kind == SERIAL:
            serial = (
                f"{s.text[:8]}{hashlib.sha1('/'.join(self.target.key).encode()).hexdigest()[:6]}"
            )
            return _str(serial.upper())
        if kind == LLDP_NAME:
            return _str(self.parent or "")
        if kind == LLDP_PORT:
            return _str(f"port-{self.target.id}")
        if kind == LLDP_CHASSIS:
            return _str(hashlib.sha1((self.parent or "").encode()).digest()[:6])
        raise ValueError(f"unknown slot {kind}")

    def _busy(self, now: float) -> float:
        from monitor.lab.traffic import day_fraction

        return day_fraction(now - self.boot, self.day_seconds)


@dataclass(frozen=True)
class _FlatFlow:
    """A constant rate (for `monitor lab load`)."""

    per_second: float

    def total(self, t: float, day_seconds: float) -> float:
        return self.per_second * t


def _asymmetry(port: Port) -> float:
    """Schools download far more than they upload; switch ports see it the other way round."""
    return {"wan": 0.2, "lan": 5.0, "access": 4.0, "radio": 3.0}.get(port.kind, 1.0)


def _peak_bits(port: Port, link_bandwidth: float | None, rnd: random.Random) -> float:
    speed = port.speed_mbps * 1e6
    if port.kind == "wan":
        return (link_bandwidth * 8 if link_bandwidth else speed) * rnd.uniform(0.55, 0.75)
    if port.kind == "lan":
        return min(speed, (link_bandwidth or speed / 8) * 8 * rnd.uniform(0.1, 0.4))
    if port.kind == "access":
        return speed * rnd.uniform(0.002, 0.05)
    if port.kind == "radio":
        return speed * rnd.uniform(0.01, 0.08)
    if port.kind == "uplink":
        return speed * rnd.uniform(0.05, 0.3)
    return speed * rnd.uniform(0.0005, 0.002)
