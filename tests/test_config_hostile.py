"""targets.yaml as hostile input: no file of any shape may take `monitor check` past 2 s of CPU
or 300 MB, and each limit it hits is a FILE:LINE:COL problem.

A merge request in CI is exactly that input. Each shape here cost minutes and gigabytes before
the loader had limits (a 3.7 KB alias cross-product: over 120 s and 2.9 GB; 50 MB: 260 s and
6.5 GB; 5,000-deep nesting: a RecursionError traceback). `monitor check` runs as a real
subprocess, measured by `resource.getrusage` in a small parent process of its own.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from monitor.config.loader import ConfigError, load_config_text
from monitor.config.yamltree import LIMITS
from tests.collector_proc import CollectorProcess

REPO = Path(__file__).resolve().parent.parent
CPU_SECONDS = 2.0
MAX_RSS = 300 * 1024 * 1024

# The parent process that runs `monitor check` and reports its child's resource use.
_MEASURE = """\
import json, resource, subprocess, sys, time
started = time.monotonic()
done = subprocess.run([sys.executable, "-m", "monitor", "check", sys.argv[1]],
                      capture_output=True, text=True, errors="replace")
wall = time.monotonic() - started
usage = resource.getrusage(resource.RUSAGE_CHILDREN)
print(json.dumps({"rc": done.returncode, "stdout": done.stdout, "stderr": done.stderr,
                  "cpu": usage.ru_utime + usage.ru_stime, "wall": wall,
                  "rss": usage.ru_maxrss * 1024}))
"""


def measured_check(path: Path) -> dict:
    result = subprocess.run(
        [sys.executable, "-c", _MEASURE, str(path)],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


HEAD = """\
auths:
  v2: {version: 2c, community: public-ro}
defaults:
  snmp: {auth: v2}
"""


def alias_cross_product(width: int = 40) -> str:
    """Aliases of members -> schools -> targets: a few KB that expand to width**3 targets."""
    targets = "".join(
        f"  - {{id: t{i}, role: switch, address: 127.0.0.{i + 1}, labels: {{rack: r{i}}}}}\n"
        for i in range(width)
    )
    schools = "".join(f"  - {{id: s{i}, targets: *targets}}\n" for i in range(width))
    members = "".join(f"  - {{id: m{i}, schools: *schools}}\n" for i in range(width))
    return (
        HEAD
        + "x-targets: &targets\n"
        + targets
        + "x-schools: &schools\n"
        + schools
        + "members:\n"
        + members
    )


def fleet(devices: int, broken: bool = False) -> str:
    """A plausible file of `devices` targets, ten per school; `broken` makes every target wrong
    in several ways at once (the most problems per byte a file can carry)."""
    lines = [HEAD, "members:\n", "  - id: m\n", "    schools:\n"]
    for s in range(devices // 10):
        lines.append(f"      - id: s{s}\n        targets:\n")
        for t in range(10):
            if broken:
                lines.append(
                    f"          - {{id: -t{t}, role: swich, address: 300.0.0.{t}, "
                    f"snmp: {{auth: nope, retries: x}}, parent: p, colour: red}}\n"
                )
            else:
                lines.append(
                    f"          - {{id: t{t}, role: switch, address: 127.{s // 250}.{s % 250}.{t}, "
                    "labels: {rack: r1}}\n"
                )
    return "".join(lines)


def _shapes() -> dict[str, tuple[str | bytes, str | None]]:
    """name -> (file content, regular expression of the first problem; None: the file is valid)."""
    fifty_mb_line = "          - {id: t, role: switch, address: 127.0.0.1}\n"
    return {
        "alias cross-product": (
            alias_cross_product(),
            r":\d+:\d+: with its aliases expanded the file holds more than [\d,]+ values",
        ),
        "50 MB": (
            HEAD + "members:\n" + fifty_mb_line * (50 * 1024 * 1024 // len(fifty_mb_line)),
            r":\d{5,}:\d+: the file is larger than the limit of 4 MiB \(it has 50\.0 MiB",
        ),
        "5,000-deep nesting": (
            "members: " + "[" * 5000 + "]" * 5000 + "\n",
            r":1:\d+: lists and mappings nested more than \d+ deep",
        ),
        "1,500-deep block nesting": (
            "members:\n" + "".join(" " * i + "- \n" for i in range(1, 1500)),
            r":\d+:\d+: lists and mappings nested more than \d+ deep",
        ),
        "4 MiB of tiny values": (
            "members: [" + "1," * (LIMITS.max_bytes // 2 - 10) + "1]\n",
            r":1:\d+: the file holds more than [\d,]+ values",
        ),
        "4 MiB of NUL": ("members:\n" + "\0" * (LIMITS.max_bytes - 20), r":2:1: character U\+0000"),
        "one 4 MiB string": (
            HEAD + "members:\n  - id: m\n    name: " + "x" * (LIMITS.max_bytes - 200) + "\n",
            r":\d+:\d+: member 'm' has no schools",
        ),
        "200,000 anchors": (
            "x: [" + ", ".join(f"&a{i} {i}" for i in range(200_000)) + "]\nmembers: []\n",
            r":1:\d+: the file holds more than [\d,]+ values",
        ),
        "largest valid fleet": (fleet(LIMITS.max_nodes // 13 // 10 * 10), None),
        "largest broken fleet": (
            fleet(LIMITS.max_nodes // 22 // 10 * 10, broken=True),
            r":\d+:\d+: stopped after 1,000 problems",
        ),
    }


SHAPES = _shapes()


@pytest.mark.parametrize("name", list(SHAPES))
def test_no_file_takes_check_past_two_seconds_or_300_mb(tmp_path, name):
    content, first_problem = SHAPES[name]
    path = tmp_path / "targets.yaml"
    path.write_text(content) if isinstance(content, str) else path.write_bytes(content)
    result = measured_check(path)
    print(
        f"{name}: {path.stat().st_size / 1e6:.2f} MB, cpu {result['cpu']:.2f} s, "
        f"wall {result['wall']:.2f} s, rss {result['rss'] / 1e6:.0f} MB"
    )
    assert result["cpu"] < CPU_SECONDS, result["cpu"]
    assert result["rss"] < MAX_RSS, result["rss"]
    assert "Traceback" not in result["stderr"]
    if first_problem is None:
        assert result["rc"] == 0, result["stderr"][:2000]
        assert "OK:" in result["stdout"]
        return
    assert result["rc"] == 1
    lines = result["stderr"].splitlines()
    assert lines and all(line.startswith(f"{path}:") for line in lines), lines[:5]
    assert any(re.match(re.escape(str(path)) + first_problem, line) for line in lines), lines[:5]


# --- in-process: positions and wording ------------------------------------------------------------


def problems(text: str, environ: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_config_text(text, "t.yaml", environ or {})
    return [str(problem) for problem in caught.value.problems]


def test_control_characters_are_reported_at_their_line():
    text = HEAD + "members:\n  - id: m\x00\n    name: \x07bell\n    schools: []\x1b\n"
    assert problems(text) == [
        "t.yaml:6:10: character U+0000 is not allowed in YAML (a control character: pasted "
        "from a terminal, or a binary file?)",
        "t.yaml:7:11: character U+0007 is not allowed in YAML (a control character: pasted "
        "from a terminal, or a binary file?)",
        "t.yaml:8:16: character U+001B is not allowed in YAML (a control character: pasted "
        "from a terminal, or a binary file?)",
    ]


def test_many_control_characters_are_listed_ten_then_counted():
    found = problems("members: [" + "\x01" * 25 + "]\n")
    assert len(found) == 11
    assert found[0].startswith("t.yaml:1:11: character U+0001")
    assert found[-1] == "t.yaml:1:21: and 15 more characters YAML does not allow, the next one here"


def test_limits_in_process_name_the_place():
    [deep] = problems("members:\n  - " + "[" * 5000 + "]" * 5000 + "\n")
    # the column is that of the 41st bracket, or where libyaml >= 0.2.6 stops at its own limit
    line, column, message = re.fullmatch(r"t\.yaml:(\d+):(\d+): (.*)", deep).groups()
    assert (line, message) == (
        "2",
        "lists and mappings nested more than 40 deep, the limit (targets.yaml needs about 10)",
    )
    assert 43 <= int(column) <= 5 + 5000
    [crossed] = problems(alias_cross_product())
    assert re.fullmatch(
        r"t\.yaml:\d+:\d+: with its aliases expanded .* the limit, reached here .*", crossed
    )
    line = int(crossed.split(":")[1])
    assert alias_cross_product().splitlines()[line - 1].lstrip().startswith("- {id: m")


SECRET = "LiteralPasswordXYZ"


@pytest.mark.parametrize(
    "written",
    [
        f"auth_protocol: {SECRET}",
        f"priv_protocol: {SECRET}",
        f"security_level: {SECRET}",
        f"version: {SECRET}",
        f"version: 12345678{SECRET[:0]}",
        f"username: [{SECRET}]",
    ],
)
def test_values_of_auth_keys_are_never_echoed(written):
    text = (
        "auths:\n  a:\n    version: 3\n    username: u\n    security_level: authPriv\n"
        "    auth_protocol: SHA\n    auth_password: password-1\n    priv_protocol: AES\n"
        "    priv_password: password-2\n"
    )
    key = written.split(":")[0]
    text = re.sub(rf"    {key}: .*\n", f"    {written}\n", text)
    text += (
        "members: [{id: m, schools: [{id: s, targets: [{id: t, role: ap, address: 127.0.0.1}]}]}]\n"
    )
    found = problems(text)
    assert found, text
    rendered = "\n".join(found)
    assert SECRET not in rendered and "12345678" not in rendered
    assert f"'{key}'" in rendered or f"unknown {key}" in rendered


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("comm\udcffunity", "is not valid UTF-8 text"),
        ("community\n", "contains a control character (a line break or tab copied with it?)"),
        ("c" * 256, "is longer than 255 bytes (UTF-8)"),
    ],
)
def test_communities_are_checked_for_what_snmp_can_send(value, reason):
    text = "auths:\n  a: {version: 2c, community: '${C}'}\nmembers: []\n"
    [problem] = problems(text, {"C": value})
    assert problem == f"t.yaml:2:31: 'community' (the value of ${{C}}) {reason}"


def test_non_latin1_secrets_pass_the_check():
    """They are sent as UTF-8 (tests/test_hostile_secrets.py: against a real snmpd)."""
    config = load_config_text(
        "auths:\n  a: {version: 2c, community: gemeenschap-€}\n"
        "  b: {version: 3, username: leraar-ü, security_level: authPriv, auth_protocol: SHA,\n"
        "      auth_password: wachtwoord-€, priv_protocol: AES, priv_password: geheim-€-ü}\n"
        "members: []\n",
        "t.yaml",
        {},
    )
    assert config.auths["a"].community == "gemeenschap-€"
    assert config.auths["b"].priv_password == "geheim-€-ü"


def test_v3_names_must_fit_snmp():
    text = (
        "auths:\n  a: {version: 3, username: " + "u" * 33 + ", security_level: noAuthNoPriv}\n"
        "members: []\n"
    )
    assert problems(text) == ["t.yaml:2:29: 'username' is longer than 32 bytes (UTF-8)"]


# --- a live collector: any failed load is a reported reload failure -------------------------------

LIVE = """\
defaults:
  ping: {interval: 1s, count: 1, timeout: 300ms}
members:
  - id: coop
    schools:
      - id: school-a
        targets:
          - {id: t1, role: router, address: 127.0.0.31, snmp: false}
"""
T2 = "          - {id: t2, role: switch, address: 127.0.0.32, snmp: false}\n"


def _reload_ok(proc: CollectorProcess) -> float | None:
    return proc.value("schoolnet_config_last_reload_successful")


def _survives_and_recovers(proc: CollectorProcess, config: Path) -> None:
    """The watcher still watches and the HTTP reload still answers after the failure."""
    started = time.monotonic()
    status, body = proc.post("/-/reload")
    assert status == 400 and "the running config stays" in body
    assert time.monotonic() - started < 5
    assert proc.value("schoolnet_ping_requests_total", target="t1")  # still probing
    config.write_text(LIVE + T2)
    proc.wait_for(
        lambda: _reload_ok(proc) == 1 and proc.value("schoolnet_ping_requests_total", target="t2")
    )


LIVE_SHAPES = {
    "5,000-deep nesting": (
        LIVE + "          - " + "[" * 5000 + "]" * 5000 + "\n",
        r":9:\d+: lists and mappings nested more than 40 deep",
    ),
    "alias cross-product": (alias_cross_product(), r":\d+:\d+: with its aliases expanded"),
    "50 MB": (LIVE + "# " + "x" * 50_000_000 + "\n", r":9:\d+: the file is larger than"),
}


@pytest.mark.parametrize("shape", list(LIVE_SHAPES))
def test_hostile_file_on_live_reload_is_a_reload_failure(tmp_path, shape):
    """Before: 5,000-deep nesting raised a RecursionError that killed the file watcher for good,
    POST /-/reload never answered and the reload gauge stayed 1; the cross-product and the 50 MB
    file held the reload for minutes and gigabytes."""
    content, problem = LIVE_SHAPES[shape]
    config = tmp_path / "targets.yaml"
    config.write_text(LIVE)
    proc = CollectorProcess(
        config, extra_args=["--watch-interval", "200ms", "--web.enable-lifecycle"]
    ).start()
    try:
        proc.wait_for(lambda: proc.value("schoolnet_ping_requests_total", target="t1"))
        config.write_text(content)  # the watcher may see it half-written first: wait for all
        proc.wait_for(lambda: re.search(re.escape(str(config)) + problem, proc.log()), timeout=15)
        assert _reload_ok(proc) == 0
        assert "rejected" in proc.get("/")[1].decode()
        _survives_and_recovers(proc, config)
        assert "Traceback" not in proc.log()
    finally:
        proc.stop()


# Loaded into the collector before anything else (sitecustomize): a loader that breaks in a way
# no check foresees, and quotes a secret in its message, as a library's exception might.
_BROKEN_LOADER = """\
import monitor.config.loader as loader

_real = loader.load_config


def load_config(path, *args, **kwargs):
    with open(path, encoding="utf-8") as file:
        text = file.read()
    if "# explode" in text:
        raise RuntimeError("loader bug quoting the file: " + text)
    return _real(path, *args, **kwargs)


loader.load_config = load_config
"""


def test_any_failure_of_a_load_is_a_reported_reload_failure(tmp_path):
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(_BROKEN_LOADER)
    config = tmp_path / "targets.yaml"
    config.write_text(LIVE)
    proc = CollectorProcess(
        config,
        env={"PYTHONPATH": f"{hook}{os.pathsep}{REPO}"},
        extra_args=["--watch-interval", "200ms", "--web.enable-lifecycle"],
    ).start()
    try:
        proc.wait_for(lambda: proc.value("schoolnet_ping_requests_total", target="t1"))
        config.write_text(LIVE + "# explode Geheim-Qz81-xyz\n")
        proc.wait_for(lambda: _reload_ok(proc) == 0)
        page = proc.get("/")[1].decode()
        assert "could not be loaded (RuntimeError)" in page
        log = proc.log()
        assert 'msg="config reload failed, keeping the running config"' in log
        assert "RuntimeError" in log and "Geheim-Qz81-xyz" not in log + page
        _survives_and_recovers(proc, config)
    finally:
        proc.stop()
