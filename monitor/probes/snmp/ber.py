"""The slice of BER (X.690) SNMP needs: one strict codec, written for speed rather than generality.

Two hot paths use it: the collector's reading of Response-PDU varbind lists inside pysnmp (see
pysnmp_adapter.py), and the lab's agents, which answer thousands of requests a second (a request
is read with a handful of slicing operations, a response assembled from cached encodings).
pyasn1, which pysnmp uses, builds an object tree per value and is an order of magnitude slower.

Strict means: definite lengths only, never past the enclosing value, minimal OID arcs, unsigned
types without a sign, every value in its type's range. Anything else raises BerError, and the
caller hands the bytes to pyasn1 (collector) or drops the datagram (lab), as a real agent would.
"""

from __future__ import annotations

INTEGER, OCTET_STRING, NULL, OID, SEQUENCE = 0x02, 0x04, 0x05, 0x06, 0x30
IP_ADDRESS, COUNTER32, GAUGE32, TIMETICKS, OPAQUE, COUNTER64 = 0x40, 0x41, 0x42, 0x43, 0x44, 0x46
UNSIGNED32 = 0x47
NO_SUCH_OBJECT, NO_SUCH_INSTANCE, END_OF_MIB_VIEW = 0x80, 0x81, 0x82
GET, GET_NEXT, RESPONSE, SET, GET_BULK, REPORT = 0xA0, 0xA1, 0xA2, 0xA3, 0xA5, 0xA8

END_OF_MIB_VALUE = b"\x82\x00"
NO_SUCH_INSTANCE_VALUE = b"\x81\x00"
NULL_VALUE = b"\x05\x00"

Oid = tuple[int, ...]
Path = list[tuple[int, int, int, int]]  # (tag, header start, content start, content end) per level


class BerError(ValueError):
    """The bytes are not the SNMP this codec accepts."""


class _Sentinel:
    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


END_OF_MIB = _Sentinel("endOfMibView")
NO_SUCH = _Sentinel("noSuchObject")  # noSuchObject and noSuchInstance alike

# --- encoding ---------------------------------------------------------------------------------


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


def oid(parts: Oid) -> bytes:
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


# --- decoding ---------------------------------------------------------------------------------


def bounds(data: bytes, pos: int, end: int) -> tuple[int, int]:
    """(content start, content end) for the length octets at `pos`: definite form only, and
    never past `end`."""
    if pos >= end:
        raise BerError("truncated")
    first = data[pos]
    if first < 0x80:
        start, n = pos + 1, first
    else:
        count = first & 0x7F
        if count == 0 or count > 4 or pos + 1 + count > end:
            raise BerError("unsupported length")
        start = pos + 1 + count
        n = int.from_bytes(data[pos + 1 : start], "big")
    stop = start + n
    if stop > end:
        raise BerError("length beyond the enclosing value")
    return start, stop


def read_header(data: bytes, pos: int, end: int | None = None) -> tuple[int, int, int]:
    """(tag, content start, content end) of the TLV at `pos`, inside data[:end]."""
    end = len(data) if end is None else end
    if pos >= end:
        raise BerError("truncated header")
    start, stop = bounds(data, pos + 1, end)
    return data[pos], start, stop


def read_int(data: bytes, pos: int, expect: int = INTEGER) -> tuple[int, int]:
    tag, start, end = read_header(data, pos)
    if tag != expect:
        raise BerError(f"expected tag {expect:#x}, got {tag:#x}")
    if start == end:
        raise BerError("empty integer")
    return int.from_bytes(data[start:end], "big", signed=True), end


def read_octets(data: bytes, pos: int) -> tuple[bytes, int]:
    tag, start, end = read_header(data, pos)
    if tag != OCTET_STRING:
        raise BerError("expected OCTET STRING")
    return data[start:end], end


_oid_cache: dict[bytes, Oid] = {}
_OID_CACHE_LIMIT = 500_000  # a fleet's distinct column/row OIDs; reset past it


def decode_oid(content: bytes) -> Oid:
    oid_ = _oid_cache.get(content)
    if oid_ is not None:
        return oid_
    if not content or content[-1] & 0x80:
        raise BerError("bad OID")
    arcs: list[int] = []
    arc = 0
    leading = True
    for byte in content:
        if leading and byte == 0x80:
            raise BerError("non-minimal OID arc")  # pyasn1 rejects these too
        arc = (arc << 7) | (byte & 0x7F)
        if byte & 0x80:
            leading = False
            continue
        arcs.append(arc)
        arc = 0
        leading = True
    first = arcs[0]
    if first < 40:
        head = (0, first)
    elif first < 80:
        head = (1, first - 40)
    else:
        head = (2, first - 80)
    oid_ = head + tuple(arcs[1:])
    if len(_oid_cache) >= _OID_CACHE_LIMIT:
        _oid_cache.clear()
    _oid_cache[content] = oid_
    return oid_


def read_varbind_names(data: bytes, pos: int, end: int) -> list[Oid]:
    """The OIDs of a request's varbind list (values are NULL in requests and ignored)."""
    names = []
    while pos < end:
        tag, start, vb_end = read_header(data, pos, end)
        if tag != SEQUENCE:
            raise BerError("varbind is not a SEQUENCE")
        tag, o_start, o_end = read_header(data, start, vb_end)
        if tag != OID:
            raise BerError("varbind name is not an OID")
        names.append(decode_oid(data[o_start:o_end]))
        pos = vb_end
    return names


_UNSIGNED = frozenset((COUNTER32, GAUGE32, TIMETICKS, COUNTER64, UNSIGNED32))
_STRINGS = frozenset((OCTET_STRING, IP_ADDRESS, OPAQUE))
_EXCEPTIONS = {
    NO_SUCH_OBJECT: NO_SUCH,
    NO_SUCH_INSTANCE: NO_SUCH,
    END_OF_MIB_VIEW: END_OF_MIB,
}


def decode_varbinds(data: bytes, pos: int, end: int) -> list[tuple[Oid, object]]:
    """The varbinds in data[pos:end] (the content of a VarBindList) as plain values: int, bytes,
    OID tuple, None (NULL) or the NO_SUCH / END_OF_MIB sentinels."""
    out: list[tuple[Oid, object]] = []
    append = out.append
    while pos < end:
        if data[pos] != SEQUENCE:
            raise BerError("varbind is not a SEQUENCE")
        start, stop = bounds(data, pos + 1, end)
        if start >= stop or data[start] != OID:
            raise BerError("varbind name is not an OID")
        o_start, o_stop = bounds(data, start + 1, stop)
        name = decode_oid(data[o_start:o_stop])
        if o_stop >= stop:
            raise BerError("varbind without a value")
        tag = data[o_stop]
        v_start, v_stop = bounds(data, o_stop + 1, stop)
        if v_stop != stop:
            raise BerError("trailing bytes in a varbind")
        if tag in _UNSIGNED:
            content = data[v_start:v_stop]
            if not content or (len(content) > 1 and content[0] == 0 and content[1] < 0x80):
                raise BerError("bad unsigned integer")
            if content[0] & 0x80:
                raise BerError("negative unsigned integer")
            value: object = int.from_bytes(content, "big")
            if value > (0xFFFFFFFFFFFFFFFF if tag == COUNTER64 else 0xFFFFFFFF):
                raise BerError("unsigned integer out of range")
        elif tag == INTEGER:
            content = data[v_start:v_stop]
            if not content:
                raise BerError("empty integer")
            value = int.from_bytes(content, "big", signed=True)
            if not -(1 << 31) <= value < (1 << 31):
                raise BerError("Integer32 out of range")
        elif tag in _STRINGS:
            value = data[v_start:v_stop]
            if tag == IP_ADDRESS and len(value) != 4:
                raise BerError("IpAddress is not 4 octets")
        elif tag == OID:
            value = decode_oid(data[v_start:v_stop])
        elif tag in _EXCEPTIONS:
            if v_start != v_stop:
                raise BerError("exception value with content")
            value = _EXCEPTIONS[tag]
        elif tag == NULL:
            if v_start != v_stop:
                raise BerError("NULL with content")
            value = None
        else:
            raise BerError(f"unsupported value tag {tag:#x}")
        append((name, value))
        pos = stop
    return out


# --- the varbind list inside a whole message --------------------------------------------------


def find_varbinds(data: bytes, pdu_tags: frozenset[int]) -> Path | None:
    """The TLVs from the outer SEQUENCE of an SNMPv2c/v3 message down to the varbind list of the
    PDU (one of `pdu_tags`) it carries, directly or in a plaintext scoped PDU one level down; None
    when it carries none, or for SNMPv1 (pysnmp rebuilds v1 PDUs from pyasn1's varbinds)."""
    if len(data) < 2 or data[0] != SEQUENCE:
        return None
    start, end = bounds(data, 1, len(data))
    if data[start : start + 3] == b"\x02\x01\x00":
        return None
    path: Path = [(SEQUENCE, 0, start, end)]
    for _depth in range(2):
        pos, found = path[-1][2], None
        while pos < path[-1][3]:
            tag = data[pos]
            c_start, c_end = bounds(data, pos + 1, path[-1][3])
            if tag in pdu_tags:
                found = (True, pos, c_start, c_end)
                break
            if tag == SEQUENCE:  # the last one: a v3 message's scoped PDU, not its header
                found = (False, pos, c_start, c_end)
            pos = c_end
        if found is None:
            return None
        is_pdu, h, c_start, c_end = found
        path.append((data[h], h, c_start, c_end))
        if is_pdu:
            # request-id, error-status (non-repeaters), error-index (max-repetitions), varbinds
            pos = c_start
            for _ in range(3):
                if pos >= c_end or data[pos] != INTEGER:
                    return None
                pos = bounds(data, pos + 1, c_end)[1]
            if pos >= c_end or data[pos] != SEQUENCE:
                return None
            v_start, v_end = bounds(data, pos + 1, c_end)
            if v_end != c_end:
                return None
            path.append((SEQUENCE, pos, v_start, v_end))
            return path
    return None


def replace_last(data: bytes, path: Path, replacement: bytes) -> bytes:
    """`data` with the last TLV of `path` replaced and every enclosing length rewritten."""
    for level in range(len(path) - 2, -1, -1):
        tag, _h, start, end = path[level]
        _ctag, child_h, _cs, child_end = path[level + 1]
        content = data[start:child_h] + replacement + data[child_end:end]
        replacement = bytes((tag,)) + length(len(content)) + content
    return replacement + data[path[0][3] :]
