"""`/runbooks`: docs/runbooks.md served by the collector, one anchor per alert, safe to render, and
present in an installed wheel (not only in a checkout)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import yaml

from monitor import runbooks
from tests.collector_proc import CollectorProcess

REPO = Path(__file__).resolve().parent.parent
RULES = REPO / "deploy" / "prometheus" / "rules"


def alert_names() -> set[str]:
    names = set()
    for path in RULES.glob("*.yml"):
        for group in yaml.safe_load(path.read_text())["groups"]:
            names.update(rule["alert"] for rule in group["rules"] if "alert" in rule)
    return names


def anchors(page: str) -> set[str]:
    return set(re.findall(r'<h[1-6] id="([^"]+)"', page))


def test_every_alert_has_its_anchor_on_the_served_page(tmp_path):
    config = tmp_path / "targets.yaml"
    config.write_text(
        "members:\n  - id: coop\n    schools:\n      - id: school-a\n        targets:\n"
        "          - {id: t1, role: router, address: 127.0.0.21, snmp: false}\n"
    )
    collector = CollectorProcess(config).start()
    try:
        status, body, headers = collector.get("/runbooks")
    finally:
        collector.stop()
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    names = alert_names()
    assert len(names) >= 10  # the rules were found
    missing = {name for name in names if name.lower() not in anchors(body.decode())}
    assert not missing, f"alerts without a runbook section: {sorted(missing)}"


def test_markdown_is_rendered_safely_with_github_anchors():
    html = runbooks.render_markdown(
        "## SchoolLinkDown\n\n## Two Words, punctuated!\n\n## SchoolLinkDown\n\n"
        "<script>alert(1)</script>\n\n[x](javascript:alert(1)) and [y](#schoollinkdown)\n\n"
        "| a | b |\n|---|---|\n| `c` | d |\n"
    )
    assert anchors(html) == {"schoollinkdown", "two-words-punctuated", "schoollinkdown-1"}
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert 'href="javascript' not in html and 'href="#schoollinkdown"' in html
    assert "<table>" in html and "<code>c</code>" in html


def dockerfile_sources() -> list[str]:
    """What the collector image's build copies from the repository."""
    sources = []
    for line in (REPO / "Dockerfile").read_text().splitlines():
        if line.startswith("COPY "):
            sources.extend(line.split()[1:-1])
    return sources


def test_the_image_build_carries_the_runbooks_and_serves_them_without_a_checkout(tmp_path):
    """A wheel built (as `pip install .` in the Dockerfile builds it) from exactly what the
    Dockerfile copies: it carries the runbooks, and the installed package serves them with no
    docs/ beside it. (Built in a copy: the checkout gets no build/ directory.)"""
    source = tmp_path / "src"
    for name in dockerfile_sources():
        if (REPO / name).is_dir():
            shutil.copytree(
                REPO / name, source / name, ignore=shutil.ignore_patterns("__pycache__")
            )
        else:
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, source / name)
    wheels = tmp_path / "wheels"
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", str(source), "-w", str(wheels)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    [wheel] = wheels.glob("*.whl")
    installed = tmp_path / "installed"
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(installed)
    packaged = installed / "monitor" / "runbooks.md"
    assert packaged.read_text() == (REPO / "docs" / "runbooks.md").read_text()
    # the built package, with no docs/ beside it, renders the packaged copy
    page = subprocess.run(
        [
            sys.executable,
            "-c",
            "from monitor import runbooks as r; print(r.__file__, r.page().decode())",
        ],
        cwd=tmp_path,
        env={"PYTHONPATH": str(installed), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert not (installed / "docs").exists()
    assert page.startswith(str(installed / "monitor" / "runbooks.py"))
    assert {name.lower() for name in alert_names()} <= anchors(page)
