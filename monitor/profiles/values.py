"""Turning raw SNMP values (int, bytes, OID tuple) into label text and numbers."""

from __future__ import annotations

import re

OID = tuple[int, ...]

_NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")


def decode_text(raw: object) -> str:
    """Agents send DisplayStrings with trailing NULs, in Latin-1, or as hex; show text as text and
    anything else as hex, never as mojibake or control characters."""
    if isinstance(raw, tuple):
        return ".".join(map(str, raw))
    if not isinstance(raw, bytes):
        return "" if raw is None or not isinstance(raw, str | int) else str(raw)
    data = raw.rstrip(b"\x00").strip()
    for encoding in ("utf-8", "latin-1"):
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError:
            continue
        if all(c.isprintable() or c in "\t\r\n" for c in text):
            return text.replace("\r", "").replace("\n", " ").replace("\t", " ")
    return data.hex(":")


def number(raw: object) -> float | None:
    """An SNMP value as a number: integers as they are, text as the first number in it
    ("22.00 degrees Celsius (NORMAL)" -> 22.0, "12%" -> 12.0); None when there is none."""
    if isinstance(raw, bool):
        return float(raw)
    if isinstance(raw, int | float):
        return float(raw)
    if isinstance(raw, bytes):
        found = _NUMBER.search(raw.decode("latin-1"))
        return float(found.group()) if found else None
    return None


def comparable(raw: object) -> str:
    """The form `where:` conditions and value maps compare against: integers as decimal text,
    OIDs dotted, strings decoded."""
    if isinstance(raw, int):
        return str(raw)
    return decode_text(raw)


def format_index(parts: OID, style: str) -> str:
    """Render (part of) a row index: dotted (default), mac, string (length-prefixed or implied),
    hex."""
    if style == "mac":
        return ":".join(f"{p:02x}" for p in parts) if all(0 <= p < 256 for p in parts) else ""
    if style == "string":
        chars = parts[1:] if parts and parts[0] == len(parts) - 1 else parts
        if not all(0 <= c < 256 for c in chars):
            return ".".join(map(str, parts))
        return decode_text(bytes(chars))
    if style == "hex":
        return bytes(p & 0xFF for p in parts).hex(":")
    return ".".join(map(str, parts))


def format_value(raw: object, style: str) -> str:
    """Render a column value as label text: `text` (default), mac/hex for octet strings."""
    if style in ("mac", "hex") and isinstance(raw, bytes):
        return raw.hex(":")
    return decode_text(raw)
