"""deploy/systemd/schoolnet-monitor.service: verified by systemd itself, and installed by the docs.

`systemd-analyze verify` loads the unit the way systemd would, in a root directory laid out as
docs/deploy.md lays out the server (the executables the unit names exist there, as they do after
the docs' commands), and must report nothing. `systemd-analyze security --offline` rates its
hardening. Then the unit's settings are held to issue 10's list, its paths to the docs' commands,
and its command line to `monitor run`'s parser and environment.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from tests.agents import free_port
from tests.compose import unknown_run_args
from tests.prom import REPO, wait_for

UNIT = REPO / "deploy" / "systemd" / "schoolnet-monitor.service"
DEPLOY_DOC = REPO / "docs" / "deploy.md"
SECRETS_EXAMPLE = REPO / "deploy" / "collector" / "secrets.env.example"
SYSTEM_UNITS = Path("/usr/lib/systemd/system")


def settings() -> dict[str, list[str]]:
    """Every `Key=value` of the unit (a key may repeat)."""
    found: dict[str, list[str]] = {}
    for line in UNIT.read_text().splitlines():
        if "=" in line and not line.startswith(("#", ";", "[")):
            key, value = line.split("=", 1)
            found.setdefault(key.strip(), []).append(value.strip())
    return found


def one(key: str) -> str:
    [value] = settings()[key]
    return value


def docs_commands() -> str:
    """The ```sh block of docs/deploy.md's systemd section: the install commands."""
    text = DEPLOY_DOC.read_text()
    section = text[text.index("## Without containers: systemd") :]
    return re.search(r"^```sh\n(.*?)^```$", section, re.M | re.S)[1]


def executables() -> list[str]:
    return [shlex.split(one(key))[0] for key in ("ExecStart", "ExecReload")]


@pytest.fixture
def root(tmp_path) -> Path:
    """A root directory with systemd's own units and the executables the unit names."""
    root = tmp_path / "root"
    shutil.copytree(SYSTEM_UNITS, root / "usr/lib/systemd/system", symlinks=True)
    (root / "usr/bin").mkdir(parents=True)
    (root / "bin").symlink_to("usr/bin")  # merged /usr, as on Debian 12
    for path in executables():
        target = root / path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        if not target.exists():
            target.write_text("#!/bin/sh\n")
            target.chmod(0o755)
    (root / "etc/systemd/system").mkdir(parents=True)
    shutil.copy(UNIT, root / "etc/systemd/system" / UNIT.name)
    return root


def verify(root: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["systemd-analyze", "verify", f"--root={root}", f"/etc/systemd/system/{UNIT.name}"],
        capture_output=True,
        text=True,
    )


def test_systemd_analyze_verify_is_clean(root):
    result = verify(root)
    assert result.returncode == 0 and not (result.stdout + result.stderr).strip(), (
        result.stdout + result.stderr
    )
    # ... and it does complain where it should: an unknown key, a command that is not there
    unit = root / "etc/systemd/system" / UNIT.name
    unit.write_text(UNIT.read_text().replace("[Service]\n", "[Service]\nProtectSystm=strict\n"))
    assert "Unknown key" in verify(root).stderr
    unit.write_text(UNIT.read_text())
    (root / executables()[0].lstrip("/")).unlink()
    broken = verify(root)
    assert broken.returncode != 0 and "is not executable" in broken.stderr


def test_hardening_exposure_is_rated_ok(root):
    result = subprocess.run(
        [
            "systemd-analyze",
            "security",
            "--offline=yes",
            f"--root={root}",
            f"/etc/systemd/system/{UNIT.name}",
        ],
        capture_output=True,
        text=True,
    )
    score = re.search(r"Overall exposure level for \S+: (\d+\.\d+) (\w+)", result.stdout)
    assert score, result.stdout[-2000:] + result.stderr
    assert float(score[1]) <= 2.5 and score[2] == "OK", score[0]


def test_the_unit_has_what_issue_10_asks():
    s = settings()
    assert one("User") == one("Group") == "schoolnet-monitor"
    assert "DynamicUser" not in s  # a dedicated system user the docs create
    assert one("AmbientCapabilities") == "CAP_NET_RAW"
    assert one("CapabilityBoundingSet") == "CAP_NET_RAW"
    assert one("ProtectSystem") == "strict"
    for key in (
        "NoNewPrivileges",
        "ProtectHome",
        "PrivateTmp",
        "PrivateDevices",
        "ProtectKernelTunables",
        "ProtectKernelModules",
        "ProtectControlGroups",
        "RestrictSUIDSGID",
        "LockPersonality",
    ):
        assert one(key) == "yes", key
    assert one("ExecReload") == "/bin/kill -HUP $MAINPID"
    assert one("Restart") == "on-failure"
    assert one("Environment") == "SCHOOLNET_CONFIG=/etc/schoolnet-monitor/targets.yaml"
    assert one("EnvironmentFile") == "/etc/schoolnet-monitor/secrets.env"
    assert executables()[0].startswith("/opt/")
    assert "ReadWritePaths" not in s  # the collector writes nothing


def test_the_docs_create_every_path_the_unit_names():
    commands = docs_commands()
    start = shlex.split(one("ExecStart"))
    venv = str(Path(start[0]).parent.parent)
    assert start[0] == f"{venv}/bin/monitor"
    assert f"python3 -m venv {venv}\n" in commands
    assert f"{venv}/bin/pip install ." in commands
    assert re.search(rf"useradd --system .*\b{one('User')}$", commands, re.M)
    config = one("Environment").split("=", 1)[1]
    secrets = one("EnvironmentFile")
    installed = {
        line.split()[-1]: line
        for line in commands.splitlines()
        if line.startswith("install ") and " -d " not in line
    }
    # targets.yaml readable by the service's group; secrets.env by root only
    assert re.search(rf"-m 0640 -o root -g {one('Group')} ", installed[config])
    assert re.search(r"-m 0600 -o root -g root ", installed[secrets])
    assert installed[secrets].split()[-2] == "deploy/collector/secrets.env.example"
    assert installed[config].split()[-2] == "monitor/examples/targets.yaml"
    unit_path = f"/etc/systemd/system/{UNIT.name}"
    assert installed[unit_path].split()[-2] == f"deploy/systemd/{UNIT.name}"
    assert re.search(
        rf"^install -d -m 0750 -o root -g {one('Group')} {Path(config).parent}$", commands, re.M
    )
    for source in (line.split()[-2] for line in installed.values()):
        assert (REPO / source).exists(), source
    assert "systemctl daemon-reload" in commands
    assert "systemctl enable --now schoolnet-monitor" in DEPLOY_DOC.read_text()


def test_exec_start_is_a_command_line_monitor_run_accepts():
    start = shlex.split(one("ExecStart"))
    assert start[1] == "run"
    assert unknown_run_args(start[2:]) == []
    assert "--config" not in start  # it comes from SCHOOLNET_CONFIG


def test_the_unit_s_environment_starts_the_collector_and_reload_is_sighup(tmp_path):
    """ExecStart's arguments with the unit's Environment= and an EnvironmentFile made from the
    example: the collector reads SCHOOLNET_CONFIG, serves, and takes SIGHUP as a reload."""
    config = tmp_path / "targets.yaml"
    config.write_text(
        "members:\n  - id: m\n    name: M\n    schools:\n      - id: s\n        name: S\n"
        "        targets:\n          - {id: t, role: router, address: 127.0.0.1, snmp: false}\n"
    )
    environment = dict(
        line.split("=", 1)
        for line in SECRETS_EXAMPLE.read_text().splitlines()
        if line and not line.startswith("#")
    )
    variable, _ = one("Environment").split("=", 1)
    port = free_port(socket.SOCK_STREAM)
    args = shlex.split(one("ExecStart"))[2:]
    args[args.index("--listen") + 1] = f"127.0.0.1:{port}"
    env = {**os.environ, **environment, variable: str(config)}
    log = tmp_path / "log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "monitor", "run", *args], env=env, stderr=out, cwd=tmp_path
        )
    try:
        url = f"http://127.0.0.1:{port}/metrics"

        def metrics() -> str:
            try:
                return urllib.request.urlopen(url, timeout=2).read().decode()
            except OSError:
                return ""

        text = wait_for(
            lambda: "schoolnet_config_last_reload_successful 1" in metrics(),
            30,
            process=process,
            describe=log.read_text,
        )
        assert text
        process.send_signal(signal.SIGHUP)
        wait_for(
            lambda: re.search(r"config reloaded.*reason=SIGHUP", log.read_text()),
            15,
            process=process,
            describe=log.read_text,
        )
        assert process.poll() is None
    finally:
        process.terminate()
        process.wait(10)
