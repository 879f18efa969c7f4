"""`monitor run --shard K/N`: the part of the cooperative one collector of N watches.

Whole schools go to one shard (a school's link, router and APs are judged together: its link
alert inhibits its device alerts, its dashboard reads one collector), chosen by a stable hash of
member/school, so a reload or a new school elsewhere never moves a school between shards.
"""

from __future__ import annotations

import dataclasses
import zlib

from monitor.config.model import Config


def parse_shard(text: str) -> tuple[int, int]:
    """ "K/N" with 0 <= K < N (as Prometheus' hashmod counts)."""
    index, sep, count = text.partition("/")
    try:
        k, n = int(index), int(count)
    except ValueError:
        raise ValueError(f"--shard wants K/N such as 0/2, got {text!r}") from None
    if not sep or n < 1 or not 0 <= k < n:
        raise ValueError(f"--shard K/N needs 0 <= K < N, got {text!r}")
    return k, n


def shard_of(member: str, school: str, count: int) -> int:
    return zlib.crc32(f"{member}/{school}".encode()) % count


def select_shard(config: Config, index: int, count: int) -> Config:
    members = []
    for member in config.members:
        schools = tuple(s for s in member.schools if shard_of(member.id, s.id, count) == index)
        if schools:
            members.append(dataclasses.replace(member, schools=schools))
    return dataclasses.replace(config, members=tuple(members))
