"""The wheel: built the way pip builds it, with no deprecation warning from the build backend,
SPDX license metadata (PEP 639) with the license file inside, and the example configuration
the systemd install copies to /etc/schoolnet-monitor/targets.yaml."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import zipfile

from tests.prom import REPO

PYPROJECT = REPO / "pyproject.toml"
# What pip and setuptools print that is not about this package's metadata.
HARMLESS = (
    "byte-compiling is disabled",  # PYTHONDONTWRITEBYTECODE in the environment
    "Running pip as the 'root' user",
    "pip version",
)


def test_pyproject_uses_spdx_license_metadata():
    text = PYPROJECT.read_text()
    assert re.search(r'^requires = \["setuptools>=(\d+)"\]$', text, re.M)
    assert int(re.search(r'"setuptools>=(\d+)"', text)[1]) >= 77  # PEP 639 support
    assert re.search(r'^license = "Apache-2\.0"$', text, re.M)
    assert re.search(r'^license-files = \["LICENSE"\]$', text, re.M)
    assert "License ::" not in text  # superseded by the expression; setuptools warns


def test_wheel_builds_without_warnings_and_carries_license_and_example(tmp_path):
    source = tmp_path / "src"
    source.mkdir()
    for name in ("pyproject.toml", "setup.py", "MANIFEST.in", "README.md", "LICENSE"):
        shutil.copy(REPO / name, source / name)
    (source / "docs").mkdir()
    shutil.copy(REPO / "docs" / "runbooks.md", source / "docs" / "runbooks.md")
    shutil.copytree(
        REPO / "monitor", source / "monitor", ignore=shutil.ignore_patterns("__pycache__")
    )
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-v", "--no-deps", str(source), "-w", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    warnings = [
        line
        for line in output.replace(str(tmp_path), "TMP").splitlines()
        if re.search(r"warn|deprecat", line, re.I) and not any(h in line for h in HARMLESS)
    ]
    assert warnings == []
    [wheel] = tmp_path.glob("schoolnet_monitor-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        [metadata] = [n for n in names if n.endswith(".dist-info/METADATA")]
        headers = archive.read(metadata).decode().split("\n\n", 1)[0]
        example = archive.read("monitor/examples/targets.yaml").decode()
        runbooks = archive.read("monitor/runbooks.md").decode()  # served at /runbooks
    assert "License-Expression: Apache-2.0" in headers.splitlines()
    assert "License-File: LICENSE" in headers.splitlines()
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
    assert "Classifier: License ::" not in headers
    assert example == (REPO / "monitor" / "examples" / "targets.yaml").read_text()
    assert runbooks == (REPO / "docs" / "runbooks.md").read_text()
    assert not any(n.startswith(("tests/", "deploy/")) for n in names)
