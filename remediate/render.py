"""Plans and results for people (Terraform-style text) and for scripts (versioned JSON)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from itertools import groupby
from typing import Any

from remediate.clients import losing_access_lines
from remediate.correction import Item, Report
from remediate.executors import Outcome, Status
from remediate.journal import Run
from remediate.model import FORMAT_VERSION, Change, Plan
from remediate.provider import Provider
from remediate.units import FailedUnit


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
    ordered = sorted(plan.changes, key=lambda c: (c.provider, c.location, c.name, c.resource))
    for resource, group in groupby(ordered, key=lambda c: c.resource):
        changes = list(group)
        first = changes[0]
        kind = first.kind
        where = f" ({first.location})" if first.location else ""
        lines.append(f"  # {first.provider} {kind} {first.name}{where} will be updated in-place")
        lines.append(f"  ~ {resource}")
        for change in changes:
            if change.diff:
                # Whole-file values (Nginx) read better as the diff than as before -> after.
                lines.append(f"      ~ {change.attribute}")
            else:
                values = f"{_value(change.before)} -> {_value(change.after)}"
                lines.append(f"      ~ {change.attribute} = {values}")
            lines.append(f"        # {change.reason}")
            lines.extend(f"        # {row}" for row in losing_access_lines(change))
            for path, diff in (change.diff or {}).items():
                lines.append(f"        --- diff of {path}")
                lines.extend(f"        {row}" for row in diff.rstrip("\n").splitlines())
        lines.append("")
    if plan.findings:
        lines.append("Findings that need a person (not changed):")
        for finding in plan.findings:
            where = f" ({finding.location})" if finding.location else ""
            lines.append(f"  ! {finding.provider} {finding.name or finding.resource}{where}")
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
    if plan.failed_units:
        lines.append(
            f"Not read ({_plural(len(plan.failed_units), 'unit')} failed; "
            "this plan covers the others only):"
        )
        lines.extend(f"  x {item.unit}: {item.reason}" for item in plan.failed_units)
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


def not_applied_text(changes: Sequence[Change], halted: str, unread: Sequence[Change] = ()) -> str:
    """The changes a halted rollout did not reach, and the changes of a saved plan whose provider
    could not read every unit now (a later apply of the same plan applies both)."""
    lines: list[str] = []
    if halted:
        lines.append(f"Not applied ({halted}):")
        lines += [f"  - {c.provider} {c.name or c.resource}: {c.attribute}" for c in changes]
    if unread:
        lines.append(
            "Not applied (not found now, and some units of their provider could not be read):"
        )
        lines += [f"  - {c.provider} {c.name or c.resource}: {c.attribute}" for c in unread]
    return "\n".join(lines) + "\n" if lines else ""


def outcomes_text(outcomes: Sequence[Outcome], run_id: str) -> str:
    lines: list[str] = []
    for outcome in outcomes:
        change = outcome.change
        label = f"{change.provider} {change.name or change.resource}: {change.attribute}"
        if change.diff:
            # Whole-file changes (Nginx): the plan showed the diff; name the file, not its text.
            label = f"{change.provider} {change.resource}"
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


def outcomes_json(
    outcomes: Sequence[Outcome],
    run_id: str,
    status: str,
    verification: list[dict[str, Any]] | None = None,
    *,
    not_applied: Sequence[Change] = (),
    halted: str = "",
    failed_units: Sequence[FailedUnit] = (),
    unread: Sequence[Change] = (),
) -> str:
    """The apply result; `verification` (the probes of the changed endpoints) when they ran;
    `not_applied`, the changes a halted rollout did not reach, and why it halted;
    `failed_units` when some units (accounts in a region...) could not be read, and `unread`, a
    saved plan's changes left out because of them (`not_read` in the document)."""
    document: dict[str, Any] = {
        "format_version": FORMAT_VERSION,
        "run_id": run_id,
        "status": status,
        "outcomes": [_outcome(o) for o in outcomes],
    }
    if verification is not None:
        document["verification"] = verification
    if halted:
        document["halted"] = halted
        document["not_applied"] = [
            {"provider": c.provider, "resource": c.resource, "attribute": c.attribute}
            for c in not_applied
        ]
    if unread:
        document["not_read"] = [
            {"provider": c.provider, "resource": c.resource, "attribute": c.attribute}
            for c in unread
        ]
    if failed_units:
        document["failed_units"] = [item.model_dump(mode="json") for item in failed_units]
    return json.dumps(document, indent=2) + "\n"


def _outcome(outcome: Outcome) -> dict[str, Any]:
    change: Change = outcome.change
    return {
        "provider": change.provider,
        "resource": change.resource,
        "attribute": change.attribute,
        "before": change.before,
        "after": change.after,
        "status": outcome.status.value,
        "message": outcome.message,
    }


_MARKS = {"fixed": "✓", "failed": "✗", "not-fixed": "~", "refused": "!"}
_DRIFT_VERDICTS = {
    "clean": "no drift: the endpoints match the policy",
    "drift": "drift found, not fixed (run with --fix to correct it)",
    "fixed": "drift fixed and read back",
    "partial": "drift partly fixed; some changes failed",
    "failed": "drift found; every fix failed",
    "refused": "drift found, not fixed: refused by the --max-changes guardrail",
    "error": "the run failed",
}


def _when(iso: str) -> str:
    """An ISO timestamp as `2026-11-23 13:15 UTC` for people."""
    return iso[:16].replace("T", " ") + " UTC"


def _change_label(change: Change) -> str:
    where = f" ({change.location})" if change.location else ""
    return f"{change.provider} {change.name or change.resource}{where}"


def _change_lines(change: Change, indent: str) -> list[str]:
    if change.diff:
        lines = [f"{indent}~ {change.attribute}"]
        for path, diff in change.diff.items():
            lines.append(f"{indent}  --- diff of {path}")
            lines.extend(f"{indent}  {row}" for row in diff.rstrip("\n").splitlines())
        return lines
    return [f"{indent}~ {change.attribute} = {_value(change.before)} -> {_value(change.after)}"]


def recurring_text(item: Item) -> str:
    if item.recurring is None:
        return ""
    dates = ", ".join(_when(at) for at in item.recurring.fixed_at)
    return (
        f"recurring: drifted back {_plural(item.recurring.count, 'time')} after being fixed "
        f"on {dates} (runs {', '.join(item.recurring.runs)})"
    )


def drift_text(report: Report) -> str:
    """A drift pass as a scheduler's log or mail shows it: every drifted attribute, what was done
    about it, recurrences, then one verdict line with the run id."""
    providers = ", ".join(report.providers)
    lines = [f"Drift check at {_when(report.started_at)} ({providers}), run {report.run_id}"]
    for item in sorted(
        report.items, key=lambda i: (i.change.provider, i.change.location, i.change.name)
    ):
        status = item.status.replace("-", " ")
        message = f": {item.message}" if item.message and item.status == "failed" else ""
        lines.append(f"  {_MARKS[item.status]} {_change_label(item.change)}: {status}{message}")
        lines.append(f"      {item.change.resource}")
        lines.extend(_change_lines(item.change, "      "))
        lines.append(f"        # {item.change.reason}")
        if item.recurring is not None:
            lines.append(f"      ! {recurring_text(item)}")
    summary = report.summary()
    if report.items:
        recurring = f", {summary['recurring']} recurring" if summary["recurring"] else ""
        lines.append(
            f"{_plural(summary['changes'], 'change')} to {_plural(summary['drifted'], 'resource')}"
            f": {summary['fixed']} fixed, {summary['failed']} failed, "
            f"{summary['not-fixed'] + summary['refused']} not fixed{recurring}."
        )
    if report.findings or report.excluded:
        lines.append(
            f"{_plural(report.findings, 'finding')} and {report.excluded} excluded "
            "(see `remediate plan`)."
        )
    verdict = _DRIFT_VERDICTS[report.status]
    if report.error:
        verdict += f": {report.error}"
    lines.append(f"Drift: {verdict}.")
    return "\n".join(lines) + "\n"


def drift_json(report: Report, indent: int | None = 2) -> str:
    """A drift pass for scripts; `--every` prints one per line (indent None)."""
    document = {
        "format_version": FORMAT_VERSION,
        "kind": "drift",
        "run_id": report.run_id,
        "started_at": report.started_at,
        "status": report.status,
        "exit_code": report.exit_code,
        "error": report.error or None,
        "summary": report.summary(),
        "changes": [
            {
                **item.change.model_dump(mode="json", exclude_none=True),
                "status": item.status,
                "message": item.message,
                "recurring": None
                if item.recurring is None
                else {
                    "count": item.recurring.count,
                    "fixed_at": item.recurring.fixed_at,
                    "runs": item.recurring.runs,
                },
            }
            for item in report.items
        ],
    }
    return json.dumps(document, indent=indent) + "\n"


def history_text(runs: Sequence[Run]) -> str:
    """The journal as a table, newest first."""
    if not runs:
        return "No runs recorded yet.\n"
    rows = [("RUN", "KIND", "STARTED", "BY", "STATUS", "CHANGES")]
    for run in runs:
        counts = ", ".join(f"{count} {outcome}" for outcome, count in sorted(run.outcomes.items()))
        rows.append(
            (
                run.id,
                run.kind,
                _when(run.started_at),
                f"{run.user}@{run.host}",
                run.status,
                counts or "-",
            )
        )
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]) - 1)]
    return "".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=False))
        + f"  {row[-1]}\n"
        for row in rows
    )


def run_text(run: Run) -> str:
    """One run in full: who, when, which policy, and every change with its outcome."""
    lines = [
        f"Run {run.id}: {run.kind}, {run.status}",
        f"  started   {run.started_at}",
        f"  finished  {run.finished_at or '(not finished)'}",
        f"  by        {run.user} on {run.host}"
        + (f" (pid {run.pid}, shard {run.shard})" if run.shard else ""),
        f"  policy    {run.policy_digest}",
    ]
    if "rollback_of" in run.summary:
        lines.append(f"  rolls back run {run.summary['rollback_of']}")
    if run.summary.get("error"):
        lines.append(f"  error     {run.summary['error']}")
    if run.changes:
        lines.append("")
    for recorded in run.changes:
        change = recorded.change
        message = f": {recorded.message}" if recorded.message else ""
        lines.append(f"  {_change_label(change)}: {recorded.outcome}{message}")
        lines.append(f"      {change.resource}")
        lines.extend(_change_lines(change, "      "))
    if any(recorded.outcome == "applied" for recorded in run.changes):
        lines.append("")
        lines.append(f"Undo with: remediate rollback {run.id}")
    return "\n".join(lines) + "\n"


def history_json(runs: Sequence[Run]) -> str:
    return (
        json.dumps(
            {"format_version": FORMAT_VERSION, "runs": [run.to_dict() for run in runs]}, indent=2
        )
        + "\n"
    )


def run_json(run: Run) -> str:
    return (
        json.dumps(
            {"format_version": FORMAT_VERSION, "run": run.to_dict(with_changes=True)}, indent=2
        )
        + "\n"
    )


def provider_dict(provider: Provider) -> dict[str, Any]:
    """A provider's metadata as `remediate providers --format json` prints it."""
    return {
        "name": provider.name,
        "title": provider.title,
        "extra": provider.extra,
        "executors": sorted(provider.executors()),
        "default_executor": provider.default_executor,
        "kinds": list(provider.kinds),
        "rules": [
            {
                "id": rule.id,
                "title": rule.title,
                "severity": rule.severity.value,
                "remediation": rule.remediation,
                "url": rule.url,
                "fixes": rule.fixes,
            }
            for rule in provider.rules
        ],
    }


def provider_text(provider: Provider) -> str:
    executors = ", ".join(
        f"{name} (default)" if name == provider.default_executor else name
        for name in sorted(provider.executors())
    )
    lines = [f"{provider.name}: {provider.title}; executors: {executors}"]
    for rule in provider.rules:
        what = "fixes" if rule.fixes else "reports"
        lines.append(f"  {rule.id:<28} {rule.severity.value:<6} {what:<7} {rule.title}")
    return "\n".join(lines) + "\n\n"
