"""SNMP requests over pysnmp's engine for many targets, returning plain Python values.

pysnmp stays the SNMP implementation (message processing, USM security, transport, retries). We go
one level below its high-level API on purpose: hlapi resolves every request OID through its MIB
controller and wraps every response varbind in MIB objects, work a poller of numeric OIDs does not
need. Requests carry raw OIDs to pysnmp's dispatcher, and responses come back as
`(oid tuple, value)` with value an int, bytes, OID tuple, None or one of ber's sentinels. What that
takes of pysnmp's internals is all in pysnmp_adapter.py; this module uses its public configuration
API only.

One engine serves every target. USM keeps one key set per user name in an engine, so auth entries
that share a v3 user name with different passwords go to separate engines (`_EnginePool`).
Targets are not entered into the engine's SNMP-TARGET-MIB (hlapi's "LCD"): see pysnmp_adapter.py
for why. Communities and users are configured in the engine, once per auth entry.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass

from pysnmp.entity import config
from pysnmp.entity.engine import SnmpEngine
from pysnmp.entity.rfc3413 import config as targets
from pysnmp.hlapi.v3arch.asyncio import auth as hlauth
from pysnmp.hlapi.v3arch.asyncio.auth import CommunityData, UsmUserData
from pysnmp.hlapi.v3arch.asyncio.transport import Udp6TransportTarget, UdpTransportTarget
from pysnmp.proto import errind

from monitor import os_support
from monitor.config.model import SnmpAuth
from monitor.probes.snmp import pysnmp_adapter as adapter
from monitor.probes.snmp.ber import END_OF_MIB, NO_SUCH

__all__ = ["END_OF_MIB", "NO_SUCH", "OID", "Endpoint", "SnmpClient", "SnmpError", "SnmpStatusError"]

OID = tuple[int, ...]


_AUTH_PROTOCOLS = {
    "MD5": hlauth.USM_AUTH_HMAC96_MD5,
    "SHA": hlauth.USM_AUTH_HMAC96_SHA,
    "SHA224": hlauth.USM_AUTH_HMAC128_SHA224,
    "SHA256": hlauth.USM_AUTH_HMAC192_SHA256,
    "SHA384": hlauth.USM_AUTH_HMAC256_SHA384,
    "SHA512": hlauth.USM_AUTH_HMAC384_SHA512,
}
_PRIV_PROTOCOLS = {
    "DES": hlauth.USM_PRIV_CBC56_DES,
    "3DES": hlauth.USM_PRIV_CBC168_3DES,
    "AES": hlauth.USM_PRIV_CFB128_AES,
    "AES192": hlauth.USM_PRIV_CFB192_AES_BLUMENTHAL,
    "AES256": hlauth.USM_PRIV_CFB256_AES_BLUMENTHAL,
    "AES192C": hlauth.USM_PRIV_CFB192_AES,
    "AES256C": hlauth.USM_PRIV_CFB256_AES,
}

# What an on-call engineer should read instead of pysnmp's wording.
_EXPLANATIONS: dict[type, str] = {
    errind.RequestTimedOut: "no response (device down, wrong community, or an ACL dropping us)",
    errind.WrongDigest: "SNMPv3 authentication failed: wrong auth password or auth protocol",
    errind.UnknownUserName: "SNMPv3 user unknown to the device",
    errind.DecryptionError: "SNMPv3 decryption failed: wrong priv password or priv protocol",
    errind.UnsupportedSecurityLevel: "security level not allowed for this SNMPv3 user",
    errind.NotInTimeWindow: "SNMPv3 not in time window (engine boots/time out of sync)",
    errind.UnknownEngineID: "SNMPv3 engine ID discovery failed",
    errind.UnknownSecurityName: "SNMPv3 security name unknown",
    errind.AuthenticationFailure: "SNMPv3 authentication failure",
    errind.ReportPduReceived: "the device reported an SNMPv3 error",
}


class SnmpError(Exception):
    """A request failed as a whole; the message is safe to log (never contains a secret)."""


@dataclass(frozen=True)
class Endpoint:
    host: str
    port: int
    timeout: float
    retries: int


class _EnginePool:
    """Engines such that no engine holds two different key sets for one v3 user name."""

    def __init__(self, received: adapter.ReceiveStats) -> None:
        self._received = received
        self._engines: list[tuple[SnmpEngine, dict[str, SnmpAuth]]] = []

    def engine_for(self, auth: SnmpAuth) -> SnmpEngine:
        for engine, users in self._engines:
            if auth.version != "3":
                return engine
            known = users.get(auth.username)
            if known is None or _same_keys(known, auth):
                users.setdefault(auth.username, auth)
                return engine
        engine = adapter.adopt(SnmpEngine(), self._received)
        self._engines.append((engine, {auth.username: auth} if auth.version == "3" else {}))
        return engine

    def close(self) -> None:
        for engine, _ in self._engines:
            engine.close_dispatcher()
        self._engines.clear()


def _same_keys(a: SnmpAuth, b: SnmpAuth) -> bool:
    return (
        a.security_level,
        a.auth_protocol,
        a.auth_password,
        a.priv_protocol,
        a.priv_password,
    ) == (b.security_level, b.auth_protocol, b.auth_password, b.priv_protocol, b.priv_password)


def _auth_data(auth: SnmpAuth) -> CommunityData | UsmUserData:
    """Secrets go to pysnmp as UTF-8 bytes, as net-snmp sends what its UTF-8 configuration says
    (pysnmp would encode a str as latin-1, and fail on anything beyond it)."""
    if auth.version in ("1", "2c"):
        return CommunityData(auth.community.encode(), mpModel=0 if auth.version == "1" else 1)
    kwargs: dict = {}
    if auth.security_level in ("authNoPriv", "authPriv"):
        kwargs["authKey"] = auth.auth_password.encode()
        kwargs["authProtocol"] = _AUTH_PROTOCOLS[auth.auth_protocol]
    if auth.security_level == "authPriv":
        kwargs["privKey"] = auth.priv_password.encode()
        kwargs["privProtocol"] = _PRIV_PROTOCOLS[auth.priv_protocol]
    return UsmUserData(auth.username, **kwargs)


class SnmpClient:
    """Sends GET / GETNEXT / GETBULK requests for many targets through shared engines."""

    def __init__(self) -> None:
        self.received = adapter.ReceiveStats()  # what our engines received, for self-metrics
        self._pool = _EnginePool(self.received)
        self._security: dict[tuple[SnmpEngine, SnmpAuth], adapter.Security] = {}
        self._routes: dict[Endpoint, tuple[adapter.Route, type]] = {}
        self._contexts: dict[tuple[SnmpEngine, str], object] = {}
        self._principals: set[tuple[SnmpEngine, str]] = set()
        self._opened: set[tuple[SnmpEngine, tuple]] = set()
        self._tuned: set[tuple[SnmpEngine, tuple]] = set()
        self._generators = adapter.Generators.create()

    def close(self) -> None:
        self._pool.close()
        self._routes.clear()
        self._security.clear()
        self._principals.clear()
        self._contexts.clear()
        self._opened.clear()
        self._tuned.clear()

    async def get(
        self, endpoint: Endpoint, auth: SnmpAuth, oids: list[OID]
    ) -> list[tuple[OID, object]]:
        return _one_each(oids, await self._request(self._generators.get, endpoint, auth, oids))

    async def get_next(
        self, endpoint: Endpoint, auth: SnmpAuth, oids: list[OID]
    ) -> list[tuple[OID, object]]:
        return _one_each(oids, await self._request(self._generators.next, endpoint, auth, oids))

    async def get_bulk(
        self,
        endpoint: Endpoint,
        auth: SnmpAuth,
        oids: list[OID],
        max_repetitions: int,
        non_repeaters: int = 0,
    ) -> list[tuple[OID, object]]:
        """The first `non_repeaters` OIDs are asked once (GETNEXT), the rest repeatedly."""
        return await self._request(
            self._generators.bulk, endpoint, auth, oids, max_repetitions, non_repeaters
        )

    def _tune(self, engine: SnmpEngine, domain: tuple) -> None:
        """Give pysnmp's one UDP socket per engine a receive buffer for a fleet's responses
        (once its asyncio transport is connected, which happens on the first send)."""
        carrier = config.get_transport(engine, domain)
        sock = None
        if carrier is not None and getattr(carrier, "transport", None) is not None:
            sock = carrier.transport.get_extra_info("socket")
        if sock is not None:
            os_support.grow_receive_buffer(sock)
            self._tuned.add((engine, domain))

    def _configure(self, engine: SnmpEngine, auth: SnmpAuth) -> adapter.Security:
        """The auth entry's community or user and its target parameters, once per engine."""
        key = (engine, auth)
        security = self._security.get(key)
        if security is not None:
            return security
        data = _auth_data(auth)
        # auth entries that differ only in their names share a community or user in the engine
        principal = (engine, getattr(data, "communityIndex", None) or data.userName)
        if principal not in self._principals:
            self._add_principal(engine, data)
        self._principals.add(principal)
        params = f"p{len(self._security)}"
        config.add_target_parameters(
            engine, params, data.securityName, data.security_level, data.message_processing_model
        )
        security = adapter.Security(*targets.get_target_parameters(engine, params))
        self._security[key] = security
        return security

    @staticmethod
    def _add_principal(engine: SnmpEngine, data: CommunityData | UsmUserData) -> None:
        if isinstance(data, CommunityData):
            config.add_v1_system(
                engine,
                data.communityIndex,
                data.communityName,
                data.contextEngineId,
                data.context_name,
                data.tag,
                data.securityName,
            )
        else:  # the pool gives each key set of a user name its own engine
            config.add_v3_user(
                engine,
                data.userName,
                data.authentication_protocol,
                data.authentication_key,
                data.privacy_protocol,
                data.privacy_key,
                securityEngineId=data.securityEngineId,
                securityName=data.securityName,
                authKeyType=data.authKeyType,
                privKeyType=data.privKeyType,
            )

    def _context(self, engine: SnmpEngine, name: str) -> object:
        context = self._contexts.get((engine, name))
        if context is None:
            (admin_string,) = engine.get_mib_builder().import_symbols(
                "SNMP-FRAMEWORK-MIB", "SnmpAdminString"
            )
            context = self._contexts[(engine, name)] = admin_string(name.encode())
        return context

    def _open(self, engine: SnmpEngine, target: type) -> None:
        """One client socket per engine and address family, opened on first use."""
        key = (engine, target.TRANSPORT_DOMAIN)
        if key not in self._opened:
            if config.get_transport(engine, target.TRANSPORT_DOMAIN) is None:
                transport = target.PROTO_TRANSPORT().open_client_mode()
                config.add_transport(engine, target.TRANSPORT_DOMAIN, transport)
            self._opened.add(key)

    def _route(self, endpoint: Endpoint) -> tuple[adapter.Route, type]:
        """Where requests to `endpoint` go. Hosts arrive resolved (monitor/resolver.py): an IP
        literal, with a zone index for an IPv6 link-local address."""
        cached = self._routes.get(endpoint)
        if cached is not None:
            return cached
        try:
            literal = ipaddress.ip_address(endpoint.host.split("%", 1)[0])
        except ValueError:
            raise SnmpError(f"not an IP address: {endpoint.host}") from None
        target = Udp6TransportTarget if literal.version == 6 else UdpTransportTarget
        family = socket.AF_INET6 if literal.version == 6 else socket.AF_INET
        info = socket.getaddrinfo(
            endpoint.host, endpoint.port, family, socket.SOCK_DGRAM, 0, socket.AI_NUMERICHOST
        )
        address = info[0][4] if literal.version == 6 else info[0][4][:2]
        route = adapter.Route(
            target.TRANSPORT_DOMAIN,
            target.PROTO_TRANSPORT.ADDRESS_TYPE(address),
            endpoint.timeout,
            endpoint.retries,
        )
        self._routes[endpoint] = (route, target)
        return route, target

    async def _request(
        self,
        generator,
        endpoint: Endpoint,
        auth: SnmpAuth,
        oids: list[OID],
        max_repetitions: int | None = None,
        non_repeaters: int = 0,
    ) -> list[tuple[OID, object]]:
        if auth.version == "1" and max_repetitions is not None:
            raise SnmpError("GETBULK needs SNMPv2c or SNMPv3")
        engine = self._pool.engine_for(auth)
        security = self._configure(engine, auth)
        route, target = self._route(endpoint)
        self._open(engine, target)
        future = asyncio.get_running_loop().create_future()

        def callback(error_indication, error_status, error_index, vbs):
            if not future.done():
                future.set_result((error_indication, error_status, error_index, vbs))

        adapter.send_request(
            generator,
            engine,
            route,
            security,
            self._context(engine, auth.context),
            oids,
            max_repetitions,
            non_repeaters,
            callback,
        )
        if (engine, route.domain) not in self._tuned:
            self._tune(engine, route.domain)
        error_indication, error_status, error_index, vbs = await future
        if error_indication:
            raise SnmpError(_explain(error_indication, auth.version))
        if error_status:
            raise SnmpStatusError(error_status, error_index)
        return vbs


def _one_each(oids: list[OID], varbinds: list[tuple[OID, object]]) -> list[tuple[OID, object]]:
    """GET and GETNEXT answer every requested varbind, in order (RFC 3416 4.2.1/4.2.2)."""
    if len(varbinds) != len(oids):
        raise SnmpError(f"malformed response: {len(varbinds)} varbinds for {len(oids)} asked")
    return varbinds


class SnmpStatusError(SnmpError):
    """The agent answered with an error-status (e.g. noSuchName from a v1 agent at the end of a
    table); `index` is 1-based into the request's varbinds, 0 when not given."""

    NAMES = {
        1: "tooBig",
        2: "noSuchName",
        3: "badValue",
        4: "readOnly",
        5: "genErr",
        6: "noAccess",
        16: "authorizationError",
    }

    def __init__(self, status: int, index: int) -> None:
        self.status = status
        self.index = index
        super().__init__(f"agent answered {self.NAMES.get(status, status)} (varbind {index})")


def _explain(error_indication, version: str) -> str:
    if isinstance(error_indication, errind.RequestTimedOut) and version == "3":
        # An agent that cannot decrypt a request drops it silently: same symptom as a dead one.
        return "no response (device down, an ACL dropping us, or a wrong SNMPv3 priv password)"
    for cls, text in _EXPLANATIONS.items():
        if isinstance(error_indication, cls):
            return text
    return str(error_indication)
