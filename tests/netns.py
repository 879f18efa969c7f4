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


def in_ns(name: str, *command: str) -> None:
    """A command inside namespace `name` that must succeed (ip, sysctl, ...)."""
    subprocess.run(["ip", "netns", "exec", name, *command], check=True, capture_output=True)


@contextlib.contextmanager
def routed(client: str, router: str) -> Iterator[tuple[str, str]]:
    """Joins two namespaces with a veth pair, `router` forwarding for `client` (its default
    route, IPv4 and IPv6). Yields the router's addresses (TEST-NET-1 and the documentation
    prefix: they exist only inside these namespaces)."""
    _ip("link", "add", "c0", "netns", client, "type", "veth", "peer", "name", "r0", "netns", router)
    for name, side, v4, v6 in ((client, "c0", "2", "2"), (router, "r0", "1", "1")):
        in_ns(name, "ip", "addr", "add", f"192.0.2.{v4}/24", "dev", side)
        in_ns(name, "ip", "-6", "addr", "add", f"2001:db8:1::{v6}/64", "dev", side, "nodad")
        in_ns(name, "ip", "link", "set", side, "up")
    in_ns(client, "ip", "route", "add", "default", "via", "192.0.2.1")
    in_ns(client, "ip", "-6", "route", "add", "default", "via", "2001:db8:1::1")
    for setting in (
        "net.ipv4.ip_forward=1",
        "net.ipv6.conf.all.forwarding=1",
        "net.ipv4.icmp_ratelimit=0",
        "net.ipv6.icmp.ratelimit=0",
    ):
        in_ns(router, "sysctl", "-qw", setting)
    yield "192.0.2.1", "2001:db8:1::1"
