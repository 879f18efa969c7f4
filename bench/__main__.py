"""`python -m bench {icmp,snmp,fleet,exposition}`."""

from __future__ import annotations

import argparse
import importlib
import sys

BENCHMARKS = {
    "icmp": "bench.icmp",
    "snmp": "bench.snmp",
    "fleet": "bench.fleet",
    "exposition": "bench.exposition",
}


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("name", choices=sorted(BENCHMARKS))
    args, rest = parser.parse_known_args()
    module = importlib.import_module(BENCHMARKS[args.name])
    return module.main(rest)


if __name__ == "__main__":
    sys.exit(main())
