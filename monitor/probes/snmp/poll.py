"""One SNMP poll of a device: the system group, the interface tables and its profile's health
values; the SNMP probe kind of the scheduler (monitor/probes/base.py).

The device profile (monitor/profiles) is matched on the first poll and whenever sysObjectID,
sysDescr or the target's `vendor:` change. A device polled before whose profile is known gets the
system group and the profile's scalars as non-repeaters in the first GETBULK of its walk; a new
one, a GETNEXT device or an agent that objects gets them in one GET first. Either way the answer
goes through one identification (`_identify`). The profile's columns join the interface walk, and
label columns of other tables are fetched with one batched GET. An OID the device does not
implement (empty walk, noSuchObject, noSuchInstance, endOfMibView) is remembered per device and
asked again only every RECHECK_POLLS polls or after a reboot (interfaces.uptime_dropped: the one
rule, which knows sysUpTime's 32-bit wrap).
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

from monitor.config.model import SnmpSettings, Target
from monitor.probes.base import Key, LogLine, Result, Statistic, up_or_down
from monitor.probes.snmp.interfaces import (
    COUNTER64_COLUMNS,
    INTERFACE_COLUMNS,
    CounterUnwrapper,
    build_interfaces,
    uptime_dropped,
)
from monitor.probes.snmp.transport import OID, Endpoint, SnmpClient, SnmpError, SnmpStatusError
from monitor.probes.snmp.walk import Walker
from monitor.profiles import (
    Data,
    Probe,
    Profile,
    Registry,
    device_vendor,
    evaluate,
    lookup_keys,
    model_text,
    registry,
)
from monitor.profiles.values import decode_text
from monitor.results import SnmpPoll

log = logging.getLogger(__name__)

SYS_DESCR = (1, 3, 6, 1, 2, 1, 1, 1, 0)
SYS_OBJECT_ID = (1, 3, 6, 1, 2, 1, 1, 2, 0)
SYS_UPTIME = (1, 3, 6, 1, 2, 1, 1, 3, 0)
SYS_NAME = (1, 3, 6, 1, 2, 1, 1, 5, 0)
SYSTEM = [SYS_DESCR, SYS_OBJECT_ID, SYS_UPTIME, SYS_NAME]

RECHECK_POLLS = 10  # an OID a device lacks is asked again every this many polls
_MODEL_ROWS = 5  # rows of a model column read to find a non-empty value


@dataclass
class DeviceState:
    """What the prober remembers about one device between polls: its profile and model (matched
    again when sysObjectID, sysDescr or the target's `vendor:` change), and the OIDs it lacks."""

    match_key: tuple
    profile: Profile
    model: str = ""
    polls: int = 0
    last_poll: float | None = None  # wall clock
    last_uptime: float | None = None  # seconds
    absent: dict[OID, int] = field(default_factory=dict)  # OID -> poll at which to ask again

    def wants(self, oid: OID) -> bool:
        again = self.absent.get(oid)
        return again is None or self.polls >= again

    def asked(self, oid: OID, present: bool) -> None:
        if present:
            self.absent.pop(oid, None)
        else:
            self.absent[oid] = self.polls + RECHECK_POLLS


def _match_key(values: dict[OID, object], target: Target) -> tuple:
    object_id = values.get(SYS_OBJECT_ID)
    return (
        object_id if isinstance(object_id, tuple) else None,
        decode_text(values.get(SYS_DESCR)),
        target.vendor,
    )


def _uptime(values: dict[OID, object]) -> float | None:
    ticks = values.get(SYS_UPTIME)
    return ticks / 100.0 if isinstance(ticks, int) else None


class SnmpProber:
    """Polls devices; keeps per-device counter state and profile state between polls (forget it
    on removal)."""

    kind = SnmpPoll.KIND

    def __init__(self, client: SnmpClient | None = None, profiles: Registry | None = None) -> None:
        self.client = client or SnmpClient()
        self.profiles = profiles or registry()
        self._unwrappers: dict[Key, CounterUnwrapper] = {}
        self.devices: dict[Key, DeviceState] = {}
        self.requests = 0  # every GET, GETNEXT and GETBULK sent, not counting retries
        self.varbinds = 0  # received

    def close(self) -> None:
        self.client.close()

    def forget(self, key: Key) -> None:
        self._unwrappers.pop(key, None)
        self.devices.pop(key, None)

    def use_profiles(self, profiles: Registry) -> None:
        """New device profiles (a reload): every device is matched again on its next poll."""
        self.profiles = profiles
        self.devices.clear()

    # -- the probe kind (monitor/probes/base.py) --
    def start(self, targets: Iterable[Target]) -> None:
        """Nothing to open ahead: engines and sockets come with the first request."""

    def settings(self, target: Target) -> SnmpSettings | None:
        return target.snmp

    async def run(self, target: Target, address: str) -> SnmpPoll:
        return await self.poll(target, address)

    def failed(self, target: Target, started: float, error: str) -> SnmpPoll:
        return SnmpPoll(started, False, 0.0, error=error)

    def after(self, previous: Result | None, result: Result) -> Result:
        return result

    def changes(self, target: Target, before: Result | None, result: Result) -> LogLine | None:
        assert isinstance(result, SnmpPoll)
        fields = {"interfaces": len(result.interfaces)} if result.ok else {}
        return up_or_down(target, before, result, "snmp up", "snmp poll failed", **fields)

    def statistics(self) -> list[Statistic]:
        received = self.client.received
        decoded_help = (
            "SNMP responses decoded, by decoder: fastpath (our strict BER reader) or pyasn1 "
            "(what the fast path does not take: reports, SNMPv1, malformed varbinds)."
        )
        return [
            Statistic(
                "schoolnet_collector_snmp_requests_total",
                "counter",
                "SNMP requests sent (every GET, GETNEXT and GETBULK, not counting retries).",
                self.requests,
            ),
            Statistic(
                "schoolnet_collector_snmp_varbinds_total",
                "counter",
                "Variable bindings received in SNMP responses.",
                self.varbinds,
            ),
            Statistic(
                "schoolnet_collector_snmp_responses_decoded_total",
                "counter",
                decoded_help,
                received.fast,
                (("decoder", "fastpath"),),
            ),
            Statistic(
                "schoolnet_collector_snmp_responses_decoded_total",
                "counter",
                decoded_help,
                received.fallback,
                (("decoder", "pyasn1"),),
            ),
            *(
                Statistic(
                    "schoolnet_collector_snmp_datagrams_dropped_total",
                    "counter",
                    "Datagrams to the SNMP client socket dropped before decoding: unmatched (no "
                    "outstanding request with that id to that address and port), malformed.",
                    count,
                    (("reason", reason),),
                )
                for reason, count in (
                    ("unmatched", received.unmatched),
                    ("malformed", received.malformed),
                )
            ),
        ]

    # -- one poll --
    async def poll(self, target: Target, host: str) -> SnmpPoll:
        """Poll `target` at the resolved `host`. Never raises: a failed poll, device trouble or a
        bug of ours, is a result with ok=False and a reason that is safe to log (for a bug only
        the exception's type: its text may quote a credential), so the target keeps its
        schoolnet_snmp_up series."""
        try:
            return await self._poll(target, host)
        except Exception as exc:
            log.error(
                "snmp probe crashed",
                exc_info=exc,
                extra={"fields": {"target": "/".join(target.key)}},
            )
            error = f"internal error in the SNMP probe ({type(exc).__name__}); see the log"
            return SnmpPoll(time.time(), False, 0.0, error=error)

    async def _poll(self, target: Target, host: str) -> SnmpPoll:
        settings = target.snmp
        assert settings is not None
        started, clock = time.time(), time.monotonic()
        endpoint = Endpoint(host, target.snmp_port, settings.timeout, settings.retries)
        walker = Walker(self.client, endpoint, target)
        columns = INTERFACE_COLUMNS
        if walker.auth.version == "1":
            columns = [c for c in columns if c not in COUNTER64_COLUMNS]
        try:
            device, system, scalars, table = await self._system_and_table(
                walker, target, columns, started
            )
        except SnmpError as exc:
            return self._counted(
                walker,
                SnmpPoll(started, False, time.monotonic() - clock, error=str(exc)),
            )
        uptime = _uptime(system)
        unwrapper = self._unwrappers.get(target.key)
        if unwrapper is None:
            unwrapper = self._unwrappers[target.key] = CounterUnwrapper(
                max_gap=max(3 * settings.interval, settings.interval + 60)
            )
        unwrapper.begin(started, uptime)
        interfaces = build_interfaces({c: table[c] for c in columns}, unwrapper)
        data = Data(
            scalars=scalars,
            table=table,
            interfaces={i.index: i.name for i in interfaces},
        )
        samples = await self._evaluate(walker, device, data)
        object_id = system.get(SYS_OBJECT_ID)
        object_id = ".".join(map(str, object_id)) if isinstance(object_id, tuple) else ""
        profile = device.profile
        return self._counted(
            walker,
            SnmpPoll(
                started=started,
                ok=True,
                duration=time.monotonic() - clock,
                uptime_seconds=uptime,
                sys_name=decode_text(system.get(SYS_NAME)),
                sys_descr=decode_text(system.get(SYS_DESCR)),
                sys_object_id=object_id,
                vendor=target.vendor or device_vendor(profile, system.get(SYS_OBJECT_ID)),
                model=device.model,
                profile=profile.name,
                interfaces=interfaces,
                samples=tuple(samples),
            ),
        )

    def _counted(self, walker: Walker, poll: SnmpPoll) -> SnmpPoll:
        self.requests += walker.requests
        self.varbinds += walker.varbinds
        return dataclasses.replace(poll, requests=walker.requests, varbinds=walker.varbinds)

    async def _system_and_table(
        self, walker: Walker, target: Target, columns: list[OID], now: float
    ) -> tuple[DeviceState, dict[OID, object], dict[OID, object], dict[OID, dict]]:
        """The device (identified), its system group, its profile's scalars and the walked table.

        A known device with a GETBULK profile gets the system group and the profile's scalars as
        non-repeaters in the walk's first GETBULK, saving a GET per poll; otherwise (first poll,
        GETNEXT, an agent that objects) they come in one GET before the walk. A device whose
        identity changed is walked again with its new profile's columns."""
        known = self.devices.get(target.key)
        extra = [o for o in known.profile.scalars if known.wants(o)] if known else []
        table: dict[OID, dict] | None = None
        if known is not None and walker.bulk and known.profile.bulk:
            wanted = [c for c in known.profile.columns if known.wants(c) and c not in columns]
            try:
                table = await walker.walk(columns + wanted, scalars=SYSTEM + extra)
                values = dict(walker.found)
            except SnmpStatusError:
                table = None
        if table is None:
            values = await walker.get(SYSTEM + extra)
        device = await self._identify(walker, target, known, values, extra, now)
        if table is not None and device is known:
            for column in wanted:
                device.asked(column, bool(table.get(column)))
        else:
            walker.bulk = walker.bulk and bool(device.profile.bulk)
            wanted = [c for c in device.profile.columns if device.wants(c) and c not in columns]
            try:
                table = await walker.walk(columns + wanted)
            except SnmpStatusError:
                if not wanted:
                    raise
                # an agent that chokes on a vendor column still gets its interfaces polled
                table = await walker.walk(columns)
                table.update({c: {} for c in wanted})
            for column in wanted:
                device.asked(column, bool(table.get(column)))
        scalars = {oid: values[oid] for oid in device.profile.scalars if oid in values}
        return device, values, scalars, table

    async def _identify(
        self,
        walker: Walker,
        target: Target,
        known: DeviceState | None,
        values: dict[OID, object],
        extra: list[OID],
        now: float,
    ) -> DeviceState:
        """The one identification of a poll's system group (`values`, updated in place with the
        profile's scalars): the known device if its identity is unchanged, else a new match."""
        if not any(oid in values for oid in SYSTEM):
            raise SnmpError("agent answered but has none of the system group")
        match_key = _match_key(values, target)
        uptime = _uptime(values)
        if known is None or known.match_key != match_key:
            device = await self._match(walker, target, match_key)
            missing = [o for o in device.profile.scalars if o not in values]
            if missing:
                values.update(await walker.get(missing))
            for oid in missing:
                device.asked(oid, oid in values)
            self.devices[target.key] = device
        else:
            device = known
            device.polls += 1
            for oid in extra:
                device.asked(oid, oid in values)
            rebooted = (
                uptime is not None
                and device.last_uptime is not None
                and device.last_poll is not None
                and uptime_dropped(device.last_uptime, uptime, now - device.last_poll)
            )
            if rebooted:  # new firmware may implement what the old one lacked
                device.absent.clear()
                device.model = await self._model(walker, device.profile, match_key[1])
        device.last_uptime = uptime
        device.last_poll = now
        return device

    async def _match(self, walker: Walker, target: Target, match_key: tuple) -> DeviceState:
        object_id, descr, vendor = match_key

        async def probe(rule: Probe) -> bool:
            try:
                found = await walker.get([rule.oid])
                values = [v for v in found.values() if decode_text(v)]
                values = values or await walker.first_values(rule.oid, 1)
            except SnmpError:
                return False
            if not values:
                return False
            return rule.regex is None or bool(rule.regex.search(decode_text(values[0])))

        profile = await self.profiles.select(object_id, descr, vendor, probe)
        log.debug("target %s: profile %s", "/".join(target.key), profile.name)
        return DeviceState(match_key, profile, await self._model(walker, profile, descr))

    async def _model(self, walker: Walker, profile: Profile, descr: str) -> str:
        """The model from the profile's sources, in order; an OID that is a column (not an
        instance) gives its first non-empty value."""
        for source in profile.model:
            if source.kind != "oid":
                text = model_text(source, descr)
            else:
                assert source.oid is not None
                try:
                    found = await walker.get([source.oid])
                    values = [v for v in found.values() if decode_text(v).strip()]
                    if not values:  # a column rather than an instance: its first rows
                        values = await walker.first_values(source.oid, _MODEL_ROWS)
                except SnmpError:
                    values = []
                text = next((t for t in map(decode_text, values) if t.strip()), "")
            text = " ".join(text.split())
            if text:
                return text
        return ""

    async def _evaluate(self, walker: Walker, device: DeviceState, data: Data) -> list:
        """Fetch the label columns of other tables for the rows that need them, then compute the
        samples. A failing look-up leaves labels to their fallbacks; it never fails the poll."""
        keys = [k for k in sorted(lookup_keys(device.profile, data)) if device.wants(k[0])]
        if keys:
            try:
                found = await walker.get_many([column + index for column, index in keys])
            except SnmpError:
                found = None
            if found is not None:
                present: dict[OID, bool] = {}
                lookups = {}
                for column, index in keys:
                    value = found.get(column + index)
                    present[column] = present.get(column, False) or value is not None
                    if value is not None:
                        lookups[(column, index)] = value
                for column, seen in present.items():
                    device.asked(column, seen)
                data.lookups = lookups
        return evaluate(device.profile, data)
