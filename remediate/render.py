"""Plans and results for people (Terraform-style text) and for scripts (versioned JSON)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from itertools import groupby
from typing import Any

from remediate.executors import Outcome, Status
from remediate.model import FORMAT_VERSION, Change, Plan


def _value(value: Any) -> str:
    return json.dumps(value)


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def plan_text(plan: Plan) -> str:
    """The plan as a reviewer reads it: one block per resource, `~ attribute = before -> after`
    with the reason in words, then findings, exclusions and a one-line total."""
    lines: list[str] = []
    if plan.changes:
        lines.append("remediate will perform the following changes:")
        lines.append("")
    ordered = sorted(plan.changes, key=lambda c: (c.provider.value, c.location, c.name, c.resource))
    for resource, group in groupby(ordered, key=lambda c: c.resource):
        changes = list(group)
        first = changes[0]
        kind = first.context.get("kind", "resource")
        where = f" ({first.location})" if first.location else ""
        lines.append(
            f"  # {first.provider.value} {kind} {first.name}{where} will be updated in-place"
        )
        lines.append(f"  ~ {resource}")
        for change in changes:
            if change.diff:
                # Whole-file values (Nginx) read better as the diff than as before -> after.
                lines.append(f"      ~ {change.attribute}")
            else:
                values = f"{_value(change.before)} -> {_value(change.after)}"
                lines.append(f"      ~ {change.attribute} = {values}")
            lines.append(f"        # {change.reason}")
            for path, diff in (change.diff or {}).items():
                lines.append(f"        --- diff of {path}")
                lines.extend(f"        {row}" for row in diff.rstrip("\n").splitlines())
        lines.append("")
    if plan.findings:
        lines.append("Findings that need a person (not changed):")
        for finding in plan.findings:
            where = f" ({finding.location})" if finding.location else ""
            lines.append(f"  ! {finding.provider.value} {finding.name or finding.resource}{where}")
            lines.append(f"      {finding.message}")
        lines.append("")
    if plan.excluded:
        lines.append("Exclusions:")
        for item in plan.excluded:
            until = f" until {item.until}" if item.until else ""
            if item.expired:
                lines.append(
                    f"  ! {item.resource}: exclusion expired on {item.until}; "
                    f"its {_plural(item.changes, 'change')} are planned again ({item.reason})"
                )
            else:
                lines.append(
                    f"  - {item.resource}: excluded{until}: {item.reason} "
                    f"({_plural(item.changes, 'change')} held back)"
                )
        lines.append("")
    summary = plan.summary
    if plan.changes:
        total = (
            f"Plan: {_plural(summary['changes'], 'change')} to "
            f"{_plural(summary['resources'], 'resource')}"
        )
    else:
        total = "No changes. The endpoints match the policy"
    lines.append(
        f"{total}, {_plural(summary['findings'], 'finding')}, {summary['excluded']} excluded."
    )
    return "\n".join(lines) + "\n"


def plan_json(plan: Plan) -> str:
    return plan.to_json()


def outcomes_text(outcomes: Sequence[Outcome], run_id: str) -> str:
    lines: list[str] = []
    for outcome in outcomes:
        change = outcome.change
        label = f"{change.provider.value} {change.name or change.resource}: {change.attribute}"
        if change.diff:
            # Whole-file changes (Nginx): the plan showed the diff; name the file, not its text.
            label = f"{change.provider.value} {change.resource}"
        if outcome.status is Status.APPLIED:
            result = "written" if change.diff else f"= {_value(change.after)}"
            lines.append(f"  ✓ {label} {result} (read back)")
        elif outcome.status is Status.DRY_RUN:
            result = "would be written" if change.diff else f"would become {_value(change.after)}"
            lines.append(f"  ~ {label} {result} (dry run)")
        else:
            lines.append(f"  ✗ {label}: {outcome.message}")
    applied = sum(1 for o in outcomes if o.status is Status.APPLIED)
    failed = sum(1 for o in outcomes if o.status is Status.FAILED)
    lines.append(f"Apply: {applied} applied, {failed} failed (run {run_id}).")
    return "\n".join(lines) + "\n"


def outcomes_json(outcomes: Sequence[Outcome], run_id: str, status: str) -> str:
    return (
        json.dumps(
            {
                "format_version": FORMAT_VERSION,
                "run_id": run_id,
                "status": status,
                "outcomes": [_outcome(o) for o in outcomes],
            },
            indent=2,
        )
        + "\n"
    )


def _outcome(outcome: Outcome) -> dict[str, Any]:
    change: Change = outcome.change
    return {
        "provider": change.provider.value,
        "resource": change.resource,
        "attribute": change.attribute,
        "before": change.before,
        "after": change.after,
        "status": outcome.status.value,
        "message": outcome.message,
    }
