"""The operator's own device profiles (`--profiles DIR`): validated like targets.yaml (every
problem as FILE:LINE:COL, all at once), able to override a shipped profile, read again on every
reload, and never able to stop a running collector."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap

import pytest

from tests.collector_proc import CollectorProcess
from tests.lab_proc import REPO

# The shipped linux.yaml, replaced: a fixed model, and memory as a total only.
OVERRIDE = """\
# Our own Linux servers: the model is what we call them; only the memory size.
vendor: linux
match:
  - sys_object_id: 1.3.6.1.4.1.8072.3.2.10
model: KIEN server
metrics:
  memory: null
  memory_used: null
  memory_total: null
  memory_ucd: null
  memory_size:
    family: schoolnet_device_memory_total_bytes
    oid: 1.3.6.1.4.1.2021.4.5.0   # memTotalReal, KiB
    scale: 1024
"""

BROKEN = """\
vendor: Acme Corp
match:
  - sys_object_id: 1.3.6.1.4.1.x
metrics:
  cpu:
    family: schoolnet_device_cpu
    oid: 1.3.6.1.4.1.99999.1.0
  temperature:
    family: schoolnet_device_temperature_celsius
    oid: 1.3.6.1.4.1.99999.2
    scale: warm
    labels: {probe: index}
"""
BROKEN_PROBLEMS = [
    "1:9: vendor: expected a lowercase vendor name, got 'Acme Corp'",
    "3:20: match[0].sys_object_id: expected a numeric OID like 1.3.6.1.2.1.1.1.0, got "
    "'1.3.6.1.4.1.x'",
    "6:13: metrics.cpu.family: unknown family 'schoolnet_device_cpu'",
    "11:12: metrics.temperature.scale: expected a number, got 'warm'",
    "12:14: metrics.temperature.labels.probe: unknown key (allowed: sensor)",
]
ALSO_BROKEN = "vendor: acme\nextends: nothere\nbulk: maybe\n"
ALSO_BROKEN_PROBLEMS = [
    "2:10: extends: no profile named 'nothere'",
    "3:7: bulk: expected true or false, got 'maybe'",
]


def _monitor(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "monitor", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
        env=dict(os.environ, TEST_COMMUNITY="public-test"),
    )


def _config(path, port: int, vendor: str = "") -> None:
    path.write_text(
        textwrap.dedent(f"""\
        auths:
          v2: {{version: 2c, community: "${{TEST_COMMUNITY}}"}}
        members:
          - id: m
            schools:
              - id: s
                targets:
                  - {{id: srv, role: server, address: "127.0.0.1:{port}", ping: false,
                      snmp: {{auth: v2, interval: 1s, timeout: 500ms, retries: 0}}{vendor}}}
        """)
    )


def _problems(stderr: str, path) -> list[str]:
    prefix = f"{path}:"
    return [line.removeprefix(prefix) for line in stderr.splitlines() if line.startswith(prefix)]


def test_check_reports_every_problem_of_every_profile_with_its_place(tmp_path):
    ops = tmp_path / "ops"
    ops.mkdir()
    (ops / "acme.yaml").write_text(BROKEN)
    (ops / "acme-old.yaml").write_text(ALSO_BROKEN)
    config = tmp_path / "targets.yaml"
    _config(config, 161, vendor=", vendor: acme")
    result = _monitor("check", str(config), "--profiles", str(ops))
    assert result.returncode == 1
    got = _problems(result.stderr, ops / "acme.yaml")
    assert len(got) == len(BROKEN_PROBLEMS), result.stderr
    for line, want in zip(got, BROKEN_PROBLEMS, strict=True):
        assert line.startswith(want), (line, want)
    got = _problems(result.stderr, ops / "acme-old.yaml")
    assert got == ALSO_BROKEN_PROBLEMS, result.stderr
    # acme's profiles are broken, so `vendor: acme` is unknown too: the targets file is checked
    assert re.search(re.escape(str(config)) + r":\d+:\d+: unknown vendor 'acme'", result.stderr)


def test_check_accepts_the_vendor_of_an_operator_profile(tmp_path):
    ops = tmp_path / "ops"
    ops.mkdir()
    (ops / "acme.yaml").write_text(
        "# Acme\nvendor: acme\nmatch: [{sys_object_id: 1.3.6.1.4.1.99999}]\n"
    )
    config = tmp_path / "targets.yaml"
    _config(config, 161, vendor=", vendor: acme")
    assert _monitor("check", str(config)).returncode == 1  # unknown without the directory
    result = _monitor("check", str(config), "--profiles", str(ops))
    assert result.returncode == 0, result.stderr
    assert f"{ops}: OK: 1 device profile" in result.stdout


def test_run_refuses_to_start_with_a_broken_profile(tmp_path):
    ops = tmp_path / "ops"
    ops.mkdir()
    (ops / "acme.yaml").write_text(ALSO_BROKEN)
    config = tmp_path / "targets.yaml"
    _config(config, 161)
    result = _monitor("run", "--config", str(config), "--profiles", str(ops), "--listen", ":0")
    assert result.returncode == 1
    assert result.stderr.startswith(f"{ops / 'acme.yaml'}:2:10: extends: no profile named")


def test_lab_refuses_to_start_with_a_broken_profile(tmp_path):
    ops = tmp_path / "ops"
    ops.mkdir()
    (ops / "acme.yaml").write_text(ALSO_BROKEN)
    config = tmp_path / "targets.yaml"
    _config(config, 161)
    control = tmp_path / "lab.sock"
    result = _monitor(
        "lab", "--config", str(config), "--profiles", str(ops), "--control", str(control)
    )
    assert result.returncode == 1
    assert result.stderr.startswith(f"{ops / 'acme.yaml'}:2:10: extends: no profile named")
    assert not control.exists()


def test_profiles_are_not_loaded_at_import():
    code = (
        "import monitor.cli, monitor.collector, monitor.config.loader, monitor.exposition\n"
        "from monitor.profiles import registry\n"
        "assert registry.cache_info().currsize == 0, 'loaded at import'\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert result.returncode == 0, result.stderr


@pytest.fixture
def collector(tmp_path, snmpd):
    ops = tmp_path / "ops"
    ops.mkdir()
    config = tmp_path / "targets.yaml"
    _config(config, snmpd.port)
    proc = CollectorProcess(
        config,
        env={"TEST_COMMUNITY": snmpd.community},
        extra_args=["--profiles", str(ops), "--watch-interval", "0", "--web.enable-lifecycle"],
    ).start()
    proc.ops = ops
    try:
        yield proc
    finally:
        assert proc.stop() == 0


def _device(proc) -> tuple[dict, set[str]]:
    """The device's info labels and the device-health families it has."""
    text = proc.metrics_text()
    families = set(re.findall(r"^(schoolnet_device_\w+)\{", text, re.M))
    (info,) = [labels for labels, _ in proc.samples("schoolnet_device_info")]
    return info, families


def test_an_override_changes_what_a_real_device_exports_and_a_broken_one_changes_nothing(
    collector,
):
    # the shipped linux profile: the kernel release as model, memory from UCD-SNMP
    collector.wait_for(lambda: collector.value("schoolnet_snmp_up") == 1, timeout=30)
    info, families = _device(collector)
    assert info["vendor"] == "linux" and info["model"] != "KIEN server"
    assert "schoolnet_device_memory_usage_ratio" in families

    (collector.ops / "linux.yaml").write_text(OVERRIDE)
    status, body = collector.post("/-/reload")
    assert status == 200, body

    def overridden():
        info, families = _device(collector)
        return (
            info["model"] == "KIEN server"
            and "schoolnet_device_memory_usage_ratio" not in families
            and "schoolnet_device_memory_total_bytes" in families
        )

    collector.wait_for(overridden, timeout=30)
    (total,) = collector.samples("schoolnet_device_memory_total_bytes")
    assert total[1] > 64 * 2**20  # memTotalReal in KiB, scaled by the override

    # a broken profile is refused; the collector keeps polling with the last good profiles
    (collector.ops / "acme.yaml").write_text(ALSO_BROKEN)
    status, body = collector.post("/-/reload")
    assert status == 400
    assert f"{collector.ops / 'acme.yaml'}:2:10: extends: no profile named 'nothere'" in body
    assert collector.value("schoolnet_config_last_reload_successful") == 0
    polls = collector.value("schoolnet_collector_snmp_requests_total")
    collector.wait_for(
        lambda: collector.value("schoolnet_collector_snmp_requests_total") > polls, timeout=30
    )
    assert overridden()
    assert collector.process.poll() is None
