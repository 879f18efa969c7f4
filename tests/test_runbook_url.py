"""runbook_url as a real Prometheus renders it: the deployment's base URL reaches the rules through
prometheus.yml's external label (filled from the environment by --enable-feature=
expand-external-labels, as docker-compose.yml runs it); without one, the collector's own page."""

from __future__ import annotations

import socket
from dataclasses import dataclass

import pytest
import yaml

from tests.agents import free_port
from tests.compose import compose
from tests.prom import PROMETHEUS_CONFIG, PrometheusProcess, scrape_config, shortened_rules


@dataclass
class ShippedGlobalPrometheus(PrometheusProcess):
    """A test Prometheus with the shipped prometheus.yml's external labels."""

    def config(self) -> dict:
        config = super().config()
        shipped = yaml.safe_load(PROMETHEUS_CONFIG.read_text())["global"]
        config["global"]["external_labels"] = shipped["external_labels"]
        return config


def feature_flags() -> list[str]:
    command = compose()["services"]["prometheus"]["command"]
    return [arg for arg in command if arg.startswith("--enable-feature=")]


@pytest.mark.parametrize(
    "base, expected",
    [
        ("https://monitor.kien.example/runbooks", "https://monitor.kien.example/runbooks"),
        (None, "http://localhost:9430/runbooks"),  # unset: the collector's own page
    ],
)
def test_collector_down_links_to_the_deployments_runbooks(base, expected, tmp_path, monkeypatch):
    if base is None:
        monkeypatch.delenv("SCHOOLNET_RUNBOOK_BASE_URL", raising=False)
    else:
        monkeypatch.setenv("SCHOOLNET_RUNBOOK_BASE_URL", base)
    closed = f"127.0.0.1:{free_port(socket.SOCK_STREAM)}"  # nothing listens: CollectorDown
    prometheus = ShippedGlobalPrometheus(
        tmp_path / "prometheus",
        scrape_configs=[scrape_config("schoolnet", closed)],
        rule_files=shortened_rules(tmp_path / "rules", factor=120),
        extra_args=feature_flags(),
    ).start()
    try:
        alerts = prometheus.wait_for(
            lambda: [
                a
                for a in prometheus.alerts("firing")
                if a["labels"]["alertname"] == "CollectorDown"
            ],
            timeout=30,
        )
    finally:
        prometheus.stop()
    assert {a["annotations"]["runbook_url"] for a in alerts} == {f"{expected}#collectordown"}
