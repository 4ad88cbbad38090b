"""Runs whose process died: detected, marked `interrupted`, and reconciled with reality.

Every write is journaled `pending` before it happens (see `engine.apply`). A run still marked
`running` whose process is gone (a dead pid on this host, or, for a writing run, the apply lock
free although the run never finished) was interrupted. The next plan, apply or drift reads back
every change such a run left pending and records what really happened: `applied` when the
resource holds the change's `after`, `not-applied` when it still holds its `before`, `failed`
(saying what it reads) otherwise. So history and rollback cover every write.

Some writes need a step after the write itself (Nginx: validate and reload). A pending change of
such an executor is finished (or its before-state put back) by the next run that holds the apply
lock; a run that does not (a plan) reports it as a finding instead, so a host running its old
configuration while the new files sit on disk is never reported clean.
"""

from __future__ import annotations

import os
import socket
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

from remediate import executors, lock
from remediate.errors import RemediateError
from remediate.executors import Status
from remediate.journal import NOT_APPLIED, RUNNING, WRITING_KINDS, Journal, Run
from remediate.model import Change, Finding
from remediate.policy import Policy
from remediate.progress import Progress, Silent
from remediate.provider import Severity


@dataclass
class Recovered:
    """What the next run found of one interrupted run, and what it recorded."""

    run_id: str
    kind: str
    settled: dict[str, int] = field(default_factory=dict)
    # Changes still pending: written, but not finished (needs the lock), or unreadable now.
    unfinished: list[Change] = field(default_factory=list)
    error: str = ""

    def line(self) -> str:
        counts = ", ".join(f"{count} {outcome}" for outcome, count in sorted(self.settled.items()))
        text = f"run {self.run_id} ({self.kind}) was interrupted"
        if counts:
            text += f"; its pending changes read back as: {counts}"
        if self.unfinished:
            text += f"; {len(self.unfinished)} change(s) still to finish"
        if self.error:
            text += f" ({self.error})"
        return text


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def died(run: Run, lock_free: bool) -> bool:
    """Whether the process of a run still marked running is gone: its pid is dead (a run of this
    host), or (a writing run of another host sharing the state directory) the apply lock it held
    for its whole duration is free."""
    if run.host == socket.gethostname() and run.pid > 0:
        return not _pid_alive(run.pid)
    return run.kind in WRITING_KINDS and lock_free


def dead_runs(journal: Journal, *, holding_lock: bool, own_run: str = "") -> list[Run]:
    """Mark runs whose process died as interrupted; returns every interrupted run that still has
    changes pending (newly found or left over). A shared journal knows whether a run's process
    lives (its liveness lock, wherever it runs); an SQLite one asks `died`."""
    found: list[Run] = []
    for run in journal.unfinished():
        if run.id == own_run:
            continue
        if run.status == RUNNING:
            alive = journal.alive(run.id)
            gone = died(run, holding_lock or journal.lock_free()) if alive is None else not alive
            if not gone:
                continue
            journal.interrupt(run.id, "the process died before the run finished")
        found.append(run)
    return found


def reconcile(
    journal: Journal,
    policy: Policy,
    progress: Progress | None = None,
    *,
    holding_lock: bool = False,
    own_run: str = "",
) -> list[Recovered]:
    """Detect interrupted runs and record what their pending changes really did.

    With `holding_lock` (the caller holds the apply lock), writes that need finishing are
    finished or undone; without it they stay pending and are returned as unfinished."""
    progress = progress or Silent()
    report: list[Recovered] = []
    for run in dead_runs(journal, holding_lock=holding_lock, own_run=own_run):
        recovered = Recovered(run.id, run.kind)
        report.append(recovered)
        pending = journal.pending_changes(run.id)
        groups: dict[str, list[tuple[int, Change]]] = defaultdict(list)
        for seq, change in pending:
            groups[change.executor].append((seq, change))
        for name, entries in groups.items():
            try:
                _settle(journal, run.id, name, entries, policy, progress, holding_lock, recovered)
            except RemediateError as exc:
                recovered.unfinished.extend(change for _, change in entries)
                recovered.error = f"cannot read back through {name}: {exc}"
        if not journal.pending_changes(run.id):
            journal.annotate(run.id, {"reconciled": True})
    return report


def _settle(
    journal: Journal,
    run_id: str,
    name: str,
    entries: Sequence[tuple[int, Change]],
    policy: Policy,
    progress: Progress,
    holding_lock: bool,
    recovered: Recovered,
) -> None:
    runner = executors.get(
        name, executors.Settings.from_policy(policy, journal.state_dir), progress
    )
    if not isinstance(runner, executors.ReadsCurrent):
        raise RemediateError(f"the {name} executor cannot read current values")
    changes = [change for _, change in entries]
    messages: dict[tuple[str, str], str] = {}
    if isinstance(runner, executors.Finishes):
        with journal.also_hold(holding_lock, lock.units_of(changes)) as may_write:
            if not may_write:
                recovered.unfinished.extend(changes)
                return
            for finished in runner.finish(changes):
                key = (finished.change.resource, finished.change.attribute)
                messages[key] = finished.message
    values = runner.current(changes)
    settled: list[tuple[int, str, str]] = []
    for seq, change in entries:
        key = (change.resource, change.attribute)
        value = values.get(key)
        note = messages.get(key, "")
        if value == change.after:
            outcome, message = (
                Status.APPLIED.value,
                note or "read back after the run was interrupted",
            )
        elif value == change.before:
            outcome = NOT_APPLIED
            message = note or "not written: the run was interrupted before this write"
        else:
            shown = "gone" if value is None else "changed by something else"
            outcome, message = Status.FAILED.value, f"interrupted; the resource is {shown}"
        settled.append((seq, outcome, message))
        recovered.settled[outcome] = recovered.settled.get(outcome, 0) + 1
    journal.settle(run_id, settled)


def findings(recovered: Sequence[Recovered]) -> list[Finding]:
    """Changes left pending by interrupted runs, as findings a plan shows (never clean)."""
    return [
        Finding(
            provider=change.provider,
            resource=change.resource,
            name=change.name,
            location=change.location,
            rule="remediate-interrupted-write",
            severity=Severity.HIGH,
            message=(
                f"left half-applied by interrupted run {item.run_id}: written but not confirmed "
                "in effect (for Nginx: maybe not reloaded); the next apply or drift --fix "
                "finishes it or puts the before-state back"
            ),
        )
        for item in recovered
        for change in item.unfinished
    ]
