"""Device profiles: which vendor and model a device is, and which OIDs tell its health.

One YAML file per vendor/OS family lives beside this module (docs/profiles.md); operators add
their own directories (`--profiles DIR`), whose files extend or override the shipped ones by name.
`load_registry()` reads and validates them all (every problem as FILE:LINE:COL, raised together
in a ProfileError); `registry()` is the shipped set, loaded on first use, never at import.

Selecting a profile for a device is `select()`: the most specific
sysObjectID prefix wins, then sysDescr rules, then rules that must ask the device (`probe:`);
`vendor:` in targets.yaml narrows the choice to that vendor's profiles. Unknown devices get the
generic profile (standard MIBs only); their vendor is still known when the IANA enterprise number
of their sysObjectID is in enterprises.yaml (`device_vendor()`), else "unknown".
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

from monitor.profiles.enterprises import enterprise_vendor, enterprises
from monitor.profiles.evaluate import Data, Sample, evaluate, lookup_keys, model_text
from monitor.profiles.schema import (
    GENERIC,
    OID,
    MatchRule,
    Metric,
    Probe,
    Profile,
    ProfileError,
    load_profiles,
)

__all__ = [
    "GENERIC",
    "Data",
    "Metric",
    "Probe",
    "Profile",
    "ProfileError",
    "Registry",
    "Sample",
    "device_vendor",
    "enterprise_vendor",
    "evaluate",
    "load_registry",
    "lookup_keys",
    "model_text",
    "registry",
]

PROFILE_DIR = Path(__file__).parent


class Registry:
    def __init__(self, profiles: dict[str, Profile]) -> None:
        self.profiles = profiles
        self.generic = profiles[GENERIC]
        self.enterprises = enterprises()  # (read with the profiles: a broken table fails here)

    @property
    def vendors(self) -> tuple[str, ...]:
        """Every vendor a profile or the enterprise-number table reports (the values `vendor:` in
        targets.yaml accepts: whatever the collector may report, `monitor discover` may write)."""
        named = {p.vendor for p in self.profiles.values() if p.name != GENERIC}
        return tuple(sorted(named | {e.vendor for e in self.enterprises.values()}))

    def candidates(
        self, sys_object_id: OID | None, sys_descr: str
    ) -> list[tuple[Profile, MatchRule]]:
        """Profiles whose rules match what the system group says, best first."""
        ranked = []
        for order, profile in enumerate(self.profiles.values()):
            for score, rule in profile.rank(sys_object_id, sys_descr):
                ranked.append((score, -order, profile, rule))
        ranked.sort(key=lambda r: (r[0], r[1]), reverse=True)
        return [(profile, rule) for _, _, profile, rule in ranked]

    def vendor_default(self, vendor: str) -> Profile | None:
        own = [p for p in self.profiles.values() if p.vendor == vendor]
        marked = [p for p in own if p.vendor_default]
        if marked:
            return marked[0]
        return own[0] if len(own) == 1 else None

    async def select(
        self,
        sys_object_id: OID | None,
        sys_descr: str,
        vendor: str | None = None,
        probe: Callable[[Probe], Awaitable[bool]] | None = None,
    ) -> Profile:
        """The profile for a device. `probe` answers rules that must ask the device; without it
        such rules never match. `vendor` (from targets.yaml) overrides detection: the best of that
        vendor's profiles that matches, else its default profile, else generic."""
        answers: dict[Probe, bool] = {}

        async def passes(rule: MatchRule) -> bool:
            if rule.probe is None:
                return True
            if probe is None:
                return False
            if rule.probe not in answers:
                answers[rule.probe] = await probe(rule.probe)
            return answers[rule.probe]

        ranked = self.candidates(sys_object_id, sys_descr)
        if vendor:
            ranked = [(p, r) for p, r in ranked if p.vendor == vendor]
        for profile, rule in ranked:
            if await passes(rule):
                return profile
        if vendor:
            return self.vendor_default(vendor) or self.generic
        return self.generic


def device_vendor(profile: Profile, sys_object_id: object) -> str:
    """The vendor to report for a device polled with `profile`: the profile's own, or for the
    generic profile the vendor of the sysObjectID's enterprise number, else "unknown"."""
    if profile.name != GENERIC:
        return profile.vendor
    oid = sys_object_id if isinstance(sys_object_id, tuple) else None
    return enterprise_vendor(oid) or profile.vendor


def load_registry(directories: Sequence[Path] = ()) -> Registry:
    """The shipped profiles and those of the operator's `directories` (later ones win by file
    name). Raises ProfileError with every problem of every file."""
    if not directories:
        return registry()
    return Registry(load_profiles([PROFILE_DIR, *directories]))


@functools.cache
def registry() -> Registry:
    """The shipped profiles, loaded and validated once per process (on first use)."""
    return Registry(load_profiles([PROFILE_DIR]))
