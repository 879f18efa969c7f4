"""The slice of BER (X.690) SNMP needs, written for speed rather than generality.

Two hot paths use it: the lab's agents, which answer thousands of requests a second (a request is
read with a handful of slicing operations, a response assembled from cached encodings), and the
collector's reading of Response-PDU varbind lists (see probes/snmp_fastpath.py). pyasn1, which
pysnmp uses, builds an object tree per value and is an order of magnitude slower.
"""

from __future__ import annotations

INTEGER, OCTET_STRING, NULL, OID, SEQUENCE = 0x02, 0x04, 0x05, 0x06, 0x30
IP_ADDRESS, COUNTER32, GAUGE32, TIMETICKS, OPAQUE, COUNTER64 = 0x40, 0x41, 0x42, 0x43, 0x44, 0x46
NO_SUCH_OBJECT, NO_SUCH_INSTANCE, END_OF_MIB_VIEW = 0x80, 0x81, 0x82
GET, GET_NEXT, RESPONSE, SET, GET_BULK, REPORT = 0xA0, 0xA1, 0xA2, 0xA3, 0xA5, 0xA8


class BerError(ValueError):
    """The datagram is not the SNMP the lab understands; it is dropped, like a real agent would."""


def length(n: int) -> bytes:
    if n < 0x80:
        return bytes((n,))
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes((0x80 | len(body),)) + body


def tlv(tag: int, content: bytes) -> bytes:
    n = len(content)
    if n < 0x80:
        return bytes((tag, n)) + content
    return bytes((tag,)) + length(n) + content


def integer(value: int, tag: int = INTEGER) -> bytes:
    """Signed two's complement for INTEGER; the unsigned application types (Counter32/64,
    Gauge32, TimeTicks) get a leading zero byte when their top bit is set."""
    if tag == INTEGER:
        body = value.to_bytes(
            max(1, (value + (value < 0)).bit_length() // 8 + 1), "big", signed=True
        )
    else:
        body = value.to_bytes(value.bit_length() // 8 + 1, "big")
    return tlv(tag, body)


def oid(parts: tuple[int, ...]) -> bytes:
    if len(parts) < 2:
        raise BerError("OID needs at least two arcs")
    body = bytearray((parts[0] * 40 + parts[1],))
    for arc in parts[2:]:
        if arc < 0x80:
            body.append(arc)
            continue
        chunk = []
        while arc:
            chunk.append((arc & 0x7F) | 0x80)
            arc >>= 7
        chunk[0] &= 0x7F
        body.extend(reversed(chunk))
    return tlv(OID, bytes(body))


def read_header(data: bytes, pos: int) -> tuple[int, int, int]:
    """(tag, content start, content end) of the TLV at `pos`."""
    try:
        tag = data[pos]
        first = data[pos + 1]
    except IndexError:
        raise BerError("truncated header") from None
    pos += 2
    if first & 0x80:
        count = first & 0x7F
        if not 0 < count <= 4:
            raise BerError("unsupported length")
        n = int.from_bytes(data[pos : pos + count], "big")
        pos += count
    else:
        n = first
    end = pos + n
    if end > len(data):
        raise BerError("truncated value")
    return tag, pos, end


def read_int(data: bytes, pos: int, expect: int = INTEGER) -> tuple[int, int]:
    tag, start, end = read_header(data, pos)
    if tag != expect:
        raise BerError(f"expected tag {expect:#x}, got {tag:#x}")
    return int.from_bytes(data[start:end], "big", signed=True), end


def read_octets(data: bytes, pos: int) -> tuple[bytes, int]:
    tag, start, end = read_header(data, pos)
    if tag != OCTET_STRING:
        raise BerError("expected OCTET STRING")
    return data[start:end], end


def decode_oid(content: bytes) -> tuple[int, ...]:
    if not content:
        raise BerError("empty OID")
    first = content[0]
    parts = [min(first // 40, 2), first - 40 * min(first // 40, 2)]
    arc = 0
    for byte in content[1:]:
        arc = (arc << 7) | (byte & 0x7F)
        if not byte & 0x80:
            parts.append(arc)
            arc = 0
    return tuple(parts)


def read_varbind_names(data: bytes, pos: int, end: int) -> list[tuple[int, ...]]:
    """The OIDs of a request's varbind list (values are NULL in requests and ignored)."""
    names = []
    while pos < end:
        tag, start, vb_end = read_header(data, pos)
        if tag != SEQUENCE:
            raise BerError("varbind is not a SEQUENCE")
        tag, o_start, o_end = read_header(data, start)
        if tag != OID:
            raise BerError("varbind name is not an OID")
        names.append(decode_oid(data[o_start:o_end]))
        pos = vb_end
    return names


END_OF_MIB = b"\x82\x00"
NO_SUCH_OBJECT_VALUE = b"\x80\x00"
NO_SUCH_INSTANCE_VALUE = b"\x81\x00"
NULL_VALUE = b"\x05\x00"


_UNSIGNED_TAGS = frozenset((COUNTER32, GAUGE32, TIMETICKS, COUNTER64, 0x47))
_SIGNED_TAGS = frozenset((INTEGER,))
