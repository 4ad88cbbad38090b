"""One run applies at a time: an advisory lock on `<state dir>/apply.lock`.

The lock is `flock(2)` on the file, so the kernel releases it when the holder exits, however it
exits: there is never a stale lock to clean up. The holder writes who it is (pid, host, since)
into the file, so a run that finds the lock taken can say whom it is waiting for.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

from remediate.errors import RemediateError

LOCK_NAME = "apply.lock"


class LockHeldError(RemediateError):
    """Another run holds the apply lock and the caller chose not to wait."""


@dataclass(frozen=True)
class Held:
    """The lock as taken: its file, and whether this run had to wait for another run first."""

    path: Path
    waited: bool


def free(state_dir: Path) -> bool:
    """Whether no process holds the lock now (a run that held it and died released it)."""
    path = state_dir / LOCK_NAME
    try:
        handle = path.open("a+", encoding="utf-8")
    except OSError:
        return not path.exists()
    with handle:
        if not _try_lock(handle):
            return False
        fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
        return True


def describe_holder(path: Path) -> str:
    """`pid 123 on host since ...` from what the holder wrote; vaguer when it wrote nothing."""
    try:
        holder = json.loads(path.read_text(encoding="utf-8") or "{}")
    except (OSError, ValueError):
        holder = {}
    if not isinstance(holder, dict) or "pid" not in holder:
        return "another process"
    return f"pid {holder['pid']} on {holder.get('host', '?')} since {holder.get('since', '?')}"


@contextmanager
def hold(
    state_dir: Path, *, wait: bool = False, note: Callable[[str], None] | None = None
) -> Iterator[Held]:
    """Hold the apply lock for the duration; wait for it when `wait`, else fail naming the holder.

    `note` is told once when the lock is taken and this run starts waiting.
    """
    try:
        state_dir.mkdir(parents=True, exist_ok=True)
        handle = (state_dir / LOCK_NAME).open("a+", encoding="utf-8")
    except OSError as exc:
        raise RemediateError(f"{state_dir / LOCK_NAME}: cannot open the lock file: {exc}") from None
    path = state_dir / LOCK_NAME
    waited = False
    with handle:
        if not _try_lock(handle):
            waited = True
            holder = describe_holder(path)
            if not wait:
                raise LockHeldError(
                    f"another remediate run is applying changes ({holder}; lock {path}): "
                    "nothing was done; retry later or pass --wait"
                )
            if note is not None:
                note(f"waiting for the lock held by {holder} ({path})")
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        _write_holder(handle)
        try:
            yield Held(path, waited)
        finally:
            handle.truncate(0)
            handle.flush()
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _try_lock(handle: IO[str]) -> bool:
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _write_holder(handle: IO[str]) -> None:
    holder = {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "since": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    handle.seek(0)
    handle.truncate(0)
    handle.write(json.dumps(holder))
    handle.flush()
