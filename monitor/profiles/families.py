"""The metric families profiles may fill: the contract of docs/metrics.md.

A profile names one of these for each metric it reads; the family fixes the help text and the label
names (every series of a family carries all of them, empty where a device does not tell), so
dashboards and rules see one label set whatever the vendor. A new family is a change of the
contract: add it here and to docs/metrics.md.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Family:
    name: str
    help: str
    labels: tuple[str, ...] = ()


FAMILIES: dict[str, Family] = {
    f.name: f
    for f in (
        Family(
            "schoolnet_device_cpu_usage_ratio",
            "CPU utilisation 0..1 (one series per CPU or core where the device has several).",
            ("cpu",),
        ),
        Family(
            "schoolnet_device_memory_usage_ratio",
            "Memory in use 0..1 (per memory pool where the device has several).",
            ("pool",),
        ),
        Family(
            "schoolnet_device_memory_used_bytes", "Memory in use in bytes, per pool.", ("pool",)
        ),
        Family("schoolnet_device_memory_total_bytes", "Memory size in bytes, per pool.", ("pool",)),
        Family(
            "schoolnet_device_temperature_celsius",
            "Temperature reported by a sensor of the device.",
            ("sensor",),
        ),
        Family("schoolnet_device_fan_up", "1 if the fan works, 0 if it failed.", ("fan",)),
        Family("schoolnet_device_psu_up", "1 if the power supply works, 0 if it failed.", ("psu",)),
        Family(
            "schoolnet_device_poe_power_watts",
            "Power delivered over Power-over-Ethernet, per power sourcing equipment (PSE).",
            ("pse",),
        ),
        Family(
            "schoolnet_device_poe_budget_watts",
            "Power-over-Ethernet budget (nominal power) per power sourcing equipment (PSE).",
            ("pse",),
        ),
        Family(
            "schoolnet_interface_poe_delivering",
            "1 if the port delivers Power-over-Ethernet, 0 if it does not.",
            ("interface",),
        ),
        Family(
            "schoolnet_wireless_clients",
            "Associated wireless clients; one breakdown per device (by AP, radio and/or SSID), "
            "so sum() over a target is its total.",
            ("ap", "radio", "ssid"),
        ),
        Family(
            "schoolnet_wireless_ap_up",
            "1 if the controller sees the access point up, else 0.",
            ("ap",),
        ),
        Family("schoolnet_wireless_aps", "Access points the controller knows."),
        Family(
            "schoolnet_lldp_neighbor_info",
            "A neighbour seen by LLDP on a local interface (always 1).",
            ("interface", "neighbor", "neighbor_port"),
        ),
    )
}
