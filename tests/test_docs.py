"""The documentation says what the code does: metric names, the README's commands."""

from __future__ import annotations

import re
from pathlib import Path

from monitor.exposition import FAMILY

REPO = Path(__file__).resolve().parent.parent
COLLECTOR_FAMILIES = {
    "schoolnet_config_last_reload_successful",
    "schoolnet_config_last_reload_success_timestamp_seconds",
    "schoolnet_collector_schedule_delay_seconds",
    "schoolnet_collector_rounds_skipped_total",
    "schoolnet_collector_snmp_requests_total",
    "schoolnet_collector_snmp_varbinds_total",
    "schoolnet_collector_targets",
}


def documented() -> set[str]:
    text = (REPO / "docs" / "metrics.md").read_text()
    return set(re.findall(r"`(schoolnet_[a-z0-9_]+)`", text))


def test_every_family_the_collector_can_emit_is_documented():
    emitted = set(FAMILY) | COLLECTOR_FAMILIES
    missing = emitted - documented()
    assert not missing, f"not in docs/metrics.md: {sorted(missing)}"


def test_docs_name_no_family_that_does_not_exist():
    emitted = set(FAMILY) | COLLECTOR_FAMILIES
    stale = {name for name in documented() - emitted if not name.endswith(("_count", "_sum"))}
    assert not stale, f"docs/metrics.md names families the collector never emits: {sorted(stale)}"


def test_collector_self_metrics_are_exposed_as_documented(tmp_path):
    from monitor.exposition import Exposition
    from monitor.store import ResultStore

    text = Exposition(ResultStore()).render().decode()
    for name in COLLECTOR_FAMILIES:
        assert f"# TYPE {name} " in text


def test_readme_test_command_is_what_ci_runs():
    readme = (REPO / "README.md").read_text()
    ci = (REPO / ".ci" / "run").read_text()
    command = next(line for line in readme.splitlines() if line.startswith("apt-get install"))
    packages = re.search(r"packages=\(([^)]*)\)", ci, re.S).group(1).split()
    for package in re.search(r"apt-get install -y ([^&]+)&&", command).group(1).split():
        assert package in packages, f"README installs {package}, .ci/run does not"
    assert (
        "python3 -m pip install -e '.[test]'" in command
        and "python3 -m pip install -q -e '.[test]'" in ci
    )
    assert command.endswith("python3 -m pytest -q") and "\npython3 -m pytest -q\n" in ci
