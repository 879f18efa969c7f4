"""The YAML recipes in docs/*.md work as written, so that one cannot drift from the stack again.

Every ```yaml block of docs/ is parsed. A compose override (it has `services:`) is merged into
docker-compose.yml the way docker compose merges it (`extends`, `!reset`, `!override`), and the
result must validate against compose-spec's schema, give every collector a command line
`monitor run` accepts after the image's entrypoint, and be something the container runtime starts
(no sysctls or published ports on the host network, no port published twice, mounts that exist).
A Prometheus fragment is merged into the shipped prometheus.yml and must pass `promtool check
config`, and a scrape job must reach the collectors its compose recipe defines.
"""

from __future__ import annotations

import copy
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

from tests.compose import (
    REPO,
    compose,
    entrypoint,
    interpolate,
    interpolated,
    load,
    merge,
    schema_errors,
    unknown_run_args,
)
from tests.prom import PROMETHEUS_CONFIG

DOCS = REPO / "docs"


def yaml_blocks(path: Path) -> list[str]:
    return [
        textwrap.dedent(block)
        for block in re.findall(r"^```yaml\n(.*?)^```$", path.read_text(), re.M | re.S)
    ]


def recipes(kind: re.Pattern[str]) -> list[tuple[str, dict]]:
    """(doc#index, parsed block) of every yaml block whose top-level keys match `kind`."""
    found = []
    for path in sorted(DOCS.glob("*.md")):
        for index, block in enumerate(yaml_blocks(path)):
            if kind.search(block):
                found.append((f"{path.name}#{index}", load(block)))
    return found


def compose_recipes() -> list[tuple[str, dict]]:
    return recipes(re.compile(r"^services:", re.M))


def prometheus_fragments() -> list[tuple[str, dict]]:
    return recipes(re.compile(r"^(scrape_configs|relabel_configs|remote_write|global):", re.M))


def resolve_extends(services: dict, base: dict) -> dict:
    """`extends: {file: docker-compose.yml, service: NAME}`: the base service, then the local
    definition merged over it."""
    resolved = {}
    for name, service in services.items():
        extends = service.get("extends") if isinstance(service, dict) else None
        if extends:
            assert extends["file"] == "docker-compose.yml", name
            local = {k: v for k, v in service.items() if k != "extends"}
            service = merge(copy.deepcopy(base["services"][extends["service"]]), local)
        resolved[name] = service
    return resolved


def merged(override: dict) -> dict:
    base = compose()
    override = dict(override, services=resolve_extends(override["services"], base))
    return merge(base, override)


def host_ports(config: dict) -> list[tuple[str, str]]:
    ports = []
    for service in config["services"].values():
        for spec in service.get("ports", []):
            address, host_port, _ = interpolate(spec).split(":")
            ports.append((address, host_port))
    return ports


RECIPES = compose_recipes()


def test_the_docs_have_the_recipes_issue_10_fixed():
    names = [name for name, _ in RECIPES]
    assert any(n.startswith("scaling.md") for n in names), names
    assert any(n.startswith("deploy.md") for n in names), names


@pytest.mark.parametrize("name, override", RECIPES, ids=[n for n, _ in RECIPES])
def test_compose_recipe_merges_into_a_stack_compose_accepts(name, override):
    config = interpolated(merged(override), {"GRAFANA_ADMIN_PASSWORD": "x"})
    assert schema_errors(config) == [], name
    services = config["services"]
    for service_name, service in services.items():
        if "build" in service:  # a collector: the image's entrypoint, then the command
            args = entrypoint() + service.get("command", [])
            assert args[:2] == ["monitor", "run"]
            assert unknown_run_args(args[2:]) == [], (name, service_name, args)
        if service.get("network_mode") == "host":
            # the runtime refuses both with the host's network namespace
            assert "sysctls" not in service, (name, service_name)
            assert "ports" not in service, (name, service_name)
        for dependency in service.get("depends_on", []):
            assert dependency in services, (name, service_name, dependency)
        for volume in service.get("volumes", []):
            host = volume.split(":")[0]
            if host.startswith((".", "/")):
                assert (REPO / host).exists(), (name, service_name, volume)
    ports = host_ports(config)
    assert len(ports) == len(set(ports)), f"{name}: a host port published twice: {ports}"


def test_the_validator_and_the_checks_catch_the_old_recipes():
    """The two recipes issue 10 found broken, as they were, fail here."""
    old_scaling = {
        "services": {
            "collector-1": {
                "extends": {"file": "docker-compose.yml", "service": "collector"},
                "command": ["run", "--config", "/etc/schoolnet/targets.yaml", "--shard", "1/2"],
            }
        }
    }
    service = merged(old_scaling)["services"]["collector-1"]
    assert "run" in unknown_run_args((entrypoint() + service["command"])[2:])
    old_host_network = {"services": {"collector": {"network_mode": "host"}}}
    service = merged(old_host_network)["services"]["collector"]
    assert "sysctls" in service and "ports" in service  # what the runtime refuses


def test_shard_recipe_covers_every_shard_once_and_prometheus_scrapes_them_all():
    [(_, recipe)] = [(n, r) for n, r in RECIPES if n.startswith("scaling.md")]
    services = interpolated(merged(recipe), {"GRAFANA_ADMIN_PASSWORD": "x"})["services"]
    collectors = {n: s for n, s in services.items() if "build" in s}
    shards = []
    for service in collectors.values():
        command = service["command"]
        shards.append(command[command.index("--shard") + 1])
    count = int(shards[0].split("/")[1])
    assert sorted(shards) == [f"{k}/{count}" for k in range(count)]
    [(_, scrape)] = [
        (n, f)
        for n, f in prometheus_fragments()
        if n.startswith("scaling.md") and "scrape_configs" in f
    ]
    # the collector job, and the health job CollectorScrapeFailing needs beside it
    jobs = scrape["scrape_configs"]
    assert sorted(job["job_name"] for job in jobs) == ["schoolnet", "schoolnet-health"]
    listen = entrypoint()[entrypoint().index("--listen") + 1].rsplit(":", 1)[1]
    for job in jobs:
        targets = job["static_configs"][0]["targets"]
        assert sorted(targets) == sorted(f"{n}:{listen}" for n in collectors)
        # the same TLS and basic auth as the shipped job
        [shipped] = [
            j
            for j in yaml.safe_load(PROMETHEUS_CONFIG.read_text())["scrape_configs"]
            if j["job_name"] == job["job_name"]
        ]
        keys = ("scheme", "basic_auth", "tls_config", "scrape_interval", "scrape_timeout")
        for key in (*keys, "metrics_path"):
            assert job.get(key) == shipped.get(key), (job["job_name"], key)


def test_host_network_recipe_reaches_the_collector_through_the_host_gateway():
    [(_, recipe)] = [(n, r) for n, r in RECIPES if n.startswith("deploy.md")]
    services = merged(recipe)["services"]
    assert services["collector"]["network_mode"] == "host"
    assert "host.docker.internal:host-gateway" in services["prometheus"]["extra_hosts"]
    listen = entrypoint()[entrypoint().index("--listen") + 1]
    assert listen.startswith("0.0.0.0:")  # reachable from the bridge through the gateway
    assert f"`host.docker.internal:{listen.rsplit(':', 1)[1]}`" in (DOCS / "deploy.md").read_text()


@pytest.mark.parametrize(
    "name, fragment", prometheus_fragments(), ids=[n for n, _ in prometheus_fragments()]
)
def test_prometheus_fragment_passes_promtool_in_the_shipped_config(name, fragment, tmp_path):
    config = yaml.safe_load(PROMETHEUS_CONFIG.read_text())
    if "relabel_configs" in fragment:  # a fragment of a job: into the schoolnet job
        [job] = [j for j in config["scrape_configs"] if j["job_name"] == "schoolnet"]
        job.update(fragment)
    else:
        config = merge(config, fragment)
        jobs = {}
        for job in config["scrape_configs"]:
            jobs[job["job_name"]] = job  # a recipe's job replaces the shipped one of its name
        config["scrape_configs"] = list(jobs.values())
    config["rule_files"] = [str(PROMETHEUS_CONFIG.parent / r) for r in config["rule_files"]]
    path = tmp_path / "prometheus.yml"
    path.write_text(yaml.safe_dump(config))
    result = subprocess.run(
        ["promtool", "check", "config", "--syntax-only", str(path)], capture_output=True, text=True
    )
    assert result.returncode == 0, name + result.stdout + result.stderr


def docs_sh_block(heading: str) -> str:
    text = (DOCS / "deploy.md").read_text()
    section = text[text.index(heading) :]
    return re.search(r"^```sh\n(.*?)^```$", section, re.M | re.S)[1]


def test_the_start_commands_make_every_file_the_stack_mounts(tmp_path):
    """docs/deploy.md's "Start" and TLS commands, run in a copy of the checkout with the
    configuration directory in a temporary place, leave nothing the compose file needs missing."""
    checkout = tmp_path / "checkout"
    shutil.copytree(REPO / "deploy", checkout / "deploy")
    shutil.copytree(REPO / "dashboards", checkout / "dashboards")
    (checkout / "monitor" / "examples").mkdir(parents=True)
    shutil.copy(REPO / "monitor/examples/targets.yaml", checkout / "monitor/examples")
    shutil.copy(REPO / "docker-compose.yml", checkout)
    config_dir = tmp_path / "config"
    start = docs_sh_block("## Start (docker compose)")
    assert "export SCHOOLNET_CONFIG_DIR=/etc/schoolnet-monitor" in start
    script = start.replace("/etc/schoolnet-monitor", str(config_dir))
    script += docs_sh_block("## TLS and basic auth between Prometheus and the collector")
    result = subprocess.run(
        ["sh", "-e", "-c", script], cwd=checkout, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    environ = {"SCHOOLNET_CONFIG_DIR": str(config_dir), "GRAFANA_ADMIN_PASSWORD": "x"}
    config = interpolated(compose(), environ)
    for name, service in config["services"].items():
        for volume in service.get("volumes", []):
            host = volume.split(":")[0]
            if host.startswith((".", "/")):
                assert (checkout / host).exists(), (name, volume)
    env_file = checkout / config["services"]["collector"]["env_file"]
    assert env_file.stat().st_mode & 0o077 == 0  # the collector's secrets: root only
    assert (checkout / ".env").stat().st_mode & 0o077 == 0
    # the targets.yaml it starts from is the example, which checks with the secrets filled in
    names = re.findall(r"^([A-Z][A-Z0-9_]*)=", env_file.read_text(), re.M)
    checked = subprocess.run(
        [sys.executable, "-m", "monitor", "check", str(config_dir / "targets.yaml")],
        env={**os.environ, **{n: "filled-in-secret" for n in names}},
        capture_output=True,
        text=True,
    )
    assert checked.returncode == 0, checked.stderr
