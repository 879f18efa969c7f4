"""`monitor check --offline`: a targets.yaml change checked in CI, where the secrets are not.

Run as the cooperative's CI would: the real command line in a subprocess, with an environment that
holds nothing but PATH (`env -i PATH=...`), on the shipped targets.yaml and on edits of it.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
SHIPPED = ROOT / "targets.yaml"
SECRETS = ("KIEN_SNMP_AUTH_PASSWORD", "KIEN_SNMP_PRIV_PASSWORD", "KIEN_SNMP_COMMUNITY")


def check(*args: str, **environ: str) -> subprocess.CompletedProcess:
    """`python -m monitor check ARGS` from the checkout, with only PATH (and `environ`) set."""
    return subprocess.run(
        [sys.executable, "-m", "monitor", "check", *args],
        cwd=ROOT,
        env={"PATH": os.environ["PATH"], **environ},
        capture_output=True,
        text=True,
        timeout=60,
    )


def where(text: str, line_text: str, value: str) -> tuple[int, int]:
    """Line and column (1-based) of `value` on the line that contains `line_text`."""
    for number, line in enumerate(text.splitlines(), 1):
        if line_text in line:
            return number, line.index(value, line.index(line_text)) + 1
    raise AssertionError(f"no line with {line_text!r}")


def edited(tmp_path: Path, *replacements: tuple[str, str]) -> tuple[Path, str]:
    text = SHIPPED.read_text()
    for old, new in replacements:
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    path = tmp_path / "targets.yaml"
    path.write_text(text)
    return path, text


def test_the_shipped_file_passes_offline_with_an_empty_environment():
    result = check("--offline", "targets.yaml")
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    summary, unset = result.stdout.splitlines()
    assert summary.startswith("targets.yaml: OK: 7 members, 27 schools, ")
    # the names it could not check, never a value
    assert unset == "targets.yaml: offline: not checked (unset): " + ", ".join(
        f"${{{name}}}" for name in SECRETS
    )


def test_offline_checks_the_same_file_as_online_with_the_secrets():
    """Nothing is dropped offline: the summary (members, schools, targets by role, polled) is the
    one `monitor check` gives with the secrets set."""
    online = check("targets.yaml", **dict.fromkeys(SECRETS, "demo-secret-1"))
    offline = check("--offline", "targets.yaml")
    assert online.returncode == 0, online.stderr
    assert online.stdout.splitlines() == offline.stdout.splitlines()[:1]
    with_secrets = check("--offline", "targets.yaml", **dict.fromkeys(SECRETS, "demo-secret-1"))
    assert with_secrets.stdout == online.stdout  # nothing unset: nothing more to say


def test_without_offline_the_missing_variables_are_still_reported():
    result = check("targets.yaml")
    assert result.returncode == 1
    text = SHIPPED.read_text()
    expected = []
    for name in SECRETS:
        line, column = where(text, f"${{{name}}}", "${")
        expected.append(f"targets.yaml:{line}:{column}: environment variable {name} is not set")
    assert result.stderr.splitlines()[: len(SECRETS)] == expected
    assert "monitor check --offline" in result.stderr.splitlines()[-1]
    assert result.stdout == ""


def test_structure_references_and_reserved_names_are_still_checked_offline(tmp_path):
    path, text = edited(
        tmp_path,
        ("parent: rtr-regenboog}", "parent: rtr-nowhere}"),
        (
            "address: 127.1.1.3, vendor: hpe, parent: sw-leerpark-core, labels: {building: A}",
            "address: 127.1.1.3, vendor: hpe, parent: sw-leerpark-core, labels: {address: A}",
        ),
        ("address: 127.1.1.4, vendor: hpe", "address: 127.1.1.4, vendr: hpe"),
    )
    result = check("--offline", str(path))
    assert result.returncode == 1
    assert result.stdout == ""
    problems = result.stderr.splitlines()
    line, column = where(text, "labels: {address: A}", "address: A")
    assert f"{path}:{line}:{column}: label 'address' is reserved" in "\n".join(problems)
    line, column = where(text, "vendr: hpe", "vendr")
    assert f"{path}:{line}:{column}: unknown key 'vendr' in target 'sw-leerpark-a2'" in "\n".join(
        problems
    )
    line, column = where(text, "parent: rtr-nowhere", "rtr-nowhere")
    assert f"{path}:{line}:{column}: unknown parent 'rtr-nowhere' in school 'opod-regenboog'" in (
        problems
    )
    assert len(problems) == 3
    assert all(re.match(rf"{re.escape(str(path))}:\d+:\d+: ", p) for p in problems)


def test_a_reference_to_an_auth_that_does_not_exist_is_still_an_error_offline(tmp_path):
    path, text = edited(
        tmp_path,
        (
            "parent: rtr-overkamp, snmp: {auth: legacy-v2c}",
            "parent: rtr-overkamp, snmp: {auth: v2}",
        ),
    )
    result = check("--offline", str(path))
    assert result.returncode == 1
    line, column = where(text, "snmp: {auth: v2}", "v2}")
    assert result.stderr.splitlines() == [
        f"{path}:{line}:{column}: unknown auth 'v2'; defined are 'kien-v3', 'legacy-v2c'"
    ]


@pytest.mark.parametrize("value", ["short7", ""])
def test_a_variable_that_is_set_is_still_checked_and_never_echoed(value):
    """Offline forgives only what is absent: a set value is validated like online, and its
    problem names the variable, never the value."""
    result = check("--offline", "targets.yaml", KIEN_SNMP_AUTH_PASSWORD=value)
    assert result.returncode == 1
    line, column = where(SHIPPED.read_text(), "${KIEN_SNMP_AUTH_PASSWORD}", "${")
    source = "the value of ${KIEN_SNMP_AUTH_PASSWORD}"
    problem = (
        f"'auth_password' ({source}) must be at least 8 characters long"
        if value
        else f"'auth_password' must not be empty ({source})"
    )
    assert result.stderr.splitlines() == [f"targets.yaml:{line}:{column}: {problem}"]
    if value:
        assert value not in result.stderr + result.stdout


def test_offline_is_an_option_of_check_only():
    result = subprocess.run(
        [sys.executable, "-m", "monitor", "run", "--offline"],
        cwd=ROOT,
        env={"PATH": os.environ["PATH"]},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "--offline" in result.stderr


def test_the_onboarding_guide_shows_what_the_command_prints():
    doc = (ROOT / "docs" / "onboarding.md").read_text()
    block = re.search(
        r"```console\n\$ (monitor check --offline targets\.yaml)\n(.*?)```", doc, re.S
    )
    assert block, "docs/onboarding.md lost its example"
    result = check(*block.group(1).split()[2:])
    assert result.returncode == 0
    assert result.stdout == block.group(2)


VARIABLES_EVERYWHERE = """\
defaults: {snmp: {auth: v2}}
auths:
  v2: {version: 2c, community: "${COMM}"}
members:
  - id: m
    schools:
      - id: s
        targets:
          - {id: r, role: router, address: "${ADDR}", snmp: {timeout: "${TIMEOUT}"}}
          - {id: u, role: switch, address: 127.0.0.2, parent: "${PARENT}"%s}
          - {id: l, role: link, address: 127.0.0.3, bandwidth: "${BW}",
             via: {target: u, interface: "${IF}"}}
"""


def test_variables_anywhere_are_skipped_offline_and_what_is_around_them_still_checked(tmp_path):
    """Not only secrets: an address, a duration, a reference from an unset variable is not
    checked offline (it would be online, with the value), and a real mistake next to them is
    still found. A target whose own address, duration or bandwidth is such a variable cannot be
    built without the value: it is left out of the summary's counts (docs/onboarding.md)."""
    path = tmp_path / "targets.yaml"
    path.write_text(VARIABLES_EVERYWHERE % "")
    result = check("--offline", str(path))
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0] == (
        f"{path}: OK: 1 member, 1 school, 1 target (switch 1); 1 polled over SNMP, 0 ping-only"
    )
    names = ("COMM", "ADDR", "TIMEOUT", "PARENT", "BW", "IF")
    assert result.stdout.splitlines()[1].endswith(", ".join(f"${{{n}}}" for n in names))
    path.write_text(VARIABLES_EVERYWHERE % ", bandwidth: 1Gbit")
    result = check("--offline", str(path))
    assert result.returncode == 1
    line, column = where(path.read_text(), "bandwidth: 1Gbit", "bandwidth")
    assert result.stderr.splitlines() == [
        f"{path}:{line}:{column}: 'bandwidth' is only for links (role: link), not for role switch"
    ]
    online = check(str(path))
    assert online.returncode == 1 and len(online.stderr.splitlines()) == len(names) + 2


def test_a_rule_that_does_not_depend_on_the_value_still_holds_offline(tmp_path):
    path = tmp_path / "targets.yaml"
    path.write_text(
        "members:\n  - id: m\n    schools:\n      - id: s\n        targets:\n"
        '          - {id: "${ID}", role: switch, address: 127.0.0.1, snmp: false}\n'
    )
    result = check("--offline", str(path))
    assert result.returncode == 1
    line, column = where(path.read_text(), '"${ID}"', '"')
    assert result.stderr.splitlines() == [
        f"{path}:{line}:{column}: 'id' must be written literally, not taken from ${{...}}"
    ]
