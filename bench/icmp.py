"""ICMP: CPU per 1,000 echo requests, ours against fping on the same loopback targets.

    python -m bench icmp [--targets 2000] [--count 5] [--repeat 3] [--ping3]

Each repetition sends `count` echoes to every target with each tool, one after the other, and
counts CPU time of that tool alone (ours: process time of the rounds; fping: wait4 rusage).
`--ping3` adds the naive reference, a 64-thread pool around ping3.ping(), the design this
project replaced (see docs/icmp.md).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys

from bench.measure import Run, median_run, ratio_line, run_child


def addresses(n: int) -> list[str]:
    return [f"127.20.{i // 250}.{i % 250 + 1}" for i in range(n)]


def ours(n: int, count: int, spread: float) -> Run:
    status, out, err, _ = run_child(
        [sys.executable, "-m", "bench.icmp_worker", "ours", str(n), str(count), str(spread)]
    )
    if status:
        raise RuntimeError(err)
    data = json.loads(out)
    return Run(data["cpu"], data["sent"], data["sent"] - data["received"])


def ping3_pool(n: int, count: int) -> Run:
    status, out, err, _ = run_child(
        [sys.executable, "-m", "bench.icmp_worker", "ping3", str(n), str(count), "0"]
    )
    if status:
        raise RuntimeError(err)
    data = json.loads(out)
    return Run(data["cpu"], data["sent"], data["sent"] - data["received"])


def fping(n: int, count: int) -> Run:
    status, _out, err, cpu = run_child(
        ["fping", "-C", str(count), "-q", "-i", "1", "-p", "1000", "-t", "1000", "-f", "-"],
        stdin_text="\n".join(addresses(n)) + "\n",
    )
    if status not in (0, 1):  # 1: some target unreachable
        raise RuntimeError(err)
    lost = sum(line.split(":", 1)[1].split().count("-") for line in err.splitlines() if ":" in line)
    return Run(cpu, n * count, lost)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench icmp")
    parser.add_argument("--targets", type=int, default=2000)
    parser.add_argument("--count", type=int, default=5)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--spread",
        type=float,
        default=2.0,
        help="seconds over which our rounds start (the collector staggers them)",
    )
    parser.add_argument("--ping3", action="store_true", help="also measure ping3 in threads")
    args = parser.parse_args(argv)
    if shutil.which("fping") is None:
        print("fping is not installed (apt-get install -y fping)", file=sys.stderr)
        return 1
    results: dict[str, list[Run]] = {"ours": [], "fping": [], "ping3 x 64 threads": []}
    for i in range(args.repeat):
        results["ours"].append(ours(args.targets, args.count, args.spread))
        results["fping"].append(fping(args.targets, args.count))
        if args.ping3:
            results["ping3 x 64 threads"].append(ping3_pool(args.targets, args.count))
        print(
            f"repetition {i + 1}/{args.repeat}: "
            + ", ".join(
                f"{name} {runs[-1].per_1000:.4f} CPU-s/1000 lost {runs[-1].lost}"
                for name, runs in results.items()
                if runs
            ),
            flush=True,
        )
    print(f"{args.targets} loopback targets x {args.count} echoes, median of {args.repeat}:")
    for name, runs in results.items():
        if runs:
            run = median_run(runs)
            print(
                f"  {name:20s} {run.per_1000:8.4f} CPU-s per 1000 echoes, "
                f"lost {sum(r.lost for r in runs)} of {sum(r.work for r in runs)}"
            )
    print(
        ratio_line(
            "icmp_cpu_per_1000_echoes",
            median_run(results["ours"]),
            median_run(results["fping"]),
            "fping",
        )
    )
    return 0
