"""The SNMP prober against net-snmp's snmpd, checked against snmpget/snmpwalk read alongside."""

from __future__ import annotations

import asyncio
import dataclasses
import logging

import pytest

from monitor.config.model import SnmpAuth, SnmpSettings, Target
from monitor.probes.snmp.poll import SnmpProber
from tests.agents import LOOPBACK6, V3_MATRIX, Snmpd, V3User, free_port, running, snmpget, snmpwalk

IF_NAME = "1.3.6.1.2.1.31.1.1.1.1"
IF_HC_IN = "1.3.6.1.2.1.31.1.1.1.6"
IF_IN_OCTETS = "1.3.6.1.2.1.2.2.1.10"
IF_OPER = "1.3.6.1.2.1.2.2.1.8"
IF_ADMIN = "1.3.6.1.2.1.2.2.1.7"
IF_SPEED = "1.3.6.1.2.1.2.2.1.5"


def _target(
    port: int,
    auth: SnmpAuth,
    timeout: float = 1.0,
    retries: int = 0,
    host: str = "127.0.0.1",
    **settings,
) -> Target:
    return Target(
        member="m",
        school="s",
        id="dev",
        role="switch",
        host=host,
        port=port,
        snmp=SnmpSettings(auth=auth, timeout=timeout, retries=retries, **settings),
    )


def _v2c(snmpd: Snmpd, version: str = "2c", community: str | None = None) -> SnmpAuth:
    return SnmpAuth(name="v2", version=version, community=community or snmpd.community)


def _v3(user: V3User, **override) -> SnmpAuth:
    fields = dict(
        name="v3",
        version="3",
        username=user.name,
        security_level=user.level,
        auth_protocol=user.auth,
        auth_password=user.auth_password,
        priv_protocol=user.priv,
        priv_password=user.priv_password,
    )
    fields.update(override)
    return SnmpAuth(**fields)


def poll(target: Target, prober: SnmpProber | None = None):
    async def _run():
        own = prober or SnmpProber()
        try:
            return await own.poll(target, target.host)
        finally:
            if prober is None:
                own.close()

    return asyncio.run(_run())


@pytest.mark.parametrize("version", ["2c", "1"])
def test_values_agree_with_snmpwalk(snmpd, version):
    cli = ["-v" + version, "-c", snmpd.community]
    before_in = snmpwalk(snmpd.address, cli, IF_HC_IN if version == "2c" else IF_IN_OCTETS)
    result = poll(_target(snmpd.port, _v2c(snmpd, version)))
    after_in = snmpwalk(snmpd.address, cli, IF_HC_IN if version == "2c" else IF_IN_OCTETS)
    system = snmpget(
        snmpd.address, cli, "1.3.6.1.2.1.1.5.0", "1.3.6.1.2.1.1.2.0", "1.3.6.1.2.1.1.1.0"
    )

    assert result.ok, result.error
    assert result.sys_name == system["1.3.6.1.2.1.1.5.0"] == "snmpd-under-test"
    assert result.sys_object_id == system["1.3.6.1.2.1.1.2.0"].lstrip(".")
    assert result.sys_descr == system["1.3.6.1.2.1.1.1.0"]
    assert result.uptime_seconds is not None and result.uptime_seconds > 0

    names = snmpwalk(snmpd.address, cli, IF_NAME)
    oper = snmpwalk(snmpd.address, cli, IF_OPER)
    admin = snmpwalk(snmpd.address, cli, IF_ADMIN)
    speed = snmpwalk(snmpd.address, cli, IF_SPEED)
    by_index = {i.index: i for i in result.interfaces}
    assert sorted(by_index) == sorted(int(oid.rsplit(".", 1)[1]) for oid in names)
    for oid, name in names.items():
        index = int(oid.rsplit(".", 1)[1])
        interface = by_index[index]
        assert interface.name == name
        assert interface.oper_up == (oper[f"{IF_OPER}.{index}"] == "1")
        assert interface.admin_up == (admin[f"{IF_ADMIN}.{index}"] == "1")
        assert interface.speed_bytes == int(speed[f"{IF_SPEED}.{index}"]) / 8
        column = IF_HC_IN if version == "2c" else IF_IN_OCTETS
        low, high = int(before_in[f"{column}.{index}"]), int(after_in[f"{column}.{index}"])
        assert low <= interface.in_octets <= high
    # loopback carries the snmp traffic itself: its counter must be a real, moving number
    assert by_index[1].name == "lo" and by_index[1].in_octets > 0


@pytest.mark.parametrize(
    "level,auth,priv", V3_MATRIX, ids=["-".join(x for x in row if x) for row in V3_MATRIX]
)
def test_every_v3_security_level_and_protocol(snmpd, level, auth, priv):
    user = snmpd.user(level, auth, priv)
    result = poll(_target(snmpd.port, _v3(user)))
    assert result.ok, result.error
    assert result.sys_name == "snmpd-under-test"
    assert {i.name for i in result.interfaces} >= {"lo"}


def test_wrong_community_is_a_timeout_that_names_no_secret(snmpd):
    wrong = "not-the-community-" + snmpd.community[-4:]
    result = poll(_target(snmpd.port, _v2c(snmpd, community=wrong), timeout=0.5, retries=1))
    assert not result.ok
    assert "no response" in result.error
    assert wrong not in result.error and snmpd.community not in result.error
    assert 0.9 <= result.duration < 3  # timeout x (retries + 1), not more


def test_wrong_v3_auth_password(snmpd):
    user = snmpd.user("authPriv", "SHA256", "AES")
    result = poll(_target(snmpd.port, _v3(user, auth_password="wrong-password-123")))
    assert not result.ok
    assert "authentication failed" in result.error
    assert "wrong-password-123" not in result.error and user.auth_password not in result.error


def test_wrong_v3_priv_password(snmpd):
    user = snmpd.user("authPriv", "SHA256", "AES")
    result = poll(_target(snmpd.port, _v3(user, priv_password="wrong-privacy-123")))
    assert not result.ok
    assert "priv password" in result.error
    assert "wrong-privacy-123" not in result.error


def test_unknown_v3_user(snmpd):
    user = snmpd.user("authPriv", "SHA256", "AES")
    result = poll(_target(snmpd.port, _v3(user, username="nobody-here")))
    assert not result.ok
    assert "user unknown" in result.error


def test_nothing_listening(snmpd):
    result = poll(_target(free_port(), _v2c(snmpd), timeout=0.5, retries=0))
    assert not result.ok and "no response" in result.error


def test_getnext_walk_equals_getbulk_walk(snmpd):
    bulk = poll(_target(snmpd.port, _v2c(snmpd)))
    nxt = poll(_target(snmpd.port, _v2c(snmpd), bulk=False))
    assert bulk.ok and nxt.ok
    assert [i.name for i in bulk.interfaces] == [i.name for i in nxt.interfaces]
    assert nxt.requests > bulk.requests  # GETNEXT: one row per request
    small = poll(_target(snmpd.port, _v2c(snmpd), max_repetitions=1))
    assert [i.name for i in small.interfaces] == [i.name for i in bulk.interfaces]


def test_same_v3_user_name_with_different_passwords_on_two_devices(snmpd, tmp_path):
    """USM holds one key per user name and engine; two devices that share a user name but not a
    password must both be polled correctly, concurrently, by one collector."""
    first = snmpd.user("authPriv", "SHA256", "AES")
    other_user = V3User(
        name=first.name,
        level="authPriv",
        auth="SHA256",
        priv="AES",
        auth_password="another-auth-pass",
        priv_password="another-priv-pass",
    )
    with running(Snmpd(tmp_path / "second", users=[other_user])) as second:
        a = _target(snmpd.port, _v3(first, name="school-a"))
        b = _target(second.port, _v3(other_user, name="school-b"))

        async def both():
            prober = SnmpProber()
            try:
                return await asyncio.gather(*(prober.poll(t, t.host) for t in (a, b, a, b)))
            finally:
                prober.close()

        results = asyncio.run(both())
    assert [r.ok for r in results] == [True] * 4, [r.error for r in results]


def test_failed_poll_logs_no_secret(snmpd, caplog):
    user = snmpd.user("authPriv", "SHA512", "AES192C")
    caplog.set_level(logging.DEBUG)
    result = poll(_target(snmpd.port, _v3(user, auth_password="Secret-Should-Not-Leak")))
    assert not result.ok
    assert "Secret-Should-Not-Leak" not in caplog.text
    assert user.priv_password not in caplog.text


@pytest.mark.parametrize("version", ["2c", "3"])
def test_ipv6_agent_answers_the_same_as_over_ipv4(snmpd, version):
    """One collector socket per address family: a device on ::1 is polled like one on
    127.0.0.1, in the same prober, v2c and v3 alike."""
    if not LOOPBACK6:
        pytest.skip("this machine has no ::1 on loopback")
    auth = _v2c(snmpd) if version == "2c" else _v3(snmpd.user("authPriv", "SHA256", "AES"))

    async def both():
        prober = SnmpProber()
        try:
            four = await prober.poll(_target(snmpd.port, auth), "127.0.0.1")
            target6 = dataclasses.replace(_target(snmpd.port, auth, host="::1"), id="dev6")
            six = await prober.poll(target6, "::1")
            return four, six
        finally:
            prober.close()

    four, six = asyncio.run(both())
    assert four.ok and six.ok, (four.error, six.error)
    assert six.sys_name == four.sys_name == "snmpd-under-test"
    assert six.interfaces and [i.name for i in six.interfaces] == [i.name for i in four.interfaces]
