"""The ICMP prober on real sockets: loopback, and namespaces the tests create for the rest."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time

import pytest

from monitor.config.model import PingSettings
from monitor.probes.icmp import IcmpProber, checksum
from monitor.results import PingRound
from tests.netns import netns, nft, run_in


def _rounds(addresses: list[str], settings: PingSettings, spread: float = 1.0):
    async def run():
        prober = IcmpProber()
        try:

            async def one(i: int, address: str) -> PingRound:
                await asyncio.sleep(spread * i / len(addresses))
                return await prober.round(address, settings)

            return await asyncio.gather(*(one(i, a) for i, a in enumerate(addresses))), prober
        finally:
            prober.close()

    return asyncio.run(run())


def test_two_thousand_loopback_targets_lose_nothing():
    """Hundreds of rounds in flight share one socket; no reply may be lost or go to the wrong
    round (a thread pool of ping3.ping() loses about 1% here)."""
    addresses = [f"127.{10 + i // 250}.{i % 250}.{1 + i % 7}" for i in range(2000)]
    settings = PingSettings(count=3, timeout=1.0, spacing=0.5, interval=15)
    results, prober = _rounds(addresses, settings)
    assert all(r.error is None for r in results)
    assert sum(r.sent for r in results) == 6000
    assert [r.received for r in results] == [3] * 2000
    assert all(0 < rtt < 1.0 for r in results for rtt in r.rtts)
    assert prober.stats.sent == prober.stats.received == 6000
    assert prober.stats.unmatched == 0


def test_round_statistics():
    [result], _ = _rounds(["127.0.0.1"], PingSettings(count=5, timeout=1, spacing=0.05))
    assert result.sent == 5 and result.received == 5 and result.loss_ratio == 0
    rtts = sorted(result.rtts)
    assert result.rtt_median == rtts[2]
    assert result.jitter is not None and result.jitter >= 0


def test_round_statistics_by_definition():
    r = PingRound(0.0, 5, (0.010, 0.030, 0.020))
    assert r.loss_ratio == pytest.approx(0.4)
    assert r.rtt_median == pytest.approx(0.020)
    assert r.jitter == pytest.approx((0.020 + 0.010) / 2)
    assert PingRound(0.0, 5, ()).jitter is None and PingRound(0.0, 5, ()).rtt_median is None
    assert PingRound(0.0, 5, (0.1,)).jitter is None


def test_checksum_matches_rfc1071_example():
    # RFC 1071 section 3 example words 0001 f203 f4f5 f6f7 sum to ddf2; checksum is its complement
    assert checksum(bytes.fromhex("0001f203f4f5f6f7")) == 0xFFFF - 0xDDF2
    assert checksum(b"\x45") == checksum(b"\x45\x00")


def _in_namespace(
    name: str, count: int, timeout: float, *addresses: str, drop_net_raw: bool = False
) -> dict:
    result = run_in(
        name,
        [sys.executable, "-m", "tests.icmp_rounds", str(count), str(timeout), *addresses],
        drop_net_raw=drop_net_raw,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_a_target_that_never_answers_is_all_loss():
    """In a namespace of our own, echo requests to one loopback address are dropped."""
    with netns() as ns:
        nft(
            ns,
            """
            table inet smtest {
                chain in { type filter hook input priority 0;
                    ip daddr 127.0.0.9 icmp type echo-request drop; }
                chain out { type filter hook output priority 0;
                    ip daddr 127.0.0.10 icmp type echo-request drop; }
            }""",
        )
        out = _in_namespace(ns, 3, 0.5, "127.0.0.9", "127.0.0.1", "127.0.0.10")
    silent, alive, refused = out["rounds"]
    assert silent["sent"] == 3 and silent["rtts"] == [] and silent["error"] is None
    assert alive["sent"] == 3 and len(alive["rtts"]) == 3
    # a local firewall refusing the request is an error we can name, not just loss
    assert refused["sent"] == 0 and "not permitted" in refused["error"]


def test_unreachable_network_reports_the_send_error():
    with netns() as ns:  # only lo: no route to anything else
        out = _in_namespace(ns, 2, 0.3, "192.0.2.1")
    [result] = out["rounds"]
    assert result["sent"] == 0 and result["rtts"] == []
    assert "unreachable" in result["error"].lower()


def test_unprivileged_datagram_socket():
    """Without CAP_NET_RAW, where ping_group_range allows it, the datagram socket is used."""
    with netns(ping_group_range="0 0") as ns:
        out = _in_namespace(ns, 3, 1.0, "127.0.0.1", "127.0.0.2", drop_net_raw=True)
    assert set(out["kinds"].values()) == {"datagram"}
    assert [len(r["rtts"]) for r in out["rounds"]] == [3, 3]


def test_no_icmp_privilege_gives_a_clear_error():
    with netns() as ns:  # default ping_group_range "1 0": nobody may
        out = _in_namespace(ns, 1, 0.3, "127.0.0.1", drop_net_raw=True)
    kind = out["kinds"]["127.0.0.1"]
    assert kind.startswith("unavailable")
    assert "CAP_NET_RAW" in kind and "ping_group_range" in kind
    assert out["rounds"][0]["sent"] == 0 and "ICMP socket" in out["rounds"][0]["error"]


def test_ipv6_loopback_in_a_namespace():
    with netns() as ns:
        out = _in_namespace(ns, 3, 1.0, "::1")
    assert len(out["rounds"][0]["rtts"]) == 3


def test_collector_says_so_in_one_line_when_icmp_is_impossible(tmp_path):
    """No raw socket, no datagram socket: one clear log line at start, SNMP keeps going, every
    round reports why it failed."""
    config = tmp_path / "targets.yaml"
    config.write_text(
        "defaults:\n  ping: {interval: 1s, count: 1, timeout: 300ms}\n"
        "members:\n  - id: m\n    schools:\n      - id: s\n        targets:\n"
        "          - {id: t, role: router, address: 127.0.0.1, snmp: false}\n"
    )
    with netns() as ns:
        command = [sys.executable, "-m", "monitor", "run", "--config", str(config)]
        try:
            run_in(ns, [*command, "--listen", "127.0.0.1:9430"], drop_net_raw=True, timeout=4)
        except subprocess.TimeoutExpired as exc:
            stderr = exc.stderr or b""
            log = stderr.decode() if isinstance(stderr, bytes) else stderr
        else:
            raise AssertionError("the collector should keep running without ICMP")
    unavailable = [line for line in log.splitlines() if "ICMP unavailable" in line]
    assert len(unavailable) == 1
    assert "CAP_NET_RAW" in unavailable[0] and "ping_group_range" in unavailable[0]
    assert "ping down" in log and "ICMP socket" in log


def test_a_busy_event_loop_does_not_fake_loss():
    """The loop is blocked (as by a long GC pause) when the last echo is due: it leaves late, and
    it still gets its whole timeout instead of being counted lost."""

    async def run():
        loop = asyncio.get_running_loop()
        prober = IcmpProber()
        try:
            loop.call_later(0.55, time.sleep, 1.2)  # a stall across the third echo's send time
            return await prober.round(
                "127.0.0.1", PingSettings(count=3, spacing=0.3, timeout=0.5, interval=10)
            )
        finally:
            prober.close()

    result = asyncio.run(run())
    assert result.sent == 3 and result.received == 3
