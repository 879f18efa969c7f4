"""An independent reader of snmpsim .snmprec recordings, for test expectations.

Format: `OID|TYPE|VALUE` per line; TYPE is the BER tag number (2 Integer, 4 OctetString, 6 OID,
64 IpAddress, 65 Counter32, 66 Gauge32, 67 TimeTicks, 70 Counter64), with an `x` suffix when the
value is hex, and possibly a `:module` suffix naming a variation module that computes the value when
asked; such records are read as `Variation`, not as a value.
"""

from __future__ import annotations

import bz2
from dataclasses import dataclass
from pathlib import Path

OID = tuple[int, ...]


@dataclass(frozen=True)
class Variation:
    """A record whose value snmpsim computes when asked (`TYPE:module|parameters`)."""

    module: str
    parameters: str


def read(path: Path) -> dict[OID, tuple[int, object]]:
    raw = bz2.decompress(path.read_bytes()) if path.suffix == ".bz2" else path.read_bytes()
    records: dict[OID, tuple[int, object]] = {}
    for line in raw.decode("latin-1").splitlines():
        parts = line.split("|", 2)
        if len(parts) != 3 or not parts[0][:1].isdigit():
            continue
        oid_text, tag_text, value = parts
        tag_text, _, module = tag_text.partition(":")
        hexed = tag_text.endswith("x")
        tag = int(tag_text.rstrip("x") or 0)
        oid = tuple(int(x) for x in oid_text.split("."))
        if module:  # a variation module computes the value at run time (e.g. a moving sysUpTime)
            records[oid] = (int(tag_text.rstrip("x") or 0), Variation(module, value))
            continue
        if tag in (4, 64):
            try:
                data = bytes.fromhex(value) if hexed else value.encode("latin-1")
            except ValueError:  # LibreNMS anonymisation like 346288XXYYZZ: not servable either
                continue
            if tag == 64 and not hexed and value.count(".") == 3:  # else 4 raw octets as text
                data = bytes(int(x) for x in value.split("."))
            records[oid] = (tag, data)
        elif tag == 6:
            records[oid] = (tag, value)
        elif tag in (2, 65, 66, 67, 70):
            records[oid] = (tag, int(value) if not hexed else int(value, 16))
        else:
            records[oid] = (tag, value)
    return records


def column(records: dict[OID, tuple[int, object]], prefix: OID) -> dict[int, object]:
    """{ifIndex: value} for a column of a single-index table."""
    n = len(prefix)
    return {
        oid[n]: value
        for oid, (_tag, value) in records.items()
        if oid[:n] == prefix and len(oid) == n + 1
    }
