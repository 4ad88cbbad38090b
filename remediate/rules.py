"""Desired settings from policy + observed facts: pure functions shared by the planner, the Pulumi
transforms and the CrossGuard policy pack, so the three can never disagree.

Each provider's `rules` module has an `evaluate(endpoint, policy, facts)` that returns a `Verdict`;
the rule ids it cites are the ones its provider declares (`Provider.rules`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from remediate.errors import RemediateError
from remediate.policy import TLS_VERSIONS, tls_key
from remediate.targets import Target


class RuleError(RemediateError):
    """The policy cannot be met as written (for example an explicit SSL policy that is too weak)."""


@dataclass(frozen=True)
class Desired:
    """One attribute that should change, the rule that wants it, and why, in words a reviewer
    understands.

    `resource` names a sub-resource when one endpoint's verdict changes several (an Nginx host's
    files, `host:path`), with its own `kind` and `target`; by default the change applies to the
    endpoint itself.
    """

    attribute: str
    before: Any
    after: Any
    reason: str
    rules: tuple[str, ...]
    diff: dict[str, str] | None = None
    resource: str | None = None
    kind: str | None = None
    target: Target | None = None


@dataclass(frozen=True)
class Note:
    """A finding: something a person must look at, from the rule `rule`."""

    rule: str
    message: str


@dataclass(frozen=True)
class Verdict:
    changes: list[Desired] = field(default_factory=list)
    findings: list[Note] = field(default_factory=list)


def weak_versions(accepted: Iterable[str], minimum: str) -> list[str]:
    """The accepted TLS versions below `minimum`, oldest first ("1.0", "1.1", ...)."""
    return sorted({v for v in accepted if tls_key(v) < tls_key(minimum)}, key=tls_key)


def versions_from(minimum: str) -> list[str]:
    """Every TLS version at or above `minimum`."""
    return [v for v in TLS_VERSIONS if tls_key(v) >= tls_key(minimum)]


def accepts_phrase(versions: Iterable[str]) -> str:
    """`["1.0", "1.1"]` as "accepts TLS 1.0, 1.1"."""
    return "accepts TLS " + ", ".join(sorted(versions, key=tls_key))
