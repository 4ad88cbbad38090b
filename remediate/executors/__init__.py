"""Write side: executors apply a plan's changes and read each resource back to confirm."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from remediate.errors import RemediateError
from remediate.model import Change
from remediate.policy import Policy
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


class Executor(Protocol):
    name: str

    def fingerprints(self, changes: Sequence[Change]) -> dict[str, str | None]:
        """Each changed resource's current fingerprint, None when it no longer exists."""

    def apply(self, changes: Sequence[Change], dry_run: bool = False) -> list[Outcome]:
        """Apply `changes` (all of this executor's); one failing resource does not stop others."""


ExecutorFactory = Callable[[Policy, Progress], Executor]


def _boto3(policy: Policy, progress: Progress) -> Executor:
    from remediate.executors.aws import Boto3Executor

    return Boto3Executor(progress)


def _ansible(policy: Policy, progress: Progress) -> Executor:
    from remediate.executors.ansible import AnsibleExecutor

    return AnsibleExecutor(policy.nginx.inventory if policy.nginx else None, progress)


FACTORIES: dict[str, ExecutorFactory] = {"boto3": _boto3, "ansible": _ansible}


def get(name: str, policy: Policy, progress: Progress) -> Executor:
    try:
        factory = FACTORIES[name]
    except KeyError:
        known = ", ".join(sorted(FACTORIES))
        raise RemediateError(f"unknown executor {name!r} (known: {known})") from None
    return factory(policy, progress)
