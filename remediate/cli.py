"""The `remediate` command: parse arguments, call the library, render. Nothing else lives here."""

from __future__ import annotations

import atexit
import functools
import gc
import json
import sys
from collections.abc import Sequence
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from remediate import correction as drift_module
from remediate import engine, registry, render, verification
from remediate import policy as policy_module
from remediate import undo as rollback_module
from remediate.errors import RemediateError
from remediate.journal import RUN_KINDS, Journal
from remediate.model import Plan
from remediate.policy import Policy
from remediate.progress import reporter
from remediate.units import FailedUnit, Selection

app = typer.Typer(
    help="Find and fix edge endpoints that make clients fail with 426 Upgrade Required, "
    "TLS handshake errors or broken WebSockets.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
policy_app = typer.Typer(
    help="Validate the policy file or print its JSON Schema.", no_args_is_help=True
)
app.add_typer(policy_app, name="policy")
playbooks_app = typer.Typer(
    help="The Ansible playbooks remediate runs on Nginx hosts.", no_args_is_help=True
)
app.add_typer(playbooks_app, name="playbooks")

DEFAULT_POLICY = Path("remediate.yaml")
EXIT_CHANGES = 2
EXIT_PARTIAL = 3


class Format(StrEnum):
    TEXT = "text"
    JSON = "json"


PolicyOption = Annotated[
    Path, typer.Option("--policy", "-p", help="Policy file.", show_default=True)
]
OnlyOption = Annotated[
    str | None,
    typer.Option("--only", help="Comma-separated providers (remediate providers lists them)."),
]
QuietOption = Annotated[bool, typer.Option("--quiet", "-q", help="No progress on stderr.")]
StateDirOption = Annotated[
    Path | None,
    typer.Option("--state-dir", help="Where the run journal lives (default: the user state dir)."),
]
FormatOption = Annotated[Format, typer.Option("--format", help="Output format.")]
WaitOption = Annotated[
    bool,
    typer.Option("--wait", help="When another run is applying, wait for it instead of exiting 1."),
]


AccountOption = Annotated[
    list[str] | None,
    typer.Option(
        "--account", metavar="ID|NAME", help="Only this account (id or name); repeat for more."
    ),
]
AccountTagOption = Annotated[
    list[str] | None,
    typer.Option(
        "--account-tag", metavar="KEY=VALUE", help="Only accounts with this tag; repeatable."
    ),
]
ParallelOption = Annotated[
    int | None,
    typer.Option(
        "--parallel", metavar="N", help="Units (account x region) read at once (8 by default)."
    ),
]
ShardOption = Annotated[
    str | None,
    typer.Option(
        "--shard",
        metavar="I/N",
        help="Run shard I/N of the units (default: JOB_COMPLETION_INDEX with --shard-count).",
    ),
]
ShardCountOption = Annotated[
    int | None,
    typer.Option(
        "--shard-count",
        metavar="N",
        envvar="REMEDIATE_SHARDS",
        help="The shard count for JOB_COMPLETION_INDEX.",
    ),
]


def _selection(
    accounts: list[str] | None,
    tags: list[str] | None,
    parallel: int | None,
    shard: str | None,
    shard_count: int | None,
) -> Selection:
    return Selection.parse(accounts or (), tags or (), shard, shard_count, parallel)


def _journal(state_dir: Path | None, selection: Selection) -> Journal:
    """The journal, recording the shard a sharded run covers (history shows it)."""
    sharded = selection.shard.count > 1
    return Journal(state_dir, shard=str(selection.shard) if sharded else "")


def _report_failed_units(result: Plan) -> None:
    """A plan that could not read every unit is not a clean run: say which, and exit 1."""
    if result.failed_units:
        _report_units(result.failed_units)


def _report_units(failed: Sequence[FailedUnit]) -> None:
    for item in failed:
        _err(f"error: {item.unit}: {item.reason}")
    _err(f"{len(failed)} units could not be read; the report covers the others")


def _only(value: str | None) -> list[str] | None:
    if value is None:
        return None
    names = [part.strip() for part in value.split(",") if part.strip()]
    if not names:
        # Scanning nothing would report a clean estate.
        known = ", ".join(registry.names())
        raise RemediateError(f"--only {value!r}: names no provider ({known})")
    return names


def _out(text: str) -> None:
    sys.stdout.write(text)
    sys.stdout.flush()


def _err(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


@app.command()
def plan(
    policy_file: PolicyOption = DEFAULT_POLICY,
    out: Annotated[Path | None, typer.Option("--out", help="Save the plan for apply.")] = None,
    output: FormatOption = Format.TEXT,
    detailed_exitcode: Annotated[
        bool, typer.Option("--detailed-exitcode", help="Exit 2 when changes are pending.")
    ] = False,
    only: OnlyOption = None,
    quiet: QuietOption = False,
    state_dir: StateDirOption = None,
    client_logs: Annotated[
        list[Path] | None,
        typer.Option(
            "--client-logs",
            help="ALB or Nginx access logs: show on each TLS change who would lose access.",
        ),
    ] = None,
    account: AccountOption = None,
    account_tag: AccountTagOption = None,
    parallel: ParallelOption = None,
    shard: ShardOption = None,
    shard_count: ShardCountOption = None,
) -> None:
    """Discover the endpoints, plan the changes and show them as a dry-run diff; exit 1 (with
    the plan of the rest) when an account or another unit could not be read."""
    selection = _selection(account, account_tag, parallel, shard, shard_count)
    policy = policy_module.load(policy_file)
    journal = _journal(state_dir, selection)
    with reporter(quiet) as progress:
        result = engine.plan(
            policy, _only(only), progress, journal=journal, note=_err, selection=selection
        )
    if client_logs:
        from remediate import clients

        analysis = clients.analyze(client_logs)
        for warning in clients.truncation_warnings(analysis):
            _err(warning)
        result = clients.attach(result, analysis, policy.tls.minimum)
    if out is not None:
        result.save(out)
        _err(f"plan saved to {out}; apply it with: remediate apply {out}")
    _out(render.plan_json(result) if output is Format.JSON else render.plan_text(result))
    _report_failed_units(result)
    if result.failed_units:
        raise typer.Exit(1)
    if detailed_exitcode and result.has_changes:
        raise typer.Exit(EXIT_CHANGES)


@app.command()
def apply(
    plan_file: Annotated[
        Path | None, typer.Argument(metavar="[PLAN]", help="A plan saved by `plan --out`.")
    ] = None,
    policy_file: PolicyOption = DEFAULT_POLICY,
    auto_approve: Annotated[
        bool, typer.Option("--auto-approve", help="Apply without asking.")
    ] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show what each executor would do; change nothing.")
    ] = False,
    executor: Annotated[
        str | None, typer.Option("--executor", help="Run every change through this executor.")
    ] = None,
    only: OnlyOption = None,
    output: FormatOption = Format.TEXT,
    quiet: QuietOption = False,
    state_dir: StateDirOption = None,
    wait: WaitOption = False,
    no_verify: Annotated[
        bool, typer.Option("--no-verify", help="Do not probe the changed endpoints afterwards.")
    ] = False,
    canary: Annotated[
        str | None,
        typer.Option(
            "--canary",
            help="Apply to the first N resources or hosts (or N%), verify them live, and go on "
            "only when all verified.",
        ),
    ] = None,
    batch: Annotated[
        str | None,
        typer.Option(
            "--batch",
            help="Then apply in batches of these sizes (Ansible serial: '1,5,20%', the last "
            "repeats), each verified before the next.",
        ),
    ] = None,
    max_failures: Annotated[
        int | None,
        typer.Option(
            "--max-failures", help="Stop the rollout once more than K resources or hosts failed."
        ),
    ] = None,
    account: AccountOption = None,
    account_tag: AccountTagOption = None,
    parallel: ParallelOption = None,
    shard: ShardOption = None,
    shard_count: ShardCountOption = None,
) -> None:
    """Apply a saved plan, or plan and apply (asks first unless --auto-approve).

    A saved plan is checked against the policy in force first: every change must be one a fresh
    plan makes. Then probe the changed endpoints that can be reached (--no-verify skips it); exit
    3 when a change failed or a probe disagrees, 1 when an account (or another unit) could not be
    read (the others are applied), 143/130 when SIGTERM/SIGINT stopped it."""
    selection = _selection(account, account_tag, parallel, shard, shard_count)
    journal = _journal(state_dir, selection)
    serial = [part.strip() for part in (batch or "").split(",") if part.strip()]
    planned: list[Plan] = []
    with reporter(quiet) as progress:
        if plan_file is not None:
            saved = Plan.load(plan_file)
            policy = _policy_for_saved_plan(policy_file)
            result = engine.apply(
                saved,
                policy,
                journal=journal,
                progress=progress,
                only=_only(only),
                executor=executor,
                verify=not no_verify,
                note=_err,
                wait=wait,
                dry_run=dry_run,
                canary=canary,
                serial=serial,
                max_failures=max_failures,
            )
        else:
            policy = policy_module.load(policy_file)

            def show(fresh: Plan) -> None:
                planned.append(fresh)
                if output is Format.TEXT:
                    _out(render.plan_text(fresh))

            def confirm(fresh: Plan) -> bool:
                # A saved plan was reviewed when it was made; a fresh one is asked about.
                if not (auto_approve or dry_run):
                    _confirm(len(fresh.changes))
                return True

            _, result = engine.plan_and_apply(
                policy,
                only=_only(only),
                show=show,
                confirm=confirm,
                journal=journal,
                progress=progress,
                executor=executor,
                verify=not no_verify,
                note=_err,
                wait=wait,
                dry_run=dry_run,
                canary=canary,
                serial=serial,
                max_failures=max_failures,
                selection=selection,
            )
    for fresh in planned:
        _report_failed_units(fresh)
    unread = [item for fresh in planned for item in fresh.failed_units] + result.failed_units
    if result.failed_units:
        _report_units(result.failed_units)
    for recovered in result.recovered:
        _err(f"note: {recovered.line()}")
    if result.status is engine.RunStatus.NOTHING_TO_DO:
        if output is Format.JSON:
            _out(
                render.outcomes_json(
                    [], "", result.status.value, failed_units=unread, unread=result.unread
                )
            )
        else:
            if result.unread:
                _out(render.not_applied_text([], "", result.unread))
            _err("Nothing to apply.")
        if unread:
            raise typer.Exit(1)
        return
    if output is Format.JSON:
        found = None if result.checks is None else [check.to_dict() for check in result.checks]
        _out(
            render.outcomes_json(
                result.outcomes,
                result.run_id,
                result.status.value,
                found,
                not_applied=result.not_reached,
                halted=result.halted,
                failed_units=unread,
                unread=result.unread,
            )
        )
    else:
        _out(render.outcomes_text(result.outcomes, result.run_id))
        _out(verification.results_text(result.checks or []))
        _out(render.not_applied_text(result.not_reached, result.halted, result.unread))
    _exit_for(result)
    if unread:
        raise typer.Exit(1)


def _exit_for(result: engine.ApplyResult) -> None:
    """One exit-code table: 128+signal when stopped, 3 partial (or a live probe disagrees), 1
    when nothing applied."""
    if result.stopped_by is not None:
        _err(
            f"stopped by {result.stopped_by.name} between two writes: {len(result.applied)} "
            f"applied, {len(result.failed)} failed, {len(result.not_started)} not started "
            f"(run {result.run_id})"
        )
        raise typer.Exit(128 + result.stopped_by.value)
    if result.halted:
        _err(f"rollout halted: {result.halted}; {len(result.not_reached)} change(s) not applied")
    if result.status in (engine.RunStatus.PARTIAL, engine.RunStatus.HALTED) or result.probes_failed:
        raise typer.Exit(EXIT_PARTIAL)
    if result.status is engine.RunStatus.FAILED:
        raise typer.Exit(1)


def _policy_for_saved_plan(path: Path) -> Policy:
    """Applying a saved plan checks each change against the policy in force: it needs one."""
    if not path.exists():
        raise RemediateError(
            f"{path}: policy file not found: applying a saved plan checks it against the "
            "policy in force (give it with -p FILE)"
        )
    return policy_module.load(path)


def _policy_for_rollback(path: Path) -> Policy:
    """A rollback restores journaled values (exempt from the policy): the policy file only adds
    executor settings (the Nginx inventory) when present."""
    if path == DEFAULT_POLICY and not path.exists():
        return Policy()
    return policy_module.load(path)


def _confirm(count: int) -> None:
    if not sys.stdin.isatty():
        raise RemediateError(
            "refusing to apply without confirmation: stdin is not a terminal (use --auto-approve)"
        )
    answer = typer.prompt(f"Apply {count} change(s)? Only 'yes' will be accepted", default="")
    if answer.strip() != "yes":
        _err("Apply cancelled; nothing changed.")
        raise typer.Exit(1)


@policy_app.command("check")
def policy_check(file: Annotated[Path, typer.Argument(help="Policy file to validate.")]) -> None:
    """Validate a policy file; exit 1 with the first problem (file, line and field)."""
    loaded = policy_module.load(file)
    providers = ", ".join(loaded.providers) or "none"
    _out(f"{file}: valid (providers: {providers}; TLS minimum {loaded.tls.minimum})\n")


@policy_app.command("schema")
def policy_schema() -> None:
    """Print the policy file's JSON Schema."""
    _out(json.dumps(policy_module.schema(), indent=2) + "\n")


@app.command()
def verify(
    urls: Annotated[list[str], typer.Argument(metavar="URL...", help="Endpoints to probe.")],
    ws_path: Annotated[
        list[str] | None,
        typer.Option("--ws-path", help="Also try a WebSocket handshake on this path (repeat)."),
    ] = None,
    minimum: Annotated[
        str, typer.Option("--min-tls", help="TLS versions below this are problems.")
    ] = "1.2",
    http2: Annotated[
        bool, typer.Option("--http2/--no-http2", help="Whether h2 must be offered.")
    ] = True,
    output: FormatOption = Format.TEXT,
) -> None:
    """Probe live endpoints: TLS versions, ALPN, HTTP/2, status, WebSocket, certificate.

    Exit 0 healthy, 2 problems found, 1 error (bad URL, unreachable host)."""
    from remediate import verify as probes

    probes.check_minimum(minimum)
    parsed = [(url, *probes.parse_url(url)) for url in urls]
    for url, target, _ in parsed:
        probes.reachable(target, url)
    reports = [
        probes.probe(
            target,
            path=path,
            ws_paths=ws_path or [],
            url=url,
            minimum=minimum,
            expect_http2=http2,
        )
        for url, target, path in parsed
    ]
    if output is Format.JSON:
        _out(probes.reports_json(reports))
    else:
        _out("".join(probes.report_text(report) for report in reports))
    if not all(report.healthy for report in reports):
        raise typer.Exit(EXIT_CHANGES)


@app.command()
def diagnose(
    url: Annotated[str, typer.Argument(help="The URL clients fail on.")],
    minimum: Annotated[
        str, typer.Option("--min-tls", help="The TLS floor clients should meet.")
    ] = "1.2",
    output: FormatOption = Format.TEXT,
) -> None:
    """Explain a 426 Upgrade Required at URL, and its neighbours, with what to run or change.

    Covers the protocol the server demands, the TLS floor, h2, WebSocket headers dropped by a
    proxy and 502s after an upgrade. Exit 2 when a problem is found."""
    from remediate import diagnose as triage
    from remediate.verify import check_minimum

    check_minimum(minimum)
    result = triage.diagnose(url, minimum)
    if output is Format.JSON:
        _out(triage.diagnosis_json(result))
    else:
        _out(triage.diagnosis_text(result))
    if not result.healthy:
        raise typer.Exit(EXIT_CHANGES)


@app.command()
def drift(
    policy_file: PolicyOption = DEFAULT_POLICY,
    fix: Annotated[
        bool, typer.Option("--fix", help="Apply the changes that fix the drift.")
    ] = False,
    every: Annotated[
        str | None,
        typer.Option("--every", help="Run again at this interval (30s, 15m, 1h) until stopped."),
    ] = None,
    passes: Annotated[
        int | None, typer.Option("--passes", help="With --every: stop after N passes.")
    ] = None,
    output: FormatOption = Format.TEXT,
    metrics_file: Annotated[
        Path | None,
        typer.Option("--metrics-file", help="Write Prometheus metrics here (textfile collector)."),
    ] = None,
    max_changes: Annotated[
        int | None,
        typer.Option("--max-changes", help="With --fix: refuse to apply more changes."),
    ] = None,
    only: OnlyOption = None,
    wait: WaitOption = False,
    quiet: QuietOption = False,
    state_dir: StateDirOption = None,
) -> None:
    """Check for drift from the policy (for cron, systemd timers, CronJobs), optionally fix it.

    Exit 0 clean (or fixed), 2 drift found and not fixed, 1 error (including a fix refused by
    --max-changes, a failed fix, or another run holding the lock without --wait).
    """
    if passes is not None and (every is None or passes < 1):
        raise RemediateError("--passes takes a number of 1 or more, and only goes with --every")
    policy = policy_module.load(policy_file)
    interval = drift_module.parse_interval(every) if every is not None else None
    journal = Journal(state_dir)
    selected = _only(only)

    def one_pass() -> int:
        with reporter(quiet) as progress:
            report = drift_module.run_once(
                policy,
                journal=journal,
                fix=fix,
                only=selected,
                max_changes=max_changes,
                wait=wait,
                progress=progress,
                note=_err,
            )
        if output is Format.JSON:
            _out(render.drift_json(report, indent=None if interval is not None else 2))
        else:
            _out(render.drift_text(report))
        if metrics_file is not None:
            from remediate import metrics

            metrics.write(metrics_file, report, drift_module.last_success(journal))
        if report.error:
            _err(f"error: {report.error}")
        return report.exit_code

    if interval is None:
        raise typer.Exit(one_pass())

    def collected_pass() -> int:
        # Collections are rare in this process (`_settle`): what a pass leaves in reference
        # cycles is freed before the wait, not passes later.
        try:
            return one_pass()
        finally:
            gc.collect()

    raise typer.Exit(drift_module.every(interval, collected_pass, passes=passes))


@app.command()
def history(
    run_id: Annotated[
        str | None, typer.Argument(metavar="[RUN_ID]", help="Show this run in full.")
    ] = None,
    output: FormatOption = Format.TEXT,
    limit: Annotated[int, typer.Option("--limit", help="How many runs to list.")] = 50,
    kind: Annotated[
        str | None,
        typer.Option(
            "--kind", help="Only runs of this kind: plan, apply, dry-run, drift, rollback."
        ),
    ] = None,
    state_dir: StateDirOption = None,
) -> None:
    """List the journaled runs (plan, apply, drift, rollback), newest first, or show one."""
    if limit < 1:
        raise RemediateError(f"--limit {limit}: must be 1 or more")
    if kind is not None and kind not in RUN_KINDS:
        raise RemediateError(f"--kind {kind!r}: not a kind of run ({', '.join(RUN_KINDS)})")
    journal = Journal(state_dir)
    if run_id is not None:
        run = journal.run(run_id)
        _out(render.run_json(run) if output is Format.JSON else render.run_text(run))
        return
    runs = journal.runs(limit, kind)
    _out(render.history_json(runs) if output is Format.JSON else render.history_text(runs))


@app.command()
def rollback(
    run_id: Annotated[str, typer.Argument(metavar="RUN_ID", help="The run to undo.")],
    policy_file: PolicyOption = DEFAULT_POLICY,
    auto_approve: Annotated[
        bool, typer.Option("--auto-approve", help="Roll back without asking.")
    ] = False,
    output: FormatOption = Format.TEXT,
    wait: WaitOption = False,
    quiet: QuietOption = False,
    state_dir: StateDirOption = None,
) -> None:
    """Restore the before-state of a run's applied changes; refuses (exit 1, changing nothing)
    when any resource moved since that run."""
    policy = _policy_for_rollback(policy_file)
    journal = Journal(state_dir)
    with reporter(quiet) as progress:
        prepared = rollback_module.prepare(run_id, policy, journal, progress)
    if output is Format.TEXT:
        _out(render.plan_text(prepared.plan))
    if not auto_approve:
        _confirm(len(prepared.plan.changes))
    with reporter(quiet) as progress:
        result = rollback_module.apply(
            prepared, policy, journal=journal, wait=wait, progress=progress, note=_err
        )
    if output is Format.JSON:
        _out(render.outcomes_json(result.outcomes, result.run_id, result.status.value))
    else:
        _out(render.outcomes_text(result.outcomes, result.run_id))
    _exit_for(result)


@app.command()
def clients(
    logs: Annotated[
        list[Path], typer.Argument(metavar="LOGFILE...", help="ALB or Nginx access logs (.gz too).")
    ],
    minimum: Annotated[
        str, typer.Option("--min-tls", help="Report clients below this TLS version.")
    ] = "1.2",
    nginx_format: Annotated[
        str | None,
        typer.Option("--nginx-format", help="The log_format string the Nginx logs use."),
    ] = None,
    nginx_regex: Annotated[
        str | None,
        typer.Option(
            "--nginx-regex",
            help="A regex for Nginx lines: named groups ssl_protocol, status, http_user_agent.",
        ),
    ] = None,
    output: FormatOption = Format.TEXT,
    allow_truncated: Annotated[
        bool,
        typer.Option(
            "--allow-truncated", help="Exit 0 even when a .gz log ends early (it still warns)."
        ),
    ] = False,
) -> None:
    """Who still uses TLS 1.0/1.1 or receives 426s, from ALB and Nginx access logs.

    Reports user agent, count and share; unparseable lines are counted as skipped. A truncated
    .gz log is read up to where it ends, with a warning, and exits 1 unless --allow-truncated."""
    from remediate import clients as logs_module
    from remediate.verify import check_minimum

    check_minimum(minimum)
    if nginx_format is not None and nginx_regex is not None:
        raise RemediateError("give --nginx-format or --nginx-regex, not both")
    pattern = None
    if nginx_format is not None:
        pattern = logs_module.nginx_pattern(nginx_format)
    elif nginx_regex is not None:
        pattern = logs_module.compile_regex(nginx_regex)
    analysis = logs_module.analyze(logs, pattern)
    if output is Format.JSON:
        _out(logs_module.summary_json(analysis, minimum))
    else:
        _out(logs_module.summary_text(analysis, minimum))
    for warning in logs_module.truncation_warnings(analysis):
        _err(warning)
    if analysis.truncated and not allow_truncated:
        raise typer.Exit(1)


@playbooks_app.command("path")
def playbooks_path() -> None:
    """Print the directory of the playbooks, to run them with ansible-playbook on their own."""
    from remediate.providers.nginx.runner import playbooks_dir

    _out(f"{playbooks_dir()}\n")


@app.command()
def demo(
    quiet: QuietOption = False,
    state_dir: StateDirOption = None,
    rollback: Annotated[
        bool, typer.Option("--rollback", help="Then roll the apply back and plan once more.")
    ] = False,
) -> None:
    """Run the whole job on the embedded sandbox: plan, apply, then a clean second plan (and,
    with --rollback, the rollback of that apply)."""
    from remediate.errors import require

    require("sandbox", "remediate demo")
    from remediate.sandbox.demo import run

    run(quiet=quiet, state_dir=state_dir, write=_out, note=_err, rollback=rollback)


@app.command()
def permissions(
    provider: Annotated[
        str | None, typer.Option("--provider", help="One provider (default: every provider).")
    ] = None,
    write: Annotated[
        bool, typer.Option("--write", help="What an apply needs, not just a read-only plan.")
    ] = False,
) -> None:
    """Print the permissions a plan (or with --write, an apply) needs: an IAM policy document for
    AWS, a custom role for GCP (gcloud iam roles create --file), requirements for hosts."""
    from remediate import permissions as documents

    if provider is not None:
        _out(documents.document(registry.get(provider), write))
        return
    for index, found in enumerate(registry.providers().values()):
        separator = "\n" if index else ""
        _out(f"{separator}# {found.name}: {found.title} ({found.permissions.system})\n")
        _out(documents.document(found, write))


@app.command("providers")
def list_providers(output: FormatOption = Format.TEXT) -> None:
    """List the registered providers with their rules (id, severity, title) and executors."""
    found = registry.providers().values()
    if output is Format.JSON:
        _out(json.dumps([render.provider_dict(provider) for provider in found], indent=2) + "\n")
        return
    _out("".join(render.provider_text(provider) for provider in found))


def _version(value: bool) -> None:
    if value:
        from remediate import __version__

        _out(f"remediate {__version__}\n")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """Find and fix edge endpoints that make clients fail with 426 Upgrade Required, TLS
    handshake errors or broken WebSockets."""


def main() -> None:
    """Console entry point: user errors, bad arguments included, become one line on stderr and
    exit 1 (click's usage errors would exit 2, which drift, verify and diagnose use for "problems
    found": a scheduler must not mistake a typo for drift)."""
    _settle()
    _run()


@functools.cache
def _settle() -> None:
    """Keep the garbage collector off objects that live as long as the command.

    A run makes hundreds of thousands of objects that live until it ends (a plan of 2,000 Nginx
    server blocks: its parsed tree) and little garbage in reference cycles (that plan: about 500
    objects), which reference counting cannot free and the collector is for. With the default
    thresholds the collector traversed the long-lived objects again and again: about 0.2 s of
    that plan's CPU, most of it two full passes that found nothing. So: the modules imported so
    far are frozen (skipped by every pass), collections are rare (mypy's approach for its large
    builds), and at exit, where what is left is freed with the process, the passes over it are
    skipped too (they took half a second after that plan). Once per process: a second command
    run in the same process would freeze the first one's leftovers."""
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)
    atexit.register(gc.freeze)


def _run() -> None:
    try:
        code = app(standalone_mode=False)
    except typer.TyperException as exc:
        message = exc.format_message().strip()
        if not message or "\n" in message:
            # A command group called without a command: its help page (typer may have printed
            # it already), not an error.
            if message:
                _err(message)
            sys.exit(exc.exit_code)
        _err(f"error: {message}")
        sys.exit(1)
    except typer.Abort:
        _err("aborted; nothing changed")
        sys.exit(1)
    except RemediateError as exc:
        _err(f"error: {exc}")
        sys.exit(1)
    except KeyboardInterrupt:
        _err("interrupted")
        sys.exit(130)
    sys.exit(code if isinstance(code, int) else 0)
