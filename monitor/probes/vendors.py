"""Vendor of a device from the enterprise number in its sysObjectID (IANA Private Enterprise
Numbers). A first approximation until device profiles identify vendor and model from data."""

from __future__ import annotations

_ENTERPRISES = (1, 3, 6, 1, 4, 1)
ENTERPRISE_VENDORS: dict[int, str] = {
    9: "cisco",
    11: "hpe",  # HP ProCurve / Aruba switches (hpSwitch)
    25506: "hpe",  # H3C / Comware
    14823: "aruba",
    47196: "aruba",  # Aruba CX
    2636: "juniper",
    4526: "netgear",
    890: "zyxel",
    41112: "ubiquiti",
    4413: "ubiquiti",  # EdgeSwitch (Broadcom FASTPATH base)
    25053: "ruckus",
    14988: "mikrotik",
    12356: "fortinet",
    2011: "huawei",
    1991: "brocade",
    674: "dell",
}


def vendor_of(sys_object_id: str) -> str:
    parts = sys_object_id.split(".")
    prefix = ".".join(map(str, _ENTERPRISES)) + "."
    if not sys_object_id.startswith(prefix) or len(parts) <= len(_ENTERPRISES):
        return "unknown"
    try:
        number = int(parts[len(_ENTERPRISES)])
    except ValueError:
        return "unknown"
    return ENTERPRISE_VENDORS.get(number, "unknown")
