"""What a rejected targets.yaml reports: every problem at once, each with its place in the file.

The `FILE:LINE:COL: message` form is what editors and CI logs turn into clickable locations, and
reporting all problems in one go saves the onboarding engineer a fix-one-rerun loop.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["ConfigError", "Problem"]


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the file; `line` and `column` are 1-based, as editors count."""

    path: str
    line: int
    column: int
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}:{self.column}: {self.message}"


class ConfigError(Exception):
    """targets.yaml was rejected; `problems` holds every reason, in file order."""

    def __init__(self, problems: Iterable[Problem]) -> None:
        # A node reached through several YAML aliases is checked more than once; its problem is
        # still one problem.
        unique = list(dict.fromkeys(problems))
        self.problems: list[Problem] = sorted(unique, key=lambda p: (p.line, p.column))
        super().__init__("\n".join(str(p) for p in self.problems))
