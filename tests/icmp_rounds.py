"""Run one ICMP round per address with our prober and print the results as JSON.

Used by tests that need the prober inside a network namespace or without CAP_NET_RAW:
    python -m tests.icmp_rounds COUNT TIMEOUT ADDRESS...
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import sys

from monitor.config.model import PingSettings
from monitor.probes.icmp import IcmpProber, family_of


async def main(count: int, timeout: float, addresses: list[str]) -> dict:
    prober = IcmpProber()
    settings = PingSettings(count=count, timeout=timeout, spacing=0.2, interval=60)
    try:
        kinds = {}
        for address in addresses:
            try:
                icmp = prober.open(family_of(address))
                kinds[address] = "raw" if icmp.raw else "datagram"
            except OSError as exc:
                kinds[address] = f"unavailable: {exc}"
        rounds = await asyncio.gather(*(prober.round(a, settings) for a in addresses))
    finally:
        prober.close()
    return {
        "kinds": kinds,
        "stats": dataclasses.asdict(prober.stats),
        "rounds": [
            {"address": a, "sent": r.sent, "rtts": list(r.rtts), "error": r.error}
            for a, r in zip(addresses, rounds, strict=True)
        ],
    }


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main(int(sys.argv[1]), float(sys.argv[2]), sys.argv[3:]))))
