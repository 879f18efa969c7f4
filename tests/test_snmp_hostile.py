"""Answers that were never asked for (issue 15): a hostile UDP sender on loopback floods the
collector's SNMP client socket, and a forger answers in the place of a stopped agent.

A datagram must answer an outstanding request (same message id, from the address and port the
request went to) before pysnmp decodes anything of it; ids must be unpredictable; what is dropped
is counted and logged in one rate-limited line.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import socket

from pysnmp.entity import config
from pysnmp.hlapi.v3arch.asyncio.transport import UdpTransportTarget

from monitor.config.model import SnmpAuth, SnmpSettings, Target
from monitor.probes.snmp import ber
from monitor.probes.snmp.poll import SYS_OBJECT_ID, SYS_UPTIME, SnmpProber
from tests.agents import free_port


def _target(port: int, community: str, timeout: float = 1.0) -> Target:
    return Target(
        member="m",
        school="s",
        id="dev",
        role="switch",
        host="127.0.0.1",
        port=port,
        snmp=SnmpSettings(
            auth=SnmpAuth(name="v2", version="2c", community=community),
            timeout=timeout,
            retries=0,
        ),
    )


def _client_port(prober: SnmpProber) -> int:
    """The UDP port of the prober's engine socket (opened by its first request)."""
    engine = prober.client._pool._engines[0][0]
    carrier = config.get_transport(engine, UdpTransportTarget.TRANSPORT_DOMAIN)
    return carrier.transport.get_extra_info("socket").getsockname()[1]


def _response(community: bytes, request_id: int, varbinds: list[tuple[tuple, bytes]]) -> bytes:
    body = b"".join(ber.tlv(ber.SEQUENCE, ber.oid(o) + v) for o, v in varbinds)
    pdu = ber.tlv(
        ber.RESPONSE,
        ber.integer(request_id) + ber.integer(0) + ber.integer(0) + ber.tlv(ber.SEQUENCE, body),
    )
    return ber.tlv(ber.SEQUENCE, ber.integer(1) + ber.tlv(ber.OCTET_STRING, community) + pdu)


def test_a_flood_of_unsolicited_datagrams_is_dropped_before_decoding(snmpd, caplog):
    """~60 KB well-formed responses with ids nobody asked for, and garbage, at a few hundred a
    second while a healthy snmpd is polled: every poll succeeds, pyasn1 decodes none of the
    flood, every datagram is counted as dropped, and the log says so in one line."""
    target = _target(snmpd.port, snmpd.community, timeout=2.0)
    big = [((1, 3, 6, 1, 4, 1, 99999, 1, n) + (7,) * 40, ber.tlv(4, b"x" * 40)) for n in range(600)]

    async def run():
        prober = SnmpProber()
        try:
            first = await prober.poll(target, "127.0.0.1")
            port = _client_port(prober)
            before = prober.client.received
            fast_before = before.fast
            sent = {"datagrams": 0}

            async def flood():
                sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                sock.setblocking(False)
                try:
                    while True:
                        rid = int.from_bytes(os.urandom(4), "big") & 0x7FFFFFFF
                        for data in (
                            _response(snmpd.community.encode(), rid, big),
                            os.urandom(200),
                        ):
                            try:
                                sock.sendto(data, ("127.0.0.1", port))
                                sent["datagrams"] += 1
                            except BlockingIOError:
                                pass
                        await asyncio.sleep(0.005)
                finally:
                    sock.close()

            flooding = asyncio.create_task(flood())
            polls = []
            loop = asyncio.get_running_loop()
            until = loop.time() + 2.0
            while loop.time() < until or len(polls) < 5:
                polls.append(await prober.poll(target, "127.0.0.1"))
            flooding.cancel()
            await asyncio.gather(flooding, return_exceptions=True)
            await asyncio.sleep(0.2)  # what is still queued in the socket
            received = prober.client.received
            requests = sum(p.requests for p in polls)
            return first, polls, received, fast_before, requests, sent["datagrams"]
        finally:
            prober.close()

    with caplog.at_level(logging.WARNING, logger="monitor.probes.snmp.pysnmp_adapter"):
        first, polls, received, fast_before, requests, sent = asyncio.run(run())
    assert first.ok and all(p.ok for p in polls), [p.error for p in polls]
    assert all(p.interfaces for p in polls)
    assert sent > 200
    assert received.unmatched > 50 and received.malformed > 50
    assert received.fallback == 0  # nothing of the flood reached pyasn1
    assert received.fast - fast_before == requests  # exactly the real answers were decoded
    lines = [r for r in caplog.records if "dropped SNMP datagrams" in r.getMessage()]
    assert len(lines) == 1  # rate-limited: one line, not one per datagram
    assert lines[0].exc_info is None


def test_a_forged_answer_from_another_port_does_not_keep_a_stopped_agent_up():
    """The agent is stopped (its port reads requests and never answers). A forger that somehow
    has the exact request id and community answers from another port: the poll must still fail,
    with no forged sysName, and the forgery be counted; the ids sniffed from consecutive requests
    must not be a counter."""
    dead = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    dead.bind(("127.0.0.1", 0))
    dead.setblocking(False)
    forger = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    forger.bind(("127.0.0.1", free_port()))
    community = b"shared-community"
    target = _target(dead.getsockname()[1], community.decode(), timeout=1.0)
    ids: list[int] = []

    async def sniff_and_forge(prober: SnmpProber) -> None:
        loop = asyncio.get_running_loop()
        while True:
            data, source = await loop.sock_recvfrom(dead, 65535)
            _tag, start, _end = ber.read_header(data, 0)
            _version, pos = ber.read_int(data, start)
            _community, pos = ber.read_octets(data, pos)
            tag, pdu_start, _ = ber.read_header(data, pos)
            request_id, p = ber.read_int(data, pdu_start)
            _status, p = ber.read_int(data, p)
            _index, p = ber.read_int(data, p)
            _tag, vb_start, vb_end = ber.read_header(data, p)
            ids.append(request_id)
            answers = []  # a perfect answer: what a GET asked for, the end of the MIB for walks
            for oid in ber.read_varbind_names(data, vb_start, vb_end):
                if tag != ber.GET:
                    value = ber.END_OF_MIB_VALUE
                elif oid == SYS_UPTIME:
                    value = ber.integer(4711, ber.TIMETICKS)
                elif oid == SYS_OBJECT_ID:
                    value = ber.oid((1, 3, 6, 1, 4, 1, 8072, 3, 2, 10))
                else:
                    value = ber.tlv(ber.OCTET_STRING, b"forged")
                answers.append((oid, value))
            forged = _response(community, request_id, answers)
            forger.sendto(forged, source)

    async def run():
        prober = SnmpProber()
        sniffer = asyncio.create_task(sniff_and_forge(prober))
        try:
            polls = [await prober.poll(target, "127.0.0.1") for _ in range(3)]
            return polls, prober.client.received
        finally:
            sniffer.cancel()
            await asyncio.gather(sniffer, return_exceptions=True)
            prober.close()

    try:
        polls, received = asyncio.run(run())
    finally:
        dead.close()
        forger.close()
    assert all(not p.ok for p in polls), [p.sys_name for p in polls]
    assert all(p.sys_name == "" for p in polls)
    assert received.unmatched >= 3 and received.fast == received.fallback == 0
    assert len(ids) >= 3
    steps = {b - a for a, b in itertools.pairwise(ids)}
    assert steps != {1} and len(set(ids)) == len(ids)  # not a sequence, never repeated
