"""Targets: reading one target mapping, then the checks that need the whole school (unique ids,
`parent` and `via` references, parent cycles)."""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass, field

from monitor.calendar import DEFAULT_TIMEZONE
from monitor.config.address import parse_address
from monitor.config.auths import Auths
from monitor.config.calendars import Calendars, read_weekly_ranges
from monitor.config.model import ROLES, PingSettings, SnmpSettings, Target, Via
from monitor.config.schema import (
    FALSE_WORDS,
    Context,
    Fields,
    Invalid,
    Reader,
    Schema,
    boolean,
    choice,
    describe,
    did_you_mean,
    expect_mapping,
    identifier,
    parsed,
    peek_text,
    shorten,
    string,
)
from monitor.config.settings import Layer, apply, resolve_ping, resolve_snmp
from monitor.config.yamltree import Mapping, Node, Scalar, Sequence
from monitor.families import reserved_labels
from monitor.units import parse_bandwidth

__all__ = ["RESERVED_LABELS", "Draft", "Scope", "check_school", "read_target"]

# Label names the collector sets itself (or Prometheus adds), each with the family that has it:
# a static label of the same name would make the family's series carry the name twice, and
# Prometheus then rejects the whole scrape. Derived from the metric contract; and the two the
# school calendar adds (docs/alerting.md#school-calendars).
RESERVED_LABELS = {
    **reserved_labels(),
    "page_when_closed": "page_when_closed: true sets it",
    "school_state": "the alert rules set it from the school's calendar",
}
_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_LABEL_VALUE_TAGS = ("str", "int", "float", "timestamp")

_ADDRESS_EXPECTED = "an IP address or host name, optionally with :port"
_read_address = parsed(parse_address, _ADDRESS_EXPECTED)
_read_bandwidth_text = parsed(
    parse_bandwidth,
    "a bandwidth such as 500Mbit",
    numbers="bandwidth needs a unit, e.g. 500Mbit or 1Gbit",
)


def _address(ctx: Context, node: Node, key: str) -> tuple[str, int | None]:
    if isinstance(node, Sequence):
        # `address: [::1]:1161` unquoted is YAML flow-list syntax, not an address.
        ctx.fail(
            node,
            f"'{key}' must be {_ADDRESS_EXPECTED}, got a list; put a bracketed IPv6 address "
            'in quotes, e.g. "[2001:db8::1]:1161"',
        )
    result: tuple[str, int | None] = _read_address(ctx, node, key)
    return result


def _bandwidth(ctx: Context, node: Node, key: str) -> float:
    value: float = _read_bandwidth_text(ctx, node, key)
    if value <= 0:
        ctx.fail(node, f"'{key}' must be more than 0")
    return value


TARGET_SCHEMA = Schema(
    {
        "id": identifier("target id"),
        "role": choice(ROLES, "role"),
        "address": _address,
        "name": string(),
        "ping": None,
        "snmp": None,
        "bandwidth": _bandwidth,
        "via": None,
        "parent": string(),
        "vendor": None,  # one of Scope.vendors
        "labels": None,
        "expected_off": None,
        "page_when_closed": boolean(),
    }
)
_VIA_FIELDS: dict[str, Reader | None] = {"target": string(), "interface": string()}
VIA_SCHEMA = Schema(_VIA_FIELDS)


@dataclass(frozen=True)
class Scope:
    """What a target inherits from the levels above it."""

    member: str
    school: str
    ping: Layer
    snmp: Layer
    auths: Auths
    # Values `vendor:` accepts: every vendor a device profile reports (lowercase, as exposed in
    # schoolnet_device_info), the operator's own profiles included.
    vendors: tuple[str, ...] = ()
    page_when_closed: bool = False  # the school's `page_when_closed`, the target's default
    calendars: Calendars = field(default_factory=Calendars)
    calendar: object = None  # the Calendar chosen above (or BROKEN_CALENDAR, or None)


@dataclass
class Draft:
    """A target as read, before the school-wide checks; `target` is None if anything about it
    was rejected."""

    node: Mapping
    fields: Fields
    id: str | None
    snmp: SnmpSettings | object | None
    via_target: Scalar | None  # the node of via.target, if it is a usable string
    target: Target | None


def read_target(ctx: Context, item: Node, scope: Scope) -> Draft | None:
    try:
        node = expect_mapping(ctx, item, "each target")
    except Invalid:
        return None
    before = ctx.count()
    peeked = peek_text(node, "id")
    subject = f"target '{peeked}'" if peeked else "target"
    fields = TARGET_SCHEMA.read(ctx, node, subject)
    for required in ("id", "role", "address"):
        if not fields.written(required):
            ctx.error(node, f"{subject} has no {required}")
    role = fields.get("role")
    is_link = role == "link"
    if role is not None and not is_link:
        for key in ("bandwidth", "via"):
            if fields.written(key):
                message = f"'{key}' is only for links (role: link), not for role {role}"
                ctx.error(fields.keys[key], message)

    ping = resolve_ping(apply(ctx, scope.ping, fields, "ping", scope.auths))
    snmp: SnmpSettings | object | None
    if is_link:
        snmp_node = fields.nodes.get("snmp")
        switched_off = (
            isinstance(snmp_node, Scalar)
            and snmp_node.tag == "bool"
            and (snmp_node.text.lower() in FALSE_WORDS)
        )
        if snmp_node is not None and not switched_off:
            ctx.error(
                fields.keys["snmp"],
                "links are ping-only; their traffic is read from the target named in via",
            )
        snmp = None
    else:
        snmp = resolve_snmp(apply(ctx, scope.snmp, fields, "snmp", scope.auths))
        if isinstance(snmp, SnmpSettings) and snmp.auth is None:
            ctx.error(
                node,
                f"no SNMP auth for {subject}: set snmp.auth (here or in defaults) or snmp: false",
            )

    if fields.written("vendor"):
        try:
            vendor = choice(scope.vendors, "vendor")(ctx, fields.nodes["vendor"], "vendor")
            fields.values["vendor"] = vendor
        except Invalid:
            fields.broken.add("vendor")
    via, via_target = _read_via(ctx, fields) if is_link else (None, None)
    labels = _read_labels(ctx, fields.nodes["labels"]) if fields.written("labels") else ()
    # A label, so that it reaches every series and hence every alert of the target, where
    # Alertmanager's routes read it (docs/alerting.md).
    if fields.get("page_when_closed", scope.page_when_closed):
        labels = tuple(sorted((*labels, ("page_when_closed", "true"))))
    expected_off: tuple = ()
    if fields.written("expected_off"):
        with contextlib.suppress(Invalid):
            expected_off = read_weekly_ranges(
                ctx, fields.nodes["expected_off"], "expected_off", crossing=True
            )
    if ping is None and snmp is None and via is None:
        ctx.error(node, f"{subject} has both ping and snmp switched off: nothing would watch it")

    target = None
    # BROKEN settings come from a problem at a level above, counted there.
    complete = isinstance(ping, PingSettings | None) and isinstance(snmp, SnmpSettings | None)
    if ctx.count() == before and complete:
        host, port = fields.values["address"]
        target = Target(
            member=scope.member,
            school=scope.school,
            id=fields.values["id"],
            role=role,
            host=host,
            port=port,
            ping=ping,
            snmp=snmp,
            bandwidth=fields.get("bandwidth"),
            via=via,
            parent=fields.get("parent"),
            vendor=fields.get("vendor"),
            name=fields.get("name"),
            labels=labels,
            expected_off=expected_off,
            timezone=getattr(scope.calendar, "timezone", DEFAULT_TIMEZONE),
            line=node.line,
        )
    return Draft(node, fields, fields.get("id"), snmp, via_target, target)


def _read_via(ctx: Context, fields: Fields) -> tuple[Via | None, Scalar | None]:
    """The link's Via if complete, and its `target` node, which is checked against the school
    even when `interface` is missing."""
    if not fields.written("via"):
        return None, None
    try:
        node = expect_mapping(ctx, fields.nodes["via"], "'via' (target and interface)")
    except Invalid:
        return None, None
    via = VIA_SCHEMA.read(ctx, node, "via")
    if not via.written("target"):
        ctx.error(node, "via has no target (the id of the router or switch carrying the link)")
    if not via.written("interface"):
        ctx.error(node, "via has no interface (its name on the via target, e.g. ge-0/0/0)")
    target_node = via.nodes["target"] if "target" in via.values else None
    assert target_node is None or isinstance(target_node, Scalar)
    if "target" in via.values and "interface" in via.values:
        return Via(via.values["target"], via.values["interface"]), target_node
    return None, target_node


def _read_labels(ctx: Context, node: Node) -> tuple[tuple[str, str], ...]:
    try:
        mapping = expect_mapping(ctx, node, "'labels'")
    except Invalid:
        return ()
    pairs = []
    for key, value in mapping:
        name = key.text
        if not _LABEL_NAME.fullmatch(name):
            ctx.error(
                key,
                f"invalid label name {shorten(name)!r}: use letters, digits and _, "
                "not starting with a digit",
            )
        elif name.startswith("__"):
            ctx.error(key, f"invalid label name '{name}': names starting with __ are reserved")
        elif name in RESERVED_LABELS:
            ctx.error(key, f"label '{name}' is reserved ({RESERVED_LABELS[name]})")
        elif isinstance(value, Scalar) and value.failed:
            continue
        elif not isinstance(value, Scalar) or value.tag not in _LABEL_VALUE_TAGS:
            # yes/no/on/off would arrive as true/false, and an empty value means "no label".
            hint = "; put it in quotes" if isinstance(value, Scalar) and value.tag != "null" else ""
            ctx.error(value, f"label '{name}' must be a string, got {describe(value)}{hint}")
        elif not value.text:
            ctx.error(value, f"label '{name}' must not be empty")
        else:
            pairs.append((name, value.text))
    return tuple(sorted(pairs))


def _shown(node: Node, text: str) -> str:
    """A reference as messages may show it: never the substituted value of a variable."""
    if isinstance(node, Scalar) and node.substituted:
        return f"({describe(node)})"
    return repr(shorten(text))


def check_school(ctx: Context, school: str, drafts: list[Draft]) -> None:
    """Checks that need all targets of one school: unique ids, parent and via references."""
    by_id: dict[str, Draft] = {}
    for draft in drafts:
        if draft.id is None:
            continue
        if draft.id in by_id:
            first = by_id[draft.id].fields.nodes["id"].line
            ctx.error(
                draft.fields.nodes["id"],
                f"duplicate target id '{draft.id}' in school '{school}' (first at line {first})",
            )
        else:
            by_id[draft.id] = draft
    _check_parents(ctx, school, drafts, by_id)
    _check_vias(ctx, school, drafts, by_id)


def _check_parents(ctx: Context, school: str, drafts: list[Draft], by_id: dict[str, Draft]) -> None:
    parent_of: dict[str, str] = {}
    for draft in drafts:
        parent = draft.fields.get("parent")
        if parent is None:
            continue
        node = draft.fields.nodes["parent"]
        if parent == draft.id:
            ctx.error(node, f"target '{draft.id}' cannot be its own parent")
        elif parent not in by_id:
            hint = (
                "" if isinstance(node, Scalar) and node.substituted else did_you_mean(parent, by_id)
            )
            ctx.error(node, f"unknown parent {_shown(node, parent)} in school '{school}'{hint}")
        elif draft.id is not None and by_id.get(draft.id) is draft:
            parent_of[draft.id] = parent
    in_reported_cycle: set[str] = set()
    for start in parent_of:
        if start in in_reported_cycle:
            continue
        chain = [start]
        current = parent_of.get(start)
        while current is not None and current not in chain:
            chain.append(current)
            current = parent_of.get(current)
        if current == start:
            # Reported once, at the first target of the cycle in file order.
            in_reported_cycle.update(chain)
            node = by_id[start].fields.nodes["parent"]
            ctx.error(node, "parent cycle: " + " -> ".join([*chain, start]))


def _check_vias(ctx: Context, school: str, drafts: list[Draft], by_id: dict[str, Draft]) -> None:
    for draft in drafts:
        node = draft.via_target
        if node is None:
            continue
        name = node.text
        if name == draft.id:
            ctx.error(
                node,
                "a link cannot be read via itself; name the router or switch "
                "whose interface carries its traffic",
            )
        elif name not in by_id:
            hint = (
                "" if isinstance(node, Scalar) and node.substituted else did_you_mean(name, by_id)
            )
            ctx.error(node, f"unknown via target {_shown(node, name)} in school '{school}'{hint}")
        elif by_id[name].snmp is None:
            ctx.error(
                node,
                f"via target {_shown(node, name)} has SNMP switched off; a link's traffic "
                "is read from it over SNMP",
            )
