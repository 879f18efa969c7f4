"""Poll every SNMP target of a file `rounds` times: `python -m bench.snmp_worker FILE ROUNDS`.

Prints a JSON list, one {cpu, varbinds, failed} per round; cpu is this process's CPU time for the
round's polls, all devices concurrently, as the collector runs them.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path

from monitor.config.loader import load_config
from monitor.probes.snmp.poll import SnmpProber


async def main(path: Path, rounds: int) -> list[dict]:
    config = load_config(path)
    targets = [t for t in config.targets() if t.snmp is not None]
    prober = SnmpProber()
    results = []
    try:
        for _ in range(rounds):
            start = time.process_time()
            polls = await asyncio.gather(*(prober.poll(t, t.host) for t in targets))
            results.append(
                {
                    "cpu": time.process_time() - start,
                    "varbinds": sum(p.varbinds for p in polls),
                    "failed": sum(1 for p in polls if not p.ok),
                }
            )
    finally:
        prober.close()
    return results


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main(Path(sys.argv[1]), int(sys.argv[2])))))
