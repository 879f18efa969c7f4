"""The documentation says what the code does: metric names, the README's commands."""

from __future__ import annotations

import re
from pathlib import Path

from monitor.families import FAMILIES, Source, by_source

REPO = Path(__file__).resolve().parent.parent


def documented() -> set[str]:
    text = (REPO / "docs" / "metrics.md").read_text()
    return set(re.findall(r"`(schoolnet_[a-z0-9_]+)`", text))


def test_every_family_the_collector_can_emit_is_documented():
    missing = set(FAMILIES) - documented()
    assert not missing, f"not in docs/metrics.md: {sorted(missing)}"


def test_docs_name_no_family_that_does_not_exist():
    stale = {n for n in documented() - set(FAMILIES) if not n.endswith(("_count", "_sum"))}
    assert not stale, f"docs/metrics.md names families the collector never emits: {sorted(stale)}"


def test_collector_self_metrics_are_exposed_as_documented(tmp_path):
    from monitor.exposition import Exposition
    from monitor.store import ResultStore

    text = Exposition(ResultStore()).render().decode()
    for family in by_source(Source.COLLECTOR):
        assert f"# TYPE {family.name} {family.type}\n" in text


def readme_command(heading: str) -> str:
    """The first line of the first ```sh block under a README heading (what .ci/run runs)."""
    readme = (REPO / "README.md").read_text()
    section = readme[readme.index(heading) :]
    return re.search(r"^```sh\n(.*)$", section, re.M)[1]


def test_readme_commands_are_what_ci_runs():
    """.ci/run reads both commands from the README and runs them with Debian's python3 first on
    PATH; its package list covers what they install."""
    ci = (REPO / ".ci" / "run").read_text()
    assert 'readme_command "## Try it"' in ci and 'readme_command "## Run the tests"' in ci
    assert 'sh -c "$test_command"' in ci and 'sh -c "$lab_command"' in ci
    assert re.search(r"^export PATH=/usr/bin:", ci, re.M)
    packages = re.search(r"packages=\(([^)]*)\)", ci, re.S).group(1).split()
    lab = readme_command("## Try it")
    tests = readme_command("## Run the tests")
    for command in (lab, tests):
        for package in re.search(r"apt-get install -y ([^&]+)&&", command).group(1).split():
            assert package in packages, f"README installs {package}, .ci/run does not"


def test_readme_commands_install_into_a_virtual_environment():
    """Debian refuses a system-wide pip install (PEP 668) and ships no pip in its base Python:
    both commands make a venv with Debian's python3-venv and use it."""
    for heading, extra, last in (
        ("## Try it", "'.[lab]'", "monitor lab"),
        ("## Run the tests", "-e '.[test]'", "python3 -m pytest -q"),
    ):
        command = readme_command(heading)
        steps = [step.strip() for step in command.split("&&")]
        assert steps[0].startswith("apt-get install -y python3-venv "), heading
        assert steps[1:4] == [
            "python3 -m venv .venv",
            ". .venv/bin/activate",
            f"pip install {extra}",
        ]
        assert steps[-1] == last
        assert "python3 -m pip install" not in command and "--break-system-packages" not in command
