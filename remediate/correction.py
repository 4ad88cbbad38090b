"""Scheduled drift detection and correction.

A drift pass plans against the live world; with `fix` it applies the plan under the apply lock and
within the `max_changes` guardrail. Every pass is a journal run of kind `drift`, so `history`
lists it, `rollback` can undo it, and the next pass can tell that a resource it fixed before has
drifted back ("recurring").
"""

from __future__ import annotations

import re
import signal
import threading
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from remediate import engine, lock, recovery, verification
from remediate.errors import RemediateError
from remediate.executors import Status
from remediate.journal import FIXING_KINDS, Journal
from remediate.model import Change, Plan
from remediate.policy import Policy
from remediate.progress import Progress, Silent
from remediate.units import FailedUnit

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")


class PassStatus(StrEnum):
    """How a drift pass ended."""

    CLEAN = "clean"
    FIXED = "fixed"
    DRIFT = "drift"
    REFUSED = "refused"
    PARTIAL = "partial"
    FAILED = "failed"
    ERROR = "error"
    INTERRUPTED = "interrupted"


# The exit code each pass status means for a scheduler (a stopped pass: 128 + the signal).
EXIT_CODES = {
    PassStatus.CLEAN: 0,
    PassStatus.FIXED: 0,
    PassStatus.DRIFT: 2,
    PassStatus.REFUSED: 1,
    PassStatus.PARTIAL: 1,
    PassStatus.FAILED: 1,
    PassStatus.ERROR: 1,
    PassStatus.INTERRUPTED: 130,
}
SUCCESSFUL = (PassStatus.CLEAN, PassStatus.FIXED, PassStatus.DRIFT)


def parse_interval(text: str) -> float:
    """`30s`, `15m`, `1h30m`, `0.2s`, `500ms` as seconds."""
    compact = text.strip().replace(" ", "")
    parts = _DURATION.findall(compact)
    if not parts or "".join(number + unit for number, unit in parts) != compact:
        raise RemediateError(f"--every {text!r}: not a duration (for example 30s, 15m, 1h)")
    seconds = sum(float(number) * _UNITS[unit] for number, unit in parts)
    if seconds <= 0:
        raise RemediateError(f"--every {text!r}: the interval must be longer than zero")
    return seconds


@dataclass(frozen=True)
class Recurrence:
    """Earlier fixes of the same (resource, attribute) that did not stick, oldest first."""

    fixed_at: list[str]
    runs: list[str]

    @property
    def count(self) -> int:
        return len(self.fixed_at)


@dataclass(frozen=True)
class Item:
    """One drifted attribute and what this pass did about it."""

    change: Change
    status: str  # fixed, failed, not-fixed, refused
    message: str = ""
    recurring: Recurrence | None = None


@dataclass
class Report:
    run_id: str
    started_at: str
    fix: bool
    providers: list[str]
    status: PassStatus = PassStatus.CLEAN
    items: list[Item] = field(default_factory=list)
    findings: int = 0
    excluded: int = 0
    error: str = ""
    # SIGTERM/SIGINT stopped the fix between two writes.
    stopped_by: signal.Signals | None = None
    # Interrupted runs of earlier processes this pass found and reconciled.
    recovered: list[recovery.Recovered] = field(default_factory=list)
    # Units (accounts in a region...) the pass could not read: it covered the others only.
    unread: list[FailedUnit] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        if self.stopped_by is not None:
            return 128 + self.stopped_by.value
        return EXIT_CODES[self.status]

    @property
    def successful(self) -> bool:
        return self.status in SUCCESSFUL

    def by_provider(self) -> dict[str, dict[str, int]]:
        """Per provider: resources that drifted, were fixed (every change read back), failed."""
        counts = {name: {"drifted": 0, "fixed": 0, "failed": 0} for name in self.providers}
        statuses: dict[tuple[str, str], set[str]] = {}
        for item in self.items:
            key = (item.change.provider, item.change.resource)
            statuses.setdefault(key, set()).add(item.status)
        for (provider, _), seen in statuses.items():
            row = counts.setdefault(provider, {"drifted": 0, "fixed": 0, "failed": 0})
            row["drifted"] += 1
            if "failed" in seen:
                row["failed"] += 1
            elif seen == {"fixed"}:
                row["fixed"] += 1
        return counts

    def summary(self) -> dict[str, Any]:
        counts = {status: 0 for status in ("fixed", "failed", "not-fixed", "refused")}
        for item in self.items:
            counts[item.status] += 1
        return {
            "fix": self.fix,
            "drifted": len({item.change.resource for item in self.items}),
            "changes": len(self.items),
            **counts,
            "recurring": sum(1 for item in self.items if item.recurring),
            "findings": self.findings,
            "excluded": self.excluded,
            "by_provider": self.by_provider(),
            **({"error": self.error} if self.error else {}),
        }


def recurrence(journal: Journal, change: Change, run_id: str) -> Recurrence | None:
    """The earlier fixes of `change`'s attribute since it was last rolled back, if any."""
    fixes = []
    for event in journal.writes(change.resource, change.attribute, exclude_run=run_id):
        if event.kind in FIXING_KINDS:
            fixes.append(event)
        else:
            fixes = []
    if not fixes:
        return None
    return Recurrence([event.at for event in fixes], [event.run_id for event in fixes])


def run_once(
    policy: Policy,
    *,
    journal: Journal,
    fix: bool = False,
    only: Iterable[str] | None = None,
    max_changes: int | None = None,
    wait: bool = False,
    progress: Progress | None = None,
    note: Callable[[str], None] | None = None,
) -> Report:
    """One drift pass, journaled as a `drift` run. Bad arguments raise before anything is
    recorded; a failure during the pass ends it with status `error` in the report and journal."""
    progress = progress or Silent()
    if max_changes is not None and max_changes < 0:
        raise RemediateError(f"--max-changes {max_changes}: must be zero or more")
    providers = engine.select(policy, only)
    run_id = journal.start("drift", policy.digest())
    report = Report(run_id, datetime.now(UTC).isoformat(timespec="seconds"), fix, providers)
    # A shared journal locks per unit: the pass locks the units of its plan once planned.
    holding: AbstractContextManager[object] = (
        journal.hold(wait=wait, note=note) if fix and not journal.shared else nullcontext()
    )
    try:
        with holding:
            _pass(report, policy, journal, providers, max_changes, progress, wait=wait, note=note)
        if report.unread and report.successful:
            # A pass that could not read every unit is never clean: it covered the others.
            report.status = PassStatus.PARTIAL
            report.error = f"{len(report.unread)} units could not be read: " + "; ".join(
                f"{item.unit}: {item.reason}" for item in report.unread
            )
    except RemediateError as exc:
        report.status = PassStatus.ERROR
        report.error = str(exc)
    except BaseException as exc:
        report.status = PassStatus.ERROR
        report.error = f"stopped by {type(exc).__name__}"
        raise
    finally:
        journal.finish(run_id, report.status, report.summary())
    return report


def _pass(
    report: Report,
    policy: Policy,
    journal: Journal,
    providers: list[str],
    max_changes: int | None,
    progress: Progress,
    *,
    wait: bool = False,
    note: Callable[[str], None] | None = None,
) -> None:
    """One pass. With a shared journal a fixing pass locks the units its plan writes once it is
    planned; a pass that had to wait for another runner plans again under the lock (what the
    other fixed meanwhile drops out), keeping to the units it holds."""
    report.recovered = recovery.reconcile(
        journal, policy, progress, holding_lock=report.fix, own_run=report.run_id
    )
    plan = _plan(report, policy, providers, progress)
    units: AbstractContextManager[lock.Held | None] = (
        journal.hold(lock.units_of(plan.changes), wait=wait, note=note)
        if report.fix and journal.shared and plan.changes
        else nullcontext()
    )
    with units as held:
        if held is not None and held.waited:
            again = _plan(report, policy, providers, progress)
            plan = again.model_copy(
                update={"changes": [c for c in again.changes if held.covers(_unit(c))]}
            )
        _act(report, policy, journal, plan, max_changes, progress)


def _unit(change: Change) -> str:
    return next(iter(lock.units_of([change])))


def _plan(report: Report, policy: Policy, providers: list[str], progress: Progress) -> Plan:
    plan = engine.plan(policy, providers, progress, record=False)
    report.unread = list(plan.failed_units)
    unfinished = recovery.findings(report.recovered)
    if unfinished:
        plan = plan.model_copy(update={"findings": [*unfinished, *plan.findings]})
    return plan


def _act(
    report: Report,
    policy: Policy,
    journal: Journal,
    plan: Plan,
    max_changes: int | None,
    progress: Progress,
) -> None:
    """Record the drift of `plan`, or fix it (under the lock the caller holds)."""
    report.findings = len(plan.findings)
    report.excluded = plan.summary["excluded"]
    recurring = {
        (c.resource, c.attribute): recurrence(journal, c, report.run_id) for c in plan.changes
    }
    if not plan.changes:
        report.status = PassStatus.CLEAN
        return
    if not report.fix:
        _record(report, journal, plan, recurring, "not-fixed", "")
        report.status = PassStatus.DRIFT
        return
    if max_changes is not None and len(plan.changes) > max_changes:
        message = (
            f"{len(plan.changes)} changes exceed --max-changes {max_changes}; nothing was applied"
        )
        _record(report, journal, plan, recurring, "refused", message)
        report.status = PassStatus.REFUSED
        report.error = message
        return
    result = engine.apply(
        plan, policy, journal=journal, progress=progress, run_id=report.run_id, lock=False
    )
    for outcome in result.outcomes:
        change = outcome.change
        report.items.append(
            Item(
                change,
                "fixed" if outcome.status is Status.APPLIED else "failed",
                outcome.message,
                recurring.get((change.resource, change.attribute)),
            )
        )
    report.status = PassStatus.FIXED if not result.failed else PassStatus(result.status.value)
    if result.stopped_by is not None:
        report.stopped_by = result.stopped_by
        report.status = PassStatus.INTERRUPTED
        report.error = f"stopped by {result.stopped_by.name} between two writes"
    elif verification.failed(result.checks or []):
        report.status = PassStatus.PARTIAL
        report.error = "a live probe of a fixed endpoint disagrees with the policy"


def _record(
    report: Report,
    journal: Journal,
    plan: Plan,
    recurring: dict[tuple[str, str], Recurrence | None],
    status: str,
    message: str,
) -> None:
    report.items.extend(
        Item(c, status, message, recurring.get((c.resource, c.attribute))) for c in plan.changes
    )
    journal.record(report.run_id, [(c, status, message) for c in plan.changes])


def last_success(journal: Journal) -> datetime | None:
    """When the latest successful drift pass finished."""
    finished = journal.last_finished("drift", SUCCESSFUL)
    return datetime.fromisoformat(finished) if finished else None


def every(
    interval: float,
    one_pass: Callable[[], int],
    *,
    passes: int | None = None,
    stop: threading.Event | None = None,
) -> int:
    """Run `one_pass` now and then every `interval` seconds until `passes` have run or `stop` is
    set (SIGTERM sets it, so `systemctl stop` and a pod's termination end the loop between passes,
    never in the middle of an apply). Returns the exit code of the last pass."""
    stop = stop or threading.Event()
    in_main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, lambda *_: stop.set()) if in_main else None
    try:
        code = 0
        done = 0
        while not stop.is_set():
            code = one_pass()
            done += 1
            if code > 128:
                # A signal stopped the pass between two writes: the loop stops with it.
                break
            if passes is not None and done >= passes:
                break
            stop.wait(interval)
        return code
    finally:
        if in_main:
            signal.signal(signal.SIGTERM, previous)


def drift(
    policy: Policy,
    *,
    fix: bool = False,
    only: Iterable[str] | None = None,
    max_changes: int | None = None,
    journal: Journal | None = None,
    wait: bool = False,
    progress: Progress | None = None,
) -> Report:
    """One drift pass over the estate `policy` describes, journaled as a `drift` run: with
    `fix`, the drifted resources are applied again under the run lock (at most `max_changes`)."""
    return run_once(
        policy,
        journal=journal or Journal(),
        fix=fix,
        only=only,
        max_changes=max_changes,
        wait=wait,
        progress=progress,
    )
