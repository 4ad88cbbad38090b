"""engine.apply with an in-memory executor that keeps the executor contract (fingerprints, apply
with read-back, current): refusing a plan whose resources moved or vanished, outcomes, statuses and
what the journal records."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from remediate import engine, registry
from remediate.errors import RemediateError, StalePlanError
from remediate.executors import (
    NoSteps,
    Outcome,
    ReadsCurrent,
    Settings,
    Status,
    Steps,
    confirmed,
)
from remediate.journal import Journal
from remediate.model import Change, Plan, fingerprint
from remediate.policy import model as policy_model
from remediate.progress import Progress, Silent
from remediate.targets import Target

POLICY = policy_model().model_validate({"aws": {}})


class Slot(Target):
    """Where a change of the in-memory cloud lands."""

    type: str = "test-memory-slot"
    key: str


class Cloud:
    """Resources by id, each a dict of attributes; `stuck` attributes ignore writes (the service
    accepts the call and keeps its value), as a read-back must notice. `built` records what each
    executor was built with."""

    def __init__(self, **resources: dict[str, Any]) -> None:
        self.resources: dict[str, dict[str, Any]] = resources
        self.stuck: set[tuple[str, str]] = set()
        self.writes: list[tuple[str, str, Any]] = []
        self.refuse: dict[str, str] = {}
        self.built: list[tuple[Settings, Progress]] = []


class MemoryExecutor:
    """The executor contract over a `Cloud`: writes each change, then reads every written
    resource back and compares."""

    name = "memory"

    def __init__(self, cloud: Cloud) -> None:
        self.cloud = cloud

    def fingerprints(self, changes: Sequence[Change]) -> dict[str, str | None]:
        found: dict[str, str | None] = {}
        for change in changes:
            settings = self.cloud.resources.get(change.resource)
            found[change.resource] = None if settings is None else fingerprint(settings)
        return found

    def current(self, changes: Sequence[Change]) -> dict[tuple[str, str], object]:
        return {
            (c.resource, c.attribute): self.cloud.resources.get(c.resource, {}).get(c.attribute)
            for c in changes
        }

    def apply(
        self, changes: Sequence[Change], dry_run: bool = False, steps: Steps | None = None
    ) -> list[Outcome]:
        if dry_run:
            return [Outcome(change, Status.DRY_RUN) for change in changes]
        steps = steps or NoSteps()
        outcomes = []
        for change in changes:
            failure = self.cloud.refuse.get(change.resource)
            steps.begin([change])
            if failure is None:
                self.cloud.writes.append((change.resource, change.attribute, change.after))
                if (change.resource, change.attribute) not in self.cloud.stuck:
                    self.cloud.resources[change.resource][change.attribute] = change.after
            steps.end([change], failure)
            value = self.cloud.resources[change.resource].get(change.attribute)
            outcomes.append(confirmed(change, value, value == change.after, failure))
        return outcomes


@pytest.fixture
def cloud(monkeypatch: pytest.MonkeyPatch) -> Iterator[Cloud]:
    """A cloud of two load balancers reached through the executor named `memory`."""
    state = Cloud(
        a={"http2": False, "idle": 60},
        b={"http2": False, "idle": 60},
    )

    def factory(settings: Settings, progress: Progress) -> MemoryExecutor:
        state.built.append((settings, progress))
        return MemoryExecutor(state)

    monkeypatch.setitem(registry.executor_factories(), "memory", factory)
    yield state


@pytest.fixture
def journal(tmp_path: Path) -> Journal:
    return Journal(tmp_path / "state")


def change(cloud: Cloud, resource: str, attribute: str = "http2", after: Any = True) -> Change:
    return Change(
        provider="aws",
        kind="memory",
        resource=resource,
        attribute=attribute,
        before=cloud.resources[resource][attribute],
        after=after,
        reason="test",
        executor="memory",
        fingerprint=fingerprint(cloud.resources[resource]),
        name=resource,
        target=Slot(key=resource),
    )


def test_the_executor_keeps_the_contract() -> None:
    assert isinstance(MemoryExecutor(Cloud()), ReadsCurrent)


def test_applied_changes_are_written_read_back_and_journaled(
    cloud: Cloud, journal: Journal
) -> None:
    plan = Plan(changes=[change(cloud, "a"), change(cloud, "b", "idle", 120)])
    result = engine.apply(plan, POLICY, journal=journal)
    assert [(o.change.resource, o.status, o.observed) for o in result.outcomes] == [
        ("a", Status.APPLIED, True),
        ("b", Status.APPLIED, 120),
    ]
    assert result.status == "applied"
    assert result.failed == [] and len(result.applied) == 2
    assert cloud.resources == {"a": {"http2": True, "idle": 60}, "b": {"http2": False, "idle": 120}}
    run = journal.run(result.run_id)
    assert (run.kind, run.status, run.summary) == ("apply", "applied", {"applied": 2})
    assert [(c.change.resource, c.outcome) for c in run.changes] == [
        ("a", "applied"),
        ("b", "applied"),
    ]


def test_a_value_that_reads_back_different_is_a_failure_and_the_run_partial(
    cloud: Cloud, journal: Journal
) -> None:
    cloud.stuck.add(("b", "http2"))
    plan = Plan(changes=[change(cloud, "a"), change(cloud, "b")])
    result = engine.apply(plan, POLICY, journal=journal)
    failed = result.outcomes[1]
    assert failed.status is Status.FAILED
    assert failed.message == "written, but http2 reads back as False"
    assert failed.observed is False
    assert result.status == "partial"
    assert [o.change.resource for o in result.failed] == ["b"]
    run = journal.run(result.run_id)
    assert run.status == "partial"
    assert run.summary == {"applied": 1, "failed": 1}
    assert [(c.outcome, c.message) for c in run.changes] == [
        ("applied", ""),
        ("failed", "written, but http2 reads back as False"),
    ]


def test_every_change_failing_is_a_failed_run(cloud: Cloud, journal: Journal) -> None:
    cloud.refuse["a"] = "AccessDenied: no"
    result = engine.apply(Plan(changes=[change(cloud, "a")]), POLICY, journal=journal)
    assert result.status == "failed"
    assert result.outcomes[0].message == "AccessDenied: no"
    assert journal.run(result.run_id).status == "failed"


def test_a_resource_deleted_since_the_plan_counts_as_moved(cloud: Cloud, journal: Journal) -> None:
    plan = Plan(changes=[change(cloud, "a"), change(cloud, "b")])
    del cloud.resources["b"]
    with pytest.raises(StalePlanError) as error:
        engine.apply(plan, POLICY, journal=journal)
    assert error.value.resources == ["b"]
    assert cloud.writes == []
    assert journal.runs() == []


def test_a_resource_changed_since_the_plan_refuses_the_whole_plan(
    cloud: Cloud, journal: Journal
) -> None:
    plan = Plan(changes=[change(cloud, "a"), change(cloud, "a", "idle", 90), change(cloud, "b")])
    cloud.resources["a"]["idle"] = 61
    with pytest.raises(StalePlanError) as error:
        engine.apply(plan, POLICY, journal=journal)
    assert error.value.resources == ["a"]
    assert "1 resource(s) changed since it was planned (a)" in str(error.value)
    assert cloud.writes == []


def test_a_moved_resource_after_another_with_several_changes_is_found(
    cloud: Cloud, journal: Journal
) -> None:
    plan = Plan(changes=[change(cloud, "a"), change(cloud, "a", "idle", 90), change(cloud, "b")])
    cloud.resources["b"]["idle"] = 61
    with pytest.raises(StalePlanError) as error:
        engine.apply(plan, POLICY, journal=journal)
    assert error.value.resources == ["b"]


def test_executors_are_built_from_the_policy_with_the_callers_progress(
    cloud: Cloud, journal: Journal
) -> None:
    class Seen(Silent):
        pass

    seen = Seen()
    engine.apply(Plan(changes=[change(cloud, "a")]), POLICY, journal=journal, progress=seen)
    engine.apply(Plan(changes=[change(cloud, "b")]), POLICY, journal=journal)
    [(settings, progress), (_, default)] = cloud.built
    assert settings.sections == POLICY.sections
    assert settings.policy is POLICY
    assert progress is seen
    assert isinstance(default, Silent)


def test_dry_run_writes_nothing(cloud: Cloud, journal: Journal) -> None:
    result = engine.apply(Plan(changes=[change(cloud, "a")]), POLICY, journal=journal, dry_run=True)
    assert result.status == "dry-run"
    assert [o.status for o in result.outcomes] == [Status.DRY_RUN]
    assert cloud.writes == []
    assert journal.run(result.run_id).kind == "dry-run"


def test_an_empty_plan_is_nothing_to_do(cloud: Cloud, journal: Journal) -> None:
    result = engine.apply(Plan(), POLICY, journal=journal)
    assert result.status == "nothing-to-do"
    assert result.outcomes == []
    assert cloud.writes == []


def test_the_executor_can_be_overridden_for_the_whole_plan(cloud: Cloud, journal: Journal) -> None:
    planned = change(cloud, "a").model_copy(update={"executor": "boto3"})
    result = engine.apply(Plan(changes=[planned]), POLICY, journal=journal, executor="memory")
    assert result.status == "applied"
    assert cloud.writes == [("a", "http2", True)]
    # The journal names the executor that wrote the change, which rollback then uses.
    assert [c.change.executor for c in journal.run(result.run_id).changes] == ["memory"]


def test_outcomes_go_to_a_run_the_caller_started_and_finishes(
    cloud: Cloud, journal: Journal
) -> None:
    run_id = journal.start("drift", "digest")
    result = engine.apply(
        Plan(changes=[change(cloud, "a")]), POLICY, journal=journal, run_id=run_id
    )
    assert result.run_id == run_id
    run = journal.run(run_id)
    assert run.status == "running"
    assert [c.outcome for c in run.changes] == ["applied"]


def test_a_run_of_the_given_kind_is_journaled(cloud: Cloud, journal: Journal) -> None:
    result = engine.apply(
        Plan(changes=[change(cloud, "a")]), POLICY, journal=journal, kind="rollback"
    )
    assert journal.run(result.run_id).kind == "rollback"


def test_a_run_covers_the_providers_the_policy_configures_in_a_stable_order() -> None:
    both = policy_model().model_validate({"nginx": {}, "aws": {}})
    assert engine.select(both) == ["aws", "nginx"]
    assert engine.select(both, ["nginx"]) == ["nginx"]
    assert engine.select(both, ["nginx", "aws"]) == ["nginx", "aws"]


def test_a_provider_outside_the_policy_or_unknown_is_one_clear_error() -> None:
    with pytest.raises(RemediateError) as none:
        engine.select(policy_model()())
    assert (
        str(none.value)
        == "the policy configures no provider: add a section (aws, gcp, haproxy, nginx)"
    )
    with pytest.raises(RemediateError) as unknown:
        engine.select(POLICY, ["aws", "azure"])
    assert str(unknown.value) == "unknown provider 'azure' (known: aws, gcp, haproxy, nginx)"
    with pytest.raises(RemediateError) as missing:
        engine.select(POLICY, ["gcp"])
    assert str(missing.value) == "--only gcp: the policy has no gcp section"


@pytest.fixture
def three(cloud: Cloud) -> Cloud:
    cloud.resources["c"] = {"http2": False, "idle": 60}
    return cloud


def test_a_canary_that_fails_halts_the_rollout_and_records_the_rest_as_not_applied(
    three: Cloud, journal: Journal
) -> None:
    three.stuck.add(("a", "http2"))
    plan = Plan(changes=[change(three, "a"), change(three, "b"), change(three, "c")])
    result = engine.apply(plan, POLICY, journal=journal, canary=1)
    assert result.status is engine.RunStatus.HALTED
    assert result.halted == "the canary did not verify (a)"
    assert [c.resource for c in result.not_reached] == ["b", "c"]
    assert [(o.change.resource, o.status) for o in result.outcomes] == [("a", Status.FAILED)]
    assert result.checks == []
    assert three.writes == [("a", "http2", True)]
    run = journal.run(result.run_id)
    assert (run.status, run.summary) == (
        "halted",
        {"failed": 1, "not-applied": 2, "halted": "the canary did not verify (a)"},
    )
    assert [(c.change.resource, c.outcome, c.message) for c in run.changes] == [
        ("a", "failed", "written, but http2 reads back as False"),
        ("b", "not-applied", "not reached: the canary did not verify (a)"),
        ("c", "not-applied", "not reached: the canary did not verify (a)"),
    ]


def test_a_rollout_goes_batch_by_batch_until_failures_exceed_the_budget(
    three: Cloud, journal: Journal
) -> None:
    three.stuck.add(("b", "http2"))
    plan = Plan(changes=[change(three, "a"), change(three, "b"), change(three, "c")])
    result = engine.apply(plan, POLICY, journal=journal, serial=[1], max_failures=0)
    assert result.halted == "1 failed, more than --max-failures 0"
    assert [o.change.resource for o in result.outcomes] == ["a", "b"]
    assert [c.resource for c in result.not_reached] == ["c"]
    assert three.resources["c"]["http2"] is False
    # Within the budget, every batch is applied.
    three.stuck.clear()
    three.resources["b"]["http2"] = False
    again = Plan(changes=[change(three, "b"), change(three, "c")])
    result = engine.apply(again, POLICY, journal=journal, serial=[1], max_failures=0)
    assert result.status is engine.RunStatus.APPLIED
    assert result.halted == "" and result.not_reached == []
    assert [o.change.resource for o in result.outcomes] == ["b", "c"]


def test_a_rollout_needs_verification_and_a_dry_run_of_one_writes_nothing(
    cloud: Cloud, journal: Journal
) -> None:
    plan = Plan(changes=[change(cloud, "a"), change(cloud, "b")])
    with pytest.raises(RemediateError) as error:
        engine.apply(plan, POLICY, journal=journal, canary=1, verify=False)
    assert str(error.value) == (
        "a canary or batched rollout verifies each batch before the next: drop --no-verify"
    )
    result = engine.apply(plan, POLICY, journal=journal, canary=1, dry_run=True)
    assert result.status is engine.RunStatus.DRY_RUN
    assert cloud.writes == []


def test_the_failure_budget_counts_failures_across_batches(three: Cloud, journal: Journal) -> None:
    three.stuck.update({("a", "http2"), ("b", "http2")})
    plan = Plan(changes=[change(three, "a"), change(three, "b"), change(three, "c")])
    result = engine.apply(plan, POLICY, journal=journal, serial=[1], max_failures=1)
    assert result.halted == "2 failed, more than --max-failures 1"
    assert [c.resource for c in result.not_reached] == ["c"]
    assert ("c", "http2", True) not in three.writes
