"""Canary and batched rollout: apply a plan a few resources or hosts at a time, verify each batch
live, and stop before the rest when a batch fails.

The members of a rollout are hosts (every file of a host goes with it) or, for cloud resources,
the resources themselves, in plan order. `canary` makes the first batch N members (or N%); the
rest follow in batches of `serial` sizes, as Ansible's `serial` reads them (a list of counts or
percentages of the whole, its last size repeated), or all at once. A canary goes on only when
every endpoint it touched verified (a probe that fails, is inconclusive or cannot reach the
endpoint is not a verification); `max_failures` stops the rollout once more members than that
failed (their apply or their probes). What was not reached is recorded as not applied, and a
later run applies it: it is still in the next plan.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from remediate.errors import RemediateError
from remediate.executors import Outcome, Status
from remediate.model import Change
from remediate.targets import HostFile
from remediate.verification import VERIFIED, Verification

Size = int | str


def member(change: Change) -> str:
    """What a rollout counts: the host of a file on a host, else the resource."""
    return change.target.host if isinstance(change.target, HostFile) else change.resource


def size_of(spec: Size, total: int, option: str) -> int:
    """A batch size: a count, or a percentage of `total` rounded up (at least 1)."""
    text = str(spec).strip()
    try:
        if text.endswith("%"):
            percent = float(text[:-1])
            if not 0 < percent <= 100:
                raise ValueError
            return max(1, math.ceil(total * percent / 100))
        count = int(text)
    except ValueError:
        raise RemediateError(
            f"{option} {spec!r}: expected a positive count or a percentage (N or N%)"
        ) from None
    if count < 1:
        raise RemediateError(f"{option} {spec!r}: expected a positive count or a percentage")
    return count


@dataclass(frozen=True)
class Rollout:
    """How to split an apply: the canary's size, the later batches' sizes, the failure budget."""

    canary: Size | None = None
    serial: Sequence[Size] = ()
    max_failures: int | None = None

    def __post_init__(self) -> None:
        """Bad sizes are refused here, before anything is planned or written."""
        if self.max_failures is not None and self.max_failures < 0:
            raise RemediateError(f"--max-failures {self.max_failures}: must be zero or more")
        if self.canary is not None:
            size_of(self.canary, 1, "--canary")
        for spec in self.serial:
            size_of(spec, 1, "--batch")

    def batches(self, changes: Sequence[Change]) -> list[list[Change]]:
        """The changes in batches of members, in plan order."""
        members: list[str] = []
        of: dict[str, list[Change]] = {}
        for change in changes:
            key = member(change)
            if key not in of:
                members.append(key)
                of[key] = []
            of[key].append(change)
        total = len(members)
        sizes: list[int] = []
        if self.canary is not None:
            sizes.append(size_of(self.canary, total, "--canary"))
        later = [size_of(spec, total, "--batch") for spec in self.serial] or [total]
        while sum(sizes) < total:
            sizes.append(later[min(len(sizes) - (self.canary is not None), len(later) - 1)])
        batches: list[list[Change]] = []
        start = 0
        for size in sizes:
            chosen = members[start : start + size]
            start += size
            if chosen:
                batches.append([change for key in chosen for change in of[key]])
        return batches

    def failures(self, outcomes: Sequence[Outcome], checks: Sequence[Verification]) -> set[str]:
        """The members of a batch that failed: their apply, or a probe that did not verify."""
        failed = {member(o.change) for o in outcomes if o.status is Status.FAILED}
        owners = {o.change.resource: member(o.change) for o in outcomes}
        for check in checks:
            if check.status != VERIFIED:
                failed.add(owners.get(check.resource, check.resource))
        return failed

    def halt(self, first: bool, failed: set[str], total_failed: int) -> str:
        """Why the rollout stops after a batch ("" when it goes on)."""
        if first and self.canary is not None and failed:
            return f"the canary did not verify ({', '.join(sorted(failed))})"
        if self.max_failures is not None and total_failed > self.max_failures:
            return f"{total_failed} failed, more than --max-failures {self.max_failures}"
        return ""
