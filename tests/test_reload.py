"""Live reloads (file change, SIGHUP, POST /-/reload), shutdown, and the command line."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import textwrap
import time

import pytest

from tests.collector_proc import CollectorProcess

BASE = """\
defaults:
  ping: {interval: 1s, count: 2, spacing: 200ms, timeout: 500ms}
members:
  - id: coop
    schools:
      - id: school-a
        targets:
"""


def targets_file(path, *targets: str, ping_count: int = 2) -> None:
    body = BASE.replace("count: 2", f"count: {ping_count}")
    body += "".join(f"          - {t}\n" for t in targets)
    path.write_text(body)


T1 = "{id: t1, role: router, address: 127.0.0.21, snmp: false}"
T2 = "{id: t2, role: switch, address: 127.0.0.22, snmp: false}"
T3 = "{id: t3, role: ap, address: 127.0.0.23, snmp: false}"


def requests_of(proc: CollectorProcess, target: str) -> float | None:
    return proc.value("schoolnet_ping_requests_total", target=target)


@pytest.fixture
def config(tmp_path):
    path = tmp_path / "targets.yaml"
    targets_file(path, T1, T2)
    return path


@pytest.fixture
def collector(config):
    proc = CollectorProcess(
        config, extra_args=["--watch-interval", "300ms", "--web.enable-lifecycle"]
    ).start()
    try:
        proc.wait_for(lambda: requests_of(proc, "t1") and requests_of(proc, "t2"))
        yield proc
    finally:
        proc.stop()


def test_valid_edit_on_disk_is_applied_and_unchanged_targets_keep_their_counters(collector, config):
    before = requests_of(collector, "t1")
    targets_file(config, T1, T3)
    collector.wait_for(
        lambda: requests_of(collector, "t3") and requests_of(collector, "t2") is None
    )
    assert requests_of(collector, "t1") >= before  # not reset by the reload
    assert collector.value("schoolnet_up", target="t2") is None  # its series are gone
    assert collector.value("schoolnet_config_last_reload_successful") == 1
    assert re.search(
        r'msg="config reloaded" reason="file changed" added=1 removed=1 changed=0', collector.log()
    )


def test_changed_target_restarts_but_keeps_its_counters(collector, config):
    before = requests_of(collector, "t1")
    targets_file(config, T1, T2, ping_count=3)
    collector.wait_for(lambda: "changed=2" in collector.log())
    # rounds of 3 echoes from now on, on top of the counter it had
    collector.wait_for(lambda: requests_of(collector, "t1") >= before + 3)
    assert requests_of(collector, "t1") >= before


def test_invalid_edit_is_rejected_and_the_running_config_stays(collector, config):
    stamp = collector.value("schoolnet_config_last_reload_success_timestamp_seconds")
    text = config.read_text().replace("spacing: 200ms", "spacng: 200ms")
    config.write_text(text + "          - {id: t1, role: ap, address: 127.0.0.24}\n")
    collector.wait_for(lambda: collector.value("schoolnet_config_last_reload_successful") == 0)
    log = collector.log()
    path = re.escape(str(config))
    assert re.search(path + r":2:\d+: unknown key 'spacng'.*did you mean 'spacing'", log)
    assert re.search(path + r":\d+:\d+: duplicate", log)
    assert collector.value("schoolnet_config_last_reload_success_timestamp_seconds") == stamp
    # still probing with the last good config
    before = requests_of(collector, "t2")
    collector.wait_for(lambda: requests_of(collector, "t2") > before)
    page = collector.get("/")[1].decode()
    assert "rejected" in page and "spacng" in page
    # asking explicitly gives the same messages back
    status, body = collector.post("/-/reload")
    assert status == 400 and re.search(path + r":2:\d+: unknown key 'spacng'", body)
    # fixing the file brings the reload status back
    targets_file(config, T1, T2, T3)
    collector.wait_for(
        lambda: (
            collector.value("schoolnet_config_last_reload_successful") == 1
            and requests_of(collector, "t3")
        )
    )


def test_a_label_the_collector_sets_is_rejected_by_a_live_reload(collector, config):
    """`labels: {address: ...}` would give schoolnet_target_info two `address` labels, and
    Prometheus would drop the whole scrape: the reload is refused and /metrics stays valid."""
    config.write_text(config.read_text().replace(T2, T2[:-1] + ", labels: {address: closet-3}}"))
    collector.wait_for(lambda: collector.value("schoolnet_config_last_reload_successful") == 0)
    message = r":\d+:\d+: label 'address' is reserved \(schoolnet_target_info has it\)"
    assert re.search(re.escape(str(config)) + message, collector.log())
    status, body = collector.post("/-/reload")
    assert status == 400 and re.search(message, body)
    addresses = {
        labels["target"]: labels["address"]
        for labels, _ in collector.samples("schoolnet_target_info")
    }
    assert addresses == {"t1": "127.0.0.21", "t2": "127.0.0.22"}
    text = collector.metrics_text()
    assert "closet-3" not in text
    result = subprocess.run(
        ["promtool", "check", "metrics"], input=text.encode(), capture_output=True
    )
    assert result.returncode == 0, result.stderr


def test_post_reload_applies_the_file(config):
    proc = CollectorProcess(
        config, extra_args=["--watch-interval", "0", "--web.enable-lifecycle"]
    ).start()
    try:
        proc.wait_for(lambda: requests_of(proc, "t1"))
        targets_file(config, T1, T2, T3)
        time.sleep(1)
        assert requests_of(proc, "t3") is None  # not watching: nothing happens by itself
        status, body = proc.post("/-/reload")
        assert status == 200 and "1 added, 0 removed" in body
        proc.wait_for(lambda: requests_of(proc, "t3"))
    finally:
        assert proc.stop() == 0


def test_sighup_reloads(config):
    proc = CollectorProcess(config, extra_args=["--watch-interval", "0"]).start()
    try:
        proc.wait_for(lambda: requests_of(proc, "t1"))
        targets_file(config, T1)
        proc.process.send_signal(signal.SIGHUP)
        proc.wait_for(lambda: requests_of(proc, "t2") is None)
        # the new config is live before its log line is written: wait for the line too
        proc.wait_for(lambda: "reason=SIGHUP" in proc.log())
    finally:
        proc.stop()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_clean_shutdown(config, sig):
    proc = CollectorProcess(config).start()
    try:
        proc.wait_for(lambda: requests_of(proc, "t1"))
    except BaseException:
        proc.stop()
        raise
    started = time.monotonic()
    assert proc.stop(sig) == 0
    assert time.monotonic() - started < 5
    assert 'msg="collector stopped"' in proc.log()
    assert "Traceback" not in proc.log()


def _monitor(*args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "monitor", *args],
        capture_output=True,
        text=True,
        timeout=60,
        **kwargs,
    )


def test_check_summarises_a_valid_file(config):
    result = _monitor("check", str(config))
    assert result.returncode == 0, result.stderr
    assert "OK: 1 member, 1 school, 2 targets (router 1, switch 1)" in result.stdout


def test_check_reports_every_problem_and_exits_1(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        textwrap.dedent("""\
        members:
          - id: coop
            schools:
              - id: s
                targets:
                  - {id: a, role: routr, address: 127.0.0.1}
                  - {id: b, role: switch}
        """)
    )
    result = _monitor("check", str(bad))
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert any(
        re.fullmatch(re.escape(str(bad)) + r":6:\d+: .*'routr'.*did you mean 'router'.*", line)
        for line in lines
    ), lines
    assert any(line.startswith(f"{bad}:7:") and "no address" in line for line in lines), lines


def test_run_refuses_an_invalid_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("members: [\n")
    result = _monitor("run", "--config", str(bad), "--listen", "127.0.0.1:0")
    assert result.returncode == 1
    assert result.stderr.startswith(f"{bad}:")


def test_usage_errors_exit_2(config):
    assert _monitor("frobnicate").returncode == 2
    assert _monitor("run", "--config", str(config), "--listen", "nonsense").returncode == 2


def test_listen_address_in_use_exits_1(config):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = _monitor("run", "--config", str(config), "--listen", f"127.0.0.1:{port}")
    assert result.returncode == 1 and "cannot start" in result.stderr


def test_python_dash_m_and_console_script_agree():
    script = subprocess.run(
        ["monitor", "--version"], capture_output=True, text=True, env=dict(os.environ)
    )
    module = _monitor("--version")
    assert script.returncode == module.returncode == 0
    assert script.stdout == module.stdout and script.stdout.startswith("monitor ")
