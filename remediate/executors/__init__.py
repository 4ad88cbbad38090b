"""Write side: executors apply a plan's changes and read each resource back to confirm."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Protocol, runtime_checkable

from pydantic import BaseModel

from remediate.errors import RemediateError
from remediate.model import Change
from remediate.policy import Policy, S, section_of
from remediate.progress import Progress


class Status(StrEnum):
    APPLIED = "applied"
    FAILED = "failed"
    DRY_RUN = "dry-run"


@dataclass(frozen=True)
class Outcome:
    """What happened to one change; `observed` is the value read back after the write."""

    change: Change
    status: Status
    message: str = ""
    observed: object = None


def confirmed(change: Change, value: object, matches: bool, failure: str | None = None) -> Outcome:
    """The outcome of a write, decided by what is read back: applied when the value read back is
    the one asked for, failed with the write's error or saying what it reads. A write that
    reported an error but reads back as asked (its answer lost after the change was made) is the
    executor's to word: each says what its API answered."""
    if matches:
        return Outcome(change, Status.APPLIED, observed=value)
    if failure is not None:
        return Outcome(change, Status.FAILED, failure)
    return Outcome(
        change,
        Status.FAILED,
        f"written, but {change.attribute} reads back as {value!r}",
        observed=value,
    )


class CancelledError(RemediateError):
    """A stop was asked for (SIGTERM, SIGINT): the executor stops before its next write."""


class Steps(Protocol):
    """What an executor tells the engine around each write, so the journal is written ahead.

    An executor calls `begin` with the changes of the next unit it writes (one resource, or the
    files written together) before writing them, and `end` right after the write returned or
    failed. `begin` raises `CancelledError` when a stop was asked for: nothing of that unit has
    been written, and the executor lets the exception through.
    """

    def begin(self, changes: Sequence[Change]) -> None: ...

    def end(self, changes: Sequence[Change], failure: str | None = None) -> None: ...


class NoSteps:
    """Steps for a caller that journals nothing and never cancels."""

    def begin(self, changes: Sequence[Change]) -> None:
        pass

    def end(self, changes: Sequence[Change], failure: str | None = None) -> None:
        pass


class Executor(Protocol):
    """The write side of one tool (boto3, gcp-api, ansible, pulumi).

    Executors should also implement `current` (see `ReadsCurrent`): rollback uses it to check that
    each resource still holds what the run being rolled back left there, and refuses providers
    whose executor cannot say.
    """

    name: str

    def fingerprints(self, changes: Sequence[Change]) -> dict[str, str | None]:
        """Each changed resource's current fingerprint, None when it no longer exists."""

    def apply(
        self, changes: Sequence[Change], dry_run: bool = False, steps: Steps | None = None
    ) -> list[Outcome]:
        """Apply `changes` (all of this executor's); one failing resource does not stop others.
        Each unit written is announced to `steps` before and after its write."""


@runtime_checkable
class Finishes(Protocol):
    """An executor whose writes need a step after the write itself (Nginx: validate and reload),
    so a write interrupted between the two must be finished or undone by the next run."""

    def finish(self, changes: Sequence[Change]) -> list[Outcome]:
        """Bring each change's resource to `after` and make it take effect; when that fails, put
        `before` back and make that take effect. Outcomes: applied, or failed saying which."""


@runtime_checkable
class ReadsCurrent(Protocol):
    """An executor that can read back the current value of the attributes it writes."""

    def current(self, changes: Sequence[Change]) -> dict[tuple[str, str], object]:
        """The value each change's (resource, attribute) holds now, in the same form as the
        change's `before`/`after` (for Nginx, the whole file text); None when the resource is
        gone. Keys are `(change.resource, change.attribute)`."""


@dataclass(frozen=True)
class Settings:
    """Where executors reach their tools, apart from what the policy demands.

    `sections` are provider policy sections by provider name (the GCP endpoint, the Nginx
    inventory...), so a saved plan can be applied with executors built from them alone. `policy`,
    when given, is the policy in force, for executors that re-plan a resource that moved while
    they wrote it."""

    sections: Mapping[str, BaseModel] = field(default_factory=dict)
    policy: Policy | None = None
    state_dir: Path | None = None

    def section(self, name: str, model: type[S]) -> S:
        """Provider `name`'s section as `model`, or `model`'s defaults."""
        return section_of(self.sections, name, model)

    @classmethod
    def from_policy(cls, policy: Policy, state_dir: Path | None = None) -> Settings:
        return cls(sections=policy.sections, policy=policy, state_dir=state_dir)


def get(name: str, settings: Settings, progress: Progress) -> Executor:
    """The executor called `name`, built from `settings`."""
    from remediate import registry

    return registry.executor_factory(name)(settings, progress)
