"""Child processes that die with remediate.

A tool remediate starts (ansible-playbook and the workers it forks) must not keep writing after
remediate itself was killed: the journal would say `pending` while the write goes on. Linux's
parent-death signal does that, but it must be set inside the child, and libraries such as
ansible-runner start their process without a hook for it. So the child is started through this
module: `python -m remediate.childguard COMMAND ARGS...` asks the kernel for SIGTERM when its
parent dies, runs COMMAND in a process group of its own (which gets SIGTERM when the guard
dies), and on that signal stops COMMAND and kills its whole group.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path
from types import FrameType

_PR_SET_PDEATHSIG = 1
_GRACE_SECONDS = 2.0


def _die_with_parent() -> bool:
    """Ask for SIGTERM when the parent exits; False where the kernel cannot (not Linux)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return bool(libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) == 0)
    except (OSError, AttributeError):
        return False


def wrapper(directory: Path, command: Path, started: Path | None = None) -> Path:
    """An executable of the same name as `command` in `directory` that runs `command ARGS...`
    through this guard: put `directory` first on a tool's PATH and what it starts is guarded.
    It creates the file `started`, when given, as it starts.

    It runs this file by its path, without site-packages (`-S`): importing it as
    `remediate.childguard` would import the whole `remediate` package first, most of a CPU
    second before every playbook run, for a module that needs only the standard library."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / command.name
    announce = f"open({str(started)!r}, 'w').close()\n" if started else ""
    path.write_text(
        f"#!{sys.executable} -S\nimport runpy, sys\n{announce}"
        f"sys.argv[1:1] = [{str(command)!r}]\n"
        f"runpy.run_path({__file__!r}, run_name='__main__')\n",
        encoding="utf-8",
    )
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def main(argv: list[str]) -> None:
    parent = os.getppid()
    _die_with_parent()
    # The command gets SIGTERM when this guard dies, however it dies: ansible-runner stops a
    # cancelled run with SIGKILL to the guard's process group, which the command is not in.
    # (preexec_fn is unsafe only in a process with threads; the guard has none.)
    child = subprocess.Popen(argv, start_new_session=True, preexec_fn=_die_with_parent)  # noqa: PLW1509

    def stop(signum: int, frame: FrameType | None) -> None:
        # SIGTERM first: ansible-playbook then stops its workers, each of which leads a process
        # group of its own that a signal to the command's group would miss. Whatever is left
        # of that group after a moment is killed.
        with contextlib.suppress(ProcessLookupError, ChildProcessError):
            os.killpg(child.pid, signal.SIGTERM)
            deadline = time.monotonic() + _GRACE_SECONDS
            while os.waitpid(child.pid, os.WNOHANG) == (0, 0) and time.monotonic() < deadline:
                time.sleep(0.02)
            os.killpg(child.pid, signal.SIGKILL)
        os._exit(128 + signum)

    signal.signal(signal.SIGTERM, stop)
    if os.getppid() != parent:
        # The parent died before the signal was asked for.
        stop(signal.SIGTERM, None)
    sys.exit(child.wait())


if __name__ == "__main__":
    main(sys.argv[1:])
