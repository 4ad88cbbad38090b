"""Run a command and measure its wall time, CPU time and peak resident memory (of it and its
children).

The command is started by a small wrapper process (`python -m bench.rss`), not forked from the
bench itself: a child forked from the bench (which holds moto and its fleet) reports the bench's
size as its own peak, since Linux keeps the pre-exec high-water mark in `ru_maxrss`.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Measured:
    code: int
    stdout: str
    stderr: str
    seconds: float
    peak_rss_mb: float
    cpu_seconds: float = 0.0
    """User and system time of the command and the descendants it waited for."""


def own_cpu() -> float:
    """User and system time of this process (all its threads) so far."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run_measured(command: list[str], env: dict[str, str], cwd: Path | None = None) -> Measured:
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report"
        wrapped = [sys.executable, "-m", "bench.rss", str(report), *command]
        wrapper_env = {**env, "PYTHONPATH": str(Path(__file__).parent.parent)}
        done = subprocess.run(wrapped, env=wrapper_env, cwd=cwd, capture_output=True, check=False)
        seconds, peak_kb, cpu = report.read_text().split()
        return Measured(
            code=done.returncode,
            stdout=done.stdout.decode(errors="replace"),
            stderr=done.stderr.decode(errors="replace"),
            seconds=float(seconds),
            peak_rss_mb=round(int(peak_kb) / 1024, 1),
            cpu_seconds=round(float(cpu), 2),
        )


def _wrapper(report: str, command: list[str]) -> int:
    """Run `command`; write its wall time, peak RSS (KiB) and CPU time (from `os.wait4`) to
    `report`."""
    started = time.perf_counter()
    process = subprocess.Popen(command)
    _, status, usage = os.wait4(process.pid, 0)
    cpu = usage.ru_utime + usage.ru_stime
    Path(report).write_text(f"{time.perf_counter() - started} {usage.ru_maxrss} {cpu}")
    return os.waitstatus_to_exitcode(status)


if __name__ == "__main__":
    sys.exit(_wrapper(sys.argv[1], sys.argv[2:]))
