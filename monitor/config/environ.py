"""Which `${NAME}` variables a rejected targets.yaml lacked, for `monitor run` to name in one line.

A collector started by systemd or compose with a forgotten secret otherwise prints one problem per
reference (and a second kind of message for an empty value); the operator needs the names to fill
in, once. Values are never kept or shown: only the names looked up.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

from monitor.config.problems import Problem


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
