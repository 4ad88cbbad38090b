"""The pulumi executor: a plan's AWS and GCP changes applied through a Pulumi remediation stack.

Driven through the Automation API with the inline program of `remediate.pulumi.remediation`:
`apply --dry-run` runs `pulumi preview` and streams its diff to stderr; `apply` runs `pulumi up`
twice (adopt the resources not yet in the stack's state with `import_` and their observed values,
then set them to the plan's values), so the stack's history records each run and no resource is
adopted twice. Reads (fingerprints before, values after) go through the native read side.

The stack is `remediation` of project `remediate`, in `PULUMI_BACKEND_URL` when set, else a local
file backend under remediate's state directory (`PULUMI_CONFIG_PASSPHRASE` defaults to empty there).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from remediate import childguard, executors, registry
from remediate.errors import RemediateError, require
from remediate.executors import Outcome, Settings, Status, confirmed
from remediate.journal import default_state_dir
from remediate.model import Change
from remediate.progress import Progress

if TYPE_CHECKING:
    from remediate.pulumi.remediation import Declaration

STACK = "remediation"
PROJECT = "remediate"


def require_cli() -> str:
    """The `pulumi` binary the Automation API drives, and the SDKs the program needs; one clear
    line when either is missing."""
    require("pulumi", "the pulumi executor")
    found = shutil.which("pulumi")
    if found is None:
        raise RemediateError(
            "the pulumi executor needs the Pulumi CLI: install it "
            "(https://www.pulumi.com/docs/iac/download-install/) and put `pulumi` on PATH"
        )
    return found


class PulumiExecutor:
    name = "pulumi"

    def __init__(self, settings: Settings, progress: Progress) -> None:
        require_cli()
        self._settings = settings
        self._progress = progress
        self._state_dir = settings.state_dir or default_state_dir()
        self._native: dict[str, executors.Executor] = {}

    def _by_provider(self, changes: Sequence[Change]) -> dict[str, list[Change]]:
        groups: dict[str, list[Change]] = defaultdict(list)
        for change in changes:
            groups[change.provider].append(change)
        return groups

    def _reader(self, name: str) -> executors.Executor:
        """The provider's own executor, which reads what the stack wrote."""
        provider = registry.get(name)
        if self.name not in provider.executors():
            raise RemediateError(f"the pulumi executor does not apply {name} changes")
        if name not in self._native:
            self._native[name] = executors.get(
                provider.default_executor, self._settings, self._progress
            )
        return self._native[name]

    def fingerprints(self, changes: Sequence[Change]) -> dict[str, str | None]:
        found: dict[str, str | None] = {}
        for provider, group in self._by_provider(changes).items():
            found.update(self._reader(provider).fingerprints(group))
        return found

    def current(self, changes: Sequence[Change]) -> dict[tuple[str, str], object]:
        found: dict[tuple[str, str], object] = {}
        for provider, group in self._by_provider(changes).items():
            reader = self._reader(provider)
            if not isinstance(reader, executors.ReadsCurrent):
                raise RemediateError(f"{reader.name} cannot read current values")
            found.update(reader.current(group))
        return found

    def _stack(self, program: Any) -> Any:
        from pulumi import automation as auto

        backend = os.environ.get("PULUMI_BACKEND_URL")
        env: dict[str, str] = {}
        if backend is None:
            directory = self._state_dir / "pulumi"
            directory.mkdir(parents=True, exist_ok=True)
            backend = directory.as_uri()
            env["PULUMI_CONFIG_PASSPHRASE"] = os.environ.get("PULUMI_CONFIG_PASSPHRASE", "")
        settings = auto.ProjectSettings(
            name=PROJECT, runtime="python", backend=auto.ProjectBackend(url=backend)
        )
        # The Pulumi CLI (and the engine, language host and plugins it starts) dies with
        # remediate: the Automation API runs `<root>/bin/pulumi`, here a guard around the real one.
        guard = self._state_dir / "pulumi" / "guard"
        childguard.wrapper(guard / "bin", Path(require_cli()))
        try:
            return auto.create_or_select_stack(
                stack_name=STACK,
                project_name=PROJECT,
                program=program,
                opts=auto.LocalWorkspaceOptions(
                    project_settings=settings,
                    env_vars=env,
                    pulumi_command=auto.PulumiCommand(root=str(guard)),
                ),
            )
        except auto.CommandError as exc:
            raise RemediateError(f"pulumi: cannot open stack {STACK}: {_first_line(exc)}") from None

    def apply(
        self, changes: Sequence[Change], dry_run: bool = False, steps: executors.Steps | None = None
    ) -> list[Outcome]:
        from pulumi import automation as auto

        from remediate.provider import UnsupportedChangeError
        from remediate.pulumi.remediation import declarations, declare

        try:
            wanted = declarations(changes)
        except UnsupportedChangeError as exc:
            raise RemediateError(f"the pulumi executor cannot apply {exc}") from None
        adopting: set[str] = set()
        everything: list[Declaration] = []

        def program() -> None:
            declare(everything, adopting)

        stack = self._stack(program)
        earlier, adopted = _stack_contents(stack)
        merged = dict(earlier)
        for item in wanted:
            merged[item.resource] = (
                merged[item.resource].merged(item) if item.resource in merged else item
            )
        everything.extend(merged.values())
        adopting.update(item.resource for item in wanted if item.import_id not in adopted)

        def stream(line: str) -> None:
            sys.stderr.write(line)

        unit = steps or executors.NoSteps()
        begun = False
        try:
            if dry_run:
                preview = stack.preview(on_output=stream, diff=True)
                summary = _summary(preview.change_summary)
                return [
                    Outcome(change, Status.DRY_RUN, f"pulumi preview: {summary}")
                    for change in changes
                ]
            self._progress.update("pulumi", f"adopting {len(adopting)} resource(s)")
            stack.up(on_output=stream)
            adopting.clear()
            # One stack update writes every change: it is one unit for the journal.
            unit.begin(changes)
            begun = True
            self._progress.update("pulumi", "setting the plan's values")
            stack.up(on_output=stream)
            unit.end(changes)
            self._progress.done("pulumi", f"stack {STACK} updated")
        except auto.CommandError as exc:
            message = f"pulumi: {_first_line(exc)}"
            if begun:
                unit.end(changes, message)
            return [Outcome(change, Status.FAILED, message) for change in changes]
        observed = self.current(changes)
        outcomes: list[Outcome] = []
        for change in changes:
            value = observed.get((change.resource, change.attribute))
            outcomes.append(confirmed(change, value, value == change.after))
        return outcomes


def _stack_contents(stack: Any) -> tuple[dict[str, Declaration], set[str]]:
    """What earlier runs declared (their stack output), and the ids in the stack's state."""
    from remediate.pulumi.remediation import Declaration

    outputs = stack.outputs()
    raw = outputs["declarations"].value if "declarations" in outputs else "[]"
    earlier = {item["resource"]: Declaration.from_json(item) for item in json.loads(raw)}
    state = stack.export_stack().deployment or {}
    adopted = {res.get("id") for res in state.get("resources", []) if res.get("id")}
    return earlier, adopted


def _summary(counts: dict[Any, int] | None) -> str:
    if not counts:
        return "no changes"
    return ", ".join(f"{count} to {getattr(op, 'value', op)}" for op, count in counts.items())


def _first_line(exc: Exception) -> str:
    """The first `error:` line of a failed CLI run, else its first line. A `CommandError` reads
    `code: N`, then `stdout: ` and `stderr: ` each before the first line of that stream."""
    lines = [
        line.strip().removeprefix("stdout:").removeprefix("stderr:").strip()
        for line in str(exc).splitlines()
    ]
    errors = [line for line in lines if line.startswith("error:")]
    found = errors or [line for line in lines if line]
    return found[0] if found else type(exc).__name__
