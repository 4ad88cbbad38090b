"""Rollback: restore the `before` state of a past run's applied changes.

Each resource must still hold what the run left there: rollback reads the current value of every
attribute through the resource's executor first and, when any moved since, refuses the whole
rollback and changes nothing (the same promise apply makes for a stale plan). The rollback is a
journal run of its own (kind `rollback`, with `rollback_of` in its summary), refused or not.
"""

from __future__ import annotations

import difflib
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass

from remediate import engine, executors, lock
from remediate.engine import ApplyResult
from remediate.errors import RemediateError
from remediate.journal import Journal, Run
from remediate.model import Change, Plan
from remediate.policy import Policy
from remediate.progress import Progress, Silent

ROLLED_BACK_KINDS = ("apply", "drift", "rollback")


@dataclass(frozen=True)
class Prepared:
    """A checked rollback: the run it undoes and the plan that restores its before-state."""

    run: Run
    plan: Plan


def reverse(change: Change, run_id: str) -> Change:
    """The change that puts `change.before` back (its diffs, if any, reversed too)."""
    diff = None
    if change.diff is not None and isinstance(change.before, str) and isinstance(change.after, str):
        diff = {
            path: "".join(
                difflib.unified_diff(
                    change.after.splitlines(keepends=True),
                    change.before.splitlines(keepends=True),
                    fromfile=path,
                    tofile=path,
                )
            )
            for path in change.diff
        }
    return change.model_copy(
        update={
            "before": change.after,
            "after": change.before,
            "reason": f"rollback of run {run_id}: {change.reason}",
            "diff": diff,
        }
    )


def prepare(
    run_id: str, policy: Policy, journal: Journal, progress: Progress | None = None
) -> Prepared:
    """Check that `run_id` can be rolled back now and build the plan that does it.

    Raises, changing nothing, when the run applied nothing, when an executor cannot read current
    values, or when any resource moved since the run (the error names each one; the refusal is
    journaled as a `refused` rollback run).
    """
    progress = progress or Silent()
    run = journal.run(run_id)
    if run.kind not in ROLLED_BACK_KINDS:
        raise RemediateError(
            f"run {run_id} is a {run.kind} run: it changed nothing; there is nothing to roll back"
        )
    applied = [recorded.change for recorded in run.changes if recorded.outcome == "applied"]
    if not applied:
        raise RemediateError(f"run {run_id} applied no change; there is nothing to roll back")
    groups: dict[str, list[Change]] = defaultdict(list)
    for change in applied:
        groups[change.executor].append(change)
    reversed_changes: list[Change] = []
    moved: list[str] = []
    for name, changes in groups.items():
        runner = executors.get(name, executors.Settings.from_policy(policy), progress)
        if not isinstance(runner, executors.ReadsCurrent):
            providers = ", ".join(sorted({c.provider for c in changes}))
            message = (
                f"cannot roll back run {run_id}: the {name} executor ({providers}) cannot read "
                "current values, so rollback cannot check that nothing moved; nothing was changed"
            )
            _journal_refusal(
                journal, run_id, policy, [reverse(c, run_id) for c in applied], message
            )
            raise RemediateError(message)
        values = runner.current(changes)
        fingerprints = runner.fingerprints(changes)
        for change in changes:
            now = values.get((change.resource, change.attribute))
            if now != change.after:
                moved.append(_moved(change, now))
                continue
            reversed_changes.append(
                reverse(change, run_id).model_copy(
                    update={"fingerprint": fingerprints.get(change.resource) or ""}
                )
            )
    plan = Plan(
        policy_digest=policy.digest(),
        providers=sorted({c.provider for c in applied}),
        changes=reversed_changes,
    )
    if moved:
        message = (
            f"rollback of run {run_id} refused: {len(moved)} resource(s) changed since that run "
            f"({'; '.join(moved)}); nothing was changed"
        )
        _journal_refusal(journal, run_id, policy, [reverse(c, run_id) for c in applied], message)
        raise RemediateError(message)
    return Prepared(run, plan)


def _moved(change: Change, now: object) -> str:
    if now is None:
        return f"{change.resource} no longer exists"
    if change.diff is not None:
        return f"{change.resource} {change.attribute} was edited since"
    return f"{change.resource} {change.attribute} is now {now!r}, not {change.after!r}"


def _journal_refusal(
    journal: Journal, run_id: str, policy: Policy, changes: list[Change], message: str
) -> None:
    own = journal.start("rollback", policy.digest())
    journal.record(own, [(change, "refused", message) for change in changes])
    journal.finish(own, "refused", {"rollback_of": run_id, "error": message})


def apply(
    prepared: Prepared,
    policy: Policy,
    *,
    journal: Journal,
    wait: bool = False,
    progress: Progress | None = None,
    note: Callable[[str], None] | None = None,
) -> ApplyResult:
    """Apply a prepared rollback under the apply lock, as a journaled `rollback` run. The plan's
    fingerprints are those rollback checked, so a resource that moves in between is refused."""
    run_id = journal.start("rollback", prepared.plan.policy_digest)
    details: dict[str, object] = {"rollback_of": prepared.run.id}
    result = ApplyResult(run_id)
    try:
        with journal.hold(lock.units_of(prepared.plan.changes), wait=wait, note=note):
            # A rollback puts journaled before-values back: exempt from the policy and its probes.
            result = engine.apply(
                prepared.plan,
                policy,
                journal=journal,
                progress=progress,
                run_id=run_id,
                lock=False,
                verify=False,
                enforce_policy=False,
            )
    except RemediateError as exc:
        journal.finish(run_id, "refused", {**details, "error": str(exc)})
        raise
    except BaseException:
        journal.finish(run_id, "error", details)
        raise
    journal.finish(run_id, result.status.value, {**details, **_counts(result)})
    return result


def _counts(result: ApplyResult) -> dict[str, int]:
    return {"applied": len(result.applied), "failed": len(result.failed)}


def rollback(
    run_id: str,
    policy: Policy,
    *,
    journal: Journal | None = None,
    wait: bool = False,
    progress: Progress | None = None,
) -> ApplyResult:
    """Put back what run `run_id` changed, as a journaled `rollback` run; refuses, changing
    nothing, when any of its resources moved since."""
    journal = journal or Journal()
    prepared = prepare(run_id, policy, journal, progress)
    return apply(prepared, policy, journal=journal, wait=wait, progress=progress)
