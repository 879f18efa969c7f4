"""docker-compose.yml and the Dockerfile, checked statically (no container engine here): the file
validates against the compose-spec JSON schema, every mounted path exists, every config mounted is
the one the other tests validate, the collector sees only its own files and variables, the image's
entrypoint and the service's command use flags `monitor run` accepts, health checks use tools the
images have, images are pinned, ports agree with prometheus.yml and the Grafana datasource."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.compose import (
    COMPOSE,
    DOCKERFILE,
    compose,
    dockerfile_instructions,
    entrypoint,
    interpolate,
    interpolated,
    schema_errors,
    unknown_run_args,
)
from tests.prom import ALERTMANAGER_CONFIG, PROMETHEUS_CONFIG, REPO

DOCKERIGNORE = REPO / ".dockerignore"
ENV_EXAMPLE = REPO / "deploy" / "env.example"
SECRETS_EXAMPLE = REPO / "deploy" / "collector" / "secrets.env.example"
CONSTRAINTS = REPO / "constraints.txt"
DEPLOY_DOC = REPO / "docs" / "deploy.md"
PYPROJECT = REPO / "pyproject.toml"
CONFIG_DIR = "SCHOOLNET_CONFIG_DIR"

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


def bind_mounts(
    service: str, environ: dict[str, str] | None = None
) -> list[tuple[Path, str, bool]]:
    """(host path, container path, read-only) of a service's bind mounts."""
    mounts = []
    for volume in compose()["services"][service].get("volumes", []):
        host, container, *options = interpolate(volume, environ).split(":")
        if host.startswith((".", "/")):
            mounts.append(((REPO / host).resolve(), container, "ro" in options))
    return mounts


def host_path(service: str, container_path: str, environ: dict[str, str] | None = None) -> Path:
    """Where a path inside a service's container comes from on the host (longest mount wins)."""
    best = None
    for host, container, _ in bind_mounts(service, environ):
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


def collector_args() -> list[str]:
    """What the collector container runs: the image's entrypoint plus the service's command."""
    return entrypoint() + compose()["services"]["collector"].get("command", [])


def example_names(path: Path) -> list[str]:
    return re.findall(r"^#?\s*([A-Z][A-Z0-9_]*)=", path.read_text(), re.M)


def test_the_file_validates_against_the_compose_spec_schema():
    config = interpolated(compose(), {"GRAFANA_ADMIN_PASSWORD": "x"})
    assert schema_errors(config) == []
    # the validator does catch what compose would refuse
    broken = interpolated(compose(), {"GRAFANA_ADMIN_PASSWORD": "x"})
    broken["services"]["collector"]["volume"] = broken["services"]["collector"].pop("volumes")
    broken["services"]["grafana"]["ports"] = "3000:3000"
    errors = schema_errors(broken)
    assert any("'volume' does not match" in e for e in errors), errors
    assert any(e.startswith("services/grafana/ports") for e in errors), errors
    source = (COMPOSE.parent / "tests/data/compose-spec/README.md").read_text()
    assert "github.com/compose-spec/compose-spec" in source and "Apache-2.0" in source
    assert "Apache License" in (COMPOSE.parent / "tests/data/compose-spec/LICENSE").read_text()


def test_services_volumes_restart_policy_and_log_rotation():
    config = compose()
    assert set(config["services"]) == SERVICES
    assert set(config["volumes"]) == {"prometheus-data", "alertmanager-data", "grafana-data"}
    for name, service in config["services"].items():
        assert service.get("restart") == "unless-stopped", name
        assert "healthcheck" in service, name
        logging = service["logging"]
        assert logging["driver"] == "json-file", name
        assert re.fullmatch(r"\d+m", logging["options"]["max-size"]), name
        assert int(logging["options"]["max-file"]) >= 2, name
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
    assert count >= 8


def test_the_configuration_directory_supplies_the_deployments_files():
    """What a deployment changes comes from $SCHOOLNET_CONFIG_DIR; the rest from the checkout."""
    elsewhere = Path("/srv/kien-config")
    environ = {CONFIG_DIR: str(elsewhere)}
    deployment = {
        ("collector", "/etc/schoolnet/targets.yaml"): "targets.yaml",
        ("collector", "/etc/schoolnet/tls"): "deploy/collector/tls",
        ("prometheus", "/etc/prometheus/secrets"): "deploy/prometheus/secrets",
        ("alertmanager", "/etc/alertmanager/alertmanager.yml"): (
            "deploy/alertmanager/alertmanager.yml"
        ),
        ("alertmanager", "/etc/alertmanager/secrets"): "deploy/alertmanager/secrets",
    }
    for (service, inside), relative in deployment.items():
        assert host_path(service, inside, environ) == elsewhere / relative, (service, inside)
        assert host_path(service, inside) == (REPO / relative).resolve()  # default: ./
    checkout = {
        ("prometheus", "/etc/prometheus/prometheus.yml"): "deploy/prometheus/prometheus.yml",
        ("alertmanager", "/etc/alertmanager/templates"): "deploy/alertmanager/templates",
        ("grafana", "/etc/grafana/provisioning"): "deploy/grafana/provisioning",
    }
    for (service, inside), relative in checkout.items():
        assert host_path(service, inside, environ) == (REPO / relative).resolve()
    env_file = compose()["services"]["collector"]["env_file"]
    assert interpolate(env_file, environ) == f"{elsewhere}/deploy/collector/secrets.env"
    # The deployment's own files are never committed: each directory ignores all but its README.
    ignored = subprocess.run(
        ["git", "check-ignore", "--no-index", "-q", "deploy/collector/secrets.env"], cwd=REPO
    )
    assert ignored.returncode == 0, "deploy/collector/secrets.env must be git-ignored"
    for directory in ("deploy/collector/tls", "deploy/prometheus/secrets"):
        for name in ("collector.key", "web-config.yml", "collector_password"):
            check = subprocess.run(
                ["git", "check-ignore", "--no-index", "-q", f"{directory}/{name}"], cwd=REPO
            )
            assert check.returncode == 0, f"{directory}/{name} must be git-ignored"
    assert "SCHOOLNET_CONFIG_DIR" in DEPLOY_DOC.read_text()


def test_the_collector_sees_only_its_own_files_and_variables():
    collector = compose()["services"]["collector"]
    mounts = bind_mounts("collector")
    inside = {container for _, container, _ in mounts}
    assert inside == {"/etc/schoolnet/targets.yaml", "/etc/schoolnet/tls"}
    hosts = {host for host, _, _ in mounts}
    assert hosts == {(REPO / "targets.yaml").resolve(), (REPO / "deploy/collector/tls").resolve()}
    assert all(read_only for _, _, read_only in mounts)
    assert REPO.resolve() not in hosts, "the collector must not see the checkout"
    [tls] = [host for host in hosts if host.is_dir()]
    assert sorted(p.name for p in tls.iterdir() if p.name != ".gitignore") in (
        [],
        ["collector.crt", "collector.key", "web-config.yml"],
    ), "deploy/collector/tls holds the collector's TLS files only"
    # its environment: its own env_file, never .env, nothing of Grafana or Alertmanager
    assert collector["env_file"] == "${SCHOOLNET_CONFIG_DIR:-.}/deploy/collector/secrets.env"
    assert "environment" not in collector
    assert "GRAFANA" not in SECRETS_EXAMPLE.read_text()
    for service in compose()["services"].values():
        assert service.get("env_file") not in (".env", "./.env", [".env"])
    # what .env holds is for compose and Grafana only
    assert not set(example_names(ENV_EXAMPLE)) & set(example_names(SECRETS_EXAMPLE))


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
    # alertmanager.yml's templates (relative to it) are mounted beside it
    templates = yaml.safe_load(am)["templates"]
    for pattern in templates:
        directory = host_path("alertmanager", f"/etc/alertmanager/{Path(pattern).parent}")
        assert list(directory.glob(Path(pattern).name)), pattern


def test_prometheus_scrapes_the_collector_over_tls_with_the_mounted_secrets():
    prometheus = yaml.safe_load(PROMETHEUS_CONFIG.read_text())
    [job] = [j for j in prometheus["scrape_configs"] if j["job_name"] == "schoolnet"]
    assert job["scheme"] == "https"
    secrets = host_path("prometheus", "/etc/prometheus/secrets")
    readme = (secrets / "README.md").read_text()
    for inside in (job["basic_auth"]["password_file"], job["tls_config"]["ca_file"]):
        assert host_path("prometheus", inside).parent == secrets, inside
        assert f"`{Path(inside).name}`" in readme
        assert Path(inside).name in DEPLOY_DOC.read_text()
    # the collector serves what the web config file names, mounted from its TLS directory
    args = collector_args()
    web_config = args[args.index("--web.config.file") + 1]
    assert host_path("collector", web_config).parent == host_path("collector", "/etc/schoolnet/tls")
    assert unknown_run_args(args[2:]) == []
    # POST /-/reload, which docs/deploy.md offers, exists only with the lifecycle endpoints on
    assert "--web.enable-lifecycle" in args and "/-/reload" in DEPLOY_DOC.read_text()


def test_the_collector_secrets_example_checks_the_shipped_targets_yaml(tmp_path):
    """`monitor check` passes with exactly the variables secrets.env.example names."""
    names = example_names(SECRETS_EXAMPLE)
    env = {k: v for k, v in os.environ.items() if not k.startswith("KIEN_")}
    env.update({name: "placeholder-value" for name in names})
    for config in (REPO / "targets.yaml", REPO / "monitor" / "examples" / "targets.yaml"):
        result = subprocess.run(
            [sys.executable, "-m", "monitor", "check", str(config)],
            capture_output=True,
            text=True,
            env=env,
            cwd=tmp_path,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        used = set(re.findall(r"\$\{(\w+)\}", config.read_text())) - {"NAME"}
        assert used and used <= set(names)
    compose_text = COMPOSE.read_text()
    compose_required = set(re.findall(r"\$\{(\w+):\?", compose_text))
    assert compose_required <= set(example_names(ENV_EXAMPLE))
    compose_optional = set(re.findall(r"\$\{(\w+):-", compose_text))
    assert compose_optional <= set(example_names(ENV_EXAMPLE)), "document every optional one"


def test_entrypoint_and_command_use_flags_monitor_run_accepts():
    args = entrypoint()
    assert args[:2] == ["monitor", "run"]
    assert args[args.index("--config") + 1] == "/etc/schoolnet/targets.yaml"
    assert args[args.index("--listen") + 1] == "0.0.0.0:9430"
    assert unknown_run_args(collector_args()[2:]) == []
    assert unknown_run_args([*args[2:], "--no-such-flag"]) == ["--no-such-flag"]
    help_text = subprocess.run(
        [sys.executable, "-m", "monitor", "run", "--help"], capture_output=True, text=True
    ).stdout
    for name in ("--config", "--listen"):
        assert re.search(rf"\s{name}\b", help_text), f"`monitor run` has no {name}"
    scripts = re.search(r"\[project\.scripts\]\n([^\[]*)", PYPROJECT.read_text())[1]
    assert re.search(r'^monitor = "monitor\.cli:main"$', scripts, re.M)


def test_dockerfile_base_user_and_icmp_capability():
    instructions = dockerfile_instructions()
    kind, base = instructions[0]
    assert kind == "FROM" and re.fullmatch(r"python:3\.11\.\d+-slim(-bookworm)?", base), base
    runs = " ".join(v for k, v in instructions if k == "RUN")
    assert re.search(r"pip install -c constraints\.txt \.", runs)
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


def test_constraints_pin_pysnmp_and_pyasn1_within_the_package_requirements():
    from packaging.requirements import Requirement

    pins = {}
    for line in CONSTRAINTS.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            requirement = Requirement(line)
            [spec] = requirement.specifier
            assert spec.operator == "==", line
            pins[requirement.name] = spec.version
    assert {"pysnmp", "pyasn1"} <= set(pins)
    dependencies = re.search(r"^dependencies = \[(.*?)^\]", PYPROJECT.read_text(), re.M | re.S)
    for line in re.findall(r'^\s*"([^"]+)"', dependencies[1], re.M):
        requirement = Requirement(line)
        if requirement.name in pins:
            assert pins[requirement.name] in requirement.specifier, (line, pins)


def test_the_build_context_has_what_pip_install_needs():
    """`COPY` sources exist and .dockerignore lets them (and what pyproject refers to) through."""
    # (tomllib is Python 3.11+; the tests run on 3.10 too)
    readme = re.search(r'^readme = "([^"]+)"$', PYPROJECT.read_text(), re.M)[1]
    license_files = re.search(r"^license-files = \[([^\]]*)\]$", PYPROJECT.read_text(), re.M)
    needed = {"pyproject.toml", "monitor", readme, "constraints.txt"}
    needed.update(re.findall(r'"([^"]+)"', license_files[1]))
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
        assert base.startswith("python:") and "-slim" in base
        tools = IMAGE_TOOLS["python"]
    else:
        repository = image.partition(":")[0]
        tools = IMAGE_TOOLS[repository]
    test = config["healthcheck"]["test"]
    assert test[0] == "CMD"
    assert test[1] in tools, f"{service}: {test[1]} is not in {image or 'the collector image'}"
    assert "curl" not in " ".join(test) or "curl" in tools
    path = {"grafana": "/api/health"}.get(service, "/-/healthy")
    port = {"collector": 9430, "prometheus": 9090, "alertmanager": 9093, "grafana": 3000}[service]
    scheme = "https" if service == "collector" else "http"  # the collector serves TLS
    assert f"{scheme}://127.0.0.1:{port}{path}" in " ".join(test)
    if service == "collector":
        # it trusts the certificate mounted from the collector's TLS directory
        [cafile] = re.findall(r'cafile="([^"]+)"', test[-1])
        assert host_path("collector", cafile).parent == host_path("collector", "/etc/schoolnet/tls")


def test_images_are_pinned_and_the_versions_the_tests_run():
    services = compose()["services"]
    for name, service in services.items():
        if name != "collector":
            tag = service["image"].partition(":")[2]
            assert re.fullmatch(r"v?\d+\.\d+\.\d+", tag), f"{name}: pin an exact version"
    prometheus = subprocess.run(["prometheus", "--version"], capture_output=True, text=True)
    version = re.search(r"version (\d+\.\d+\.\d+)", prometheus.stdout + prometheus.stderr)[1]
    assert services["prometheus"]["image"] == f"prom/prometheus:v{version}"
    alertmanager = subprocess.run(
        ["prometheus-alertmanager", "--version"], capture_output=True, text=True
    )
    version = re.search(r"version (\d+\.\d+\.\d+)", alertmanager.stdout + alertmanager.stderr)[1]
    assert services["alertmanager"]["image"] == f"prom/alertmanager:v{version}"
    package = re.search(r'^version = "([^"]+)"$', PYPROJECT.read_text(), re.M)[1]
    assert services["collector"]["image"].endswith(f":{package}")


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
    # nothing is published beyond the host itself unless the operator says so (GRAFANA_BIND)
    assert published("collector") == {listen_port: "127.0.0.1"}
    assert published("prometheus") == {prom_port: "127.0.0.1"}
    assert published("alertmanager") == {am_port: "127.0.0.1"}
    assert published("grafana") == {3000: "127.0.0.1"}
    assert "${GRAFANA_BIND:-127.0.0.1}:3000:3000" in services["grafana"]["ports"]
    assert flag(services["alertmanager"]["command"], "cluster.listen-address") == ""


def test_runbook_base_url_reaches_prometheus_as_its_external_label():
    prometheus_service = compose()["services"]["prometheus"]
    assert "--enable-feature=expand-external-labels" in prometheus_service["command"]
    variable = re.fullmatch(
        r"\$\{(\w+)\}",
        yaml.safe_load(PROMETHEUS_CONFIG.read_text())["global"]["external_labels"][
            "runbook_base_url"
        ],
    )[1]
    default = interpolate(prometheus_service["environment"][variable])
    assert default == "https://localhost:9430/runbooks"  # the collector's own page
    custom = interpolate(
        prometheus_service["environment"][variable],
        {"RUNBOOK_BASE_URL": "https://monitor.kien.example/runbooks"},
    )
    assert custom == "https://monitor.kien.example/runbooks"


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
        "SCHOOLNET_CONFIG_DIR",
        "RUNBOOK_BASE_URL",
        "reverse_proxy 127.0.0.1:3000",
    ):
        assert needle in text, needle
    assert DOCKERFILE.exists()
