"""Alertmanager: the shipped config checks, routes as designed, and inhibits as designed in a
real Alertmanager (alerts posted to its v2 API, their state read back)."""

from __future__ import annotations

import datetime as dt
import subprocess

import pytest
import yaml

from tests.agents import free_port
from tests.prom import (
    ALERTMANAGER_CONFIG,
    RULES_DIR,
    AlertmanagerProcess,
    PrometheusProcess,
    WebhookSink,
    alertmanager_test_config,
    scrape_config,
    shortened_rules,
)

SECRETS_MOUNT = "/etc/alertmanager/secrets/"


def amtool(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["amtool", *args], capture_output=True, text=True)


def routes(labels: dict[str, str], expect: str | None = None) -> subprocess.CompletedProcess:
    args = ["config", "routes", "test", f"--config.file={ALERTMANAGER_CONFIG}"]
    if expect is not None:
        args.append(f"--verify.receivers={expect}")
    return amtool(*args, *(f"{k}={v}" for k, v in labels.items()))


def test_amtool_check_config():
    result = amtool("check-config", str(ALERTMANAGER_CONFIG))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout
    assert "5 inhibit rules" in result.stdout and "1 templates" in result.stdout


def test_no_secret_in_the_config():
    """Credentials come from files in the mounted secrets directory, nothing else."""
    config = yaml.safe_load(ALERTMANAGER_CONFIG.read_text())
    secret_fields = {"api_url", "routing_key", "service_key", "api_key", "auth_password", "url"}
    file_fields = []

    def walk(node, path=""):
        if isinstance(node, dict):
            for key, value in node.items():
                if key.endswith("_file"):
                    file_fields.append((path + key, value))
                assert key not in secret_fields and key != "smtp_auth_password", path + key
                walk(value, f"{path}{key}.")
        elif isinstance(node, list):
            for item in node:
                walk(item, path)

    walk(config)
    assert len(file_fields) >= 3
    for field, value in file_fields:
        assert value.startswith(SECRETS_MOUNT), (field, value)


@pytest.mark.parametrize(
    ("labels", "receivers"),
    [
        ({"alertname": "SchoolLinkDown", "severity": "critical", "member": "opod",
          "school": "opod-regenboog", "target": "internet"}, "pager,chat"),
        ({"alertname": "DeviceDown", "severity": "critical", "member": "davinci",
          "school": "davinci-leerpark", "target": "sw-leerpark-core"}, "pager,chat"),
        ({"alertname": "DeviceDown", "severity": "warning", "member": "opod",
          "school": "opod-regenboog", "target": "ap-regenboog-01"}, "ticket"),
        ({"alertname": "LinkSaturated", "severity": "warning", "member": "h3o",
          "school": "h3o-baken"}, "ticket"),
        ({"alertname": "DeviceRebooted", "severity": "info", "member": "sdl",
          "school": "sdl-overkamp"}, "chat"),
        ({"alertname": "ParentDown", "severity": "none", "member": "opod",
          "school": "opod-regenboog", "parent": "sw-regenboog"}, "null"),
        ({"alertname": "CollectorDown", "severity": "critical", "job": "schoolnet"}, "pager"),
        ({"alertname": "CollectorConfigReloadFailed", "severity": "warning",
          "job": "schoolnet"}, "chat"),
        ({"alertname": "SomethingNew", "member": "petri"}, "ticket"),
        # the platform (issue 11): the heartbeat, a failing integration through chat and e-mail
        # (whichever integration fails), the rest to the platform team like the collector's
        ({"alertname": "Watchdog", "severity": "info"}, "heartbeat"),
        ({"alertname": "AlertmanagerFailedToSendAlerts", "severity": "warning",
          "integration": "pagerduty", "instance": "alertmanager:9093"}, "platform-fallback"),
        ({"alertname": "AlertmanagerFailedToSendAlerts", "severity": "warning",
          "integration": "slack", "instance": "alertmanager:9093"}, "platform-fallback"),
        ({"alertname": "AlertmanagerFailedToSendAlerts", "severity": "warning",
          "integration": "email", "instance": "alertmanager:9093"}, "platform-fallback"),
        ({"alertname": "CollectorScrapeFailing", "severity": "critical",
          "job": "schoolnet"}, "pager"),
        ({"alertname": "CollectorOverloaded", "severity": "warning", "cause": "skipped",
          "probe": "icmp"}, "chat"),
        ({"alertname": "PrometheusRuleFailures", "severity": "critical",
          "rule_group": "x.yml;schoolnet-links"}, "pager"),
        ({"alertname": "PrometheusNotConnectedToAlertmanagers", "severity": "warning"}, "chat"),
        ({"alertname": "PrometheusStorageNearRetentionSize", "severity": "warning"}, "chat"),
        # the school calendar: closed -> ticket, unless 24/7; open (or the hour before) pages
        ({"alertname": "SchoolLinkDown", "severity": "critical", "member": "opod",
          "school": "opod-regenboog", "target": "internet", "school_state": "closed"}, "ticket"),
        ({"alertname": "DeviceDown", "severity": "critical", "member": "petri",
          "school": "petri-dordrecht", "target": "rtr-petri", "school_state": "closed",
          "page_when_closed": "true"}, "pager,chat"),
        ({"alertname": "SchoolLinkDown", "severity": "critical", "member": "opod",
          "school": "opod-regenboog", "target": "internet", "school_state": "open"},
         "pager,chat"),
        ({"alertname": "DeviceDown", "severity": "warning", "member": "opod",
          "school": "opod-regenboog", "target": "ap-regenboog-01", "school_state": "closed"},
         "ticket"),
        ({"alertname": "SchoolMaintenance", "severity": "none", "member": "opod",
          "school": "opod-kameleon"}, "null"),
        ({"alertname": "DeviceNotSwitchedOff", "severity": "info", "member": "opod",
          "school": "opod-regenboog", "target": "ap-regenboog-01"}, "chat"),
    ],
)  # fmt: skip
def test_routes(labels, receivers):
    result = routes(labels, receivers)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == receivers


def test_a_wrong_expectation_fails():
    labels = {"alertname": "SchoolLinkDown", "severity": "critical", "member": "opod"}
    assert routes(labels, "ticket").returncode != 0


def test_every_alert_of_the_rules_routes_by_its_severity():
    expected = {"critical": "pager,chat", "warning": "ticket", "info": "chat", "none": "null"}
    platform = {"critical": "pager", "warning": "chat"}  # the collector's own alerts (no member)
    own_route = {"Watchdog": "heartbeat", "AlertmanagerFailedToSendAlerts": "platform-fallback"}
    platform_rules = {
        rule["alert"]
        for group in yaml.safe_load((RULES_DIR / "platform-alerts.yml").read_text())["groups"]
        for rule in group["rules"]
    }
    count = 0
    for path in RULES_DIR.glob("*.yml"):
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                if "alert" not in rule:
                    continue
                severity = rule["labels"]["severity"]
                if rule["alert"].startswith("Collector") or rule["alert"] in platform_rules:
                    labels = {"alertname": rule["alert"], "severity": severity}
                    want = own_route.get(rule["alert"]) or platform[severity]
                else:
                    labels = {"alertname": rule["alert"], "severity": severity,
                              "member": "opod", "school": "opod-palet"}  # fmt: skip
                    want = expected[severity]
                result = routes(labels, want)
                assert result.returncode == 0, (rule["alert"], severity, result.stdout)
                count += 1
    assert count >= 10


def test_test_config_keeps_routes_and_inhibitions():
    shipped = yaml.safe_load(ALERTMANAGER_CONFIG.read_text())
    config = alertmanager_test_config("http://127.0.0.1:1", timings={"group_wait": "1s"})
    assert config["inhibit_rules"] == shipped["inhibit_rules"]
    assert [r["name"] for r in config["receivers"]] == [r["name"] for r in shipped["receivers"]]
    assert config["route"]["group_by"] == shipped["route"]["group_by"]
    assert config["route"]["group_wait"] == "1s"
    strip = lambda route: {k: v for k, v in route.items() if k not in ("group_wait",)}  # noqa: E731
    assert [strip(r) for r in config["route"]["routes"]] == [
        strip(r) for r in shipped["route"]["routes"]
    ]


# ---------------------------------------------------------------------------------------------
# A real Alertmanager
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sink():
    with WebhookSink() as sink:
        yield sink


@pytest.fixture(scope="module")
def alertmanager(tmp_path_factory, sink):
    config = alertmanager_test_config(
        sink.url, timings={"group_wait": "1s", "group_interval": "1s", "repeat_interval": "1h"}
    )
    # debug log: the dispatcher logs each flush of an aggregation group (see `flushes`)
    am = AlertmanagerProcess(
        tmp_path_factory.mktemp("alertmanager"), config, extra_args=["--log.level=debug"]
    ).start()
    yield am
    am.stop()


def alert(alertname: str, **labels: str) -> dict:
    now = dt.datetime.now(dt.timezone.utc)
    return {
        "labels": {"alertname": alertname, **labels},
        "annotations": {"summary": f"{alertname} {labels.get('school', '')}"},
        "startsAt": now.isoformat(),
        "endsAt": (now + dt.timedelta(minutes=10)).isoformat(),
        "generatorURL": "http://prometheus.test/graph",
    }


def state(am: AlertmanagerProcess, **labels: str) -> tuple[str, list[str]]:
    found = am.alert(**labels)
    return found["status"]["state"], sorted(found["status"]["inhibitedBy"])


def settled(am: AlertmanagerProcess, expected: dict[tuple, str]) -> bool:
    """All alerts (identified by label tuples) in their expected state."""
    return all(state(am, **dict(key))[0] == want for key, want in expected.items())


def flushes(am: AlertmanagerProcess, fingerprint: str) -> int:
    """How often the dispatcher flushed an aggregation group holding the alert (its debug log:
    `msg=flushing alerts=[Name[fp7][active]]`). A group flushes, and runs the notification
    pipeline (inhibition, then the receivers) to the end, before it flushes again."""
    tag = f"[{fingerprint[:7]}]"
    return sum(1 for line in am.log().splitlines() if "msg=flushing" in line and tag in line)


def notified(sink: WebhookSink) -> list[dict[str, str]]:
    """The labels of every alert any receiver was sent."""
    return [a["labels"] for _, payload in sink.notifications for a in payload["alerts"]]


def assert_inhibited_and_never_sent(
    am: AlertmanagerProcess, sink: WebhookSink, source: dict, **labels: str
) -> None:
    """The alert carrying `labels` is suppressed by `source` (the inhibitor has seen the source),
    and once its group has been through the notification pipeline twice (so the first pass has
    finished), no receiver was ever sent it."""
    target = am.alert(**labels)
    assert (target["status"]["state"], target["status"]["inhibitedBy"]) == (
        "suppressed",
        [source["fingerprint"]],
    ), labels
    am.wait_for(lambda: flushes(am, target["fingerprint"]) >= 2, timeout=20)
    sent = [n for n in notified(sink) if labels.items() <= n.items()]
    assert sent == [], labels


def test_school_link_down_suppresses_that_school_only(alertmanager, sink):
    school = {"member": "opod", "school": "opod-regenboog"}
    other = {"member": "opod", "school": "opod-kameleon"}
    alertmanager.post_alerts(
        [
            alert("SchoolLinkDown", severity="critical", target="internet", role="link", **school),
            alert("DeviceDown", severity="critical", target="rtr-regenboog", role="router",
                  **school),
            alert("DeviceDown", severity="warning", target="ap-regenboog-01", role="ap",
                  parent="sw-regenboog", **school),
            alert("SNMPPollFailing", severity="warning", target="sw-regenboog", role="switch",
                  **school),
            alert("DeviceDown", severity="critical", target="rtr-kameleon", role="router",
                  **other),
        ]
    )  # fmt: skip
    expected = {
        (("alertname", "SchoolLinkDown"), ("school", "opod-regenboog")): "active",
        (("alertname", "DeviceDown"), ("target", "rtr-regenboog")): "suppressed",
        (("alertname", "DeviceDown"), ("target", "ap-regenboog-01")): "suppressed",
        (("alertname", "SNMPPollFailing"), ("target", "sw-regenboog")): "suppressed",
        (("alertname", "DeviceDown"), ("target", "rtr-kameleon")): "active",
    }
    alertmanager.wait_for(lambda: settled(alertmanager, expected), timeout=20)
    link = alertmanager.alert(alertname="SchoolLinkDown", school="opod-regenboog")
    for target in ("rtr-regenboog", "ap-regenboog-01"):
        assert state(alertmanager, alertname="DeviceDown", target=target) == (
            "suppressed",
            [link["fingerprint"]],
        )
    assert state(alertmanager, alertname="DeviceDown", target="rtr-kameleon") == ("active", [])

    # Notifications: the offline school pages once (pager + chat copy), the other school's router
    # pages on its own, the suppressed alerts reach no receiver.
    def by_receiver() -> dict[str, set[tuple[str, str]]]:
        seen: dict[str, set[tuple[str, str]]] = {}
        for receiver in ("pager", "chat", "ticket", "null"):
            for payload in sink.received(receiver):
                for a in payload["alerts"]:
                    seen.setdefault(receiver, set()).add(
                        (a["labels"]["alertname"], a["labels"].get("target", ""))
                    )
        return seen

    alertmanager.wait_for(
        lambda: (
            {("SchoolLinkDown", "internet"), ("DeviceDown", "rtr-kameleon")}
            <= by_receiver().get("pager", set())
        ),
        timeout=20,
    )
    seen = by_receiver()
    for alertname, target in (
        ("DeviceDown", "rtr-regenboog"),
        ("DeviceDown", "ap-regenboog-01"),
        ("SNMPPollFailing", "sw-regenboog"),
    ):
        assert_inhibited_and_never_sent(
            alertmanager, sink, link, alertname=alertname, target=target
        )
    assert ("SchoolLinkDown", "internet") in seen["chat"]
    pages = [
        p for p in sink.received("pager") if p["groupLabels"].get("school") == "opod-regenboog"
    ]
    assert {p["groupLabels"]["alertname"] for p in pages} == {"SchoolLinkDown"}


def test_parent_down_suppresses_the_devices_it_feeds(alertmanager, sink):
    school = {"member": "h3o", "school": "h3o-baken"}
    alertmanager.post_alerts(
        [
            alert("ParentDown", severity="none", target="sw-baken", role="switch",
                  parent="sw-baken", **school),
            alert("DeviceDown", severity="critical", target="sw-baken", role="switch",
                  parent="fw-baken", **school),
            alert("DeviceDown", severity="warning", target="ap-baken-01", role="ap",
                  parent="sw-baken", **school),
            # fed by another switch, which is up: a real problem
            alert("DeviceDown", severity="warning", target="ap-baken-02", role="ap",
                  parent="sw-baken-2", **school),
        ]
    )  # fmt: skip
    expected = {
        (("alertname", "ParentDown"), ("target", "sw-baken")): "active",
        (("alertname", "DeviceDown"), ("target", "sw-baken")): "active",
        (("alertname", "DeviceDown"), ("target", "ap-baken-01")): "suppressed",
        (("alertname", "DeviceDown"), ("target", "ap-baken-02")): "active",
    }
    alertmanager.wait_for(lambda: settled(alertmanager, expected), timeout=20)
    parent = alertmanager.alert(alertname="ParentDown", target="sw-baken")
    assert state(alertmanager, alertname="DeviceDown", target="ap-baken-01") == (
        "suppressed",
        [parent["fingerprint"]],
    )
    alertmanager.wait_for(
        lambda: any(
            a["labels"].get("target") == "ap-baken-02"
            for p in sink.received("ticket")
            for a in p["alerts"]
        ),
        timeout=20,
    )
    assert_inhibited_and_never_sent(
        alertmanager, sink, parent, alertname="DeviceDown", target="ap-baken-01"
    )
    assert sink.received("null") == []  # ParentDown goes nowhere
    assert flushes(alertmanager, parent["fingerprint"]) >= 1  # ... after its group was flushed
    assert not [n for n in notified(sink) if n["alertname"] == "ParentDown"]


def test_a_backup_line_keeps_the_school_s_device_alerts(alertmanager, sink):
    """An alert reads "active" until the inhibitor has taken in its source, so "both active"
    alone proves nothing. The control: an offline school posted after the backup line in the
    same request. The inhibitor takes alerts in the order they were posted, so once the control's
    device is suppressed by the control's link, it has seen the backup line's link too."""
    school = {"member": "opod", "school": "opod-fontein"}
    control = {"member": "opod", "school": "opod-zeppelin"}
    alertmanager.post_alerts(
        [
            alert("SchoolLinkDown", severity="warning", target="internet", role="link", **school),
            alert("DeviceDown", severity="critical", target="sw-fontein", role="switch",
                  **school),
            alert("SchoolLinkDown", severity="critical", target="internet", role="link",
                  **control),
            alert("DeviceDown", severity="critical", target="sw-zeppelin", role="switch",
                  **control),
        ]
    )  # fmt: skip
    control_link = alertmanager.alert(alertname="SchoolLinkDown", school="opod-zeppelin")
    alertmanager.wait_for(
        lambda: (
            state(alertmanager, alertname="DeviceDown", target="sw-zeppelin")
            == ("suppressed", [control_link["fingerprint"]])
        ),
        timeout=20,
    )
    assert state(alertmanager, alertname="SchoolLinkDown", school="opod-fontein") == ("active", [])
    assert state(alertmanager, alertname="DeviceDown", target="sw-fontein") == ("active", [])
    # and the device pages
    alertmanager.wait_for(
        lambda: any(
            a["labels"].get("target") == "sw-fontein"
            for p in sink.received("pager")
            for a in p["alerts"]
        ),
        timeout=20,
    )


def test_a_down_device_suppresses_its_own_symptoms_only(alertmanager, sink):
    school = {"member": "sdl", "school": "sdl-dubbelsteyn"}
    alertmanager.post_alerts(
        [
            alert("DeviceDown", severity="critical", target="sw-dubbelsteyn-1", role="switch",
                  **school),
            alert("InterfaceErrors", severity="warning", target="sw-dubbelsteyn-1",
                  role="switch", interface="ge-0/0/1", **school),
            alert("InterfaceErrors", severity="warning", target="sw-dubbelsteyn-2",
                  role="switch", interface="ge-0/0/1", **school),
        ]
    )  # fmt: skip
    expected = {
        (("alertname", "DeviceDown"), ("target", "sw-dubbelsteyn-1")): "active",
        (("alertname", "InterfaceErrors"), ("target", "sw-dubbelsteyn-1")): "suppressed",
        (("alertname", "InterfaceErrors"), ("target", "sw-dubbelsteyn-2")): "active",
    }
    alertmanager.wait_for(lambda: settled(alertmanager, expected), timeout=20)
    device = alertmanager.alert(alertname="DeviceDown", target="sw-dubbelsteyn-1")
    assert_inhibited_and_never_sent(
        alertmanager, sink, device, alertname="InterfaceErrors", target="sw-dubbelsteyn-1"
    )
    # the other switch's errors (same group as the suppressed ones) are sent
    assert any(
        n["alertname"] == "InterfaceErrors" and n["target"] == "sw-dubbelsteyn-2"
        for n in notified(sink)
    )


def test_a_scrape_failing_collector_replaces_collector_down_for_that_collector_only(
    alertmanager, sink
):
    """The collector process answers but its /metrics cannot be scraped: one page with that
    diagnosis, not a second one saying the collector is down. Another collector that is really
    down still pages as CollectorDown."""
    one = {"job": "schoolnet", "instance": "collector:9430"}
    two = {"job": "schoolnet", "instance": "collector-2:9430"}
    alertmanager.post_alerts(
        [
            alert("CollectorScrapeFailing", severity="critical", **one),
            alert("CollectorDown", severity="critical", **one),
            alert("CollectorDown", severity="critical", **two),
        ]
    )
    expected = {
        (("alertname", "CollectorScrapeFailing"), ("instance", "collector:9430")): "active",
        (("alertname", "CollectorDown"), ("instance", "collector:9430")): "suppressed",
        (("alertname", "CollectorDown"), ("instance", "collector-2:9430")): "active",
    }
    alertmanager.wait_for(lambda: settled(alertmanager, expected), timeout=20)
    scrape = alertmanager.alert(alertname="CollectorScrapeFailing", instance="collector:9430")
    assert_inhibited_and_never_sent(
        alertmanager, sink, scrape, alertname="CollectorDown", instance="collector:9430"
    )
    # the other collector's CollectorDown (same group) pages
    assert any(
        n["alertname"] == "CollectorDown" and n.get("instance") == "collector-2:9430"
        for p in sink.received("pager")
        for n in (a["labels"] for a in p["alerts"])
    )


def notified_by_receiver(sink: WebhookSink) -> dict[str, set[tuple[str, str, str]]]:
    """receiver -> {(alertname, school, target)} of every firing alert it was sent."""
    seen: dict[str, set[tuple[str, str, str]]] = {}
    for receiver in ("pager", "chat", "ticket", "null"):
        for payload in sink.received(receiver):
            for a in payload["alerts"]:
                if a["status"] == "firing":
                    labels = a["labels"]
                    seen.setdefault(receiver, set()).add(
                        (labels["alertname"], labels.get("school", ""), labels.get("target", ""))
                    )
    return seen


def test_a_closed_school_s_link_down_is_a_ticket_not_a_page(alertmanager, sink):
    """Issue 14: evenings, weekends and holidays make a ticket; a 24/7 target still pages."""
    closed = {"member": "opod", "school": "opod-toermalijn", "school_state": "closed"}
    alertmanager.post_alerts(
        [
            alert("SchoolLinkDown", severity="critical", target="internet", role="link",
                  **closed),
            alert("DeviceDown", severity="critical", target="rtr-petri", role="router",
                  member="petri", school="petri-dordrecht", school_state="closed",
                  page_when_closed="true"),
            # the same school's open twin elsewhere pages as before
            alert("SchoolLinkDown", severity="critical", target="internet", role="link",
                  member="opod", school="opod-wielewaal", school_state="open"),
        ]
    )  # fmt: skip
    link = ("SchoolLinkDown", "opod-toermalijn", "internet")
    alertmanager.wait_for(
        lambda: (
            link in notified_by_receiver(sink).get("ticket", set())
            and ("DeviceDown", "petri-dordrecht", "rtr-petri")
            in notified_by_receiver(sink).get("pager", set())
            and ("SchoolLinkDown", "opod-wielewaal", "internet")
            in notified_by_receiver(sink).get("pager", set())
        ),
        timeout=20,
    )
    seen = notified_by_receiver(sink)
    assert link not in seen.get("pager", set()) and link not in seen.get("chat", set())
    assert ("DeviceDown", "petri-dordrecht", "rtr-petri") not in seen.get("ticket", set())
    assert state(alertmanager, alertname="SchoolLinkDown", school="opod-toermalijn") == (
        "active",
        [],
    )


def test_a_maintenance_window_suppresses_the_whole_school(alertmanager, sink):
    """Issue 14: inside a maintenance window nothing of the school is notified; its alerts stay
    visible as suppressed. Another school is not affected."""
    school = {"member": "opod", "school": "opod-bongerd"}
    other = {"member": "opod", "school": "opod-schelp"}
    alertmanager.post_alerts(
        [
            alert("SchoolMaintenance", severity="none", **school),
            alert("SchoolLinkDown", severity="critical", target="internet", role="link",
                  school_state="maintenance", **school),
            alert("DeviceDown", severity="critical", target="sw-bongerd", role="switch",
                  school_state="maintenance", **school),
            alert("DeviceRebooted", severity="info", target="sw-bongerd", role="switch",
                  **school),
            alert("DeviceDown", severity="critical", target="sw-schelp", role="switch",
                  school_state="open", **other),
        ]
    )  # fmt: skip
    # (SchoolMaintenance itself is suppressed by the offline school's SchoolLinkDown: it is
    # never notified anyway, and an inhibited alert still inhibits)
    expected = {
        (("alertname", "SchoolLinkDown"), ("school", "opod-bongerd")): "suppressed",
        (("alertname", "DeviceDown"), ("target", "sw-bongerd")): "suppressed",
        (("alertname", "DeviceRebooted"), ("target", "sw-bongerd")): "suppressed",
        (("alertname", "DeviceDown"), ("target", "sw-schelp")): "active",
    }
    alertmanager.wait_for(lambda: settled(alertmanager, expected), timeout=20)
    window = alertmanager.alert(alertname="SchoolMaintenance", school="opod-bongerd")
    assert state(alertmanager, alertname="SchoolLinkDown", school="opod-bongerd") == (
        "suppressed",
        [window["fingerprint"]],
    )
    # a school in maintenance whose link is up: the window alone suppresses its devices
    alertmanager.post_alerts(
        [
            alert("SchoolMaintenance", severity="none", member="opod", school="opod-vlinder"),
            alert("DeviceDown", severity="critical", target="sw-vlinder", role="switch",
                  member="opod", school="opod-vlinder", school_state="maintenance"),
        ]
    )  # fmt: skip
    alertmanager.wait_for(
        lambda: state(alertmanager, alertname="DeviceDown", target="sw-vlinder")[0] == "suppressed",
        timeout=20,
    )
    vlinder = alertmanager.alert(alertname="SchoolMaintenance", school="opod-vlinder")
    assert state(alertmanager, alertname="DeviceDown", target="sw-vlinder") == (
        "suppressed",
        [vlinder["fingerprint"]],
    )
    alertmanager.wait_for(
        lambda: (
            ("DeviceDown", "opod-schelp", "sw-schelp")
            in notified_by_receiver(sink).get("pager", set())
        ),
        timeout=20,
    )
    everything = set().union(*notified_by_receiver(sink).values())
    assert not any(school in ("opod-bongerd", "opod-vlinder") for _, school, _ in everything)


def test_the_shipped_config_starts_without_its_secrets(tmp_path):
    """docker compose may start Alertmanager before the secrets directory is filled."""
    am = AlertmanagerProcess(tmp_path, ALERTMANAGER_CONFIG).start()
    try:
        status = am.alerts()
        assert status == []
    finally:
        am.stop()


def test_collector_down_pages_through_real_prometheus_and_alertmanager(tmp_path):
    """The path the lab's end-to-end test takes, with the helpers it will use: the shipped rules
    with shortened `for:` in a real Prometheus, sending to a real Alertmanager with the shipped
    routing, whose receivers post to a local sink. Nothing listens where the collector should be,
    so CollectorDown must page, and only page (it has no school to post a ticket for)."""
    with WebhookSink() as sink:
        config = alertmanager_test_config(
            sink.url, timings={"group_wait": "1s", "group_interval": "1s"}
        )
        am = AlertmanagerProcess(tmp_path / "am", config).start()
        prometheus = None
        try:
            prometheus = PrometheusProcess(
                tmp_path / "prometheus",
                scrape_configs=[scrape_config("schoolnet", f"127.0.0.1:{free_port()}")],
                rule_files=shortened_rules(tmp_path / "rules", factor=60),
                alertmanager_urls=[am.url],
            ).start()

            def firing() -> list[dict]:  # Watchdog always fires, to the heartbeat
                return [
                    a for a in prometheus.alerts("firing") if a["labels"]["alertname"] != "Watchdog"
                ]

            [firing] = prometheus.wait_for(firing, timeout=30)
            assert firing["labels"]["alertname"] == "CollectorDown"
            am.wait_for(lambda: sink.received("pager"), timeout=30)
            [page] = sink.received("pager")[:1]
            assert page["status"] == "firing"
            assert page["commonLabels"]["alertname"] == "CollectorDown"
            assert page["commonLabels"]["severity"] == "critical"
            assert page["commonAnnotations"]["runbook_url"].endswith("#collectordown")
            assert sink.received("ticket") == [] and sink.received("chat") == []
        finally:
            if prometheus is not None:
                prometheus.stop()
            am.stop()
