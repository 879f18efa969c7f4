"""SNMP: CPU per 1,000 varbinds, our poller against snmp_exporter on the same simulated switches.

    python -m bench snmp [--devices 50] [--rounds 3] [--v3]

A lab (`monitor lab --no-collector`) serves N 48-port switches on 127.0.0.1. Each repetition polls
every switch once with our SNMP prober (in a fresh process; CPU time of the polls only) and scrapes
every switch once through prometheus-snmp-exporter walking the same ifTable/ifXTable columns (CPU
time of the exporter process, read from /proc, which includes its HTTP and exposition work).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from bench.measure import Run, median_run, proc_cpu, ratio_line, run_child

COMMUNITY = "bench-community"
V3 = {
    "user": "bench-v3",
    "auth": "SHA256",
    "auth_password": "bench-auth-pass",
    "priv": "AES",
    "priv_password": "bench-priv-pass",
}
# the columns our poller reads from ifTable/ifXTable
COLUMNS = {
    "ifDescr": ("1.3.6.1.2.1.2.2.1.2", "DisplayString"),
    "ifSpeed": ("1.3.6.1.2.1.2.2.1.5", "gauge"),
    "ifAdminStatus": ("1.3.6.1.2.1.2.2.1.7", "gauge"),
    "ifOperStatus": ("1.3.6.1.2.1.2.2.1.8", "gauge"),
    "ifInOctets": ("1.3.6.1.2.1.2.2.1.10", "counter"),
    "ifInDiscards": ("1.3.6.1.2.1.2.2.1.13", "counter"),
    "ifInErrors": ("1.3.6.1.2.1.2.2.1.14", "counter"),
    "ifOutOctets": ("1.3.6.1.2.1.2.2.1.16", "counter"),
    "ifOutDiscards": ("1.3.6.1.2.1.2.2.1.19", "counter"),
    "ifOutErrors": ("1.3.6.1.2.1.2.2.1.20", "counter"),
    "ifName": ("1.3.6.1.2.1.31.1.1.1.1", "DisplayString"),
    "ifHCInOctets": ("1.3.6.1.2.1.31.1.1.1.6", "counter"),
    "ifHCOutOctets": ("1.3.6.1.2.1.31.1.1.1.10", "counter"),
    "ifHighSpeed": ("1.3.6.1.2.1.31.1.1.1.15", "gauge"),
    "ifAlias": ("1.3.6.1.2.1.31.1.1.1.18", "DisplayString"),
}


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def fleet_file(path: Path, devices: int, v3: bool) -> list[int]:
    ports = [free_port() for _ in range(devices)]
    auth = (
        f"  v3: {{version: 3, username: {V3['user']}, security_level: authPriv, "
        f"auth_protocol: {V3['auth']}, auth_password: {V3['auth_password']}, "
        f"priv_protocol: {V3['priv']}, priv_password: {V3['priv_password']}}}\n"
    )
    lines = [
        "defaults:",
        "  ping: false",
        f"  snmp: {{interval: 60s, timeout: 5s, retries: 1, auth: {'v3' if v3 else 'v2'}}}",
        "auths:",
        f"  v2: {{version: 2c, community: {COMMUNITY}}}",
        auth.rstrip(),
        "members:",
        "  - id: bench",
        "    schools:",
        "      - id: bench-school",
        "        targets:",
    ]
    lines += [
        f"          - {{id: sw-{i}, role: switch, vendor: cisco, address: '127.0.0.1:{port}'}}"
        for i, port in enumerate(ports)
    ]
    path.write_text("\n".join(lines) + "\n")
    return ports


def exporter_config(path: Path, v3: bool) -> None:
    walk = [oid for oid, _ in COLUMNS.values()]
    metrics = [
        {
            "name": name,
            "oid": oid,
            "type": kind,
            "indexes": [{"labelname": "ifIndex", "type": "gauge"}],
        }
        for name, (oid, kind) in COLUMNS.items()
    ]
    if v3:
        auth = {
            "username": V3["user"],
            "security_level": "authPriv",
            "password": V3["auth_password"],
            "auth_protocol": V3["auth"],
            "priv_protocol": V3["priv"],
            "priv_password": V3["priv_password"],
        }
        module = {
            "walk": walk,
            "metrics": metrics,
            "version": 3,
            "max_repetitions": 25,
            "retries": 1,
            "timeout": "5s",
            "auth": auth,
        }
    else:
        module = {
            "walk": walk,
            "metrics": metrics,
            "version": 2,
            "max_repetitions": 25,
            "retries": 1,
            "timeout": "5s",
            "auth": {"community": COMMUNITY},
        }
    path.write_text(json.dumps({"if_mib": module}, indent=1))  # JSON is YAML


def ours(config: Path, rounds: int) -> list[Run]:
    status, out, err, _ = run_child(
        [sys.executable, "-m", "bench.snmp_worker", str(config), str(rounds)]
    )
    if status:
        raise RuntimeError(err)
    return [Run(r["cpu"], r["varbinds"], r["failed"]) for r in json.loads(out)]


def snmp_exporter(ports: list[int], rounds: int, workdir: Path, v3: bool) -> list[Run]:
    config = workdir / "snmp.yml"
    exporter_config(config, v3)
    listen = free_port()
    with open(workdir / "exporter.log", "wb") as log:
        process = subprocess.Popen(
            [
                "prometheus-snmp-exporter",
                f"--config.file={config}",
                f"--web.listen-address=127.0.0.1:{listen}",
            ],
            stdout=log,
            stderr=log,
        )
    try:
        _wait_http(f"http://127.0.0.1:{listen}/metrics")

        def scrape(port: int) -> tuple[int, bool]:
            url = f"http://127.0.0.1:{listen}/snmp?module=if_mib&target=127.0.0.1:{port}"
            body = urllib.request.urlopen(url, timeout=60).read().decode()
            match = re.search(r"^snmp_scrape_pdus_returned (\S+)", body, re.M)
            return (int(float(match.group(1))) if match else 0), "ifHCInOctets{" in body

        runs = []
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            for _ in range(rounds):
                before = proc_cpu(process.pid)
                results = list(pool.map(scrape, ports))
                cpu = proc_cpu(process.pid) - before
                runs.append(
                    Run(cpu, sum(v for v, _ in results), sum(1 for _, ok in results if not ok))
                )
        return runs
    finally:
        process.terminate()
        process.wait(10)


def _wait_http(url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=2).read()
            return
        except OSError:
            time.sleep(0.2)
    raise TimeoutError(url)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench snmp")
    parser.add_argument("--devices", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--v3", action="store_true", help="SNMPv3 authPriv (SHA256/AES)")
    args = parser.parse_args(argv)
    if shutil.which("prometheus-snmp-exporter") is None:
        print(
            "prometheus-snmp-exporter is not installed "
            "(apt-get install -y prometheus-snmp-exporter)",
            file=sys.stderr,
        )
        return 1
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        config = work / "fleet.yaml"
        ports = fleet_file(config, args.devices, args.v3)
        with open(work / "lab.log", "wb") as log:
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
                    str(work / "lab.sock"),
                    "--log-level",
                    "warning",
                ],
                stdout=subprocess.DEVNULL,
                stderr=log,
                env=dict(os.environ),
            )
        try:
            deadline = time.monotonic() + 120
            while not (work / "lab.sock").exists():
                if lab.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError((work / "lab.log").read_text())
                time.sleep(0.2)
            ours_runs = ours(config, args.rounds)
            ref_runs = snmp_exporter(ports, args.rounds, work, args.v3)
        finally:
            lab.terminate()
            lab.wait(30)
    kind = "v3 authPriv SHA256/AES" if args.v3 else "v2c"
    print(f"{args.devices} simulated 48-port switches, {kind}, {args.rounds} rounds:")
    for name, runs in (("ours", ours_runs), ("snmp_exporter 0.21", ref_runs)):
        run = median_run(runs)
        print(
            f"  {name:20s} {run.per_1000:8.4f} CPU-s per 1000 varbinds "
            f"({run.work} varbinds per round, {sum(r.lost for r in runs)} failed polls)"
        )
    name = "snmp_v3_cpu_per_1000_varbinds" if args.v3 else "snmp_cpu_per_1000_varbinds"
    print(ratio_line(name, median_run(ours_runs), median_run(ref_runs), "snmp_exporter"))
    return 0
