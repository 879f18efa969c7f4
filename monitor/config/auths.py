"""The `auths:` section: named SNMP credential sets.

The combinations are checked here rather than left to the first failing poll, because pysnmp and
the devices report a wrong combination only as a timeout or an opaque "not authentic" error. So is
whether the SNMP stack can send a value at all: secrets go out as UTF-8 (as net-snmp reads them from
its own configuration), user and context names fit SNMP's 32 bytes.

No message here quotes a value: a password pasted into the wrong field (`auth_protocol:
<password>`) must not reach a CI log or the status page.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterable
from dataclasses import dataclass

from monitor.config.model import AUTH_PROTOCOLS, PRIV_PROTOCOLS, SnmpAuth
from monitor.config.schema import (
    ID_PATTERN,
    ID_RULE,
    Context,
    Invalid,
    Reader,
    Schema,
    as_text,
    describe,
    did_you_mean,
    expect_mapping,
    shorten,
    string,
)
from monitor.config.yamltree import Mapping, Node, Scalar

__all__ = ["Auths", "read_auths"]

SECURITY_LEVELS = ("noAuthNoPriv", "authNoPriv", "authPriv")
# RFC 3414 and net-snmp refuse shorter pass phrases; better to hear it from `monitor check`.
MIN_PASSWORD = 8
V3_ONLY = (
    "username",
    "security_level",
    "auth_protocol",
    "auth_password",
    "priv_protocol",
    "priv_password",
    "context",
)


# SnmpAdminString names (SNMP-USER-BASED-SM-MIB, SNMP-FRAMEWORK-MIB): pysnmp refuses longer ones.
MAX_NAME_BYTES = 32
# net-snmp's COMMUNITY_MAX_LEN is 256 including its terminating NUL.
MAX_COMMUNITY_BYTES = 255
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _version(ctx: Context, node: Node, key: str) -> str:
    if isinstance(node, Scalar):
        text = node.text.strip().lower()
        if (node.tag == "int" and text in ("1", "3")) or (
            node.tag == "str" and text in ("1", "2c", "3")
        ):
            return text
    # `version: 2` is worth showing; anything longer may be a secret pasted one line off
    short_number = isinstance(node, Scalar) and node.tag in ("int", "float") and len(node.text) < 4
    ctx.fail(node, f"'{key}' must be 1, 2c or 3, got {describe(node, secret=not short_number)}")


def _choice(options: Iterable[str], what: str) -> Reader:
    """One of a fixed set, case-insensitively, in its canonical spelling; a wrong value is named by
    its field only (it may be a secret pasted one line off)."""
    canonical = {option.lower(): option for option in options}

    def read(ctx: Context, node: Node, key: str) -> str:
        text = as_text(ctx, node, key, secret=True)
        found = canonical.get(text.strip().lower())
        if found is not None:
            return found
        listing = ", ".join(canonical.values())
        hint = did_you_mean(text, canonical.values()) or f"; expected one of {listing}"
        assert isinstance(node, Scalar)
        source = f" ({describe(node)})" if node.substituted else " (not shown: it may be a secret)"
        ctx.fail(node, f"unknown {what}{source}{hint}")

    return read


def _sendable(reader: Reader, max_bytes: int | None = None) -> Reader:
    """`reader`, then what the SNMP stack can send: valid UTF-8 text (an environment variable can
    hold bytes that are not), no control characters (a newline read from a secrets file with it),
    at most `max_bytes` once encoded. A value that fails here would fail every poll instead."""

    def read(ctx: Context, node: Node, key: str) -> str:
        text: str = reader(ctx, node, key)
        assert isinstance(node, Scalar)
        source = f" ({describe(node)})" if node.substituted else ""
        try:
            size = len(text.encode("utf-8"))
        except UnicodeEncodeError:
            ctx.fail(node, f"'{key}'{source} is not valid UTF-8 text")
        if _CONTROL.search(text):
            ctx.fail(
                node,
                f"'{key}'{source} contains a control character (a line break or tab copied "
                "with it?)",
            )
        if max_bytes is not None and size > max_bytes:
            ctx.fail(node, f"'{key}'{source} is longer than {max_bytes} bytes (UTF-8)")
        return text

    return read


AUTH_SCHEMA = Schema(
    {
        "version": _version,
        "community": _sendable(string(secret=True), MAX_COMMUNITY_BYTES),
        "username": _sendable(string(secret=True), MAX_NAME_BYTES),
        "security_level": _choice(SECURITY_LEVELS, "security_level"),
        "auth_protocol": _choice(AUTH_PROTOCOLS, "auth_protocol"),
        "auth_password": _sendable(string(secret=True, min_length=MIN_PASSWORD)),
        "priv_protocol": _choice(PRIV_PROTOCOLS, "priv_protocol"),
        "priv_password": _sendable(string(secret=True, min_length=MIN_PASSWORD)),
        "context": _sendable(string(secret=True, allow_empty=True), MAX_NAME_BYTES),
    }
)


@dataclass
class Auths:
    """`valid` by name; `broken` names were defined but rejected, so references to them are not
    reported a second time as unknown."""

    valid: dict[str, SnmpAuth]
    broken: set[str]

    def names(self) -> list[str]:
        return sorted([*self.valid, *self.broken])


def read_auths(ctx: Context, node: Node | None) -> Auths:
    auths = Auths({}, set())
    if node is None:
        return auths
    try:
        mapping = expect_mapping(ctx, node, "'auths'")
    except Invalid:
        return auths
    for key, value in mapping:
        name = key.text
        before = ctx.count()
        if not ID_PATTERN.fullmatch(name):
            ctx.error(key, f"invalid auth name {shorten(name)!r}: {ID_RULE}")
        auth = None
        with contextlib.suppress(Invalid):
            auth = _read_auth(ctx, name, expect_mapping(ctx, value, f"auth '{name}'"))
        if auth is not None and ctx.count() == before:
            auths.valid[name] = auth
        else:
            auths.broken.add(name)
    return auths


def _read_auth(ctx: Context, name: str, node: Mapping) -> SnmpAuth | None:
    subject = f"auth '{name}'"
    fields = AUTH_SCHEMA.read(ctx, node, subject)
    if not fields.written("version"):
        ctx.error(node, f"{subject} has no version (1, 2c or 3)")
        return None
    version = fields.get("version")
    if version is None:
        return None
    if version in ("1", "2c"):
        for other in V3_ONLY:
            if fields.written(other):
                ctx.error(
                    fields.keys[other],
                    f"'{other}' is only for SNMPv3 ({subject} is version {version})",
                )
        if not fields.written("community"):
            ctx.error(node, f"{subject} has no community (SNMPv{version} needs one)")
            return None
        return SnmpAuth(name=name, version=version, community=fields.get("community", ""))

    if fields.written("community"):
        ctx.error(
            fields.keys["community"],
            f"'community' is only for SNMPv1/v2c ({subject} is version 3: use username "
            "and passwords)",
        )
    for required in ("username", "security_level"):
        if not fields.written(required):
            ctx.error(node, f"{subject} has no {required} (SNMPv3 needs one)")
    level = fields.get("security_level")
    if level is not None:
        _check_level_keys(ctx, fields.keys, node, subject, level, "auth", level != "noAuthNoPriv")
        _check_level_keys(ctx, fields.keys, node, subject, level, "priv", level == "authPriv")
    return SnmpAuth(
        name=name,
        version="3",
        username=fields.get("username", ""),
        security_level=level or "noAuthNoPriv",
        auth_protocol=fields.get("auth_protocol", ""),
        auth_password=fields.get("auth_password", ""),
        priv_protocol=fields.get("priv_protocol", ""),
        priv_password=fields.get("priv_password", ""),
        context=fields.get("context", ""),
    )


def _check_level_keys(
    ctx: Context,
    keys: dict[str, Scalar],
    node: Node,
    subject: str,
    level: str,
    prefix: str,
    needed: bool,
) -> None:
    """authNoPriv needs auth_*, authPriv needs auth_* and priv_*; a key the level does not use is
    an error too, since it means the level is not what the writer intended."""
    for suffix in ("protocol", "password"):
        key = f"{prefix}_{suffix}"
        if needed and key not in keys:
            ctx.error(node, f"{subject} has no {key} (security_level {level} needs one)")
        elif not needed and key in keys:
            ctx.error(
                keys[key],
                f"'{key}' is not used with security_level {level}; remove it or raise the level",
            )
