"""The probe kinds the collector runs. A new kind (DNS, TCP, HTTP, ...) is one module that
implements monitor/probes/base.Probe, plus one entry here: a function from the device profiles
(for the kinds that read them) to a new probe."""

from __future__ import annotations

from collections.abc import Callable

from monitor.probes.base import Probe
from monitor.probes.icmp import IcmpProbe
from monitor.probes.snmp.poll import SnmpProber
from monitor.profiles import Registry

KINDS: tuple[Callable[[Registry | None], Probe], ...] = (
    lambda profiles: IcmpProbe(),
    lambda profiles: SnmpProber(profiles=profiles),
)


def create_probes(profiles: Registry | None = None) -> list[Probe]:
    """One instance of every registered kind, for one collector."""
    return [make(profiles) for make in KINDS]
