"""Load targets.yaml into the model, or explain everything that is wrong with it.

The file is edited by hand while the collector runs and re-reads it, so the loader is strict: an
unknown key, a duplicate id or a dangling reference is an error with its line and column, never a
silently ignored line. All problems are collected and raised together in one `ConfigError`.

The parts: `yamltree` (YAML with positions, `${NAME}` substitution), `schema` (typed readers),
`auths`, `settings` (ping/snmp inheritance), `targets` (targets and school-wide checks). This module
walks members and schools and ties them together.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Mapping as AbcMapping
from dataclasses import dataclass
from pathlib import Path

from monitor.config.auths import Auths, read_auths
from monitor.config.calendars import BROKEN_CALENDAR, Calendars, choose_calendar, read_calendars
from monitor.config.environ import OfflineEnviron, checked_offline
from monitor.config.model import ROLES, Config, Member, School
from monitor.config.problems import ConfigError, Problem
from monitor.config.schema import (
    Context,
    Invalid,
    Schema,
    boolean,
    describe,
    expect_list,
    expect_mapping,
    identifier,
    peek_text,
    string,
)
from monitor.config.settings import Layer, apply
from monitor.config.targets import Draft, Scope, check_school, read_target
from monitor.config.yamltree import LIMITS, Limits, Mapping, Node, parse

__all__ = ["ConfigError", "Problem", "load_config", "load_config_text", "summarize"]

MAX_PROBLEMS = 1000
TOP_SCHEMA = Schema({"defaults": None, "auths": None, "calendars": None, "members": None})
DEFAULTS_SCHEMA = Schema({"ping": None, "snmp": None, "calendar": None})
MEMBER_SCHEMA = Schema(
    {
        "id": identifier("member id"),
        "name": string(),
        "schools": None,
        "ping": None,
        "snmp": None,
        "calendar": None,
    }
)
SCHOOL_SCHEMA = Schema(
    {
        "id": identifier("school id"),
        "name": string(),
        "targets": None,
        "ping": None,
        "snmp": None,
        "calendar": None,
        "page_when_closed": boolean(),
    }
)


def load_config(
    path: str | os.PathLike[str],
    environ: AbcMapping[str, str] | None = None,
    vendors: tuple[str, ...] | None = None,
    limits: Limits = LIMITS,
    offline: bool = False,
) -> Config:
    """Read and validate the file at `path`; `${NAME}` references come from `environ`
    (default: the process environment); `vendor:` must be one of `vendors` (default: those of the
    shipped device profiles). `offline`: an unset variable is not a problem (its value is not
    checked), for CI without the secrets. Raises ConfigError."""
    try:
        with open(path, "rb") as file:
            data = file.read(limits.max_bytes + 1)  # a 50 MB file is not read whole
            size = os.fstat(file.fileno()).st_size
    except OSError as error:
        reason = error.strerror or str(error)
        raise ConfigError([Problem(str(path), 1, 1, f"cannot read file: {reason}")]) from None
    if len(data) > limits.max_bytes:
        line, column = _position(data, limits.max_bytes)
        message = limits.too_big(max(size, len(data)))
        raise ConfigError([Problem(str(path), line, column, message)])
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line, column = _position(data, error.start)
        message = f"cannot read file: not UTF-8 text (byte {error.start})"
        raise ConfigError([Problem(str(path), line, column, message)]) from None
    return load_config_text(text, path, environ, vendors, limits, offline)


def load_config_text(
    text: str,
    path: str | os.PathLike[str] = "<string>",
    environ: AbcMapping[str, str] | None = None,
    vendors: tuple[str, ...] | None = None,
    limits: Limits = LIMITS,
    offline: bool = False,
) -> Config:
    """Validate YAML `text` as if read from `path` (used in messages and as Config.path)."""
    if vendors is None:
        from monitor.profiles import registry  # (loaded on first use, not at import)

        vendors = registry().vendors
    ctx = _BoundedContext(str(path))
    environ = os.environ if environ is None else environ
    if offline:  # an unset variable reads as a placeholder; its own problems are dropped below
        environ = OfflineEnviron(environ)
    root = None
    try:
        root = parse(text, environ, ctx.error, limits)
        members, auths, calendars = _read_root(ctx, root, bool(ctx.problems), vendors)
    except _TooManyProblems:
        raise ConfigError(_remaining(ctx.problems, root, environ)) from None
    problems = _remaining(ctx.problems, root, environ)
    if problems:
        raise ConfigError(problems)
    return Config(
        path=Path(path),
        members=tuple(members),
        auths=dict(auths.valid),
        calendars=dict(calendars.valid),
    )


class _TooManyProblems(Exception):
    """Raised past MAX_PROBLEMS: not an `Invalid`, so no reader catches it and goes on."""


class _BoundedContext(Context):
    """Stops the check at MAX_PROBLEMS. A file that wrong is a wrong file, not a list of typos;
    and every problem costs a message and often a did-you-mean search, so a hostile file made
    of nothing but mistakes would otherwise buy seconds of CPU per megabyte."""

    def error(self, node: Node, message: str) -> None:
        super().error(node, message)
        if len(self.problems) >= MAX_PROBLEMS:
            note = f"stopped after {MAX_PROBLEMS:,} problems; fix these and check again"
            super().error(node, note)
            raise _TooManyProblems


def _position(data: bytes, offset: int) -> tuple[int, int]:
    """Line and column (in characters, as editors count) of byte `offset`."""
    line_start = data.rfind(b"\n", 0, offset) + 1
    column = len(data[line_start:offset].decode("utf-8", errors="replace")) + 1
    return data.count(b"\n", 0, offset) + 1, column


@dataclass
class _Seen:
    """Ids that must be unique in the whole file, with the line of their first use."""

    members: dict[str, int]
    schools: dict[str, int]


def _read_root(
    ctx: Context, root: Node | None, has_syntax_error: bool, vendors: tuple[str, ...]
) -> tuple[list[Member], Auths, Calendars]:
    auths = Auths({}, set())
    calendars = Calendars()
    if root is None:
        if not has_syntax_error:
            ctx.error(Node(1, 1), "the file is empty; it needs at least a 'members' list")
        return [], auths, calendars
    if not isinstance(root, Mapping):
        ctx.error(root, f"the top level must be a mapping with 'members', got {describe(root)}")
        return [], auths, calendars
    top = TOP_SCHEMA.read(ctx, root, "the top level")
    auths = read_auths(ctx, top.nodes.get("auths"))
    calendars = read_calendars(ctx, top.nodes.get("calendars"))
    ping, snmp = Layer(), Layer()
    calendar = None
    if top.written("defaults"):
        try:
            defaults = DEFAULTS_SCHEMA.read(
                ctx, expect_mapping(ctx, top.nodes["defaults"], "'defaults'"), "defaults"
            )
            ping = apply(ctx, ping, defaults, "ping", auths)
            snmp = apply(ctx, snmp, defaults, "snmp", auths)
            calendar = choose_calendar(ctx, defaults.nodes.get("calendar"), None, calendars)
        except Invalid:
            pass
    if not top.written("members"):
        ctx.error(root, "the top level has no members (the list of member organisations)")
        return [], auths, calendars
    try:
        items = expect_list(ctx, top.nodes["members"], "members").items
    except Invalid:
        return [], auths, calendars
    seen = _Seen({}, {})
    scope = Scope("", "", ping, snmp, auths, vendors, calendars=calendars, calendar=calendar)
    members = [m for item in items if (m := _read_member(ctx, item, scope, seen)) is not None]
    return members, auths, calendars


def _unique(ctx: Context, node: Node, kind: str, value: str, seen: dict[str, int]) -> None:
    if value in seen:
        ctx.error(node, f"duplicate {kind} id '{value}' (first at line {seen[value]})")
    else:
        seen[value] = node.line


def _read_member(ctx: Context, item: Node, inherited: Scope, seen: _Seen) -> Member | None:
    try:
        node = expect_mapping(ctx, item, "each member")
    except Invalid:
        return None
    peeked = peek_text(node, "id")
    subject = f"member '{peeked}'" if peeked else "member"
    fields = MEMBER_SCHEMA.read(ctx, node, subject)
    member_id = fields.get("id")
    if not fields.written("id"):
        ctx.error(node, "member has no id")
    elif member_id is not None:
        _unique(ctx, fields.nodes["id"], "member", member_id, seen.members)
    scope = Scope(
        member_id or "",
        "",
        apply(ctx, inherited.ping, fields, "ping", inherited.auths),
        apply(ctx, inherited.snmp, fields, "snmp", inherited.auths),
        inherited.auths,
        inherited.vendors,
        calendars=inherited.calendars,
        calendar=choose_calendar(
            ctx, fields.nodes.get("calendar"), inherited.calendar, inherited.calendars
        ),
    )
    schools: list[School] = []
    if not fields.written("schools"):
        ctx.error(node, f"{subject} has no schools")
    else:
        try:
            for school_item in expect_list(ctx, fields.nodes["schools"], "schools").items:
                school = _read_school(ctx, school_item, scope, seen)
                if school is not None:
                    schools.append(school)
        except Invalid:
            pass
    if member_id is None:
        return None
    return Member(id=member_id, name=fields.get("name", member_id), schools=tuple(schools))


def _read_school(ctx: Context, item: Node, inherited: Scope, seen: _Seen) -> School | None:
    try:
        node = expect_mapping(ctx, item, "each school")
    except Invalid:
        return None
    peeked = peek_text(node, "id")
    subject = f"school '{peeked}'" if peeked else "school"
    fields = SCHOOL_SCHEMA.read(ctx, node, subject)
    school_id = fields.get("id")
    if not fields.written("id"):
        ctx.error(node, "school has no id")
    elif school_id is not None:
        _unique(ctx, fields.nodes["id"], "school", school_id, seen.schools)
    scope = Scope(
        inherited.member,
        school_id or "",
        apply(ctx, inherited.ping, fields, "ping", inherited.auths),
        apply(ctx, inherited.snmp, fields, "snmp", inherited.auths),
        inherited.auths,
        inherited.vendors,
        page_when_closed=fields.get("page_when_closed", False),
        calendars=inherited.calendars,
        calendar=choose_calendar(
            ctx, fields.nodes.get("calendar"), inherited.calendar, inherited.calendars
        ),
    )
    drafts: list[Draft] = []
    if not fields.written("targets"):
        ctx.error(node, f"{subject} has no targets")
    else:
        try:
            for target_item in expect_list(ctx, fields.nodes["targets"], "targets").items:
                draft = read_target(ctx, target_item, scope)
                if draft is not None:
                    drafts.append(draft)
        except Invalid:
            pass
    check_school(ctx, school_id or peeked or "?", drafts)
    if school_id is None:
        return None
    targets = tuple(d.target for d in drafts if d.target is not None)
    calendar = None if scope.calendar is BROKEN_CALENDAR else scope.calendar
    return School(
        id=school_id,
        name=fields.get("name", school_id),
        member=inherited.member,
        targets=targets,
        calendar=calendar,  # type: ignore[arg-type]
    )


def _remaining(
    problems: list[Problem], root: Node | None, environ: AbcMapping[str, str]
) -> list[Problem]:
    """The problems to report: offline, not those about the value of an unset variable."""
    if isinstance(environ, OfflineEnviron) and environ.unset:
        return checked_offline(problems, root, environ.unset)
    return problems


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def summarize(config: Config) -> str:
    """The one-line success report of `monitor check`: enough to notice a school or a whole kind
    of device that went missing in an edit."""
    targets = list(config.targets())
    roles = Counter(target.role for target in targets)
    by_role = ", ".join(f"{role} {roles[role]}" for role in ROLES if roles[role])
    polled = sum(1 for target in targets if target.snmp is not None)
    ping_only = sum(1 for target in targets if target.snmp is None and target.ping is not None)
    counts = (
        f"{_plural(len(config.members), 'member')}, "
        f"{_plural(sum(1 for _ in config.schools()), 'school')}, "
        f"{_plural(len(targets), 'target')}"
    )
    if by_role:
        counts += f" ({by_role})"
    return f"{config.path}: OK: {counts}; {polled} polled over SNMP, {ping_only} ping-only"
