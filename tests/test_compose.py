"""docker-compose.yml and the Dockerfile, checked statically (no container engine here): every
mounted path exists, every config mounted is the one the other tests validate, the image's
entrypoint uses flags `monitor run` accepts, health checks use tools the images have, ports agree
with prometheus.yml and the Grafana datasource."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.prom import ALERTMANAGER_CONFIG, PROMETHEUS_CONFIG, REPO

COMPOSE = REPO / "docker-compose.yml"
DOCKERFILE = REPO / "Dockerfile"
DOCKERIGNORE = REPO / ".dockerignore"
ENV_EXAMPLE = REPO / "deploy" / "env.example"
DEPLOY_DOC = REPO / "docs" / "deploy.md"
PYPROJECT = REPO / "pyproject.toml"

# What each image offers for a health check, as far as is known without pulling it:
# python:*-slim is Debian without curl or wget; the prom/* images are busybox (wget, no curl);
# grafana/grafana-oss (Alpine) has busybox wget.
IMAGE_TOOLS = {
    "python": {"python", "python3", "monitor"},
    "prom/prometheus": {"wget", "promtool", "prometheus"},
    "prom/alertmanager": {"wget", "amtool", "alertmanager"},
    "grafana/grafana-oss": {"wget", "curl", "grafana"},
}
SERVICES = {"collector", "prometheus", "alertmanager", "grafana"}


def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def interpolate(text: str) -> str:
    """Compose's ${VAR:-default} with the defaults (the shipped behaviour)."""
    return re.sub(r"\$\{(\w+)(?::-([^}]*))?\}", lambda m: m.group(2) or "", text)


def bind_mounts(service: str) -> list[tuple[Path, str, bool]]:
    """(host path, container path, read-only) of a service's bind mounts."""
    mounts = []
    for volume in compose()["services"][service].get("volumes", []):
        host, container, *options = interpolate(volume).split(":")
        if host.startswith((".", "/")):
            mounts.append(((REPO / host).resolve(), container, "ro" in options))
    return mounts


def host_path(service: str, container_path: str) -> Path:
    """Where a path inside a service's container comes from on the host (longest mount wins)."""
    best = None
    for host, container, _ in bind_mounts(service):
        inside = container_path == container or container_path.startswith(
            container.rstrip("/") + "/"
        )
        if inside and (best is None or len(container) > len(best[1])):
            best = (host, container)
    assert best is not None, f"{service}: nothing mounted at {container_path}"
    host, container = best
    return (host / os.path.relpath(container_path, container)).resolve()


def flag(args: list[str], name: str) -> str:
    for arg in args:
        if arg.startswith(f"--{name}="):
            return interpolate(arg.split("=", 1)[1])
    raise AssertionError(f"no --{name}")


def dockerfile_instructions() -> list[tuple[str, str]]:
    text = DOCKERFILE.read_text().replace("\\\n", " ")
    return [
        (line.split(None, 1)[0].upper(), line.split(None, 1)[1] if " " in line else "")
        for line in (raw.strip() for raw in text.splitlines())
        if line and not line.startswith("#")
    ]


def entrypoint() -> list[str]:
    [value] = [v for k, v in dockerfile_instructions() if k == "ENTRYPOINT"]
    return json.loads(value)


def test_services_volumes_and_restart_policy():
    config = compose()
    assert set(config["services"]) == SERVICES
    assert set(config["volumes"]) == {"prometheus-data", "alertmanager-data", "grafana-data"}
    for name, service in config["services"].items():
        assert service.get("restart") == "unless-stopped", name
        assert "healthcheck" in service, name
    named = {
        v.split(":")[0]
        for s in config["services"].values()
        for v in s.get("volumes", [])
        if not v.startswith((".", "/", "$"))
    }
    assert named == set(config["volumes"])  # every service with state keeps it in a volume


def test_every_mounted_host_path_exists():
    count = 0
    for service in SERVICES:
        for host, container, read_only in bind_mounts(service):
            assert host.exists(), f"{service}: {host} does not exist"
            assert read_only, f"{service}: {container} should be mounted read-only"
            count += 1
    assert count >= 6


def test_mounted_configs_are_the_ones_the_tests_validate():
    services = compose()["services"]
    prometheus = host_path("prometheus", flag(services["prometheus"]["command"], "config.file"))
    assert prometheus == PROMETHEUS_CONFIG.resolve()  # test_rules.py: promtool check config
    alertmanager = host_path(
        "alertmanager", flag(services["alertmanager"]["command"], "config.file")
    )
    assert alertmanager == ALERTMANAGER_CONFIG.resolve()  # test_alertmanager.py: amtool, live
    args = entrypoint()
    targets = host_path("collector", args[args.index("--config") + 1])
    assert targets == (REPO / "targets.yaml").resolve()
    assert host_path("grafana", "/etc/grafana/provisioning") == (
        REPO / "deploy" / "grafana" / "provisioning"
    )  # test_dashboards.py
    # the Alertmanager secrets every *_file field names are under the mounted secrets directory
    secrets = host_path("alertmanager", "/etc/alertmanager/secrets")
    assert secrets == (REPO / "deploy" / "alertmanager" / "secrets").resolve()
    am = ALERTMANAGER_CONFIG.read_text()
    files = re.findall(r"_file: (\S+)", am)
    assert files and all(f.startswith("/etc/alertmanager/secrets/") for f in files)
    readme = (secrets / "README.md").read_text()
    for name in (Path(f).name for f in files):
        assert f"`{name}`" in readme, f"secrets/README.md does not explain {name}"
        assert f"`{name}`" in DEPLOY_DOC.read_text(), f"docs/deploy.md does not explain {name}"
    ignored = (secrets / ".gitignore").read_text().split()
    assert ignored[ignored.index("*") :] == ["*", "!.gitignore", "!README.md"]


def test_the_shipped_targets_yaml_checks_with_the_env_example(tmp_path):
    """`monitor check` passes with exactly the variables deploy/env.example names."""
    names = re.findall(r"^#?\s*([A-Z][A-Z0-9_]*)=", ENV_EXAMPLE.read_text(), re.M)
    env = {k: v for k, v in os.environ.items() if not k.startswith("KIEN_")}
    env.update({name: "placeholder-value" for name in names})
    result = subprocess.run(
        [sys.executable, "-m", "monitor", "check", str(REPO / "targets.yaml")],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    used = set(re.findall(r"\$\{(\w+)\}", (REPO / "targets.yaml").read_text())) - {"NAME"}
    assert used and used <= set(names)
    compose_required = set(re.findall(r"\$\{(\w+):\?", COMPOSE.read_text()))
    assert compose_required <= set(names)
    compose_optional = set(re.findall(r"\$\{(\w+):-", COMPOSE.read_text()))
    assert compose_optional <= set(names), "document every optional variable in env.example"


def test_entrypoint_uses_flags_monitor_run_accepts():
    args = entrypoint()
    assert args[:2] == ["monitor", "run"]
    help_text = subprocess.run(
        [sys.executable, "-m", "monitor", "run", "--help"], capture_output=True, text=True
    ).stdout
    flags = [a for a in args[2:] if a.startswith("--")]
    assert flags == ["--config", "--listen"]
    for name in flags:
        assert re.search(rf"\s{name}\b", help_text), f"`monitor run` has no {name}"
    assert args[args.index("--config") + 1] == "/etc/schoolnet/targets.yaml"
    assert args[args.index("--listen") + 1] == "0.0.0.0:9430"
    scripts = re.search(r"\[project\.scripts\]\n([^\[]*)", PYPROJECT.read_text())[1]
    assert re.search(r'^monitor = "monitor\.cli:main"$', scripts, re.M)


def test_dockerfile_base_user_and_icmp_capability():
    instructions = dockerfile_instructions()
    assert instructions[0] == ("FROM", "python:3.11-slim")
    runs = " ".join(v for k, v in instructions if k == "RUN")
    assert "pip install ." in runs
    assert re.search(r"setcap cap_net_raw\+ep", runs)
    [user] = [v for k, v in instructions if k == "USER"]
    assert not user.startswith(("0", "root"))
    assert ("EXPOSE", "9430") in instructions
    collector = compose()["services"]["collector"]
    assert collector["cap_add"] == ["NET_RAW"]
    assert collector["cap_drop"] == ["ALL"]
    # no-new-privileges would switch the interpreter's file capability off: no ICMP
    assert not any("no-new-privileges" in o for o in collector.get("security_opt", []))
    assert collector["sysctls"]["net.ipv4.ping_group_range"] == "0 2147483647"
    assert collector["env_file"] == ".env"


def test_the_build_context_has_what_pip_install_needs():
    """`COPY` sources exist and .dockerignore lets them (and what pyproject refers to) through."""
    # (tomllib is Python 3.11+; the tests run on 3.10 too)
    readme = re.search(r'^readme = "([^"]+)"$', PYPROJECT.read_text(), re.M)[1]
    license_file = re.search(r'^license = \{file = "([^"]+)"\}$', PYPROJECT.read_text(), re.M)
    needed = {"pyproject.toml", "monitor", readme}
    if license_file:
        needed.add(license_file[1])
    copied = set()
    for kind, value in dockerfile_instructions():
        if kind == "COPY":
            *sources, _ = value.split()
            copied.update(sources)
    assert needed <= copied
    for source in copied:
        assert (REPO / source).exists(), f"COPY {source}: not in the repository"
    patterns = [line for line in DOCKERIGNORE.read_text().splitlines() if line and line[0] != "#"]
    assert patterns[0] == "*"
    for source in copied:
        assert f"!{source}" in patterns or f"!{source}/" in patterns, source
    for secret in (".env", "deploy", "tests", ".git"):
        assert f"!{secret}" not in patterns


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_healthcheck_uses_what_the_image_has(service):
    config = compose()["services"][service]
    image = config.get("image", "")
    if service == "collector":
        base = dockerfile_instructions()[0][1]
        assert base.startswith("python:") and base.endswith("-slim")
        tools = IMAGE_TOOLS["python"]
    else:
        repository, _, tag = image.partition(":")
        assert tag and tag != "latest", f"{service}: pin the image version"
        tools = IMAGE_TOOLS[repository]
    test = config["healthcheck"]["test"]
    assert test[0] == "CMD"
    assert test[1] in tools, f"{service}: {test[1]} is not in {image or 'the collector image'}"
    assert "curl" not in " ".join(test) or "curl" in tools
    path = {"grafana": "/api/health"}.get(service, "/-/healthy")
    port = {"collector": 9430, "prometheus": 9090, "alertmanager": 9093, "grafana": 3000}[service]
    assert f"http://127.0.0.1:{port}{path}" in " ".join(test)


def test_images_are_the_versions_the_tests_run():
    services = compose()["services"]
    prometheus = subprocess.run(["prometheus", "--version"], capture_output=True, text=True)
    version = re.search(r"version (\d+\.\d+\.\d+)", prometheus.stdout + prometheus.stderr)[1]
    assert services["prometheus"]["image"] == f"prom/prometheus:v{version}"
    alertmanager = subprocess.run(
        ["prometheus-alertmanager", "--version"], capture_output=True, text=True
    )
    version = re.search(r"version (\d+\.\d+\.\d+)", alertmanager.stdout + alertmanager.stderr)[1]
    assert services["alertmanager"]["image"] == f"prom/alertmanager:v{version}"


def test_ports_agree_with_prometheus_and_grafana_configs():
    services = compose()["services"]

    def published(service: str) -> dict[int, str]:
        """container port -> host address it is published on."""
        ports = {}
        for spec in services[service]["ports"]:
            parts = interpolate(spec).split(":")
            assert len(parts) == 3, f"{service}: bind {spec} to an explicit address"
            ports[int(parts[2])] = parts[0]
        return ports

    prometheus = yaml.safe_load(PROMETHEUS_CONFIG.read_text())
    targets = {
        job["job_name"]: job["static_configs"][0]["targets"][0]
        for job in prometheus["scrape_configs"]
    }
    listen_port = int(entrypoint()[entrypoint().index("--listen") + 1].rsplit(":", 1)[1])
    assert targets["schoolnet"] == f"collector:{listen_port}"
    assert targets["alertmanager"].split(":")[0] in services
    am_port = int(targets["alertmanager"].split(":")[1])
    [am_target] = prometheus["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"]
    assert am_target == targets["alertmanager"]
    prom_port = int(targets["prometheus"].split(":")[1])
    datasource = yaml.safe_load(
        (REPO / "deploy/grafana/provisioning/datasources/prometheus.yml").read_text()
    )["datasources"][0]
    assert datasource["url"] == f"http://prometheus:{prom_port}"
    assert published("collector") == {listen_port: "127.0.0.1"}
    assert published("prometheus") == {prom_port: "127.0.0.1"}
    assert published("alertmanager") == {am_port: "127.0.0.1"}
    assert published("grafana") == {3000: "0.0.0.0"}
    assert flag(services["alertmanager"]["command"], "cluster.listen-address") == ""


def test_deploy_doc_covers_the_stack():
    text = DEPLOY_DOC.read_text()
    for needle in (
        "docker compose up -d",
        ".env",
        "monitor check",
        "targets.yaml",
        "deploy/alertmanager/secrets",
        "http://localhost:3000",
        "runbooks.md",
    ):
        assert needle in text, needle
