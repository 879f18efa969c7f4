"""A small schema-driven reader for the positioned YAML tree.

Each kind of mapping in targets.yaml (a target, ping settings, an auth, ...) is described by a
`Schema`: its allowed keys and, for plain values, a reader that checks and converts the value.
Readers record a `Problem` at the offending node and raise `Invalid`, so one bad value never hides
the next: the caller keeps going and every problem of the file is reported in one run.

Messages never contain a value that came from the environment (it may be a secret); they say
"the value of ${NAME}" instead. Readers for secret fields never echo even a literal value.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, NoReturn

from monitor.config.problems import Problem
from monitor.config.yamltree import Mapping, Node, Scalar, Sequence
from monitor.units import UnitError, parse_duration

__all__ = [
    "FALSE_WORDS",
    "TRUE_WORDS",
    "Context",
    "Fields",
    "Invalid",
    "Reader",
    "Schema",
    "boolean",
    "choice",
    "describe",
    "did_you_mean",
    "duration",
    "identifier",
    "integer",
    "parsed",
    "string",
]

ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
ID_RULE = "use 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit"
_DECIMAL = re.compile(r"[-+]?(?:0|[1-9][0-9]*)")
# YAML 1.1 booleans, which PyYAML resolves; the same words count when read from the environment.
TRUE_WORDS = frozenset({"true", "yes", "on"})
FALSE_WORDS = frozenset({"false", "no", "off"})
_TYPE_NAMES = {
    "str": "string",
    "int": "integer",
    "float": "number",
    "bool": "boolean",
    "timestamp": "date",
    "binary": "binary value",
}


class Invalid(Exception):
    """A value was rejected; its problem has already been recorded."""


class Context:
    """Collects the problems of one file."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.problems: list[Problem] = []

    def error(self, node: Node, message: str) -> None:
        self.problems.append(Problem(self.path, node.line, node.column, message))

    def fail(self, node: Node, message: str) -> NoReturn:
        self.error(node, message)
        raise Invalid(message)

    def count(self) -> int:
        """For "did this part add problems?" checks: compare before and after."""
        return len(self.problems)


def shorten(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def describe(node: Node, *, secret: bool = False) -> str:
    """How a message refers to a value: its type and, unless that could leak a secret, the value."""
    if isinstance(node, Mapping):
        return "a mapping"
    if isinstance(node, Sequence):
        return "a list"
    assert isinstance(node, Scalar)
    if node.substituted:
        if node.raw == f"${{{node.env[0]}}}":
            return f"the value of ${{{node.env[0]}}}"
        return f"the value of {shorten(node.raw)!r}"
    if node.tag == "null":
        return "nothing (null)"
    kind = _TYPE_NAMES.get(node.tag, f"a value tagged {node.tag}")
    if secret:
        return f"a {kind}" if kind[0] not in "aeiou" else f"an {kind}"
    if node.tag == "str":
        return f"string {shorten(node.text)!r}"
    return f"{kind} {shorten(node.text)}"


def did_you_mean(word: str, candidates: Iterable[str]) -> str:
    """ "; did you mean 'x'?" for the closest candidate, or "" when nothing is close enough to be a
    plausible typo (a wrong guess would mislead more than no guess)."""
    by_lower = {c.lower(): c for c in candidates}
    close = difflib.get_close_matches(word.lower(), list(by_lower), n=1)
    return f"; did you mean '{by_lower[close[0]]}'?" if close else ""


def scalar(ctx: Context, node: Node, key: str, expected: str) -> Scalar:
    if not isinstance(node, Scalar):
        ctx.fail(node, f"'{key}' must be {expected}, got {describe(node)}")
    return node


def as_text(
    ctx: Context, node: Node, key: str, *, secret: bool = False, allow_empty: bool = False
) -> str:
    """The string value of `node`; a YAML number, boolean or date where text is expected is an
    error (`id: 0012` or `name: no` would otherwise change meaning on the way in)."""
    value = scalar(ctx, node, key, "a string")
    if value.tag != "str":
        hint = "" if value.tag == "null" else "; put it in quotes if you mean the text"
        ctx.fail(node, f"'{key}' must be a string, got {describe(value, secret=secret)}{hint}")
    if not value.text and not allow_empty:
        where = f" ({describe(value)})" if value.substituted else ""
        ctx.fail(node, f"'{key}' must not be empty{where}")
    return value.text


Reader = Callable[[Context, Node, str], Any]


def string(*, secret: bool = False, allow_empty: bool = False, min_length: int = 0) -> Reader:
    def read(ctx: Context, node: Node, key: str) -> str:
        text = as_text(ctx, node, key, secret=secret, allow_empty=allow_empty)
        if len(text) < min_length:
            assert isinstance(node, Scalar)
            source = f" ({describe(node)})" if node.substituted else ""
            ctx.fail(
                node,
                f"'{key}'{source} must be at least {min_length} characters long",
            )
        return text

    return read


def identifier(kind: str) -> Reader:
    """Ids become label values and are typed on the command line as SCHOOL/TARGET."""

    def read(ctx: Context, node: Node, key: str) -> str:
        # Ids must be stable and are quoted in messages, so they are never taken from the
        # environment (whose values messages must not show).
        if isinstance(node, Scalar) and node.substituted:
            ctx.fail(node, f"'{key}' must be written literally, not taken from ${{...}}")
        text = as_text(ctx, node, key)
        if not ID_PATTERN.fullmatch(text):
            ctx.fail(node, f"invalid {kind} {shorten(text)!r}: {ID_RULE}")
        return text

    return read


def integer(minimum: int, maximum: int) -> Reader:
    def read(ctx: Context, node: Node, key: str) -> int:
        value = scalar(ctx, node, key, "an integer")
        readable = value.tag == "int" or (value.tag == "str" and value.substituted)
        if not readable:
            ctx.fail(node, f"'{key}' must be an integer, got {describe(value)}")
        if not _DECIMAL.fullmatch(value.text.strip()):
            if value.substituted:
                ctx.fail(node, f"'{key}' must be an integer, got {describe(value)}")
            # YAML 1.1 reads 010 as octal 8 and 1:30 as 90; accept only what reads the same to
            # a person and to the parser.
            ctx.fail(node, f"'{key}' must be a plain decimal integer, got {value.text}")
        number = int(value.text)
        if not minimum <= number <= maximum:
            ctx.fail(
                node, f"'{key}' must be between {minimum} and {maximum}, got {describe(value)}"
            )
        return number

    return read


def boolean() -> Reader:
    def read(ctx: Context, node: Node, key: str) -> bool:
        value = scalar(ctx, node, key, "true or false")
        if value.tag == "bool" or (value.tag == "str" and value.substituted):
            word = value.text.strip().lower()
            if word in TRUE_WORDS:
                return True
            if word in FALSE_WORDS:
                return False
        ctx.fail(node, f"'{key}' must be true or false, got {describe(value)}")

    return read


def choice(options: Iterable[str], what: str) -> Reader:
    """One of a fixed set, matched case-insensitively and returned in its canonical spelling."""
    canonical = {option.lower(): option for option in options}

    def read(ctx: Context, node: Node, key: str) -> str:
        text = as_text(ctx, node, key)
        found = canonical.get(text.strip().lower())
        if found is not None:
            return found
        assert isinstance(node, Scalar)
        listing = ", ".join(canonical.values())
        if node.substituted:
            ctx.fail(node, f"'{key}' must be one of {listing}, got {describe(node)}")
        hint = did_you_mean(text, canonical.values()) or f"; expected one of {listing}"
        ctx.fail(node, f"unknown {what} {shorten(text)!r}{hint}")

    return read


def parsed(parse: Callable[[str], Any], expected: str, *, numbers: str | None = None) -> Reader:
    """A string turned into a value by `parse`, which raises ValueError (ideally UnitError) with a
    reason. `expected` phrases what an environment value should have been, since its text and
    hence the parser's reason must not be shown. `numbers`, if given, is the message for a YAML
    number (e.g. durations need a unit)."""

    def read(ctx: Context, node: Node, key: str) -> Any:
        value = scalar(ctx, node, key, expected)
        if numbers is not None and value.tag in ("int", "float"):
            ctx.fail(node, f"'{key}': {numbers} (got {describe(value)})")
        text = as_text(ctx, node, key)
        try:
            return parse(text)
        except ValueError as error:
            if value.substituted:
                ctx.fail(node, f"'{key}' must be {expected}, got {describe(value)}")
            reason = error.reason if isinstance(error, UnitError) else str(error)
            ctx.fail(node, f"'{key}': {reason} (got {describe(value)})")

    return read


def duration(*, allow_zero: bool = False) -> Reader:
    base = parsed(
        parse_duration,
        "a duration such as 15s or 1m30s",
        numbers="durations need a unit, e.g. 15s",
    )

    def read(ctx: Context, node: Node, key: str) -> float:
        seconds: float = base(ctx, node, key)
        if seconds == 0 and not allow_zero:
            ctx.fail(node, f"'{key}' must be longer than 0s")
        return seconds

    return read


@dataclass
class Fields:
    """The outcome of reading one mapping against its schema.

    `values` holds the converted values that passed; `nodes` and `keys` every known key that was
    written (valid or not), so callers can point at them; `broken` the keys whose values failed.
    """

    node: Mapping
    values: dict[str, Any] = field(default_factory=dict)
    nodes: dict[str, Node] = field(default_factory=dict)
    keys: dict[str, Scalar] = field(default_factory=dict)
    broken: set[str] = field(default_factory=set)

    def written(self, key: str) -> bool:
        return key in self.nodes

    def get(self, key: str, default: Any = None) -> Any:
        return self.values.get(key, default)


@dataclass(frozen=True)
class Schema:
    """The allowed keys of one kind of mapping. A key whose reader is None is structural: it is
    allowed and its node kept, but the caller interprets it."""

    fields: dict[str, Reader | None]

    def read(self, ctx: Context, node: Mapping, what: str) -> Fields:
        """Check keys and read every plain value. `what` names the mapping in messages, e.g.
        "ping settings" or "target 'sw-1'"."""
        result = Fields(node)
        for key_node, value in node:
            key = key_node.text
            if key not in self.fields:
                hint = did_you_mean(key, self.fields)
                ctx.error(key_node, f"unknown key '{shorten(key)}' in {what}{hint}")
                continue
            result.nodes[key] = value
            result.keys[key] = key_node
            reader = self.fields[key]
            if reader is None:
                continue
            if _already_reported(value):
                result.broken.add(key)
                continue
            try:
                result.values[key] = reader(ctx, value, key)
            except Invalid:
                result.broken.add(key)
        return result


def _already_reported(node: Node) -> bool:
    return isinstance(node, Scalar) and node.failed


def expect_mapping(ctx: Context, node: Node, what: str) -> Mapping:
    if _already_reported(node):
        raise Invalid(what)
    if not isinstance(node, Mapping):
        ctx.fail(node, f"{what} must be a mapping, got {describe(node)}")
    return node


def expect_list(ctx: Context, node: Node, key: str) -> Sequence:
    if _already_reported(node):
        raise Invalid(key)
    if not isinstance(node, Sequence):
        ctx.fail(node, f"'{key}' must be a list, got {describe(node)}")
    return node


def peek_text(node: Mapping, key: str) -> str | None:
    """A mapping's `key` if it is a usable string, to name the mapping in messages before it has
    been checked."""
    value = node.get(key)
    if isinstance(value, Scalar) and value.tag == "str" and not value.substituted and value.text:
        return shorten(value.text)
    return None
