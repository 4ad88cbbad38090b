"""The run journal: every plan, apply, drift and rollback run, with each change's before, after and
outcome. It answers `remediate history`, feeds rollback, and tells drift which resources keep
drifting back after being fixed.

It lives in an SQLite file in the state directory, or in a PostgreSQL database that many runners
(shards, machines) share, selected by `REMEDIATE_JOURNAL_URL` (see `store`). The journal also
owns the apply lock that goes with it (see `lock`): a file lock next to the SQLite file, advisory
locks per unit in PostgreSQL."""

from __future__ import annotations

import getpass
import json
import os
import secrets
import socket
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import platformdirs

from remediate import lock
from remediate.errors import RemediateError
from remediate.model import Change, Plan
from remediate.store import Connection, PostgresStore, open_store

RUN_KINDS = ("plan", "apply", "dry-run", "drift", "rollback")
# Run kinds that write (under the apply lock).
WRITING_KINDS = ("apply", "drift", "rollback")
# A change's outcome while its write is under way: journaled before the write, settled right
# after it; one still pending belongs to a run that died, and the next run reads it back.
PENDING = "pending"
WRITTEN = "written"
# A pending change of an interrupted run that reads back as its `before`: never written.
NOT_APPLIED = "not-applied"
RUNNING = "running"
INTERRUPTED = "interrupted"
# The columns `_run` reads, in its order.
COLUMNS = (
    'id, kind, started_at, finished_at, "user", host, policy_digest, status, summary, pid, shard'
)
# Run kinds whose applied changes are fixes (a rollback restores; a plan or dry run writes nothing).
FIXING_KINDS = ("apply", "drift")


def default_state_dir() -> Path:
    """`REMEDIATE_STATE_DIR`, or the platform's per-user state directory."""
    configured = os.environ.get("REMEDIATE_STATE_DIR")
    if configured:
        return Path(configured)
    return Path(platformdirs.user_state_dir("remediate", appauthor=False))


@dataclass(frozen=True)
class RecordedChange:
    change: Change
    outcome: str
    message: str

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.change.model_dump(mode="json", exclude_none=True),
            "outcome": self.outcome,
            "message": self.message,
        }


@dataclass(frozen=True)
class Event:
    """One applied write to a (resource, attribute), as the history of that attribute."""

    run_id: str
    kind: str
    at: str


@dataclass(frozen=True)
class Run:
    id: str
    kind: str
    started_at: str
    finished_at: str | None
    user: str
    host: str
    policy_digest: str
    status: str
    summary: dict[str, Any]
    changes: list[RecordedChange] = field(default_factory=list)
    outcomes: dict[str, int] = field(default_factory=dict)
    pid: int = 0
    shard: str = ""

    def to_dict(self, with_changes: bool = False) -> dict[str, Any]:
        data: dict[str, Any] = {
            "run_id": self.id,
            "kind": self.kind,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "user": self.user,
            "host": self.host,
            "shard": self.shard,
            "policy_digest": self.policy_digest,
            "status": self.status,
            "summary": self.summary,
            "outcomes": self.outcomes,
        }
        if with_changes:
            data["changes"] = [recorded.to_dict() for recorded in self.changes]
        return data


class Journal:
    """Append-only history: `<state dir>/journal.sqlite3`, or the database `url` (default
    `REMEDIATE_JOURNAL_URL`) names. `shard` (`I/N`) is recorded on every run this journal starts.
    """

    def __init__(
        self, state_dir: Path | None = None, url: str | None = None, *, shard: str = ""
    ) -> None:
        self.state_dir = state_dir or default_state_dir()
        try:
            self.state_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise RemediateError(
                f"{self.state_dir}: cannot create state directory: {exc}"
            ) from None
        self.store = open_store(self.state_dir, url)
        self.where = self.store.where
        self.shard = shard
        self._advisory = (
            lock.Advisory(self.store) if isinstance(self.store, PostgresStore) else None
        )

    @property
    def shared(self) -> bool:
        """Whether runners of other machines share this journal (and lock per unit)."""
        return self._advisory is not None

    def hold(
        self,
        units: Collection[str] | None = None,
        *,
        wait: bool = False,
        note: Callable[[str], None] | None = None,
    ) -> AbstractContextManager[lock.Held]:
        """The apply lock for `units` (None: every unit). The SQLite journal's file lock covers
        every unit whatever is asked; a PostgreSQL journal locks each unit."""
        if self._advisory is None:
            return lock.hold(self.state_dir, wait=wait, note=note)
        return self._advisory.hold(units, wait=wait, note=note)

    @contextmanager
    def also_hold(self, held: bool, units: Collection[str]) -> Iterator[bool]:
        """Within a run that holds the apply lock (`held`), whether it may write to `units`
        too: with the file lock it already covers them; in PostgreSQL each unit is tried
        (re-entrant for units this process holds) without waiting."""
        if not held or self._advisory is None:
            yield held
            return
        try:
            with self._advisory.hold(units):
                yield True
        except lock.LockHeldError:
            yield False

    def lock_free(self) -> bool:
        """Whether no run holds the (file) apply lock now."""
        return lock.free(self.state_dir) if self._advisory is None else False

    def alive(self, run_id: str) -> bool | None:
        """Whether the process of a running run is alive, where the journal can tell (each run
        of a PostgreSQL journal holds a lock on its id while its process lives); None for SQLite.
        """
        if self._advisory is None:
            return None
        return self._advisory.held_by_anyone(f"run:{run_id}")

    @contextmanager
    def _connect(self) -> Iterator[Connection]:
        with self.store.connect() as db:
            yield db

    def start(self, kind: str, policy_digest: str, *, plan_run: str = "") -> str:
        """Start a run; `plan_run` names the plan run of the saved plan it applies."""
        now = datetime.now(UTC)
        run_id = f"{now:%Y%m%dT%H%M%S}-{secrets.token_hex(3)}"
        if self._advisory is not None:
            # Held before the run is visible, so no reconciler ever sees it running unheld.
            self._advisory.take(f"run:{run_id}")
        with self._connect() as db:
            db.execute(
                'INSERT INTO runs (id, kind, started_at, "user", host, policy_digest, status,'
                " pid, shard, plan_run) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    run_id,
                    kind,
                    now.isoformat(),
                    _user(),
                    socket.gethostname(),
                    policy_digest,
                    RUNNING,
                    os.getpid(),
                    self.shard,
                    plan_run,
                ),
            )
        return run_id

    def pending(self, run_id: str, changes: Sequence[Change]) -> list[int]:
        """Journal `changes` as pending before they are written; returns their sequence numbers
        (for `settle`). Committed before returning, so a process killed during the write leaves
        them in the journal."""
        return self.record(run_id, [(change, PENDING, "") for change in changes])

    def settle(self, run_id: str, entries: Sequence[tuple[int, str, str]]) -> None:
        """Set the outcome and message of journaled changes: (seq, outcome, message)."""
        with self._connect() as db:
            db.executemany(
                "UPDATE changes SET outcome = ?, message = ? WHERE run_id = ? AND seq = ?",
                [(outcome, message, run_id, seq) for seq, outcome, message in entries],
            )

    def pending_changes(self, run_id: str) -> list[tuple[int, Change]]:
        """The changes of `run_id` whose write was started but never settled."""
        with self._connect() as db:
            rows = db.execute(
                "SELECT seq, change FROM changes WHERE run_id = ? AND outcome IN (?, ?)"
                " ORDER BY seq",
                (run_id, PENDING, WRITTEN),
            ).fetchall()
        return [(seq, Change.model_validate_json(text)) for seq, text in rows]

    def unfinished(self) -> list[Run]:
        """Runs still marked running, and interrupted runs with changes left pending."""
        with self._connect() as db:
            rows = db.execute(
                f"SELECT {COLUMNS} FROM runs WHERE status = ? OR (status = ? AND id IN"
                " (SELECT run_id FROM changes WHERE outcome IN (?, ?)))"
                " ORDER BY started_at, id",
                (RUNNING, INTERRUPTED, PENDING, WRITTEN),
            ).fetchall()
        return [_run(row) for row in rows]

    def interrupt(self, run_id: str, reason: str) -> None:
        """Mark a run whose process died (or that was stopped) as interrupted, saying why."""
        with self._connect() as db:
            db.execute(
                "UPDATE runs SET status = ?, finished_at = COALESCE(finished_at, ?) WHERE id = ?",
                (INTERRUPTED, datetime.now(UTC).isoformat(), run_id),
            )
        self.annotate(run_id, {"interrupted": reason})
        self._release(run_id)

    def record(self, run_id: str, entries: Sequence[tuple[Change, str, str]]) -> list[int]:
        """Append (change, outcome, message) entries to a run; returns their sequence numbers."""
        with self._connect() as db:
            # The run's row is locked first, so two writers of one run never number alike.
            db.execute("UPDATE runs SET status = status WHERE id = ?", (run_id,))
            (offset,) = db.execute(
                "SELECT COUNT(*) FROM changes WHERE run_id = ?", (run_id,)
            ).fetchone()
            db.executemany(
                "INSERT INTO changes (run_id, seq, provider, resource, attribute, before, after,"
                " outcome, message, change) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        run_id,
                        offset + index,
                        change.provider,
                        change.resource,
                        change.attribute,
                        json.dumps(change.before),
                        json.dumps(change.after),
                        outcome,
                        message,
                        change.model_dump_json(),
                    )
                    for index, (change, outcome, message) in enumerate(entries)
                ],
            )
        return list(range(offset, offset + len(entries)))

    def finish(self, run_id: str, status: str, summary: dict[str, Any]) -> None:
        with self._connect() as db:
            db.execute(
                "UPDATE runs SET finished_at = ?, status = ?, summary = ? WHERE id = ?",
                (datetime.now(UTC).isoformat(), status, json.dumps(summary), run_id),
            )
        self._release(run_id)

    def _release(self, run_id: str) -> None:
        """Drop a finished run's liveness lock (held only by the process that started it)."""
        if self._advisory is not None:
            self._advisory.drop(f"run:{run_id}")

    def annotate(self, run_id: str, details: dict[str, Any]) -> None:
        """Merge `details` into a run's summary (what it rolled back, why it stopped...)."""
        with self._connect() as db:
            row = db.execute("SELECT summary FROM runs WHERE id = ?", (run_id,)).fetchone()
            if row is None:
                raise RemediateError(f"no run {run_id!r} in {self.where}")
            summary = {**json.loads(row[0]), **details}
            db.execute("UPDATE runs SET summary = ? WHERE id = ?", (json.dumps(summary), run_id))

    def record_plan(self, plan: Plan) -> str:
        """Journal a plan run: each planned change with outcome `planned`; returns the run id."""
        run_id = self.start("plan", plan.policy_digest)
        self.record(run_id, [(change, "planned", "") for change in plan.changes])
        summary = plan.summary
        self.finish(
            run_id,
            "changes-pending" if plan.has_changes else "clean",
            {key: summary[key] for key in ("changes", "resources", "findings", "excluded")},
        )
        return run_id

    def runs(self, limit: int = 50, kind: str | None = None) -> list[Run]:
        """The latest runs, newest first, optionally of one kind."""
        where, params = ("WHERE kind = ?", (kind,)) if kind else ("", ())
        with self._connect() as db:
            rows = db.execute(
                f"SELECT {COLUMNS} FROM runs {where} ORDER BY started_at DESC, id DESC LIMIT ?",
                (*params, limit),
            ).fetchall()
            counts = _outcome_counts(db, [row[0] for row in rows])
        return [_run(row, outcomes=counts.get(row[0], {})) for row in rows]

    def writes(self, resource: str, attribute: str, *, exclude_run: str = "") -> list[Event]:
        """Every applied write to `resource`'s `attribute` by apply, drift or rollback runs,
        oldest first (the current run, `exclude_run`, left out)."""
        with self._connect() as db:
            rows = db.execute(
                "SELECT runs.id, runs.kind, COALESCE(runs.finished_at, runs.started_at)"
                " FROM changes JOIN runs ON runs.id = changes.run_id"
                " WHERE changes.resource = ? AND changes.attribute = ?"
                " AND changes.outcome = 'applied' AND runs.id != ?"
                " AND runs.kind IN ('apply', 'drift', 'rollback')"
                " ORDER BY runs.started_at, runs.id",
                (resource, attribute, exclude_run),
            ).fetchall()
        return [Event(run_id, kind, at) for run_id, kind, at in rows]

    def applied_from_plan(self, plan_run: str) -> dict[tuple[str, str], str]:
        """(resource, attribute) -> the run id, for each change of the saved plan `plan_run`
        that an earlier apply of it applied (a halted rollout, an interrupted run)."""
        with self._connect() as db:
            rows = db.execute(
                "SELECT changes.resource, changes.attribute, runs.id FROM changes"
                " JOIN runs ON runs.id = changes.run_id WHERE runs.plan_run = ?"
                " AND changes.outcome = 'applied' ORDER BY runs.started_at",
                (plan_run,),
            ).fetchall()
        return {(resource, attribute): run_id for resource, attribute, run_id in rows}

    def last_finished(self, kind: str, statuses: Sequence[str]) -> str | None:
        """When the latest run of `kind` that ended in one of `statuses` finished (ISO time)."""
        marks = ", ".join("?" for _ in statuses)
        with self._connect() as db:
            row = db.execute(
                f"SELECT MAX(finished_at) FROM runs WHERE kind = ? AND status IN ({marks})",
                (kind, *statuses),
            ).fetchone()
        return None if row is None else row[0]

    def run(self, run_id: str) -> Run:
        with self._connect() as db:
            row = db.execute(
                f"SELECT {COLUMNS} FROM runs WHERE id = ?",
                (run_id,),
            ).fetchone()
            if row is None:
                raise RemediateError(f"no run {run_id!r} in {self.where}")
            changes = db.execute(
                "SELECT change, outcome, message FROM changes WHERE run_id = ? ORDER BY seq",
                (run_id,),
            ).fetchall()
            counts = _outcome_counts(db, [run_id])
        return _run(
            row,
            [RecordedChange(Change.model_validate_json(c), o, m) for c, o, m in changes],
            counts.get(run_id, {}),
        )


def _outcome_counts(db: Connection, run_ids: list[str]) -> dict[str, dict[str, int]]:
    """run id -> outcome -> number of changes."""
    if not run_ids:
        return {}
    marks = ", ".join("?" for _ in run_ids)
    counts: dict[str, dict[str, int]] = {}
    for run_id, outcome, count in db.execute(
        f"SELECT run_id, outcome, COUNT(*) FROM changes WHERE run_id IN ({marks})"
        " GROUP BY run_id, outcome",
        run_ids,
    ):
        counts.setdefault(run_id, {})[outcome] = count
    return counts


def _run(
    row: Sequence[Any],
    changes: list[RecordedChange] | None = None,
    outcomes: dict[str, int] | None = None,
) -> Run:
    return Run(
        id=row[0],
        kind=row[1],
        started_at=row[2],
        finished_at=row[3],
        user=row[4],
        host=row[5],
        policy_digest=row[6],
        status=row[7],
        summary=json.loads(row[8]),
        changes=changes or [],
        outcomes=outcomes or {},
        pid=row[9],
        shard=row[10],
    )


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return str(os.getuid())
