"""Secrets as hostile input: non-ASCII communities and passwords reach a real snmpd as UTF-8, a
probe that crashes is a failed poll with a series, and no secret reaches a log line, not even
inside an exception's text."""

from __future__ import annotations

import asyncio
import io
import logging
import re
import secrets
from pathlib import Path

import pytest

from monitor import logs
from monitor.config.model import Config, Member, School, SnmpAuth, SnmpSettings, Target
from monitor.exposition import Exposition
from monitor.probes.snmp.poll import SnmpProber
from monitor.store import ResultStore
from tests.agents import Snmpd, V3User

# Outside latin-1 (pysnmp's default encoding for str), and a latin-1 letter whose UTF-8 and
# latin-1 bytes differ: both must arrive as net-snmp reads them from its UTF-8 configuration.
COMMUNITY = f"gemeenschap-€-é-{secrets.token_hex(4)}"
USER = V3User(
    name="leraar",
    level="authPriv",
    auth="SHA256",
    priv="AES",
    auth_password=f"wachtwoord-€-{secrets.token_hex(4)}",
    priv_password=f"geheim-ü-€-{secrets.token_hex(4)}",
)


@pytest.fixture(scope="module")
def utf8_snmpd(tmp_path_factory):
    agent = Snmpd(tmp_path_factory.mktemp("snmpd-utf8"), community=COMMUNITY, users=[USER])
    agent.start()  # waits until snmpget (net-snmp's own client) gets an answer with COMMUNITY
    yield agent
    agent.stop()


def _target(port: int, auth: SnmpAuth) -> Target:
    return Target(
        member="m",
        school="s",
        id="dev",
        role="switch",
        host="127.0.0.1",
        port=port,
        snmp=SnmpSettings(auth=auth, timeout=1.0, retries=1),
    )


def _poll(target: Target):
    async def run():
        prober = SnmpProber()
        try:
            return await prober.poll(target, target.host)
        finally:
            prober.close()

    return asyncio.run(run())


def test_non_latin1_community_reaches_snmpd_as_utf8(utf8_snmpd):
    auth = SnmpAuth(name="v2", version="2c", community=COMMUNITY)
    result = _poll(_target(utf8_snmpd.port, auth))
    assert result.ok, result.error
    assert result.sys_name == "snmpd-under-test"


def test_non_ascii_v3_passwords_reach_snmpd_as_utf8(utf8_snmpd):
    auth = SnmpAuth(
        name="v3",
        version="3",
        username=USER.name,
        security_level=USER.level,
        auth_protocol=USER.auth,
        auth_password=USER.auth_password,
        priv_protocol=USER.priv,
        priv_password=USER.priv_password,
    )
    result = _poll(_target(utf8_snmpd.port, auth))
    assert result.ok, result.error
    assert result.sys_name == "snmpd-under-test"


@pytest.fixture
def log_stream():
    stream = io.StringIO()
    logs.setup("info", "logfmt", stream)
    yield stream
    logs.set_secrets(())
    logging.getLogger().handlers.clear()


def test_a_probe_crash_is_a_failed_poll_with_a_series_and_no_secret_in_the_log(log_stream):
    """A credential pysnmp cannot take (a lone surrogate, as an environment variable of bytes
    that are not UTF-8 gives; `monitor check` refuses it, the prober must survive it anyway)."""
    secret = "geheim-\udcff-" + secrets.token_hex(4)
    auth = SnmpAuth(name="v2", version="2c", community=secret)
    target = _target(1, auth)
    config = Config(Path("t.yaml"), (Member("m", "m", (School("s", "s", "m", (target,)),)),))
    logs.set_secrets(config.secrets() or (secret,))
    store = ResultStore()
    store.sync(config)

    result = _poll(target)
    store.record_snmp(target.key, result)

    assert not result.ok
    assert result.error.startswith("internal error in the SNMP probe (UnicodeEncodeError)")
    body = Exposition(store).render().decode()
    assert 'schoolnet_snmp_up{member="m",school="s",target="dev",role="switch"} 0' in body
    line = log_stream.getvalue()
    assert 'msg="snmp probe crashed"' in line and "UnicodeEncodeError" in line
    assert "Traceback" in line  # the exception is there, with its text masked
    for form in logs.spellings(secret):
        assert form not in line and form not in body


def test_exception_text_is_redacted_in_every_spelling(log_stream):
    secret = f"Wachtwoord-€-{secrets.token_hex(4)}"
    logs.set_secrets([secret])
    log = logging.getLogger("test.redaction")
    for shown in (secret, repr(secret), repr(secret.encode()), secret.encode().hex()):
        try:
            raise ValueError(f"library said: {shown}")
        except ValueError:
            log.exception("it broke", extra={"fields": {"community": secret}})
    text = log_stream.getvalue()
    said = re.findall(r"ValueError: library said: (b?'?\*{5}'?)", text)
    assert said == ["*****", "'*****'", "b'*****'", "*****"], text
    for form in logs.spellings(secret):
        assert form not in text
