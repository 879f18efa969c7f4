"""Host names to addresses, cached briefly so thousands of rounds do not each ask the resolver."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import time


class ResolveError(Exception):
    pass


class Resolver:
    def __init__(self, ttl: float = 300.0) -> None:
        self.ttl = ttl
        self._cache: dict[str, tuple[str, float]] = {}

    async def resolve(self, host: str) -> str:
        """An IP literal is returned as is (compressed form, as the kernel reports sources)."""
        try:
            return ipaddress.ip_address(host).compressed
        except ValueError:
            pass
        cached = self._cache.get(host)
        now = time.monotonic()
        if cached is not None and cached[1] > now:
            return cached[0]
        loop = asyncio.get_running_loop()
        try:
            infos = await loop.getaddrinfo(host, None, type=socket.SOCK_DGRAM)
        except OSError as exc:
            raise ResolveError(f"cannot resolve {host}: {exc.strerror or exc}") from None
        if not infos:
            raise ResolveError(f"cannot resolve {host}: no address")
        # Prefer IPv4, as most school gear is managed over it.
        infos.sort(key=lambda info: info[0] != socket.AF_INET)
        address = ipaddress.ip_address(infos[0][4][0]).compressed
        self._cache[host] = (address, now + self.ttl)
        return address
