"""The library's front door: discover, plan, apply. The CLI and Pulumi programs both use these."""

from __future__ import annotations

import importlib
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date

from remediate import executors, planner
from remediate.errors import RemediateError, StalePlanError
from remediate.executors import Outcome, Status
from remediate.inventory import Inventory
from remediate.journal import Journal
from remediate.model import Change, Plan
from remediate.policy import Policy
from remediate.progress import Progress, Silent

# Provider name -> module with `discover(policy, progress) -> Inventory` (imported on demand, so a
# run that reads one provider never pays for the others' client libraries).
PROVIDERS: dict[str, str] = {
    "aws": "remediate.providers.aws.discover",
    "gcp": "remediate.providers.gcp.discover",
    "nginx": "remediate.providers.nginx.discover",
}


def select(policy: Policy, only: Iterable[str] | None = None) -> list[str]:
    """The providers a run covers: those the policy configures, narrowed by `only`."""
    configured = policy.providers
    if only is None:
        if not configured:
            raise RemediateError(
                "the policy configures no provider: add an aws, gcp or nginx section"
            )
        return [name for name in configured if name in PROVIDERS] or configured
    chosen = []
    for name in only:
        if name not in ("aws", "gcp", "nginx"):
            raise RemediateError(f"unknown provider {name!r} in --only (aws, gcp, nginx)")
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
        module_name = PROVIDERS.get(name)
        if module_name is None:
            raise RemediateError(f"provider {name} is not available in this version")
        module = importlib.import_module(module_name)
        inventory.merge(module.discover(policy, progress))
    return inventory


def plan(
    policy: Policy,
    only: Iterable[str] | None = None,
    progress: Progress | None = None,
    today: date | None = None,
) -> Plan:
    """Discover and plan in one call."""
    return planner.plan(discover(policy, only, progress), policy, today)


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
    def status(self) -> str:
        if not self.outcomes:
            return "nothing-to-do"
        if all(o.status is Status.DRY_RUN for o in self.outcomes):
            return "dry-run"
        if not self.failed:
            return "applied"
        return "partial" if self.applied else "failed"


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
    runners = {name: executors.get(name, policy, progress) for name in groups}
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
            journal.record(run_id, [(o.change, o.status.value, o.message) for o in outcomes])
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
