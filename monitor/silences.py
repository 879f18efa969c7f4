"""Alertmanager silences for a school or one of its devices, from the command line.

`monitor silence SCHOOL[/TARGET]` silences every alert of a school (or of one target) in
Alertmanager: a silence with the matchers `member`, `school` (and `target`), the labels every
school alert carries (docs/alerting.md), so nothing else is touched: not another school, not the
platform's alerts. `monitor silences` lists the active silences made for schools (those with a
`school` matcher), `monitor silence --expire ID` ends one. Alertmanager's API v2, over urllib:
three plain JSON calls do not need a client library.

The member is looked up in targets.yaml, so a silence matches exactly what the rules label. Only
the ids are needed, so `${NAME}` references the shell has not set are filled with a placeholder
(an engineer silencing a school need not hold the SNMP secrets).
"""

from __future__ import annotations

import base64
import datetime as dt
import getpass
import json
import os
import re
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from monitor.config.loader import load_config
from monitor.config.model import Config

ENV_URL = "ALERTMANAGER_URL"
DEFAULT_URL = "http://127.0.0.1:9093"
TIMEOUT = 10.0


class SilenceError(Exception):
    """Something the user must fix or know, as one line (never a secret)."""


@dataclass(frozen=True)
class Scope:
    """What a silence covers: a school, or one target of it."""

    member: str
    school: str
    target: str | None = None

    @property
    def name(self) -> str:
        return f"{self.school}/{self.target}" if self.target else self.school

    def matchers(self) -> list[dict[str, Any]]:
        labels = {"member": self.member, "school": self.school}
        if self.target:
            labels["target"] = self.target
        return [
            {"name": name, "value": value, "isRegex": False, "isEqual": True}
            for name, value in labels.items()
        ]


@dataclass(frozen=True)
class Silence:
    """A silence as Alertmanager reports it."""

    id: str
    state: str
    matchers: dict[str, str]
    ends_at: dt.datetime
    created_by: str
    comment: str

    @property
    def scope(self) -> str:
        member, school = self.matchers.get("member", "?"), self.matchers.get("school", "?")
        target = self.matchers.get("target")
        return f"{member}/{school}" + (f"/{target}" if target else "")


class _IdsOnly(Mapping[str, str]):
    """The process environment, with a placeholder for any `${NAME}` it lacks."""

    PLACEHOLDER = "placeholder-not-used"

    def __getitem__(self, name: str) -> str:
        return os.environ.get(name, self.PLACEHOLDER)

    def __iter__(self) -> Iterator[str]:
        return iter(os.environ)

    def __len__(self) -> int:
        return len(os.environ)


def load_targets(path: Path) -> Config:
    """targets.yaml for its ids (raises ConfigError like `monitor check`)."""
    return load_config(path, environ=_IdsOnly())


def resolve(config: Config, name: str) -> Scope:
    """SCHOOL or SCHOOL/TARGET to the labels its alerts carry."""
    school_id, _, target_id = name.partition("/")
    for member in config.members:
        for school in member.schools:
            if school.id != school_id:
                continue
            if target_id and target_id not in {t.id for t in school.targets}:
                raise SilenceError(
                    f"school {school_id} has no target {target_id!r} in {config.path}"
                )
            return Scope(member.id, school.id, target_id or None)
    raise SilenceError(f"unknown school {school_id!r}: not in {config.path}")


def author() -> str:
    """Who made the silence: the login name."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry and no LOGNAME/USER (some containers)
        return f"uid {os.getuid()}" if hasattr(os, "getuid") else "unknown"


def default_url() -> str:
    return os.environ.get(ENV_URL) or DEFAULT_URL


class Alertmanager:
    """The three silence calls of Alertmanager's API v2. A URL may carry basic-auth credentials
    (https://user:password@host); they go into the Authorization header and never into a
    message."""

    def __init__(self, url: str) -> None:
        try:
            parts = urllib.parse.urlsplit(url.strip())
            port = parts.port
        except ValueError:
            raise SilenceError(f"not a URL of Alertmanager: {_safe(url)!r}") from None
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise SilenceError(f"not an http(s) URL of Alertmanager: {_safe(url)!r}")
        self._auth = None
        if parts.username is not None:
            user = urllib.parse.unquote(parts.username)
            password = urllib.parse.unquote(parts.password or "")
            self._auth = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
        netloc = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
        if port:
            netloc += f":{port}"
        self.url = urllib.parse.urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "", ""))

    def create(self, scope: Scope, duration: float, comment: str, by: str) -> str:
        now = dt.datetime.now(dt.timezone.utc)
        body = {
            "matchers": scope.matchers(),
            "startsAt": now.isoformat(),
            "endsAt": (now + dt.timedelta(seconds=duration)).isoformat(),
            "createdBy": by,
            "comment": comment,
        }
        answer = self._call("POST", "/api/v2/silences", body)
        return str(answer["silenceID"])

    def silences(self) -> list[Silence]:
        """Active silences with a `school` matcher (equality), soonest end first."""
        found = []
        for item in self._call("GET", "/api/v2/silences") or []:
            if item["status"]["state"] != "active":
                continue
            matchers = {
                m["name"]: m["value"]
                for m in item["matchers"]
                if not m.get("isRegex") and m.get("isEqual", True)
            }
            if "school" not in matchers:
                continue
            found.append(
                Silence(
                    id=item["id"],
                    state=item["status"]["state"],
                    matchers=matchers,
                    ends_at=_time(item["endsAt"]),
                    created_by=item.get("createdBy", ""),
                    comment=item.get("comment", ""),
                )
            )
        return sorted(found, key=lambda s: s.ends_at)

    def expire(self, silence_id: str) -> None:
        quoted = urllib.parse.quote(silence_id, safe="")
        self._call("DELETE", f"/api/v2/silence/{quoted}")

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.url + path, data=data, method=method)
        request.add_header("Accept", "application/json")
        if data is not None:
            request.add_header("Content-Type", "application/json")
        if self._auth:
            request.add_header("Authorization", self._auth)
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
                raw = response.read()
        except urllib.error.HTTPError as error:
            detail = error.read().decode(errors="replace").strip().strip('"')
            raise SilenceError(
                f"Alertmanager at {self.url} refused {method} {path}: HTTP {error.code}"
                + (f": {_one_line(detail)}" if detail else "")
            ) from None
        except (urllib.error.URLError, OSError) as error:
            reason = getattr(error, "reason", error)
            if isinstance(reason, OSError) and reason.strerror:
                reason = reason.strerror  # "Connection refused", not "[Errno 111] ..."
            raise SilenceError(f"cannot reach Alertmanager at {self.url}: {reason}") from None
        try:
            return json.loads(raw) if raw else None
        except ValueError:
            raise SilenceError(f"Alertmanager at {self.url} answered something not JSON") from None


def format_table(silences: list[Silence], now: dt.datetime | None = None) -> str:
    """One line per silence: id, what, until when (UTC) and how long still, who, why."""
    now = now or dt.datetime.now(dt.timezone.utc)
    rows = [("ID", "SILENCED", "ENDS (UTC)", "LEFT", "BY", "COMMENT")]
    for s in silences:
        left = max(0, int((s.ends_at - now).total_seconds()))
        rows.append(
            (
                s.id,
                s.scope,
                s.ends_at.strftime("%Y-%m-%d %H:%M"),
                f"{left // 3600}h{left % 3600 // 60:02d}m",
                s.created_by,
                _one_line(s.comment),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row[:-1], widths, strict=True))
        + "  "
        + row[-1]
        for row in rows
    )


def _time(text: str) -> dt.datetime:
    """RFC 3339 as Alertmanager writes it (milliseconds, "Z"), for Python 3.10's fromisoformat
    (which wants 0, 3 or 6 fractional digits and no "Z")."""
    text = text.replace("Z", "+00:00")
    match = re.fullmatch(r"(.*T\d\d:\d\d:\d\d)(?:\.(\d+))?(.*)", text)
    if match:
        whole, fraction, zone = match.groups()
        text = whole + (f".{(fraction + '000000')[:6]}" if fraction else "") + zone
    return dt.datetime.fromisoformat(text)


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _safe(url: str) -> str:
    """A URL without its credentials, for messages."""
    try:
        parts = urllib.parse.urlsplit(url)
        if parts.username is None and parts.password is None:
            return url
        netloc = parts.netloc.rpartition("@")[2]
        return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, "", ""))
    except ValueError:
        return "<unparsable URL>"
