"""`monitor silence` / `monitor silences` against a real Alertmanager (the shipped routing): a
silenced school's alerts are silenced and another school's are not; a device's silence covers that
device only; the list shows what was made for schools; --expire ends it; bad input and an
unreachable Alertmanager are one clear line and an exit code."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys

import pytest

from monitor.silences import _time
from tests.agents import free_port
from tests.prom import REPO, AlertmanagerProcess, alertmanager_test_config, http_json

TARGETS = """\
auths:
  v2:
    version: 2c
    community: ${SILENCE_TEST_COMMUNITY_NOT_SET}
defaults:
  snmp: {auth: v2}
members:
  - id: opod
    schools:
      - id: opod-regenboog
        targets:
          - {id: rtr-regenboog, role: router, address: 127.0.0.1}
          - {id: internet, role: link, address: 127.0.0.1}
  - id: h3o
    schools:
      - id: h3o-baken
        targets:
          - {id: sw-baken, role: switch, address: 127.0.0.1}
          - {id: ap-baken-01, role: ap, address: 127.0.0.1}
"""
AUTHOR = "jan.de.vries"
PASSWORD = "s3cret-basic-auth"


@pytest.fixture(scope="module")
def alertmanager(tmp_path_factory):
    am = AlertmanagerProcess(
        tmp_path_factory.mktemp("am"), alertmanager_test_config(None, {"group_wait": "1s"})
    ).start()
    yield am
    am.stop()


@pytest.fixture(scope="module")
def targets(tmp_path_factory):
    path = tmp_path_factory.mktemp("cfg") / "targets.yaml"
    path.write_text(TARGETS)
    return path


def monitor(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    environ = {
        k: v
        for k, v in os.environ.items()
        if k not in ("ALERTMANAGER_URL", "SCHOOLNET_CONFIG", "SILENCE_TEST_COMMUNITY_NOT_SET")
    }
    environ.update(PYTHONPATH=str(REPO), LOGNAME=AUTHOR, USER=AUTHOR, **(env or {}))
    return subprocess.run(
        [sys.executable, "-m", "monitor", *args],
        capture_output=True,
        text=True,
        env=environ,
        cwd=REPO,
        timeout=60,
    )


def post_alerts(am: AlertmanagerProcess) -> None:
    now = dt.datetime.now(dt.timezone.utc)
    alerts = [
        ("DeviceDown", "opod", "opod-regenboog", "rtr-regenboog"),
        ("SchoolLinkDown", "opod", "opod-regenboog", "internet"),
        ("DeviceDown", "h3o", "h3o-baken", "sw-baken"),
        ("DeviceDown", "h3o", "h3o-baken", "ap-baken-01"),
    ]
    am.post_alerts(
        [
            {
                "labels": {
                    "alertname": name,
                    "severity": "warning",
                    "member": member,
                    "school": school,
                    "target": target,
                },
                "startsAt": now.isoformat(),
                "endsAt": (now + dt.timedelta(hours=1)).isoformat(),
            }
            for name, member, school, target in alerts
        ]
    )


def state(am: AlertmanagerProcess, target: str) -> tuple[str, list[str]]:
    [found] = am.alerts(target=target)
    return found["status"]["state"], found["status"]["silencedBy"]


def silence_id(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 0, result.stderr
    return result.stdout.strip().rsplit(": ", 1)[1]


def test_a_school_silenced_its_neighbour_not_then_expired(alertmanager, targets):
    post_alerts(alertmanager)
    before = dt.datetime.now(dt.timezone.utc)
    # credentials in the URL go into the Authorization header, never into the output
    url = alertmanager.url.replace("http://", f"http://kien:{PASSWORD}@")
    result = monitor(
        "silence", "opod-regenboog", "--for", "2h", "--comment", "router swap, ticket 4711",
        "--alertmanager", url, "--config", str(targets),
    )  # fmt: skip
    sid = silence_id(result)
    assert result.stdout.startswith(f"silenced opod/opod-regenboog for 2h (by {AUTHOR}): ")
    assert PASSWORD not in result.stdout + result.stderr

    status, silence = http_json("GET", f"{alertmanager.url}/api/v2/silence/{sid}")
    assert status == 200
    assert {(m["name"], m["value"], m["isRegex"]) for m in silence["matchers"]} == {
        ("member", "opod", False),
        ("school", "opod-regenboog", False),
    }
    assert silence["createdBy"] == AUTHOR and silence["comment"] == "router swap, ticket 4711"
    assert silence["status"]["state"] == "active"
    length = _time(silence["endsAt"]) - before
    assert dt.timedelta(hours=2) <= length < dt.timedelta(hours=2, minutes=1)

    # the school's alerts are silenced, the other school's are not
    alertmanager.wait_for(
        lambda: (
            state(alertmanager, "rtr-regenboog") == ("suppressed", [sid])
            and state(alertmanager, "internet") == ("suppressed", [sid])
        ),
        timeout=20,
    )
    assert state(alertmanager, "sw-baken") == ("active", [])
    assert state(alertmanager, "ap-baken-01") == ("active", [])

    # the list shows it, by default URL from the environment
    listed = monitor("silences", env={"ALERTMANAGER_URL": alertmanager.url})
    assert listed.returncode == 0, listed.stderr
    [line] = [line for line in listed.stdout.splitlines() if line.startswith(sid)]
    assert "opod/opod-regenboog" in line and AUTHOR in line and "router swap" in line
    assert " 1h59m " in line or " 2h00m " in line

    expired = monitor("silence", "--expire", sid, "--alertmanager", alertmanager.url)
    assert expired.returncode == 0, expired.stderr
    assert expired.stdout.strip() == f"expired silence {sid}"
    status, silence = http_json("GET", f"{alertmanager.url}/api/v2/silence/{sid}")
    assert silence["status"]["state"] == "expired"
    alertmanager.wait_for(lambda: state(alertmanager, "rtr-regenboog") == ("active", []))
    listed = monitor("silences", "--alertmanager", alertmanager.url)
    assert sid not in listed.stdout


def test_a_device_silence_covers_that_device_only(alertmanager, targets):
    post_alerts(alertmanager)
    result = monitor(
        "silence", "h3o-baken/ap-baken-01", "--for", "90m", "--comment", "AP replaced",
        "--alertmanager", alertmanager.url, "--config", str(targets),
    )  # fmt: skip
    sid = silence_id(result)
    assert result.stdout.startswith("silenced h3o/h3o-baken/ap-baken-01 for 90m")
    status, silence = http_json("GET", f"{alertmanager.url}/api/v2/silence/{sid}")
    assert {m["name"]: m["value"] for m in silence["matchers"]} == {
        "member": "h3o",
        "school": "h3o-baken",
        "target": "ap-baken-01",
    }
    alertmanager.wait_for(lambda: state(alertmanager, "ap-baken-01") == ("suppressed", [sid]))
    assert state(alertmanager, "sw-baken") == ("active", [])

    # a silence without a school matcher (made for the platform) is not listed
    now = dt.datetime.now(dt.timezone.utc)
    status, other = http_json(
        "POST",
        f"{alertmanager.url}/api/v2/silences",
        {
            "matchers": [{"name": "alertname", "value": "Watchdog", "isRegex": False}],
            "startsAt": now.isoformat(),
            "endsAt": (now + dt.timedelta(hours=1)).isoformat(),
            "createdBy": "test",
            "comment": "not a school",
        },
    )
    assert status == 200
    listed = monitor("silences", "--alertmanager", alertmanager.url)
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.splitlines()[0].split()[:3] == ["ID", "SILENCED", "ENDS"]
    assert sid in listed.stdout and "h3o/h3o-baken/ap-baken-01" in listed.stdout
    assert other["silenceID"] not in listed.stdout
    monitor("silence", "--expire", sid, "--alertmanager", alertmanager.url)


def test_the_targets_file_defaults_like_monitor_run(alertmanager, targets):
    """No --config: $SCHOOLNET_CONFIG, as `monitor run` reads it (else ./targets.yaml)."""
    result = monitor(
        "silence", "h3o-baken/sw-baken", "--for", "10m", "--comment", "firmware",
        "--alertmanager", alertmanager.url, env={"SCHOOLNET_CONFIG": str(targets)},
    )  # fmt: skip
    sid = silence_id(result)
    status, silence = http_json("GET", f"{alertmanager.url}/api/v2/silence/{sid}")
    assert status == 200
    assert {m["name"]: m["value"] for m in silence["matchers"]}["member"] == "h3o"
    monitor("silence", "--expire", sid, "--alertmanager", alertmanager.url)


def silences_count(am: AlertmanagerProcess) -> int:
    return len(http_json("GET", f"{am.url}/api/v2/silences")[1])


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("opod-nowhere", "unknown school 'opod-nowhere'"),
        ("h3o-baken/ap-baken-99", "school h3o-baken has no target 'ap-baken-99'"),
    ],
)
def test_an_unknown_school_or_target_is_named_and_nothing_is_created(
    alertmanager, targets, name, message
):
    count = silences_count(alertmanager)
    result = monitor(
        "silence", name, "--for", "2h", "--comment", "x",
        "--alertmanager", alertmanager.url, "--config", str(targets),
    )  # fmt: skip
    assert result.returncode == 1
    assert message in result.stderr and len(result.stderr.splitlines()) == 1
    assert silences_count(alertmanager) == count


def test_an_unreachable_alertmanager_is_one_line_without_the_password(targets):
    url = f"http://kien:{PASSWORD}@127.0.0.1:{free_port()}"
    for args in (
        ["silence", "opod-regenboog", "--for", "2h", "--comment", "x", "--config", str(targets)],
        ["silences"],
        ["silence", "--expire", "0000"],
    ):
        result = monitor(*args, "--alertmanager", url)
        assert result.returncode == 1, args
        [line] = result.stderr.splitlines()
        assert "cannot reach Alertmanager at http://127.0.0.1:" in line
        assert "Connection refused" in line
        assert PASSWORD not in result.stdout + result.stderr


def test_expiring_an_unknown_silence_says_what_alertmanager_said(alertmanager):
    result = monitor(
        "silence", "--expire", "00000000-0000-0000-0000-000000000000",
        "--alertmanager", alertmanager.url,
    )  # fmt: skip
    assert result.returncode == 1
    [line] = result.stderr.splitlines()
    # Alertmanager 0.25 answers 500 "silence not found" (later versions 404)
    assert "refused DELETE" in line and "silence not found" in line


@pytest.mark.parametrize(
    "args",
    [
        ["silence"],
        ["silence", "opod-regenboog", "--for", "2h"],
        ["silence", "opod-regenboog", "--comment", "x"],
        ["silence", "opod-regenboog", "--for", "2 hours", "--comment", "x"],
        ["silence", "opod-regenboog", "--expire", "abc"],
    ],
)
def test_usage_errors_exit_2(args, targets):
    result = monitor(*args, "--config", str(targets)) if args[1:] else monitor(*args)
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip()
