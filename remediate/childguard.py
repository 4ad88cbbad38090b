"""Child processes that die with remediate.

A tool remediate starts (ansible-playbook and the workers it forks) must not keep writing after
remediate itself was killed: the journal would say `pending` while the write goes on. Linux's
parent-death signal does that, but it must be set inside the child, and libraries such as
ansible-runner start their process without a hook for it. So the child is started through this
module: `python -m remediate.childguard COMMAND ARGS...` asks the kernel for SIGTERM when its
parent dies, runs COMMAND in a process group of its own, and on that signal kills the whole group.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import stat
import subprocess
import sys
from pathlib import Path
from types import FrameType

_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> bool:
    """Ask for SIGTERM when the parent exits; False where the kernel cannot (not Linux)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return bool(libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) == 0)
    except (OSError, AttributeError):
        return False


def wrapper(directory: Path, command: Path) -> Path:
    """An executable of the same name as `command` in `directory` that runs `command ARGS...`
    through this guard: put `directory` first on a tool's PATH and what it starts is guarded.

    It runs this file by its path, without site-packages (`-S`): importing it as
    `remediate.childguard` would import the whole `remediate` package first, most of a CPU
    second before every playbook run, for a module that needs only the standard library."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / command.name
    path.write_text(
        f"#!{sys.executable} -S\nimport runpy, sys\n"
        f"sys.argv[1:1] = [{str(command)!r}]\n"
        f"runpy.run_path({__file__!r}, run_name='__main__')\n",
        encoding="utf-8",
    )
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def main(argv: list[str]) -> None:
    parent = os.getppid()
    _die_with_parent()
    child = subprocess.Popen(argv, start_new_session=True)

    def stop(signum: int, frame: FrameType | None) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(child.pid, signal.SIGKILL)
        os._exit(128 + signum)

    signal.signal(signal.SIGTERM, stop)
    if os.getppid() != parent:
        # The parent died before the signal was asked for.
        stop(signal.SIGTERM, None)
    sys.exit(child.wait())


if __name__ == "__main__":
    main(sys.argv[1:])
