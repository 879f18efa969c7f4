"""The metric contract (monitor/families.py) and what is derived from it: reserved label names in
`monitor check`, one label set per family in the exposition, the tables of docs/metrics.md."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from bench.exposition import synthetic_store
from monitor.config.loader import ConfigError, load_config_text
from monitor.exposition import Exposition
from monitor.families import (
    BASE_LABELS,
    FAMILIES,
    SCHOOL_LABELS,
    Family,
    Source,
    by_source,
    render_docs,
    reserved_labels,
)

REPO = Path(__file__).resolve().parent.parent
ONE_TARGET = """\
defaults: {{snmp: false}}
members:
  - id: m
    schools:
      - id: s
        targets:
          - id: t
            role: switch
            address: 127.0.0.1
            labels: {{{label}: closet-3}}
"""


def _check(label: str) -> list[str]:
    try:
        load_config_text(ONE_TARGET.format(label=label), "t.yaml", {})
    except ConfigError as exc:
        return [str(p) for p in exc.problems]
    return []


def _per_target_labels() -> set[str]:
    names = set(BASE_LABELS)
    for family in FAMILIES.values():
        if family.source.per_target:
            names.update(family.labels)
    return names


def test_a_free_label_name_passes():
    assert _check("building") == []


@pytest.mark.parametrize("name", sorted(_per_target_labels() | {"instance", "job"}))
def test_check_refuses_every_label_name_a_per_target_family_has(name):
    reason = reserved_labels()[name]
    assert _check(name) == [f"t.yaml:10:22: label '{name}' is reserved ({reason})"]


def test_reasons_name_the_family_that_has_the_label():
    reserved = reserved_labels()
    assert reserved["address"] == "schoolnet_target_info has it"
    assert reserved["sensor"] == "schoolnet_device_temperature_celsius has it"
    assert reserved["name"] == "schoolnet_target_info has it"
    for name, reason in reserved.items():
        family = reason.removesuffix(" has it")
        if family in FAMILIES:
            assert name in FAMILIES[family].labels


def test_monitor_check_reports_the_clash_where_it_is_written(tmp_path):
    path = tmp_path / "targets.yaml"
    path.write_text(ONE_TARGET.format(label="address"))
    result = subprocess.run(
        [sys.executable, "-m", "monitor", "check", str(path)],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
    )
    assert result.returncode == 1
    assert result.stderr == (
        f"{path}:10:22: label 'address' is reserved (schoolnet_target_info has it)\n"
    )


def test_every_family_has_one_label_set_and_promtool_agrees():
    """A static label on one target must not clash with any family's own labels: every sample of
    a family carries the same names, each once (the parser would reject a duplicate)."""
    store, _ = synthetic_store(20)
    text = Exposition(store).render().decode()
    seen: dict[str, set[frozenset[str]]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            seen.setdefault(family.name, set()).add(frozenset(sample.labels))
    for name, spec in FAMILIES.items():
        metric = name.removesuffix("_total")
        if metric not in seen:
            continue
        base = {
            Source.SCHOOL: set(SCHOOL_LABELS),
            Source.COLLECTOR: set(),
        }.get(spec.source, {*BASE_LABELS, "building"})
        want = base | set(spec.labels)
        assert seen[metric] == {frozenset(want)}, name
    result = subprocess.run(
        ["promtool", "check", "metrics"], input=text.encode(), capture_output=True
    )
    assert result.returncode == 0, result.stderr


def test_every_per_target_family_the_synthetic_fleet_fills_is_rendered():
    """The exposition renders from the table: a family of every per-target source appears."""
    store, _ = synthetic_store(20)
    text = Exposition(store).render().decode()
    names = {line.split("{")[0].split(" ")[0] for line in text.splitlines() if line[:1] != "#"}
    for source in (Source.TARGET, Source.PING, Source.SNMP, Source.DEVICE, Source.INTERFACE):
        for family in by_source(source):
            assert family.name in names, family.name
    for family in by_source((Source.COLLECTOR, Source.SCHOOL)):
        assert f"# TYPE {family.name} {family.type}\n" in text


def test_docs_tables_are_generated_from_the_table():
    path = REPO / "docs" / "metrics.md"
    text = path.read_text()
    assert render_docs(text) == text, "run: python3 -m monitor.families"
    blocks = re.findall(r"<!-- families: (\w+) ", text)
    assert sorted(blocks) == ["collector", "interface", "profile", "school", "target"]
    for name, family in FAMILIES.items():
        row = f"| `{name}` | {family.type} |"
        assert text.count(row) == 1, name


def test_the_docs_generator_rewrites_a_stale_table(tmp_path):
    stale = (
        (REPO / "docs" / "metrics.md")
        .read_text()
        .replace("| `schoolnet_ping_up` | gauge |", "| `schoolnet_ping_up` | counter |")
    )
    path = tmp_path / "metrics.md"
    path.write_text(stale)
    result = subprocess.run(
        [sys.executable, "-m", "monitor.families", str(path)],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert path.read_text() == (REPO / "docs" / "metrics.md").read_text()


def test_profile_families_are_the_ones_profiles_may_fill():
    from monitor.profiles import registry

    allowed = {f.name for f in by_source(Source.PROFILE)}
    used = {m.family for p in registry().profiles.values() for m in p.metrics.values()}
    assert used <= allowed
    assert len(used) >= len(allowed) - 1  # (PoE per port: only in recordings with PoE ports)


def test_a_clock_family_is_rendered_anew_on_every_scrape():
    """A value that changes with the time (a calendar window), not with a new result, is never
    served from the cache."""
    now = {"down": 0}
    family = Family(
        "schoolnet_test_expected_down",
        "gauge",
        "A test family.",
        Source.CLOCK,
        value=lambda state: now["down"] if state.target.id == "sw" else None,
    )
    store, _ = synthetic_store(20)
    exposition = Exposition(store, families={**FAMILIES, family.name: family})

    def lines() -> list[str]:
        text = exposition.render().decode()
        assert f"# TYPE {family.name} gauge\n" in text
        return [line for line in text.splitlines() if line.startswith(family.name + "{")]

    first = lines()
    assert len(first) == 2 and all('target="sw"' in x and x.endswith(" 0") for x in first)
    now["down"] = 1  # nothing new in the store: only the clock moved
    assert [x.removesuffix(" 1") for x in lines()] == [x.removesuffix(" 0") for x in first]
