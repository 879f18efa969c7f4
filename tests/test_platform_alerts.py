"""The alerting path watched, live: a real Prometheus with the shipped rules (`for:` shortened)
scraping itself, a real Alertmanager with the shipped routing and its real integrations (Slack-
format webhooks, PagerDuty, e-mail) pointed at loopback, and a real collector.

- A pager that answers HTTP 500: AlertmanagerFailedToSendAlerts fires for `pagerduty` and reaches
  the team through the fallback receiver's chat; a pager that works: the alert stays quiet.
- Watchdog pings the heartbeat URL read from the secrets directory, again and again.
- A collector whose scrape fails while it runs: CollectorScrapeFailing pages, CollectorDown is
  suppressed; the collector stopped: CollectorDown pages.
- Every Prometheus/Alertmanager metric the platform rules use exists in the real binaries.
"""

from __future__ import annotations

import datetime as dt
import re
import shutil
import time
from pathlib import Path

import yaml

from tests.agents import free_port
from tests.collector_proc import CollectorProcess
from tests.prom import (
    ALERTMANAGER_CONFIG,
    ALERTMANAGER_DIR,
    PROMETHEUS_CONFIG,
    RULES_DIR,
    AlertmanagerProcess,
    PrometheusProcess,
    WebhookSink,
    scrape_config,
    shortened_rules,
)

SECRETS_MOUNT = "/etc/alertmanager/secrets/"
PLATFORM_RULES = RULES_DIR / "platform-alerts.yml"
# a loopback port nothing listens on: e-mail fails fast, and never leaves the machine
CLOSED_SMTP = f"127.0.0.1:{free_port()}"


def live_alertmanager_config(secrets: Path, pager_url: str) -> dict:
    """The shipped alertmanager.yml with its real integrations kept and every endpoint on
    loopback: secret files from `secrets`, PagerDuty's API at `pager_url`, SMTP at a closed port.
    Timers shortened (group_wait/interval 1s; repeat 1h, the heartbeat's 2s)."""
    config = yaml.safe_load(ALERTMANAGER_CONFIG.read_text())
    config["global"]["smtp_smarthost"] = CLOSED_SMTP
    config["global"]["smtp_require_tls"] = False

    def walk(node):
        if isinstance(node, dict):
            for key, value in node.items():
                if key.endswith("_file") and isinstance(value, str):
                    node[key] = str(secrets / value.removeprefix(SECRETS_MOUNT))
                else:
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(config)
    for receiver in config["receivers"]:
        for pagerduty in receiver.get("pagerduty_configs", []):
            pagerduty["url"] = pager_url

    def retime(route: dict) -> None:
        heartbeat = route.get("receiver") == "heartbeat"
        route["group_wait"] = "1s"
        route["group_interval"] = "1s"
        route["repeat_interval"] = "2s" if heartbeat else "1h"
        for child in route.get("routes", []):
            retime(child)

    retime(config["route"])
    return config


class Stack:
    """Sinks, Alertmanager and Prometheus of one live test."""

    def __init__(
        self,
        workdir: Path,
        pager_status: int,
        extra_scrapes: list[dict] = (),
        factor: float = 60,
    ) -> None:
        self.chat = WebhookSink().start()  # chat webhook and heartbeat: Slack-format posts
        self.pager = WebhookSink(status=pager_status).start()
        secrets = workdir / "secrets"
        secrets.mkdir(parents=True)
        (secrets / "chat_webhook_url").write_text(self.chat.url + "/chat")
        (secrets / "heartbeat_url").write_text(self.chat.url + "/heartbeat")
        (secrets / "pagerduty_routing_key").write_text("0123456789abcdef0123456789abcdef")
        (secrets / "smtp_password").write_text("not-used")
        am_dir = workdir / "am"
        am_dir.mkdir()
        shutil.copytree(ALERTMANAGER_DIR / "templates", am_dir / "templates")
        config = live_alertmanager_config(secrets, self.pager.url + "/v2/enqueue")
        self.am = AlertmanagerProcess(am_dir, config)
        self.prometheus: PrometheusProcess | None = None
        try:
            self.am.start()
            prometheus_port = free_port()
            self.prometheus = PrometheusProcess(
                workdir / "prometheus",
                scrape_configs=[
                    scrape_config("prometheus", f"127.0.0.1:{prometheus_port}"),
                    scrape_config("alertmanager", f"127.0.0.1:{self.am.port}"),
                    *extra_scrapes,
                ],
                rule_files=shortened_rules(workdir / "rules", factor=factor),
                alertmanager_urls=[self.am.url],
                # alerts evaluated before the notifier has found Alertmanager are dropped;
                # resend them within a second instead of a minute
                extra_args=["--rules.alert.resend-delay=1s"],
                port=prometheus_port,
            ).start()
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        if self.prometheus is not None:
            self.prometheus.stop()
        self.am.stop()
        self.chat.stop()
        self.pager.stop()

    def chat_texts(self, path: str = "chat") -> list[str]:
        """Title and text of every Slack-format message posted to /<path>."""
        return [
            f"{attachment.get('title', '')}\n{attachment.get('text', '')}"
            for payload in self.chat.received(path)
            for attachment in payload.get("attachments", [])
        ]

    def page_a_school(self) -> None:
        """A critical school alert, straight into Alertmanager: it goes to the pager (and chat)."""
        now = dt.datetime.now(dt.timezone.utc)
        self.am.post_alerts(
            [
                {
                    "labels": {
                        "alertname": "SchoolLinkDown",
                        "severity": "critical",
                        "member": "opod",
                        "school": "opod-regenboog",
                        "target": "internet",
                    },
                    "annotations": {"summary": "opod-regenboog: offline"},
                    "startsAt": now.isoformat(),
                    "endsAt": (now + dt.timedelta(minutes=10)).isoformat(),
                }
            ]
        )


def failed_to_send(prometheus: PrometheusProcess, state: str | None = None) -> list[dict]:
    return [
        a
        for a in prometheus.alerts(state)
        if a["labels"]["alertname"] == "AlertmanagerFailedToSendAlerts"
    ]


def test_a_failing_pager_is_reported_through_the_fallback(tmp_path):
    stack = Stack(tmp_path, pager_status=500)
    try:
        stack.page_a_school()
        # PagerDuty answered 500 to every attempt until Alertmanager gave up
        stack.am.wait_for(lambda: stack.pager.received(), timeout=20)
        prometheus = stack.prometheus
        assert prometheus is not None
        [alert] = prometheus.wait_for(lambda: failed_to_send(prometheus, "firing"), timeout=60)
        assert alert["labels"]["integration"] == "pagerduty"
        assert alert["labels"]["severity"] == "warning"
        # ... and it reached the team's chat, through the fallback receiver
        stack.am.wait_for(
            lambda: any(
                "AlertmanagerFailedToSendAlerts" in text and "pagerduty" in text
                for text in stack.chat_texts()
            ),
            timeout=30,
        )
        [grouped] = stack.am.alerts(
            alertname="AlertmanagerFailedToSendAlerts", integration="pagerduty"
        )
        assert grouped["receivers"] == [{"name": "platform-fallback"}]
        # the school's page itself never arrived; its chat copy did
        assert stack.pager.received() and all(p.get("routing_key") for p in stack.pager.received())
        assert any("SchoolLinkDown" in text for text in stack.chat_texts())
        # no secret in what the platform alert says
        for text in stack.chat_texts():
            assert "0123456789abcdef" not in text
        # the fallback's e-mail half failed meanwhile (a closed port): the chat half delivered
        # regardless, which is why the fallback has two integrations
        stack.am.wait_for(
            lambda: re.search(
                r"Notify for alerts failed.*platform-fallback/email",
                stack.am.log(),
            ),
            timeout=30,
        )
    finally:
        stack.stop()


def test_a_working_pager_keeps_the_alert_quiet(tmp_path):
    stack = Stack(tmp_path, pager_status=202)
    try:
        stack.page_a_school()
        prometheus = stack.prometheus
        assert prometheus is not None
        # notifications went out through PagerDuty (Prometheus saw them counted) ...
        prometheus.wait_for(
            lambda: (prometheus.value(
                'alertmanager_notifications_total{integration="pagerduty"}'
            ) or 0) >= 1,
            timeout=30,
        )  # fmt: skip
        # ... for longer than the failing pager needed to be reported (~25 s), and none failed
        deadline = time.monotonic() + 35
        while time.monotonic() < deadline:
            assert failed_to_send(prometheus) == []
            time.sleep(1)
        assert (
            prometheus.value('alertmanager_notifications_failed_total{integration="pagerduty"}')
            == 0
        )
        assert not any("AlertmanagerFailedToSendAlerts" in t for t in stack.chat_texts())
        assert stack.pager.received()
    finally:
        stack.stop()


def test_watchdog_pings_the_heartbeat_url_from_the_secrets_directory(tmp_path):
    """The heartbeat receiver as shipped (a Slack-format POST to secrets/heartbeat_url), driven by
    the shipped Watchdog rule: pings arrive again and again, and nowhere else."""
    stack = Stack(tmp_path, pager_status=202)
    try:
        stack.am.wait_for(lambda: len(stack.chat.received("heartbeat")) >= 3, timeout=30)
        pings = stack.chat_texts("heartbeat")
        assert all(text.startswith("schoolnet-monitor heartbeat") for text in pings)
        assert not any("Watchdog" in text for text in stack.chat_texts("chat"))
        assert [a["receivers"] for a in stack.am.alerts(alertname="Watchdog")] == [
            [{"name": "heartbeat"}]
        ]
    finally:
        stack.stop()


def platform_metric_names() -> set[str]:
    names = set()
    for group in yaml.safe_load(PLATFORM_RULES.read_text())["groups"]:
        for rule in group["rules"]:
            names.update(re.findall(r"\b((?:prometheus|alertmanager)_[a-z_]+)\b", rule["expr"]))
    return names


def test_the_platform_rules_use_metrics_the_real_binaries_export(tmp_path):
    """Prometheus 2.42 and Alertmanager 0.25 as shipped: a renamed or missing metric would make a
    platform alert silently unable to fire."""
    names = platform_metric_names()
    assert {"alertmanager_notifications_failed_total", "prometheus_rule_evaluation_failures_total",
            "prometheus_tsdb_retention_limit_bytes"} <= names  # fmt: skip
    stack = Stack(tmp_path, pager_status=202)
    try:
        prometheus = stack.prometheus
        assert prometheus is not None

        def missing() -> set[str]:
            return {n for n in names if not prometheus.query(f'count({{__name__="{n}"}})')}

        prometheus.wait_for(lambda: not missing(), timeout=30)
        # and none of them fails on a healthy stack (Watchdog aside, nothing platform fires)
        platform = {r["alert"] for g in yaml.safe_load(PLATFORM_RULES.read_text())["groups"]
                    for r in g["rules"]}  # fmt: skip
        assert {h for h in prometheus.rule_health() if h[1] == "err"} == set()
        firing = {a["labels"]["alertname"] for a in prometheus.alerts()} & platform
        assert firing == {"Watchdog"}
    finally:
        stack.stop()


COLLECTOR_TARGETS = """\
defaults:
  ping: {interval: 1s, count: 1, timeout: 500ms}
members:
  - id: coop
    schools:
      - id: school-a
        targets:
          - {id: t1, role: router, address: 127.0.0.1, snmp: false}
"""


def test_a_scrape_failing_while_the_collector_runs_is_not_collector_down(tmp_path):
    """The real collector, scraped as production does (job schoolnet-health on /-/healthy, as in
    the shipped prometheus.yml) next to a schoolnet job whose scrape fails while the process runs:
    its metrics_path is the status page, HTML, which Prometheus cannot parse (what a broken
    exposition looks like). CollectorScrapeFailing pages and suppresses CollectorDown; once the
    collector is stopped, CollectorScrapeFailing ends and CollectorDown pages."""
    config = tmp_path / "targets.yaml"
    config.write_text(COLLECTOR_TARGETS)
    collector = CollectorProcess(config).start()
    shipped = {
        j["job_name"]: j for j in yaml.safe_load(PROMETHEUS_CONFIG.read_text())["scrape_configs"]
    }
    address = f"127.0.0.1:{collector.port}"
    health = scrape_config(
        "schoolnet-health", address, metrics_path=shipped["schoolnet-health"]["metrics_path"]
    )
    broken = scrape_config("schoolnet", address, metrics_path="/")
    stack = None
    try:
        # `for:` divided by 20, not 60: CollectorScrapeFailing (3 s) must reach Alertmanager
        # before CollectorDown (6 s) does, with room for scrape offsets on a busy machine
        stack = Stack(
            tmp_path / "stack", pager_status=202, extra_scrapes=[health, broken], factor=20
        )
        prometheus = stack.prometheus
        assert prometheus is not None
        prometheus.wait_for(
            lambda: (
                prometheus.value('up{job="schoolnet-health"}') == 1
                and prometheus.value('up{job="schoolnet"}') == 0
            ),
            timeout=30,
        )
        scrape = stack.am.wait_for(
            lambda: [a for a in stack.am.alerts(alertname="CollectorScrapeFailing")
                     if a["status"]["state"] == "active"],
            timeout=30,
        )  # fmt: skip
        assert scrape[0]["labels"]["instance"] == address
        down = stack.am.wait_for(lambda: stack.am.alerts(alertname="CollectorDown"), timeout=30)
        assert down[0]["status"]["state"] == "suppressed"
        assert down[0]["status"]["inhibitedBy"] == [scrape[0]["fingerprint"]]
        stack.am.wait_for(lambda: pages_of(stack, "CollectorScrapeFailing"), timeout=30)
        assert pages_of(stack, "CollectorDown") == []

        collector.stop()
        prometheus.wait_for(
            lambda: not [a for a in prometheus.alerts("firing")
                         if a["labels"]["alertname"] == "CollectorScrapeFailing"],
            timeout=30,
        )  # fmt: skip
        stack.am.wait_for(lambda: pages_of(stack, "CollectorDown"), timeout=30)
    finally:
        if stack is not None:
            stack.stop()
        collector.kill()


def pages_of(stack: Stack, alertname: str) -> list[dict]:
    """PagerDuty events (Events API v2) of firing alerts named `alertname`."""
    return [
        p
        for p in stack.pager.received()
        if p.get("event_action") == "trigger" and alertname in p["payload"]["summary"]
    ]
