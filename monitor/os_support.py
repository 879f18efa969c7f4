"""Everything that differs between Linux, macOS and Windows, in one place.

ICMP needs either a raw socket (root / CAP_NET_RAW on Linux, root on macOS, Administrator on
Windows) or an unprivileged ICMP datagram socket (Linux when the process's group is inside
`net.ipv4.ping_group_range`; macOS always). Receive timestamps are taken by the kernel where it can
(Linux SO_TIMESTAMPNS, macOS SO_TIMESTAMP) so that a busy event loop does not inflate RTTs.
Signals: SIGHUP (reload) exists only on POSIX; on Windows only Ctrl-C stops the collector.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import signal
import socket
import struct
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

LINUX = sys.platform.startswith("linux")
MACOS = sys.platform == "darwin"
WINDOWS = sys.platform == "win32"

# Linux constants that the socket module does not export.
_SO_TIMESTAMPNS = 35
_SO_RCVBUFFORCE = 33
_SOL_RAW = 255
_ICMP_FILTER = 1
_ICMP6_FILTER = 1
_IP_RECVERR = 11
_IPV6_RECVERR = 25
_MSG_ERRQUEUE = 0x2000
_SO_EE_ORIGIN_ICMP, _SO_EE_ORIGIN_ICMP6 = 2, 3
_EXTENDED_ERROR = struct.Struct("=IBBBBII")  # struct sock_extended_err
# macOS
_SO_TIMESTAMP_DARWIN = 0x0400

_RECV_BUFFER = 8 * 1024 * 1024  # holds the replies of tens of thousands of echoes in flight
_ICMP_ECHO_REPLY, _ICMP_DEST_UNREACH, _ICMP_TIME_EXCEEDED = 0, 3, 11
_ICMP6_DEST_UNREACH, _ICMP6_TIME_EXCEEDED, _ICMP6_ECHO_REPLY = 1, 3, 129


class IcmpUnavailable(OSError):
    """Neither a raw nor a datagram ICMP socket could be opened; the message says what to grant."""


@dataclass
class IcmpSocket:
    """An open ICMP socket and what the prober must know about how it behaves on this OS."""

    sock: socket.socket
    family: int
    raw: bool  # raw socket: we choose the echo identifier; datagram: the kernel rewrites it
    ip_header: bool  # received packets start with the IPv4 header (raw IPv4; datagram on macOS)
    kernel_timestamps: bool

    def close(self) -> None:
        self.sock.close()


def open_icmp_socket(family: int = socket.AF_INET) -> IcmpSocket:
    """Open the best ICMP socket this process may: raw first (it sees replies to any identifier and
    lets us filter in the kernel), then the unprivileged datagram kind."""
    proto = socket.IPPROTO_ICMP if family == socket.AF_INET else socket.IPPROTO_ICMPV6
    errors: list[str] = []
    for kind in (socket.SOCK_RAW, socket.SOCK_DGRAM):
        try:
            sock = socket.socket(family, kind, proto)
        except OSError as exc:
            errors.append(f"{'raw' if kind == socket.SOCK_RAW else 'datagram'}: {exc.strerror}")
            continue
        raw = kind == socket.SOCK_RAW
        sock.setblocking(False)
        grow_receive_buffer(sock)
        if raw:
            _filter_to_replies(sock, family)
        else:
            _queue_errors(sock, family)
        stamps = _enable_timestamps(sock)
        ip_header = family == socket.AF_INET and (raw or MACOS)
        return IcmpSocket(sock, family, raw, ip_header, stamps)
    fam = "IPv4" if family == socket.AF_INET else "IPv6"
    raise IcmpUnavailable(
        errno.EPERM,
        f"cannot open an {fam} ICMP socket ({'; '.join(errors)}). {icmp_privilege_hint()}",
    )


def icmp_privilege_hint() -> str:
    if LINUX:
        return (
            "Run as root, grant CAP_NET_RAW (setcap cap_net_raw+ep on the python binary, or "
            "cap_add: [NET_RAW] in docker), or allow unprivileged ping with "
            "sysctl net.ipv4.ping_group_range='0 2147483647'."
        )
    if MACOS:
        return "macOS allows unprivileged ICMP datagram sockets; check the sandbox or run as root."
    if WINDOWS:
        return "On Windows raw ICMP sockets need an Administrator prompt."
    return "Run with the privileges this OS needs for raw ICMP sockets."


def grow_receive_buffer(sock: socket.socket) -> None:
    """Room for the replies of thousands of requests in flight while the event loop is busy:
    the default (~200 KiB) overflows and drops them, which looks like loss on the wire."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, _RECV_BUFFER)
    if LINUX:  # beyond net.core.rmem_max when privileged
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, _SO_RCVBUFFORCE, _RECV_BUFFER)


def _filter_to_replies(sock: socket.socket, family: int) -> None:
    """On Linux a raw ICMP socket receives every ICMP packet, on loopback including our own echo
    requests; let the kernel drop all but replies and errors so the reader never sees them."""
    if not LINUX:
        return
    with contextlib.suppress(OSError):
        if family == socket.AF_INET:
            keep = (1 << _ICMP_ECHO_REPLY) | (1 << _ICMP_DEST_UNREACH) | (1 << _ICMP_TIME_EXCEEDED)
            sock.setsockopt(_SOL_RAW, _ICMP_FILTER, struct.pack("I", ~keep & 0xFFFFFFFF))
        else:
            # ICMP6_FILTER is 256 bits; a set bit blocks the type.
            blocked = [0xFFFFFFFF] * 8
            for t in (_ICMP6_DEST_UNREACH, _ICMP6_TIME_EXCEEDED, _ICMP6_ECHO_REPLY):
                blocked[t >> 5] &= ~(1 << (t & 31)) & 0xFFFFFFFF
            sock.setsockopt(socket.IPPROTO_ICMPV6, _ICMP6_FILTER, struct.pack("8I", *blocked))


def _queue_errors(sock: socket.socket, family: int) -> None:
    """A Linux ICMP datagram socket gets ICMP errors about its echoes as socket errors that do not
    say which echo; with IP_RECVERR each one waits in the error queue with the echo it answers
    and the address of the router that sent it (see `receive_error`)."""
    if not LINUX:
        return
    with contextlib.suppress(OSError):
        if family == socket.AF_INET:
            sock.setsockopt(socket.IPPROTO_IP, _IP_RECVERR, 1)
        else:
            sock.setsockopt(socket.IPPROTO_IPV6, _IPV6_RECVERR, 1)


@dataclass(frozen=True)
class IcmpError:
    """An ICMP error about one of our echoes, from a datagram socket's error queue."""

    echo: bytes  # our echo request as sent (ICMP header and payload)
    destination: str  # where that echo went
    kind: int  # ICMP type and code of the error
    code: int
    router: str  # who sent the error


def receive_error(icmp: IcmpSocket) -> IcmpError | None:
    """One entry of a datagram socket's error queue (Linux); None when it holds something else.
    Raises BlockingIOError when the queue is empty."""
    if not LINUX or icmp.raw:
        raise BlockingIOError
    data, ancdata, _flags, addr = icmp.sock.recvmsg(2048, 512, _MSG_ERRQUEUE)
    for level, kind, payload in ancdata:
        if (level, kind) not in (
            (socket.IPPROTO_IP, _IP_RECVERR),
            (socket.IPPROTO_IPV6, _IPV6_RECVERR),
        ) or len(payload) < _EXTENDED_ERROR.size + 8:
            continue
        _errno, origin, icmp_type, code, _pad, _info, _data = _EXTENDED_ERROR.unpack_from(payload)
        if origin not in (_SO_EE_ORIGIN_ICMP, _SO_EE_ORIGIN_ICMP6):
            continue  # a local error (e.g. no route): sendto already said so
        offender = payload[_EXTENDED_ERROR.size :]
        if origin == _SO_EE_ORIGIN_ICMP:
            router = socket.inet_ntop(socket.AF_INET, offender[4:8])
        else:
            router = socket.inet_ntop(socket.AF_INET6, offender[8:24])
        return IcmpError(data, addr[0], icmp_type, code, router)
    return None


def _enable_timestamps(sock: socket.socket) -> bool:
    if not hasattr(sock, "recvmsg"):
        return False
    option = _SO_TIMESTAMPNS if LINUX else _SO_TIMESTAMP_DARWIN if MACOS else None
    if option is None:
        return False
    try:
        sock.setsockopt(socket.SOL_SOCKET, option, 1)
    except OSError:
        return False
    return True


_TIMESPEC = struct.Struct("@ll")  # struct timespec: time_t tv_sec; long tv_nsec
_TIMEVAL = struct.Struct("@li")  # macOS struct timeval: time_t tv_sec; int32 tv_usec
_ANCILLARY = socket.CMSG_SPACE(_TIMESPEC.size) if hasattr(socket, "CMSG_SPACE") else 0


def receive(icmp: IcmpSocket, bufsize: int = 2048) -> tuple[bytes, str, float]:
    """One datagram: (data, source address, wall-clock receive time). Raises BlockingIOError when
    the socket is drained."""
    if icmp.kernel_timestamps:
        data, ancdata, _flags, addr = icmp.sock.recvmsg(bufsize, _ANCILLARY)
        for level, kind, payload in ancdata:
            if level != socket.SOL_SOCKET:
                continue
            if LINUX and kind == _SO_TIMESTAMPNS and len(payload) >= _TIMESPEC.size:
                sec, nsec = _TIMESPEC.unpack_from(payload)
                return data, addr[0], sec + nsec * 1e-9
            if MACOS and len(payload) >= _TIMEVAL.size:
                sec, usec = _TIMEVAL.unpack_from(payload)
                return data, addr[0], sec + usec * 1e-6
        return data, addr[0], time.time()
    data, addr = icmp.sock.recvfrom(bufsize)
    return data, addr[0], time.time()


def new_event_loop() -> asyncio.AbstractEventLoop:
    """The collector needs `loop.add_reader` for its ICMP sockets, which Windows' default proactor
    loop lacks."""
    if WINDOWS:
        return asyncio.SelectorEventLoop()
    return asyncio.new_event_loop()


def install_signal_handlers(
    loop: asyncio.AbstractEventLoop, stop: Callable[[], None], reload: Callable[[], None]
) -> None:
    """SIGTERM/SIGINT stop, SIGHUP reloads targets.yaml. Windows has neither add_signal_handler nor
    SIGHUP; Ctrl-C there arrives as KeyboardInterrupt, which the CLI turns into a stop."""
    if WINDOWS:
        return
    loop.add_signal_handler(signal.SIGTERM, stop)
    loop.add_signal_handler(signal.SIGINT, stop)
    loop.add_signal_handler(signal.SIGHUP, reload)


def remove_signal_handlers(loop: asyncio.AbstractEventLoop) -> None:
    if WINDOWS:
        return
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        loop.remove_signal_handler(sig)
