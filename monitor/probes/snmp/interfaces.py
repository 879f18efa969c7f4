"""Interface rows and their counters: ifTable/ifXTable columns as `Interface` records, with the
32-bit counters (ifTable octets where a device has no ifXTable, errors, discards) unfolded across
wraps with the previous poll, which Prometheus' rate() cannot do by itself, and the one rule that
tells a reboot from sysUpTime's own 32-bit wrap.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from monitor.profiles.values import decode_text
from monitor.results import Interface

OID = tuple[int, ...]

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
COUNTER64_COLUMNS = (IF_HC_IN, IF_HC_OUT)
_COUNTER32 = (
    IF_IN_OCTETS,
    IF_OUT_OCTETS,
    IF_IN_ERRORS,
    IF_OUT_ERRORS,
    IF_IN_DISCARDS,
    IF_OUT_DISCARDS,
)
_SPEED_UNKNOWN = 0xFFFFFFFF


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
