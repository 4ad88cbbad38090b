"""Run a command and measure its wall time and peak resident memory (of it and its children)."""

from __future__ import annotations

import os
import subprocess
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
    """`os.wait4` reports the child's own peak RSS (Linux: the largest of it and the descendants
    it waited for), which `resource.RUSAGE_CHILDREN` would mix with earlier runs."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        process = subprocess.Popen(command, env=env, cwd=cwd, stdout=out, stderr=err)
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return Measured(
            code=process.returncode,
            stdout=out.read().decode(errors="replace"),
            stderr=err.read().decode(errors="replace"),
            seconds=seconds,
            peak_rss_mb=round(usage.ru_maxrss / 1024, 1),
        )
