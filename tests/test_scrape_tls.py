"""TLS and basic auth between Prometheus and the collector, made exactly as docs/deploy.md says.

The docs' commands (openssl, htpasswd) run in a temporary configuration directory. The web config
they write is exporter-toolkit's format (promtool checks it as Prometheus would read it); the real
collector (`monitor run --web.config.file`) serves with it, and a real Prometheus scrapes it with
the shipped `schoolnet` job's `scheme`, `basic_auth` and `tls_config` (only the secrets' directory
moved to the temporary one). A wrong password and an untrusted certificate must fail. The compose
health check of the collector runs against the same endpoint.
"""

from __future__ import annotations

import copy
import os
import re
import socket
import ssl
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
import yaml

from tests.agents import free_port
from tests.compose import compose
from tests.prom import (
    PROMETHEUS_CONFIG,
    REPO,
    PrometheusProcess,
    _stop,
    wait_for,
)

DEPLOY_DOC = REPO / "docs" / "deploy.md"


def docs_block(heading: str) -> str:
    """The first ```sh block under a heading of docs/deploy.md."""
    text = DEPLOY_DOC.read_text()
    section = text[text.index(heading) :]
    return re.search(r"^```sh\n(.*?)^```$", section, re.M | re.S)[1]


@pytest.fixture(scope="module")
def config_dir(tmp_path_factory) -> Path:
    directory = tmp_path_factory.mktemp("config")
    script = docs_block("## TLS and basic auth between Prometheus and the collector")
    result = subprocess.run(
        ["sh", "-e", "-c", script],
        env=dict(os.environ, SCHOOLNET_CONFIG_DIR=str(directory)),
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    return directory


@pytest.fixture(scope="module")
def collector_tls(config_dir, tmp_path_factory):
    """The collector serving the docs' web-config.yml (paths made local)."""
    tls = config_dir / "deploy" / "collector" / "tls"
    web_config = tmp_path_factory.mktemp("standin") / "web-config.yml"
    web_config.write_text(
        (tls / "web-config.yml").read_text().replace("/etc/schoolnet/tls", str(tls))
    )
    check = subprocess.run(
        ["promtool", "check", "web-config", str(web_config)], capture_output=True, text=True
    )
    assert check.returncode == 0, check.stdout + check.stderr
    workdir = web_config.parent
    (workdir / "targets.yaml").write_text(
        "members:\n  - id: coop\n    schools:\n      - id: school-a\n        targets:\n"
        "          - {id: t1, role: router, address: 127.0.0.21, snmp: false}\n"
    )
    port = free_port(socket.SOCK_STREAM)
    with open(workdir / "log", "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "monitor", "run", "--config", str(workdir / "targets.yaml")]
            + ["--listen", f"127.0.0.1:{port}", "--web.config.file", str(web_config)],
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
    password = (config_dir / "deploy/prometheus/secrets/collector_password").read_text()
    context = ssl.create_default_context(cafile=str(tls / "collector.crt"))

    def ready() -> bool:
        request = urllib.request.Request(f"https://127.0.0.1:{port}/-/healthy")
        request.add_header("Authorization", basic(password))
        try:
            return urllib.request.urlopen(request, timeout=2, context=context).status == 200
        except OSError:  # not listening yet
            return False

    try:
        wait_for(ready, 30, process=process, describe=lambda: (workdir / "log").read_text())
        yield port
    finally:
        _stop(process)


def basic(password: str, user: str = "prometheus") -> str:
    import base64

    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def shipped_job() -> dict:
    [job] = [
        j
        for j in yaml.safe_load(PROMETHEUS_CONFIG.read_text())["scrape_configs"]
        if j["job_name"] == "schoolnet"
    ]
    return job


def test_docs_commands_make_what_the_compose_stack_mounts(config_dir):
    tls = config_dir / "deploy" / "collector" / "tls"
    assert sorted(p.name for p in tls.iterdir()) == [
        "collector.crt",
        "collector.key",
        "web-config.yml",
    ]
    secrets = config_dir / "deploy" / "prometheus" / "secrets"
    job = shipped_job()
    needed = {
        Path(job["basic_auth"]["password_file"]).name,
        Path(job["tls_config"]["ca_file"]).name,
    }
    assert {p.name for p in secrets.iterdir()} == needed
    # readable by the container's user only (collector 10001, Prometheus nobody)
    for path in [*tls.iterdir(), *secrets.iterdir()]:
        assert path.stat().st_mode & 0o077 == 0, path
    assert {p.stat().st_uid for p in tls.iterdir()} == {10001}
    assert {p.stat().st_uid for p in secrets.iterdir()} == {65534}
    # the web config names the files where the collector container has them
    web_config = yaml.safe_load((tls / "web-config.yml").read_text())
    args = compose()["services"]["collector"]["command"]
    inside = Path(args[args.index("--web.config.file") + 1]).parent
    for key in ("cert_file", "key_file"):
        path = Path(web_config["tls_server_config"][key])
        assert path.parent == inside and (tls / path.name).exists(), key
    assert re.fullmatch(r"\$2[aby]\$\d\d\$.{53}", web_config["basic_auth_users"]["prometheus"])
    password = (secrets / "collector_password").read_text()
    assert len(password) >= 32 and "\n" not in password


def test_prometheus_scrapes_with_the_shipped_job_and_nothing_else_gets_in(
    config_dir, collector_tls, tmp_path
):
    secrets = config_dir / "deploy" / "prometheus" / "secrets"

    def job(name: str, **changes) -> dict:
        config = copy.deepcopy(shipped_job())
        for section in ("basic_auth", "tls_config"):
            for key, value in config[section].items():
                if key.endswith("_file"):
                    config[section][key] = str(secrets / Path(value).name)
        config.update(job_name=name, scrape_interval="1s", scrape_timeout="1s")
        config["static_configs"] = [{"targets": [f"127.0.0.1:{collector_tls}"]}]
        for dotted, value in changes.items():
            section, key = dotted.split("__")
            if value is None:
                config[section].pop(key)
            else:
                config[section][key] = value
        return config

    wrong = tmp_path / "wrong_password"
    wrong.write_text("not-the-password")
    jobs = [
        job("schoolnet"),
        job("wrong-password", basic_auth__password_file=str(wrong)),
        job("untrusted", tls_config__ca_file=None),
    ]
    prometheus = PrometheusProcess(tmp_path / "prometheus", scrape_configs=jobs).start()
    try:

        def health() -> dict[str, str]:
            active = prometheus.api("targets")["activeTargets"]
            found = {t["labels"]["job"]: t["health"] for t in active}
            return found if "unknown" not in found.values() and len(found) == 3 else {}

        states = prometheus.wait_for(health, timeout=30)
        errors = {
            t["labels"]["job"]: t["lastError"] for t in prometheus.api("targets")["activeTargets"]
        }
    finally:
        prometheus.stop()
    assert states == {"schoolnet": "up", "wrong-password": "down", "untrusted": "down"}, errors
    assert "401" in errors["wrong-password"]
    assert "certificate" in errors["untrusted"]


def test_the_collector_health_check_accepts_the_tls_endpoint_without_a_password(
    config_dir, collector_tls
):
    script = compose()["services"]["collector"]["healthcheck"]["test"][-1]
    tls = config_dir / "deploy" / "collector" / "tls"
    local = script.replace("/etc/schoolnet/tls", str(tls))
    answering = local.replace("127.0.0.1:9430", f"127.0.0.1:{collector_tls}")
    result = subprocess.run([sys.executable, "-c", answering], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr  # 401: serving, just not to us
    closed = local.replace("127.0.0.1:9430", f"127.0.0.1:{free_port(socket.SOCK_STREAM)}")
    result = subprocess.run([sys.executable, "-c", closed], capture_output=True, text=True)
    assert result.returncode != 0
