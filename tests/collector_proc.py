"""`monitor run` as a real subprocess, and reading what it serves."""

from __future__ import annotations

import atexit
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from tests.agents import free_port

Sample = tuple[dict[str, str], float]


class Scraper:
    """Reading a process that serves the collector's HTTP endpoints (`url`, `process`, `log()`
    come from the class that mixes this in)."""

    url: str
    process: subprocess.Popen | None

    def log(self) -> str:
        return ""

    def get(self, path: str, headers: dict[str, str] | None = None) -> tuple[int, bytes, dict]:
        request = urllib.request.Request(self.url + path, headers=headers or {})
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, response.read(), dict(response.headers)
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read(), dict(exc.headers)
        except OSError:
            return 0, b"", {}

    def post(self, path: str) -> tuple[int, str]:
        request = urllib.request.Request(self.url + path, data=b"", method="POST")
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()

    def metrics_text(self) -> str:
        status, body, _ = self.get("/metrics")
        assert status == 200
        return body.decode()

    def samples(self, name: str) -> list[Sample]:
        """Every sample of `name`, read with prometheus-client's parser (only the lines of that
        family are handed to it: parsing a whole lab's exposition takes seconds)."""
        lines = [
            line
            for line in self.metrics_text().splitlines()
            if line.startswith((name + "{", name + " "))
        ]
        found = []
        for family in text_string_to_metric_families("\n".join(lines) + "\n"):
            for sample in family.samples:
                if sample.name == name:
                    found.append((sample.labels, sample.value))
        return found

    def value(self, name: str, **labels: str) -> float | None:
        for sample_labels, value in self.samples(name):
            if all(sample_labels.get(k) == v for k, v in labels.items()):
                return value
        return None

    def wait_for(
        self, predicate: Callable[[], object], timeout: float = 30, interval: float = 0.2
    ) -> object:
        deadline = time.monotonic() + timeout
        last_error: Exception | None = None
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"collector exited {self.process.returncode}:\n{self.log()}")
            try:
                result = predicate()
            except (AssertionError, KeyError, IndexError, TypeError) as exc:
                last_error, result = exc, None
            if result:
                return result
            time.sleep(interval)
        raise TimeoutError(
            f"condition not met in {timeout}s ({last_error!r})\n{self.log()[-3000:]}"
        )


@dataclass
class CollectorProcess(Scraper):
    config: Path
    env: dict[str, str] = field(default_factory=dict)
    port: int = field(default_factory=lambda: free_port(socket.SOCK_STREAM))
    extra_args: list[str] = field(default_factory=list)
    process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.config.parent / f"collector-{self.port}.log"

    def start(self) -> CollectorProcess:
        env = dict(os.environ, **self.env)
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "monitor",
                    "run",
                    "--config",
                    str(self.config),
                    "--listen",
                    f"127.0.0.1:{self.port}",
                    *self.extra_args,
                ],
                stdout=subprocess.DEVNULL,
                stderr=log,
                env=env,
            )
        atexit.register(self.kill)  # never leave a collector behind, whatever fails
        try:
            self.wait_for(lambda: self.get("/-/healthy")[0] == 200, timeout=20)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self, sig: int = signal.SIGTERM) -> int:
        if self.process is None or self.process.poll() is not None:
            return self.process.returncode if self.process else 0
        self.process.send_signal(sig)
        try:
            return self.process.wait(15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)
            raise

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(5)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
