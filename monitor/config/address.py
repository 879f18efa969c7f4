"""Target addresses: an IP literal or DNS name, optionally with the SNMP port.

Accepted forms: `192.0.2.1`, `192.0.2.1:1161`, `2001:db8::1`, `[2001:db8::1]`, `[2001:db8::1]:1161`,
`sw1.school.example`, `sw1.school.example:1161`. An IPv6 literal with a port needs the brackets,
otherwise the port would read as the last group of the address.
"""

from __future__ import annotations

import ipaddress
import re

__all__ = ["parse_address"]

_LABEL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?")
_PORT = re.compile(r"[0-9]{1,5}")


def parse_address(text: str) -> tuple[str, int | None]:
    """Split `text` into (host, port); host has no brackets, port is None when not given.

    Raises ValueError with the reason.
    """
    if text != text.strip() or not text:
        raise ValueError("an address must not be empty or contain spaces")
    if text.startswith("["):
        close = text.find("]")
        if close == -1:
            raise ValueError("'[' without a closing ']'")
        host, rest = text[1:close], text[close + 1 :]
        if rest and not rest.startswith(":"):
            raise ValueError("only ':port' may follow ']'")
        port = _parse_port(rest[1:]) if rest else None
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise ValueError("brackets are only for IPv6 addresses") from None
        return host, port
    if text.count(":") > 1:
        try:
            ipaddress.IPv6Address(text)
        except ValueError:
            raise ValueError(
                "not a valid IPv6 address (with a port, write it as [address]:port)"
            ) from None
        return text, None
    host, sep, port_text = text.partition(":")
    port = _parse_port(port_text) if sep else None
    _check_host(host)
    return host, port


def _parse_port(text: str) -> int:
    if not _PORT.fullmatch(text) or not 1 <= int(text) <= 65535:
        raise ValueError("the port must be a number from 1 to 65535")
    return int(text)


def _check_host(host: str) -> None:
    labels = host.removesuffix(".").split(".")
    # All-numeric dotted text is meant as IPv4 ("127.0.0.256" is a typo, not a host name).
    if all(label.isdigit() for label in labels):
        try:
            ipaddress.IPv4Address(host)
        except ValueError:
            raise ValueError("not a valid IPv4 address") from None
        return
    if len(host) > 253 or not all(_LABEL.fullmatch(label) for label in labels):
        raise ValueError(
            "not a valid IP address or host name (host names are dot-separated labels of "
            "letters, digits and '-', 1 to 63 characters each)"
        )
