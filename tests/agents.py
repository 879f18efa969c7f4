"""Real SNMP agents and independent readers for the tests: net-snmp's snmpd, snmpsim, snmpget/walk.

Every agent binds 127.0.0.1 on a free port and is stopped by its fixture. Readers shell out to
net-snmp's command-line tools, so expectations never come from our own SNMP code.
"""

from __future__ import annotations

import atexit
import bz2
import contextlib
import os
import secrets
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import snmpsim_data

SNMPSIM_DATA = Path(snmpsim_data.__file__).parent / "data"
DEVICES = Path(__file__).parent / "data" / "devices"
NO_MIBS = ["-M", "/dev/null", "-m", ""]


def free_port(kind: int = socket.SOCK_DGRAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _loopback6() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as s:
            s.bind(("::1", 0))
    except OSError:
        return False
    return True


LOOPBACK6 = _loopback6()  # snmpd also listens on [::1] where the machine has it


@dataclass(frozen=True)
class V3User:
    name: str
    level: str  # noAuthNoPriv | authNoPriv | authPriv
    auth: str = ""  # our spelling: MD5, SHA, SHA224 ...
    priv: str = ""  # our spelling: DES, AES, AES192, AES256, AES192C, AES256C
    auth_password: str = ""
    priv_password: str = ""

    # net-snmp spells protocols differently from targets.yaml / snmp_exporter
    NET_SNMP_AUTH = {
        "MD5": "MD5",
        "SHA": "SHA",
        "SHA224": "SHA-224",
        "SHA256": "SHA-256",
        "SHA384": "SHA-384",
        "SHA512": "SHA-512",
    }
    NET_SNMP_PRIV = {
        "DES": "DES",
        "AES": "AES",
        "AES192": "AES-192",
        "AES256": "AES-256",
        "AES192C": "AES-192-C",
        "AES256C": "AES-256-C",
    }

    def create_line(self) -> str:
        line = f"createUser {self.name}"
        if self.auth:
            line += f" {self.NET_SNMP_AUTH[self.auth]} {self.auth_password}"
        if self.priv:
            line += f" {self.NET_SNMP_PRIV[self.priv]} {self.priv_password}"
        return line

    def cli_args(self) -> list[str]:
        args = ["-v3", "-l", self.level, "-u", self.name]
        if self.auth:
            args += ["-a", self.NET_SNMP_AUTH[self.auth], "-A", self.auth_password]
        if self.priv:
            args += ["-x", self.NET_SNMP_PRIV[self.priv], "-X", self.priv_password]
        return args


def _secret(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(6)}"


# Every auth protocol and every priv protocol both net-snmp and pysnmp speak (net-snmp has no 3DES).
V3_MATRIX = [
    ("noAuthNoPriv", "", ""),
    ("authNoPriv", "MD5", ""),
    ("authNoPriv", "SHA", ""),
    ("authPriv", "MD5", "DES"),
    ("authPriv", "SHA", "AES"),
    ("authPriv", "SHA224", "AES192"),
    ("authPriv", "SHA256", "AES"),
    ("authPriv", "SHA384", "AES256"),
    ("authPriv", "SHA512", "AES192C"),
    ("authPriv", "SHA256", "AES256C"),
]


@dataclass
class Snmpd:
    """net-snmp's snmpd with a v2c community and one v3 user per row of V3_MATRIX."""

    workdir: Path
    port: int = field(default_factory=free_port)
    community: str = field(default_factory=lambda: _secret("comm"))
    users: list[V3User] = field(default_factory=list)
    process: subprocess.Popen | None = None

    def __post_init__(self) -> None:
        if not self.users:
            for i, (level, auth, priv) in enumerate(V3_MATRIX):
                self.users.append(
                    V3User(
                        name=f"user{i}-{level}-{auth or 'none'}-{priv or 'none'}".lower(),
                        level=level,
                        auth=auth,
                        priv=priv,
                        auth_password=_secret("auth") if auth else "",
                        priv_password=_secret("priv") if priv else "",
                    )
                )

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def user(self, level: str, auth: str = "", priv: str = "") -> V3User:
        return next(u for u in self.users if (u.level, u.auth, u.priv) == (level, auth, priv))

    def start(self) -> Snmpd:
        self.workdir.mkdir(parents=True, exist_ok=True)
        conf = self.workdir / "snmpd.conf"
        lines = [
            f"agentAddress udp:127.0.0.1:{self.port}"
            + (f",udp6:[::1]:{self.port}" if LOOPBACK6 else ""),
            f"[snmp] persistentDir {self.workdir / 'persist'}",
            f"rocommunity {self.community} 127.0.0.1",
            f"rocommunity6 {self.community} ::1",
            "sysName snmpd-under-test",
            "sysLocation test lab",
        ]
        for user in self.users:
            lines.append(user.create_line())
            lines.append(
                f"rouser {user.name} "
                + {"noAuthNoPriv": "noauth", "authNoPriv": "auth", "authPriv": "priv"}[user.level]
            )
        conf.write_text("\n".join(lines) + "\n")
        self.process = subprocess.Popen(
            [
                "snmpd",
                "-f",
                "-Lf",
                str(self.workdir / "snmpd.log"),
                "-C",
                "-c",
                str(conf),
                *NO_MIBS,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        atexit.register(stop_process, self.process)
        try:
            wait_for_agent(self.address, self.community, self.process)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        stop_process(self.process)


@dataclass
class Snmpsim:
    """snmpsim serving .snmprec recordings; each file's stem is its community."""

    workdir: Path
    recordings: dict[str, Path]  # community -> .snmprec or .snmprec.bz2
    port: int = field(default_factory=free_port)
    extra_args: list[str] = field(default_factory=list)
    process: subprocess.Popen | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> Snmpsim:
        data = self.workdir / "data"
        data.mkdir(parents=True, exist_ok=True)
        for community, source in self.recordings.items():
            target = data / f"{community}.snmprec"
            if not target.exists():
                # snmpsim serves .bz2 far slower than plain text: decompress once
                if source.suffix == ".bz2":
                    target.write_bytes(bz2.decompress(source.read_bytes()))
                else:
                    shutil.copyfile(source, target)
        env = dict(os.environ, SNMPSIM_ALLOW_ROOT="true")
        with open(self.workdir / "snmpsim.log", "wb") as log:
            self.process = subprocess.Popen(
                [
                    "snmpsim-command-responder",
                    f"--data-dir={data}",
                    f"--cache-dir={self.workdir / 'cache'}",
                    f"--agent-udpv4-endpoint={self.address}",
                    "--log-level=error",
                    *self.extra_args,
                ],
                stdout=subprocess.DEVNULL,
                stderr=log,
                env=env,
            )
        atexit.register(stop_process, self.process)
        try:
            for community in self.recordings:
                wait_for_agent(self.address, community, self.process, timeout=120)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        stop_process(self.process)


def wait_for_agent(
    address: str, community: str, process: subprocess.Popen, timeout: float = 30
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"agent at {address} exited with {process.returncode}")
        result = subprocess.run(
            [
                "snmpget",
                *NO_MIBS,
                "-v2c",
                "-c",
                community,
                "-t",
                "1",
                "-r",
                "0",
                address,
                "1.3.6.1.2.1.1.3.0",
            ],
            capture_output=True,
            text=True,
        )
        if result.returncode == 0:
            return
        time.sleep(0.2)
    raise TimeoutError(f"no SNMP agent answering at {address}")


def stop_process(process: subprocess.Popen | None) -> None:
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(5)


def snmpwalk(address: str, auth_args: list[str], oid: str) -> dict[str, str]:
    """{numeric OID without leading dot: value as net-snmp prints it (-Oq -Ot -Oe)}."""
    result = subprocess.run(
        [
            "snmpbulkwalk" if "-v1" not in auth_args else "snmpwalk",
            *NO_MIBS,
            *auth_args,
            "-On",
            "-Oq",
            "-Ot",
            "-Oe",
            address,
            oid,
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    values = {}
    for line in result.stdout.splitlines():
        if not line.startswith("."):
            continue
        oid_text, _, value = line.partition(" ")
        values[oid_text.lstrip(".")] = value.strip().strip('"')
    return values


def snmpget(address: str, auth_args: list[str], *oids: str) -> dict[str, str]:
    result = subprocess.run(
        ["snmpget", *NO_MIBS, *auth_args, "-On", "-Oq", "-Ot", "-Oe", address, *oids],
        capture_output=True,
        text=True,
        check=True,
    )
    values = {}
    for line in result.stdout.splitlines():
        oid_text, _, value = line.partition(" ")
        values[oid_text.lstrip(".")] = value.strip().strip('"')
    return values


@contextlib.contextmanager
def running(agent):
    agent.start()
    try:
        yield agent
    finally:
        agent.stop()
