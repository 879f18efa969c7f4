"""targets.yaml as hostile input: no file of any shape may take `monitor check` past 2 s of CPU
or 300 MB, and each limit it hits is a FILE:LINE:COL problem.

A merge request in CI is exactly that input. Each shape here cost minutes and gigabytes before
the loader had limits (a 3.7 KB alias cross-product: over 120 s and 2.9 GB; 50 MB: 260 s and
6.5 GB; 5,000-deep nesting: a RecursionError traceback). `monitor check` runs as a real
subprocess, measured by `resource.getrusage` in a small parent process of its own.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from monitor.config.yamltree import LIMITS

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
