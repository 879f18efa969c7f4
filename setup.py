"""Build step beside pyproject.toml: the wheel carries docs/runbooks.md as monitor/runbooks.md.

docs/runbooks.md is the one source of the runbooks (it is read and reviewed where the docs are);
the collector serves it at /runbooks, so an installed wheel needs its own copy (monitor/runbooks.py
reads the packaged copy, or docs/ in a checkout).
"""

from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

RUNBOOKS = Path(__file__).resolve().parent / "docs" / "runbooks.md"


class BuildWithRunbooks(build_py):
    def run(self) -> None:
        super().run()
        target = Path(self.build_lib) / "monitor" / "runbooks.md"
        target.parent.mkdir(parents=True, exist_ok=True)
        self.copy_file(str(RUNBOOKS), str(target))


setup(cmdclass={"build_py": BuildWithRunbooks})
