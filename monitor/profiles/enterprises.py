"""The vendor of a device from the IANA enterprise number in its sysObjectID.

A device whose model no profile knows is still some vendor's: its sysObjectID sits under
1.3.6.1.4.1.<number>, the vendor's Private Enterprise Number. `enterprises.yaml` beside the
profiles maps the numbers schools meet to the vendor names the profiles use, so such a device is
polled with the generic profile and reported as `vendor="aruba"` rather than `"unknown"`. The table
is read with the profiles' line-aware reader: a problem is `FILE:LINE:COL: key.path: message`.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

from monitor.profiles.schema import _NAME, OID, ProfileError, _Ctx, _keys, _read, _Rejected

ENTERPRISES_FILE = Path(__file__).with_name("enterprises.yaml")
PREFIX = (1, 3, 6, 1, 4, 1)  # iso.org.dod.internet.private.enterprises
_ENTRY_KEYS = {"vendor", "registrant", "source"}


@dataclass(frozen=True)
class Enterprise:
    number: int
    vendor: str
    registrant: str
    source: str  # how the number was verified (a MIB, a recording)


def load_enterprises(path: Path = ENTERPRISES_FILE) -> dict[int, Enterprise]:
    """The table at `path`, validated completely. Raises ProfileError with every problem."""
    ctx, data = _read(path)
    table: dict[int, Enterprise] = {}
    if data is not None:
        try:
            _keys(ctx, "", data, {"enterprises"}, {"enterprises"})
            raw = data["enterprises"]
            entries = _keys(ctx, "enterprises", raw, set(raw) if isinstance(raw, dict) else set())
        except _Rejected:
            entries = {}
        for number, entry in entries.items():
            found = ctx.attempt(_entry, ctx, number, entry)
            if found is not None:
                table[found.number] = found
    if ctx.problems:
        raise ProfileError(ctx.problems)
    return table


def _entry(ctx: _Ctx, number: object, entry: object) -> Enterprise:
    where = f"enterprises.{number}"
    if isinstance(number, bool) or not isinstance(number, int) or number <= 0:
        raise ctx.fail(where, f"expected an enterprise number (a positive integer), got {number!r}")
    _keys(ctx, where, entry, _ENTRY_KEYS, _ENTRY_KEYS)
    assert isinstance(entry, dict)
    vendor = entry["vendor"]
    if not isinstance(vendor, str) or not _NAME.match(vendor) or vendor == "unknown":
        raise ctx.fail(f"{where}.vendor", f"expected a lowercase vendor name, got {vendor!r}")
    for key in ("registrant", "source"):
        if not isinstance(entry[key], str) or not entry[key].strip():
            raise ctx.fail(f"{where}.{key}", "expected text")
    return Enterprise(number, vendor, entry["registrant"], entry["source"])


@functools.cache
def enterprises() -> dict[int, Enterprise]:
    """The shipped table, loaded and validated once per process (on first use)."""
    return load_enterprises()


def enterprise_vendor(sys_object_id: OID | None) -> str | None:
    """The vendor whose enterprise number `sys_object_id` is under, or None (not under
    1.3.6.1.4.1, or a number the table does not know)."""
    if not sys_object_id or len(sys_object_id) <= len(PREFIX):
        return None
    if tuple(sys_object_id[: len(PREFIX)]) != PREFIX:
        return None
    entry = enterprises().get(sys_object_id[len(PREFIX)])
    return entry.vendor if entry else None
