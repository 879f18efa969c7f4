"""`monitor run` under systemd and compose: its config path from SCHOOLNET_CONFIG, and a missing or
empty secret named in one line with a non-zero exit (the operator reads it in `journalctl` or
`docker compose logs`), never with a value."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import urllib.request

from tests.agents import free_port
from tests.prom import REPO, wait_for

SHIPPED = REPO / "targets.yaml"


def run(env: dict[str, str], *args: str, cwd=None) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("KIEN_", "SCHOOLNET_"))}
    return subprocess.run(
        [sys.executable, "-m", "monitor", "run", "--listen", "127.0.0.1:0", *args],
        env={**environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
        cwd=cwd,
    )


def test_missing_and_empty_secrets_are_named_in_one_line(tmp_path):
    result = run(
        {"KIEN_SNMP_AUTH_PASSWORD": "", "KIEN_SNMP_PRIV_PASSWORD": "priv-secret-value"},
        "--config",
        str(SHIPPED),
    )
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert lines[0] == (
        f"monitor: {SHIPPED} needs the environment variables "
        "KIEN_SNMP_AUTH_PASSWORD, KIEN_SNMP_COMMUNITY: unset or empty"
    )
    # nothing else is said about them, and no value is ever shown
    assert not any("KIEN_SNMP_AUTH_PASSWORD" in line for line in lines[1:])
    assert not any("KIEN_SNMP_COMMUNITY" in line for line in lines[1:])
    assert "priv-secret-value" not in result.stdout + result.stderr


def test_one_missing_secret(tmp_path):
    result = run(
        {"KIEN_SNMP_AUTH_PASSWORD": "auth-secret-1", "KIEN_SNMP_PRIV_PASSWORD": "priv-secret-1"},
        "--config",
        str(SHIPPED),
    )
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"monitor: {SHIPPED} needs the environment variable KIEN_SNMP_COMMUNITY: unset or empty"
    ]


def test_other_problems_still_come_with_their_place(tmp_path):
    config = tmp_path / "targets.yaml"
    config.write_text(
        "auths:\n  a: {version: 2c, community: '${MISSING_COMMUNITY}'}\n"
        "defaults:\n  snmp: {auth: a}\n"
        "members:\n  - id: m\n    name: M\n    schools:\n      - id: s\n        name: S\n"
        "        targets:\n          - {id: t, role: router, address: 127.0.0.1, colour: red}\n"
    )
    result = run({}, "--config", str(config))
    assert result.returncode == 1
    first, *rest = result.stderr.splitlines()
    assert (
        first
        == f"monitor: {config} needs the environment variable MISSING_COMMUNITY: unset or empty"
    )
    assert len(rest) == 1 and rest[0].startswith(f"{config}:12:") and "colour" in rest[0]


def test_config_path_from_schoolnet_config_when_config_is_absent(tmp_path):
    config = tmp_path / "elsewhere.yaml"
    config.write_text(
        "members:\n  - id: m\n    name: M\n    schools:\n      - id: s\n        name: S\n"
        "        targets:\n          - {id: envtarget, role: router, address: 127.0.0.1,"
        " snmp: false}\n"
    )
    port = free_port(socket.SOCK_STREAM)
    environ = {k: v for k, v in os.environ.items() if not k.startswith("SCHOOLNET_")}
    process = subprocess.Popen(
        [sys.executable, "-m", "monitor", "run", "--listen", f"127.0.0.1:{port}"],
        env={**environ, "SCHOOLNET_CONFIG": str(config)},
        cwd=tmp_path,  # no targets.yaml here: the default would fail
        stderr=subprocess.PIPE,
    )
    try:

        def metrics() -> str:
            try:
                return urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2).read()
            except OSError:
                return b""

        assert b'target="envtarget"' in wait_for(
            lambda: (m := metrics()) and b'target="envtarget"' in m and m, 30, process=process
        )
    finally:
        process.terminate()
        process.wait(10)
    # --config wins over the variable
    other = tmp_path / "missing.yaml"
    result = subprocess.run(
        [sys.executable, "-m", "monitor", "run", "--config", str(other)],
        env={**environ, "SCHOOLNET_CONFIG": str(config)},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 1 and str(other) in result.stderr
    help_text = subprocess.run(
        [sys.executable, "-m", "monitor", "run", "--help"], capture_output=True, text=True
    ).stdout
    assert "SCHOOLNET_CONFIG" in help_text
