"""Inheritance of `ping:` and `snmp:` settings: built-in values, then defaults, member, school and
target, each level merged key by key over the one above.

At every level `ping:`/`snmp:` is a mapping (merge these keys, and switch the probe on), `false`
(switch it off for everything below) or `true` (switch it on, values as inherited). Switching off
does not forget values: a mapping below a `false` switches the probe back on with everything
inherited from above the `false` plus its own keys. The on/off switch and the values are thus
independent, which keeps "what does this target get?" answerable by reading top to bottom.

Consistency checks (a ping round must fit its interval, an SNMP timeout must be shorter than its
interval) run on the merged values at each level that writes one of the values involved, and
report at that level's `ping:`/`snmp:` key: that is where the combination became wrong, and a bad
default is reported once rather than at every target below it.
"""

from __future__ import annotations

from collections.abc import Mapping as AbcMapping
from dataclasses import asdict, dataclass, field, replace
from types import MappingProxyType
from typing import Any, Final

from monitor.config.auths import Auths
from monitor.config.model import PingSettings, SnmpSettings
from monitor.config.schema import (
    TRUE_WORDS,
    Context,
    Fields,
    Schema,
    boolean,
    describe,
    did_you_mean,
    duration,
    integer,
    string,
)
from monitor.config.yamltree import Mapping, Scalar
from monitor.units import format_duration

__all__ = ["BROKEN", "Layer", "apply", "resolve_ping", "resolve_snmp"]


class _Broken:
    """Stands for a value that was rejected (and reported): whatever depends on it is not built
    and not checked again, so one mistake yields one problem."""

    def __repr__(self) -> str:
        return "BROKEN"


BROKEN: Final = _Broken()

PING_SCHEMA = Schema(
    {
        "interval": duration(),
        "count": integer(1, 100),
        "timeout": duration(),
        "spacing": duration(allow_zero=True),
        "size": integer(16, 65507),
    }
)
SNMP_SCHEMA = Schema(
    {
        "interval": duration(),
        "timeout": duration(),
        "retries": integer(0, 10),
        "auth": string(),
        "max_repetitions": integer(1, 100),
        "bulk": boolean(),
    }
)
_PING_ROUND_KEYS = {"interval", "count", "timeout", "spacing"}
_SNMP_TIMING_KEYS = {"interval", "timeout"}


@dataclass(frozen=True)
class Layer:
    """One probe kind's settings as inherited at one level: on or off, the keys written so far
    (values, or BROKEN), and whether some level wrote something unusable instead of settings."""

    enabled: bool = True
    values: AbcMapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    broken: bool = False


def apply(ctx: Context, layer: Layer, level: Fields, kind: str, auths: Auths) -> Layer:
    """The layer below `level`, given what `level` (the fields of a defaults/member/school/target
    mapping) writes under `kind` ("ping" or "snmp")."""
    node = level.nodes.get(kind)
    if node is None:
        return layer
    if isinstance(node, Scalar) and node.failed:
        return replace(layer, broken=True)
    if isinstance(node, Scalar) and node.tag == "bool":
        return replace(layer, enabled=node.text.lower() in TRUE_WORDS)
    if not isinstance(node, Mapping):
        ctx.error(
            node, f"'{kind}' must be a mapping of settings, true or false, got {describe(node)}"
        )
        return replace(layer, broken=True)
    schema = PING_SCHEMA if kind == "ping" else SNMP_SCHEMA
    fields = schema.read(ctx, node, f"{kind} settings")
    values = dict(layer.values)
    values.update(fields.values)
    values.update(dict.fromkeys(fields.broken, BROKEN))
    if "auth" in fields.values:
        values["auth"] = _lookup_auth(ctx, fields, auths)
    result = Layer(True, MappingProxyType(values), layer.broken)
    if kind == "ping":
        _check_ping_round(ctx, level.keys[kind], result, set(fields.nodes))
    else:
        _check_snmp_timing(ctx, level.keys[kind], result, set(fields.nodes))
    return result


def _lookup_auth(ctx: Context, fields: Fields, auths: Auths) -> Any:
    name = fields.values["auth"]
    if name in auths.valid:
        return auths.valid[name]
    if name not in auths.broken:
        node = fields.nodes["auth"]
        if isinstance(node, Scalar) and node.substituted:
            ctx.error(node, f"unknown auth ({describe(node)}): it is not defined in 'auths'")
        elif not auths.names():
            ctx.error(node, f"unknown auth '{name}': there is no 'auths' section")
        else:
            hint = did_you_mean(name, auths.names()) or (
                "; defined are " + ", ".join(f"'{n}'" for n in auths.names())
            )
            ctx.error(node, f"unknown auth '{name}'{hint}")
    return BROKEN


def _merged(defaults: object, layer: Layer, keys: set[str]) -> dict[str, Any] | None:
    values = {**asdict(defaults), **layer.values}  # type: ignore[call-overload]
    if any(values[key] is BROKEN for key in keys):
        return None
    return values


def _check_ping_round(ctx: Context, key: Scalar, layer: Layer, written: set[str]) -> None:
    if not written & _PING_ROUND_KEYS:
        return
    v = _merged(PingSettings(), layer, _PING_ROUND_KEYS)
    if v is None:
        return
    needed = v["spacing"] * (v["count"] - 1) + v["timeout"]
    if needed > v["interval"] + 1e-9:
        f = format_duration
        ctx.error(
            key,
            f"ping round of {f(needed)} (spacing {f(v['spacing'])} x (count {v['count']} - 1) "
            f"+ timeout {f(v['timeout'])}) does not fit in interval {f(v['interval'])}",
        )


def _check_snmp_timing(ctx: Context, key: Scalar, layer: Layer, written: set[str]) -> None:
    if not written & _SNMP_TIMING_KEYS:
        return
    v = _merged(SnmpSettings(), layer, _SNMP_TIMING_KEYS)
    if v is None:
        return
    if v["timeout"] >= v["interval"]:
        ctx.error(
            key,
            f"snmp timeout {format_duration(v['timeout'])} must be shorter than "
            f"interval {format_duration(v['interval'])}",
        )


def resolve_ping(layer: Layer) -> PingSettings | _Broken | None:
    if not layer.enabled:
        return None
    if layer.broken or any(value is BROKEN for value in layer.values.values()):
        return BROKEN
    return PingSettings(**layer.values)


def resolve_snmp(layer: Layer) -> SnmpSettings | _Broken | None:
    """SnmpSettings with `auth` possibly None: whether that is an error depends on the target."""
    if not layer.enabled:
        return None
    if layer.broken or any(value is BROKEN for value in layer.values.values()):
        return BROKEN
    return SnmpSettings(**layer.values)
