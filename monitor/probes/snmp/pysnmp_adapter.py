"""Every place we reach below pysnmp's public API, in one module, verified when it is imported.

pysnmp stays the SNMP implementation (message processing, USM security, transport, retries). We go
below its high-level API in four places (the costs behind 1-3: docs/performance.md):

1. Requests go straight to the message dispatcher (`send_request`), with the transport address and
   security parameters, and are filed in the command generator's private pending-request table
   (`_CommandGenerator__pendingReqs`) as `CommandGenerator.send_pdu` would after its SNMP-TARGET-MIB
   lookup: a table entry per target cost ~4.5 ms of MIB writes and made the community model rebuild
   its address map on every response.
2. The fast path for responses: where pysnmp's message processing calls pyasn1's
   `decoder.decode`, it gets `_ShimDecoder.decode`. For a message (or a decrypted scoped PDU) that
   carries a Response-PDU, the shim reads the varbind list itself with ber.decode_varbinds, gives
   pyasn1 the same bytes with an *empty* varbind list to build pysnmp's objects from, and hangs
   the plain varbinds on that empty list (`RawVarBinds`) for `plain_varbinds()` to pick up.
   Anything else (reports, traps, SNMPv1, whatever the strict codec refuses) is decoded by pyasn1
   exactly as before. tests/test_snmp_fastpath.py holds it to pyasn1 on every recording.
3. The fast path for requests, the mirror image: a request PDU carries its varbind list already
   encoded (`RawRequestVarBinds`) and `_ShimEncoder` splices it into what pyasn1 encoded.
4. The gate: every datagram our engines receive must carry the message id of an outstanding
   request (the v1/v2c request-id, the v3 msgID) *and* come from the address and port that request
   went to, looked up in pysnmp's message cache (`Cache.__msgIdIndex`), before pysnmp decodes any of
   it; anything else is counted and dropped (issue 15: unsolicited 64 KB responses cost ~200 ms of
   pyasn1 each, and a device that read our sequential ids forged answers for a stopped agent). The
   message ids themselves come from os.urandom instead of pysnmp's one counter per process.

The shims replace the module-global `decoder`/`encoder` names of four pysnmp modules, but they act
only while one of *our* engines (`adopt()`) sends or receives: any other pysnmp engine in the
process gets pyasn1 untouched. Each of these touchpoints is checked below at import, so an
unsupported pysnmp fails at start-up with `pysnmp X.Y is not supported (needs ...)`, not mid-poll.
"""

from __future__ import annotations

import inspect
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import pysnmp
from pyasn1.codec.ber import decoder as pyasn1_decoder
from pyasn1.codec.ber import encoder as pyasn1_encoder
from pyasn1.type import univ
from pysnmp.entity.engine import SnmpEngine
from pysnmp.entity.rfc3413 import cmdgen
from pysnmp.proto import rfc1157, rfc1902, rfc1905, rfc3412
from pysnmp.proto.api import v2c
from pysnmp.proto.mpmod import base as mp_base
from pysnmp.proto.mpmod import cache as rfc3412_mp_cache
from pysnmp.proto.mpmod import rfc2576 as mp_v1
from pysnmp.proto.mpmod import rfc3412 as mp_v3
from pysnmp.proto.proxy import rfc2576 as proxy
from pysnmp.proto.secmod import rfc2576 as sec_community
from pysnmp.proto.secmod.rfc3414 import service as sec_usm

from monitor.logs import event
from monitor.probes.snmp import ber

log = logging.getLogger(__name__)
SUPPORTED = "7.1"
Oid = tuple[int, ...]


class UnsupportedPysnmp(ImportError):
    """The installed pysnmp lacks an internal this module relies on."""


# --- the checks -------------------------------------------------------------------------------

_SEND_PDU_PARAMETERS = [
    "self",
    "snmpEngine",
    "transportDomain",
    "transportAddress",
    "messageProcessingModel",
    "securityModel",
    "securityName",
    "securityLevel",
    "contextEngineId",
    "contextName",
    "pduVersion",
    "PDU",
    "expectResponse",
    "timeout",
    "cbFun",
    "cbCtx",
]
# the 14 names CommandGenerator.process_response_pdu unpacks a pending-request entry into
_PENDING_ENTRY = ("origPdu", "origTimeout", "origRetryCount", "origRetries", "origDiscoveryRetries")


def _problems() -> list[str]:
    problems = []
    if ".".join(pysnmp.__version__.split(".")[:2]) != SUPPORTED:
        problems.append(f"version {SUPPORTED}.x")
    if not isinstance(
        getattr(cmdgen.GetCommandGenerator(), "_CommandGenerator__pendingReqs", None), dict
    ):
        problems.append("CommandGenerator.__pendingReqs")
    names = cmdgen.CommandGenerator.process_response_pdu.__code__.co_varnames
    if not all(name in names for name in _PENDING_ENTRY):
        problems.append("the 14-field pending-request entry of CommandGenerator")
    dispatcher = getattr(rfc3412, "MsgAndPduDispatcher", None)
    send_pdu = getattr(dispatcher, "send_pdu", None)
    if send_pdu is None or list(inspect.signature(send_pdu).parameters) != _SEND_PDU_PARAMETERS:
        problems.append("MsgAndPduDispatcher.send_pdu(" + ", ".join(_SEND_PDU_PARAMETERS[1:]) + ")")
    if not hasattr(dispatcher, "receive_message"):
        problems.append("MsgAndPduDispatcher.receive_message")
    cache = getattr(rfc3412_mp_cache, "Cache", None)
    if cache is None or not isinstance(getattr(cache(), "_Cache__msgIdIndex", None), dict):
        problems.append("pysnmp.proto.mpmod.cache.Cache.__msgIdIndex")
    for model in (mp_v1, mp_v3):
        if "transportAddress=transportAddress" not in inspect.getsource(model):
            problems.append(f"the transport address in {model.__name__}'s message cache")
    if "self._cache = cache.Cache()" not in inspect.getsource(mp_base):
        problems.append("a message cache per message processing model (`_cache`)")
    engine_source = inspect.getsource(SnmpEngine)
    if "self.message_dispatcher.receive_message(" not in engine_source:
        problems.append("SnmpEngine receiving through self.message_dispatcher")
    for module, name in (
        (mp_v1, "decoder"),
        (mp_v3, "decoder"),
        (sec_usm, "decoder"),
        (sec_community, "encoder"),
        (sec_usm, "encoder"),
    ):
        if getattr(module, name, None) not in (
            pyasn1_decoder,
            pyasn1_encoder,
            _ShimDecoder,
            _ShimEncoder,
        ):
            problems.append(f"{module.__name__}.{name} (pyasn1's)")
    for owner, name in (
        (cmdgen, "getNextHandle"),
        (proxy, "v2_to_v1"),
        (v2c.apiPDU, "get_error_status"),
        (v2c.apiPDU, "get_error_index"),
        (v2c.apiPDU, "get_varbinds"),
        (v2c.apiBulkPDU, "set_non_repeaters"),
        (v2c.apiBulkPDU, "set_max_repetitions"),
    ):
        if not hasattr(owner, name):
            problems.append(f"{getattr(owner, '__name__', type(owner).__name__)}.{name}")
    return problems


# --- which engines the shims act for ----------------------------------------------------------


@dataclass
class ReceiveStats:
    """What our engines received: Response-PDUs read by the fast path or by pyasn1, and datagrams
    dropped before any decoding because they answer no outstanding request of ours."""

    fast: int = 0
    fallback: int = 0
    unmatched: int = 0  # no outstanding request with that id to that address and port
    malformed: int = 0  # not an SNMP response whose id can even be read
    last_logged: float = 0.0  # monotonic time of the last "dropped" log line
    logged_drops: int = 0  # drops already told in a log line


class _Scope(threading.local):
    stats: ReceiveStats | None = None


_scope = _Scope()


@contextmanager
def acting_for(stats: ReceiveStats | None) -> Iterator[None]:
    """While inside, the shims act (and count into `stats`); what our engines' dispatchers run."""
    outer = _scope.stats
    _scope.stats = stats
    try:
        yield
    finally:
        _scope.stats = outer


def _scoped(function: Callable, stats: ReceiveStats) -> Callable:
    def call(*args, **kwargs):
        with acting_for(stats):
            return function(*args, **kwargs)

    return call


def adopt(engine: SnmpEngine, stats: ReceiveStats) -> SnmpEngine:
    """Make `engine` one of ours: the fast paths act for it (counting into `stats`), every
    datagram it receives must answer one of its outstanding requests, from the address and port
    the request went to, before pysnmp decodes anything of it, and the ids it gives requests are
    unpredictable. Everything an engine sends or receives goes through its message dispatcher,
    whose two entry points are wrapped here; message ids come from its message processing models'
    caches, whose generator is replaced for this engine only."""
    dispatcher = engine.message_dispatcher
    receive = _scoped(dispatcher.receive_message, stats)

    def receive_message(snmpEngine, transportDomain, transportAddress, wholeMsg):
        if not _answers_a_request(snmpEngine, transportAddress, wholeMsg, stats):
            return b""
        return receive(snmpEngine, transportDomain, transportAddress, wholeMsg)

    dispatcher.receive_message = receive_message
    dispatcher.send_pdu = _scoped(dispatcher.send_pdu, stats)
    for model in engine.message_processing_subsystems.values():
        model._cache.new_message_id = _unpredictable_ids(model._cache)
    return engine


def _unpredictable_ids(cache) -> Callable[[], int]:
    """Message ids (the request-id on the wire for SNMPv1/v2c, msgID for v3) an observer of our
    requests cannot guess, unlike pysnmp's one sequential counter per process; never one that is
    still outstanding in this cache."""
    outstanding = cache._Cache__msgIdIndex

    def new_message_id() -> int:
        while True:
            candidate = int.from_bytes(os.urandom(4), "big") & 0x7FFFFFFF
            if candidate and candidate not in outstanding:
                return candidate

    return new_message_id


def _message_id(data: bytes) -> tuple[int, int] | None:
    """(message processing model, message id) of a response, read with the strict codec without
    decoding anything else: the request-id of a v1/v2c Response-PDU, the msgID of a v3 message
    (its PDU may still be encrypted; USM checks it after). None if it is neither."""
    tag, start, end = ber.read_header(data, 0)
    if tag != ber.SEQUENCE or end != len(data):
        return None
    version, pos = ber.read_int(data, start)
    if version in (0, 1):
        _community, pos = ber.read_octets(data, pos)
        tag, pdu_start, _pdu_end = ber.read_header(data, pos, end)
        if tag != ber.RESPONSE:
            return None
        return version, ber.read_int(data, pdu_start)[0]
    if version == 3:
        tag, header_start, _header_end = ber.read_header(data, pos, end)
        if tag != ber.SEQUENCE:
            return None
        return 3, ber.read_int(data, header_start)[0]
    return None


_LOG_EVERY = 60.0  # seconds between two "dropped" log lines


def _answers_a_request(engine, source, data: bytes, stats: ReceiveStats) -> bool:
    """True if `data` from `source` answers an outstanding request of `engine` (same message id,
    sent to that address and port); else it is counted, logged at most once a minute, dropped."""
    try:
        found = _message_id(data)
    except (ber.BerError, IndexError):
        found = None
    if found is None:
        stats.malformed += 1
        _log_drop(stats, source, "not an SNMP response")
        return False
    model = engine.message_processing_subsystems.get(found[0])
    entry = model._cache._Cache__msgIdIndex.get(found[1]) if model is not None else None
    if entry is None or tuple(entry[0]["transportAddress"])[:2] != tuple(source)[:2]:
        stats.unmatched += 1
        _log_drop(stats, source, "answers no request of ours")
        return False
    return True


def _log_drop(stats: ReceiveStats, source, why: str) -> None:
    now = time.monotonic()
    if stats.last_logged and now - stats.last_logged < _LOG_EVERY:
        return
    dropped = stats.unmatched + stats.malformed
    event(
        log,
        logging.WARNING,
        "dropped SNMP datagrams before decoding",
        source=":".join(str(part) for part in tuple(source)[:2]),
        reason=why,
        dropped=dropped - stats.logged_drops,
    )
    stats.last_logged, stats.logged_drops = now, dropped


# --- responses --------------------------------------------------------------------------------

_RESPONSE_TYPES = (rfc1905.ResponsePDU, rfc1157.GetResponsePDU)
_RESPONSE_TAGS = frozenset((ber.RESPONSE,))
_REQUEST_TAGS = frozenset((ber.GET, ber.GET_NEXT, ber.GET_BULK))
_EMPTY_VARBINDS = b"\x30\x00"


class RawVarBinds(rfc1905.VarBindList):
    """An empty VarBindList that carries the varbinds decoded by the fast path."""

    plain: list[tuple[Oid, object]]


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


def _response_in(obj):
    return _find(obj, lambda o: o if isinstance(o, _RESPONSE_TYPES) else None)


class _ShimDecoder:
    """Stands in for `pyasn1.codec.ber.decoder` in pysnmp's message processing modules."""

    @staticmethod
    def decode(substrate, asn1Spec=None, **options):
        stats = _scope.stats
        if stats is None:  # not one of our engines
            return pyasn1_decoder.decode(substrate, asn1Spec=asn1Spec, **options)
        data = bytes(substrate) if not isinstance(substrate, bytes) else substrate
        try:
            path = ber.find_varbinds(data, _RESPONSE_TAGS)
            if path is not None:
                _tag, _h, v_start, v_end = path[-1]
                plain = ber.decode_varbinds(data, v_start, v_end)
                obj, rest = pyasn1_decoder.decode(
                    ber.replace_last(data, path, _EMPTY_VARBINDS), asn1Spec=asn1Spec, **options
                )
                pdu = _response_in(obj)
                if pdu is not None:
                    varbinds = RawVarBinds()
                    varbinds.plain = plain
                    pdu.setComponentByPosition(3, varbinds)
                    stats.fast += 1
                    return obj, rest
        except (ber.BerError, IndexError):
            pass
        obj, rest = pyasn1_decoder.decode(substrate, asn1Spec=asn1Spec, **options)
        if _response_in(obj) is not None:  # not a USM header, report or still encrypted PDU
            stats.fallback += 1
        return obj, rest


def plain_varbinds(pdu) -> list[tuple[Oid, object]] | None:
    """The fast-path varbinds of a Response-PDU, or None when pyasn1 decoded it."""
    if pdu is None:
        return None
    return getattr(pdu.getComponentByPosition(3), "plain", None)


def _plain(value) -> object:
    """pysnmp value -> int | bytes | OID tuple | None | sentinel. The checks go by pyasn1 base
    class: every SNMP integer type (Counter32/64, Gauge32, TimeTicks, ...) is a univ.Integer and
    every string type (IpAddress, Opaque, Bits) a univ.OctetString."""
    # The sentinels first: they derive from univ.Null, which pyasn1 derives from OctetString.
    if isinstance(value, rfc1905.EndOfMibView):
        return ber.END_OF_MIB
    if isinstance(value, rfc1905.NoSuchObject | rfc1905.NoSuchInstance):
        return ber.NO_SUCH
    if isinstance(value, univ.Null):
        return None
    if isinstance(value, univ.Integer):
        return int(value)
    if isinstance(value, univ.OctetString):
        return value.asOctets()
    if isinstance(value, univ.ObjectIdentifier):
        return tuple(value)
    return None


def reply(pdu) -> tuple[int, int, list[tuple[Oid, object]]]:
    """Error status, error index and plain varbinds of a response (decoded by the fast path when
    it could, else converted from pyasn1's objects)."""
    if not pdu:
        return 0, 0, []
    status = int(v2c.apiPDU.get_error_status(pdu))
    index = int(v2c.apiPDU.get_error_index(pdu, muteErrors=True))
    plain = plain_varbinds(pdu)
    if plain is None:
        plain = [(tuple(name), _plain(value)) for name, value in v2c.apiPDU.get_varbinds(pdu)]
    return status, index, plain


# --- requests ---------------------------------------------------------------------------------

_encoded_oids: dict[Oid, bytes] = {}
_OID_CACHE_LIMIT = 500_000


class RawRequestVarBinds(rfc1905.VarBindList):
    """An empty VarBindList carrying the request's varbind list, encoded (NULL values)."""

    encoded: bytes


def request_varbinds(oids: list[Oid]) -> RawRequestVarBinds:
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


class _ShimEncoder:
    """Stands in for `pyasn1.codec.ber.encoder` where pysnmp encodes outgoing messages."""

    @staticmethod
    def encode(value, **options):
        encoded = pyasn1_encoder.encode(value, **options)
        if _scope.stats is None:
            return encoded
        raw = _raw_request_in(value)
        if raw is None:
            return encoded
        path = ber.find_varbinds(encoded, _REQUEST_TAGS)
        if path is None or path[-1][2] != path[-1][3]:
            # cannot happen for a PDU we built; refuse rather than send it empty
            raise ber.BerError("encoded request without its varbind list")
        varbinds = bytes((ber.SEQUENCE,)) + ber.length(len(raw.encoded)) + raw.encoded
        return ber.replace_last(encoded, path, varbinds)


_NULL = rfc1902.Null("")


def request_pdu(
    pdu_type: type, oids: list[Oid], max_repetitions: int | None, non_repeaters: int, v1: bool
):
    pdu = pdu_type()
    if max_repetitions is None:
        v2c.apiPDU.set_defaults(pdu)
    else:
        v2c.apiBulkPDU.set_defaults(pdu)
        v2c.apiBulkPDU.set_non_repeaters(pdu, non_repeaters)
        v2c.apiBulkPDU.set_max_repetitions(pdu, max_repetitions)
    # unpredictable inside a v3 scoped PDU too (v1/v2c ones are replaced by the message id)
    v2c.apiPDU.set_request_id(pdu, int.from_bytes(os.urandom(4), "big") & 0x7FFFFFFF)
    if v1:  # converted to a v1 PDU when sent, which reads the varbinds as pyasn1 objects
        v2c.apiPDU.set_varbinds(pdu, [(rfc1902.ObjectName(oid), _NULL) for oid in oids])
    else:  # encoded by the fast path
        pdu.setComponentByPosition(3, request_varbinds(oids))
    return pdu


# --- sending ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Route:
    """Where a request goes, as pysnmp's dispatcher takes it."""

    domain: tuple[int, ...]
    address: tuple
    timeout: float  # seconds
    retries: int


@dataclass(frozen=True)
class Security:
    """An auth entry as configured in one engine: what the dispatcher needs per request."""

    mp_model: int
    security_model: int
    security_name: object
    security_level: str


Callback = Callable[[object, int, int, list[tuple[Oid, object]]], None]


class _Generator:
    """Sends requests straight to the message dispatcher and hands the response PDU to our
    callback as (error indication, status, index, varbinds). Retries and timeouts stay pysnmp's:
    `process_response_pdu` finds the request among the generator's pending ones, as it would
    have been registered by `CommandGenerator.send_pdu` after its target-table lookup."""

    PDU: type

    def send(self, engine: SnmpEngine, route: Route, security: Security, context, pdu, callback):
        dispatcher = engine.transport_dispatcher
        ticks = route.timeout / dispatcher.get_timer_resolution()
        version = 0 if security.mp_model == 0 else 1
        # what the dispatcher takes and what CommandGenerator.send_pdu files for a retry begin alike
        common = (
            route.domain,
            route.address,
            security.mp_model,
            security.security_model,
            security.security_name,
            security.security_level,
            None,  # contextEngineId: the agent's own
            context,
            version,
        )
        handle = engine.message_dispatcher.send_pdu(
            engine,
            *common,
            proxy.v2_to_v1(pdu) if version == 0 else pdu,
            True,
            ticks,
            self.process_response_pdu,  # type: ignore[attr-defined]
            (cmdgen.getNextHandle(), self.process_response_varbinds, (callback, None)),
        )
        dispatcher.job_started(id(self))
        # the entry CommandGenerator.send_pdu makes: request, timeout, retries, retries used
        self._CommandGenerator__pendingReqs[handle] = (  # type: ignore[attr-defined]
            *common,
            pdu,
            ticks,
            route.retries,
            0,
            0,
        )

    def process_response_varbinds(self, snmpEngine, sendRequestHandle, errorIndication, PDU, cbCtx):
        callback = cbCtx[-2]
        callback(errorIndication, *reply(PDU))


class _Get(_Generator, cmdgen.GetCommandGenerator):
    PDU = v2c.GetRequestPDU


class _Next(_Generator, cmdgen.NextCommandGeneratorSingleRun):
    PDU = v2c.GetNextRequestPDU


class _Bulk(_Generator, cmdgen.BulkCommandGeneratorSingleRun):
    PDU = v2c.GetBulkRequestPDU


@dataclass
class Generators:
    """One command generator per request type, for one client."""

    get: _Generator
    next: _Generator
    bulk: _Generator

    @classmethod
    def create(cls) -> Generators:
        return cls(_Get(), _Next(), _Bulk())


def send_request(
    generator: _Generator,
    engine: SnmpEngine,
    route: Route,
    security: Security,
    context,
    oids: list[Oid],
    max_repetitions: int | None,
    non_repeaters: int,
    callback: Callback,
) -> None:
    """Send one GET/GETNEXT/GETBULK; `callback(error indication, status, index, varbinds)`."""
    pdu = request_pdu(generator.PDU, oids, max_repetitions, non_repeaters, security.mp_model == 0)
    generator.send(engine, route, security, context, pdu, callback)


# --- verify, then install ---------------------------------------------------------------------

_missing = _problems()
if _missing:
    raise UnsupportedPysnmp(
        f"pysnmp {'.'.join(pysnmp.__version__.split('.')[:2])} is not supported "
        f"(needs {'; '.join(_missing)}); install pysnmp {SUPPORTED}.x"
    )
for _module in (mp_v1, mp_v3, sec_usm):
    _module.decoder = _ShimDecoder  # type: ignore[attr-defined]
for _module in (sec_community, sec_usm):
    _module.encoder = _ShimEncoder  # type: ignore[attr-defined]
