"""SNMP varbind lists without pyasn1, inside pysnmp's own message processing.

pysnmp decodes every incoming message with pyasn1, which builds objects for every varbind, name
and value; on a poll of a 48-port switch that decoding is most of the collector's CPU time
(docs/performance.md). pysnmp stays in charge of everything else — message processing, USM
authentication and decryption, request matching, retries — through one substitution: where its
modules call pyasn1's `decoder.decode`, they get `_ShimDecoder.decode`. For a message (or a
decrypted scoped PDU) that carries a Response-PDU, the shim reads the varbind list itself with
`decode_varbinds`, gives pyasn1 the same bytes with an *empty* varbind list to build pysnmp's
objects from, and hangs the decoded varbinds on that empty list for the command generators of
`snmp_client` to pick up. Anything else (reports, traps, SNMPv1 messages, whatever the fast
reader does not fully accept) is decoded by pyasn1 exactly as before. tests/test_snmp_fastpath.py
holds the fast reader to pyasn1's results on every recording and on a fuzz corpus.

Requests get the mirror image: a request PDU is built with an empty `RawRequestVarBinds` that
carries its varbind list already encoded (OIDs with NULL values), pyasn1 encodes the rest, and
`_ShimEncoder` splices the list into the encoded PDU before pysnmp encrypts and signs the message.
"""

from __future__ import annotations

from pyasn1.codec.ber import decoder as pyasn1_decoder
from pyasn1.codec.ber import encoder as pyasn1_encoder
from pyasn1.type import univ
from pysnmp.proto import rfc1157, rfc1905

from monitor import ber

OID = tuple[int, ...]


class _Sentinel:
    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


END_OF_MIB = _Sentinel("endOfMibView")
NO_SUCH = _Sentinel("noSuchObject")  # noSuchObject and noSuchInstance alike

_RESPONSE = 0xA2
_UNSIGNED = frozenset((ber.COUNTER32, ber.GAUGE32, ber.TIMETICKS, ber.COUNTER64, 0x47))
_STRINGS = frozenset((ber.OCTET_STRING, ber.IP_ADDRESS, ber.OPAQUE))
_EXCEPTIONS = {
    ber.NO_SUCH_OBJECT: NO_SUCH,
    ber.NO_SUCH_INSTANCE: NO_SUCH,
    ber.END_OF_MIB_VIEW: END_OF_MIB,
}
_oid_cache: dict[bytes, OID] = {}
_OID_CACHE_LIMIT = 500_000  # a fleet's distinct column/row OIDs; reset past it


class FastPathError(ValueError):
    """The bytes are not a varbind list this reader accepts; pyasn1 gets them instead."""


def _length(data: bytes, pos: int, end: int) -> tuple[int, int]:
    """(content start, content end) for the length octets at `pos` — definite form only, and
    never past `end`."""
    if pos >= end:
        raise FastPathError("truncated")
    first = data[pos]
    if first < 0x80:
        start, n = pos + 1, first
    else:
        count = first & 0x7F
        if count == 0 or count > 4 or pos + 1 + count > end:
            raise FastPathError("unsupported length")
        start = pos + 1 + count
        n = int.from_bytes(data[pos + 1 : start], "big")
    stop = start + n
    if stop > end:
        raise FastPathError("length beyond the enclosing value")
    return start, stop


def _decode_oid(content: bytes) -> OID:
    oid = _oid_cache.get(content)
    if oid is not None:
        return oid
    if not content or content[-1] & 0x80:
        raise FastPathError("bad OID")
    arcs: list[int] = []
    arc = 0
    leading = True
    for byte in content:
        if leading and byte == 0x80:
            raise FastPathError("non-minimal OID arc")  # pyasn1 rejects these too
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
    oid = head + tuple(arcs[1:])
    if len(_oid_cache) >= _OID_CACHE_LIMIT:
        _oid_cache.clear()
    _oid_cache[content] = oid
    return oid


def decode_varbinds(data: bytes, pos: int, end: int) -> list[tuple[OID, object]]:
    """The varbinds in data[pos:end] (the content of a VarBindList) as plain values: int, bytes,
    OID tuple, None (NULL) or the NO_SUCH / END_OF_MIB sentinels."""
    out: list[tuple[OID, object]] = []
    append = out.append
    while pos < end:
        if data[pos] != ber.SEQUENCE:
            raise FastPathError("varbind is not a SEQUENCE")
        start, stop = _length(data, pos + 1, end)
        if start >= stop or data[start] != ber.OID:
            raise FastPathError("varbind name is not an OID")
        o_start, o_stop = _length(data, start + 1, stop)
        name = _decode_oid(data[o_start:o_stop])
        if o_stop >= stop:
            raise FastPathError("varbind without a value")
        tag = data[o_stop]
        v_start, v_stop = _length(data, o_stop + 1, stop)
        if v_stop != stop:
            raise FastPathError("trailing bytes in a varbind")
        if tag in _UNSIGNED:
            content = data[v_start:v_stop]
            if not content or (len(content) > 1 and content[0] == 0 and content[1] < 0x80):
                raise FastPathError("bad unsigned integer")
            if content[0] & 0x80:
                raise FastPathError("negative unsigned integer")
            value: object = int.from_bytes(content, "big")
            if value > (0xFFFFFFFFFFFFFFFF if tag == ber.COUNTER64 else 0xFFFFFFFF):
                raise FastPathError("unsigned integer out of range")
        elif tag == ber.INTEGER:
            content = data[v_start:v_stop]
            if not content:
                raise FastPathError("empty integer")
            value = int.from_bytes(content, "big", signed=True)
            if not -(1 << 31) <= value < (1 << 31):
                raise FastPathError("Integer32 out of range")
        elif tag in _STRINGS:
            value = data[v_start:v_stop]
            if tag == ber.IP_ADDRESS and len(value) != 4:
                raise FastPathError("IpAddress is not 4 octets")
        elif tag == ber.OID:
            value = _decode_oid(data[v_start:v_stop])
        elif tag in _EXCEPTIONS:
            if v_start != v_stop:
                raise FastPathError("exception value with content")
            value = _EXCEPTIONS[tag]
        elif tag == ber.NULL:
            if v_start != v_stop:
                raise FastPathError("NULL with content")
            value = None
        else:
            raise FastPathError(f"unsupported value tag {tag:#x}")
        append((name, value))
        pos = stop
    return out


def _find_response(data: bytes) -> list[tuple[int, int, int, int]] | None:
    """The TLVs (tag, header start, content start, end) from the outer SEQUENCE down to the
    varbind list of the Response-PDU it carries, or None when it carries none (directly, or in a
    plaintext scoped PDU one level down)."""
    if len(data) < 2 or data[0] != ber.SEQUENCE:
        return None
    start, end = _length(data, 1, len(data))
    if data[start : start + 3] == b"\x02\x01\x00":
        return None  # SNMPv1: pysnmp rebuilds the PDU as v2c from pyasn1's varbinds (rare, legacy)
    path = [(ber.SEQUENCE, 0, start, end)]
    for _depth in range(2):
        pos, found = path[-1][2], None
        while pos < path[-1][3]:
            tag = data[pos]
            c_start, c_end = _length(data, pos + 1, path[-1][3])
            if tag == _RESPONSE:
                found = ("pdu", pos, c_start, c_end)
                break
            if tag == ber.SEQUENCE:  # the last one: a v3 message's scoped PDU, not its header
                found = ("seq", pos, c_start, c_end)
            pos = c_end
        if found is None:
            return None
        kind, h, c_start, c_end = found
        path.append((data[h], h, c_start, c_end))
        if kind == "pdu":
            # request-id, error-status, error-index, then the varbind list
            pos = c_start
            for _ in range(3):
                if pos >= c_end or data[pos] != ber.INTEGER:
                    return None
                pos = _length(data, pos + 1, c_end)[1]
            if pos >= c_end or data[pos] != ber.SEQUENCE:
                return None
            v_start, v_end = _length(data, pos + 1, c_end)
            if v_end != c_end:
                return None
            path.append((ber.SEQUENCE, pos, v_start, v_end))
            return path
    return None


def _without_varbinds(data: bytes, path: list[tuple[int, int, int, int]]) -> bytes:
    """`data` with the varbind list emptied and every enclosing length rewritten."""
    return _replace_varbinds(data, path, b"\x30\x00")


def _replace_varbinds(
    data: bytes, path: list[tuple[int, int, int, int]], replacement: bytes
) -> bytes:
    """`data` with the last TLV of `path` replaced and every enclosing length rewritten."""
    for level in range(len(path) - 2, -1, -1):
        tag, _h, start, end = path[level]
        _ctag, child_h, _cs, child_end = path[level + 1]
        content = data[start:child_h] + replacement + data[child_end:end]
        replacement = bytes((tag,)) + ber.length(len(content)) + content
    return replacement + data[path[0][3] :]


_RESPONSE_TYPES = (rfc1905.ResponsePDU, rfc1157.GetResponsePDU)


class RawVarBinds(rfc1905.VarBindList):
    """An empty VarBindList that carries the varbinds decoded by the fast path."""

    plain: list[tuple[OID, object]]


def _find(obj, wanted, depth: int = 6):
    """The first object inside what pyasn1 built (a message or a scoped PDU) for which
    `wanted(obj)` gives something, searched a few levels deep; None if none."""
    found = wanted(obj)
    if found is not None or depth == 0:
        return found
    if isinstance(obj, univ.Choice):
        components = [obj.getComponent()] if obj.isValue else []
    elif isinstance(obj, univ.Sequence):
        components = [obj.getComponentByPosition(i) for i in range(len(obj))]
    else:
        return None
    for component in components:
        found = _find(component, wanted, depth - 1)
        if found is not None:
            return found
    return None


def _pdus_in(obj):
    """The Response-PDU object inside what pyasn1 built."""
    return _find(obj, lambda o: o if isinstance(o, _RESPONSE_TYPES) else None)


class _ShimDecoder:
    """Stands in for `pyasn1.codec.ber.decoder` in pysnmp's message processing modules."""

    stats = {"fast": 0, "fallback": 0}

    @staticmethod
    def decode(substrate, asn1Spec=None, **options):
        data = bytes(substrate) if not isinstance(substrate, bytes) else substrate
        try:
            path = _find_response(data)
            if path is not None:
                _tag, _h, v_start, v_end = path[-1]
                plain = decode_varbinds(data, v_start, v_end)
                obj, rest = pyasn1_decoder.decode(
                    _without_varbinds(data, path), asn1Spec=asn1Spec, **options
                )
                pdu = _pdus_in(obj)
                if pdu is not None:
                    varbinds = RawVarBinds()
                    varbinds.plain = plain
                    pdu.setComponentByPosition(3, varbinds)
                    _ShimDecoder.stats["fast"] += 1
                    return obj, rest
        except (FastPathError, IndexError):
            pass
        _ShimDecoder.stats["fallback"] += 1
        return pyasn1_decoder.decode(substrate, asn1Spec=asn1Spec, **options)


# --- requests ---------------------------------------------------------------------------------

_REQUESTS = frozenset((ber.GET, ber.GET_NEXT, ber.GET_BULK))
_encoded_oids: dict[OID, bytes] = {}


class RawRequestVarBinds(rfc1905.VarBindList):
    """An empty VarBindList carrying the request's varbind list, encoded (NULL values)."""

    encoded: bytes


def request_varbinds(oids: list[OID]) -> RawRequestVarBinds:
    parts = []
    for oid in oids:
        encoded = _encoded_oids.get(oid)
        if encoded is None:
            if len(_encoded_oids) >= _OID_CACHE_LIMIT:
                _encoded_oids.clear()
            encoded = _encoded_oids[oid] = ber.tlv(ber.SEQUENCE, ber.oid(oid) + ber.NULL_VALUE)
        parts.append(encoded)
    varbinds = RawRequestVarBinds()
    varbinds.clear()  # an empty value, not a schema: pyasn1 encodes it as 30 00
    varbinds.encoded = b"".join(parts)
    return varbinds


def _raw_request_in(obj) -> RawRequestVarBinds | None:
    def raw(o):
        if isinstance(o, univ.Sequence) and len(o) == 4:
            last = o.getComponentByPosition(3)
            if isinstance(last, RawRequestVarBinds):
                return last
        return None

    return _find(obj, raw)


def _find_request(data: bytes) -> list[tuple[int, int, int, int]] | None:
    """Like _find_response, for the (empty) varbind list of a request PDU we encoded."""
    if len(data) < 2 or data[0] != ber.SEQUENCE:
        return None
    start, end = _length(data, 1, len(data))
    path = [(ber.SEQUENCE, 0, start, end)]
    for _depth in range(2):
        pos, found = path[-1][2], None
        while pos < path[-1][3]:
            tag = data[pos]
            c_start, c_end = _length(data, pos + 1, path[-1][3])
            if tag in _REQUESTS:
                found = ("pdu", pos, c_start, c_end)
                break
            if tag == ber.SEQUENCE:
                found = ("seq", pos, c_start, c_end)
            pos = c_end
        if found is None:
            return None
        kind, h, c_start, c_end = found
        path.append((data[h], h, c_start, c_end))
        if kind == "pdu":
            pos = c_start
            for _ in range(3):
                pos = _length(data, pos + 1, c_end)[1]
            if data[pos:c_end] != b"\x30\x00":
                return None
            path.append((ber.SEQUENCE, pos, pos + 2, c_end))
            return path
    return None


class _ShimEncoder:
    """Stands in for `pyasn1.codec.ber.encoder` where pysnmp encodes outgoing messages."""

    @staticmethod
    def encode(value, **options):
        encoded = pyasn1_encoder.encode(value, **options)
        raw = _raw_request_in(value)
        if raw is None:
            return encoded
        path = _find_request(encoded)
        if path is None:  # cannot happen for a PDU we built; refuse rather than send it empty
            raise FastPathError("encoded request without its varbind list")
        varbinds = bytes((ber.SEQUENCE,)) + ber.length(len(raw.encoded)) + raw.encoded
        return _replace_varbinds(encoded, path, varbinds)


_installed = False


def install() -> None:
    """Point pysnmp's message decoding and encoding at the shims (once per process)."""
    global _installed
    if _installed:
        return
    from pysnmp.proto.mpmod import rfc2576, rfc3412
    from pysnmp.proto.secmod import rfc2576 as community
    from pysnmp.proto.secmod.rfc3414 import service

    for module in (rfc2576, rfc3412, service):
        module.decoder = _ShimDecoder  # type: ignore[attr-defined]
    for module in (community, service):
        module.encoder = _ShimEncoder  # type: ignore[attr-defined]
    _installed = True


def plain_varbinds(pdu) -> list[tuple[OID, object]] | None:
    """The fast-path varbinds of a Response-PDU, or None when pyasn1 decoded it."""
    if pdu is None:
        return None
    varbinds = pdu.getComponentByPosition(3)
    return getattr(varbinds, "plain", None)
