"""Network namespaces made and removed by a test, for addresses no test may reach on the host."""

from __future__ import annotations

import contextlib
import secrets
import subprocess
from collections.abc import Iterator


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True)


@contextlib.contextmanager
def netns(ping_group_range: str | None = None) -> Iterator[str]:
    """A fresh namespace with only `lo` up; yields its name and deletes it afterwards."""
    name = f"smtest-{secrets.token_hex(4)}"
    _ip("netns", "add", name)
    try:
        _ip("netns", "exec", name, "ip", "link", "set", "lo", "up")
        if ping_group_range is not None:
            subprocess.run(
                [
                    "ip",
                    "netns",
                    "exec",
                    name,
                    "sysctl",
                    "-qw",
                    f"net.ipv4.ping_group_range={ping_group_range}",
                ],
                check=True,
            )
        yield name
    finally:
        _ip("netns", "del", name)


def run_in(name: str, argv: list[str], drop_net_raw: bool = False, **kwargs):
    prefix = ["ip", "netns", "exec", name]
    if drop_net_raw:
        prefix += ["setpriv", "--bounding-set=-net_raw", "--inh-caps=-net_raw"]
    return subprocess.run(prefix + argv, capture_output=True, text=True, **kwargs)


def nft(name: str, script: str) -> None:
    subprocess.run(
        ["ip", "netns", "exec", name, "nft", "-f", "-"],
        input=script,
        text=True,
        check=True,
        capture_output=True,
    )
