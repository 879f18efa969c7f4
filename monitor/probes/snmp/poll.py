"""One SNMP poll of a device: the system group, the interface tables and its profile's health
values.

Columns are walked together, several per GETBULK (GETNEXT on v1 or where a device's GETBULK is
broken), so a 48-port switch costs a handful of round trips. Counters are reported monotonic: the
32-bit ones (ifTable octets where a device has no ifXTable, errors, discards) are unfolded across
wraps with the previous poll, which Prometheus' rate() cannot do by itself.

The device profile (monitor/profiles) is matched on the first poll and whenever sysObjectID or
sysDescr change; its scalars ride along in the system-group GET, its columns join the interface
walk, and label columns of other tables are fetched with one batched GET. An OID the device does
not implement (empty walk, noSuchObject, noSuchInstance, endOfMibView) is remembered per device
and asked again only every RECHECK_POLLS polls or after a reboot.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

from monitor.config.model import Target
from monitor.probes.snmp_client import (
    END_OF_MIB,
    NO_SUCH,
    OID,
    Endpoint,
    SnmpClient,
    SnmpError,
    SnmpStatusError,
)
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
from monitor.results import Interface, SnmpPoll

log = logging.getLogger(__name__)

SYS_DESCR = (1, 3, 6, 1, 2, 1, 1, 1, 0)
SYS_OBJECT_ID = (1, 3, 6, 1, 2, 1, 1, 2, 0)
SYS_UPTIME = (1, 3, 6, 1, 2, 1, 1, 3, 0)
SYS_NAME = (1, 3, 6, 1, 2, 1, 1, 5, 0)
SYSTEM = [SYS_DESCR, SYS_OBJECT_ID, SYS_UPTIME, SYS_NAME]

_IF = (1, 3, 6, 1, 2, 1, 2, 2, 1)
_IFX = (1, 3, 6, 1, 2, 1, 31, 1, 1, 1)
IF_DESCR, IF_SPEED, IF_ADMIN, IF_OPER = _IF + (2,), _IF + (5,), _IF + (7,), _IF + (8,)
IF_IN_OCTETS, IF_IN_DISCARDS, IF_IN_ERRORS = _IF + (10,), _IF + (13,), _IF + (14,)
IF_OUT_OCTETS, IF_OUT_DISCARDS, IF_OUT_ERRORS = _IF + (16,), _IF + (19,), _IF + (20,)
IF_NAME, IF_HC_IN, IF_HC_OUT, IF_HIGH_SPEED, IF_ALIAS = (
    _IFX + (1,),
    _IFX + (6,),
    _IFX + (10,),
    _IFX + (15,),
    _IFX + (18,),
)
INTERFACE_COLUMNS = [
    IF_DESCR,
    IF_SPEED,
    IF_ADMIN,
    IF_OPER,
    IF_IN_OCTETS,
    IF_IN_DISCARDS,
    IF_IN_ERRORS,
    IF_OUT_OCTETS,
    IF_OUT_DISCARDS,
    IF_OUT_ERRORS,
    IF_NAME,
    IF_HC_IN,
    IF_HC_OUT,
    IF_HIGH_SPEED,
    IF_ALIAS,
]
# SNMPv1 cannot carry Counter64; asking a v1 agent for these makes some agents drop the request.
_COUNTER64 = (IF_HC_IN, IF_HC_OUT)
_COUNTER32 = (
    IF_IN_OCTETS,
    IF_OUT_OCTETS,
    IF_IN_ERRORS,
    IF_OUT_ERRORS,
    IF_IN_DISCARDS,
    IF_OUT_DISCARDS,
)
_MAX_REQUESTS_PER_WALK = 2000  # a runaway agent (OIDs that never leave the table) is cut off
_SPEED_UNKNOWN = 0xFFFFFFFF
_VARBINDS_PER_BULK = 375  # at most this many varbinds asked for in one GETBULK
RECHECK_POLLS = 10  # an OID a device lacks is asked again every this many polls
_GET_BATCH = 32  # instances per GET when fetching label lookups
_MODEL_ROWS = 5  # rows of a model column read to find a non-empty value


class Walker:
    """Walks several table columns of one device at once."""

    def __init__(self, client: SnmpClient, endpoint: Endpoint, target: Target) -> None:
        assert target.snmp is not None and target.snmp.auth is not None
        self.client = client
        self.endpoint = endpoint
        self.auth = target.snmp.auth
        self.bulk = target.snmp.bulk and self.auth.version != "1"
        self.max_repetitions = target.snmp.max_repetitions
        self.requests = 0
        self.varbinds = 0
        self.found: dict[OID, object] = {}  # scalars that rode along in a walk

    async def get(self, oids: list[OID]) -> dict[OID, object]:
        self.requests += 1
        try:
            vbs = await self.client.get(self.endpoint, self.auth, oids)
        except SnmpStatusError as exc:
            if exc.status != 2:  # v1 noSuchName: one of the scalars is missing; ask the rest
                raise
            rest = [o for i, o in enumerate(oids, 1) if i != exc.index]
            if not rest or exc.index == 0:
                return {}
            return await self.get(rest)
        self.varbinds += len(vbs)
        return {oid: value for oid, value in vbs if value is not NO_SUCH}

    async def get_many(self, oids: list[OID]) -> dict[OID, object]:
        """GET of any number of instances, in batches small enough for one response."""
        found: dict[OID, object] = {}
        for start in range(0, len(oids), _GET_BATCH):
            found.update(await self.get(oids[start : start + _GET_BATCH]))
        return found

    async def first_values(self, prefix: OID, rows: int) -> list[object]:
        """Up to `rows` values under `prefix`, by GETNEXT (model and probe look-ups)."""
        values: list[object] = []
        cursor = prefix
        while len(values) < rows:
            self.requests += 1
            try:
                vbs = await self.client.get_next(self.endpoint, self.auth, [cursor])
            except SnmpStatusError:
                break  # v1 noSuchName: nothing after it
            self.varbinds += len(vbs)
            if not vbs:
                break
            oid, value = vbs[0]
            if value is END_OF_MIB or value is NO_SUCH or oid[: len(prefix)] != prefix:
                break
            if oid <= cursor:
                break
            values.append(value)
            cursor = oid
        return values

    async def walk(
        self, columns: list[OID], scalars: list[OID] | None = None
    ) -> dict[OID, dict[OID, object]]:
        """{column: {row index: value}} for every column; a column the device lacks is empty.

        `scalars` (instances such as sysUpTime.0) ride along in the first GETBULK as
        non-repeaters, each asked as GETNEXT of the OID just before it; what the device has ends
        up in `self.found` (what it lacks is left out). One request fewer per poll."""
        table: dict[OID, dict[OID, object]] = {c: {} for c in columns}
        cursor = {c: c for c in columns}
        active = list(columns)
        pending = list(scalars or ())
        if pending and not self.bulk:
            raise ValueError("scalars ride along only in GETBULK")
        # Keep a response about the size of the interface walk alone (15 columns x 25): many
        # columns get fewer repetitions each, so no agent has to build a huge PDU.
        repetitions = max(1, min(self.max_repetitions, _VARBINDS_PER_BULK // len(active or [1])))
        while active or pending:
            if self.requests >= _MAX_REQUESTS_PER_WALK:
                raise SnmpError(f"walk stopped after {self.requests} requests (agent loops?)")
            self.requests += 1
            try:
                if self.bulk:
                    vbs = await self.client.get_bulk(
                        self.endpoint,
                        self.auth,
                        [_before(o) for o in pending] + [cursor[c] for c in active],
                        repetitions,
                        non_repeaters=len(pending),
                    )
                else:
                    vbs = await self.client.get_next(
                        self.endpoint, self.auth, [cursor[c] for c in active]
                    )
            except SnmpStatusError as exc:
                if exc.status == 1 and self.bulk and repetitions > 1:  # tooBig
                    repetitions = max(1, repetitions // 2)
                    continue
                if exc.status == 2 and not self.bulk and 1 <= exc.index <= len(active):
                    del active[exc.index - 1]  # v1: this column ran off the end of the MIB
                    continue
                raise
            self.varbinds += len(vbs)
            if pending:
                if len(vbs) < len(pending):
                    raise SnmpError("agent dropped non-repeaters from a GETBULK response")
                for oid, (got, value) in zip(pending, vbs, strict=False):
                    if got == oid and value is not END_OF_MIB and value is not NO_SUCH:
                        self.found[oid] = value
                vbs = vbs[len(pending) :]
                pending = []
                if not active:
                    break
            if not vbs:
                raise SnmpError("agent returned an empty response to a walk")
            width = len(active)
            finished: set[OID] = set()
            progressed = False
            for i, (oid, value) in enumerate(vbs):
                column = active[i % width]
                if column in finished:
                    continue
                if value is END_OF_MIB or value is NO_SUCH or oid[: len(column)] != column:
                    finished.add(column)
                    continue
                if oid <= cursor[column]:
                    log.debug("oid not increasing at %s; column %s stops", oid, column)
                    finished.add(column)
                    continue
                table[column][oid[len(column) :]] = value
                cursor[column] = oid
                progressed = True
            active = [c for c in active if c not in finished]
            if not progressed and not finished:
                raise SnmpError("agent made no progress in a walk")
        return table


def _before(oid: OID) -> OID:
    """An OID whose successor is `oid` when `oid` exists: its parent for instance .0, else the
    previous sibling's deepest possible descendant."""
    if oid[-1] == 0:
        return oid[:-1]
    return (*oid[:-1], oid[-1] - 1, 0xFFFFFFFF)


@dataclass
class _CounterState:
    raw: int
    total: int


UPTIME_WRAP = 2**32 / 100  # sysUpTime is 32-bit hundredths: it wraps after 497.1 days


def uptime_dropped(before: float, after: float, elapsed: float) -> bool:
    """True when sysUpTime went down for a reboot, not because its 32-bit counter wrapped (after
    a wrap it reads what the old value plus the elapsed time is beyond 2^32 hundredths)."""
    if after >= before:
        return False
    slack = max(30.0, 0.1 * elapsed)
    beyond = before + elapsed - UPTIME_WRAP
    return not (beyond >= -slack and abs(beyond - after) <= slack)


@dataclass
class CounterUnwrapper:
    """Turns wrapping 32-bit counters into monotonic ones across polls of one device.

    A wrap is only unfolded when the previous poll is recent (`max_gap`) and the device did not
    reboot; otherwise the counter starts over from its raw value, which Prometheus reads as a reset,
    the truthful answer when we cannot know how often it wrapped."""

    max_gap: float
    last_poll: float | None = None
    last_uptime: float | None = None
    states: dict[tuple[int, OID], _CounterState] = field(default_factory=dict)

    def begin(self, now: float, uptime: float | None) -> None:
        stale = self.last_poll is None or now - self.last_poll > self.max_gap
        rebooted = (
            uptime is not None
            and self.last_uptime is not None
            and self.last_poll is not None
            and uptime_dropped(self.last_uptime, uptime, now - self.last_poll)
        )
        if stale or rebooted:
            self.states.clear()
        self.last_poll = now
        self.last_uptime = uptime

    def value(self, index: int, column: OID, raw: int) -> int:
        state = self.states.get((index, column))
        if state is None:
            self.states[(index, column)] = _CounterState(raw, raw)
            return raw
        state.total += (raw - state.raw) % (1 << 32)
        state.raw = raw
        return state.total


@dataclass
class DeviceState:
    """What the prober remembers about one device between polls: its profile and model (matched
    again when sysObjectID, sysDescr or the target's `vendor:` change), and the OIDs it lacks."""

    match_key: tuple
    profile: Profile
    model: str = ""
    polls: int = 0
    last_uptime: float | None = None
    absent: dict[OID, int] = field(default_factory=dict)  # OID -> poll at which to ask again

    def wants(self, oid: OID) -> bool:
        again = self.absent.get(oid)
        return again is None or self.polls >= again

    def asked(self, oid: OID, present: bool) -> None:
        if present:
            self.absent.pop(oid, None)
        else:
            self.absent[oid] = self.polls + RECHECK_POLLS


class SnmpProber:
    """Polls devices; keeps per-device counter state and profile state between polls (forget it
    on removal)."""

    def __init__(self, client: SnmpClient | None = None, profiles: Registry | None = None) -> None:
        self.client = client or SnmpClient()
        self.profiles = profiles or registry()
        self._unwrappers: dict[tuple[str, str, str], CounterUnwrapper] = {}
        self.devices: dict[tuple[str, str, str], DeviceState] = {}

    def close(self) -> None:
        self.client.close()

    def forget(self, key: tuple[str, str, str]) -> None:
        self._unwrappers.pop(key, None)
        self.devices.pop(key, None)

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
            columns = [c for c in columns if c not in _COUNTER64]
        try:
            together = await self._poll_together(walker, target, columns)
            if together is not None:
                device, system, scalars, table = together
            else:
                device, system, scalars = await self._identify(walker, target)
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
            profile = device.profile
        except SnmpError as exc:
            return SnmpPoll(
                started,
                False,
                time.monotonic() - clock,
                error=str(exc),
                requests=walker.requests,
                varbinds=walker.varbinds,
            )
        uptime_ticks = system.get(SYS_UPTIME)
        uptime = uptime_ticks / 100.0 if isinstance(uptime_ticks, int) else None
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
        return SnmpPoll(
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
            requests=walker.requests,
            varbinds=walker.varbinds,
        )

    async def _identify(
        self, walker: Walker, target: Target
    ) -> tuple[DeviceState, dict[OID, object], dict[OID, object]]:
        """The system group and the profile's scalars, in one GET when the profile is known."""
        device = self.devices.get(target.key)
        extra = [o for o in device.profile.scalars if device.wants(o)] if device else []
        values = await walker.get(SYSTEM + extra)
        if not any(oid in values for oid in SYSTEM):
            raise SnmpError("agent answered but has none of the system group")
        object_id = values.get(SYS_OBJECT_ID)
        object_id = object_id if isinstance(object_id, tuple) else None
        descr = decode_text(values.get(SYS_DESCR))
        match_key = (object_id, descr, target.vendor)
        uptime = values.get(SYS_UPTIME)
        if device is None or device.match_key != match_key:
            device = await self._match(walker, target, match_key)
            extra = [o for o in device.profile.scalars if o not in values]
            if extra:
                values.update(await walker.get(extra))
            self.devices[target.key] = device
        else:
            await self._seen_again(walker, device, uptime, descr)
        device.last_uptime = uptime if isinstance(uptime, int) else None
        for oid in extra:
            device.asked(oid, oid in values)
        scalars = {oid: values[oid] for oid in device.profile.scalars if oid in values}
        return device, values, scalars

    async def _seen_again(
        self, walker: Walker, device: DeviceState, uptime: object, descr: str
    ) -> None:
        device.polls += 1
        rebooted = (
            isinstance(uptime, int)
            and device.last_uptime is not None
            and uptime < device.last_uptime
        )
        if rebooted:  # new firmware may implement what the old one lacked
            device.absent.clear()
            device.model = await self._model(walker, device.profile, descr)

    async def _poll_together(
        self, walker: Walker, target: Target, columns: list[OID]
    ) -> tuple[DeviceState, dict[OID, object], dict[OID, object], dict] | None:
        """A device polled before, whose profile is known: the system group and the profile's
        scalars ride along as non-repeaters in the first GETBULK of the walk, saving the separate
        GET of every poll. None when that does not apply (first poll, GETNEXT devices, an agent
        that objects, a device whose identity changed): the caller then goes step by step."""
        device = self.devices.get(target.key)
        if device is None or not walker.bulk or not device.profile.bulk:
            return None
        wanted = [c for c in device.profile.columns if device.wants(c) and c not in columns]
        extra = [o for o in device.profile.scalars if device.wants(o)]
        try:
            table = await walker.walk(columns + wanted, scalars=SYSTEM + extra)
        except SnmpStatusError:
            return None
        values = walker.found
        if not any(oid in values for oid in SYSTEM):
            raise SnmpError("agent answered but has none of the system group")
        object_id = values.get(SYS_OBJECT_ID)
        descr = decode_text(values.get(SYS_DESCR))
        if (object_id if isinstance(object_id, tuple) else None, descr, target.vendor) != (
            device.match_key
        ):
            return None  # new firmware, new device at the address: identify it again
        uptime = values.get(SYS_UPTIME)
        await self._seen_again(walker, device, uptime, descr)
        device.last_uptime = uptime if isinstance(uptime, int) else None
        for oid in extra:
            device.asked(oid, oid in values)
        for column in wanted:
            device.asked(column, bool(table.get(column)))
        scalars = {oid: values[oid] for oid in device.profile.scalars if oid in values}
        return device, values, scalars, table

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


def _int(value: object) -> int | None:
    return value if isinstance(value, int) else None


def build_interfaces(
    table: dict[OID, dict[OID, object]], unwrapper: CounterUnwrapper
) -> tuple[Interface, ...]:
    """Rows of the walked columns as Interfaces, with unique names (a device that reports the same
    ifName twice gets `name#ifIndex` on the later ones, so series never collide)."""
    indexes = sorted({idx[0] for column in table.values() for idx in column if len(idx) == 1})
    interfaces: list[Interface] = []
    seen: set[str] = set()
    for index in indexes:
        row = {column: values.get((index,)) for column, values in table.items()}
        name = decode_text(row.get(IF_NAME)) or decode_text(row.get(IF_DESCR)) or f"ifIndex {index}"
        if name in seen:
            name = f"{name}#{index}"
        seen.add(name)

        def counter(column: OID, _row=row, _index=index) -> int | None:
            raw = _int(_row.get(column))
            if raw is None:
                return None
            return unwrapper.value(_index, column, raw) if column in _COUNTER32 else raw

        in_octets = counter(IF_HC_IN)
        if in_octets is None:
            in_octets = counter(IF_IN_OCTETS)
        out_octets = counter(IF_HC_OUT)
        if out_octets is None:
            out_octets = counter(IF_OUT_OCTETS)
        oper, admin = _int(row.get(IF_OPER)), _int(row.get(IF_ADMIN))
        interfaces.append(
            Interface(
                index=index,
                name=name,
                alias=decode_text(row.get(IF_ALIAS)),
                oper_up=None if oper is None else oper == 1,
                admin_up=None if admin is None else admin == 1,
                in_octets=in_octets,
                out_octets=out_octets,
                in_errors=counter(IF_IN_ERRORS),
                out_errors=counter(IF_OUT_ERRORS),
                in_discards=counter(IF_IN_DISCARDS),
                out_discards=counter(IF_OUT_DISCARDS),
                speed_bytes=speed_bytes(_int(row.get(IF_SPEED)), _int(row.get(IF_HIGH_SPEED))),
            )
        )
    return tuple(interfaces)


def speed_bytes(if_speed: int | None, high_speed: int | None) -> float | None:
    """ifSpeed (bit/s) is exact below 4.29 Gbit/s; above it saturates and ifHighSpeed (Mbit/s)
    tells. Some agents report ifSpeed 0 for fast ports, so 0 also defers to ifHighSpeed."""
    if if_speed is not None and 0 < if_speed < _SPEED_UNKNOWN:
        return if_speed / 8
    if high_speed is not None and high_speed > 0:
        return high_speed * 1_000_000 / 8
    if if_speed is not None:
        return if_speed / 8 if if_speed != _SPEED_UNKNOWN else None
    return 0.0 if high_speed == 0 else None
