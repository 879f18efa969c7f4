"""ICMP against hostile and broken networks, in namespaces the tests create: a device that
forges replies for another target, and routers that answer with ICMP errors instead of silence."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from tests.netns import in_ns, netns, nft, routed, run_in

REPO = Path(__file__).resolve().parent.parent


def _in_namespace(
    name: str, count: int, timeout: float, *addresses: str, drop_net_raw: bool = False
) -> dict:
    result = run_in(
        name,
        [sys.executable, "-m", "tests.icmp_rounds", str(count), str(timeout), *addresses],
        drop_net_raw=drop_net_raw,
        timeout=120,
        cwd=REPO,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_a_device_that_sees_its_echoes_cannot_answer_for_another_target():
    """127.0.0.9 never answers. A forger that sees the echoes sent to its own address
    (127.0.0.1) sends replies from 127.0.0.9 with everything an echo carried (identifier,
    payload, cookie), for every sequence number once and then for a window around the ones it
    sees. Before: one cookie per process and sequences from 0 made 127.0.0.9 look up."""
    with netns() as ns:
        nft(
            ns,
            """
            table inet smtest {
                chain in { type filter hook input priority 0;
                    ip daddr 127.0.0.9 icmp type echo-request drop; }
            }""",
        )
        forger = subprocess.Popen(
            ["ip", "netns", "exec", ns, sys.executable, "-m", "tests.icmp_forger"]
            + ["127.0.0.1", "127.0.0.9"],
            stdout=subprocess.PIPE,
            text=True,
            cwd=REPO,
        )
        try:
            assert forger.stdout.readline().strip() == "ready"
            # ten echoes 0.2 s apart, each waited for 3 s: the sweep fits in the round
            out = _in_namespace(ns, 10, 3.0, "127.0.0.1", "127.0.0.9")
        finally:
            forger.terminate()
            report = json.loads(forger.communicate(timeout=30)[0].splitlines()[-1])
    own, victim = out["rounds"]
    assert report["echoes_seen"] >= 1 and report["forged"] >= 65536, report
    assert victim["sent"] == 10 and victim["rtts"] == [], victim
    assert own["rtts"], own  # the forger's own address still answers for itself
    # forgeries with the right address and sequence arrived, and were refused by their cookie
    assert out["stats"]["forged"] >= 1, out["stats"]


def test_icmp_errors_say_what_happened_and_which_router_said_so():
    """Behind a router that has `unreachable` and `prohibit` routes, and one that lets TTLs run
    out: the round's error names the ICMP error and the router, instead of plain loss."""
    with netns() as client, netns() as router, routed(client, router) as (gateway, gateway6):
        in_ns(router, "ip", "route", "add", "unreachable", "198.51.100.0/25")
        in_ns(router, "ip", "route", "add", "prohibit", "198.51.100.128/25")
        in_ns(router, "ip", "-6", "route", "add", "unreachable", "2001:db8:9::/64")
        in_ns(router, "ip", "-6", "route", "add", "prohibit", "2001:db8:a::/64")
        # as if a loop had used up the time to live of what goes to 203.0.113.0/24
        in_ns(router, "ip", "route", "add", "203.0.113.0/24", "dev", "r0")
        nft(
            router,
            """
            table ip smtest {
                chain pre {
                    type filter hook prerouting priority -150
                    ip daddr 203.0.113.0/24 ip ttl set 1
                }
            }""",
        )
        out = _in_namespace(
            client,
            2,
            1.0,
            "198.51.100.7",
            "198.51.100.200",
            "2001:db8:9::7",
            "2001:db8:a::7",
            "203.0.113.5",
            gateway,
        )
    unreachable, prohibited, unreachable6, prohibited6, looped, alive = out["rounds"]
    assert unreachable["sent"] == 2 and unreachable["rtts"] == []
    assert unreachable["error"] == f"host unreachable, reported by {gateway}"
    assert (
        prohibited["error"] == f"communication administratively prohibited, reported by {gateway}"
    )
    assert unreachable6["rtts"] == [] and unreachable6["error"] == (
        f"no route to destination, reported by {gateway6}"
    )
    assert prohibited6["error"] == (
        f"communication administratively prohibited, reported by {gateway6}"
    )
    assert looped["rtts"] == [] and looped["error"] == (
        f"time to live exceeded in transit (a routing loop?), reported by {gateway}"
    )
    assert len(alive["rtts"]) == 2 and alive["error"] is None
    assert out["stats"]["errors"] >= 10


# Runs inside the client namespace: the collector, and its status page read from there.
_COLLECTOR_IN_NAMESPACE = """\
import json, subprocess, sys, time, urllib.request
collector = subprocess.Popen(
    [sys.executable, "-m", "monitor", "run", "--config", sys.argv[1], "--listen", "127.0.0.1:9430"],
    stderr=subprocess.PIPE, text=True)
page, deadline = "", time.monotonic() + 30
while time.monotonic() < deadline and "reported by" not in page:
    time.sleep(0.3)
    try:
        page = urllib.request.urlopen("http://127.0.0.1:9430/", timeout=5).read().decode()
    except OSError:
        pass
collector.terminate()
print(json.dumps({"page": page, "log": collector.communicate(timeout=15)[1]}))
"""


def test_the_status_page_and_the_log_say_which_router_answered(tmp_path):
    config = tmp_path / "targets.yaml"
    config.write_text(
        "defaults:\n  ping: {interval: 1s, count: 2, spacing: 200ms, timeout: 500ms}\n"
        "members:\n  - id: m\n    schools:\n      - id: s\n        targets:\n"
        "          - {id: ap-1, role: ap, address: 198.51.100.7, snmp: false}\n"
    )
    with netns() as client, netns() as router, routed(client, router) as (gateway, _):
        in_ns(router, "ip", "route", "add", "unreachable", "198.51.100.0/24")
        result = run_in(
            client, [sys.executable, "-c", _COLLECTOR_IN_NAMESPACE, str(config)], timeout=60
        )
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    said = f"host unreachable, reported by {gateway}"
    assert f"ping: {said}" in out["page"], out["page"][-2000:]
    assert re.search(rf'msg="ping down" target=m/s/ap-1 .*error="{re.escape(said)}"', out["log"])


def test_the_unprivileged_datagram_socket_explains_errors_too():
    """Without CAP_NET_RAW the kernel hands ICMP errors to the datagram socket's error queue
    (IP_RECVERR), with the echo they answer and the router that sent them."""
    with (
        netns(ping_group_range="0 0") as client,
        netns() as router,
        routed(client, router) as (gateway, gateway6),
    ):
        in_ns(router, "ip", "route", "add", "unreachable", "198.51.100.0/25")
        in_ns(router, "ip", "-6", "route", "add", "prohibit", "2001:db8:a::/64")
        out = _in_namespace(
            client, 2, 1.0, "198.51.100.7", "2001:db8:a::7", gateway, drop_net_raw=True
        )
    assert set(out["kinds"].values()) == {"datagram"}
    unreachable, prohibited6, alive = out["rounds"]
    assert unreachable["rtts"] == [] and unreachable["error"] == (
        f"host unreachable, reported by {gateway}"
    )
    assert prohibited6["rtts"] == [] and prohibited6["error"] == (
        f"communication administratively prohibited, reported by {gateway6}"
    )
    assert len(alive["rtts"]) == 2 and alive["error"] is None
