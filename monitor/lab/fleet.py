"""The simulated network of a targets.yaml: one device per target, agents bound at its address.

Links are not devices: their address only answers ping. Taking a target down also takes down what
it feeds (its `parent:` descendants), and a school's link takes the whole school with it — the
central collector reaches a school's devices across that link, so that is what really happens.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field

from monitor.config.model import Config, Target
from monitor.lab import agent
from monitor.lab.devices import Device, V3User, build_template, model_for

log = logging.getLogger(__name__)


@dataclass
class Fleet:
    config: Config
    day_seconds: float = 600.0
    devices: dict[tuple[str, str, str], Device] = field(default_factory=dict)
    transports: list[asyncio.DatagramTransport] = field(default_factory=list)
    responder: agent.Responder = field(default_factory=agent.Responder)

    def build(self) -> None:
        """Create a device for every SNMP target (templates shared per model)."""
        now = time.time()
        templates = {}
        schools = {s.id: s for s in self.config.schools()}
        wan: dict[tuple[str, str], str] = {}
        bandwidth: dict[tuple[str, str], float] = {}
        for target in self.config.targets():
            if target.role == "link" and target.via is not None:
                wan[(target.school, target.via.target)] = target.via.interface
                if target.bandwidth:
                    bandwidth[(target.school, target.via.target)] = target.bandwidth
        for target in self.config.targets():
            if target.snmp is None:
                continue
            model = model_for(target.role, target.vendor)
            via = wan.get((target.school, target.id))
            core = target.role == "switch" and "core" in f"{target.id} {target.name or ''}".lower()
            key = (model.name, target.role, via, target.parent is not None, core)
            template = templates.get(key)
            if template is None:
                template = templates[key] = build_template(
                    model, target.role, via, target.parent is not None, core
                )
            device = Device(
                target,
                template,
                schools[target.school].name,
                target.parent,
                bandwidth.get((target.school, target.id)),
                self.day_seconds,
                now,
            )
            _credentials(device, target)
            self.devices[target.key] = device
        log.info("lab fleet built: %d devices from %d templates", len(self.devices), len(templates))

    async def serve(self) -> None:
        _allow_sockets(len(self.devices) + 256)
        for device in self.devices.values():
            target = device.target
            transport = await agent.serve(self.responder, device, target.host, target.snmp_port)
            self.transports.append(transport)

    def close(self) -> None:
        for transport in self.transports:
            transport.close()
        self.transports.clear()

    # -- what `monitor lab down/up/...` act on --
    def resolve(self, name: str) -> list[Target]:
        """SCHOOL/TARGET, or SCHOOL alone (its link), to the targets it takes down with it."""
        school_id, _, target_id = name.partition("/")
        school = next((s for s in self.config.schools() if s.id == school_id), None)
        if school is None:
            raise KeyError(f"no school {school_id!r}")
        if not target_id:
            links = [t for t in school.targets if t.role == "link"]
            if not links:
                raise KeyError(f"school {school_id!r} has no link")
            target_id = links[0].id
        by_id = {t.id: t for t in school.targets}
        if target_id not in by_id:
            raise KeyError(f"no target {target_id!r} in school {school_id!r}")
        first = by_id[target_id]
        if first.role == "link":
            return [first] + [t for t in school.targets if t is not first]
        affected = [first]
        frontier = {first.id}
        while frontier:
            children = [t for t in school.targets if t.parent in frontier]
            affected += children
            frontier = {t.id for t in children}
        return affected


def _allow_sockets(needed: int) -> None:
    """One UDP socket per agent: a fleet of thousands needs more than the default 1024 files."""
    try:
        import resource
    except ImportError:  # pragma: no cover - not Linux
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        target = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


def _credentials(device: Device, target: Target) -> None:
    auth = target.snmp.auth if target.snmp else None
    if auth is None:
        return
    if auth.version in ("1", "2c"):
        device.communities[0 if auth.version == "1" else 1].add(auth.community.encode())
        if auth.version == "2c":  # agents that speak v2c answer v1 with the same community
            device.communities[0].add(auth.community.encode())
    else:
        device.v3_users[auth.username.encode()] = V3User(
            auth.username,
            auth.security_level,
            auth.auth_protocol,
            auth.auth_password,
            auth.priv_protocol,
            auth.priv_password,
        )
