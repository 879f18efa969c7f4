"""`monitor lab` as a real subprocess, for tests."""

from __future__ import annotations

import atexit
import re
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.agents import free_port
from tests.collector_proc import Scraper

REPO = Path(__file__).resolve().parent.parent


def fast_copy(source: Path, target: Path) -> str:
    """The file with only its probe intervals shortened, so a test sees many rounds quickly."""
    text = source.read_text()
    fast = text.replace(
        "ping: {interval: 15s, count: 5, timeout: 1s}",
        "ping: {interval: 2s, count: 4, spacing: 200ms, timeout: 500ms}",
    )
    fast = fast.replace(
        "snmp: {interval: 60s, timeout: 2s, retries: 1",
        "snmp: {interval: 10s, timeout: 1s, retries: 1",
    )
    fast = fast.replace("ping: {timeout: 2s}", "ping: {timeout: 800ms}")
    fast = fast.replace("snmp: {interval: 2m}", "snmp: {interval: 10s}")
    changed = [(a, b) for a, b in zip(text.splitlines(), fast.splitlines(), strict=True) if a != b]
    assert len(changed) == 4 and all(re.search(r"(interval|timeout)", a) for a, _ in changed)
    target.write_text(fast)
    return fast


@dataclass
class LabProcess(Scraper):
    config: Path
    workdir: Path
    port: int = field(default_factory=lambda: free_port(socket.SOCK_STREAM))
    extra_args: list[str] = field(default_factory=list)
    prefix: list[str] = field(default_factory=list)
    process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def control(self) -> Path:
        return self.workdir / "lab.sock"

    @property
    def log_path(self) -> Path:
        return self.workdir / "lab.log"

    def start(self) -> LabProcess:
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                [
                    *self.prefix,
                    sys.executable,
                    "-m",
                    "monitor",
                    "lab",
                    "--config",
                    str(self.config),
                    "--listen",
                    f"127.0.0.1:{self.port}",
                    "--control",
                    str(self.control),
                    *self.extra_args,
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=REPO,
            )
        atexit.register(self.kill)
        return self

    def wait_ready(self, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"lab exited {self.process.returncode}:\n{self.log()}")
            if self.control.exists() and "Ctrl-C stops" in self.log():
                return
            time.sleep(0.2)
        raise TimeoutError(f"lab not ready in {timeout}s:\n{self.log()}")

    def command(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "monitor", "lab", *args, "--control", str(self.control)],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=REPO,
        )

    def stop(self, sig: int = signal.SIGTERM) -> int:
        if self.process is None or self.process.poll() is not None:
            return self.process.returncode if self.process else 0
        self.process.send_signal(sig)
        try:
            return self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.kill()
            raise

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(5)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
