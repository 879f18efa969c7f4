"""Fleet: can one collector keep its schedule for a whole region on this machine?

    python -m bench fleet [--devices 5000] [--minutes 4] [--v3] [--shards N] [--find-max]

Builds a cooperative of schools of ten devices (an edge router, a 48-port PoE switch and eight
access points, plus the school's link), serves it with `monitor lab --no-collector`, runs
`monitor run` against it with the production intervals (ping every 15 s, SNMP every 60 s) and
scrapes it every 30 s like Prometheus. After two SNMP intervals of warm-up it measures, over
`--minutes`: rounds skipped or late, failed polls, echo loss, the collector's CPU, its peak RSS and
the scrape time. The fleet "holds" when no round was skipped, no poll failed for load, nothing was
lost and RSS stayed under 1 GiB. `--shards N` runs N collectors (`monitor run --shard K/N`), the
way docs/scaling.md splits a cooperative over cores. `--find-max` grows the fleet until it no
longer holds.
"""

from __future__ import annotations

import argparse
import gzip
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from bench.measure import proc_cpu

RSS_LIMIT = 1 << 30


def fleet_file(path: Path, devices: int, v3: bool) -> int:
    """Write the fleet; returns the number of SNMP devices (ten per school)."""
    schools = max(1, devices // 10)
    auth = "kien-v3" if v3 else "kien-v2c"
    lines = [
        "defaults:",
        "  ping: {interval: 15s, count: 5, timeout: 1s}",
        f"  snmp: {{interval: 60s, timeout: 5s, retries: 1, auth: {auth}}}",
        "auths:",
        "  kien-v3: {version: 3, username: fleet, security_level: authPriv, "
        "auth_protocol: SHA256, auth_password: fleet-auth-pass, priv_protocol: AES, "
        "priv_password: fleet-priv-pass}",
        "  kien-v2c: {version: 2c, community: fleet-community}",
        "members:",
    ]
    per_member = 100
    for m in range((schools + per_member - 1) // per_member):
        lines += [f"  - id: member-{m}", "    schools:"]
        for i in range(m * per_member, min(schools, (m + 1) * per_member)):
            net = f"127.{100 + i // 250}.{i % 250}"
            lines += [
                f"      - id: school-{i}",
                "        targets:",
                f"          - {{id: rtr, role: router, vendor: cisco, address: {net}.1}}",
                f"          - {{id: sw, role: switch, vendor: cisco, address: {net}.2, "
                "parent: rtr}",
            ]
            lines += [
                f"          - {{id: ap-{a}, role: ap, vendor: ubiquiti, "
                f"address: {net}.{11 + a}, parent: sw}}"
                for a in range(8)
            ]
            lines.append(
                f"          - {{id: internet, role: link, address: {net}.254, "
                "bandwidth: 500Mbit, via: {target: rtr, interface: GigabitEthernet0/0/0}}"
            )
    path.write_text("\n".join(lines) + "\n")
    return schools * 10


@dataclass
class Scrape:
    at: float
    seconds: float
    values: dict[str, float]


_WANTED = re.compile(
    r"^(schoolnet_collector_rounds_skipped_total|schoolnet_collector_schedule_delay_seconds_"
    r"(?:sum|count)|schoolnet_ping_requests_total|schoolnet_ping_replies_total|schoolnet_snmp_up"
    r"|schoolnet_up|process_resident_memory_bytes)(\{[^}]*\})? (\S+)$"
)


def scrape(url: str) -> Scrape:
    started = time.monotonic()
    request = urllib.request.Request(url, headers={"Accept-Encoding": "gzip"})
    with urllib.request.urlopen(request, timeout=60) as response:
        body = response.read()
        if response.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
    seconds = time.monotonic() - started
    values: dict[str, float] = {}
    for line in body.decode().splitlines():
        match = _WANTED.match(line)
        if match is None:
            continue
        name, labels, value = match.group(1), match.group(2) or "", float(match.group(3))
        if name in ("schoolnet_snmp_up", "schoolnet_up"):
            values[f"{name}_down"] = values.get(f"{name}_down", 0) + (value == 0)
            values[f"{name}_count"] = values.get(f"{name}_count", 0) + 1
            continue
        key = name + (
            "{icmp}" if 'probe="icmp"' in labels else "{snmp}" if 'probe="snmp"' in labels else ""
        )
        values[key] = values.get(key, 0) + value
    return Scrape(time.monotonic(), seconds, values)


def _combined(scrapes: list[Scrape]) -> Scrape:
    """One view of several shards: counts add up, the slowest scrape counts."""
    values: dict[str, float] = {}
    for s in scrapes:
        for key, value in s.values.items():
            values[key] = values.get(key, 0) + value
    return Scrape(max(s.at for s in scrapes), max(s.seconds for s in scrapes), values)


def _vm(pid: int, field: str) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    return 0


def run_fleet(devices: int, minutes: float, v3: bool, work: Path, shards: int = 1) -> dict:
    config = work / f"fleet-{devices}.yaml"
    snmp_devices = fleet_file(config, devices, v3)
    control = work / f"lab-{devices}.sock"
    ports = [_free_port() for _ in range(shards)]
    with open(work / f"lab-{devices}.log", "wb") as log:
        lab = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "monitor",
                "lab",
                "--no-collector",
                "--config",
                str(config),
                "--control",
                str(control),
                "--log-level",
                "warning",
            ],
            stdout=log,
            stderr=log,
        )
    collectors: list[subprocess.Popen] = []
    try:
        deadline = time.monotonic() + 300
        while not control.exists():
            if lab.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError((work / f"lab-{devices}.log").read_text()[-2000:])
            time.sleep(0.5)
        for k, port in enumerate(ports):
            with open(work / f"collector-{devices}-{k}.log", "wb") as log:
                collectors.append(
                    subprocess.Popen(
                        [
                            sys.executable,
                            "-m",
                            "monitor",
                            "run",
                            "--config",
                            str(config),
                            "--listen",
                            f"127.0.0.1:{port}",
                            "--log-level",
                            "warning",
                            "--shard",
                            f"{k}/{shards}",
                        ],
                        stdout=log,
                        stderr=log,
                    )
                )
        urls = [f"http://127.0.0.1:{port}/metrics" for port in ports]
        for url in urls:
            _wait(url)
        # Two SNMP intervals: every device identified (its first poll asks more: profile
        # matching, model, every profile OID) and polled once more in the steady state.
        warmup_end = time.monotonic() + 125
        while time.monotonic() < warmup_end:
            for url in urls:
                scrape(url)
            time.sleep(min(30, max(0, warmup_end - time.monotonic())))
        first = _combined([scrape(url) for url in urls])
        cpu0 = sum(proc_cpu(c.pid) for c in collectors)
        lab0 = proc_cpu(lab.pid)
        scrapes = [first]
        end = time.monotonic() + minutes * 60
        while time.monotonic() < end:
            time.sleep(min(30, max(0, end - time.monotonic())))
            scrapes.append(_combined([scrape(url) for url in urls]))
        last = scrapes[-1]
        wall = last.at - first.at
        cpu = sum(proc_cpu(c.pid) for c in collectors) - cpu0
        lab_cpu = proc_cpu(lab.pid) - lab0
        d = {k: last.values.get(k, 0) - first.values.get(k, 0) for k in last.values}
        rounds = d.get("schoolnet_collector_schedule_delay_seconds_count{icmp}", 0) + d.get(
            "schoolnet_collector_schedule_delay_seconds_count{snmp}", 0
        )
        delay = d.get("schoolnet_collector_schedule_delay_seconds_sum{icmp}", 0) + d.get(
            "schoolnet_collector_schedule_delay_seconds_sum{snmp}", 0
        )
        requests = d.get("schoolnet_ping_requests_total", 0)
        result = {
            "devices": snmp_devices,
            "targets": snmp_devices + snmp_devices // 10,
            "protocol": "v3 authPriv" if v3 else "v2c",
            "shards": shards,
            "wall": wall,
            "collector_cores": cpu / wall,
            "lab_cores": lab_cpu / wall,
            "skipped": d.get("schoolnet_collector_rounds_skipped_total{icmp}", 0)
            + d.get("schoolnet_collector_rounds_skipped_total{snmp}", 0),
            "skipped_snmp": d.get("schoolnet_collector_rounds_skipped_total{snmp}", 0),
            "mean_delay": delay / rounds if rounds else 0.0,
            "rounds": rounds,
            "snmp_down": last.values.get("schoolnet_snmp_up_down", 0),
            "snmp_count": last.values.get("schoolnet_snmp_up_count", 0),
            "echo_loss": 1 - d.get("schoolnet_ping_replies_total", 0) / requests
            if requests
            else 1.0,
            "peak_rss": max(_vm(c.pid, "VmHWM") for c in collectors),
            "max_scrape": max(s.seconds for s in scrapes),
            "median_scrape": statistics.median(s.seconds for s in scrapes),
        }
        result["holds"] = (
            result["skipped"] == 0
            and result["snmp_down"] == 0
            and result["echo_loss"] == 0
            and result["peak_rss"] < RSS_LIMIT
            and result["max_scrape"] < 25
        )
        return result
    finally:
        for process in (*collectors, lab):
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(60)
                except subprocess.TimeoutExpired:
                    process.kill()


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait(url: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url.replace("/metrics", "/-/healthy"), timeout=5).read()
            return
        except OSError:
            time.sleep(0.5)
    raise TimeoutError(url)


def report(r: dict) -> str:
    return (
        f"{r['devices']} devices ({r['targets']} targets, {r['protocol']}, "
        f"{r['shards']} collector process{'es' if r['shards'] > 1 else ''}): "
        f"{'HOLDS' if r['holds'] else 'DOES NOT HOLD'}; rounds {r['rounds']:.0f}, skipped "
        f"{r['skipped']:.0f} ({r['skipped_snmp']:.0f} SNMP), mean start delay "
        f"{r['mean_delay'] * 1000:.1f} ms; polls failing "
        f"{r['snmp_down']:.0f}/{r['snmp_count']:.0f}; echo loss {r['echo_loss']:.2%}; "
        f"collectors {r['collector_cores']:.2f} cores, lab {r['lab_cores']:.2f} cores; "
        f"peak RSS {r['peak_rss'] / 2**20:.0f} MiB per process; scrape (wall, gzip) median "
        f"{r['median_scrape']:.2f} s, slowest {r['max_scrape']:.2f} s"
    )


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench fleet")
    parser.add_argument("--devices", type=int, default=5000)
    parser.add_argument("--minutes", type=float, default=4)
    parser.add_argument("--v3", action="store_true", help="SNMPv3 authPriv instead of v2c")
    parser.add_argument(
        "--find-max",
        action="store_true",
        help="grow the fleet by --step from --devices until it no longer holds",
    )
    parser.add_argument("--step", type=int, default=2500)
    parser.add_argument("--keep", metavar="DIR", help="keep configs and logs in DIR")
    parser.add_argument(
        "--shards", type=int, default=1, help="collector processes, each `monitor run --shard K/N`"
    )
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        print("the fleet lab serves SNMP on port 161 and needs root", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(args.keep or tmp)
        work.mkdir(parents=True, exist_ok=True)
        devices, best = args.devices, None
        while True:
            result = run_fleet(devices, args.minutes, args.v3, work, args.shards)
            print(report(result), flush=True)
            if result["holds"]:
                best = result
            if not args.find_max or not result["holds"]:
                break
            devices += args.step
    target = best or result
    print(
        f"RESULT fleet_devices={target['devices'] if best else 0} "
        f"ratio={target['collector_cores']:.2f} (collector cores used at that size by "
        f"{args.shards} process(es); holds: {bool(best)}, peak RSS "
        f"{target['peak_rss'] / 2**20:.0f} MiB of 1024)"
    )
    return 0 if best else 1
