"""CPU accounting shared by the benchmarks."""

from __future__ import annotations

import os
import subprocess
import tempfile
from dataclasses import dataclass


@dataclass(frozen=True)
class Run:
    cpu: float  # user + system seconds
    work: int  # echoes or varbinds
    lost: int = 0

    @property
    def per_1000(self) -> float:
        return self.cpu / self.work * 1000 if self.work else float("inf")


def run_child(argv: list[str], stdin_text: str | None = None) -> tuple[int, str, str, float]:
    """Run a command to completion: (exit status, stdout, stderr, CPU seconds of that child).
    wait4() gives the rusage of exactly this child, unlike RUSAGE_CHILDREN."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        process = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE if stdin_text is not None else subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            text=True,
        )
        if stdin_text is not None:
            assert process.stdin is not None
            process.stdin.write(stdin_text)
            process.stdin.close()
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return process.returncode, out.read(), err.read(), usage.ru_utime + usage.ru_stime


def proc_cpu(pid: int) -> float:
    """CPU seconds used so far by a running process (Linux /proc)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def median_run(runs: list[Run]) -> Run:
    """The run with the median CPU per unit of work."""
    ordered = sorted(runs, key=lambda r: r.per_1000)
    return ordered[len(ordered) // 2]


def ratio_line(name: str, ours: Run, reference: Run, reference_name: str) -> str:
    value = ours.per_1000
    ratio = value / reference.per_1000 if reference.per_1000 else float("inf")
    return (
        f"RESULT {name}={value:.4f} ratio={ratio:.2f} "
        f"(ours {value:.4f} vs {reference_name} {reference.per_1000:.4f} CPU-s per 1000)"
    )
