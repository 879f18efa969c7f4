"""The fast Response-PDU reader gives exactly pyasn1's results, or steps aside.

Expectations come from pyasn1 (the decoder pysnmp uses): every recording's values are encoded into
Response messages with pysnmp's own encoder and decoded both ways; a fuzz corpus of mutated
messages must either decode identically or be refused by the fast reader (then pyasn1 decides).
"""

from __future__ import annotations

import asyncio
import random

import pytest
from pyasn1.codec.ber import decoder as pyasn1_decoder
from pyasn1.codec.ber import encoder
from pyasn1.error import PyAsn1Error
from pysnmp.proto import api, rfc1902, rfc1905

from monitor.config.model import SnmpAuth, SnmpSettings, Target
from monitor.probes.snmp import ber
from monitor.probes.snmp import pysnmp_adapter as snmp_fastpath
from monitor.probes.snmp.poll import SnmpProber
from monitor.probes.snmp.pysnmp_adapter import _plain
from tests import snmprec
from tests.conftest import RECORDINGS

V2C = api.PROTOCOL_MODULES[api.SNMP_VERSION_2C]
TYPES = {
    2: rfc1902.Integer32,
    4: rfc1902.OctetString,
    6: rfc1902.ObjectIdentifier,
    64: rfc1902.IpAddress,
    65: rfc1902.Counter32,
    66: rfc1902.Gauge32,
    67: rfc1902.TimeTicks,
    70: rfc1902.Counter64,
}


def response_message(varbinds, request_id: int = 4711) -> bytes:
    pdu = V2C.ResponsePDU()
    V2C.apiPDU.set_defaults(pdu)
    V2C.apiPDU.set_request_id(pdu, request_id)
    V2C.apiPDU.set_varbinds(pdu, varbinds)
    msg = V2C.Message()
    V2C.apiMessage.set_defaults(msg)
    V2C.apiMessage.set_community(msg, "fastpath")
    V2C.apiMessage.set_pdu(msg, pdu)
    return encoder.encode(msg)


def by_pyasn1(message: bytes):
    msg, _ = pyasn1_decoder.decode(message, asn1Spec=V2C.Message())
    pdu = V2C.apiMessage.get_pdu(msg)
    return [(tuple(name), _plain(value)) for name, value in V2C.apiPDU.get_varbinds(pdu)]


@pytest.fixture(autouse=True)
def our_engine():
    """The shims act only for the collector's own engines: these tests call them as one does."""
    stats = snmp_fastpath.ReceiveStats()
    with snmp_fastpath.acting_for(stats):
        yield stats


def by_shim(message: bytes):
    msg, _ = snmp_fastpath._ShimDecoder.decode(message, asn1Spec=V2C.Message())
    pdu = V2C.apiMessage.get_pdu(msg)
    return snmp_fastpath.plain_varbinds(pdu), pdu


def recorded_varbinds(path):
    out = []
    for oid, (tag, value) in snmprec.read(path).items():
        cls = TYPES.get(tag)
        if cls is None or not isinstance(value, int | bytes | str):
            continue  # variation-module records have no static value
        try:
            if tag == 6:
                out.append((oid, cls(value)))
            elif tag == 64:
                out.append(
                    (
                        oid,
                        cls(value if isinstance(value, bytes) and len(value) == 4 else b"\0\0\0\0"),
                    )
                )
            else:
                out.append((oid, cls(value)))
        except PyAsn1Error:
            continue  # the recording holds a value the type does not allow
    return out


@pytest.mark.parametrize("community", sorted(RECORDINGS))
def test_every_recording_decodes_as_pyasn1_decodes_it(community):
    varbinds = recorded_varbinds(RECORDINGS[community])
    assert varbinds
    if len(varbinds) > 3000:  # the biggest walks: an even sample keeps every kind of value
        varbinds = varbinds[:: len(varbinds) // 3000 + 1]
    for start in range(0, len(varbinds), 60):  # response-sized chunks
        chunk = varbinds[start : start + 60]
        message = response_message(chunk)
        fast, pdu = by_shim(message)
        assert fast is not None, "the fast path must take plain responses"
        assert fast == by_pyasn1(message)
        assert int(V2C.apiPDU.get_request_id(pdu)) == 4711


def test_exceptions_and_every_value_type():
    varbinds = [
        ((1, 3, 6, 1, 2, 1, 1, 3, 0), rfc1902.TimeTicks(4294967295)),
        ((1, 3, 6, 1, 2, 1, 31, 1, 1, 1, 6, 1), rfc1902.Counter64(2**64 - 1)),
        ((1, 3, 6, 1, 2, 1, 2, 2, 1, 10, 1), rfc1902.Counter32(0)),
        ((1, 3, 6, 1, 2, 1, 2, 2, 1, 5, 1), rfc1902.Gauge32(2**31)),
        ((1, 3, 6, 1, 4, 1, 9, 1), rfc1902.Integer32(-(2**31))),
        ((1, 3, 6, 1, 4, 1, 9, 2), rfc1902.Integer32(2**31 - 1)),
        ((1, 3, 6, 1, 4, 1, 9, 3), rfc1902.OctetString(b"\x00\xff text")),
        ((1, 3, 6, 1, 4, 1, 9, 4), rfc1902.IpAddress("127.1.2.3")),
        ((1, 3, 6, 1, 4, 1, 9, 5), rfc1902.ObjectIdentifier((1, 3, 6, 1, 4, 1, 2636, 128))),
        ((2, 100, 3), rfc1902.Integer32(7)),
        ((1, 3, 6, 1, 4, 1, 9, 6), rfc1905.noSuchObject),
        ((1, 3, 6, 1, 4, 1, 9, 7), rfc1905.noSuchInstance),
        ((1, 3, 6, 1, 4, 1, 9, 8), rfc1905.endOfMibView),
        ((1, 3, 6, 1, 4, 1, 9, 9), rfc1902.Opaque(b"\x9f\x78\x04\x3f\x80\x00\x00")),
    ]
    message = response_message(varbinds)
    fast, _ = by_shim(message)
    assert fast == by_pyasn1(message)
    assert fast[-3][1] is ber.NO_SUCH and fast[-2][1] is ber.END_OF_MIB


def test_fuzz_corpus_never_disagrees_with_pyasn1():
    """Random mutations of real responses: the shim's result must equal pyasn1's whenever the fast
    reader accepts, and the shim must fail exactly where pyasn1 fails."""
    rnd = random.Random(20261129)
    seeds = [
        response_message(recorded_varbinds(RECORDINGS[c])[:40])
        for c in ("cisco-c3560", "hpe-procurve", "XMG1915-10EP", "routeros")
    ]
    accepted = refused = 0
    for _ in range(1500):
        data = bytearray(rnd.choice(seeds))
        for _ in range(rnd.randint(1, 4)):
            choice = rnd.random()
            pos = rnd.randrange(len(data))
            if choice < 0.6:
                data[pos] = rnd.randrange(256)
            elif choice < 0.8:
                del data[pos]
            else:
                data.insert(pos, rnd.randrange(256))
        message = bytes(data)
        try:
            expected = by_pyasn1(message)
        except Exception:
            expected = None
        try:
            fast, pdu = by_shim(message)
            got = (
                fast
                if fast is not None
                else [(tuple(n), _plain(v)) for n, v in V2C.apiPDU.get_varbinds(pdu)]
            )
        except Exception:
            got = None
        assert got == expected, message.hex()
        if fast_taken(message):
            accepted += 1
        else:
            refused += 1
    assert accepted > 50 and refused > 50  # both branches really exercised


def fast_taken(message: bytes) -> bool:
    try:
        path = ber.find_varbinds(message, frozenset((ber.RESPONSE,)))
        if path is None:
            return False
        ber.decode_varbinds(message, path[-1][2], path[-1][3])
        return True
    except (ber.BerError, IndexError):
        return False


def test_non_responses_go_to_pyasn1():
    pdu = V2C.GetRequestPDU()
    V2C.apiPDU.set_defaults(pdu)
    V2C.apiPDU.set_varbinds(pdu, [((1, 3, 6, 1, 2, 1, 1, 1, 0), V2C.null)])
    msg = V2C.Message()
    V2C.apiMessage.set_defaults(msg)
    V2C.apiMessage.set_community(msg, "x")
    V2C.apiMessage.set_pdu(msg, pdu)
    decoded, _ = snmp_fastpath._ShimDecoder.decode(encoder.encode(msg), asn1Spec=V2C.Message())
    assert snmp_fastpath.plain_varbinds(V2C.apiMessage.get_pdu(decoded)) is None
    assert len(V2C.apiPDU.get_varbinds(V2C.apiMessage.get_pdu(decoded))) == 1


def test_polls_take_the_fast_path_and_match_the_plain_one(snmpd, monkeypatch):
    """The same device polled through the fast path and through pyasn1 gives the same result
    (v2c and v3 authPriv, where the shim sits behind USM's decryption)."""
    user = snmpd.user("authPriv", "SHA256", "AES")
    auths = [
        SnmpAuth(name="v2", version="2c", community=snmpd.community),
        SnmpAuth(
            name="v3",
            version="3",
            username=user.name,
            security_level="authPriv",
            auth_protocol="SHA256",
            auth_password=user.auth_password,
            priv_protocol="AES",
            priv_password=user.priv_password,
        ),
    ]
    for auth in auths:
        target = Target(
            member="m",
            school="s",
            id="dev",
            role="switch",
            host="127.0.0.1",
            port=snmpd.port,
            snmp=SnmpSettings(auth=auth, timeout=2, retries=0),
        )
        fast, decoding = _poll(target)
        assert decoding.fast > 0 and decoding.fallback == 0
        with monkeypatch.context() as patch:
            patch.setattr(ber, "decode_varbinds", _refuse)
            plain, decoding = _poll(target)
        assert decoding.fast == 0 and decoding.fallback > 0
        assert fast.ok and plain.ok
        assert [i.name for i in fast.interfaces] == [i.name for i in plain.interfaces]
        assert fast.sys_descr == plain.sys_descr and fast.vendor == plain.vendor
        assert [(i.oper_up, i.speed_bytes) for i in fast.interfaces] == [
            (i.oper_up, i.speed_bytes) for i in plain.interfaces
        ]


def _refuse(*_args):
    raise ber.BerError("test: decode everything with pyasn1")


def _poll(target):
    """The poll and what the prober's own engines decoded (outside the test's scope: the
    dispatcher sets its own)."""

    async def run():
        prober = SnmpProber()
        try:
            with snmp_fastpath.acting_for(None):
                return await prober.poll(target, target.host), prober.client.received
        finally:
            prober.close()

    return asyncio.run(run())


def test_the_shims_leave_other_engines_to_pyasn1():
    """Outside our engines' dispatchers (another pysnmp user in the process) the shims are
    pyasn1 itself: no plain varbinds hung on the PDU, nothing counted, nothing spliced."""
    message = response_message([((1, 3, 6, 1, 2, 1, 1, 3, 0), rfc1902.TimeTicks(42))])
    stats = snmp_fastpath.ReceiveStats()
    with snmp_fastpath.acting_for(None):
        msg, _ = snmp_fastpath._ShimDecoder.decode(message, asn1Spec=V2C.Message())
    pdu = V2C.apiMessage.get_pdu(msg)
    assert snmp_fastpath.plain_varbinds(pdu) is None
    assert int(V2C.apiPDU.get_varbinds(pdu)[0][1]) == 42
    with snmp_fastpath.acting_for(stats):
        msg, _ = snmp_fastpath._ShimDecoder.decode(message, asn1Spec=V2C.Message())
    assert snmp_fastpath.plain_varbinds(V2C.apiMessage.get_pdu(msg)) == [
        ((1, 3, 6, 1, 2, 1, 1, 3, 0), 42)
    ]
    assert stats.fast == 1


def test_an_unsupported_pysnmp_fails_at_import_with_what_it_lacks():
    import subprocess
    import sys

    code = (
        "import pysnmp; pysnmp.__version__ = '7.2.0'\n"
        "from pysnmp.entity.rfc3413 import cmdgen\n"
        "cmdgen.getNextHandle = None; del cmdgen.getNextHandle\n"
        "import monitor.probes.snmp.pysnmp_adapter\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode != 0
    last = result.stderr.strip().splitlines()[-1]
    assert "UnsupportedPysnmp: pysnmp 7.2 is not supported (needs version 7.1.x;" in last
    assert "pysnmp.entity.rfc3413.cmdgen.getNextHandle" in last
    # `monitor run` says it in one line at start-up, and exits 1
    code = (
        "import sys, pysnmp; pysnmp.__version__ = '7.2.0'\n"
        "from monitor.cli import main\n"
        "sys.exit(main(['run', '--config', 'targets.yaml']))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 1
    assert result.stderr.startswith("monitor: cannot start: pysnmp 7.2 is not supported (needs")
    assert len(result.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("kind", ["get", "next", "bulk"])
def test_spliced_requests_are_byte_identical_to_pyasn1s(kind):
    """A request sent with an encoded varbind list must be exactly what pysnmp would have sent."""
    oids = [(1, 3, 6, 1, 2, 1, 2, 2, 1, column) for column in (2, 5, 7, 8, 10)] + [
        (1, 3, 6, 1, 2, 1, 31, 1, 1, 1, 6, 4_294_967_295),
        (1, 3, 6, 1, 4, 1, 2636, 3, 1, 13),
    ]
    cls = {"get": V2C.GetRequestPDU, "next": V2C.GetNextRequestPDU, "bulk": V2C.GetBulkRequestPDU}[
        kind
    ]

    def message(pdu):
        msg = V2C.Message()
        V2C.apiMessage.set_defaults(msg)
        V2C.apiMessage.set_community(msg, "fastpath")
        V2C.apiMessage.set_pdu(msg, pdu)
        return msg

    def pdu_with(varbinds_setter):
        pdu = cls()
        api_pdu = V2C.apiBulkPDU if kind == "bulk" else V2C.apiPDU
        api_pdu.set_defaults(pdu)
        api_pdu.set_request_id(pdu, 123456)
        if kind == "bulk":
            V2C.apiBulkPDU.set_non_repeaters(pdu, 0)
            V2C.apiBulkPDU.set_max_repetitions(pdu, 25)
        varbinds_setter(pdu)
        return pdu

    plain = pdu_with(lambda pdu: V2C.apiPDU.set_varbinds(pdu, [(o, V2C.null) for o in oids]))
    raw = pdu_with(lambda pdu: pdu.setComponentByPosition(3, snmp_fastpath.request_varbinds(oids)))
    assert snmp_fastpath._ShimEncoder.encode(message(raw)) == encoder.encode(message(plain))
    # and messages without our raw list are left to pyasn1 untouched
    assert snmp_fastpath._ShimEncoder.encode(message(plain)) == encoder.encode(message(plain))


def test_snmpv1_responses_are_left_to_pyasn1():
    v1 = api.PROTOCOL_MODULES[api.SNMP_VERSION_1]
    pdu = v1.GetResponsePDU()
    v1.apiPDU.set_defaults(pdu)
    v1.apiPDU.set_varbinds(pdu, [((1, 3, 6, 1, 2, 1, 1, 3, 0), v1.TimeTicks(42))])
    msg = v1.Message()
    v1.apiMessage.set_defaults(msg)
    v1.apiMessage.set_community(msg, "x")
    v1.apiMessage.set_pdu(msg, pdu)
    decoded, _ = snmp_fastpath._ShimDecoder.decode(encoder.encode(msg), asn1Spec=v1.Message())
    pdu = v1.apiMessage.get_pdu(decoded)
    assert snmp_fastpath.plain_varbinds(pdu) is None
    assert int(v1.apiPDU.get_varbinds(pdu)[0][1]) == 42


def test_plaintext_v3_messages_splice_and_decode_like_pyasn1():
    """noAuthNoPriv/authNoPriv carry the scoped PDU inside the whole message, two levels deeper
    than a community message: both shims must find it there."""
    from pysnmp.proto.mpmod.rfc3412 import SNMPv3Message

    oids = [(1, 3, 6, 1, 2, 1, 1, 1, 0), (1, 3, 6, 1, 2, 1, 1, 5, 0)]

    def v3_message(pdu):
        msg = SNMPv3Message()
        msg.setComponentByPosition(0, 3)
        header = msg.setComponentByPosition(1).getComponentByPosition(1)
        for i, value in enumerate((77, 65507, b"\x04", 3)):
            header.setComponentByPosition(i, value)
        msg.setComponentByPosition(2, b"params")
        scoped = (
            msg.setComponentByPosition(3)
            .getComponentByPosition(3)
            .setComponentByName("plaintext")
            .getComponentByName("plaintext")
        )
        scoped.setComponentByPosition(0, b"engine")
        scoped.setComponentByPosition(1, b"")
        scoped.setComponentByPosition(2).getComponentByPosition(2).setComponentByType(
            pdu.tagSet, pdu
        )
        return msg

    def get_pdu(setter):
        pdu = V2C.GetRequestPDU()
        V2C.apiPDU.set_defaults(pdu)
        V2C.apiPDU.set_request_id(pdu, 99)
        setter(pdu)
        return pdu

    plain = v3_message(get_pdu(lambda p: V2C.apiPDU.set_varbinds(p, [(o, V2C.null) for o in oids])))
    raw = v3_message(
        get_pdu(lambda p: p.setComponentByPosition(3, snmp_fastpath.request_varbinds(oids)))
    )
    assert snmp_fastpath._ShimEncoder.encode(raw) == encoder.encode(plain)

    response = V2C.ResponsePDU()
    V2C.apiPDU.set_defaults(response)
    V2C.apiPDU.set_varbinds(response, [(oids[1], rfc1902.OctetString(b"sw-1"))])
    wire = encoder.encode(v3_message(response))
    decoded, _ = snmp_fastpath._ShimDecoder.decode(wire, asn1Spec=SNMPv3Message())
    pdu = decoded[3].getComponent()[2].getComponent()
    assert snmp_fastpath.plain_varbinds(pdu) == [(oids[1], b"sw-1")]
