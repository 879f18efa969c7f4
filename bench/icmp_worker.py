"""One measured batch of echoes in a fresh process.

    python -m bench.icmp_worker KIND N COUNT SPREAD


Prints JSON {cpu, sent, received}; cpu is process time of the sending and receiving only (not of
interpreter start-up), as a long-running collector would spend it.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from concurrent.futures import ThreadPoolExecutor

from bench.icmp import addresses
from monitor.config.model import PingSettings
from monitor.probes.icmp import IcmpProber


async def _ours(targets: list[str], count: int, spread: float) -> tuple[float, int, int]:
    prober = IcmpProber()
    prober.open()
    settings = PingSettings(count=count, timeout=1.0, spacing=1.0, interval=60)

    async def one(i: int, address: str):
        await asyncio.sleep(spread * i / len(targets))
        return await prober.round(address, settings)

    start = time.process_time()
    rounds = await asyncio.gather(*(one(i, a) for i, a in enumerate(targets)))
    cpu = time.process_time() - start
    prober.close()
    return cpu, sum(r.sent for r in rounds), sum(r.received for r in rounds)


def _ping3(targets: list[str], count: int) -> tuple[float, int, int]:
    import ping3  # only the reference needs it

    jobs = [a for a in targets for _ in range(count)]
    start = time.process_time()
    with ThreadPoolExecutor(64) as pool:
        replies = list(pool.map(lambda a: ping3.ping(a, timeout=1), jobs))
    cpu = time.process_time() - start
    return cpu, len(jobs), sum(1 for r in replies if r)


def main() -> None:
    kind, n, count, spread = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
    targets = addresses(n)
    if kind == "ours":
        cpu, sent, received = asyncio.run(_ours(targets, count, spread))
    else:
        cpu, sent, received = _ping3(targets, count)
    print(json.dumps({"cpu": cpu, "sent": sent, "received": received}))


if __name__ == "__main__":
    main()
