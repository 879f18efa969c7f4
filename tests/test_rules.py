"""Prometheus configuration and rules: promtool's checks, the rule unit tests, and the contract.

The unit tests themselves (deploy/prometheus/tests/*.yml) say when each alert fires and when it
must stay quiet; here they are run, shown to cover every alert, and shown to catch the mistakes
they exist for (mutated copies of the rules must fail them).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.prom import (
    PROMETHEUS_CONFIG,
    REPO,
    RULE_TESTS_DIR,
    RULES_DIR,
    documented_metrics,
    metric_names,
    parse_duration,
    recorded_metrics,
    shortened_rules,
)

# PRODUCT.md's alert table: the names on-call learns.
PRODUCT_ALERTS = {
    "SchoolLinkDown",
    "SchoolLinkDegraded",
    "LinkSaturated",
    "DeviceDown",
    "DeviceRebooted",
    "SNMPPollFailing",
    "InterfaceErrors",
    "CollectorDown",
    "CollectorConfigReloadFailed",
    "DeviceNotSwitchedOff",  # issue 14: an expected-off device that answers
}
# Inhibition-only alerts (severity none, never notified).
INHIBITION_ALERTS = {"ParentDown", "SchoolMaintenance"}
# About a whole school, not one of its targets.
SCHOOL_ALERTS = {"SchoolMaintenance"}
COLLECTOR_ALERTS = {"CollectorDown", "CollectorConfigReloadFailed"}
# runbook_url: the deployment's base URL (Prometheus' external label runbook_base_url, see
# prometheus.yml), else the collector's own /runbooks page; one anchor per alert.
RUNBOOK_URL = '{{ or $externalLabels.runbook_base_url "http://localhost:9430/runbooks" }}#'
# The platform's own alerts (rules/platform-alerts.yml, issue 11): no member/school, routed to the
# platform team; Watchdog always fires.
PLATFORM_ALERTS = {
    "Watchdog",
    "AlertmanagerFailedToSendAlerts",
    "PrometheusNotConnectedToAlertmanagers",
    "PrometheusErrorSendingAlertsToAnyAlertmanager",
    "PrometheusNotificationQueueRunningFull",
    "PrometheusRuleFailures",
    "PrometheusMissingRuleEvaluations",
    "PrometheusStorageNearRetentionSize",
    "CollectorScrapeFailing",
    "CollectorOverloaded",
}
ALWAYS_FIRING = {"Watchdog"}
RUNBOOKS = REPO / "docs" / "runbooks.md"


def rules(kind: str) -> list[dict]:
    found = []
    for path in sorted(RULES_DIR.glob("*.yml")):
        for group in yaml.safe_load(path.read_text())["groups"]:
            found.extend(r for r in group["rules"] if kind in r)
    return found


def promtool(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(["promtool", *args], capture_output=True, text=True, cwd=cwd)


def rule_test_files() -> list[Path]:
    return sorted(RULE_TESTS_DIR.glob("*.yml"))


def test_promtool_check_config_passes_and_loads_the_rule_files():
    result = promtool("check", "config", str(PROMETHEUS_CONFIG))
    assert result.returncode == 0, result.stdout + result.stderr
    files = {p.name for p in RULES_DIR.glob("*.yml")}
    assert len(files) >= 2
    for name in files:
        assert f"rules/{name}" in result.stdout  # rule_files' glob found it
    assert "WARNING" not in result.stdout + result.stderr


def test_collector_scrape_settings():
    config = yaml.safe_load(PROMETHEUS_CONFIG.read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert set(jobs) == {"schoolnet", "schoolnet-health", "prometheus", "alertmanager"}
    collector = jobs["schoolnet"]
    assert collector["static_configs"] == [{"targets": ["collector:9430"]}]
    # TLS with basic auth (test_scrape_tls.py scrapes a real TLS endpoint with these settings)
    assert collector["scheme"] == "https"
    assert collector["basic_auth"]["username"] == "prometheus"
    assert collector["basic_auth"]["password_file"].startswith("/etc/prometheus/secrets/")
    assert collector["tls_config"]["ca_file"].startswith("/etc/prometheus/secrets/")
    assert config["global"]["external_labels"] == {
        "runbook_base_url": "${SCHOOLNET_RUNBOOK_BASE_URL}"
    }
    assert parse_duration(collector["scrape_interval"]) == 30
    assert parse_duration(collector["scrape_timeout"]) == 25
    assert config["rule_files"] == ["rules/*.yml"]
    assert config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] == [
        "alertmanager:9093"
    ]


def test_the_health_job_scrapes_the_collector_the_way_the_collector_job_does():
    """CollectorScrapeFailing joins the two jobs on `instance`: same targets, and (once the
    collector is scraped over TLS with credentials) the same scheme, TLS and authentication."""
    jobs = {
        job["job_name"]: job
        for job in yaml.safe_load(PROMETHEUS_CONFIG.read_text())["scrape_configs"]
    }
    collector, health = jobs["schoolnet"], jobs["schoolnet-health"]
    assert health["metrics_path"] == "/-/healthy"
    for key in (
        "static_configs",
        "file_sd_configs",
        "scheme",
        "tls_config",
        "basic_auth",
        "authorization",
    ):
        assert health.get(key) == collector.get(key), key
    assert parse_duration(health["scrape_timeout"]) < parse_duration(collector["scrape_timeout"])


def test_promtool_check_rules_is_clean():
    result = promtool("check", "rules", *map(str, sorted(RULES_DIR.glob("*.yml"))))
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("SUCCESS") == len(list(RULES_DIR.glob("*.yml")))
    assert "WARNING" not in result.stdout + result.stderr


def test_promtool_rule_unit_tests_pass():
    files = rule_test_files()
    assert len(files) >= 3
    result = promtool("test", "rules", *map(str, files))
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("SUCCESS") == len(files)


def test_every_product_alert_exists_and_nothing_else():
    names = {r["alert"] for r in rules("alert")}
    assert names == PRODUCT_ALERTS | INHIBITION_ALERTS | PLATFORM_ALERTS


def test_every_alert_has_labels_annotations_and_a_runbook_section():
    anchors = {
        re.sub(r"[^a-z0-9 -]", "", line[3:].strip().lower()).replace(" ", "-")
        for line in RUNBOOKS.read_text().splitlines()
        if line.startswith("## ")
    }
    for rule in rules("alert"):
        name = rule["alert"]
        severity = rule["labels"]["severity"]
        if name in INHIBITION_ALERTS:
            assert severity == "none"
        else:
            assert severity in {"critical", "warning", "info"}, name
        assert set(rule["annotations"]) == {"summary", "description", "runbook_url"}, name
        url = rule["annotations"]["runbook_url"]
        assert url == RUNBOOK_URL + name.lower(), name
        assert name.lower() in anchors, f"docs/runbooks.md has no section '## {name}'"
        description = rule["annotations"]["description"]
        if name not in COLLECTOR_ALERTS | PLATFORM_ALERTS:
            # on-call must see which school and which device at a glance
            assert "$labels.school" in rule["annotations"]["summary"], name
            assert "$labels.school" in description, name
            assert "$labels.target" in description or name in SCHOOL_ALERTS, name


def test_product_severities():
    severities: dict[str, set[str]] = {}
    for rule in rules("alert"):
        severities.setdefault(rule["alert"], set()).add(rule["labels"]["severity"])
    assert severities["SchoolLinkDown"] >= {"critical"}
    assert severities["DeviceDown"] == {"critical", "warning"}
    assert severities["CollectorDown"] == {"critical"}
    assert severities["DeviceRebooted"] == {"info"}
    for name in ("SchoolLinkDegraded", "LinkSaturated", "SNMPPollFailing", "InterfaceErrors"):
        assert severities[name] == {"warning"}, name


def test_inhibition_sources_fire_before_their_targets():
    """Alertmanager can only inhibit an alert whose source is already firing."""
    durations: dict[tuple[str, str], float] = {}
    for rule in rules("alert"):
        durations[(rule["alert"], rule["labels"]["severity"])] = parse_duration(
            rule.get("for", "0s")
        )
    link_down = durations[("SchoolLinkDown", "critical")]
    parent_down = durations[("ParentDown", "none")]
    device_down = min(v for (name, _), v in durations.items() if name == "DeviceDown")
    assert parent_down < device_down
    assert link_down < device_down
    for (name, _), duration in durations.items():
        exempt = {"SchoolLinkDown", "ParentDown", "DeviceRebooted"} | COLLECTOR_ALERTS
        if name not in exempt | PLATFORM_ALERTS | SCHOOL_ALERTS:
            assert duration > link_down, name
    # CollectorScrapeFailing inhibits CollectorDown of the same collector
    assert (
        durations[("CollectorScrapeFailing", "critical")] < durations[("CollectorDown", "critical")]
    )


def test_rules_use_only_documented_metrics():
    allowed = documented_metrics() | recorded_metrics()
    assert "schoolnet_up" in allowed and "schoolnet:link_utilisation:ratio_rate5m" in allowed
    for rule in rules("expr"):
        used = metric_names(rule["expr"])
        # the platform alerts use Prometheus' and Alertmanager's own metrics: that those exist is
        # tested against the real binaries (tests/test_platform_alerts.py)
        assert used or 'up{job="schoolnet"}' in rule["expr"] or rule.get("alert") in PLATFORM_ALERTS
        assert used <= allowed, (rule.get("alert") or rule.get("record"), used - allowed)


def test_recording_rule_names_follow_the_convention():
    for name in recorded_metrics():
        level, metric, operations = name.split(":")
        assert level in {"schoolnet", "school"} and metric and operations, name


def test_every_alert_has_a_firing_and_a_quiet_unit_test():
    fires: set[str] = set()
    quiet: set[str] = set()
    for path in rule_test_files():
        doc = yaml.safe_load(path.read_text())
        assert doc["rule_files"] == ["../rules/*.yml"], path
        for group in doc["tests"]:
            for case in group.get("alert_rule_test", []):
                (fires if case.get("exp_alerts") else quiet).add(case["alertname"])
                for alert in case.get("exp_alerts") or []:
                    # exact labels and annotations, not just "something fired"
                    assert "severity" in alert["exp_labels"], (path, case)
                    assert set(alert["exp_annotations"]) == {
                        "summary",
                        "description",
                        "runbook_url",
                    }, (path, case)
    names = {r["alert"] for r in rules("alert")}
    assert names - fires == set(), "alerts never shown to fire"
    assert names - quiet - ALWAYS_FIRING == set(), "alerts never shown to stay quiet"


# The mistakes the unit tests exist for. Each mutation of the shipped rules must make them fail.
MUTATIONS = {
    "a 497-day sysUpTime wrap counted as a reboot": (
        "devices",
        "schoolnet-alerts.yml",
        "\n            and\n          max_over_time(schoolnet_device_uptime_seconds[2h]) "
        "< 42949672.96 - 3600",
        "",
    ),
    "LinkSaturated at 50%": ("links", "schoolnet-alerts.yml", ">= 0.9", ">= 0.5"),
    "a counter drop read as errors": (
        "devices",
        "schoolnet-recording.yml",
        "\n            unless resets(schoolnet_interface_receive_errors_total[5m]) > 0",
        "",
    ),
    "SchoolLinkDown without its 2 minutes (a flap pages)": (
        "links",
        "schoolnet-alerts.yml",
        "        for: 2m\n        keep_firing_for: 2m\n",
        "        for: 30s\n        keep_firing_for: 2m\n",
    ),
    "the outage's loss reported again as SchoolLinkDegraded": (
        "links",
        "schoolnet-alerts.yml",
        "\n            unless on (member, school, target)\n"
        '          max_over_time(ALERTS{alertname="SchoolLinkDown", alertstate="firing"}[5m])',
        "",
    ),
    "DeviceDown that does not wait 3 minutes": (
        "devices",
        "schoolnet-alerts.yml",
        "school:schoolnet_calendar_state:info\n        for: 3m",
        "school:schoolnet_calendar_state:info\n        for: 1m",
    ),
    "SNMPPollFailing for a device that does not answer ping either": (
        "devices",
        "schoolnet-alerts.yml",
        "schoolnet_ping_up == 1",
        "schoolnet_ping_up >= 0",
    ),
    "CollectorDown missing the absent collector": (
        "collector",
        "schoolnet-alerts.yml",
        ' or absent(up{job="schoolnet"})',
        "",
    ),
    "CollectorScrapeFailing for a collector that is down (no health check)": (
        "platform",
        "platform-alerts.yml",
        '\n            and on (instance)\n          up{job="schoolnet-health"} == 1',
        "",
    ),
    "storage compared with a retention size that is not set (0)": (
        "platform",
        "platform-alerts.yml",
        "(prometheus_tsdb_retention_limit_bytes > 0)",
        "prometheus_tsdb_retention_limit_bytes",
    ),
    "Prometheus errors counted against one Alertmanager, not every one": (
        "platform",
        "platform-alerts.yml",
        "min without (alertmanager) (",
        "max without (alertmanager) (",
    ),
    "a collector skipping 0.1% of its rounds called overloaded": (
        "platform",
        "platform-alerts.yml",
        "          > 0.01\n        for: 15m\n        labels:\n          severity: warning\n"
        "          cause: skipped",
        "          > 0.0001\n        for: 15m\n        labels:\n          severity: warning\n"
        "          cause: skipped",
    ),
    "link utilisation joined on the wrong interface": (
        "links",
        "schoolnet-recording.yml",
        "on (member, school, via_target, interface) group_right (alias)\n"
        "          (schoolnet_link_bandwidth_bytes * 8)\n"
        "        labels:\n          direction: receive",
        "on (member, school, via_target) group_right (alias, interface)\n"
        "          (schoolnet_link_bandwidth_bytes * 8)\n"
        "        labels:\n          direction: receive",
    ),
    # School calendars (issue 14), deploy/prometheus/tests/calendar.test.yml
    "no page in the hour before the school opens": (
        "calendar",
        "schoolnet-recording.yml",
        "<= bool (time() + 3600)",
        "<= bool time()",
    ),
    "a closed school treated as open": (
        "calendar",
        "schoolnet-recording.yml",
        '"school_state", "closed"',
        '"school_state", "open"',
    ),
    "a switched-off AP reported down": (
        "calendar",
        "schoolnet-alerts.yml",
        'schoolnet_up{role=~"ap|server|other"} == 0\n'
        "            unless on (member, school, target) (schoolnet_target_expected_down == 1)\n",
        'schoolnet_up{role=~"ap|server|other"} == 0\n',
    ),
    "a switched-off switch paging": (
        "calendar",
        "schoolnet-alerts.yml",
        'schoolnet_up{role=~"router|firewall|switch|controller"} == 0\n'
        "              unless on (member, school, target) (schoolnet_target_expected_down == 1)\n",
        'schoolnet_up{role=~"router|firewall|switch|controller"} == 0\n',
    ),
    "a PoE-scheduled AP's morning boot reported as a reboot": (
        "calendar",
        "schoolnet-alerts.yml",
        "\n            unless on (member, school, target)\n"
        "          max_over_time(schoolnet_target_expected_down[2h]) == 1",
        "",
    ),
    "alerts notified the moment a maintenance window ends": (
        "calendar",
        "schoolnet-alerts.yml",
        "keep_firing_for: 5m",
        "keep_firing_for: 0s",
    ),
}


@pytest.mark.parametrize("mutation", sorted(MUTATIONS))
def test_unit_tests_catch(mutation, tmp_path):
    test_file, file_name, old, new = MUTATIONS[mutation]
    rules_copy = tmp_path / "rules"
    shutil.copytree(RULES_DIR, rules_copy)
    tests_copy = tmp_path / "tests"
    shutil.copytree(RULE_TESTS_DIR, tests_copy)
    path = rules_copy / file_name
    text = path.read_text()
    assert text.count(old) == 1, "the mutation no longer matches the rules: update it"
    path.write_text(text.replace(old, new))
    check = promtool("check", "rules", str(path))
    assert check.returncode == 0, check.stdout + check.stderr  # still valid rules...
    result = promtool("test", "rules", str(tests_copy / f"{test_file}.test.yml"))
    assert result.returncode != 0, f"the unit tests did not notice: {mutation}"  # ...but wrong
    assert "FAILED" in result.stdout + result.stderr


def test_shortened_rules_for_end_to_end_tests(tmp_path):
    before = {p.name: p.read_text() for p in RULES_DIR.glob("*.yml")}
    written = shortened_rules(tmp_path, factor=60)
    assert {p.name for p in written} == set(before)
    assert {p.name: p.read_text() for p in RULES_DIR.glob("*.yml")} == before  # untouched
    check = promtool("check", "rules", *map(str, written))
    assert check.returncode == 0, check.stdout + check.stderr
    copied = []
    for path in sorted(written):
        for group in yaml.safe_load(path.read_text())["groups"]:
            copied.extend(r for r in group["rules"] if "alert" in r)
    shipped = rules("alert")
    assert len(copied) == len(shipped)
    for rule, original in zip(copied, shipped, strict=True):
        assert rule["expr"] == original["expr"] and rule["labels"] == original["labels"]
        for key in ("for", "keep_firing_for"):
            if key in original:
                assert parse_duration(rule[key]) == parse_duration(original[key]) / 60
    scaled = shortened_rules(tmp_path / "ranges", factor=60, scale_ranges=True)
    text = "\n".join(p.read_text() for p in scaled)
    assert "[5s]" in text and "[1440s]" in text and "[5m]" not in text
