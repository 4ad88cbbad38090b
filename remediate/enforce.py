"""Apply enforces the policy, not the file: a saved plan is checked against a fresh plan.

A saved plan can be edited between review and apply (a CI artifact, a shared directory), so its
content is not trusted. Before anything is written, the providers it touches are discovered again
and planned with the policy in force; each saved change must be a change of that fresh plan: the
same resource, attribute and `after`, for a resource whose state has not moved. That makes "what
the rules would choose" exact for every provider at once, and it also bounds where a write can go:
only resources discovery reports now (for Nginx, hosts of the inventory and files of the tree the
host's own `nginx -T` reports) can appear in a fresh plan. What is applied is then the fresh plan's
change; a saved change whose target (where the executor writes) differs from the fresh one is
refused too.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from remediate.errors import RemediateError
from remediate.inventory import Inventory
from remediate.model import Change, Endpoint, Plan
from remediate.targets import HostFile

# Executors a saved change may name besides the provider's own: pulumi writes AWS and GCP.
ALTERNATIVE_EXECUTORS = frozenset({"pulumi"})


@dataclass(frozen=True)
class Violation:
    """A saved change the policy in force would not make, and why."""

    change: Change
    why: str

    def __str__(self) -> str:
        return f"{self.change.resource} {self.change.attribute}: {self.why}"


class PolicyViolationError(RemediateError):
    """A saved plan asks for changes the policy in force would not make: refused whole."""

    def __init__(self, violations: list[Violation]) -> None:
        self.violations = violations
        listed = "; ".join(str(violation) for violation in violations)
        super().__init__(
            f"plan refused: {len(violations)} change(s) are not what the policy in force would "
            f"make ({listed}); nothing was applied"
        )


@dataclass(frozen=True)
class Checked:
    """The fresh plan's changes that the saved plan asked for, the resources that moved, and the
    saved changes that cannot be checked now because a unit of their provider could not be read
    (an account whose role fails today): those are not applied, the others are."""

    changes: list[Change]
    moved: list[str]
    unread: list[Change]


def check(saved: Plan, fresh: Plan, inventory: Inventory) -> Checked:
    """Match each change of `saved` with the change `fresh` (planned from `inventory`) makes.

    Raises PolicyViolationError naming every change that does not match. Resources whose state
    moved since the plan are returned in `moved` (the plan is stale, not tampered with). A change
    on a resource discovery did not find, of a provider some of whose units could not be read, is
    returned in `unread`: it may live in such a unit, so it is neither applied nor judged."""
    unreadable = {failure.provider for failure in inventory.failures}
    wanted = {(change.resource, change.attribute): change for change in fresh.changes}
    endpoints = {endpoint.resource: endpoint for endpoint in inventory.endpoints}
    excluded = {item.resource for item in fresh.excluded if not item.expired}
    violations: list[Violation] = []
    moved: list[str] = []
    matched: list[Change] = []
    unread: list[Change] = []
    for change in saved.changes:
        owner, part = _owner(change.resource, endpoints)
        if owner is None and change.provider in unreadable:
            unread.append(change)
            continue
        if owner is None or owner.provider != change.provider:
            why = f"discovery finds no such {change.provider} resource now"
            if isinstance(change.target, HostFile) and change.target.host not in endpoints:
                why += f" (no host {change.target.host} in the inventory)"
            violations.append(Violation(change, why))
            continue
        if part is not None and part not in owner.settings:
            violations.append(
                Violation(change, f"{part} is not part of what {owner.resource} reports")
            )
            continue
        if owner.fingerprint != change.fingerprint:
            if change.resource not in moved:
                moved.append(change.resource)
            continue
        fresh_change = wanted.get((change.resource, change.attribute))
        mismatch = _mismatch(change, fresh_change, owner, part, excluded)
        if mismatch is not None:
            violations.append(Violation(change, mismatch))
            continue
        assert fresh_change is not None
        # The saved target equals the fresh one but for concurrency tokens, which stay as
        # planned: a resource edited since is the executor's to re-read (a stale token).
        matched.append(
            fresh_change.model_copy(update={"executor": change.executor, "target": change.target})
        )
    if violations:
        raise PolicyViolationError(violations)
    return Checked(matched, moved, unread)


def _owner(resource: str, endpoints: dict[str, Endpoint]) -> tuple[Endpoint | None, str | None]:
    """The endpoint `resource` is, or belongs to (`host:path` belongs to host), and the part."""
    if resource in endpoints:
        return endpoints[resource], None
    head, sep, part = resource.partition(":")
    if sep and head in endpoints:
        return endpoints[head], part
    return None, None


def _mismatch(
    change: Change,
    fresh: Change | None,
    owner: Endpoint,
    part: str | None,
    excluded: set[str],
) -> str | None:
    if change.resource in excluded or owner.resource in excluded:
        return "the policy in force excludes this resource"
    if fresh is None:
        if part is None and change.attribute not in owner.settings:
            return f"{change.attribute} is not an attribute remediate manages"
        return f"the policy in force asks no change of {change.attribute}"
    if fresh.after != change.after:
        chosen = _shown(fresh.after)
        return f"{_shown(change.after)} is not what the policy in force chooses ({chosen})"
    if _where(change) != _where(fresh) or change.kind != fresh.kind:
        return "its target is not the one discovery reports for this resource"
    if change.executor not in {fresh.executor, *ALTERNATIVE_EXECUTORS}:
        return f"executor {change.executor!r} does not write {change.provider} resources"
    return None


def _where(change: Change) -> dict[str, Any]:
    """A change's target without its concurrency tokens (fields named `*fingerprint`): what
    says where the write goes, which must be what discovery reports."""
    return {
        key: value
        for key, value in change.target.model_dump().items()
        if not key.endswith("fingerprint")
    }


def _shown(value: Any) -> str:
    """A value for a one-line message: file texts are summarised, not printed."""
    if isinstance(value, str) and ("\n" in value or len(value) > 80):
        return f"a text of {len(value)} characters"
    return repr(value)
