"""`monitor lab`: the simulated school network of a targets.yaml, and the collector watching it.

The lab process serves every device's SNMP agent, owns the nftables table that drops echo replies
of "down" targets, and listens for `monitor lab down/up/...` on a control socket. The collector is
the real `monitor run`, started as a child process with the same file, so what a newcomer sees is
exactly what production runs. Ctrl-C / SIGTERM stops everything the lab started and removes its
firewall table and socket. Linux only: other systems have just 127.0.0.1 on loopback.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import signal
import sys
import time
from pathlib import Path

from monitor.config.loader import load_config
from monitor.config.model import Config
from monitor.lab.control import ControlServer
from monitor.lab.firewall import Firewall, FirewallUnavailable
from monitor.lab.fleet import Fleet
from monitor.logs import event

log = logging.getLogger(__name__)


class _DemoEnvironment(dict):
    """The process environment, plus a demo value for every ${VAR} the file uses that is unset
    (the lab's agents accept the same values, so the shipped file runs as it is)."""

    def __init__(self, environ: dict[str, str]) -> None:
        super().__init__(environ)
        self.filled: list[str] = []

    def get(self, name, default=None):
        value = super().get(name)
        if value:
            return value
        value = f"lab-demo-{name.lower().replace('_', '-')}"
        self[name] = value
        self.filled.append(name)
        return value


def demo_environment(
    path: Path, environ: dict[str, str], vendors: tuple[str, ...] | None = None
) -> tuple[dict[str, str], list[str]]:
    """(environment for the lab and its collector, names that got demo values)."""
    env = _DemoEnvironment(environ)
    with contextlib.suppress(Exception):  # the real load below reports problems properly
        load_config(path, env, vendors)
    return dict(env), sorted(set(env.filled))


class Lab:
    def __init__(self, config: Config, control_path: Path, day_seconds: float = 600.0) -> None:
        self.config = config
        self.fleet = Fleet(config, day_seconds=day_seconds)
        self.control = ControlServer(control_path, self.handle)
        self.firewall: Firewall | None = None
        self.firewall_problem = ""
        self.down: set[tuple[str, str, str]] = set()
        self.degraded: dict[str, float] = {}
        self.loaded: dict[str, float] = {}

    async def start(self) -> None:
        self.fleet.build()
        try:
            await self.fleet.serve()
        except OSError as exc:
            self.fleet.close()
            if exc.errno == errno.EACCES:
                raise PermissionError(
                    "the lab serves SNMP on port 161 of its 127.x.y.z addresses: run it as "
                    "root (or grant CAP_NET_BIND_SERVICE)"
                ) from None
            raise
        try:
            self.firewall = Firewall.create()
        except (FirewallUnavailable, OSError) as exc:
            self.firewall_problem = str(exc)
            event(
                log,
                logging.WARNING,
                "no firewall control: `monitor lab down` will stop SNMP "
                "agents but targets keep answering ping",
                reason=str(exc),
            )
        await self.control.start()

    async def close(self) -> None:
        await self.control.close()
        self.fleet.close()
        if self.firewall is not None:
            self.firewall.close()

    # -- control requests --
    async def handle(self, request: dict) -> str:
        action = request.get("action")
        name = request.get("name") or ""
        if action == "status":
            return self.status()
        if action not in ("down", "up", "degrade", "load", "reboot"):
            raise ValueError(f"unknown action {action!r}")
        targets = self.fleet.resolve(name)
        addresses = {t.host for t in targets}
        now = time.time()
        if action in ("down", "up"):
            down = action == "down"
            for target in targets:
                device = self.fleet.devices.get(target.key)
                if device is not None:
                    device.down = down
                (self.down.add if down else self.down.discard)(target.key)
            if self.firewall is not None:
                await asyncio.to_thread(self.firewall.set_down, addresses, down)
            what = f"{name} ({len(targets)} target{'s' * (len(targets) != 1)})"
            note = "" if self.firewall else " (SNMP only: no firewall control)"
            return f"{'took down' if down else 'brought up'} {what}{note}"
        if action == "degrade":
            loss = float(request.get("loss", 0))
            if not 0 <= loss <= 1:
                raise ValueError("loss must be between 0% and 100%")
            for target in targets:
                device = self.fleet.devices.get(target.key)
                if device is not None:
                    device.loss = loss
            if self.firewall is not None:
                await asyncio.to_thread(self.firewall.set_loss, addresses, loss)
            if loss:
                self.degraded[name] = loss
            else:
                self.degraded.pop(name, None)
            return f"{name}: {loss:.0%} loss on {len(targets)} target(s)"
        if action == "load":
            link = targets[0]
            if link.role != "link" or link.via is None:
                raise ValueError(f"{name} is not a link with `via:`")
            device = self.fleet.devices.get((link.member, link.school, link.via.target))
            if device is None:
                raise ValueError(f"{link.via.target} is not simulated")
            utilisation = request.get("utilisation")
            value = None if utilisation is None else float(utilisation)
            device.set_load(value, link.bandwidth, now)
            if value is None:
                self.loaded.pop(name, None)
                return f"{name}: back to the school day"
            self.loaded[name] = value
            return (
                f"{name}: {link.via.target} {link.via.interface} now carries {value:.0%} of "
                f"the contracted bandwidth"
            )
        # reboot
        device = self.fleet.devices.get(targets[0].key)
        if device is None:
            raise ValueError(f"{name} has no SNMP agent to reboot")
        device.reboot(now)
        return f"{name}: rebooted (sysUpTime and counters start again)"

    def status(self) -> str:
        firewall = (
            f"nftables table {self.firewall.table}" if self.firewall else self.firewall_problem
        )
        lines = [f"{len(self.fleet.devices)} simulated devices, firewall: {firewall}"]
        lines += [f"down: {'/'.join(k[1:])}" for k in sorted(self.down)]
        lines += [f"degraded: {n} {v:.0%} loss" for n, v in sorted(self.degraded.items())]
        lines += [f"loaded: {n} {v:.0%}" for n, v in sorted(self.loaded.items())]
        return "\n".join(lines)


async def run(
    config_path: Path,
    listen: str,
    control_path: Path,
    day_seconds: float,
    with_collector: bool,
    collector_args: list[str] | None = None,
    vendors: tuple[str, ...] | None = None,
) -> int:
    """`vendors`: what `vendor:` may say (those of the profiles the collector is given)."""
    env, filled = demo_environment(config_path, dict(os.environ), vendors)
    config = load_config(config_path, env, vendors)
    if filled:
        event(
            log,
            logging.INFO,
            "the lab set demo values for unset variables (no real secrets)",
            variables=",".join(filled),
        )
    lab = Lab(config, control_path, day_seconds)
    try:
        await lab.start()
    except (PermissionError, RuntimeError) as exc:
        print(f"monitor lab: {exc}", file=sys.stderr)
        return 1
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    collector = None
    try:
        if with_collector:
            collector = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "monitor",
                "run",
                "--config",
                str(config_path),
                "--listen",
                listen,
                *(collector_args or []),
                env=env,
            )
        _banner(config, lab, listen if with_collector else None, control_path)
        waits = [asyncio.ensure_future(stop.wait())]
        if collector is not None:
            waits.append(asyncio.ensure_future(collector.wait()))
        _done, pending = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()
        if collector is not None and collector.returncode is not None:
            event(log, logging.ERROR, "the collector exited", code=collector.returncode)
            return 1
        return 0
    finally:
        if collector is not None and collector.returncode is None:
            collector.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(collector.wait(), 15)
            except asyncio.TimeoutError:
                collector.kill()
                await collector.wait()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        with contextlib.suppress(Exception):
            await lab.close()
        event(log, logging.INFO, "lab stopped")


def _banner(config: Config, lab: Lab, listen: str | None, control_path: Path) -> None:
    schools = list(config.schools())
    example = next((s for s in schools if any(t.role == "link" for t in s.targets)), None)
    link = next((t for t in example.targets if t.role == "link"), None) if example else None
    targets = sum(len(s.targets) for s in schools)
    control = "" if str(control_path) == str(_default_control()) else f" --control {control_path}"
    lines = [
        "",
        f"schoolnet-monitor lab: {len(config.members)} members, {len(schools)} schools, "
        f"{targets} targets, {len(lab.fleet.devices)} simulated SNMP agents on 127.0.0.0/8",
    ]
    if listen is not None:
        from monitor.collector import Listen

        url = Listen.parse(listen).url()
        lines += [f"  status page      {url}/", f"  metrics          {url}/metrics"]
    if example is not None and link is not None:
        name = f"{example.id}/{link.id}"
        lines += [
            f"  cut a school off: monitor lab down {name}{control}",
            f"  and back:         monitor lab up {name}{control}",
            f"  a lossy link:     monitor lab degrade {name} --loss 20%{control}",
            f"  a full link:      monitor lab load {name} --utilisation 95%{control}",
        ]
    if lab.firewall is None:
        lines.append(f"  (no firewall control: {lab.firewall_problem}; `down` stops SNMP only)")
    lines += ["  Ctrl-C stops the lab and the collector.", ""]
    print("\n".join(lines), flush=True)


def _default_control() -> Path:
    from monitor.lab.control import default_socket

    return default_socket()
