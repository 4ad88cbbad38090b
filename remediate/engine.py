"""The library's front door: discover, plan, apply. The CLI and Pulumi programs both use these."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum

from remediate import executors, planner, registry
from remediate.errors import RemediateError, StalePlanError
from remediate.executors import Outcome, Status
from remediate.inventory import Inventory
from remediate.journal import Journal
from remediate.model import Change, Plan
from remediate.policy import Policy
from remediate.progress import Progress, Silent


def select(policy: Policy, only: Iterable[str] | None = None) -> list[str]:
    """The providers a run covers: those the policy configures, narrowed by `only`."""
    configured = policy.providers
    if only is None:
        if not configured:
            sections = ", ".join(registry.names())
            raise RemediateError(f"the policy configures no provider: add a section ({sections})")
        return configured
    chosen = []
    for name in only:
        registry.get(name)
        if name not in configured:
            raise RemediateError(f"--only {name}: the policy has no {name} section")
        chosen.append(name)
    return chosen


def discover(
    policy: Policy, only: Iterable[str] | None = None, progress: Progress | None = None
) -> Inventory:
    """Read every endpoint of the selected providers."""
    progress = progress or Silent()
    inventory = Inventory()
    for name in select(policy, only):
        inventory.merge(registry.get(name).discover(policy, progress))
    return inventory


def plan(
    policy: Policy,
    only: Iterable[str] | None = None,
    progress: Progress | None = None,
    today: date | None = None,
) -> Plan:
    """Discover and plan in one call."""
    return planner.plan(discover(policy, only, progress), policy, today)


class RunStatus(StrEnum):
    """How an apply ended, as a whole."""

    NOTHING_TO_DO = "nothing-to-do"
    DRY_RUN = "dry-run"
    APPLIED = "applied"
    PARTIAL = "partial"
    FAILED = "failed"


@dataclass
class ApplyResult:
    run_id: str
    outcomes: list[Outcome] = field(default_factory=list)

    @property
    def applied(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.status is Status.APPLIED]

    @property
    def failed(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.status is Status.FAILED]

    @property
    def status(self) -> RunStatus:
        if not self.outcomes:
            return RunStatus.NOTHING_TO_DO
        if all(o.status is Status.DRY_RUN for o in self.outcomes):
            return RunStatus.DRY_RUN
        if not self.failed:
            return RunStatus.APPLIED
        return RunStatus.PARTIAL if self.applied else RunStatus.FAILED


def _executor_name(change: Change, override: str | None) -> str:
    return override or change.executor


def apply(
    plan: Plan,
    policy: Policy,
    *,
    journal: Journal | None = None,
    executor: str | None = None,
    dry_run: bool = False,
    progress: Progress | None = None,
    kind: str = "apply",
    run_id: str | None = None,
) -> ApplyResult:
    """Apply a plan: refuse it whole when any resource moved since it was planned, then run each
    executor on its changes and record every outcome in the journal.

    With `run_id`, the outcomes go to that already started run and the caller finishes it (drift
    and rollback journal a run of their own around the apply); otherwise a run of `kind` is
    started and finished here."""
    progress = progress or Silent()
    groups: dict[str, list[Change]] = defaultdict(list)
    for change in plan.changes:
        groups[_executor_name(change, executor)].append(change)
    settings = executors.Settings.from_policy(policy)
    runners = {name: executors.get(name, settings, progress) for name in groups}
    moved = _moved(runners, groups)
    if moved:
        raise StalePlanError(moved)
    journal = journal or Journal()
    owned = run_id is None
    if run_id is None:
        run_id = journal.start("dry-run" if dry_run else kind, plan.policy_digest)
    result = ApplyResult(run_id)
    try:
        for name, changes in groups.items():
            outcomes = runners[name].apply(changes, dry_run=dry_run)
            result.outcomes.extend(outcomes)
            # The journal names the executor that really wrote each change (an --executor
            # override included): rollback goes through the same one.
            journal.record(
                run_id,
                [
                    (o.change.model_copy(update={"executor": name}), o.status.value, o.message)
                    for o in outcomes
                ],
            )
    finally:
        if owned:
            journal.finish(run_id, result.status, _summary(result.outcomes))
    return result


def _moved(runners: dict[str, executors.Executor], groups: dict[str, list[Change]]) -> list[str]:
    moved: list[str] = []
    for name, changes in groups.items():
        current = runners[name].fingerprints(changes)
        seen: set[str] = set()
        for change in changes:
            if change.resource in seen:
                continue
            seen.add(change.resource)
            if current.get(change.resource) != change.fingerprint:
                moved.append(change.resource)
    return moved


def _summary(outcomes: Sequence[Outcome]) -> dict[str, int]:
    counts: dict[str, int] = defaultdict(int)
    for outcome in outcomes:
        counts[outcome.status.value] += 1
    return dict(counts)
