"""The running collector: config -> scheduler -> probes -> store -> HTTP, and live reloads.

A reload (POST /-/reload, SIGHUP, or the file changing on disk) validates the whole new file first;
only a valid file replaces the running config. A rejected edit is logged problem by problem in the
same FILE:LINE:COL form as `monitor check`, shown on the status page, and exported as
schoolnet_config_last_reload_successful 0, while the last good config keeps probing.

Reloads coalesce (`request_reload`): a request made while one runs joins the next one, which starts
after it and so sees every edit made before the request; every request waiting then shares that
one load. Loads are also spaced (at least 1 s, and twice the last load's duration, apart), so a
storm of requests takes a bounded share of a core away from the probes, however many clients.
A reload also re-reads `--web.config.file` (and the file watcher watches it and the certificates
it names): a broken one is logged and the last good one keeps serving.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import hashlib
import logging
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from monitor import logs, os_support
from monitor.config.loader import ConfigError, load_config
from monitor.config.model import Config
from monitor.config.shard import select_shard
from monitor.config.yamltree import LIMITS
from monitor.exposition import Exposition
from monitor.health import Health, ReloadStatus
from monitor.logs import event
from monitor.probes.registry import create_probes
from monitor.profiles import Registry, load_registry
from monitor.scheduler import Scheduler
from monitor.store import ResultStore
from monitor.web import WebServer
from monitor.web_config import WebConfig, WebConfigError, load_web_config

log = logging.getLogger(__name__)

RELOAD_SPACING = 1.0  # seconds at least between the starts of two reloads


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
    """What the watcher compares every few seconds: the bytes the loader would read, never more
    (a hostile file may be gigabytes), and for a file beyond that its size and modification
    time."""
    try:
        with open(path, "rb") as file:
            head = file.read(LIMITS.max_bytes + 1)
            stat = os.fstat(file.fileno())
    except OSError:
        return None
    digest = hashlib.sha256(head).hexdigest()
    if len(head) > LIMITS.max_bytes:
        digest += f":{stat.st_size}:{stat.st_mtime_ns}"
    return digest


def _digests(paths: tuple[Path, ...]) -> tuple[str | None, ...]:
    return tuple(_digest(p) for p in paths)


def _profiles_digest(directories: Sequence[Path]) -> str:
    """Of the operator's profile files (names and contents): a change is a reload."""
    digest = hashlib.sha256()
    for directory in directories:
        for path in sorted(directory.glob("*.yaml")):
            digest.update(path.name.encode() + b"\0")
            with contextlib.suppress(OSError):
                digest.update(path.read_bytes())
    return digest.hexdigest()


class Collector:
    def __init__(
        self,
        config: Config,
        listen: Listen,
        watch_interval: float = 2.0,
        shard: tuple[int, int] | None = None,
        web_config: WebConfig | None = None,
        lifecycle: bool = False,
        profiles: Registry | None = None,
        profile_dirs: Sequence[Path] = (),
    ) -> None:
        """`watch_interval` 0 disables watching the file (reloads then only on request);
        `shard` (K, N) keeps the schools of shard K of N (see config/shard.py); `web_config`
        (from --web.config.file) adds TLS, basic auth and headers; `lifecycle` enables
        POST /-/reload; `profiles` were loaded from the shipped ones and `profile_dirs`, which
        every reload reads again."""
        self.shard = shard
        if shard is not None:
            config = select_shard(config, *shard)
        self.path = Path(config.path)
        self.listen = listen
        self.watch_interval = watch_interval
        self.store = ResultStore()
        self.profile_dirs = tuple(profile_dirs)
        self.probes = create_probes(profiles)
        self.health = Health(probes=self.probes)
        self.scheduler = Scheduler(self.store, self.probes, self.health.rounds)
        self.exposition = Exposition(self.store, self.health)
        self._initial = config
        self._digest = _digest(self.path)
        self._profiles = _profiles_digest(self.profile_dirs)  # of the profiles in use
        self._profiles_seen = self._profiles  # of the files as last read (good or not)
        self._reload_lock = asyncio.Lock()
        self._stopped = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self.web: WebServer | None = None
        self.web_config = web_config or WebConfig()
        self.lifecycle = lifecycle
        self._web_digest = _digests(self.web_config.files)
        self._next_reload: asyncio.Future[tuple[bool, str]] | None = None
        self._next_reasons: set[str] = set()
        self._reloader: asyncio.Task | None = None
        self._next_load_at = 0.0  # event loop time before which no reload starts

    async def run(self) -> None:
        """Probe until stop() (or SIGTERM/SIGINT)."""
        self._loop = asyncio.get_running_loop()
        for probe in self.probes:
            probe.start(self._initial.targets())
        self._activate(self._initial)
        self.web = WebServer(
            self.listen.host,
            self.listen.port,
            self.exposition,
            self.store,
            self._reload_from_thread,
            web_config=self.web_config,
            lifecycle=self.lifecycle,
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
            self._loop, self.stop, lambda: asyncio.ensure_future(self.request_reload("SIGHUP"))
        )
        watcher = asyncio.create_task(self._watch(), name="config watcher")
        try:
            await self._stopped.wait()
        finally:
            os_support.remove_signal_handlers(self._loop)
            watcher.cancel()
            await self.scheduler.stop()
            for probe in self.probes:
                probe.close()
            self.web.stop()
            event(log, logging.INFO, "collector stopped")

    @property
    def url(self) -> str:
        port = self.web.address[1] if self.web else None
        url = self.listen.url(port)
        return "https" + url[4:] if self.web_config.tls is not None else url

    def stop(self) -> None:
        self._stopped.set()

    async def reload(self, reason: str) -> tuple[bool, str]:
        """Validate the file and apply it; returns (ok, message for the requester). Never raises:
        whatever goes wrong (a rejected file, a bug in the loader, memory running out) is a failed
        reload, reported as one, and the running config stays."""
        async with self._reload_lock:
            self._digest = _digest(self.path)
            self._profiles_seen = _profiles_digest(self.profile_dirs)
            try:
                profiles, config = await asyncio.get_running_loop().run_in_executor(
                    None, self._load
                )
            except ConfigError as exc:  # (a broken profile too: the last good ones stay)
                return self._rejected(reason, tuple(str(p) for p in exc.problems))
            except Exception as exc:  # any failure is a failed reload, never a crash
                return self._failed(reason, "loading", exc)
            try:
                if profiles is not None:
                    self._use_profiles(profiles)
                added, removed, changed = self._activate(config)
            except Exception as exc:
                return self._failed(reason, "applying", exc)
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

    async def request_reload(self, reason: str) -> tuple[bool, str]:
        """Reload targets.yaml and the web config, sharing the work with concurrent requests (see
        the module docstring); returns (ok, message for the requester)."""
        if self._next_reload is None:
            self._next_reload = asyncio.get_running_loop().create_future()
            self._next_reasons = set()
            if self._reloader is None or self._reloader.done():
                self._reloader = asyncio.create_task(self._run_reloads(), name="reload")
        self._next_reasons.add(reason)
        return await asyncio.shield(self._next_reload)

    async def _run_reloads(self) -> None:
        loop = asyncio.get_running_loop()
        while self._next_reload is not None:
            if self._next_load_at > loop.time():
                await asyncio.sleep(self._next_load_at - loop.time())  # requests keep joining
            future, reason = self._next_reload, ",".join(sorted(self._next_reasons))
            self._next_reload = None
            started = loop.time()
            try:
                ok, message = await self.reload(reason)
                web_ok, web_message = await self._reload_web_config(reason)
                result = (ok and web_ok, "\n".join(m for m in (message, web_message) if m))
            except Exception as exc:  # whatever failed: reported, and the requesters get an answer
                # (its text may quote the new files, secrets included: only its type is shown)
                problem = f"reload failed ({type(exc).__name__}); details in the collector's log"
                event(
                    log,
                    logging.ERROR,
                    "reload failed",
                    reason=reason,
                    exception=logs.exception_outline(exc),
                )
                self.health.reload = ReloadStatus(
                    successful=False,
                    last_success=self.health.reload.last_success,
                    last_attempt=time.time(),
                    problems=(problem,),
                )
                result = (False, problem)
            finished = loop.time()
            self._next_load_at = finished + max(RELOAD_SPACING, 2 * (finished - started))
            if not future.done():
                future.set_result(result)

    async def _reload_web_config(self, reason: str) -> tuple[bool, str]:
        path = self.web_config.path
        if path is None or self.web is None:
            return True, ""
        self._web_digest = _digests(self.web_config.files)
        try:
            config = await asyncio.get_running_loop().run_in_executor(None, load_web_config, path)
        except WebConfigError as exc:
            event(
                log,
                logging.ERROR,
                "web config rejected, keeping the running one",
                reason=reason,
                problem=str(exc),
            )
            return False, f"web config rejected; the running one stays:\n{exc}"
        self.web_config = config
        self._web_digest = _digests(config.files)
        self.web.set_config(config)
        event(log, logging.INFO, "web config reloaded", reason=reason, tls=config.tls is not None)
        return True, "web config reloaded"

    def _load(self) -> tuple[Registry | None, Config]:
        """The operator's profiles (None without any) and the targets file, read again."""
        profiles = load_registry(self.profile_dirs) if self.profile_dirs else None
        vendors = profiles.vendors if profiles is not None else None
        config = load_config(self.path, vendors=vendors)
        if self.shard is not None:
            config = select_shard(config, *self.shard)
        return profiles, config

    def _use_profiles(self, profiles: Registry) -> None:
        """New profiles: every device is matched again on its next poll."""
        if self._profiles_seen != self._profiles:
            for probe in self.probes:
                use = getattr(probe, "use_profiles", None)  # the kinds that read device profiles
                if use is not None:
                    use(profiles)
            self._profiles = self._profiles_seen

    def _rejected(self, reason: str, problems: tuple[str, ...]) -> tuple[bool, str]:
        self.health.reload = ReloadStatus(
            successful=False,
            last_success=self.health.reload.last_success,
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

    def _failed(self, reason: str, stage: str, exc: Exception) -> tuple[bool, str]:
        """A reload that broke rather than rejected the file. Its message may quote the new file,
        secrets the log redaction does not know yet included: the problem names the exception's
        type, the log adds where it happened, neither its text."""
        event(
            log,
            logging.ERROR,
            "config reload failed, keeping the running config",
            reason=reason,
            stage=stage,
            exception=logs.exception_outline(exc),
        )
        what = "loaded" if stage == "loading" else "applied"
        problem = (
            f"{self.path}:1:1: the file could not be {what} ({type(exc).__name__}); "
            "the running config stays, details in the collector's log"
        )
        return self._rejected(reason, (problem,))

    def _activate(self, config: Config) -> tuple[int, int, int]:
        logs.set_secrets(config.secrets())
        result = self.scheduler.apply(config)
        now = time.time()
        self.health.reload = ReloadStatus(successful=True, last_success=now, last_attempt=now)
        return result

    def _reload_from_thread(self) -> tuple[bool, str]:
        assert self._loop is not None
        future = asyncio.run_coroutine_threadsafe(self.request_reload("http"), self._loop)
        try:
            return future.result(timeout=60)
        except concurrent.futures.TimeoutError:
            return False, "the reload is still running after 60 s; its outcome will be logged"
        except Exception as exc:  # the HTTP request gets an answer, always
            return False, f"reload did not complete ({type(exc).__name__}); see the collector's log"

    async def _watch(self) -> None:
        """Reload when the file's content changes. One failed check or reload must not end the
        watching: the next edit still has to be picked up."""
        if self.watch_interval <= 0:
            return
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self.watch_interval)
            try:
                digest = await loop.run_in_executor(None, _digest, self.path)
                web_digest = await loop.run_in_executor(None, _digests, self.web_config.files)
                if (digest is not None and digest != self._digest) or (
                    web_digest != self._web_digest
                ):
                    await self.request_reload("file changed")
                elif self.profile_dirs:
                    profiles = await loop.run_in_executor(None, _profiles_digest, self.profile_dirs)
                    if profiles != self._profiles_seen:
                        await self.request_reload("profiles changed")
            except Exception:
                log.exception("config watcher: checking the files failed; still watching")
