"""The running collector: config -> scheduler -> probes -> store -> HTTP, and live reloads.

A reload (POST /-/reload, SIGHUP, or the file changing on disk) validates the whole new file first;
only a valid file replaces the running config. A rejected edit is logged problem by problem in the
same FILE:LINE:COL form as `monitor check`, shown on the status page, and exported as
schoolnet_config_last_reload_successful 0, while the last good config keeps probing.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from dataclasses import dataclass
from pathlib import Path

from monitor import logs, os_support
from monitor.config.loader import ConfigError, load_config
from monitor.config.model import Config
from monitor.config.shard import select_shard
from monitor.exposition import Exposition
from monitor.logs import event
from monitor.probes.icmp import IcmpProber
from monitor.probes.snmp import SnmpProber
from monitor.scheduler import Scheduler
from monitor.store import ReloadStatus, ResultStore
from monitor.web import WebServer

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Listen:
    host: str
    port: int

    @classmethod
    def parse(cls, text: str) -> Listen:
        """HOST:PORT, [IPv6]:PORT, or :PORT for every interface."""
        host, sep, port = text.rpartition(":")
        if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
            raise ValueError(f"--listen wants HOST:PORT, got {text!r}")
        host = host.strip("[]") or "0.0.0.0"
        return cls(host, int(port))

    def url(self, port: int | None = None) -> str:
        host = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{port if port is not None else self.port}"


def _digest(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


class Collector:
    def __init__(
        self,
        config: Config,
        listen: Listen,
        watch_interval: float = 2.0,
        shard: tuple[int, int] | None = None,
    ) -> None:
        """`watch_interval` 0 disables watching the file (reloads then only on request);
        `shard` (K, N) keeps the schools of shard K of N (see config/shard.py)."""
        self.shard = shard
        if shard is not None:
            config = select_shard(config, *shard)
        self.path = Path(config.path)
        self.listen = listen
        self.watch_interval = watch_interval
        self.store = ResultStore()
        self.icmp = IcmpProber()
        self.snmp = SnmpProber()
        self.scheduler = Scheduler(self.store, self.icmp, self.snmp)
        self.exposition = Exposition(self.store)
        self._initial = config
        self._digest = _digest(self.path)
        self._reload_lock = asyncio.Lock()
        self._stopped = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self.web: WebServer | None = None

    async def run(self) -> None:
        """Probe until stop() (or SIGTERM/SIGINT)."""
        self._loop = asyncio.get_running_loop()
        self._check_icmp()
        self._activate(self._initial)
        self.web = WebServer(
            self.listen.host,
            self.listen.port,
            self.exposition,
            self.store,
            self._reload_from_thread,
        )
        self.web.start()
        event(
            log,
            logging.INFO,
            "collector started",
            listen=self.url,
            config=str(self.path),
            targets=sum(1 for _ in self._initial.targets()),
        )
        os_support.install_signal_handlers(
            self._loop, self.stop, lambda: asyncio.ensure_future(self.reload("SIGHUP"))
        )
        watcher = asyncio.create_task(self._watch(), name="config watcher")
        try:
            await self._stopped.wait()
        finally:
            os_support.remove_signal_handlers(self._loop)
            watcher.cancel()
            await self.scheduler.stop()
            self.icmp.close()
            self.snmp.close()
            self.web.stop()
            event(log, logging.INFO, "collector stopped")

    @property
    def url(self) -> str:
        port = self.web.address[1] if self.web else None
        return self.listen.url(port)

    def stop(self) -> None:
        self._stopped.set()

    async def reload(self, reason: str) -> tuple[bool, str]:
        """Validate the file and apply it; returns (ok, message for the requester)."""
        async with self._reload_lock:
            self._digest = _digest(self.path)
            try:
                config = await asyncio.get_running_loop().run_in_executor(
                    None, load_config, self.path
                )
            except ConfigError as exc:
                problems = tuple(str(p) for p in exc.problems)
                self.store.reload = ReloadStatus(
                    successful=False,
                    last_success=self.store.reload.last_success,
                    last_attempt=time.time(),
                    problems=problems,
                )
                event(
                    log,
                    logging.ERROR,
                    "config rejected, keeping the running config",
                    reason=reason,
                    problems=len(problems),
                )
                for problem in problems:
                    event(log, logging.ERROR, problem, reason=reason)
                return False, "config rejected; the running config stays:\n" + "\n".join(problems)
            added, removed, changed = self._activate(config)
            message = f"config reloaded: {added} added, {removed} removed, {changed} changed"
            event(
                log,
                logging.INFO,
                "config reloaded",
                reason=reason,
                added=added,
                removed=removed,
                changed=changed,
            )
            return True, message

    def _activate(self, config: Config) -> tuple[int, int, int]:
        logs.set_secrets(config.secrets())
        result = self.scheduler.apply(config)
        now = time.time()
        self.store.reload = ReloadStatus(successful=True, last_success=now, last_attempt=now)
        return result

    def _reload_from_thread(self) -> tuple[bool, str]:
        assert self._loop is not None
        future = asyncio.run_coroutine_threadsafe(self.reload("http"), self._loop)
        return future.result(timeout=60)

    async def _watch(self) -> None:
        if self.watch_interval <= 0:
            return
        while True:
            await asyncio.sleep(self.watch_interval)
            digest = await asyncio.get_running_loop().run_in_executor(None, _digest, self.path)
            if digest is not None and digest != self._digest:
                await self.reload("file changed")

    def _check_icmp(self) -> None:
        if not any(t.ping is not None for t in self._initial.targets()):
            return
        try:
            self.icmp.open()
        except OSError as exc:
            event(
                log,
                logging.ERROR,
                "ICMP unavailable: ping rounds will fail",
                error=str(exc),
                hint=os_support.icmp_privilege_hint(),
            )
