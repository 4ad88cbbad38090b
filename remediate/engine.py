"""The library's front door: discover, plan, apply. The CLI and Pulumi programs both use these."""

from __future__ import annotations

import signal
import threading
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum
from types import FrameType
from typing import Any

from remediate import (
    enforce,
    executors,
    planner,
    provider,
    recovery,
    registry,
    rollout,
    units,
    verification,
)
from remediate import lock as lock_module
from remediate.errors import RemediateError, StalePlanError
from remediate.executors import CancelledError, Outcome, Status
from remediate.inventory import Inventory
from remediate.journal import NOT_APPLIED, WRITTEN, Journal
from remediate.model import Change, Plan
from remediate.policy import Policy
from remediate.progress import Progress, Silent
from remediate.units import FailedUnit, Selection


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
    policy: Policy,
    only: Iterable[str] | None = None,
    progress: Progress | None = None,
    selection: Selection | None = None,
) -> Inventory:
    """Read every endpoint of the selected providers, unit by unit (see `remediate.units`).

    The units `selection` keeps (by name, tag and shard) are read on a bounded pool; a unit that
    fails is carried in `Inventory.failures` while the others are read (even when every unit
    failed, the report says which and why). With name or tag filters, only providers that list
    named units take part."""
    progress = progress or Silent()
    selection = selection or Selection()
    inventory = Inventory()
    listed: list[units.Unit] = []
    whole: list[str] = []
    for name in select(policy, only):
        provider_units = registry.get(name).units(policy)
        if provider_units is None:
            if not selection.filters and selection.shard.owns(name):
                whole.append(name)
        else:
            listed.extend(provider_units)
            inventory.providers.append(name)
    if selection.filters and not any(selection.matches(unit) for unit in listed):
        wanted = [*selection.names, *(f"{key}={value}" for key, value in selection.tags)]
        raise RemediateError(f"{', '.join(wanted)}: matches no account or project of the policy")
    with provider.discovery(whole):
        for name in whole:
            inventory.merge(registry.get(name).discover(policy, progress))
        chosen = selection.choose(listed)
        results = units.run(
            chosen,
            lambda unit: registry.get(unit.provider).discover_unit(policy, unit, progress),
            selection.parallel,
            progress,
        )
    for _, found in results.done:
        inventory.merge(found)
    inventory.failures.extend(results.failed)
    return inventory


def plan(
    policy: Policy,
    only: Iterable[str] | None = None,
    progress: Progress | None = None,
    today: date | None = None,
    *,
    journal: Journal | None = None,
    record: bool = True,
    note: Callable[[str], None] | None = None,
    selection: Selection | None = None,
) -> Plan:
    """Discover and plan in one call.

    With `record` (the default) the plan is journaled as a `plan` run (its id in `run_id`), and
    runs of earlier processes that died are first detected and reconciled (see `recovery`):
    changes such a run left written but not in effect come back as findings, never as clean;
    `note` is told of each interrupted run found."""
    progress = progress or Silent()
    recovered: list[recovery.Recovered] = []
    if record:
        journal = journal or Journal()
        recovered = recovery.reconcile(journal, policy, progress)
        for item in recovered:
            if note is not None:
                note(f"note: {item.line()}")
    result = planner.plan(discover(policy, only, progress, selection), policy, today)
    unfinished = recovery.findings(recovered)
    if unfinished:
        result = result.model_copy(update={"findings": [*unfinished, *result.findings]})
    if record and journal is not None:
        result = result.model_copy(update={"run_id": journal.record_plan(result)})
    return result


class RunStatus(StrEnum):
    """How an apply ended."""

    NOTHING_TO_DO = "nothing-to-do"
    DRY_RUN = "dry-run"
    APPLIED = "applied"
    PARTIAL = "partial"
    FAILED = "failed"
    INTERRUPTED = "interrupted"
    # A canary or batched rollout stopped before its later batches.
    HALTED = "halted"


@dataclass
class ApplyResult:
    run_id: str
    outcomes: list[Outcome] = field(default_factory=list)
    checks: list[verification.Verification] | None = None
    recovered: list[recovery.Recovered] = field(default_factory=list)
    # The signal (SIGTERM, SIGINT) that stopped the run between two writes, if one did.
    stopped_by: signal.Signals | None = None
    # Changes never started because the run was stopped.
    not_started: list[Change] = field(default_factory=list)
    # Changes a rollout did not reach because a batch failed (`halted` says why).
    not_reached: list[Change] = field(default_factory=list)
    halted: str = ""
    # A saved plan's changes on resources discovery could not check now, because these units of
    # their provider could not be read: not applied; applying the plan again applies them.
    unread: list[Change] = field(default_factory=list)
    failed_units: list[FailedUnit] = field(default_factory=list)

    @property
    def applied(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.status is Status.APPLIED]

    @property
    def failed(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.status is Status.FAILED]

    @property
    def probes_failed(self) -> bool:
        return verification.failed(self.checks or [])

    @property
    def status(self) -> RunStatus:
        if self.stopped_by is not None:
            return RunStatus.INTERRUPTED
        if self.halted:
            return RunStatus.HALTED
        if not self.outcomes:
            return RunStatus.NOTHING_TO_DO
        if all(o.status is Status.DRY_RUN for o in self.outcomes):
            return RunStatus.DRY_RUN
        if not self.failed:
            return RunStatus.APPLIED
        return RunStatus.PARTIAL if self.applied else RunStatus.FAILED


def select_changes(plan: Plan, only: Iterable[str]) -> Plan:
    """The plan narrowed to the changes of the providers in `only` (a saved plan's `--only`)."""
    wanted = set(only)
    if not wanted:
        raise RemediateError(f"--only names no provider ({', '.join(registry.names())})")
    for name in sorted(wanted):
        registry.get(name)
    return plan.model_copy(update={"changes": [c for c in plan.changes if c.provider in wanted]})


def _executor_name(change: Change, override: str | None) -> str:
    return override or change.executor


class _Stop:
    """Set by SIGTERM/SIGINT during an apply: the run stops before its next write."""

    def __init__(self) -> None:
        self.signal: signal.Signals | None = None


@contextmanager
def _stop_on_signals(enabled: bool) -> Iterator[_Stop]:
    """Turn SIGTERM and SIGINT into a request to stop between writes (main thread only). A
    second signal stops at once; the journal's pending entries tell the next run what happened."""
    stop = _Stop()
    if not enabled or threading.current_thread() is not threading.main_thread():
        yield stop
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        if stop.signal is not None:
            raise KeyboardInterrupt
        stop.signal = signal.Signals(signum)

    watched = (signal.SIGTERM, signal.SIGINT)
    previous = {signum: signal.signal(signum, handler) for signum in watched}
    try:
        yield stop
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)


class _WriteAhead:
    """The engine's `Steps`: journals each unit `pending` before its write and settles it right
    after; refuses to start a unit once a stop was asked for."""

    def __init__(self, journal: Journal | None, run_id: str, stop: _Stop, executor: str) -> None:
        self._journal = journal
        self._run_id = run_id
        self._stop = stop
        self._executor = executor
        self.seqs: dict[int, int] = {}
        self.begun: list[Change] = []

    def begin(self, changes: Sequence[Change]) -> None:
        if self._stop.signal is not None:
            raise CancelledError(f"stopped by {self._stop.signal.name}")
        if self._journal is not None:
            seqs = self._journal.pending(self._run_id, [self._as_written(c) for c in changes])
            self.seqs.update({id(c): seq for c, seq in zip(changes, seqs, strict=True)})
        self.begun.extend(changes)

    def end(self, changes: Sequence[Change], failure: str | None = None) -> None:
        if self._journal is None:
            return
        outcome = Status.FAILED.value if failure else WRITTEN
        self._journal.settle(
            self._run_id,
            [(self.seqs[id(c)], outcome, failure or "") for c in changes if id(c) in self.seqs],
        )

    def settle(self, outcomes: Sequence[Outcome]) -> None:
        """Record the final (read-back) outcomes: update journaled units, append the others."""
        if self._journal is None:
            return
        known = [o for o in outcomes if id(o.change) in self.seqs]
        self._journal.settle(
            self._run_id, [(self.seqs[id(o.change)], o.status.value, o.message) for o in known]
        )
        others = [o for o in outcomes if id(o.change) not in self.seqs]
        if others:
            self._journal.record(
                self._run_id,
                [(self._as_written(o.change), o.status.value, o.message) for o in others],
            )

    def _as_written(self, change: Change) -> Change:
        """The change as journaled: naming the executor that really wrote it (an --executor
        override included), so rollback goes through the same one."""
        return change.model_copy(update={"executor": self._executor})


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
    only: Iterable[str] | None = None,
    lock: bool = True,
    wait: bool = False,
    note: Callable[[str], None] | None = None,
    record: bool = True,
    verify: bool = True,
    enforce_policy: bool | None = None,
    signals: bool = True,
    today: date | None = None,
    canary: rollout.Size | None = None,
    serial: Sequence[rollout.Size] = (),
    max_failures: int | None = None,
) -> ApplyResult:
    """Apply a plan with every guarantee; each keyword turns one off.

    - `lock`: hold the apply lock (`wait` for it, telling `note`) so one run writes at a time.
      False means the caller holds it. A dry run never takes it.
    - `record`: journal the run, each change `pending` before its write and settled right after,
      and first reconcile runs of earlier processes that died.
    - `enforce_policy`: re-plan the providers the plan touches with `policy` and refuse the whole
      plan when any change is not one the fresh plan makes (see `enforce`). Default: for a plan
      loaded from a file.
    - `verify`: probe the changed endpoints afterwards (`ApplyResult.checks`).
    - `signals`: SIGTERM/SIGINT stop the run between writes (`ApplyResult.stopped_by`).
    - `only`: apply only the changes of these providers.
    - `canary`, `serial`, `max_failures`: roll out in batches of resources or hosts, each
      verified live before the next (see `rollout`); what a failed batch leaves is recorded as
      not applied (`ApplyResult.not_reached`), for a later run to apply.

    Refuses the whole plan, writing nothing, when any resource moved since it was planned. With
    `run_id`, the outcomes go to that already started run and the caller finishes it (drift and
    rollback journal a run of their own around the apply); otherwise a run of `kind` is started
    and finished here."""
    progress = progress or Silent()
    staged = (
        rollout.Rollout(canary, tuple(serial), max_failures)
        if canary is not None or serial or max_failures is not None
        else None
    )
    if staged is not None and not verify and not dry_run:
        raise RemediateError(
            "a canary or batched rollout verifies each batch before the next: drop --no-verify"
        )
    if only is not None:
        plan = select_changes(plan, only)
    journal = journal or Journal()
    holding: AbstractContextManager[lock_module.Held | None] = (
        journal.hold(lock_module.units_of(plan.changes), wait=wait, note=note)
        if lock and not dry_run
        else nullcontext()
    )
    with holding as held:
        recovered = (
            recovery.reconcile(
                journal, policy, progress, holding_lock=not dry_run, own_run=run_id or ""
            )
            if record
            else []
        )
        if enforce_policy is None:
            enforce_policy = plan.source is not None
        if plan.source is not None and plan.run_id and record:
            plan = _resumed(plan, journal, note)
        try:
            settings = executors.Settings.from_policy(policy, journal.state_dir)
            # Executors are built first: one that cannot run here (a missing extra, no CLI)
            # stops the apply before any discovery or API call is spent.
            runners = {
                name: executors.get(name, settings, progress)
                for name in {_executor_name(change, executor) for change in plan.changes}
            }
            enforced = bool(enforce_policy and plan.changes)
            unread: tuple[list[Change], list[FailedUnit]] = ([], [])
            if enforced:
                # The fresh discovery behind the check also tells which resources moved.
                plan, unread = _enforced(plan, policy, progress, today)
            groups: dict[str, list[Change]] = defaultdict(list)
            for change in plan.changes:
                groups[_executor_name(change, executor)].append(change)
            for name in groups.keys() - runners.keys():
                runners[name] = executors.get(name, settings, progress)
            moved = [] if enforced else _moved(runners, groups)
            if moved:
                raise StalePlanError(moved)
        except StalePlanError as exc:
            if held is not None and held.waited:
                raise RemediateError(
                    f"{exc} (another run applied changes while this one waited for the lock)"
                ) from None
            raise
        result = ApplyResult(
            run_id or "", recovered=recovered, unread=unread[0], failed_units=unread[1]
        )
        if not plan.changes:
            return result
        owned = run_id is None
        if run_id is None:
            run_id = (
                journal.start(
                    "dry-run" if dry_run else kind,
                    plan.policy_digest,
                    plan_run=plan.run_id if plan.source is not None and not dry_run else "",
                )
                if record
                else ""
            )
        result.run_id = run_id
        if not dry_run:
            _not_applied(
                journal if record else None,
                run_id,
                result.unread,
                "not applied: discovery could not read every unit of its provider now",
            )
        try:
            with _stop_on_signals(signals and not dry_run) as stop:
                if staged is None or dry_run:
                    _run(result, groups, runners, journal if record else None, stop, dry_run)
                else:
                    _roll_out(
                        result,
                        staged,
                        plan.changes,
                        groups,
                        runners,
                        journal if record else None,
                        stop,
                        policy,
                        progress,
                    )
        except BaseException as exc:
            if owned and record:
                journal.interrupt(run_id, f"stopped by {type(exc).__name__}: {exc}")
            raise
        if owned and record:
            journal.finish(run_id, result.status.value, _summary(result))
    if verify and not dry_run and result.applied and staged is None:
        result.checks = verification.verify_outcomes(result.outcomes, policy, progress)
    return result


def _resumed(plan: Plan, journal: Journal, note: Callable[[str], None] | None) -> Plan:
    """A saved plan without the changes an earlier apply of it already applied (a rollout that
    halted, a run that was stopped): applying the plan again applies the rest."""
    done = journal.applied_from_plan(plan.run_id)
    if not done:
        return plan
    left = [c for c in plan.changes if (c.resource, c.attribute) not in done]
    if note is not None:
        runs = ", ".join(sorted(set(done.values())))
        note(
            f"note: {len(plan.changes) - len(left)} change(s) of this plan were applied by run "
            f"{runs}; applying the other {len(left)}"
        )
    return plan.model_copy(update={"changes": left})


def _roll_out(
    result: ApplyResult,
    staged: rollout.Rollout,
    ordered: Sequence[Change],
    groups: dict[str, list[Change]],
    runners: dict[str, executors.Executor],
    journal: Journal | None,
    stop: _Stop,
    policy: Policy,
    progress: Progress,
) -> None:
    """Apply batch after batch, verifying each, until one makes the rollout halt."""
    executor_of = {id(change): name for name, changes in groups.items() for change in changes}
    batches = staged.batches([change for change in ordered if id(change) in executor_of])
    result.checks = []
    failed_so_far = 0
    for index, batch in enumerate(batches):
        batch_groups: dict[str, list[Change]] = defaultdict(list)
        for change in batch:
            batch_groups[executor_of[id(change)]].append(change)
        before = len(result.outcomes)
        _run(result, dict(batch_groups), runners, journal, stop, dry_run=False)
        rest = [change for later in batches[index + 1 :] for change in later]
        if stop.signal is not None:
            result.not_started.extend(rest)
            _not_applied(
                journal, result.run_id, rest, f"not started: stopped by {stop.signal.name}"
            )
            return
        outcomes = result.outcomes[before:]
        checks = verification.verify_outcomes(outcomes, policy, progress)
        result.checks.extend(checks)
        failed = staged.failures(outcomes, checks)
        failed_so_far += len(failed)
        reason = staged.halt(index == 0, failed, failed_so_far)
        if reason and rest:
            result.halted = reason
            result.not_reached = rest
            _not_applied(journal, result.run_id, rest, f"not reached: {reason}")
            return


def _not_applied(journal: Journal | None, run_id: str, changes: list[Change], why: str) -> None:
    if journal is not None and changes:
        journal.record(run_id, [(change, NOT_APPLIED, why) for change in changes])


def _run(
    result: ApplyResult,
    groups: dict[str, list[Change]],
    runners: dict[str, executors.Executor],
    journal: Journal | None,
    stop: _Stop,
    dry_run: bool,
) -> None:
    """Run each executor on its changes, journaling ahead; stop between writes when asked."""
    for name, changes in groups.items():
        steps = _WriteAhead(journal, result.run_id, stop, name)
        try:
            outcomes = runners[name].apply(changes, dry_run=dry_run, steps=steps)
        except CancelledError:
            outcomes = _read_back(runners[name], steps.begun)
            started = {id(change) for change in steps.begun}
            result.not_started.extend(c for c in changes if id(c) not in started)
        steps.settle(outcomes)
        result.outcomes.extend(outcomes)
        if stop.signal is not None:
            result.stopped_by = stop.signal
            started_groups = list(groups).index(name) + 1
            for rest in list(groups.values())[started_groups:]:
                result.not_started.extend(rest)
            break
    if result.not_started and journal is not None:
        reason = f"not started: the run was stopped by {stop.signal.name if stop.signal else '?'}"
        journal.record(result.run_id, [(c, NOT_APPLIED, reason) for c in result.not_started])


def _read_back(runner: executors.Executor, changes: Sequence[Change]) -> list[Outcome]:
    """Outcomes of the changes written before a stop, from what each resource reads now."""
    if not changes:
        return []
    if not isinstance(runner, executors.ReadsCurrent):
        return [
            Outcome(c, Status.FAILED, "written; the run stopped before reading it back")
            for c in changes
        ]
    values = runner.current(changes)
    return [
        executors.confirmed(c, value, value == c.after)
        for c in changes
        for value in [values.get((c.resource, c.attribute))]
    ]


def _enforced(
    plan: Plan, policy: Policy, progress: Progress, today: date | None
) -> tuple[Plan, tuple[list[Change], list[FailedUnit]]]:
    """The saved plan checked against a fresh plan of the providers it touches (see `enforce`),
    and the changes left out because units of their provider could not be read, with those
    units."""
    providers = sorted({change.provider for change in plan.changes})
    missing = [name for name in providers if name not in policy.providers]
    if missing:
        raise RemediateError(
            f"the plan changes {', '.join(missing)} resources but the policy has no "
            f"{', '.join(missing)} section to check them against; nothing was applied"
        )
    inventory = discover(policy, providers, progress)
    fresh = planner.plan(inventory, policy, today)
    checked = enforce.check(plan, fresh, inventory)
    if checked.moved:
        raise StalePlanError(checked.moved)
    failures = list(inventory.failures) if checked.unread else []
    return plan.model_copy(update={"changes": checked.changes}), (checked.unread, failures)


def plan_and_apply(
    policy: Policy,
    *,
    only: Iterable[str] | None = None,
    show: Callable[[Plan], None] | None = None,
    confirm: Callable[[Plan], bool] | None = None,
    journal: Journal | None = None,
    progress: Progress | None = None,
    wait: bool = False,
    note: Callable[[str], None] | None = None,
    dry_run: bool = False,
    executor: str | None = None,
    verify: bool = True,
    canary: rollout.Size | None = None,
    serial: Sequence[rollout.Size] = (),
    max_failures: int | None = None,
    selection: Selection | None = None,
) -> tuple[Plan, ApplyResult]:
    """Plan and apply under one hold of the apply lock: a run that waits for another plans only
    once that one is done, so it never applies what the other already changed. `show` is given
    the plan; `confirm` sees a plan with changes and says whether to go on (False: nothing is
    applied).

    With a shared journal the lock is per unit, and the units are known once planned: the plan's
    units are locked after planning, and a run that had to wait for one plans again under the
    lock, applying only what it still has to (among the changes `confirm` saw)."""
    progress = progress or Silent()
    if canary is not None or serial or max_failures is not None:
        rollout.Rollout(canary, tuple(serial), max_failures)  # bad sizes: refused before planning
    journal = journal or Journal()
    holding: AbstractContextManager[lock_module.Held | None] = (
        nullcontext() if dry_run or journal.shared else journal.hold(wait=wait, note=note)
    )
    with holding:
        # Finish what a dead run left before planning on top of it (writes only under the lock).
        recovered = recovery.reconcile(journal, policy, progress, holding_lock=not dry_run)
        fresh = plan(policy, only, progress, journal=journal, record=False, selection=selection)
        unfinished = recovery.findings(recovered)
        if unfinished:
            fresh = fresh.model_copy(update={"findings": [*unfinished, *fresh.findings]})
        if show is not None:
            show(fresh)
        if not fresh.has_changes or (confirm is not None and not confirm(fresh)):
            return fresh, ApplyResult("", recovered=recovered)
        units: AbstractContextManager[lock_module.Held | None] = (
            journal.hold(lock_module.units_of(fresh.changes), wait=wait, note=note)
            if journal.shared and not dry_run
            else nullcontext()
        )
        with units as held:
            confirmed = fresh
            if held is not None and held.waited:
                again = plan(policy, only, progress, record=False, selection=selection)
                fresh = _still_to_do(confirmed, again)
            result = apply(
                fresh,
                policy,
                journal=journal,
                progress=progress,
                dry_run=dry_run,
                lock=False,
                executor=executor,
                verify=verify,
                canary=canary,
                serial=serial,
                max_failures=max_failures,
            )
    result.recovered[:0] = recovered
    return fresh, result


def _still_to_do(confirmed: Plan, again: Plan) -> Plan:
    """The changes of a plan made again that were in the confirmed plan (same resource,
    attribute and value): what another run did meanwhile drops out, nothing unconfirmed gets in."""
    wanted = {(c.resource, c.attribute, repr(c.after)) for c in confirmed.changes}
    kept = [c for c in again.changes if (c.resource, c.attribute, repr(c.after)) in wanted]
    return again.model_copy(update={"changes": kept})


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


def _summary(result: ApplyResult) -> dict[str, Any]:
    counts: dict[str, Any] = defaultdict(int)
    for outcome in result.outcomes:
        counts[outcome.status.value] += 1
    if result.not_started or result.not_reached:
        counts[NOT_APPLIED] = len(result.not_started) + len(result.not_reached)
    if result.halted:
        counts["halted"] = result.halted
    if result.stopped_by is not None:
        counts["stopped_by"] = result.stopped_by.name
    return dict(counts)
