"""YAML text to a small tree of nodes that remember where they were written.

PyYAML's constructed Python objects forget their positions, and its node tree still contains merge
keys, silently overwritten duplicate keys and raw `${NAME}` references. This module builds the tree
straight from the parser's events (never constructing arbitrary objects) as `Scalar`, `Mapping` and
`Sequence` nodes in which duplicates are reported, merge keys (`<<`) applied and environment
references substituted, so that the schema code only deals with plain, positioned values.

The file is hostile input (a merge request in CI is exactly that), so building is bounded: the
number of values written, the number of values once aliases and merges are expanded (each alias of
an anchor that itself holds aliases multiplies), and the nesting depth all have limits that stop
the build at the event that crosses them, reported at its position. libyaml's event parser is
iterative and fast; the builder keeps its own stack, so no shape of file reaches Python's recursion
limit.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from collections.abc import Mapping as AbcMapping
from dataclasses import dataclass, field

import yaml

__all__ = ["LIMITS", "Limits", "Mapping", "Node", "Scalar", "Sequence", "parse"]

_TAG_PREFIX = "tag:yaml.org,2002:"
_MERGE_TAG = _TAG_PREFIX + "merge"
# libyaml when PyYAML was built with it (every wheel is): ~30x faster than the pure-Python parser.
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

# `$$` is a literal `$`; `${NAME}` is a variable; `${` followed by anything else is a mistake. A `$`
# followed by any other character stays as written, so most literal `$` need no escaping.
_ENV_REFERENCE = re.compile(r"\$(?:(\$)|\{([A-Za-z_][A-Za-z0-9_]*)\}|(\{))")
# What YAML does not allow in a file (PyYAML's reader rejects the same set): control characters
# other than tab and line breaks, surrogates, U+FFFE and U+FFFF.
_NOT_PRINTABLE = re.compile("[^\t\n\r\x20-\x7e\x85\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_LISTED_CHARACTERS = 10  # then one line saying how many more

Report = Callable[["Node", str], None]


@dataclass(frozen=True)
class Limits:
    """How much one targets.yaml may make the loader do. The defaults leave several times the
    largest file one collector process can poll (6,000 devices: 0.6 MB, 80,000 values) and keep
    `monitor check` of any file under a second of CPU and 100 MB (tests/test_config_hostile.py
    measures the worst shapes: distinct numbers with anchors, the largest valid fleet)."""

    max_bytes: int = 4 * 1024 * 1024
    max_nodes: int = 100_000  # values as written
    max_expanded: int = 100_000  # values once every alias and merge is expanded
    max_depth: int = 40  # targets.yaml itself needs about 10

    def too_big(self, size: int) -> str:
        """The message for a file of `size` bytes (or characters) over `max_bytes`."""
        return (
            f"the file is larger than the limit of {self.max_bytes / 1024 / 1024:g} MiB (it has "
            f"{size / 1024 / 1024:.1f} MiB; the limit is reached here); a cooperative of 6,000 "
            "devices needs under 1 MiB"
        )


LIMITS = Limits()


@dataclass(eq=False, slots=True)
class Node:
    """Position of the node's first character, 1-based."""

    line: int
    column: int


@dataclass(eq=False, slots=True)
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


@dataclass(eq=False, slots=True)
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


@dataclass(eq=False, slots=True)
class Sequence(Node):
    items: list[Node] = field(default_factory=list)


def parse(
    text: str, environ: AbcMapping[str, str] | None, report: Report, limits: Limits = LIMITS
) -> Node | None:
    """Return the document's root node, or None for an empty document, a YAML syntax error or a
    file beyond `limits`. `environ` None leaves `${NAME}` as written (device profiles: no secrets,
    regexes with `$`).

    Every problem goes to `report(node, message)`; a syntax error is reported at the parser's mark.
    """
    if len(text) > limits.max_bytes:  # load_config checks bytes before decoding; this is for text
        report(_position(text, limits.max_bytes), limits.too_big(len(text)))
        return None
    if _report_unprintable(text, report):
        return None
    loader = _Loader(text)
    builder = _Builder(environ, report, limits, loader.resolve)
    try:
        return builder.build(loader)
    except _LimitExceeded as exceeded:
        report(exceeded.node, exceeded.message)
        return None
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        if "maximum nesting depth" in (error.problem or ""):
            # libyaml >= 0.2.6 (PyYAML 6.0.4's wheels) stops deep flow nesting itself, scanning
            # ahead of the events that our own, lower limit counts: the same message either way
            report(Node(line, column), _too_deep(limits))
        else:
            report(Node(line, column), _syntax_message(error, text))
        return None
    except yaml.YAMLError as error:  # a reader error the check above did not foresee
        report(Node(1, 1), f"invalid YAML: {error}")
        return None
    finally:
        loader.dispose()


def _position(text: str, index: int) -> Node:
    line_start = text.rfind("\n", 0, index) + 1
    return Node(text.count("\n", 0, index) + 1, index - line_start + 1)


def _report_unprintable(text: str, report: Report) -> bool:
    """Each character YAML forbids, at its own line and column (an editor can jump there); past
    the first few, how many more there are."""
    found = 0
    for match in _NOT_PRINTABLE.finditer(text):
        found += 1
        if found > _LISTED_CHARACTERS:
            total = _NOT_PRINTABLE.subn("", text)[1]
            more = f"and {total - _LISTED_CHARACTERS:,} more characters YAML does not allow"
            report(_position(text, match.start()), more + ", the next one here")
            break
        report(
            _position(text, match.start()),
            f"character U+{ord(match.group()):04X} is not allowed in YAML (a control "
            "character: pasted from a terminal, or a binary file?)",
        )
    return found > 0


def _too_deep(limits: Limits) -> str:
    return (
        f"lists and mappings nested more than {limits.max_depth} deep, the limit "
        "(targets.yaml needs about 10)"
    )


def _syntax_message(error: yaml.MarkedYAMLError, text: str) -> str:
    """libyaml's words, plus the character it stopped at (it names none)."""
    problem = error.problem or "syntax error"
    mark = error.problem_mark
    if mark is not None and 0 <= mark.index < len(text):
        found = repr(text[mark.index])
        if "found character that" in problem:
            problem = problem.replace("found character that", f"found character {found} that")
        elif "found" not in problem:
            problem += f", found {found}"
    if error.context and error.context_mark is not None:
        where = f" at line {error.context_mark.line + 1}"
        return f"invalid YAML: {problem} ({error.context}{where})"
    return f"invalid YAML: {problem}"


class _LimitExceeded(Exception):
    def __init__(self, node: Node, message: str) -> None:
        super().__init__(message)
        self.node = node
        self.message = message


@dataclass(eq=False)
class _Anchor:
    node: Node
    expanded: int  # values the anchored node stands for, its own aliases expanded
    open: bool  # still being built: an alias to it would make the tree contain itself


@dataclass(eq=False)
class _Frame:
    """A sequence or mapping whose end event has not come yet."""

    node: Sequence | Mapping
    anchor: str | None
    expanded: int = 1
    # mappings only: the key waiting for its value (None: a key comes next; False: skip the value)
    key: Scalar | bool | None = None
    merging: bool = False  # the value coming is a `<<` merge source
    merged: list[tuple[Scalar, Node]] = field(default_factory=list)
    first_line: dict[str, int] = field(default_factory=dict)


class _Builder:
    """Turns parser events into the positioned tree, one event at a time, with its own stack."""

    def __init__(
        self,
        environ: AbcMapping[str, str] | None,
        report: Report,
        limits: Limits,
        resolve: Callable[[type, str | None, tuple[bool, bool]], str],
    ) -> None:
        self.environ = environ
        self.report = report
        self.limits = limits
        self.resolve = resolve
        self.anchors: dict[str, _Anchor] = {}
        self.tags: dict[str, str] = {}
        self.stack: list[_Frame] = []
        self.nodes = 0
        self.expanded = 0
        self.root: Node | None = None

    def build(self, loader: yaml.SafeLoader) -> Node | None:
        # The loop runs once per event of files of up to hundreds of thousands of events: the
        # dispatch is on the exact event class, the node count inline.
        max_nodes, nodes, documents = self.limits.max_nodes, 0, 0
        check_event, get_event = loader.check_event, loader.get_event
        while check_event():
            event = get_event()
            kind = type(event)
            if kind in _NODE_EVENTS:
                nodes += 1
                if nodes > max_nodes:
                    raise _LimitExceeded(
                        _at(event),
                        f"the file holds more than {max_nodes:,} values (keys, values and list "
                        "items), the limit; a cooperative of 6,000 devices has about 80,000",
                    )
                if kind is yaml.ScalarEvent:
                    self._add(self._scalar(event), 1, event.anchor)
                elif kind is yaml.AliasEvent:
                    self._alias(event)
                else:
                    self._open(event)
            elif kind is yaml.SequenceEndEvent or kind is yaml.MappingEndEvent:
                self._close()
            elif kind is yaml.DocumentStartEvent:
                documents += 1
                if documents > 1:
                    self.report(
                        _at(event),
                        "invalid YAML: the file must hold a single document, "
                        "but found a second one",
                    )
                    return None
        return self.root

    def _grow(self, event: yaml.Event, amount: int) -> None:
        self.expanded += amount
        if self.expanded > self.limits.max_expanded:
            raise _LimitExceeded(
                _at(event),
                f"with its aliases expanded the file holds more than "
                f"{self.limits.max_expanded:,} values, the limit, reached here (an alias of an "
                "anchor that itself holds aliases multiplies)",
            )

    # --- values -----------------------------------------------------------------------------

    def _scalar(self, event: yaml.ScalarEvent) -> Scalar:
        tag, value = event.tag, event.value
        if tag is None or tag == "!":
            # quoted text is a string without asking the resolver's regular expressions
            if event.implicit[0]:
                tag = self.tags.get(value)
                if tag is None:
                    tag = self._resolve(value)
            else:
                tag = "str"
        else:
            tag = tag.removeprefix(_TAG_PREFIX)
        mark = event.start_mark
        scalar = Scalar(mark.line + 1, mark.column + 1, value, tag, value)
        # Keys are schema names and label names, never secrets: no substitution there.
        if tag == "str" and "$" in value and self.environ is not None and not self._key_expected():
            self._substitute(scalar)
        self.expanded += 1
        if self.expanded > self.limits.max_expanded:
            self._grow(event, 0)
        return scalar

    def _resolve(self, value: str) -> str:
        """The YAML 1.1 type of plain text, remembered: files repeat the same words and numbers
        thousands of times, and the resolver's regular expressions were a third of the time."""
        tag = self.resolve(yaml.ScalarNode, value, (True, False)).removeprefix(_TAG_PREFIX)
        if len(self.tags) >= 10_000:
            self.tags.clear()
        self.tags[value] = tag
        return tag

    def _alias(self, event: yaml.AliasEvent) -> None:
        anchor = self.anchors.get(event.anchor)
        if anchor is None:
            self.report(_at(event), f"unknown alias '*{event.anchor}' (no anchor '&' before it)")
            self._add(_failed(event), 1, None)
            return
        if anchor.open:
            self.report(anchor.node, "an alias refers to a node that contains it")
            self._add(_failed(event), 1, None)
            return
        self._grow(event, anchor.expanded)
        node = anchor.node
        if isinstance(node, Scalar) and node.substituted and self._key_expected():
            node = Scalar(node.line, node.column, text=node.raw, tag=node.tag, raw=node.raw)
        self._add(node, anchor.expanded, None)

    def _open(self, event: yaml.CollectionStartEvent) -> None:
        if len(self.stack) >= self.limits.max_depth:
            raise _LimitExceeded(_at(event), _too_deep(self.limits))
        line, column = event.start_mark.line + 1, event.start_mark.column + 1
        node: Sequence | Mapping = (
            Sequence(line, column)
            if isinstance(event, yaml.SequenceStartEvent)
            else Mapping(line, column)
        )
        self._grow(event, 1)
        frame = _Frame(node, event.anchor)
        if event.anchor is not None:
            self._define(event.anchor, node, 0, open_=True)
        self.stack.append(frame)

    def _close(self) -> None:
        frame = self.stack.pop()
        node = frame.node
        if isinstance(node, Mapping):
            # YAML merge semantics: explicit keys win over merged ones, earlier merged sources
            # over later ones; neither counts as a duplicate.
            seen = set(frame.first_line)
            for key, value in frame.merged:
                if key.text not in seen:
                    seen.add(key.text)
                    node.entries.append((key, value))
        if frame.anchor is not None:
            anchor = self.anchors[frame.anchor]
            anchor.expanded, anchor.open = frame.expanded, False
        self._add(node, frame.expanded, None)

    def _define(self, name: str, node: Node, expanded: int, open_: bool = False) -> None:
        previous = self.anchors.get(name)
        if previous is not None:
            self.report(node, f"duplicate anchor '&{name}' (first at line {previous.node.line})")
        self.anchors[name] = _Anchor(node, expanded, open_)

    def _key_expected(self) -> bool:
        return (
            bool(self.stack)
            and isinstance(self.stack[-1].node, Mapping)
            and (self.stack[-1].key is None)
        )

    def _add(self, node: Node, expanded: int, anchor: str | None) -> None:
        """Put a finished value into its parent (or make it the root)."""
        if anchor is not None:
            self._define(anchor, node, expanded)
        if not self.stack:
            self.root = node
            return
        parent = self.stack[-1]
        parent.expanded += expanded
        container = parent.node
        if isinstance(container, Sequence):
            container.items.append(node)
            return
        if parent.key is None:  # `node` is a key
            self._take_key(parent, node)
            return
        key, parent.key = parent.key, None
        if parent.merging:
            parent.merging = False
            parent.merged.extend(self._merge_sources(node))
        elif isinstance(key, Scalar):
            container.entries.append((key, node))

    def _take_key(self, parent: _Frame, key: Node) -> None:
        if not isinstance(key, Scalar):
            self.report(key, "keys must be plain text, not a list or a mapping")
            parent.key = False
        elif key.tag == "merge":
            parent.key, parent.merging = key, True
        elif key.text in parent.first_line:
            self.report(
                key, f"duplicate key '{key.text}' (first at line {parent.first_line[key.text]})"
            )
            parent.key = False
        else:
            parent.first_line[key.text] = key.line
            parent.key = key

    def _merge_sources(self, value: Node) -> list[tuple[Scalar, Node]]:
        sources = value.items if isinstance(value, Sequence) else [value]
        entries: list[tuple[Scalar, Node]] = []
        for source in sources:
            if isinstance(source, Mapping):
                entries.extend(source.entries)
            elif not (isinstance(source, Scalar) and source.failed):
                self.report(source, "'<<' (merge) needs a mapping or a list of mappings")
        return entries

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


_NODE_EVENTS = frozenset(
    {yaml.ScalarEvent, yaml.AliasEvent, yaml.SequenceStartEvent, yaml.MappingStartEvent}
)


def _at(event: yaml.Event) -> Node:
    return Node(event.start_mark.line + 1, event.start_mark.column + 1)


def _failed(event: yaml.Event) -> Scalar:
    line, column = event.start_mark.line + 1, event.start_mark.column + 1
    return Scalar(line, column, text="", tag="null", failed=True)
