"""engine.plan, apply and plan_and_apply end to end over an in-memory provider: discovery and
planning, the journal of plans and runs, the apply lock, a saved plan checked against the policy
in force, `--only`, verification, a run stopped by SIGTERM/SIGINT between writes, an executor
that raises, and a run of an earlier process that died.

The provider registered as `aws` here keeps the provider contract over the `Cloud` of
tests/unit/test_engine.py (its executor writes and reads back), so nothing leaves the process."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator, Mapping, Sequence
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from remediate import engine, lock, registry
from remediate.enforce import PolicyViolationError
from remediate.engine import RunStatus
from remediate.errors import RemediateError, StalePlanError
from remediate.executors import Outcome, Status, Steps
from remediate.inventory import Inventory
from remediate.journal import Journal
from remediate.model import Change, Endpoint, Plan
from remediate.policy import Policy
from remediate.policy import model as policy_model
from remediate.progress import Progress, Silent
from remediate.provider import Permissions, Provider, RuleInfo, Severity
from remediate.rules import Desired, Note, Verdict
from remediate.targets import Target
from tests.unit.test_engine import Cloud, MemoryExecutor, Slot

pytestmark = pytest.mark.unit

POLICY = policy_model().model_validate({"aws": {}})
HTTP2 = "memory-http2"
IDLE = "memory-idle"


class Section(BaseModel):
    pass


class MemoryProvider(Provider):
    """Endpoints are the cloud's resources; `http2` off is a change, `idle` above 300 a finding."""

    name = "aws"
    title = "in-memory cloud"
    section = Section
    rules = (
        RuleInfo(HTTP2, "HTTP/2 on", Severity.HIGH, "switch it on", "https://example.test/h2"),
        RuleInfo(IDLE, "idle", Severity.LOW, "look", "https://example.test/idle", fixes=False),
    )
    kinds = ("memory",)
    permissions = Permissions("host", (), ())
    default_executor = "memory"

    def __init__(self, cloud: Cloud) -> None:
        self.cloud = cloud
        self.discovered = 0
        self.progress: list[Progress] = []

    def executors(self) -> Mapping[str, Any]:
        return {}

    def discover(self, policy: Policy, progress: Progress) -> Inventory:
        self.discovered += 1
        self.progress.append(progress)
        return Inventory(
            [
                Endpoint(provider="aws", resource=name, kind="memory", name=name, settings=dict(s))
                for name, s in self.cloud.resources.items()
            ],
            {},
            ["aws"],
        )

    def evaluate(self, endpoint: Endpoint, policy: Policy, facts: Mapping[str, Any]) -> Verdict:
        settings = endpoint.settings
        changes = (
            [] if settings["http2"] else [Desired("http2", False, True, "HTTP/2 is off", (HTTP2,))]
        )
        findings = [Note(IDLE, "idle timeout above 300s")] if settings["idle"] > 300 else []
        return Verdict(changes, findings)

    def target(self, endpoint: Endpoint) -> Target:
        return Slot(key=endpoint.resource)


class Signalling(MemoryExecutor):
    """Sends this process `signum` (`times` times) during its first write, as an operator's
    Ctrl-C or a service manager's SIGTERM arrives while a write is in flight."""

    def __init__(self, cloud: Cloud, signum: int, times: int = 1) -> None:
        super().__init__(cloud)
        self.signum = signum
        self.times = times

    def apply(
        self, changes: Sequence[Change], dry_run: bool = False, steps: Steps | None = None
    ) -> list[Outcome]:
        assert steps is not None
        outcomes = []
        for index, change in enumerate(changes):
            steps.begin([change])
            self.cloud.writes.append((change.resource, change.attribute, change.after))
            self.cloud.resources[change.resource][change.attribute] = change.after
            if index == 0:
                for _ in range(self.times):
                    os.kill(os.getpid(), self.signum)
            steps.end([change])
            outcomes.append(Outcome(change, Status.APPLIED))
        return outcomes


class WriteOnly(Signalling):
    """An executor that cannot read back (no `current`)."""

    current = None  # type: ignore[assignment]


@pytest.fixture
def cloud() -> Cloud:
    return Cloud(
        a={"http2": False, "idle": 60},
        b={"http2": False, "idle": 600},
        c={"http2": True, "idle": 60},
    )


@pytest.fixture
def provider(cloud: Cloud, monkeypatch: pytest.MonkeyPatch) -> Iterator[MemoryProvider]:
    memory = MemoryProvider(cloud)
    _forget_derived_tables()
    monkeypatch.setitem(registry.providers(), "aws", memory)
    monkeypatch.setitem(registry.executor_factories(), "memory", lambda s, p: MemoryExecutor(cloud))
    yield memory
    # The executor table and policy model were built from the stand-in: later tests (in this
    # process, whatever their order) rebuild them from the real providers.
    _forget_derived_tables()


def _forget_derived_tables() -> None:
    registry.executor_factories.cache_clear()
    registry.policy_model.cache_clear()


@pytest.fixture
def journal(tmp_path: Path) -> Journal:
    return Journal(tmp_path / "state")


def use_executor(monkeypatch: pytest.MonkeyPatch, name: str, executor: MemoryExecutor) -> None:
    monkeypatch.setitem(registry.executor_factories(), name, lambda s, p: executor)


def test_plan_discovers_plans_and_journals_the_plan(
    provider: MemoryProvider, journal: Journal
) -> None:
    result = engine.plan(POLICY, journal=journal)
    assert [(c.resource, c.attribute, c.after, c.executor) for c in result.changes] == [
        ("a", "http2", True, "memory"),
        ("b", "http2", True, "memory"),
    ]
    assert [(f.resource, f.rule, f.severity) for f in result.findings] == [
        ("b", IDLE, Severity.LOW)
    ]
    assert result.providers == ["aws"]
    run = journal.run(result.run_id)
    assert (run.kind, run.status) == ("plan", "changes-pending")
    assert [c.outcome for c in run.changes] == ["planned", "planned"]


def test_plan_without_record_journals_nothing(provider: MemoryProvider, journal: Journal) -> None:
    result = engine.plan(POLICY, journal=journal, record=False)
    assert result.run_id == ""
    assert journal.runs() == []
    assert len(result.changes) == 2


def test_discover_covers_only_the_selected_providers(provider: MemoryProvider) -> None:
    both = policy_model().model_validate({"aws": {}, "nginx": {}})
    inventory = engine.discover(both, ["aws"])
    assert [e.resource for e in inventory.endpoints] == ["a", "b", "c"]
    assert inventory.providers == ["aws"]


def test_a_run_of_a_process_that_died_is_reconciled_before_the_plan(
    cloud: Cloud, provider: MemoryProvider, journal: Journal
) -> None:
    planned = engine.plan(POLICY, journal=journal, record=False).changes[0]
    pid = os.fork()
    if pid == 0:  # the earlier run: journals its write ahead, writes, and dies
        run_id = journal.start("apply", "digest")
        journal.pending(run_id, [planned])
        os._exit(0)
    os.waitpid(pid, 0)
    cloud.resources["a"]["http2"] = True
    notes: list[str] = []
    result = engine.plan(POLICY, journal=journal, note=notes.append)
    [dead] = [run for run in journal.runs() if run.kind == "apply"]
    assert dead.status == "interrupted"
    assert notes == [
        f"note: run {dead.id} (apply) was interrupted; its pending changes read back as: 1 applied"
    ]
    assert [c.outcome for c in journal.run(dead.id).changes] == ["applied"]
    assert [c.resource for c in result.changes] == ["b"]


def test_a_plan_with_changes_is_applied_under_the_lock_and_verified(
    cloud: Cloud, provider: MemoryProvider, journal: Journal
) -> None:
    planned = engine.plan(POLICY, journal=journal, record=False)
    with lock.hold(journal.state_dir), pytest.raises(lock.LockHeldError):
        engine.apply(planned, POLICY, journal=journal)
    assert cloud.writes == []
    result = engine.apply(planned, POLICY, journal=journal)
    assert result.status is RunStatus.APPLIED
    assert result.checks == []
    assert cloud.resources["a"]["http2"] and cloud.resources["b"]["http2"]
    assert journal.run(result.run_id).summary == {"applied": 2}


def test_a_dry_run_takes_no_lock_and_verifies_nothing(
    cloud: Cloud, provider: MemoryProvider, journal: Journal
) -> None:
    planned = engine.plan(POLICY, journal=journal, record=False)
    with lock.hold(journal.state_dir):
        result = engine.apply(planned, POLICY, journal=journal, dry_run=True)
    assert result.status is RunStatus.DRY_RUN
    assert result.checks is None
    assert cloud.writes == []


def test_without_verify_or_record_nothing_is_probed_or_journaled(
    cloud: Cloud, provider: MemoryProvider, journal: Journal
) -> None:
    planned = engine.plan(POLICY, journal=journal, record=False)
    result = engine.apply(planned, POLICY, journal=journal, verify=False, record=False)
    assert result.status is RunStatus.APPLIED
    assert result.checks is None
    assert result.run_id == ""
    assert journal.runs() == []


def test_only_narrows_the_plan_to_the_named_providers(
    cloud: Cloud, provider: MemoryProvider, journal: Journal
) -> None:
    planned = engine.plan(POLICY, journal=journal, record=False)
    elsewhere = planned.changes[0].model_copy(update={"provider": "gcp", "resource": "g"})
    mixed = planned.model_copy(update={"changes": [*planned.changes, elsewhere]})
    narrowed = engine.select_changes(mixed, ["aws"])
    assert [c.resource for c in narrowed.changes] == ["a", "b"]
    result = engine.apply(mixed, POLICY, journal=journal, only=["aws"], verify=False)
    assert [o.change.resource for o in result.outcomes] == ["a", "b"]
    with pytest.raises(RemediateError) as empty:
        engine.select_changes(mixed, [])
    assert str(empty.value) == "--only names no provider (aws, gcp, haproxy, nginx)"
    with pytest.raises(RemediateError) as unknown:
        engine.select_changes(mixed, ["aws", "azure"])
    assert str(unknown.value).startswith("unknown provider 'azure'")


def test_a_saved_plan_is_checked_against_a_fresh_plan_of_the_policy(
    cloud: Cloud, provider: MemoryProvider, journal: Journal, tmp_path: Path
) -> None:
    path = tmp_path / "plan.json"
    engine.plan(POLICY, journal=journal, record=False).save(path)
    saved = Plan.load(path)
    assert saved.source == path
    before = provider.discovered
    result = engine.apply(saved, POLICY, journal=journal, verify=False)
    assert provider.discovered == before + 1
    assert result.status is RunStatus.APPLIED
    assert cloud.writes == [("a", "http2", True), ("b", "http2", True)]


def test_a_saved_plan_asking_what_the_rules_would_not_is_refused_whole(
    cloud: Cloud, provider: MemoryProvider, journal: Journal, tmp_path: Path
) -> None:
    path = tmp_path / "plan.json"
    planned = engine.plan(POLICY, journal=journal, record=False)
    edited = planned.model_dump(mode="json")
    edited["changes"][1]["after"] = "off"
    Plan.model_validate(edited).save(path)
    with pytest.raises(PolicyViolationError):
        engine.apply(Plan.load(path), POLICY, journal=journal)
    assert cloud.writes == []
    # A plan made in this process is not re-checked unless asked.
    result = engine.apply(Plan.model_validate(edited), POLICY, journal=journal, verify=False)
    assert [o.status for o in result.outcomes] == [Status.APPLIED, Status.APPLIED]
    assert cloud.resources["b"]["http2"] == "off"


def test_a_saved_plan_whose_resource_moved_is_stale(
    cloud: Cloud, provider: MemoryProvider, journal: Journal, tmp_path: Path
) -> None:
    path = tmp_path / "plan.json"
    engine.plan(POLICY, journal=journal, record=False).save(path)
    cloud.resources["b"]["idle"] = 30
    with pytest.raises(StalePlanError) as error:
        engine.apply(Plan.load(path), POLICY, journal=journal)
    assert error.value.resources == ["b"]
    assert cloud.writes == []


def test_a_saved_plan_for_a_provider_the_policy_lacks_is_refused(
    cloud: Cloud, provider: MemoryProvider, journal: Journal, tmp_path: Path
) -> None:
    path = tmp_path / "plan.json"
    engine.plan(POLICY, journal=journal, record=False).save(path)
    other = policy_model().model_validate({"nginx": {}})
    with pytest.raises(RemediateError) as error:
        engine.apply(Plan.load(path), other, journal=journal)
    assert str(error.value) == (
        "the plan changes aws resources but the policy has no aws section to check them "
        "against; nothing was applied"
    )
    assert cloud.writes == []


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_stops_the_run_between_writes(
    cloud: Cloud,
    provider: MemoryProvider,
    journal: Journal,
    monkeypatch: pytest.MonkeyPatch,
    signum: signal.Signals,
) -> None:
    use_executor(monkeypatch, "memory", Signalling(cloud, signum))
    planned = engine.plan(POLICY, journal=journal, record=False)
    handler = signal.getsignal(signum)
    result = engine.apply(planned, POLICY, journal=journal, verify=False)
    assert signal.getsignal(signum) is handler
    assert result.status is RunStatus.INTERRUPTED
    assert result.stopped_by is signum
    # The write in flight finished and was read back; the next never started.
    assert cloud.writes == [("a", "http2", True)]
    assert [(o.change.resource, o.status) for o in result.outcomes] == [("a", Status.APPLIED)]
    assert [c.resource for c in result.not_started] == ["b"]
    run = journal.run(result.run_id)
    assert run.summary == {"applied": 1, "not-applied": 1, "stopped_by": signum.name}
    assert [(c.change.resource, c.outcome, c.message) for c in run.changes] == [
        ("a", "applied", ""),
        ("b", "not-applied", f"not started: the run was stopped by {signum.name}"),
    ]


def test_a_stopped_executor_that_cannot_read_back_reports_its_writes_as_unconfirmed(
    cloud: Cloud, provider: MemoryProvider, journal: Journal, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_executor(monkeypatch, "memory", WriteOnly(cloud, signal.SIGTERM))
    planned = engine.plan(POLICY, journal=journal, record=False)
    result = engine.apply(planned, POLICY, journal=journal, verify=False)
    assert [(o.change.resource, o.status, o.message) for o in result.outcomes] == [
        ("a", Status.FAILED, "written; the run stopped before reading it back")
    ]
    assert [c.resource for c in result.not_started] == ["b"]
    assert result.status is RunStatus.INTERRUPTED


def test_a_stop_before_the_first_write_of_a_group_reads_back_what_was_begun(
    cloud: Cloud, provider: MemoryProvider, journal: Journal, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two executors: the stop arrives during the first one's only write; the second executor's
    changes are never started."""
    use_executor(monkeypatch, "memory", Signalling(cloud, signal.SIGTERM))
    use_executor(monkeypatch, "second", MemoryExecutor(cloud))
    planned = engine.plan(POLICY, journal=journal, record=False)
    first, second = planned.changes
    two = planned.model_copy(
        update={"changes": [first, second.model_copy(update={"executor": "second"})]}
    )
    result = engine.apply(two, POLICY, journal=journal, verify=False)
    assert result.status is RunStatus.INTERRUPTED
    assert [c.resource for c in result.not_started] == ["b"]
    assert cloud.writes == [("a", "http2", True)]


def test_a_second_signal_stops_at_once_and_the_run_is_marked_interrupted(
    cloud: Cloud, provider: MemoryProvider, journal: Journal, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_executor(monkeypatch, "memory", Signalling(cloud, signal.SIGINT, times=2))
    planned = engine.plan(POLICY, journal=journal, record=False)
    with pytest.raises(KeyboardInterrupt):
        engine.apply(planned, POLICY, journal=journal, verify=False)
    [run] = journal.runs()
    assert run.status == "interrupted"
    assert run.summary["interrupted"] == "stopped by KeyboardInterrupt: "


def test_signals_are_left_alone_when_asked(
    cloud: Cloud, provider: MemoryProvider, journal: Journal, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_executor(monkeypatch, "memory", Signalling(cloud, signal.SIGTERM))
    seen: list[int] = []
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: seen.append(signum))
    try:
        planned = engine.plan(POLICY, journal=journal, record=False)
        result = engine.apply(planned, POLICY, journal=journal, verify=False, signals=False)
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert seen == [signal.SIGTERM]
    assert result.status is RunStatus.APPLIED


class Exploding(MemoryExecutor):
    def apply(
        self, changes: Sequence[Change], dry_run: bool = False, steps: Steps | None = None
    ) -> list[Outcome]:
        raise RuntimeError("the executor broke")


def test_an_executor_that_raises_leaves_the_run_interrupted_saying_why(
    cloud: Cloud, provider: MemoryProvider, journal: Journal, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_executor(monkeypatch, "memory", Exploding(cloud))
    planned = engine.plan(POLICY, journal=journal, record=False)
    with pytest.raises(RuntimeError):
        engine.apply(planned, POLICY, journal=journal)
    [run] = journal.runs()
    assert (run.kind, run.status) == ("apply", "interrupted")
    assert run.summary["interrupted"] == "stopped by RuntimeError: the executor broke"


def test_plan_and_apply_shows_the_plan_and_applies_what_is_confirmed(
    cloud: Cloud, provider: MemoryProvider, journal: Journal
) -> None:
    shown: list[Plan] = []
    fresh, result = engine.plan_and_apply(
        POLICY, journal=journal, show=shown.append, confirm=lambda plan: True, verify=False
    )
    assert shown == [fresh]
    assert [c.resource for c in fresh.changes] == ["a", "b"]
    assert result.status is RunStatus.APPLIED
    assert journal.run(result.run_id).kind == "apply"
    # Clean now: shown, nothing applied.
    fresh, result = engine.plan_and_apply(POLICY, journal=journal, show=shown.append)
    assert fresh.changes == [] and result.outcomes == [] and len(shown) == 2


def test_plan_and_apply_applies_nothing_when_not_confirmed(
    cloud: Cloud, provider: MemoryProvider, journal: Journal
) -> None:
    fresh, result = engine.plan_and_apply(POLICY, journal=journal, confirm=lambda plan: False)
    assert len(fresh.changes) == 2
    assert result.status is RunStatus.NOTHING_TO_DO
    assert cloud.writes == [] and journal.runs() == []


def test_plan_and_apply_holds_the_lock_unless_dry_run(
    cloud: Cloud, provider: MemoryProvider, journal: Journal
) -> None:
    with lock.hold(journal.state_dir):
        with pytest.raises(lock.LockHeldError):
            engine.plan_and_apply(POLICY, journal=journal)
        _, result = engine.plan_and_apply(POLICY, journal=journal, dry_run=True)
    assert result.status is RunStatus.DRY_RUN
    assert cloud.writes == []


class Unreachable(MemoryProvider):
    """A provider whose discovery cannot run here."""

    name = "gcp"

    def discover(self, policy: Policy, progress: Progress) -> Inventory:
        raise RemediateError("gcp: cannot be reached from this test")


def test_a_saved_plan_is_checked_by_discovering_only_the_providers_it_touches(
    cloud: Cloud,
    provider: MemoryProvider,
    journal: Journal,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(registry.providers(), "gcp", Unreachable(cloud))
    both = policy_model().model_validate({"aws": {}, "gcp": {}})
    path = tmp_path / "plan.json"
    engine.plan(POLICY, journal=journal, record=False).save(path)

    class Seen(Silent):
        pass

    seen = Seen()
    provider.progress.clear()
    result = engine.apply(Plan.load(path), both, journal=journal, verify=False, progress=seen)
    assert result.status is RunStatus.APPLIED
    assert provider.progress == [seen]


def test_a_saved_plan_for_several_providers_the_policy_lacks_names_them_all(
    cloud: Cloud, provider: MemoryProvider, journal: Journal, tmp_path: Path
) -> None:
    planned = engine.plan(POLICY, journal=journal, record=False)
    elsewhere = planned.changes[0].model_copy(update={"provider": "gcp", "resource": "g"})
    path = tmp_path / "plan.json"
    planned.model_copy(update={"changes": [*planned.changes, elsewhere]}).save(path)
    with pytest.raises(RemediateError) as error:
        engine.apply(Plan.load(path), policy_model().model_validate({"nginx": {}}), journal=journal)
    assert str(error.value) == (
        "the plan changes aws, gcp resources but the policy has no aws, gcp section to check "
        "them against; nothing was applied"
    )


def test_a_saved_plan_is_checked_as_of_the_day_given(
    cloud: Cloud, provider: MemoryProvider, journal: Journal, tmp_path: Path
) -> None:
    """An exclusion that has expired by `today` no longer holds the change back."""
    excluding = policy_model().model_validate(
        {"aws": {}, "exclude": [{"match": "b", "reason": "frozen", "until": "2030-01-31"}]}
    )
    later = date(2030, 2, 1)
    planned = engine.plan(excluding, journal=journal, record=False, today=later)
    assert [c.resource for c in planned.changes] == ["a", "b"]
    path = tmp_path / "plan.json"
    planned.save(path)
    result = engine.apply(Plan.load(path), excluding, journal=journal, verify=False, today=later)
    assert [o.change.resource for o in result.outcomes] == ["a", "b"]


def test_what_is_applied_is_the_fresh_plans_change_not_the_saved_text(
    cloud: Cloud, provider: MemoryProvider, journal: Journal, tmp_path: Path
) -> None:
    planned = engine.plan(POLICY, journal=journal, record=False)
    edited = planned.model_dump(mode="json")
    edited["changes"][0]["reason"] = "edited: trust me"
    path = tmp_path / "plan.json"
    Plan.model_validate(edited).save(path)
    result = engine.apply(Plan.load(path), POLICY, journal=journal, verify=False)
    assert [o.change.reason for o in result.outcomes] == ["HTTP/2 is off", "HTTP/2 is off"]
    assert [c.change.reason for c in journal.run(result.run_id).changes] == [
        "HTTP/2 is off",
        "HTTP/2 is off",
    ]


def test_a_saved_plan_applied_again_after_a_halt_applies_only_the_rest(
    cloud: Cloud, provider: MemoryProvider, journal: Journal, tmp_path: Path
) -> None:
    path = tmp_path / "plan.json"
    cloud.resources["c"]["http2"] = False
    engine.plan(POLICY, journal=journal).save(path)
    cloud.stuck.add(("b", "http2"))
    first = engine.apply(Plan.load(path), POLICY, journal=journal, serial=[1], max_failures=0)
    assert first.status is RunStatus.HALTED
    assert [(o.change.resource, o.status) for o in first.outcomes] == [
        ("a", Status.APPLIED),
        ("b", Status.FAILED),
    ]
    cloud.stuck.clear()
    notes: list[str] = []
    again = engine.apply(Plan.load(path), POLICY, journal=journal, note=notes.append)
    assert [o.change.resource for o in again.outcomes] == ["b", "c"]
    assert notes == [
        f"note: 1 change(s) of this plan were applied by run {first.run_id}; applying the other 2"
    ]
    assert [write[0] for write in cloud.writes] == ["a", "b", "b", "c"]


def test_plan_and_apply_refuses_bad_batch_sizes_before_planning(
    provider: MemoryProvider, journal: Journal
) -> None:
    for sizes in ({"canary": 0}, {"serial": ["0%"]}, {"max_failures": -1}):
        with pytest.raises(RemediateError):
            engine.plan_and_apply(POLICY, journal=journal, **sizes)  # type: ignore[arg-type]
    assert provider.discovered == 0


def test_plan_and_apply_reconciles_a_dead_run_before_planning(
    cloud: Cloud, provider: MemoryProvider, journal: Journal
) -> None:
    planned = engine.plan(POLICY, journal=journal, record=False).changes[0]
    pid = os.fork()
    if pid == 0:  # the earlier run: journals its write ahead and dies before writing
        run_id = journal.start("apply", "digest")
        journal.pending(run_id, [planned])
        os._exit(0)
    os.waitpid(pid, 0)
    shown: list[Plan] = []
    fresh, result = engine.plan_and_apply(
        POLICY, journal=journal, show=shown.append, confirm=lambda plan: False
    )
    assert shown == [fresh]
    assert [c.resource for c in fresh.changes] == ["a", "b"]
    [dead] = [run for run in journal.runs() if run.kind == "apply"]
    assert [item.run_id for item in result.recovered] == [dead.id]
    assert result.run_id == "" and cloud.writes == []


def test_plan_and_apply_applies_with_the_callers_executor_progress_and_rollout(
    cloud: Cloud, provider: MemoryProvider, journal: Journal, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_executor(monkeypatch, "other", MemoryExecutor(cloud))
    seen = Silent()
    cloud.stuck.add(("a", "http2"))
    _, result = engine.plan_and_apply(
        POLICY, journal=journal, progress=seen, executor="other", canary=1
    )
    assert provider.progress == [seen]
    assert result.status is RunStatus.HALTED
    assert result.checks == []
    assert [c.resource for c in result.not_reached] == ["b"]
    [written, _] = journal.run(result.run_id).changes
    assert (written.change.resource, written.change.executor) == ("a", "other")
    cloud.stuck.clear()
    _, result = engine.plan_and_apply(POLICY, journal=journal, verify=False)
    assert result.status is RunStatus.APPLIED
    assert result.checks is None
