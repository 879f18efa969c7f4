"""The `auths:` section: named SNMP credential sets.

The combinations are checked here rather than left to the first failing poll, because pysnmp and
the devices report a wrong combination only as a timeout or an opaque "not authentic" error.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

from monitor.config.model import AUTH_PROTOCOLS, PRIV_PROTOCOLS, SnmpAuth
from monitor.config.schema import (
    ID_PATTERN,
    ID_RULE,
    Context,
    Invalid,
    Schema,
    choice,
    describe,
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


def _version(ctx: Context, node: Node, key: str) -> str:
    if isinstance(node, Scalar):
        text = node.text.strip().lower()
        if (node.tag == "int" and text in ("1", "3")) or (
            node.tag == "str" and text in ("1", "2c", "3")
        ):
            return text
    ctx.fail(node, f"'{key}' must be 1, 2c or 3, got {describe(node)}")


AUTH_SCHEMA = Schema(
    {
        "version": _version,
        "community": string(secret=True),
        "username": string(),
        "security_level": choice(SECURITY_LEVELS, "security_level"),
        "auth_protocol": choice(AUTH_PROTOCOLS, "auth_protocol"),
        "auth_password": string(secret=True, min_length=MIN_PASSWORD),
        "priv_protocol": choice(PRIV_PROTOCOLS, "priv_protocol"),
        "priv_password": string(secret=True, min_length=MIN_PASSWORD),
        "context": string(allow_empty=True),
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
