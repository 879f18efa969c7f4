"""Grafana dashboards and provisioning: checked statically, and every panel query run against a
real Prometheus (with the project's rules) scraping a real collector that watches real agents."""

from __future__ import annotations

import json
import re
import textwrap
from pathlib import Path

import pytest
import yaml

from tests.agents import free_port
from tests.collector_proc import CollectorProcess
from tests.prom import (
    REPO,
    RULES_DIR,
    PrometheusProcess,
    PromQLError,
    documented_metrics,
    metric_names,
    recorded_metrics,
    scrape_config,
    wait_for,
)

DASHBOARDS_DIR = REPO / "dashboards"
PROVISIONING = REPO / "deploy" / "grafana" / "provisioning"
COMPOSE = REPO / "docker-compose.yml"
UIDS = {"schoolnet-overview", "schoolnet-school", "schoolnet-device"}
VARIABLES = {
    "schoolnet-overview": ["datasource", "member", "expected_off"],
    "schoolnet-school": ["datasource", "member", "school"],
    "schoolnet-device": ["datasource", "member", "school", "target"],
}


def dashboards() -> dict[str, dict]:
    found = {}
    for path in sorted(DASHBOARDS_DIR.glob("*.json")):
        dashboard = json.loads(path.read_text())
        found[dashboard["uid"]] = dashboard
    return found


def panels(dashboard: dict) -> list[dict]:
    """Every panel that shows data (rows, also collapsed rows' children, are containers)."""
    found = []
    for panel in dashboard["panels"]:
        if panel["type"] == "row":
            found.extend(panel.get("panels", []))
        else:
            found.append(panel)
    return found


def all_panels() -> list[tuple[str, dict]]:
    return [(uid, panel) for uid, d in dashboards().items() for panel in panels(d)]


# ---------------------------------------------------------------------------------------------
# static
# ---------------------------------------------------------------------------------------------


def test_dashboards_are_json_with_the_stable_uids():
    paths = sorted(DASHBOARDS_DIR.glob("*.json"))
    uids = [json.loads(p.read_text())["uid"] for p in paths]
    assert sorted(uids) == sorted(UIDS)
    for path in paths:
        dashboard = json.loads(path.read_text())
        assert path.stem == dashboard["uid"]  # file name = uid: easy to find, never two
        assert dashboard["title"].startswith("Schoolnet")
        assert "id" not in dashboard or dashboard["id"] is None  # ids are per Grafana instance
        ids = [p["id"] for p in dashboard["panels"]]
        assert len(ids) == len(set(ids))


def test_datasource_variable_first_then_member_and_school():
    for uid, dashboard in dashboards().items():
        variables = dashboard["templating"]["list"]
        assert [v["name"] for v in variables] == VARIABLES[uid]
        first = variables[0]
        assert first["type"] == "datasource" and first["query"] == "prometheus"
        for variable in variables[1:]:
            if variable["type"] == "custom":
                # a toggle the queries use as a number: its values must be numbers
                assert [o["value"] for o in variable["options"]] == ["1", "0"], variable
                assert variable["current"]["value"] == "1"
                continue
            assert variable["type"] == "query"
            assert variable["datasource"]["uid"] == "${datasource}"
            assert variable["definition"].startswith("label_values(")
            assert variable["query"]["query"] == variable["definition"]


def test_every_panel_queries_the_datasource_variable_and_has_a_unit():
    count = 0
    for uid, panel in all_panels():
        where = f"{uid}: {panel['title']}"
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, where
        assert panel["targets"], where
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == "${datasource}", where
            assert target["expr"].strip(), where
            count += 1
        assert panel["fieldConfig"]["defaults"].get("unit"), f"{where} has no unit"
        for override in panel["fieldConfig"].get("overrides", []):
            for prop in override["properties"]:
                if prop["id"] == "unit":
                    assert prop["value"], where
        assert panel.get("description"), f"{where} has no description"
    assert count > 40


def unit_of(panel: dict, target: dict) -> str:
    """The unit a query's values are shown in: a table column's override, else the default."""
    unit = panel["fieldConfig"]["defaults"]["unit"]
    if panel["type"] != "table":
        return unit
    renames: dict[str, str] = {}
    for transformation in panel.get("transformations", []):
        if transformation["id"] == "organize":
            renames = transformation["options"]["renameByName"]
    column = renames.get(f"Value #{target['refId']}", renames.get("Value"))
    for override in panel["fieldConfig"].get("overrides", []):
        if override["matcher"] == {"id": "byName", "options": column}:
            for prop in override["properties"]:
                if prop["id"] == "unit":
                    unit = prop["value"]
    return unit


def test_units_of_the_contract():
    """bits per second (the collector exposes bytes: *8), ratios as percent, seconds."""
    units: dict[str, set[str]] = {}
    for _, panel in all_panels():
        for target in panel["targets"]:
            units.setdefault(unit_of(panel, target), set()).add(target["expr"])
    assert {"bps", "percentunit", "s", "pps", "watt", "celsius"} <= set(units)
    for expr in units["bps"]:
        assert "* 8" in expr or "_bits:" in expr, expr
    for unit, exprs in units.items():
        for expr in exprs:
            if "_bytes" in expr or "_bits:" in expr:
                assert unit == "bps", (unit, expr)
            if "_ratio" in expr or "utilisation" in expr:
                assert unit == "percentunit", (unit, expr)
            if re.search(r"_seconds(\{|:)", expr) and "rate(" not in expr:
                assert unit == "s", (unit, expr)


def test_queries_use_documented_metrics_and_rate_interval():
    allowed = documented_metrics() | recorded_metrics()
    for uid, panel in all_panels():
        for target in panel["targets"]:
            expr = target["expr"]
            assert metric_names(expr) <= allowed, (uid, panel["title"], expr)
            for window in re.findall(r"(?:rate|increase|irate)\([^\[]*\[([^\]]+)\]", expr):
                assert window == "$__rate_interval", (uid, panel["title"], expr)


def test_thresholds_are_coloured():
    with_thresholds = 0
    for _, panel in all_panels():
        steps = panel["fieldConfig"]["defaults"].get("thresholds", {}).get("steps", [])
        for override in panel["fieldConfig"].get("overrides", []):
            for prop in override["properties"]:
                if prop["id"] == "thresholds":
                    steps = steps + prop["value"]["steps"]
        if len(steps) > 1:
            with_thresholds += 1
            assert all(step["color"] for step in steps)
    assert with_thresholds >= 15


def links_to(dashboard: dict) -> set[str]:
    urls = [link["url"] for link in dashboard.get("links", [])]
    for panel in panels(dashboard):
        defaults = panel["fieldConfig"]["defaults"]
        urls += [link["url"] for link in defaults.get("links", [])]
        for override in panel["fieldConfig"].get("overrides", []):
            for prop in override["properties"]:
                if prop["id"] == "links":
                    urls += [link["url"] for link in prop["value"]]
    return {url.split("/d/")[1].split("/")[0] for url in urls if "/d/" in url} | {
        url for url in urls if "var-" in url
    }


def test_links_overview_to_school_to_device_with_variables():
    board = dashboards()
    overview, school = board["schoolnet-overview"], board["schoolnet-school"]
    assert "schoolnet-school" in links_to(overview)
    assert "schoolnet-device" in links_to(school)
    data_links = [
        link["url"]
        for d in (overview, school)
        for panel in panels(d)
        for override in panel["fieldConfig"].get("overrides", [])
        for prop in override["properties"]
        if prop["id"] == "links"
        for link in prop["value"]
    ]
    assert any(
        "/d/schoolnet-school/" in u and "var-school=${__data.fields.school}" in u
        for u in data_links
    )
    assert any(
        "/d/schoolnet-device/" in u and "var-target=${__data.fields.target}" in u
        for u in data_links
    )
    for url in data_links:
        assert "${datasource:queryparam}" in url and "var-member=" in url
    for dashboard in board.values():
        for link in dashboard["links"]:
            assert link["includeVars"] and link["keepTime"]


def test_overview_sorts_schools_worst_first():
    overview = dashboards()["schoolnet-overview"]
    [table] = [p for p in panels(overview) if p["title"] == "Schools, worst first"]
    assert table["targets"][0]["expr"].startswith("school:schoolnet_problem:score")
    assert table["options"]["sortBy"] == [{"displayName": "Score", "desc": True}]
    renamed = next(t for t in table["transformations"] if t["id"] == "organize")
    assert renamed["options"]["renameByName"]["Value #A"] == "Score"


def compose_mounts(service: str) -> dict[str, str]:
    """container path -> host path (relative to the repository) of a service's bind mounts."""
    compose = yaml.safe_load(COMPOSE.read_text())
    mounts = {}
    for volume in compose["services"][service]["volumes"]:
        host, container, *_ = volume.split(":")
        if host.startswith((".", "/", "$")):
            mounts[container] = re.sub(r"\$\{\w+:-([^}]+)\}", r"\1", host)
    return mounts


def test_provisioning_points_at_what_compose_mounts():
    mounts = compose_mounts("grafana")
    assert (REPO / mounts["/etc/grafana/provisioning"]).resolve() == PROVISIONING.resolve()
    [datasource] = yaml.safe_load((PROVISIONING / "datasources" / "prometheus.yml").read_text())[
        "datasources"
    ]
    assert datasource["type"] == "prometheus" and datasource["uid"] == "prometheus"
    assert datasource["url"] == "http://prometheus:9090"
    compose = yaml.safe_load(COMPOSE.read_text())
    assert "prometheus" in compose["services"]
    assert any(p.endswith(":9090") for p in compose["services"]["prometheus"]["ports"])
    prometheus = yaml.safe_load((REPO / "deploy/prometheus/prometheus.yml").read_text())
    collector_job = next(j for j in prometheus["scrape_configs"] if j["job_name"] == "schoolnet")
    assert datasource["jsonData"]["timeInterval"] == collector_job["scrape_interval"]
    [provider] = yaml.safe_load((PROVISIONING / "dashboards" / "schoolnet.yml").read_text())[
        "providers"
    ]
    path = provider["options"]["path"]
    assert path in mounts, f"compose mounts nothing at {path}"
    host = (REPO / mounts[path]).resolve()
    assert host == DASHBOARDS_DIR.resolve()
    assert {p.stem for p in host.glob("*.json")} == UIDS
    home = compose["services"]["grafana"]["environment"][
        "GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"
    ]
    assert Path(home).parent.as_posix() == path and Path(home).stem == "schoolnet-overview"


# ---------------------------------------------------------------------------------------------
# live: every query against a real Prometheus scraping a real collector
# ---------------------------------------------------------------------------------------------

# Panels that legitimately show nothing in a healthy lab: "no problems" lists.
EMPTY_WHEN_HEALTHY = {
    ("schoolnet-overview", "Firing alerts"),  # the shipped rules need minutes to fire anything
    ("schoolnet-overview", "Link loss by school"),  # draws only links with loss
    ("schoolnet-school", "Interfaces with errors or discards"),
    ("schoolnet-device", "Errors and discards per interface"),
}
# The lab's member and school for the school and overview dashboards, and the devices the device
# dashboard is shown for. Health families depend on the vendor (a switch without PoE has no PoE
# series), so each device-dashboard query must return data for at least one of these devices.
MEMBER, SCHOOL = "coop", "school-a"
DEVICES = ["sw-a", "sw-poe", "ap-a", "rtr-a"]
# What each lab device is known to report (its recording or agent), per device-dashboard panel.
DEVICE_DATA = {
    "Reachable": ["sw-a", "sw-poe", "ap-a", "rtr-a"],
    "Identity": ["sw-a", "sw-poe", "ap-a", "rtr-a"],
    "Uptime": ["sw-a", "rtr-a"],
    "Interfaces": ["sw-a", "rtr-a"],
    "Traffic per interface": ["rtr-a"],  # a recording's counters do not move; snmpd's lo does
    "Memory": ["sw-a", "rtr-a"],
    "CPU": ["sw-a"],
    "Temperature": ["sw-a"],
    "Fans and power supplies": ["sw-a"],
    "PoE power": ["sw-poe"],
    "Wi-Fi clients": ["ap-a"],
}
GRAFANA_VARIABLES = {
    "__rate_interval": "15s",
    "__interval": "1s",
    "__range": "5m",
    "expected_off": "1",  # the overview's toggle, at its default (hide)
}


def render(expr: str, values: dict[str, str]) -> str:
    """Grafana's variable substitution for the forms the dashboards use: $name, ${name},
    ${name:format}. Other $ (label_replace's "$1") stay."""

    def substitute(match: re.Match) -> str:
        name = match.group(1) or match.group(2)
        return values.get(name, match.group(0))

    return re.sub(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)", substitute, expr)


@pytest.fixture(scope="module")
def lab(snmpd, snmpsim, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("dashboards")
    config = workdir / "targets.yaml"
    sim = f"127.0.0.1:{snmpsim.port}"
    config.write_text(
        textwrap.dedent(f"""\
        defaults:
          ping: {{interval: 1s, count: 2, spacing: 200ms, timeout: 500ms}}
          snmp: {{interval: 2s, timeout: 1500ms, retries: 0, auth: v2}}
        auths:
          v2: {{version: 2c, community: "${{TEST_COMMUNITY}}"}}
          c3560: {{version: 2c, community: cisco-c3560}}
          zyxel: {{version: 2c, community: XMG1915-10EP}}
          unifi: {{version: 2c, community: unifi}}
        calendars:
          lab: {{open: {{mon-sun: 00:00-24:00}}}}
        members:
          - id: {MEMBER}
            name: Test Cooperative
            schools:
              - id: {SCHOOL}
                name: School A
                calendar: lab
                targets:
                  - {{id: rtr-a, role: router, address: "127.0.0.1:{snmpd.port}"}}
                  - {{id: sw-a, role: switch, address: "{sim}", parent: rtr-a,
                      snmp: {{auth: c3560, interval: 4s, timeout: 3s}}}}
                  - {{id: sw-poe, role: switch, address: "{sim}", parent: rtr-a,
                      snmp: {{auth: zyxel}}}}
                  - {{id: ap-a, role: ap, address: "{sim}", parent: sw-a,
                      snmp: {{auth: unifi}}}}
                  - {{id: ap-b, role: ap, address: 127.0.0.3, parent: sw-poe, snmp: false,
                      expected_off: {{mon-sun: 00:00-24:00}}}}
                  - id: internet
                    role: link
                    address: 127.0.0.4
                    bandwidth: 500Mbit
                    via: {{target: rtr-a, interface: lo}}
              - id: school-b
                name: School B
                targets:
                  - {{id: sw-dead, role: switch, address: "127.0.0.5:{free_port()}",
                      ping: false}}
                  - {{id: internet, role: link, address: 127.0.0.6}}
        """)
    )
    collector = CollectorProcess(config, env={"TEST_COMMUNITY": snmpd.community}).start()
    prometheus = None
    try:
        collector.wait_for(
            lambda: (
                all(
                    collector.value("schoolnet_snmp_up", target=t) == 1
                    for t in ("rtr-a", "sw-a", "sw-poe", "ap-a")
                )
                and collector.value("schoolnet_up", target="sw-dead") == 0
                and collector.value("schoolnet_ping_up", target="ap-b") == 1
            ),
            timeout=30,
        )
        prometheus = PrometheusProcess(
            workdir / "prometheus",
            scrape_configs=[scrape_config("schoolnet", f"127.0.0.1:{collector.port}")],
            rule_files=sorted(RULES_DIR.glob("*.yml")),
        ).start()
        # warm-up: two scrapes for the rates, then the chain of recording rules (groups run
        # independently, so a rule using another group's result lags one evaluation): until every
        # recording rule has produced data
        recorded = sorted(recorded_metrics())
        prometheus.wait_for(
            lambda: (
                all(prometheus.query(name) for name in recorded)
                and len(prometheus.query("school:schoolnet_problem:score")) == 2
                # snmpd's counters move, but net-snmp caches them for a few seconds: wait until
                # the 15s window of the traffic panels holds two different values
                and prometheus.query(
                    'rate(schoolnet_interface_receive_bytes_total{target="rtr-a"}[15s]) > 0'
                )
            ),
            timeout=30,
        )
        yield prometheus
    finally:
        if prometheus is not None:
            prometheus.stop()
        collector.stop()


def queries(uid: str) -> list[tuple[str, str, str]]:
    """(panel title, refId, expr) of every query of a dashboard."""
    return [
        (panel["title"], target["refId"], target["expr"])
        for panel in panels(dashboards()[uid])
        for target in panel["targets"]
    ]


def test_the_recording_rules_evaluate_without_errors(lab):
    broken = [rule for rule in lab.rule_health() if rule[1] != "ok"]
    assert broken == []
    assert lab.targets_up()


def test_variables_offer_the_lab(lab):
    values = {"member": MEMBER, "school": SCHOOL, "target": "sw-a"}
    for uid, dashboard in dashboards().items():
        for variable in dashboard["templating"]["list"][1:]:
            if variable["type"] == "custom":
                continue
            match = re.fullmatch(r"label_values\((.+), (\w+)\)", variable["definition"])
            assert match, variable["definition"]
            selector, label = match.groups()
            found = lab.query(f"group by ({label}) ({render(selector, values)})")
            offered = {sample["metric"][label] for sample in found}
            assert values[variable["name"]] in offered, (uid, variable["name"], offered)


@pytest.mark.parametrize("uid", ["schoolnet-overview", "schoolnet-school"])
def test_every_panel_query_returns_data(lab, uid):
    values = {"member": MEMBER, "school": SCHOOL, **GRAFANA_VARIABLES}
    empty = []
    for title, ref, expr in queries(uid):
        try:
            result = lab.query(render(expr, values))
        except PromQLError as exc:
            pytest.fail(f"{uid} / {title} / {ref}: {exc}")
        if not result and (uid, title) not in EMPTY_WHEN_HEALTHY:
            empty.append(f"{title} [{ref}]: {render(expr, values)}")
    assert empty == [], "panels without data:\n" + "\n".join(empty)


def test_every_device_panel_query_returns_data_for_some_device(lab):
    empty = []
    for title, ref, expr in queries("schoolnet-device"):
        answered = []
        for device in DEVICES:
            values = {"member": MEMBER, "school": SCHOOL, "target": device, **GRAFANA_VARIABLES}
            expected = device in DEVICE_DATA.get(title, ())
            promql = render(expr, values)
            try:
                # A device expected to answer gets a few evaluations: under load one poll can miss
                # the rate window; a panel that never answers still fails.
                result = (
                    wait_for(lambda q=promql: lab.query(q), timeout=20)
                    if expected
                    else lab.query(promql)
                )
            except PromQLError as exc:
                pytest.fail(f"schoolnet-device / {title} / {ref} ({device}): {exc}")
            except TimeoutError:
                result = []
            if result:
                answered.append(device)
        if not answered and ("schoolnet-device", title) not in EMPTY_WHEN_HEALTHY:
            empty.append(f"{title} [{ref}]: {expr}")
        assert set(DEVICE_DATA.get(title, ())) <= set(answered), (title, ref, answered)
    assert empty == [], "panels without data for any device:\n" + "\n".join(empty)


def test_the_calendar_reaches_the_dashboards(lab):
    """School A's calendar is open around the clock and ap-b is switched off around the clock
    but answers: the collector says so, the recording rules carry it to the panels."""
    assert lab.value("schoolnet_school_open", school=SCHOOL) == 1
    assert lab.value("schoolnet_school_maintenance", school=SCHOOL) == 0
    assert lab.value("schoolnet_target_expected_down", target="ap-b") == 1
    state = lab.query("school:schoolnet_calendar_state:info")
    assert {(s["metric"]["school"], s["metric"]["school_state"]) for s in state} == {
        (SCHOOL, "open"),
        ("school-b", "open"),  # no calendar: as before calendars
    }
    # ap-b answers, so it is not a switched-off device that is down
    assert lab.value("school:schoolnet_devices_switched_off:count", school=SCHOOL) == 0


def test_the_lab_looks_as_it_is(lab):
    """The numbers behind the overview are the lab's truth, not merely present."""
    score = {s["metric"]["school"]: float(s["value"][1]) for s in lab.query(
        "school:schoolnet_problem:score")}  # fmt: skip
    assert score["school-b"] >= 100  # a dead switch
    assert score["school-b"] > score[SCHOOL]
    assert lab.value("school:schoolnet_devices_down:count", school="school-b") == 1
    assert lab.value("school:schoolnet_devices_down:count", school=SCHOOL) == 0
    assert lab.value("school:schoolnet_link_up:max", school=SCHOOL) == 1
    utilisation = lab.value('schoolnet:link_utilisation:ratio_rate5m{direction="receive"}')
    assert utilisation is not None and 0 <= utilisation < 0.01  # SNMP chatter on lo, of 500Mbit
    [link] = lab.query("schoolnet:link_utilisation:ratio_rate5m")[:1]
    assert link["metric"]["target"] == "internet" and link["metric"]["via_target"] == "rtr-a"
