"""The lab's SNMP agents: v1, v2c and v3 (USM) answered from simulated devices.

One UDP socket per device address, all served by one asyncio loop. Requests are parsed with the
lean BER reader in `ber`, responses assembled from cached encodings; the behaviour follows net-snmp
where RFCs leave room (at most 100 varbinds per GETBULK response, Counter64 skipped for v1,
reports for SNMPv3 discovery and USM errors, silence for a wrong community).
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import random
import time
from dataclasses import dataclass

from monitor.lab import usm
from monitor.lab.devices import Device
from monitor.probes.snmp import ber

log = logging.getLogger(__name__)

MAX_VARBINDS = 100  # net-snmp's cap on a GETBULK response
MAX_MESSAGE = 65507
_USM_STATS = (1, 3, 6, 1, 6, 3, 15, 1, 1)
UNSUPPORTED_SEC_LEVELS, NOT_IN_TIME_WINDOWS, UNKNOWN_USER_NAMES = 1, 2, 3
UNKNOWN_ENGINE_IDS, WRONG_DIGESTS, DECRYPTION_ERRORS = 4, 5, 6
_LEVELS = {"noAuthNoPriv": 0, "authNoPriv": 1, "authPriv": 3}


@dataclass
class AgentStats:
    requests: int = 0
    varbinds: int = 0
    dropped: int = 0  # wrong community, device down, garbage
    reports: int = 0


class Responder:
    """Answers SNMP messages for any device; stateless apart from counters and salts."""

    def __init__(self) -> None:
        self.stats = AgentStats()
        self.usm_counters = [0] * 7
        self.encryptor = usm.Encryptor()

    def handle(self, device: Device, data: bytes) -> bytes | None:
        if device.down or (device.loss and random.random() < device.loss):
            self.stats.dropped += 1
            return None
        try:
            tag, start, _end = ber.read_header(data, 0)
            if tag != ber.SEQUENCE:
                raise ber.BerError("not a SEQUENCE")
            version, pos = ber.read_int(data, start)
            if version in (0, 1):
                return self._community(device, data, version, pos)
            if version == 3:
                return self._usm(device, data, pos)
            raise ber.BerError(f"unsupported version {version}")
        except (ber.BerError, ValueError, IndexError) as exc:
            self.stats.dropped += 1
            log.debug("dropped malformed request for %s: %s", device.target.id, exc)
            return None

    # -- v1 / v2c --
    def _community(self, device: Device, data: bytes, version: int, pos: int) -> bytes | None:
        community, pos = ber.read_octets(data, pos)
        if community not in device.communities[version]:
            self.stats.dropped += 1
            return None
        pdu = self._pdu(device, data, pos, version, MAX_MESSAGE - 64 - len(community))
        if pdu is None:
            return None
        return ber.tlv(
            ber.SEQUENCE, ber.integer(version) + ber.tlv(ber.OCTET_STRING, community) + pdu
        )

    def _pdu(
        self, device: Device, data: bytes, pos: int, version: int, budget: int
    ) -> bytes | None:
        """Answer the request PDU at `pos` with a Response PDU (None: not something to answer)."""
        tag, start, _end = ber.read_header(data, pos)
        request_id, p = ber.read_int(data, start)
        a, p = ber.read_int(data, p)
        b, p = ber.read_int(data, p)
        vtag, vstart, vend = ber.read_header(data, p)
        if vtag != ber.SEQUENCE:
            raise ber.BerError("varbind list is not a SEQUENCE")
        names = ber.read_varbind_names(data, vstart, vend)
        self.stats.requests += 1
        now = time.time()
        status = index = 0
        if tag == ber.GET:
            varbinds, status, index = self._get(device, names, version, now)
        elif tag == ber.GET_NEXT:
            varbinds, status, index = self._next(device, names, version, now)
        elif tag == ber.GET_BULK and version != 0:
            varbinds = self._bulk(device, names, max(0, a), max(0, b), now, budget)
        elif tag == ber.SET:
            varbinds = [ber.tlv(ber.SEQUENCE, ber.oid(n) + ber.NULL_VALUE) for n in names]
            status, index = (4 if version == 0 else 17), 1  # readOnly / notWritable
        else:
            raise ber.BerError(f"unsupported PDU {tag:#x}")
        if status:  # an error response echoes the request's varbinds
            varbinds = [ber.tlv(ber.SEQUENCE, ber.oid(n) + ber.NULL_VALUE) for n in names]
        self.stats.varbinds += len(varbinds)
        return ber.tlv(
            ber.RESPONSE,
            ber.integer(request_id)
            + ber.integer(status)
            + ber.integer(index)
            + ber.tlv(ber.SEQUENCE, b"".join(varbinds)),
        )

    def _get(self, device: Device, names, version: int, now: float):
        template = device.template
        out = []
        for i, name in enumerate(names, 1):
            position = template.position.get(name)
            if position is None or (version == 0 and template.counter64[position]):
                if version == 0:
                    return [], 2, i  # noSuchName
                out.append(ber.tlv(ber.SEQUENCE, ber.oid(name) + ber.NO_SUCH_INSTANCE_VALUE))
                continue
            out.append(
                ber.tlv(ber.SEQUENCE, template.encoded_oids[position] + device.value(position, now))
            )
        return out, 0, 0

    def _next_position(self, device: Device, name, version: int) -> int:
        template = device.template
        position = template.next_position(name)
        if version == 0:
            while position < len(template.oids) and template.counter64[position]:
                position += 1
        return position

    def _next(self, device: Device, names, version: int, now: float):
        template = device.template
        out = []
        for i, name in enumerate(names, 1):
            position = self._next_position(device, name, version)
            if position >= len(template.oids):
                if version == 0:
                    return [], 2, i
                out.append(ber.tlv(ber.SEQUENCE, ber.oid(name) + ber.END_OF_MIB_VALUE))
                continue
            out.append(
                ber.tlv(ber.SEQUENCE, template.encoded_oids[position] + device.value(position, now))
            )
        return out, 0, 0

    def _bulk(
        self,
        device: Device,
        names,
        non_repeaters: int,
        max_repetitions: int,
        now: float,
        budget: int,
    ) -> list[bytes]:
        template = device.template
        size = len(template.oids)
        out: list[bytes] = []
        used = 0

        def add(position: int, name) -> bool:
            nonlocal used
            if position >= size:
                vb = ber.tlv(ber.SEQUENCE, ber.oid(name) + ber.END_OF_MIB_VALUE)
            else:
                vb = ber.tlv(
                    ber.SEQUENCE, template.encoded_oids[position] + device.value(position, now)
                )
            if len(out) >= MAX_VARBINDS or used + len(vb) > budget:
                return False
            out.append(vb)
            used += len(vb)
            return True

        for name in names[:non_repeaters]:
            if not add(template.next_position(name), name):
                return out
        repeaters = names[non_repeaters:]
        cursors = [template.next_position(n) for n in repeaters]
        for _ in range(max_repetitions):
            if all(c >= size for c in cursors):
                break
            for j, cursor in enumerate(cursors):
                if not add(cursor, repeaters[j]):
                    return out
                if cursor < size:
                    cursors[j] = cursor + 1
                    repeaters[j] = template.oids[cursor]
        return out

    # -- v3 (USM) --
    def _usm(self, device: Device, data: bytes, pos: int) -> bytes | None:
        tag, g_start, g_end = ber.read_header(data, pos)
        msg_id, p = ber.read_int(data, g_start)
        max_size, p = ber.read_int(data, p)
        flags, p = ber.read_octets(data, p)
        model, p = ber.read_int(data, p)
        if model != 3 or len(flags) != 1:
            raise ber.BerError("not USM")
        flag = flags[0]
        auth_flag, priv_flag, reportable = flag & 1, flag & 2, flag & 4
        params, data_pos = ber.read_octets(data, g_end)
        params_offset = data_pos - len(params)
        _t, s_start, _e = ber.read_header(params, 0)
        engine_id, q = ber.read_octets(params, s_start)
        boots, q = ber.read_int(params, q)
        their_time, q = ber.read_int(params, q)
        user, q = ber.read_octets(params, q)
        auth_params, q = ber.read_octets(params, q)
        auth_offset = params_offset + q - len(auth_params)
        priv_params, q = ber.read_octets(params, q)
        now = time.time()
        engine_time = int(device.uptime(now)) & 0x7FFFFFFF
        budget = min(max_size, MAX_MESSAGE) - 200

        def report(counter: int, authenticated: bool = False, keys=None) -> bytes | None:
            if not reportable:
                return None
            self.usm_counters[counter] += 1
            self.stats.reports += 1
            pdu_request_id = self._request_id(data, data_pos, priv_flag) if not priv_flag else 0
            vb = ber.tlv(
                ber.SEQUENCE,
                ber.oid(_USM_STATS + (counter, 0))
                + ber.integer(self.usm_counters[counter], ber.COUNTER32),
            )
            pdu = ber.tlv(
                ber.REPORT,
                ber.integer(pdu_request_id)
                + ber.integer(0)
                + ber.integer(0)
                + ber.tlv(ber.SEQUENCE, vb),
            )
            return self._v3_message(
                device,
                msg_id,
                user if authenticated else b"",
                pdu,
                engine_time,
                keys if authenticated else None,
                b"",
            )

        if engine_id != device.engine_id:
            return report(UNKNOWN_ENGINE_IDS)
        account = device.v3_users.get(user)
        if account is None:
            return report(UNKNOWN_USER_NAMES)
        level = _LEVELS[account.level]
        asked = 3 if priv_flag else (1 if auth_flag else 0)
        if asked != level:
            return report(UNSUPPORTED_SEC_LEVELS)
        keys = None
        if auth_flag:
            keys = usm.localized_keys(
                account.auth,
                account.auth_password,
                account.priv,
                account.priv_password,
                device.engine_id,
            )
            size = usm.AUTH[account.auth][1]
            if len(auth_params) != size:
                return report(WRONG_DIGESTS)
            whole = data[:auth_offset] + bytes(size) + data[auth_offset + size :]
            if not hmac.compare_digest(usm.mac(account.auth, keys[0], whole), auth_params):
                return report(WRONG_DIGESTS)
            if boots != device.engine_boots or abs(their_time - engine_time) > 150:
                return report(NOT_IN_TIME_WINDOWS, authenticated=True, keys=(account, keys, False))
        if priv_flag:
            encrypted, _ = ber.read_octets(data, data_pos)
            try:
                plain = usm.decrypt(
                    account.priv, keys[1], boots, their_time, priv_params, encrypted
                )
            except ValueError:
                return report(DECRYPTION_ERRORS)
            scoped, scoped_pos = plain, 0
        else:
            scoped, scoped_pos = data, data_pos
        tag, s_start, _s_end = ber.read_header(scoped, scoped_pos)
        if tag != ber.SEQUENCE:
            return report(DECRYPTION_ERRORS) if priv_flag else None
        _context_engine, p2 = ber.read_octets(scoped, s_start)
        _context_name, p2 = ber.read_octets(scoped, p2)
        pdu = self._pdu(device, scoped, p2, 3, budget)
        if pdu is None:
            return None
        return self._v3_message(
            device,
            msg_id,
            user,
            pdu,
            engine_time,
            (account, keys, bool(priv_flag)) if auth_flag else None,
            b"",
        )

    @staticmethod
    def _request_id(data: bytes, pos: int, encrypted: bool) -> int:
        try:
            _t, start, _e = ber.read_header(data, pos)
            _ce, p = ber.read_octets(data, start)
            _cn, p = ber.read_octets(data, p)
            _pt, pstart, _pe = ber.read_header(data, p)
            request_id, _ = ber.read_int(data, pstart)
            return request_id
        except ber.BerError:
            return 0

    def _v3_message(
        self,
        device: Device,
        msg_id: int,
        user: bytes,
        pdu: bytes,
        engine_time: int,
        security,
        _unused: bytes,
    ) -> bytes:
        scoped = ber.tlv(
            ber.SEQUENCE,
            ber.tlv(ber.OCTET_STRING, device.engine_id) + ber.tlv(ber.OCTET_STRING, b"") + pdu,
        )
        flags = 0
        auth_size = 0
        priv_params = b""
        if security is not None:
            account, keys, encrypt = security
            flags |= 1
            auth_size = usm.AUTH[account.auth][1]
            if encrypt:
                flags |= 2
                cipher, priv_params = self.encryptor.encrypt(
                    account.priv, keys[1], device.engine_boots, engine_time, scoped
                )
                scoped = ber.tlv(ber.OCTET_STRING, cipher)
        head = (
            ber.tlv(ber.OCTET_STRING, device.engine_id)
            + ber.integer(device.engine_boots)
            + ber.integer(engine_time)
            + ber.tlv(ber.OCTET_STRING, user)
            + bytes((ber.OCTET_STRING,))
            + ber.length(auth_size)
        )
        tail = ber.tlv(ber.OCTET_STRING, priv_params)
        sec_content = head + bytes(auth_size) + tail
        sec_seq = ber.tlv(ber.SEQUENCE, sec_content)
        global_data = ber.tlv(
            ber.SEQUENCE,
            ber.integer(msg_id)
            + ber.integer(MAX_MESSAGE)
            + ber.tlv(ber.OCTET_STRING, bytes((flags,)))
            + ber.integer(3),
        )
        sec_param = ber.tlv(ber.OCTET_STRING, sec_seq)
        body = ber.integer(3) + global_data + sec_param + scoped
        message = ber.tlv(ber.SEQUENCE, body)
        if security is None:
            return message
        # offset of the MAC: end of the message header, version, global data, the OCTET STRING
        # and SEQUENCE headers around the security parameters, and `head`
        header = len(message) - len(body)
        offset = (
            header
            + len(ber.integer(3))
            + len(global_data)
            + (len(sec_param) - len(sec_seq))
            + (len(sec_seq) - len(sec_content))
            + len(head)
        )
        account, keys, _ = security
        digest = usm.mac(account.auth, keys[0], message)
        return message[:offset] + digest + message[offset + auth_size :]


class _Protocol(asyncio.DatagramProtocol):
    def __init__(self, responder: Responder, device: Device) -> None:
        self.responder = responder
        self.device = device
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr) -> None:
        response = self.responder.handle(self.device, data)
        if response is not None and self.transport is not None:
            self.transport.sendto(response, addr)


async def serve(
    responder: Responder, device: Device, host: str, port: int
) -> asyncio.DatagramTransport:
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(
        lambda: _Protocol(responder, device), local_addr=(host, port)
    )
    return transport
