"""Endpoints + policy -> Plan. Pure: it neither reads nor writes the world."""

from __future__ import annotations

from datetime import UTC, date, datetime

from remediate import registry
from remediate.inventory import Inventory
from remediate.model import Change, Excluded, Finding, Plan
from remediate.policy import Exclusion, Policy


def plan(inventory: Inventory, policy: Policy, today: date | None = None) -> Plan:
    """The changes that bring `inventory` in line with `policy`, minus live exclusions."""
    today = today or datetime.now(UTC).date()
    result = Plan(
        policy_digest=policy.digest(),
        providers=list(inventory.providers),
        failed_units=list(inventory.failures),
    )
    for endpoint in inventory.endpoints:
        provider = registry.get(endpoint.provider)
        verdict = provider.evaluate(endpoint, policy, inventory.facts)
        if not (verdict.changes or verdict.findings):
            continue
        held: dict[str, tuple[Exclusion, int]] = {}
        excluded_endpoint = _exclusion_for(endpoint.resource, policy.exclude, today)
        if excluded_endpoint is None or excluded_endpoint.expired(today):
            result.findings.extend(
                Finding(
                    provider=endpoint.provider,
                    resource=endpoint.resource,
                    name=endpoint.name,
                    location=endpoint.location,
                    message=note.message,
                    rule=note.rule,
                    severity=provider.rule(note.rule).severity,
                )
                for note in verdict.findings
            )
        for desired in verdict.changes:
            resource = desired.resource or endpoint.resource
            exclusion = _exclusion_for(resource, policy.exclude, today) or excluded_endpoint
            if exclusion is not None:
                _, count = held.get(resource, (exclusion, 0))
                held[resource] = (exclusion, count + 1)
                if not exclusion.expired(today):
                    continue
            result.changes.append(
                Change(
                    provider=endpoint.provider,
                    kind=desired.kind or endpoint.kind,
                    resource=resource,
                    attribute=desired.attribute,
                    before=desired.before,
                    after=desired.after,
                    reason=desired.reason,
                    rules=desired.rules,
                    executor=provider.default_executor,
                    fingerprint=endpoint.fingerprint,
                    target=desired.target or provider.target(endpoint),
                    name=endpoint.name,
                    location=endpoint.location,
                    diff=desired.diff,
                )
            )
        if excluded_endpoint is not None and not verdict.changes:
            held[endpoint.resource] = (excluded_endpoint, 0)
        result.excluded.extend(
            Excluded(
                provider=endpoint.provider,
                resource=resource,
                match=exclusion.match,
                reason=exclusion.reason,
                until=exclusion.until,
                expired=exclusion.expired(today),
                changes=count,
            )
            for resource, (exclusion, count) in held.items()
        )
    return result


def _exclusion_for(resource: str, exclusions: list[Exclusion], today: date) -> Exclusion | None:
    """The exclusion that governs `resource`: a live one wins over an expired one."""
    matching = [item for item in exclusions if item.matches(resource)]
    live = [item for item in matching if not item.expired(today)]
    chosen = live or matching
    return chosen[0] if chosen else None
