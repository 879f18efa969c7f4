"""The `--web.config.file` of `monitor run`: TLS, basic auth and response headers, in the format of
Prometheus' exporter-toolkit, so that one file format and one way of thinking covers Prometheus,
Alertmanager, node_exporter and this collector.

What is read (and what it means) follows exporter-toolkit's `web/tls_config.go` and
`web/handler.go`: unknown keys are errors; relative paths are relative to the file; TLS is on as
soon as any TLS setting is given and then needs a certificate and key; `client_ca_file` needs a
`client_auth_type` that verifies; `basic_auth_users` are bcrypt hashes; only the headers
exporter-toolkit allows may be set, with its allowed values. Differences, each an error naming the
key rather than a silent surprise: inline `cert`/`key`, `cipher_suites`, `curve_preferences` and
`rate_limit` are not supported, nor the client auth types that accept a certificate without
verifying it (`RequestClientCert`, `RequireAnyClientCert`; exporter-toolkit's docs call them
insecure). We speak HTTP/1.1 only, so `http2` is accepted and has no effect.

A problem is one `WebConfigError` with the file, line and column: the collector refuses to start
with it, and a reload keeps the last good configuration.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import ipaddress
import re
import secrets
import ssl
import threading
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import bcrypt
import yaml

__all__ = ["BasicAuth", "WebConfig", "WebConfigError", "load_web_config"]

MAX_FILE_BYTES = 1 << 20

# exporter-toolkit's extraHTTPHeaders: the headers an operator may set, and the values allowed
# where the header has a fixed vocabulary (None: any value).
ALLOWED_HEADERS: dict[str, tuple[str, ...] | None] = {
    "Strict-Transport-Security": None,
    "X-Content-Type-Options": ("nosniff",),
    "X-Frame-Options": ("deny", "sameorigin"),
    "X-XSS-Protection": None,
    "Content-Security-Policy": None,
}

TLS_VERSIONS = {
    "TLS10": ssl.TLSVersion.TLSv1,
    "TLS11": ssl.TLSVersion.TLSv1_1,
    "TLS12": ssl.TLSVersion.TLSv1_2,
    "TLS13": ssl.TLSVersion.TLSv1_3,
}

CLIENT_AUTH = {
    "": ssl.CERT_NONE,
    "NoClientCert": ssl.CERT_NONE,
    "VerifyClientCertIfGiven": ssl.CERT_OPTIONAL,
    "RequireAndVerifyClientCert": ssl.CERT_REQUIRED,
}
_INSECURE_CLIENT_AUTH = ("RequestClientCert", "RequireAnyClientCert", "RequireClientCert")

_TOP_KEYS = ("tls_server_config", "http_server_config", "basic_auth_users", "rate_limit")
_TLS_KEYS = (
    "cert",
    "key",
    "client_ca",
    "cert_file",
    "key_file",
    "client_auth_type",
    "client_ca_file",
    "client_allowed_sans",
    "cipher_suites",
    "curve_preferences",
    "min_version",
    "max_version",
    "prefer_server_cipher_suites",
)
_UNSUPPORTED = {
    "rate_limit": "is not supported by schoolnet-monitor (put a reverse proxy in front)",
    "cert": "(inline) is not supported by schoolnet-monitor: use cert_file",
    "key": "(inline) is not supported by schoolnet-monitor: use key_file",
    "cipher_suites": "is not supported by schoolnet-monitor (OpenSSL's defaults apply)",
    "curve_preferences": "is not supported by schoolnet-monitor (OpenSSL's defaults apply)",
}
_HTTP_KEYS = ("http2", "headers")

# $2a$/$2b$/$2y$, a two-digit cost, then 53 characters of salt and hash in bcrypt's alphabet.
_BCRYPT = re.compile(r"\$2[aby]?\$(\d\d)\$[./A-Za-z0-9]{53}")


class WebConfigError(Exception):
    """One problem of the web config file, as `FILE:LINE:COL: message`."""


@dataclass(frozen=True)
class WebConfig:
    """A validated web config. `tls` is None for plain HTTP; `auth` None when no users are set."""

    path: Path | None = None
    tls: ssl.SSLContext | None = None
    client_allowed_sans: frozenset[str] | None = None
    auth: BasicAuth | None = None
    headers: dict[str, str] = field(default_factory=dict)
    files: tuple[Path, ...] = ()  # the file and every certificate/key/CA it names, for watching

    @property
    def scheme(self) -> str:
        return "https" if self.tls is not None else "http"


class BasicAuth:
    """Checks `Authorization: Basic` credentials against bcrypt hashes, the way exporter-toolkit
    does: an unknown user is checked against a dummy hash of the same cost (no timing difference
    between unknown users and wrong passwords), one bcrypt at a time (bcrypt is meant to be
    expensive: a burst of bad passwords must not take every core), and outcomes are cached so that
    a scrape every few seconds does not pay bcrypt's cost each time. The cache key is an HMAC with
    a per-process key, so it holds no password in the clear."""

    CACHE_SIZE = 100

    def __init__(self, users: dict[str, bytes]) -> None:
        self._users = users
        costs = Counter(int(_BCRYPT.fullmatch(h.decode()).group(1)) for h in users.values())
        cost = costs.most_common(1)[0][0] if costs else 10
        self._dummy = bcrypt.hashpw(secrets.token_bytes(16), bcrypt.gensalt(cost))
        self._key = secrets.token_bytes(32)
        self._cache: dict[bytes, bool] = {}
        self._cache_lock = threading.Lock()
        self._bcrypt_lock = threading.Lock()

    def check(self, user: str, password: bytes) -> bool:
        """`user` as decoded from the header (surrogate escapes for bytes that are not UTF-8)."""
        known = user in self._users
        hashed = self._users.get(user, self._dummy)
        secret = password
        name = user.encode("utf-8", "surrogateescape")
        key = hmac.digest(self._key, b"\0".join((name, hashed, secret)), hashlib.sha256)
        with self._cache_lock:
            cached = self._cache.get(key)
        if cached is not None:
            return cached and known
        with self._bcrypt_lock:
            # bcrypt 5 refuses passwords over its 72-byte limit: still spend the same time.
            ok = bcrypt.checkpw(secret[:72], hashed) and len(secret) <= 72
        ok = ok and known
        with self._cache_lock:
            if len(self._cache) >= self.CACHE_SIZE:
                for stale in list(self._cache)[: self.CACHE_SIZE // 10]:
                    del self._cache[stale]
            self._cache[key] = ok
        return ok


class _Reader:
    """Walks PyYAML's node tree, keeping positions for messages."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def fail(self, node: yaml.Node | None, message: str) -> WebConfigError:
        if node is None:
            return WebConfigError(f"{self.path}:1:1: {message}")
        mark = node.start_mark
        return WebConfigError(f"{self.path}:{mark.line + 1}:{mark.column + 1}: {message}")

    def mapping(self, node: yaml.Node, where: str, keys: tuple[str, ...]) -> dict:
        """{key: (key node, value node)}; unknown and duplicate keys are errors."""
        if isinstance(node, yaml.ScalarNode) and node.tag.endswith(":null"):
            return {}
        if not isinstance(node, yaml.MappingNode):
            raise self.fail(node, f"{where} must be a mapping")
        found: dict[str, tuple[yaml.Node, yaml.Node]] = {}
        for key_node, value in node.value:
            key = self.scalar(key_node, f"a key of {where}")
            if keys and key not in keys:
                raise self.fail(key_node, f"unknown key {key!r} in {where}")
            if key in found:
                raise self.fail(key_node, f"duplicate key {key!r} in {where}")
            found[key] = (key_node, value)
        return found

    def scalar(self, node: yaml.Node, where: str) -> str:
        if not isinstance(node, yaml.ScalarNode):
            raise self.fail(node, f"{where} must be a single value")
        return node.value

    def boolean(self, node: yaml.Node, where: str) -> bool:
        if not (isinstance(node, yaml.ScalarNode) and node.tag.endswith(":bool")):
            raise self.fail(node, f"{where} must be true or false")
        return node.value.lower() == "true"

    def file(self, node: yaml.Node, where: str) -> Path:
        text = self.scalar(node, where)
        path = self.path.parent / text
        if not text or not path.is_file():
            raise self.fail(node, f"{where}: no such file: {path}")
        return path


def load_web_config(path: Path) -> WebConfig:
    """Read and validate the web config at `path` (certificates and keys included). Raises
    WebConfigError with the first problem."""
    reader = _Reader(path)
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            raise reader.fail(None, f"file larger than {MAX_FILE_BYTES} bytes")
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise reader.fail(None, f"cannot read file: {reason}") from None
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{mark.line + 1}:{mark.column + 1}" if mark else "1:1"
        raise WebConfigError(f"{path}:{where}: invalid YAML: {exc.problem}") from None
    except yaml.YAMLError as exc:
        raise reader.fail(None, f"invalid YAML: {exc}") from None
    if root is None:
        return WebConfig(path=path, files=(path,))
    top = reader.mapping(root, "the web config", _TOP_KEYS)
    for key, (key_node, _) in top.items():
        if key in _UNSUPPORTED:
            raise reader.fail(key_node, f"{key} {_UNSUPPORTED[key]}")
    tls, sans, files = None, None, [path]
    if "tls_server_config" in top:
        tls, sans, tls_files = _read_tls(reader, top["tls_server_config"][1])
        files.extend(tls_files)
    headers: dict[str, str] = {}
    if "http_server_config" in top:
        http = reader.mapping(top["http_server_config"][1], "http_server_config", _HTTP_KEYS)
        if "http2" in http:
            reader.boolean(http["http2"][1], "http_server_config.http2")
        if "headers" in http:
            headers = _read_headers(reader, http["headers"][1])
    auth = None
    if "basic_auth_users" in top:
        users = _read_users(reader, top["basic_auth_users"][1])
        auth = BasicAuth(users) if users else None
    return WebConfig(
        path=path,
        tls=tls,
        client_allowed_sans=sans,
        auth=auth,
        headers=headers,
        files=tuple(files),
    )


def _read_tls(
    reader: _Reader, node: yaml.Node
) -> tuple[ssl.SSLContext | None, frozenset[str] | None, list[Path]]:
    where = "tls_server_config"
    tls = reader.mapping(node, where, _TLS_KEYS)
    if not tls:
        return None, None, []
    for key, (key_node, _) in tls.items():
        if key in _UNSUPPORTED:
            raise reader.fail(key_node, f"{where}.{key} {_UNSUPPORTED[key]}")
    for key in ("cert_file", "key_file"):
        if key not in tls:
            raise reader.fail(node, f"{where}: missing {key} (TLS is on once any of it is set)")
    cert = reader.file(tls["cert_file"][1], f"{where}.cert_file")
    key = reader.file(tls["key_file"][1], f"{where}.key_file")
    files = [cert, key]
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.set_alpn_protocols(["http/1.1"])
    versions = {}
    for bound, default in (("min_version", "TLS12"), ("max_version", "TLS13")):
        name = reader.scalar(tls[bound][1], f"{where}.{bound}") if bound in tls else default
        if name not in TLS_VERSIONS:
            raise reader.fail(
                tls[bound][1],
                f"{where}.{bound}: unknown TLS version {name!r}, "
                f"expected one of {', '.join(TLS_VERSIONS)}",
            )
        versions[bound] = TLS_VERSIONS[name]
    try:
        context.minimum_version = versions["min_version"]
        context.maximum_version = versions["max_version"]
    except (ValueError, ssl.SSLError) as exc:
        raise reader.fail(node, f"{where}: TLS versions refused: {exc}") from None
    if versions["min_version"] > versions["max_version"]:
        raise reader.fail(node, f"{where}: min_version is above max_version")
    try:
        context.load_cert_chain(cert, key)
    except (ssl.SSLError, OSError) as exc:
        raise reader.fail(
            tls["cert_file"][1], f"{where}: cannot load cert_file and key_file: {_reason(exc)}"
        ) from None
    prefer = tls.get("prefer_server_cipher_suites")  # default true, as in exporter-toolkit
    if prefer is None or reader.boolean(prefer[1], f"{where}.prefer_server_cipher_suites"):
        context.options |= ssl.OP_CIPHER_SERVER_PREFERENCE
    else:
        context.options &= ~ssl.OP_CIPHER_SERVER_PREFERENCE
    mode_name = ""
    if "client_auth_type" in tls:
        mode_node = tls["client_auth_type"][1]
        mode_name = reader.scalar(mode_node, f"{where}.client_auth_type")
        if mode_name in _INSECURE_CLIENT_AUTH:
            raise reader.fail(
                mode_node,
                f"{where}.client_auth_type {mode_name} accepts certificates without verifying "
                "them and is not supported: use RequireAndVerifyClientCert",
            )
        if mode_name not in CLIENT_AUTH:
            raise reader.fail(
                mode_node,
                f"{where}.client_auth_type: invalid {mode_name!r}, expected one of "
                + ", ".join(k for k in CLIENT_AUTH if k),
            )
    context.verify_mode = CLIENT_AUTH[mode_name]
    has_ca = "client_ca_file" in tls or "client_ca" in tls
    if has_ca and context.verify_mode == ssl.CERT_NONE:
        raise reader.fail(
            node, f"{where}: client CAs are configured without a client_auth_type that verifies"
        )
    if context.verify_mode != ssl.CERT_NONE and not has_ca:
        raise reader.fail(node, f"{where}: client_auth_type {mode_name} needs client_ca_file")
    try:
        if "client_ca_file" in tls:
            ca = reader.file(tls["client_ca_file"][1], f"{where}.client_ca_file")
            files.append(ca)
            context.load_verify_locations(cafile=ca)
        if "client_ca" in tls:
            context.load_verify_locations(
                cadata=reader.scalar(tls["client_ca"][1], f"{where}.client_ca")
            )
    except (ssl.SSLError, OSError, ValueError) as exc:
        raise reader.fail(node, f"{where}: cannot load the client CA: {_reason(exc)}") from None
    sans = None
    if "client_allowed_sans" in tls:
        san_node = tls["client_allowed_sans"][1]
        if not isinstance(san_node, yaml.SequenceNode):
            raise reader.fail(san_node, f"{where}.client_allowed_sans must be a list")
        sans = frozenset(reader.scalar(n, f"{where}.client_allowed_sans") for n in san_node.value)
    return context, sans, files


def _read_headers(reader: _Reader, node: yaml.Node) -> dict[str, str]:
    headers = {}
    for name, (key_node, value_node) in reader.mapping(
        node, "http_server_config.headers", ()
    ).items():
        if name not in ALLOWED_HEADERS:
            raise reader.fail(key_node, f"HTTP header {name!r} can not be configured")
        value = reader.scalar(value_node, f"header {name}")
        allowed = ALLOWED_HEADERS[name]
        if allowed is not None and value not in allowed:
            raise reader.fail(
                value_node,
                f"invalid value for {name}: expected one of {', '.join(allowed)}, got {value!r}",
            )
        if any(c in value for c in "\r\n\0"):
            raise reader.fail(value_node, f"header {name}: control characters in the value")
        if value:
            headers[name] = value
    return headers


def _read_users(reader: _Reader, node: yaml.Node) -> dict[str, bytes]:
    users = {}
    for name, (key_node, value_node) in reader.mapping(node, "basic_auth_users", ()).items():
        if ":" in name:
            raise reader.fail(key_node, f"basic_auth_users: a user name cannot hold ':' ({name!r})")
        hashed = reader.scalar(value_node, f"the password hash of {name!r}")
        match = _BCRYPT.fullmatch(hashed)
        if match is None or not 4 <= int(match.group(1)) <= 31:
            # never echo the value: someone may have pasted a password in the clear
            raise reader.fail(
                value_node,
                f"basic_auth_users: the password of {name!r} is not a bcrypt hash "
                "(make one with: htpasswd -nBC 10 \"\" | tr -d ':\\n')",
            )
        users[name] = hashed.encode()
    return users


def _reason(exc: Exception) -> str:
    if isinstance(exc, ssl.SSLError) and exc.reason:
        return exc.reason.lower().replace("_", " ")
    return getattr(exc, "strerror", None) or str(exc)


def peer_has_allowed_san(peer: dict, allowed: frozenset[str]) -> bool:
    """exporter-toolkit's client_allowed_sans: a DNS, IP, e-mail or URI SAN of the verified client
    certificate must be one of `allowed` exactly."""
    for kind, value in peer.get("subjectAltName", ()):
        if kind == "IP Address":
            with contextlib.suppress(ValueError):
                value = str(ipaddress.ip_address(value.strip()))
        if value in allowed:
            return True
    return False
