"""Runs that write exclude each other: the apply lock.

With the embedded SQLite journal, one run applies at a time: `flock(2)` on
`<state dir>/apply.lock`, so the kernel releases it when the holder exits, however it exits:
there is never a stale lock to clean up. The holder writes who it is (pid, host, since) into the
file, so a run that finds the lock taken can say whom it is waiting for.

With a PostgreSQL journal (`Advisory`), the lock is per unit (an AWS account and region, a GCP
project, a host: `Provider.unit`): a session-level advisory lock keyed by a stable 64-bit hash of
the unit, so two runners never change the same unit at once while runners on different units go
on in parallel. A run that must exclude every other (`units=None`) takes a global key
exclusively; unit holders take it shared. PostgreSQL releases a session's locks when its
connection ends, so a runner that dies (killed, its machine gone) leaves no stale lock either.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import socket
import threading
import time
from collections.abc import Callable, Collection, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from remediate import registry
from remediate.errors import RemediateError
from remediate.model import Change

if TYPE_CHECKING:
    import psycopg

    from remediate.store import PostgresStore

LOCK_NAME = "apply.lock"


class LockHeldError(RemediateError):
    """Another run holds the apply lock and the caller chose not to wait."""


@dataclass(frozen=True)
class Held:
    """The lock as taken: where (its file, or the journal's database), whether this run had to
    wait for another run first, and the units it covers (None: every unit)."""

    path: Path | str
    waited: bool
    units: frozenset[str] | None = None

    def covers(self, unit: str) -> bool:
        return self.units is None or unit in self.units


def units_of(changes: Iterable[Change]) -> frozenset[str]:
    """The units (`Provider.unit`) the changes write to."""
    return frozenset(registry.get(change.provider).unit(change) for change in changes)


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


# How often a waiting runner asks PostgreSQL again for a unit held by another runner.
POLL_SECONDS = 0.2


def key(name: str) -> int:
    """A stable signed 64-bit advisory lock key for `name` (the same in every process)."""
    digest = hashlib.blake2b(name.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


GLOBAL_KEY = key("remediate:all-units")


class Advisory:
    """Advisory locks of a PostgreSQL journal, on one session per process (so a hold within a
    hold of the same unit is re-entrant, as PostgreSQL stacks a session's locks). Waiting polls
    with non-blocking tries, so the session never blocks in the server and other threads of the
    process can release what they hold meanwhile. Exclusion is between sessions: threads of one
    process share theirs."""

    def __init__(self, store: PostgresStore) -> None:
        self._store = store
        self._session: psycopg.Connection[Any] | None = None
        self._guard = threading.Lock()

    def _query(self, sql: str, params: tuple[Any, ...]) -> Any:
        import psycopg

        with self._guard:
            if self._session is None or self._session.closed:
                self._session = self._store.session()
                self._session.execute(
                    "SELECT set_config('application_name', %s, false)",
                    (f"remediate pid {os.getpid()} on {socket.gethostname()}"[:63],),
                )
            try:
                row = self._session.execute(sql, params).fetchone()
            except psycopg.Error as exc:
                self._session.close()
                raise RemediateError(f"{self._store.where}: lock error: {exc}") from None
        return None if row is None else row[0]

    def _try(self, lock_key: int, shared: bool) -> bool:
        function = "pg_try_advisory_lock_shared" if shared else "pg_try_advisory_lock"
        return bool(self._query(f"SELECT {function}(%s)", (lock_key,)))

    def _release(self, lock_key: int, shared: bool) -> None:
        function = "pg_advisory_unlock_shared" if shared else "pg_advisory_unlock"
        self._query(f"SELECT {function}(%s)", (lock_key,))

    def holder(self, lock_key: int) -> str:
        """Who holds `lock_key`: the application name its session set, and since when."""
        row = self._query(
            "SELECT a.application_name || ' since ' || to_char(a.backend_start AT TIME ZONE"
            " 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') FROM pg_locks l JOIN pg_stat_activity a"
            " ON a.pid = l.pid WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1"
            " AND l.classid = %s AND l.objid = %s AND a.pid <> pg_backend_pid() LIMIT 1",
            _halves(lock_key),
        )
        return str(row).removeprefix("remediate ") if row else "another runner"

    def held_by_anyone(self, name: str) -> bool:
        """Whether any session holds the lock of `name` now."""
        return bool(
            self._query(
                "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted"
                " AND objsubid = 1 AND classid = %s AND objid = %s AND database ="
                " (SELECT oid FROM pg_database WHERE datname = current_database()))",
                _halves(key(name)),
            )
        )

    def take(self, name: str) -> None:
        """Hold the lock of `name` (a run's liveness mark) until `drop` or the process ends."""
        self._try(key(name), shared=False)

    def drop(self, name: str) -> None:
        self._release(key(name), shared=False)

    @contextmanager
    def hold(
        self,
        units: Collection[str] | None,
        *,
        wait: bool = False,
        note: Callable[[str], None] | None = None,
    ) -> Iterator[Held]:
        """Hold `units` (None: every unit) for the duration; wait for them when `wait`, else fail
        naming the holder. Keys are taken in one order (the global key first), so two waiting
        runners cannot deadlock."""
        wanted = (
            [(GLOBAL_KEY, False, "every unit")]
            if units is None
            else [
                (GLOBAL_KEY, True, "every unit"),
                *sorted({(key(f"unit:{unit}"), False, unit) for unit in units}),
            ]
        )
        taken: list[tuple[int, bool]] = []
        waited = False
        try:
            for lock_key, shared, unit in wanted:
                told = False
                while not self._try(lock_key, shared):
                    holder = self.holder(lock_key)
                    if not wait:
                        raise LockHeldError(
                            f"another remediate run is applying changes ({holder}; unit {unit};"
                            f" journal {self._store.where}): nothing was done; retry later or"
                            " pass --wait"
                        )
                    if note is not None and not told:
                        note(f"waiting for the lock held by {holder} (unit {unit})")
                        told = True
                    waited = True
                    time.sleep(POLL_SECONDS)
                taken.append((lock_key, shared))
            yield Held(self._store.where, waited, None if units is None else frozenset(units))
        finally:
            for lock_key, shared in reversed(taken):
                self._release(lock_key, shared)


def _halves(lock_key: int) -> tuple[int, int]:
    """pg_locks shows a bigint key as two oids: its high and low 32 bits."""
    unsigned = lock_key & 0xFFFFFFFFFFFFFFFF
    return unsigned >> 32, unsigned & 0xFFFFFFFF
