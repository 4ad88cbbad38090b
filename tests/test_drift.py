"""`remediate drift` against a real moto server: detection, --fix, the guardrail, recurring drift,
the metrics file, the apply lock between real processes, and the --every loop."""

from __future__ import annotations

import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
import pytest
from prometheus_client.parser import text_string_to_metric_families

from remediate.sandbox.aws import Fleet, MotoServer
from tests.aws_state import http2_enabled, ssl_policy
from tests.conftest import Cli

# The tests of the journal, the lock and recurring drift run on both journal back ends.
both_journals = pytest.mark.usefixtures("journal_backend")

POLICY = """\
version: 1
aws:
  regions: [us-east-1, eu-west-1]
exclude:
  - match: "arn:aws:elasticloadbalancing:*:*:listener/app/legacy-pos/*"
    reason: "POS terminals speak TLS 1.0 until the March upgrade"
"""
WEAK = "ELBSecurityPolicy-2016-08"
REMEDIATE = str(Path(sys.executable).with_name("remediate"))


def weaken(fleet: Fleet, listener: str = "shop:443") -> None:
    """Out-of-band drift: someone puts the API default policy back, as an old template would."""
    boto3.client("elbv2", region_name="us-east-1").modify_listener(
        ListenerArn=fleet.listeners[listener], SslPolicy=WEAK
    )


def metrics(path: Path) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    samples = {}
    for family in text_string_to_metric_families(path.read_text(encoding="utf-8")):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


@pytest.fixture
def policy(write_policy: Callable[[str], Path]) -> Path:
    return write_policy(POLICY)


@both_journals
def test_drift_reports_then_fixes_out_of_band_drift(cli: Cli, fleet: Fleet, policy: Path) -> None:
    check = cli("drift", "-p", str(policy), "-q", "--format", "json")
    assert check.code == 2, check.stderr
    report = json.loads(check.stdout)
    assert report["status"] == "drift" and report["run_id"]
    assert report["summary"]["changes"] == 5 and report["summary"]["drifted"] == 4
    assert {c["status"] for c in report["changes"]} == {"not-fixed"}
    assert ssl_policy(fleet, "shop:443") == WEAK  # a check changes nothing

    fixed = cli("drift", "-p", str(policy), "-q", "--fix", "--format", "json")
    assert fixed.code == 0, fixed.stderr
    report = json.loads(fixed.stdout)
    assert report["status"] == "fixed"
    assert report["summary"]["fixed"] == 5
    wanted = {c["name"]: c["after"] for c in report["changes"] if c["attribute"] == "ssl_policy"}
    assert ssl_policy(fleet, "shop:443") == wanted["shop:443 HTTPS"] != WEAK
    assert ssl_policy(fleet, "admin:8443") == wanted["admin:8443 HTTPS"]
    assert http2_enabled(fleet, "api")
    assert ssl_policy(fleet, "legacy-pos:443") == WEAK  # the exclusion holds under --fix

    assert cli("drift", "-p", str(policy), "-q").code == 0

    weaken(fleet)
    again = cli("drift", "-p", str(policy), "-q")
    assert again.code == 2
    assert "shop:443 HTTPS (us-east-1): not fixed" in again.stdout
    assert "1 change to 1 resource" in again.stdout


def test_only_selects_providers_and_rejects_unconfigured_ones(
    cli: Cli, fleet: Fleet, policy: Path
) -> None:
    result = cli("drift", "-p", str(policy), "-q", "--only", "gcp", "--fix")
    assert result.code == 1
    assert result.stderr.strip() == "error: --only gcp: the policy has no gcp section"
    assert ssl_policy(fleet, "shop:443") == WEAK
    assert cli("drift", "-p", str(policy), "-q", "--only", "aws").code == 2


def test_max_changes_refuses_the_whole_fix(cli: Cli, fleet: Fleet, policy: Path) -> None:
    result = cli(
        "drift", "-p", str(policy), "-q", "--fix", "--max-changes", "4", "--format", "json"
    )
    assert result.code == 1
    assert "5 changes exceed --max-changes 4; nothing was applied" in result.stderr
    report = json.loads(result.stdout)
    assert report["status"] == "refused"
    assert {c["status"] for c in report["changes"]} == {"refused"}
    assert ssl_policy(fleet, "shop:443") == WEAK
    assert not http2_enabled(fleet, "api")

    history = json.loads(cli("history", "--format", "json").stdout)["runs"]
    assert history[0]["run_id"] == report["run_id"]
    assert history[0]["status"] == "refused"
    assert history[0]["outcomes"] == {"refused": 5}

    assert cli("drift", "-p", str(policy), "-q", "--fix", "--max-changes", "5").code == 0
    assert ssl_policy(fleet, "shop:443") != WEAK


@both_journals
def test_recurring_drift_names_the_earlier_fixes(cli: Cli, fleet: Fleet, policy: Path) -> None:
    first = json.loads(cli("drift", "-p", str(policy), "-q", "--fix", "--format", "json").stdout)
    assert all(c["recurring"] is None for c in first["changes"])

    weaken(fleet)
    second = json.loads(cli("drift", "-p", str(policy), "-q", "--fix", "--format", "json").stdout)
    (change,) = second["changes"]
    assert change["name"] == "shop:443 HTTPS" and change["status"] == "fixed"
    assert change["recurring"]["count"] == 1
    assert change["recurring"]["runs"] == [first["run_id"]]

    weaken(fleet)
    third = cli("drift", "-p", str(policy), "-q")
    assert third.code == 2
    runs = f"{first['run_id']}, {second['run_id']}"
    assert "recurring: drifted back 2 times after being fixed on" in third.stdout
    assert f"(runs {runs})" in third.stdout
    assert "1 recurring" in third.stdout


@both_journals
def test_metrics_file_parses_back(cli: Cli, fleet: Fleet, policy: Path, tmp_path: Path) -> None:
    path = tmp_path / "textfile" / "remediate.prom"
    path.parent.mkdir()
    before = time.time()
    result = cli("drift", "-p", str(policy), "-q", "--fix", "--metrics-file", str(path))
    assert result.code == 0, result.stderr
    samples = metrics(path)
    aws = (("provider", "aws"),)
    assert samples[("remediate_drifted_resources", aws)] == 4
    assert samples[("remediate_fixed_resources", aws)] == 4
    assert samples[("remediate_failed_resources", aws)] == 0
    assert samples[("remediate_last_run_success", ())] == 1
    succeeded = samples[("remediate_last_success_timestamp_seconds", ())]
    assert before - 1 <= succeeded <= time.time()
    assert [p.name for p in path.parent.iterdir()] == ["remediate.prom"]  # no temp file left

    weaken(fleet)
    with hold_lock(tmp_path / "state"):
        blocked = cli("drift", "-p", str(policy), "-q", "--fix", "--metrics-file", str(path))
    assert blocked.code == 1
    samples = metrics(path)
    assert samples[("remediate_last_run_success", ())] == 0
    assert samples[("remediate_last_success_timestamp_seconds", ())] == succeeded
    assert ("remediate_drifted_resources", aws) not in samples  # the blocked run saw nothing

    checked = cli("drift", "-p", str(policy), "-q", "--metrics-file", str(path))
    assert checked.code == 2
    samples = metrics(path)
    assert samples[("remediate_drifted_resources", aws)] == 1
    assert samples[("remediate_fixed_resources", aws)] == 0
    assert samples[("remediate_last_success_timestamp_seconds", ())] > succeeded


class hold_lock:  # noqa: N801 - used as a context manager, reads like one
    """A separate process that holds the real apply lock (every unit, in the journal that
    REMEDIATE_JOURNAL_URL selects) until the block ends."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self.process: subprocess.Popen[str] | None = None

    def __enter__(self) -> subprocess.Popen[str]:
        code = (
            "import sys; from pathlib import Path; from remediate.journal import Journal\n"
            "with Journal(Path(sys.argv[1])).hold():\n"
            "    print('held', flush=True)\n"
            "    sys.stdin.read()\n"
        )
        self.process = subprocess.Popen(
            [sys.executable, "-c", code, str(self.state_dir)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        assert self.process.stdout.readline().strip() == "held"
        return self.process

    def __exit__(self, *exc: object) -> None:
        assert self.process is not None
        self.process.communicate("", timeout=30)


@both_journals
def test_a_second_run_exits_naming_the_lock_holder(
    cli: Cli, fleet: Fleet, policy: Path, tmp_path: Path
) -> None:
    with hold_lock(tmp_path / "state") as holder:
        result = cli("drift", "-p", str(policy), "-q", "--fix")
        applied = cli("apply", "-p", str(policy), "-q", "--auto-approve", "--no-verify")
        dry = cli("apply", "-p", str(policy), "-q", "--dry-run")
        checked = cli("drift", "-p", str(policy), "-q")
    for blocked in (result, applied):
        assert blocked.code == 1
        assert f"pid {holder.pid} on {socket.gethostname()} since " in blocked.stderr
        assert "--wait" in blocked.stderr
    assert ssl_policy(fleet, "shop:443") == WEAK
    # Neither a dry run nor a check writes, so neither needs the lock.
    assert dry.code == 0, dry.stderr
    assert checked.code == 2
    # The lock is free again once its holder has gone.
    assert cli("drift", "-p", str(policy), "-q", "--fix").code == 0


def _drift_process(policy: Path, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [REMEDIATE, "drift", "-p", str(policy), "-q", "--fix", "--wait", "--format", "json"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@both_journals
def test_two_concurrent_fixes_take_turns(
    fleet: Fleet, policy: Path, aws: MotoServer, tmp_path: Path
) -> None:
    env = {**os.environ, **aws.env(), "REMEDIATE_STATE_DIR": str(tmp_path / "state")}
    with hold_lock(tmp_path / "state"):
        runs = [_drift_process(policy, env), _drift_process(policy, env)]
        for run in runs:
            assert run.stderr is not None
            assert "waiting for the lock held by pid" in run.stderr.readline()
    reports: list[dict[str, Any]] = []
    for run in runs:
        out, err = run.communicate(timeout=120)
        assert run.returncode == 0, err
        reports.append(json.loads(out))
    assert sorted(r["status"] for r in reports) == ["clean", "fixed"]
    fixed = next(r for r in reports if r["status"] == "fixed")
    assert fixed["summary"]["fixed"] == 5
    assert ssl_policy(fleet, "shop:443") != WEAK


def test_every_loops_until_the_pass_count(cli: Cli, fleet: Fleet, policy: Path) -> None:
    result = cli(
        "drift", "-p", str(policy), "-q", "--every", "0.05s", "--passes", "2", "--format", "json"
    )
    assert result.code == 2
    reports = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["status"] for r in reports] == ["drift", "drift"]
    assert reports[0]["run_id"] != reports[1]["run_id"]


def test_every_stops_between_passes_on_sigterm(
    fleet: Fleet, policy: Path, aws: MotoServer, tmp_path: Path
) -> None:
    env = {**os.environ, **aws.env(), "REMEDIATE_STATE_DIR": str(tmp_path / "state")}
    process = subprocess.Popen(
        [REMEDIATE, "drift", "-p", str(policy), "-q", "--fix", "--every", "1h"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    lines = []
    while not (lines and lines[-1].startswith("Drift: ")):
        lines.append(process.stdout.readline())
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=30)
    assert process.returncode == 0, err
    assert lines[-1] == "Drift: drift fixed and read back.\n"
    assert out == ""


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--every", "15x"], "error: --every '15x': not a duration (for example 30s, 15m, 1h)"),
        (
            ["--passes", "2"],
            "error: --passes takes a number of 1 or more, and only goes with --every",
        ),
        (["--fix", "--max-changes", "-1"], "error: --max-changes -1: must be zero or more"),
        # A usage error exits 1 too: 2 would tell a scheduler that drift was found.
        (
            ["--format", "xml"],
            "error: Invalid value for '--format': Value error, 'xml' is not one of 'text', 'json'.",
        ),
    ],
)
def test_bad_arguments_are_one_line_and_change_nothing(
    cli: Cli, fleet: Fleet, policy: Path, args: list[str], message: str
) -> None:
    result = cli("drift", "-p", str(policy), "-q", *args)
    assert result.code == 1
    assert result.stderr.strip() == message
    assert ssl_policy(fleet, "shop:443") == WEAK
    assert json.loads(cli("history", "--format", "json").stdout)["runs"] == []


EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def _example_commands() -> dict[str, list[str]]:
    """The `remediate ...` argument list each scheduling example runs."""
    from ruamel.yaml import YAML

    service = (EXAMPLES / "systemd" / "remediate-drift.service").read_text(encoding="utf-8")
    exec_start = next(
        line for line in service.replace("\\\n", " ").splitlines() if line.startswith("ExecStart=")
    )
    commands = {"systemd": shlex.split(exec_start.removeprefix("ExecStart="))[1:]}
    manifests = list(YAML(typ="safe").load_all(EXAMPLES / "kubernetes" / "cronjob.yaml"))
    cronjob = next(doc for doc in manifests if doc["kind"] == "CronJob")
    pod = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    commands["kubernetes"] = list(pod["containers"][0]["args"])
    workflow = YAML(typ="safe").load(EXAMPLES / "github-actions" / "drift.yml")
    assert "schedule" in workflow["on"]
    script = next(
        s["run"] for s in workflow["jobs"]["drift"]["steps"] if "drift" in s.get("run", "")
    )
    commands["github-actions"] = shlex.split(script.replace("\\\n", " ").split("|")[0])[1:]
    return commands


@pytest.mark.parametrize("example", ["systemd", "kubernetes", "github-actions"])
def test_scheduling_examples_run_drift_fix(
    cli: Cli, fleet: Fleet, policy: Path, tmp_path: Path, example: str
) -> None:
    """Each example's command line, with its paths moved here, fixes the fleet."""
    args: list[str] = []
    for arg in _example_commands()[example]:
        args.extend(arg.split("=", 1) if arg.startswith("--") else [arg])
    assert args[:2] == ["drift", "--fix"]
    places = {"--policy": str(policy), "--metrics-file": str(tmp_path / "remediate.prom")}
    args = [places.get(before, arg) for before, arg in zip(["", *args], args, strict=False)]
    result = cli(*args, "--quiet")
    assert result.code == 0, result.stdout + result.stderr
    assert ssl_policy(fleet, "shop:443") != WEAK
    assert cli("drift", "-p", str(policy), "-q").code == 0
