"""YAML text to a small tree of nodes that remember where they were written.

PyYAML's constructed Python objects forget their positions, and its node tree still contains merge
keys, silently overwritten duplicate keys and raw `${NAME}` references. This module composes the
YAML (never constructing arbitrary objects) and turns it into `Scalar`, `Mapping` and `Sequence`
nodes in which duplicates are reported, merge keys (`<<`) applied and environment references
substituted, so that the schema code only deals with plain, positioned values.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from collections.abc import Mapping as AbcMapping
from dataclasses import dataclass, field

import yaml

__all__ = ["Mapping", "Node", "Scalar", "Sequence", "parse"]

_TAG_PREFIX = "tag:yaml.org,2002:"
_MERGE_TAG = _TAG_PREFIX + "merge"

# `$$` is a literal `$`; `${NAME}` is a variable; `${` followed by anything else is a mistake. A `$`
# followed by any other character stays as written, so most literal `$` need no escaping.
_ENV_REFERENCE = re.compile(r"\$(?:(\$)|\{([A-Za-z_][A-Za-z0-9_]*)\}|(\{))")

Report = Callable[["Node", str], None]


@dataclass(eq=False)
class Node:
    """Position of the node's first character, 1-based."""

    line: int
    column: int


@dataclass(eq=False)
class Scalar(Node):
    """`text` is the value after `${NAME}` substitution; `raw` is what the file says. `tag` is the
    YAML type PyYAML resolved for the written text: "str", "int", "float", "bool", "null",
    "timestamp", or an explicit non-standard tag such as "!secret"."""

    text: str
    tag: str
    raw: str = ""
    env: tuple[str, ...] = ()  # variables substituted into `text`; () if written literally
    # A `${NAME}` reference in it could not be resolved (already reported): readers skip it
    # instead of adding a second, misleading problem such as "must not be empty".
    failed: bool = False

    @property
    def substituted(self) -> bool:
        return bool(self.env)


@dataclass(eq=False)
class Mapping(Node):
    """Keys are the keys' written text; each appears once (duplicates were reported and dropped,
    merge keys applied)."""

    entries: list[tuple[Scalar, Node]] = field(default_factory=list)

    def get(self, key: str) -> Node | None:
        for key_node, value in self.entries:
            if key_node.text == key:
                return value
        return None

    def __iter__(self) -> Iterator[tuple[Scalar, Node]]:
        return iter(self.entries)


@dataclass(eq=False)
class Sequence(Node):
    items: list[Node] = field(default_factory=list)


def parse(text: str, environ: AbcMapping[str, str] | None, report: Report) -> Node | None:
    """Return the document's root node, or None for an empty document or a YAML syntax error.
    `environ` None leaves `${NAME}` as written (device profiles: no secrets, regexes with `$`).

    Every problem goes to `report(node, message)`; a syntax error is reported at the parser's mark.
    """
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        report(Node(line, column), _syntax_message(error))
        return None
    except yaml.YAMLError as error:  # e.g. a reader error on a control character
        report(Node(1, 1), f"invalid YAML: {error}")
        return None
    if root is None:
        return None
    return _Converter(environ, report).convert(root, is_key=False)


def _syntax_message(error: yaml.MarkedYAMLError) -> str:
    problem = error.problem or "syntax error"
    if problem.startswith("but found another document"):
        return "invalid YAML: the file must hold a single document, but found a second one"
    if error.context and error.context_mark is not None:
        where = f" at line {error.context_mark.line + 1}"
        return f"invalid YAML: {problem} ({error.context}{where})"
    return f"invalid YAML: {problem}"


class _Converter:
    def __init__(self, environ: AbcMapping[str, str] | None, report: Report) -> None:
        self.environ = environ
        self.report = report
        # Aliases share one yaml node; converting it once keeps "billion laughs" documents cheap and
        # reports each problem once.
        self.done: dict[tuple[int, bool], Node] = {}
        self.active: set[int] = set()

    def convert(self, node: yaml.Node, is_key: bool) -> Node:
        memo_key = (id(node), is_key)
        if memo_key in self.done:
            return self.done[memo_key]
        line, column = node.start_mark.line + 1, node.start_mark.column + 1
        if id(node) in self.active:
            self.report(Node(line, column), "an alias refers to a node that contains it")
            return Scalar(line, column, text="", tag="null", failed=True)
        self.active.add(id(node))
        try:
            if isinstance(node, yaml.ScalarNode):
                result: Node = self._scalar(node, line, column, is_key)
            elif isinstance(node, yaml.SequenceNode):
                result = Sequence(line, column, [self.convert(item, False) for item in node.value])
            else:
                result = self._mapping(node, line, column)
        finally:
            self.active.discard(id(node))
        self.done[memo_key] = result
        return result

    def _scalar(self, node: yaml.ScalarNode, line: int, column: int, is_key: bool) -> Scalar:
        tag = node.tag.removeprefix(_TAG_PREFIX)
        scalar = Scalar(line, column, text=node.value, tag=tag, raw=node.value)
        # Keys are schema names and label names, never secrets: no substitution there.
        if tag == "str" and not is_key and "$" in node.value and self.environ is not None:
            self._substitute(scalar)
        return scalar

    def _substitute(self, scalar: Scalar) -> None:
        names: list[str] = []

        def replace(match: re.Match[str]) -> str:
            dollar, name, bad = match.groups()
            if dollar:
                return "$"
            if bad:
                self.report(
                    scalar,
                    "bad variable reference: write ${NAME} (letters, digits and _) "
                    "or $$ for a literal $",
                )
                scalar.failed = True
                return ""
            value = self.environ.get(name) if self.environ is not None else None
            if value is None:
                self.report(scalar, f"environment variable {name} is not set")
                scalar.failed = True
                return ""
            names.append(name)
            return value

        scalar.text = _ENV_REFERENCE.sub(replace, scalar.raw)
        scalar.env = tuple(dict.fromkeys(names))

    def _mapping(self, node: yaml.MappingNode, line: int, column: int) -> Mapping:
        explicit: list[tuple[Scalar, Node]] = []
        merged: list[tuple[Scalar, Node]] = []
        first_line: dict[str, int] = {}
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG:
                merged.extend(self._merge_sources(value_node))
                continue
            key = self.convert(key_node, is_key=True)
            if not isinstance(key, Scalar):
                self.report(key, "keys must be plain text, not a list or a mapping")
                continue
            if key.text in first_line:
                self.report(
                    key, f"duplicate key '{key.text}' (first at line {first_line[key.text]})"
                )
                continue
            first_line[key.text] = key.line
            explicit.append((key, self.convert(value_node, is_key=False)))
        # YAML merge semantics: explicit keys win over merged ones, earlier merged sources over
        # later ones; neither counts as a duplicate.
        seen = set(first_line)
        entries = list(explicit)
        for key, value in merged:
            if key.text not in seen:
                seen.add(key.text)
                entries.append((key, value))
        return Mapping(line, column, entries)

    def _merge_sources(self, value_node: yaml.Node) -> list[tuple[Scalar, Node]]:
        sources = value_node.value if isinstance(value_node, yaml.SequenceNode) else [value_node]
        entries: list[tuple[Scalar, Node]] = []
        for source in sources:
            converted = self.convert(source, is_key=False)
            if isinstance(converted, Mapping):
                entries.extend(converted.entries)
            else:
                self.report(converted, "'<<' (merge) needs a mapping or a list of mappings")
        return entries
