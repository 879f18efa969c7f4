"""`--web.config.file`: TLS, client certificates and basic auth on every endpoint, checked by a real
Prometheus scraping a real `monitor run` (certificates made here with `cryptography`); broken files
refused at start and kept out on reload; bcrypt without a timing hint about which users exist.
"""

from __future__ import annotations

import base64
import datetime
import ipaddress
import re
import signal
import ssl
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import bcrypt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from monitor.web_config import BasicAuth, WebConfigError, load_web_config
from tests.collector_proc import CollectorProcess
from tests.prom import PrometheusProcess, scrape_config

PASSWORD = "correct horse battery staple"

TARGETS = """\
defaults:
  ping: {interval: 60s, count: 1, timeout: 500ms}
members:
  - id: coop
    schools:
      - id: school-a
        targets:
          - {id: t1, role: router, address: 127.0.0.21, snmp: false}
"""


# ---------------------------------------------------------------------------------------------
# certificates
# ---------------------------------------------------------------------------------------------


@dataclass
class Issued:
    cert: Path
    key: Path
    certificate: x509.Certificate
    private_key: ec.EllipticCurvePrivateKey


def _write(directory: Path, name: str, cert: x509.Certificate, key) -> Issued:
    cert_path, key_path = directory / f"{name}.crt", directory / f"{name}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return Issued(cert_path, key_path, cert, key)


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _builder(subject: str, issuer: x509.Name, public_key) -> x509.CertificateBuilder:
    now = datetime.datetime.now(datetime.timezone.utc)
    return (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
    )


def make_ca(directory: Path, name: str) -> Issued:
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        _builder(name, _name(name), key.public_key())
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    return _write(directory, name, cert, key)


def issue(directory: Path, ca: Issued, name: str, server: bool, san: str | None = None) -> Issued:
    key = ec.generate_private_key(ec.SECP256R1())
    usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
    builder = (
        _builder(name, ca.certificate.subject, key.public_key())
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    )
    if server:
        builder = builder.add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            ),
            critical=False,
        )
    elif san is not None:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName(san)]), critical=False
        )
    return _write(directory, name, builder.sign(ca.private_key, hashes.SHA256()), key)


@dataclass
class Pki:
    directory: Path
    ca: Issued
    server: Issued
    client: Issued
    rogue_client: Issued  # signed by a CA the collector does not trust


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> Pki:
    directory = tmp_path_factory.mktemp("pki")
    ca = make_ca(directory, "kien-ca")
    rogue = make_ca(directory, "rogue-ca")
    return Pki(
        directory,
        ca,
        issue(directory, ca, "server", server=True),
        issue(directory, ca, "prometheus", server=False),
        issue(directory, rogue, "intruder", server=False),
    )


def bcrypt_hash(password: str, cost: int = 10) -> str:
    return bcrypt.hashpw(password.encode(), bcrypt.gensalt(cost)).decode()


# ---------------------------------------------------------------------------------------------
# a collector behind the web config
# ---------------------------------------------------------------------------------------------


@dataclass
class SecuredCollector(CollectorProcess):
    """`monitor run --web.config.file`: reads what it serves over TLS when `tls` is set, with
    the client certificate and credentials given."""

    tls: ssl.SSLContext | None = None
    user: str | None = None
    password: str | None = None

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    def get(self, path, headers=None, user=None, password=None):
        headers = dict(headers or {})
        user, password = user or self.user, password or self.password
        if user is not None:
            token = base64.b64encode(f"{user}:{password}".encode()).decode()
            headers["Authorization"] = f"Basic {token}"
        request = urllib.request.Request(self.url + path, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=10, context=self.tls) as response:
                return response.status, response.read(), dict(response.headers)
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read(), dict(exc.headers)
        except OSError:
            return 0, b"", {}


def client_context(pki: Pki, client: Issued | None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(pki.ca.cert))
    if client is not None:
        context.load_cert_chain(client.cert, client.key)
    return context


# ---------------------------------------------------------------------------------------------
# a real Prometheus
# ---------------------------------------------------------------------------------------------


def test_prometheus_scrapes_over_tls_with_basic_auth_and_every_wrong_credential_is_refused(
    pki, tmp_path
):
    (tmp_path / "targets.yaml").write_text(TARGETS)
    web = pki.directory / "web.yml"
    web.write_text(
        "tls_server_config:\n"
        "  cert_file: server.crt\n"  # relative to the web config, as in exporter-toolkit
        "  key_file: server.key\n"
        "  client_auth_type: RequireAndVerifyClientCert\n"
        "  client_ca_file: kien-ca.crt\n"
        "  min_version: TLS12\n"
        "http_server_config:\n"
        "  headers:\n"
        "    Strict-Transport-Security: max-age=31536000\n"
        "basic_auth_users:\n"
        f"  prometheus: '{bcrypt_hash(PASSWORD)}'\n"
    )
    collector = SecuredCollector(
        tmp_path / "targets.yaml",
        extra_args=["--web.config.file", str(web)],
        tls=client_context(pki, pki.client),
        user="prometheus",
        password=PASSWORD,
    ).start()
    address = f"127.0.0.1:{collector.port}"

    def job(name: str, client: Issued | None, scheme: str = "https", **auth) -> dict:
        tls = {"ca_file": str(pki.ca.cert)}
        if client is not None:
            tls |= {"cert_file": str(client.cert), "key_file": str(client.key)}
        extra: dict = {"scheme": scheme, "tls_config": tls}
        if auth:
            extra["basic_auth"] = auth
        return scrape_config(name, address, **extra)

    right = {"username": "prometheus", "password": PASSWORD}
    prometheus = PrometheusProcess(
        tmp_path / "prometheus",
        scrape_configs=[
            job("good", pki.client, **right),
            job("wrong_password", pki.client, username="prometheus", password="hunter2"),
            job("unknown_user", pki.client, username="grafana", password=PASSWORD),
            job("no_credentials", pki.client),
            job("plain_http", pki.client, scheme="http", **right),
            job("untrusted_client_cert", pki.rogue_client, **right),
            job("no_client_cert", None, **right),
        ],
    ).start()
    try:

        def health() -> dict[str, tuple[str, str]]:
            active = prometheus.api("targets")["activeTargets"]
            found = {t["labels"]["job"]: (t["health"], t["lastError"]) for t in active}
            assert len(found) == 7 and all(h != "unknown" for h, _ in found.values())
            return found

        prometheus.wait_for(health)
        prometheus.wait_for(lambda: prometheus.value('up{job="good"}') == 1)
        time.sleep(4)  # several rounds of every refused scrape while the good one goes on
        result = health()
        assert result["good"] == ("up", ""), result
        for name in (
            "wrong_password",
            "unknown_user",
            "no_credentials",
            "plain_http",
            "untrusted_client_cert",
            "no_client_cert",
        ):
            assert result[name][0] == "down", (name, result[name])
            assert prometheus.value(f'up{{job="{name}"}}') == 0
        for name in ("wrong_password", "unknown_user", "no_credentials"):
            assert "401" in result[name][1], result[name]
        assert "400" in result["plain_http"][1], result["plain_http"]
        for name in ("untrusted_client_cert", "no_client_cert"):
            # refused in the handshake (a TLS alert, or a reset when TLS 1.3's client already
            # wrote its request), never an HTTP answer
            assert "server returned HTTP status" not in result[name][1], result[name]
        # the good scrape never failed while the others were refused
        assert prometheus.value('min_over_time(up{job="good"}[4s])') == 1
        # the collector's data really arrived
        assert prometheus.value('schoolnet_config_last_reload_successful{job="good"}') == 1
        # every endpoint is behind the same doors, /-/healthy included (as in exporter-toolkit)
        for path in ("/metrics", "/", "/runbooks", "/-/healthy"):
            assert collector.get(path)[0] == 200
            assert collector.get(path, user="prometheus", password="wrong")[0] == 401
            anonymous = SecuredCollector(collector.config, port=collector.port, tls=collector.tls)
            status, _, headers = anonymous.get(path)
            assert status == 401 and headers.get("WWW-Authenticate") == "Basic"
        assert collector.get("/")[2]["Strict-Transport-Security"] == "max-age=31536000"
        log = collector.log()
        assert "tls handshake failed" in log and "http request to the TLS port" in log
        assert PASSWORD not in log and "hunter2" not in log
    finally:
        prometheus.stop()
        collector.stop()


def test_client_allowed_sans_and_min_version(pki, tmp_path):
    (tmp_path / "targets.yaml").write_text(TARGETS)
    named = issue(pki.directory, pki.ca, "prometheus-named", server=False, san="prom.kien.test")
    web = pki.directory / "web-sans.yml"
    web.write_text(
        "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n"
        "  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: kien-ca.crt\n"
        "  client_allowed_sans: [prom.kien.test]\n  min_version: TLS13\n"
    )
    collector = SecuredCollector(
        tmp_path / "targets.yaml",
        extra_args=["--web.config.file", str(web)],
        tls=client_context(pki, named),
    ).start()
    try:
        assert collector.get("/metrics")[0] == 200
        # signed by the trusted CA, but without the allowed SAN
        other = SecuredCollector(collector.config, port=collector.port)
        other.tls = client_context(pki, pki.client)
        assert other.get("/metrics")[0] == 0
        # the right certificate, but TLS 1.2 only
        old = client_context(pki, named)
        old.maximum_version = ssl.TLSVersion.TLSv1_2
        other.tls = old
        assert other.get("/metrics")[0] == 0
        assert collector.get("/metrics")[0] == 200
        log = collector.log()
        assert "client_allowed_sans" in log and "tls handshake failed" in log
    finally:
        collector.stop()


# ---------------------------------------------------------------------------------------------
# broken files: refused at start, kept out on reload
# ---------------------------------------------------------------------------------------------

BROKEN = {
    "unknown key": ("tls_config:\n  cert_file: server.crt\n", r":1:1: unknown key 'tls_config'"),
    "password in the clear": ("basic_auth_users:\n  alice: hunter2\n", r":2:10: .*not a bcrypt"),
    "missing file": (
        "tls_server_config:\n  cert_file: nope.crt\n  key_file: server.key\n",
        r":2:14: .*no such file",
    ),
    "missing key_file": ("tls_server_config:\n  cert_file: server.crt\n", r":2:3: .*missing key"),
    "CA without verification": (
        "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n"
        "  client_ca_file: kien-ca.crt\n",
        r":2:3: .*client CAs are configured without",
    ),
    "unverified client certificates": (
        "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n"
        "  client_auth_type: RequireAnyClientCert\n",
        r":4:21: .*without verifying",
    ),
    "key of another certificate": (
        "tls_server_config:\n  cert_file: server.crt\n  key_file: prometheus.key\n",
        r":2:14: .*cannot load cert_file and key_file",
    ),
    "unknown TLS version": (
        "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n"
        "  min_version: TLS14\n",
        r":4:16: .*unknown TLS version",
    ),
    "header not allowed": (
        "http_server_config:\n  headers:\n    Server: nginx\n",
        r":3:5: HTTP header 'Server' can not be configured",
    ),
    "header value not allowed": (
        "http_server_config:\n  headers:\n    X-Frame-Options: allow\n",
        r":3:22: invalid value for X-Frame-Options",
    ),
    "invalid YAML": ("basic_auth_users: [alice\n", r":2:1: invalid YAML"),
    "unsupported rate limit": ("rate_limit:\n  burst: 5\n", r":1:1: rate_limit is not supported"),
}


def test_the_documented_web_config_loads(pki, tmp_path):
    doc = (Path(__file__).resolve().parent.parent / "docs" / "security.md").read_text()
    example = re.search(r"```yaml\n(tls_server_config:.*?)```", doc, re.S).group(1)
    for name, source in (
        ("collector.crt", pki.server.cert),
        ("collector.key", pki.server.key),
        ("clients-ca.crt", pki.ca.cert),
    ):
        (tmp_path / name).write_bytes(source.read_bytes())
    (tmp_path / "web.yml").write_text(example)
    config = load_web_config(tmp_path / "web.yml")
    assert config.tls is not None and config.auth is not None
    assert config.tls.verify_mode == ssl.CERT_REQUIRED
    assert config.headers == {"Strict-Transport-Security": "max-age=31536000"}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_a_broken_web_config_is_one_clear_error(pki, case):
    text, message = BROKEN[case]
    path = pki.directory / f"broken-{case.replace(' ', '-')}.yml"
    path.write_text(text)
    with pytest.raises(WebConfigError) as error:
        load_web_config(path)
    assert re.match(re.escape(str(path)) + message, str(error.value)), str(error.value)
    assert "\n" not in str(error.value) and "hunter2" not in str(error.value)


def test_a_broken_web_config_stops_the_start_with_one_line(pki, tmp_path):
    (tmp_path / "targets.yaml").write_text(TARGETS)
    path = pki.directory / "start.yml"
    path.write_text("basic_auth_users:\n  alice: hunter2\n")
    result = subprocess.run(
        [sys.executable, "-m", "monitor", "run", "--config", str(tmp_path / "targets.yaml")]
        + ["--listen", "127.0.0.1:0", "--web.config.file", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and result.stderr.startswith(f"{path}:2:10: ")
    assert "hunter2" not in result.stderr


def test_reload_applies_a_good_web_config_and_keeps_the_last_good_one(tmp_path):
    (tmp_path / "targets.yaml").write_text(TARGETS)
    web = tmp_path / "web.yml"
    web.write_text(f"basic_auth_users:\n  alice: '{bcrypt_hash('alice-pw', 4)}'\n")
    collector = SecuredCollector(
        tmp_path / "targets.yaml",
        extra_args=["--web.config.file", str(web), "--watch-interval", "300ms"],
        user="alice",
        password="alice-pw",
    ).start()
    try:
        assert collector.get("/metrics")[0] == 200
        assert collector.get("/metrics", user="bob", password="bob-pw")[0] == 401
        # a broken edit, applied by SIGHUP: refused, logged in one line, alice still gets in
        web.write_text("basic_auth_users:\n  alice: hunter2\n")
        collector.process.send_signal(signal.SIGHUP)
        collector.wait_for(lambda: "web config rejected" in collector.log())
        line = next(x for x in collector.log().splitlines() if "web config rejected" in x)
        assert f"{web}:2:10:" in line and "hunter2" not in collector.log()
        assert collector.get("/metrics")[0] == 200
        # a good edit, picked up by the file watcher: bob in, alice out
        web.write_text(f"basic_auth_users:\n  bob: '{bcrypt_hash('bob-pw', 4)}'\n")
        collector.wait_for(
            lambda: collector.get("/metrics", user="bob", password="bob-pw")[0] == 200
        )
        assert collector.get("/metrics")[0] == 401
        assert re.search(r'msg="web config reloaded" reason="file changed"', collector.log())
    finally:
        collector.stop()


# ---------------------------------------------------------------------------------------------
# bcrypt: no hint which users exist, and not paid on every scrape
# ---------------------------------------------------------------------------------------------


def test_unknown_users_cost_as_much_as_wrong_passwords_and_good_ones_are_cached():
    auth = BasicAuth({"alice": bcrypt_hash("alice-pw", 10).encode()})

    def timed(user: str, password: bytes) -> tuple[bool, float]:
        start = time.perf_counter()
        ok = auth.check(user, password)
        return ok, time.perf_counter() - start

    wrong, unknown = [], []
    for i in range(6):  # interleaved, so that the machine's load weighs on both alike
        wrong.append(timed("alice", f"guess-{i}".encode()))
        unknown.append(timed(f"nobody-{i}", f"guess-{i}".encode()))
    assert not any(ok for ok, _ in wrong + unknown)
    typical = statistics.median(t for _, t in wrong)
    # an unknown user is hashed against a dummy of the same cost, not answered at once
    assert statistics.median(t for _, t in unknown) > 0.5 * typical, (unknown, typical)
    assert typical > 0.01  # bcrypt really ran (cost 10 is tens of milliseconds)
    first = timed("alice", b"alice-pw")
    again = timed("alice", b"alice-pw")
    assert first[0] and again[0]
    assert again[1] < first[1] / 5  # the second scrape does not pay bcrypt again
    assert not auth.check("alice", b"alice-pw" + b"x" * 80)  # beyond bcrypt's 72 bytes
