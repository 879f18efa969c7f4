"""Which `${NAME}` variables a rejected targets.yaml lacked, for `monitor run` to name in one line.

A collector started by systemd or compose with a forgotten secret otherwise prints one problem per
reference (and a second kind of message for an empty value); the operator needs the names to fill
in, once. Values are never kept or shown: only the names looked up.

`monitor check --offline` validates a file where the secrets are not (the cooperative's CI): there
an unset variable reads as a placeholder, so that everything around it is checked as usual, and a
problem with the placeholder itself (at the place of the reference) is not reported: the value it
stands for is simply not checked.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field

from monitor.config.problems import Problem
from monitor.config.yamltree import Mapping as MappingNode
from monitor.config.yamltree import Node, Scalar
from monitor.config.yamltree import Sequence as SequenceNode

# What an unset variable reads as offline: long enough for any secret's checks (never shown:
# messages name a substituted value by its variable).
PLACEHOLDER = "unset-offline-placeholder"


@dataclass
class RecordingEnviron(Mapping[str, str]):
    """The environment, remembering which names the loader looked up (in order)."""

    base: Mapping[str, str]
    looked_up: dict[str, None] = field(default_factory=dict)

    def __getitem__(self, name: str) -> str:
        self.looked_up[name] = None
        return self.base[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self.base)

    def __len__(self) -> int:
        return len(self.base)

    def unset(self) -> list[str]:
        """Names the file referred to that are not in the environment at all."""
        return [name for name in self.looked_up if name not in self.base]

    def missing(self) -> list[str]:
        """Names the file referred to that are unset or empty."""
        return [name for name in self.looked_up if not self.base.get(name)]


def missing_line(names: list[str], source: str) -> str:
    """The one line that names every missing variable (never a value)."""
    listed = ", ".join(names)
    noun = "variable" if len(names) == 1 else "variables"
    return f"monitor: {source} needs the environment {noun} {listed}: unset or empty"


def other_problems(problems: list[Problem], names: list[str]) -> list[Problem]:
    """Problems not caused by one of the missing `names` (those the one line already covers)."""
    return [
        problem
        for problem in problems
        if not any(
            f"${{{name}}}" in problem.message or f"variable {name} is not set" in problem.message
            for name in names
        )
    ]


@dataclass
class OfflineEnviron(Mapping[str, str]):
    """The environment of `monitor check --offline`: an unset variable reads as PLACEHOLDER and is
    remembered in `unset`. Only for checking: a configuration loaded this way is never run."""

    base: Mapping[str, str]
    unset: dict[str, None] = field(default_factory=dict)

    def __getitem__(self, name: str) -> str:
        if name in self.base:
            return self.base[name]
        self.unset[name] = None
        return PLACEHOLDER

    def __iter__(self) -> Iterator[str]:
        return iter(self.base)

    def __len__(self) -> int:
        return len(self.base)


def checked_offline(
    problems: list[Problem], root: Node | None, names: Iterable[str]
) -> list[Problem]:
    """The `problems` that remain offline: those about the value of an unset variable are dropped
    (placed on a value holding the placeholder, and naming the variable: "the value of ${NAME}").
    A rule that does not depend on the value ("'id' must be written literally") still counts."""
    names = tuple(names)
    unchecked = _placeholder_positions(root, names)
    return [
        p
        for p in problems
        if (p.line, p.column) not in unchecked
        or not any(f"${{{name}}}" in p.message for name in names)
    ]


def _placeholder_positions(root: Node | None, names: tuple[str, ...]) -> set[tuple[int, int]]:
    """Line and column of every value that holds a placeholder for one of the unset `names`."""
    wanted, found = set(names), set()

    def visit(node: Node | None) -> None:
        if isinstance(node, Scalar):
            if wanted.intersection(node.env):
                found.add((node.line, node.column))
        elif isinstance(node, MappingNode):
            for _, value in node.entries:
                visit(value)
        elif isinstance(node, SequenceNode):
            for item in node.items:
                visit(item)

    visit(root)
    return found
