"""A hostile device for the ICMP tests: it sees the echo requests sent to its own address and
forges echo replies for another target, copying what the request carried (identifier, payload
with its cookie) and trying sequence numbers.

    python -m tests.icmp_forger OWN_ADDRESS VICTIM_ADDRESS

Runs as root inside a network namespace the test created. Prints "ready" once listening, then a
JSON line of what it sent when it gets SIGTERM.
"""

from __future__ import annotations

import json
import signal
import socket
import struct
import sys
import time

from monitor.probes.icmp import checksum

_WINDOW = 256  # sequences tried around the observed one and from 0, per echo seen


def _replies(source: str, destination: str, ident: int, payload: bytes):
    """A function of the sequence number giving the forged reply: the headers are built once and
    the checksum adjusted per sequence (a full sweep must fit in the victim's round)."""
    base = checksum(struct.pack("!BBHHH", 0, 0, 0, ident, 0) + payload)
    header = (
        struct.pack(
            "!BBHHHBBH4s4s",
            0x45,
            0,
            28 + len(payload),
            0,
            0,
            64,
            socket.IPPROTO_ICMP,
            0,  # the kernel fills in the header checksum
            socket.inet_aton(source),
            socket.inet_aton(destination),
        )
        + b"\0\0"
    )
    unsummed = ~base & 0xFFFF  # one's complement sum of the reply with sequence 0

    def reply(seq: int) -> bytes:
        total = unsummed + seq
        total = (total & 0xFFFF) + (total >> 16)
        return header + struct.pack("!HHH", ~total & 0xFFFF, ident, seq) + payload

    return reply


def main(own: str, victim: str) -> None:
    listen = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    send = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
    sent = {"forged": 0, "echoes_seen": 0, "full_sweeps": 0}

    def stop(*_):
        print(json.dumps(sent), flush=True)
        sys.exit(0)

    signal.signal(signal.SIGTERM, stop)
    print("ready", flush=True)
    while True:
        data, _ = listen.recvfrom(2048)
        ihl = (data[0] & 0x0F) * 4
        if data[ihl] != 8 or socket.inet_ntoa(data[16:20]) != own:
            continue  # only echo requests to the forger's own address
        sent["echoes_seen"] += 1
        asker = socket.inet_ntoa(data[12:16])
        _, _, _, ident, seq = struct.unpack_from("!BBHHH", data, ihl)
        reply = _replies(victim, asker, ident, data[ihl + 8 :])
        if sent["full_sweeps"] == 0:
            # every sequence once: whatever the victim's sequence is, one forgery matches it
            sent["full_sweeps"] = 1
            guesses = range(65536)
        else:
            guesses = {*range(_WINDOW), *((seq + d) & 0xFFFF for d in range(-_WINDOW, _WINDOW))}
        for n, guess in enumerate(guesses):
            send.sendto(reply(guess), (asker, 0))
            sent["forged"] += 1
            if n % 2048 == 2047:
                time.sleep(0.002)  # pace the sweep: the victim's socket buffer is not infinite


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
