"""The whole chain on loopback: lab -> collector -> Prometheus (shipped rules, `for:` shortened in a
test copy) -> Alertmanager (shipped routing and inhibition) -> a webhook sink.

Before anything breaks, every dashboard panel reads the lab through Prometheus. Then a school loses
its internet link: SchoolLinkDown pages for that school, the devices behind the link are suppressed
instead of paging one by one, other schools stay quiet, and bringing the link back resolves it.
A school whose calendar says it is closed loses its link: a ticket, not a page.
"""

from __future__ import annotations

import textwrap
import time

import pytest

from tests.lab_proc import LabProcess
from tests.prom import (
    AlertmanagerProcess,
    PrometheusProcess,
    WebhookSink,
    alertmanager_test_config,
    recorded_metrics,
    scrape_config,
    shortened_rules,
)
from tests.test_dashboards import EMPTY_WHEN_HEALTHY, GRAFANA_VARIABLES, queries, render

SCHOOLS = ("e2e-north", "e2e-south", "e2e-west")
DEVICES = ("rtr", "sw", "ap-1", "wlc")
TARGETS = len(SCHOOLS) * (len(DEVICES) + 1)  # and each school's link
# test_dashboards' healthy-lab exceptions, and what only shows while a device is down
EMPTY_HERE = EMPTY_WHEN_HEALTHY | {("schoolnet-overview", "Devices down by school")}


def lab_file(path) -> None:
    schools = ""
    for n, school in enumerate(SCHOOLS):
        net = f"127.66.{n + 1}"
        wlc = "aruba" if school == "e2e-south" else "cisco"  # the dashboards are read for south
        # e2e-west is closed whenever the test runs (a calendar that never opens)
        calendar = "calendar: never-open" if school == "e2e-west" else "calendar: always-open"
        schools += textwrap.indent(
            textwrap.dedent(f"""\
            - id: {school}
              name: School {school}
              {calendar}
              targets:
                - {{id: rtr, role: router, vendor: mikrotik, address: {net}.1}}
                - {{id: sw, role: switch, vendor: hpe, address: {net}.2, parent: rtr}}
                - {{id: ap-1, role: ap, vendor: ubiquiti, address: {net}.11, parent: sw}}
                - {{id: wlc, role: controller, vendor: {wlc}, address: {net}.20, parent: sw}}
                - id: internet
                  role: link
                  address: {net}.254
                  bandwidth: 200Mbit
                  via: {{target: rtr, interface: ether1}}
            """),
            "      ",
        )
    path.write_text(
        textwrap.dedent("""\
        defaults:
          ping: {interval: 1s, count: 2, spacing: 200ms, timeout: 400ms}
          snmp: {interval: 5s, timeout: 1s, retries: 1, auth: e2e}
        auths:
          e2e: {version: 2c, community: e2e-community}
        calendars:
          always-open: {}
          never-open: {open: {}}
        members:
          - id: e2e
            name: End to end
            schools:
        """)
        + schools
    )


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    work = tmp_path_factory.mktemp("e2e")
    config = work / "targets.yaml"
    lab_file(config)
    sink = WebhookSink().start()
    lab = LabProcess(config, work).start()
    am = prometheus = None
    try:
        lab.wait_ready()
        lab.wait_for(
            lambda: len([v for _, v in lab.samples("schoolnet_up") if v == 1]) == TARGETS,
            timeout=60,
        )
        am = AlertmanagerProcess(
            work / "am",
            alertmanager_test_config(
                sink.url, timings={"group_wait": "1s", "group_interval": "1s"}
            ),
        ).start()
        prometheus = PrometheusProcess(
            work / "prometheus",
            scrape_configs=[scrape_config("schoolnet", lab.url.split("//")[1])],
            rule_files=shortened_rules(work / "rules", factor=60),
            alertmanager_urls=[am.url],
        ).start()
        yield lab, prometheus, am, sink
    finally:
        for process in (prometheus, am):
            if process is not None:
                process.stop()
        lab.stop()
        sink.stop()


def _firing(prometheus, **labels) -> list[dict]:
    return [
        a
        for a in prometheus.alerts("firing")
        if all(a["labels"].get(k) == v for k, v in labels.items())
    ]


def test_every_dashboard_panel_shows_the_lab(chain):
    """The dashboards as a newcomer sees them on `monitor lab`: with the lab's moving counters and
    the shipped recording rules, every panel query has data (the healthy-lab exceptions of
    test_dashboards aside); a device-dashboard panel for at least one of a school's devices."""
    _, prometheus, _, _ = chain
    recorded = sorted(recorded_metrics())
    prometheus.wait_for(lambda: all(prometheus.query(name) for name in recorded), timeout=90)
    school = {"member": "e2e", "school": "e2e-south", **GRAFANA_VARIABLES}
    # (panel, the queries to try: one, or one per device of the school)
    panels: list[tuple[str, list[str]]] = [
        (f"{uid} / {title} [{ref}]", [render(expr, school)])
        for uid in ("schoolnet-overview", "schoolnet-school")
        for title, ref, expr in queries(uid)
        if (uid, title) not in EMPTY_HERE
    ] + [
        (
            f"schoolnet-device / {title} [{ref}]",
            [render(expr, {**school, "target": device}) for device in DEVICES],
        )
        for title, ref, expr in queries("schoolnet-device")
        if ("schoolnet-device", title) not in EMPTY_HERE
    ]
    # A panel gets a few evaluations before it counts as empty (under load one poll can miss a
    # rate window); one that never has data still fails.
    deadline = time.monotonic() + 30
    while True:
        panels = [(name, exprs) for name, exprs in panels if not any(map(prometheus.query, exprs))]
        if not panels or time.monotonic() > deadline:
            break
        time.sleep(2)
    empty = [name for name, _ in panels]
    assert empty == [], "panels without data on the lab:\n" + "\n".join(empty)


def test_a_school_offline_is_one_page_and_comes_back(chain):
    lab, prometheus, am, sink = chain
    prometheus.wait_for(lambda: prometheus.targets_up(), timeout=30)
    # quiet before: nothing fires for any school
    prometheus.wait_for(lambda: prometheus.value("count(schoolnet_up == 1)") == TARGETS, timeout=30)
    assert [a for a in prometheus.alerts("firing") if a["labels"].get("member") == "e2e"] == []

    result = lab.command("down", "e2e-north/internet")
    assert result.returncode == 0, result.stderr

    # SchoolLinkDown fires for north; its devices go down too (they are behind the link)
    prometheus.wait_for(
        lambda: _firing(prometheus, alertname="SchoolLinkDown", school="e2e-north"), timeout=60
    )
    prometheus.wait_for(
        lambda: len(_firing(prometheus, alertname="DeviceDown", school="e2e-north")) >= 2,
        timeout=60,
    )
    [link] = am.wait_for(
        lambda: [
            a for a in am.alerts(alertname="SchoolLinkDown") if a["status"]["state"] == "active"
        ],
        timeout=30,
    )
    assert link["labels"]["school"] == "e2e-north" and link["labels"]["severity"] == "critical"

    # in Alertmanager every other alert of north is suppressed by the link
    def devices_suppressed():
        devices = am.alerts(alertname="DeviceDown", school="e2e-north")
        return len(devices) >= 2 and all(
            a["status"]["state"] == "suppressed"
            and link["fingerprint"] in a["status"]["inhibitedBy"]
            for a in devices
        )

    am.wait_for(devices_suppressed, timeout=30)
    am.wait_for(lambda: sink.received("pager"), timeout=30)
    pages = [alert for message in sink.received("pager") for alert in message["alerts"]]
    assert {a["labels"]["alertname"] for a in pages} == {"SchoolLinkDown"}
    assert {a["labels"]["school"] for a in pages} == {"e2e-north"}
    # the other schools stay quiet
    for school in ("e2e-south", "e2e-west"):
        assert _firing(prometheus, school=school) == []
        assert am.alerts(school=school) == []

    # back up: the page resolves
    result = lab.command("up", "e2e-north/internet")
    assert result.returncode == 0, result.stderr
    prometheus.wait_for(lambda: not _firing(prometheus, alertname="SchoolLinkDown"), timeout=60)

    def resolved():
        return [
            a
            for message in sink.received("pager")
            if message["status"] == "resolved"
            for a in message["alerts"]
            if a["labels"]["alertname"] == "SchoolLinkDown"
        ]

    am.wait_for(resolved, timeout=60)


def test_a_closed_school_s_link_down_is_a_ticket_not_a_page(chain):
    """Issue 14, live: the collector says e2e-west is closed, the rules label its SchoolLinkDown
    school_state="closed", Alertmanager's shipped routing makes it a ticket and wakes nobody."""
    lab, prometheus, am, sink = chain

    def state_of(school: str) -> set[str]:
        found = prometheus.query(f'school:schoolnet_calendar_state:info{{school="{school}"}}')
        return {sample["metric"]["school_state"] for sample in found}

    prometheus.wait_for(lambda: state_of("e2e-west") == {"closed"}, timeout=60)
    assert state_of("e2e-north") == {"open"}
    assert prometheus.query('schoolnet_school_open{school="e2e-west"} == 0')

    result = lab.command("down", "e2e-west/internet")
    assert result.returncode == 0, result.stderr
    try:
        [firing] = prometheus.wait_for(
            lambda: _firing(prometheus, alertname="SchoolLinkDown", school="e2e-west"), timeout=60
        )
        assert firing["labels"]["school_state"] == "closed"
        assert firing["labels"]["severity"] == "critical"

        def tickets() -> list[dict]:
            return [
                a
                for message in sink.received("ticket")
                for a in message["alerts"]
                if a["labels"]["alertname"] == "SchoolLinkDown"
                and a["labels"]["school"] == "e2e-west"
            ]

        am.wait_for(tickets, timeout=60)
        woken = [
            a
            for receiver in ("pager", "chat")
            for message in sink.received(receiver)
            for a in message["alerts"]
            if a["labels"].get("school") == "e2e-west"
        ]
        assert woken == []
    finally:
        result = lab.command("up", "e2e-west/internet")
        assert result.returncode == 0, result.stderr
