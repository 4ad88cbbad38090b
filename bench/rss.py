"""Run a command and measure its wall time and peak resident memory (of it and its children).

The command is started by a small wrapper process (`python -m bench.rss`), not forked from the
bench itself: a child forked from the bench (which holds moto and its fleet) reports the bench's
size as its own peak, since Linux keeps the pre-exec high-water mark in `ru_maxrss`.
"""

from __future__ import annotations

import os
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


def run_measured(command: list[str], env: dict[str, str], cwd: Path | None = None) -> Measured:
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report"
        wrapped = [sys.executable, "-m", "bench.rss", str(report), *command]
        wrapper_env = {**env, "PYTHONPATH": str(Path(__file__).parent.parent)}
        done = subprocess.run(wrapped, env=wrapper_env, cwd=cwd, capture_output=True, check=False)
        seconds, peak_kb = report.read_text().split()
        return Measured(
            code=done.returncode,
            stdout=done.stdout.decode(errors="replace"),
            stderr=done.stderr.decode(errors="replace"),
            seconds=float(seconds),
            peak_rss_mb=round(int(peak_kb) / 1024, 1),
        )


def _wrapper(report: str, command: list[str]) -> int:
    """Run `command`; write its wall time and peak RSS (KiB, from `os.wait4`) to `report`."""
    started = time.perf_counter()
    process = subprocess.Popen(command)
    _, status, usage = os.wait4(process.pid, 0)
    Path(report).write_text(f"{time.perf_counter() - started} {usage.ru_maxrss}")
    return os.waitstatus_to_exitcode(status)


if __name__ == "__main__":
    sys.exit(_wrapper(sys.argv[1], sys.argv[2:]))
