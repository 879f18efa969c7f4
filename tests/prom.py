"""Real Prometheus and Alertmanager processes for tests, and what tests need around them.

Everything binds 127.0.0.1 on free ports and lives in a temporary directory:

- `PrometheusProcess`: the Debian `prometheus` binary with a generated prometheus.yml (scrape
  configs, rule files, Alertmanager targets), plus query and wait helpers.
- `shortened_rules()`: a test-only copy of the shipped rule files whose `for:`/`keep_firing_for:`
  (and optionally range windows) are divided by a factor, so an end-to-end test sees in seconds
  what production sees in minutes. The shipped files are never changed.
- `AlertmanagerProcess`: `prometheus-alertmanager` with clustering off, plus the v2 API.
- `alertmanager_test_config()`: the shipped alertmanager.yml with its receivers pointed at a local
  `WebhookSink` (or at nothing); route tree and inhibition rules stay exactly as shipped.
- `documented_metrics()`, `recorded_metrics()`, `metric_names()`: the names rules and dashboards
  may use (docs/metrics.md and the recording rules), and the names an expression uses.
"""

from __future__ import annotations

import atexit
import copy
import json
import re
import shutil
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import yaml

from tests.agents import free_port

REPO = Path(__file__).resolve().parent.parent
PROMETHEUS_DIR = REPO / "deploy" / "prometheus"
PROMETHEUS_CONFIG = PROMETHEUS_DIR / "prometheus.yml"
RULES_DIR = PROMETHEUS_DIR / "rules"
RULE_TESTS_DIR = PROMETHEUS_DIR / "tests"
ALERTMANAGER_DIR = REPO / "deploy" / "alertmanager"
ALERTMANAGER_CONFIG = ALERTMANAGER_DIR / "alertmanager.yml"
METRICS_DOC = REPO / "docs" / "metrics.md"

PROMETHEUS_BIN = "prometheus"
ALERTMANAGER_BIN = "prometheus-alertmanager"


class PromQLError(AssertionError):
    """A query Prometheus refused (bad syntax, bad matching)."""


# ---------------------------------------------------------------------------------------------
# durations
# ---------------------------------------------------------------------------------------------

_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}
_DURATION = re.compile(r"(\d+)(ms|s|m|h|d|w|y)")


def parse_duration(text: str) -> float:
    """A Prometheus duration ("1h30m", "2m", "500ms") in seconds."""
    text = str(text).strip()
    parts = _DURATION.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ValueError(f"not a Prometheus duration: {text!r}")
    return sum(int(n) * _UNITS[u] for n, u in parts)


def format_duration(seconds: float) -> str:
    """Seconds as a Prometheus duration, in whole milliseconds at least 1ms."""
    ms = max(1, round(seconds * 1000))
    return f"{ms // 1000}s" if ms % 1000 == 0 else f"{ms}ms"


def shortened_rules(
    dest: Path,
    factor: float = 60,
    scale_ranges: bool = False,
    source: Path = RULES_DIR,
) -> list[Path]:
    """Copies every rule file of `source` into `dest` with `for:` and `keep_firing_for:` divided by
    `factor` (60: 2m -> 2s). With `scale_ranges`, range selectors and offsets in expressions
    (`[5m]`, `offset 1h`) are divided too; that changes what windows like `[1d]` mean, so use it
    only where a test needs windows to fill quickly. Returns the written paths, for
    `PrometheusProcess(rule_files=...)`. The shipped files are only read."""
    dest.mkdir(parents=True, exist_ok=True)
    written = []

    def scale(match: re.Match) -> str:
        return format_duration(parse_duration(match.group(0)) / factor)

    for path in sorted(source.glob("*.yml")):
        doc = yaml.safe_load(path.read_text())
        for group in doc["groups"]:
            for rule in group["rules"]:
                for key in ("for", "keep_firing_for"):
                    if key in rule:
                        rule[key] = format_duration(parse_duration(rule[key]) / factor)
                if scale_ranges:
                    rule["expr"] = re.sub(
                        r"(?<=\[)[0-9a-z]+(?=[\]:])|(?<=offset )[0-9a-z]+",
                        scale,
                        rule["expr"],
                    )
        out = dest / path.name
        out.write_text(yaml.safe_dump(doc, sort_keys=False, width=1000))
        written.append(out)
    return written


# ---------------------------------------------------------------------------------------------
# HTTP
# ---------------------------------------------------------------------------------------------


def http_json(method: str, url: str, body: Any = None, timeout: float = 10) -> tuple[int, Any]:
    """(status, decoded JSON body or None). Connection errors are status 0."""
    data = None if body is None else json.dumps(body).encode()
    headers = {"Content-Type": "application/json"} if data is not None else {}
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            raw = response.read()
            status = response.status
    except urllib.error.HTTPError as exc:
        raw, status = exc.read(), exc.code
    except OSError:
        return 0, None
    try:
        return status, json.loads(raw) if raw else None
    except ValueError:
        return status, raw.decode(errors="replace")


def wait_for(
    predicate: Callable[[], Any],
    timeout: float = 30,
    interval: float = 0.2,
    describe: Callable[[], str] = lambda: "",
    process: subprocess.Popen | None = None,
) -> Any:
    """Polls `predicate` until it returns something truthy; returns that. Assertion and lookup
    errors count as "not yet". Fails early if `process` exits."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"process exited with {process.returncode}\n{describe()}")
        try:
            result = predicate()
        except (AssertionError, KeyError, IndexError, TypeError, ValueError) as exc:
            last_error, result = exc, None
        if result:
            return result
        time.sleep(interval)
    raise TimeoutError(f"condition not met in {timeout}s ({last_error!r})\n{describe()}")


def _stop(process: subprocess.Popen | None) -> None:
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(5)


# ---------------------------------------------------------------------------------------------
# Prometheus
# ---------------------------------------------------------------------------------------------


def scrape_config(job: str, target: str, interval: str = "1s", **extra: Any) -> dict:
    """One static scrape job, e.g. scrape_config("schoolnet", collector.url.split("//")[1])."""
    return {
        "job_name": job,
        "scrape_interval": interval,
        "scrape_timeout": interval,
        "static_configs": [{"targets": [target]}],
        **extra,
    }


@dataclass
class PrometheusProcess:
    """A real Prometheus. `rule_files` are used as given (shipped ones, or `shortened_rules()`)."""

    workdir: Path
    scrape_configs: list[dict] = field(default_factory=list)
    rule_files: list[Path] = field(default_factory=list)
    alertmanager_urls: list[str] = field(default_factory=list)
    scrape_interval: str = "1s"
    evaluation_interval: str = "1s"
    extra_args: list[str] = field(default_factory=list)
    port: int = field(default_factory=lambda: free_port(socket.SOCK_STREAM))
    process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.workdir / "prometheus.log"

    def config(self) -> dict:
        config: dict[str, Any] = {
            "global": {
                "scrape_interval": self.scrape_interval,
                "scrape_timeout": self.scrape_interval,
                "evaluation_interval": self.evaluation_interval,
            },
            "rule_files": [str(p) for p in self.rule_files],
            "scrape_configs": self.scrape_configs,
        }
        if self.alertmanager_urls:
            config["alerting"] = {
                "alertmanagers": [
                    {
                        "static_configs": [
                            {"targets": [urllib.parse.urlsplit(u).netloc]}
                            for u in self.alertmanager_urls
                        ]
                    }
                ]
            }
        return config

    def start(self, timeout: float = 30) -> PrometheusProcess:
        self.workdir.mkdir(parents=True, exist_ok=True)
        config_path = self.workdir / "prometheus.yml"
        config_path.write_text(yaml.safe_dump(self.config(), sort_keys=False))
        check = subprocess.run(
            ["promtool", "check", "config", str(config_path)], capture_output=True, text=True
        )
        if check.returncode != 0:
            raise RuntimeError(f"test Prometheus config invalid:\n{check.stdout}{check.stderr}")
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                [
                    PROMETHEUS_BIN,
                    f"--config.file={config_path}",
                    f"--storage.tsdb.path={self.workdir / 'data'}",
                    f"--web.listen-address=127.0.0.1:{self.port}",
                    "--web.enable-lifecycle",
                    *self.extra_args,
                ],
                stdout=subprocess.DEVNULL,
                stderr=log,
            )
        atexit.register(_stop, self.process)
        try:
            self.wait_for(lambda: http_json("GET", self.url + "/-/ready")[0] == 200, timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        _stop(self.process)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def wait_for(self, predicate: Callable[[], Any], timeout: float = 30) -> Any:
        return wait_for(
            predicate, timeout, describe=lambda: self.log()[-3000:], process=self.process
        )

    def api(self, path: str, **params: Any) -> Any:
        """GET /api/v1/<path>; returns `data`, raises PromQLError on an error answer."""
        query = urllib.parse.urlencode(params)
        status, body = http_json("GET", f"{self.url}/api/v1/{path}?{query}")
        if status != 200 or not isinstance(body, dict) or body.get("status") != "success":
            error = body.get("error") if isinstance(body, dict) else body
            raise PromQLError(f"{path} {params}: HTTP {status}: {error}")
        return body["data"]

    def query(self, expr: str, at: float | None = None) -> list[dict]:
        """Instant query: the result vector (or [scalar] as a one-element list)."""
        params: dict[str, Any] = {"query": expr}
        if at is not None:
            params["time"] = at
        data = self.api("query", **params)
        if data["resultType"] in ("scalar", "string"):
            return [{"metric": {}, "value": data["result"]}]
        return data["result"]

    def query_range(self, expr: str, start: float, end: float, step: float) -> list[dict]:
        return self.api("query_range", query=expr, start=start, end=end, step=step)["result"]

    def value(self, expr: str, **labels: str) -> float | None:
        """The value of the first series of `expr` whose labels include `labels`, or None."""
        for sample in self.query(expr):
            if all(sample["metric"].get(k) == v for k, v in labels.items()):
                return float(sample["value"][1])
        return None

    def alerts(self, state: str | None = None) -> list[dict]:
        """Prometheus' own view of alerts (/api/v1/alerts), optionally only `firing`/`pending`."""
        alerts = self.api("alerts")["alerts"]
        return [a for a in alerts if state is None or a["state"] == state]

    def targets_up(self) -> bool:
        active = self.api("targets")["activeTargets"]
        return bool(active) and all(t["health"] == "up" for t in active)

    def rule_health(self) -> list[tuple[str, str, str]]:
        """(rule name, health, last error) of every loaded rule."""
        rules = []
        for group in self.api("rules")["groups"]:
            for rule in group["rules"]:
                rules.append((rule["name"], rule["health"], rule.get("lastError", "")))
        return rules


# ---------------------------------------------------------------------------------------------
# Alertmanager
# ---------------------------------------------------------------------------------------------


class WebhookSink:
    """Receives Alertmanager webhook notifications on 127.0.0.1 and keeps them.

    `notifications` is a list of (path, payload); the path is /<receiver name> when the config
    comes from `alertmanager_test_config()`. Every request is kept and answered with `status`
    (200; set it to 500 to play a receiver that fails)."""

    def __init__(self, status: int = 200) -> None:
        self.notifications: list[tuple[str, dict]] = []
        self.status = status
        self._lock = threading.Lock()
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                payload = json.loads(self.rfile.read(length) or b"{}")
                with sink._lock:
                    sink.notifications.append((self.path, payload))
                self.send_response(sink.status)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def start(self) -> WebhookSink:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def received(self, receiver: str | None = None) -> list[dict]:
        with self._lock:
            return [p for path, p in self.notifications if receiver in (None, path.strip("/"))]

    def __enter__(self) -> WebhookSink:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


_TIMINGS = ("group_wait", "group_interval", "repeat_interval")


def alertmanager_test_config(
    sink_url: str | None = None,
    timings: dict[str, str] | None = None,
    source: Path = ALERTMANAGER_CONFIG,
) -> dict:
    """The shipped alertmanager.yml for a test: every receiver (but "null") sends to
    `<sink_url>/<receiver name>` as a webhook (no integration at all when sink_url is None), no
    global SMTP settings, no templates. `timings` (e.g. {"group_wait": "1s"}) replaces those keys
    in the root route and every route that sets them. The route tree (matchers, grouping,
    continue) and inhibit_rules are exactly the shipped ones."""
    config = yaml.safe_load(source.read_text())
    config = copy.deepcopy(config)
    config["global"] = {"resolve_timeout": config.get("global", {}).get("resolve_timeout", "5m")}
    config.pop("templates", None)
    receivers = []
    for receiver in config["receivers"]:
        name = receiver["name"]
        replaced: dict[str, Any] = {"name": name}
        if sink_url is not None and name != "null":
            replaced["webhook_configs"] = [
                {"url": f"{sink_url}/{name}", "send_resolved": True, "max_alerts": 0}
            ]
        receivers.append(replaced)
    config["receivers"] = receivers
    if timings:

        def retime(route: dict, root: bool) -> None:
            for key, value in timings.items():
                if root or key in route:
                    route[key] = value
            for child in route.get("routes", []):
                retime(child, False)

        retime(config["route"], True)
    return config


@dataclass
class AlertmanagerProcess:
    """A real Alertmanager (clustering off) with the given config (a dict or a file)."""

    workdir: Path
    config: dict | Path = ALERTMANAGER_CONFIG
    port: int = field(default_factory=lambda: free_port(socket.SOCK_STREAM))
    extra_args: list[str] = field(default_factory=list)
    process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.workdir / "alertmanager.log"

    def start(self, timeout: float = 30) -> AlertmanagerProcess:
        self.workdir.mkdir(parents=True, exist_ok=True)
        if isinstance(self.config, Path):
            config_path = self.workdir / "alertmanager.yml"
            shutil.copyfile(self.config, config_path)
            templates = self.config.parent / "templates"
            if templates.is_dir():
                shutil.copytree(templates, self.workdir / "templates", dirs_exist_ok=True)
        else:
            config_path = self.workdir / "alertmanager.yml"
            config_path.write_text(yaml.safe_dump(self.config, sort_keys=False))
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                [
                    ALERTMANAGER_BIN,
                    f"--config.file={config_path}",
                    f"--storage.path={self.workdir / 'data'}",
                    f"--web.listen-address=127.0.0.1:{self.port}",
                    "--cluster.listen-address=",
                    *self.extra_args,
                ],
                stdout=subprocess.DEVNULL,
                stderr=log,
            )
        atexit.register(_stop, self.process)
        try:
            self.wait_for(lambda: http_json("GET", self.url + "/-/ready")[0] == 200, timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        _stop(self.process)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def wait_for(self, predicate: Callable[[], Any], timeout: float = 30) -> Any:
        return wait_for(
            predicate, timeout, describe=lambda: self.log()[-3000:], process=self.process
        )

    def post_alerts(self, alerts: list[dict]) -> None:
        """POST /api/v2/alerts. Each alert: {"labels": {...}, "annotations": {...}, ...}."""
        status, body = http_json("POST", self.url + "/api/v2/alerts", alerts)
        if status != 200:
            raise AssertionError(f"Alertmanager refused alerts: HTTP {status}: {body}")

    def alerts(self, **labels: str) -> list[dict]:
        """GET /api/v2/alerts (active, silenced and inhibited), filtered by exact labels."""
        query = urllib.parse.urlencode(
            [("filter", f'{k}="{v}"') for k, v in labels.items()], doseq=True
        )
        status, body = http_json("GET", f"{self.url}/api/v2/alerts?{query}")
        if status != 200 or not isinstance(body, list):
            raise AssertionError(f"GET /api/v2/alerts: HTTP {status}: {body}")
        return body

    def alert(self, **labels: str) -> dict:
        """The single alert carrying `labels`."""
        found = self.alerts(**labels)
        if len(found) != 1:
            raise AssertionError(f"{len(found)} alerts match {labels}")
        return found[0]


# ---------------------------------------------------------------------------------------------
# metric names
# ---------------------------------------------------------------------------------------------


def documented_metrics(path: Path = METRICS_DOC) -> set[str]:
    """Every family docs/metrics.md lists (backticked names in its tables), with the sample
    names Prometheus derives from summaries (_count, _sum)."""
    names = set()
    for line in path.read_text().splitlines():
        if not line.startswith("|"):
            continue
        cells = line.split("|")
        found = re.findall(r"`(schoolnet_[a-z0-9_]+)`", cells[1])
        names.update(found)
        if len(cells) > 2 and cells[2].strip() == "summary":
            names.update(n + suffix for n in found for suffix in ("_count", "_sum"))
    return names


def recorded_metrics(rules_dir: Path = RULES_DIR) -> set[str]:
    names = set()
    for path in rules_dir.glob("*.yml"):
        for group in yaml.safe_load(path.read_text())["groups"]:
            names.update(r["record"] for r in group["rules"] if "record" in r)
    return names


_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_NAME = re.compile(r"(?<![\w:.$])([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(?=[{\[)\s]|$)")


def metric_names(expr: str) -> set[str]:
    """The names of our families an expression selects: schoolnet_* and the recording rules'
    schoolnet:*/school:* (other identifiers are functions, keywords or Prometheus' own)."""
    without_strings = _STRING.sub('""', expr)
    without_matchers = re.sub(r"\{[^}]*\}", "{}", without_strings)
    return {
        name
        for name in _NAME.findall(without_matchers)
        if name.startswith(("schoolnet_", "schoolnet:", "school:"))
    }
