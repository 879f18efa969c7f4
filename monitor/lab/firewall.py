"""Dropping the lab's echo replies with nftables, in a table of the lab's own.

Loopback addresses always answer ping, so a "down" target needs a firewall rule. Everything lives
in one table named after the lab's process id; its rules match only addresses the lab put in its
sets, and the table is deleted on exit (tables of labs that died without cleaning up are removed
at the next start). Nothing else on the machine is touched.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import re
import shutil
import subprocess

log = logging.getLogger(__name__)

_PREFIX = "schoolnet_lab_"


class FirewallUnavailable(RuntimeError):
    pass


def _nft(script: str) -> None:
    result = subprocess.run(["nft", "-f", "-"], input=script, text=True, capture_output=True)
    if result.returncode != 0:
        raise FirewallUnavailable(result.stderr.strip() or f"nft exited {result.returncode}")


class Firewall:
    def __init__(self) -> None:
        self.table = f"{_PREFIX}{os.getpid()}"
        self.down: set[str] = set()
        self.loss: dict[str, float] = {}

    @classmethod
    def create(cls) -> Firewall:
        """The lab's table, or FirewallUnavailable saying why (no nft, not privileged)."""
        if shutil.which("nft") is None:
            raise FirewallUnavailable("nft is not installed (Debian: apt-get install nftables)")
        firewall = cls()
        _remove_stale_tables()
        _nft(f"""
            table inet {firewall.table} {{
                set down {{ type ipv4_addr; }}
                chain degrade {{ }}
                chain input {{
                    type filter hook input priority -5; policy accept;
                    ip saddr @down icmp type echo-reply drop
                    icmp type echo-reply jump degrade
                }}
            }}
        """)
        return firewall

    def set_down(self, addresses: set[str], down: bool) -> None:
        addresses = {str(ipaddress.IPv4Address(a)) for a in addresses}
        changed = addresses - self.down if down else addresses & self.down
        if not changed:
            return
        verb = "add" if down else "delete"
        _nft(f"{verb} element inet {self.table} down {{ {', '.join(sorted(changed))} }}")
        if down:
            self.down |= changed
        else:
            self.down -= changed

    def set_loss(self, addresses: set[str], ratio: float) -> None:
        for address in addresses:
            ipaddress.IPv4Address(address)
            if ratio > 0:
                self.loss[address] = ratio
            else:
                self.loss.pop(address, None)
        rules = "".join(
            f"add rule inet {self.table} degrade ip saddr {address} "
            f"numgen random mod 10000 < {round(ratio * 10000)} drop\n"
            for address, ratio in sorted(self.loss.items())
        )
        _nft(f"flush chain inet {self.table} degrade\n{rules}")

    def close(self) -> None:
        try:
            _nft(f"delete table inet {self.table}")
        except FirewallUnavailable as exc:
            log.warning("could not remove nftables table %s: %s", self.table, exc)


def _remove_stale_tables() -> None:
    """Tables of lab processes that no longer exist (killed without cleanup)."""
    result = subprocess.run(["nft", "list", "tables", "inet"], capture_output=True, text=True)
    for pid in re.findall(rf"table inet {_PREFIX}(\d+)", result.stdout):
        if not os.path.exists(f"/proc/{pid}"):
            subprocess.run(
                ["nft", "delete", "table", "inet", f"{_PREFIX}{pid}"], capture_output=True
            )


def lab_tables() -> list[str]:
    """Names of lab tables present (for tests that check nothing is left behind)."""
    result = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True)
    return re.findall(rf"table \w+ ({_PREFIX}\d+)", result.stdout)
