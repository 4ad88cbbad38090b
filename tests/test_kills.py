"""Kills at random points of an apply: the journal equals reality once the next run reconciled.

`remediate apply` runs as its own process against a moto server (a fleet of weak listeners) or a
real nginx reached through Ansible, and gets SIGKILL, SIGTERM or SIGINT once the journal shows a
random number of its writes started. Then, as a user would:

- SIGTERM/SIGINT: the run stops between two writes, exits 143/130 with a summary, and its
  journal already matches what moto holds;
- SIGKILL: the next `remediate plan` reports the interrupted run and reads back every change it
  left pending;

after which every change of the run is journaled `applied` exactly when the resource read back
from moto (or the file on the nginx host) holds its `after`, no resource changed without a journal
entry, and a second apply converges (a third plan is clean). Each scenario's figures are printed
(run with -s): held, lost (a write the journal never saw), half-changed (journal and reality
disagree).
"""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import boto3
import pytest

from remediate.sandbox.aws import Fleet, FleetBuilder, MotoServer
from remediate.sandbox.compute import ComputeServer
from tests.conftest import Cli
from tests.nginx_env import NGINX, NginxHost
from tests.test_nginx_apply import (  # noqa: F401 (fixtures)
    assert_fixed,
    assert_weak,
    backend,
    hosts,
    write_setup,
)
from tests.test_nginx_apply import pytestmark as needs_nginx

pytestmark = pytest.mark.faults
SEED = int(os.environ.get("REMEDIATE_KILL_SEED", "1616"))
LISTENERS = 24
WEAK = "ELBSecurityPolicy-2016-08"
POLICY = """\
version: 1
tls:
  minimum: "1.2"
http2: true
aws:
  regions: [us-east-1]
"""


def figures(line: str) -> None:
    """A scenario's figures, past pytest's capture of the CLI's output (seen with -s)."""
    print(line, file=sys.__stdout__, flush=True)


def remediate(*args: str, env: dict[str, str]) -> subprocess.Popen[str]:
    """`remediate ARGS` as its own process, as a scheduler or a terminal starts it."""
    return subprocess.Popen(
        [sys.executable, "-c", "from remediate.cli import main; main()", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def journal_rows(state: Path, kind: str = "apply") -> list[tuple[str, str, str, str, str]]:
    """(run id, resource, attribute, after, outcome) of every change of runs of `kind`."""
    path = state / "journal.sqlite3"
    if not path.exists():
        return []
    with sqlite3.connect(path, timeout=30) as db:
        try:
            return list(
                db.execute(
                    "SELECT runs.id, resource, attribute, after, outcome FROM changes"
                    " JOIN runs ON runs.id = changes.run_id WHERE runs.kind = ?",
                    (kind,),
                )
            )
        except sqlite3.OperationalError:
            return []


def kill_at(process: subprocess.Popen[str], state: Path, writes: int, signum: int) -> str:
    """Send `signum` once the journal shows `writes` writes started (or the run ended); returns
    what the process wrote on stderr."""
    deadline = time.monotonic() + 300
    while process.poll() is None and time.monotonic() < deadline:
        if len(journal_rows(state)) >= writes:
            break
        time.sleep(0.005)
    if process.poll() is None:
        process.send_signal(signum)
    _, stderr = process.communicate(timeout=300)
    return stderr


def seed_weak_listeners(count: int) -> Fleet:
    east = FleetBuilder("us-east-1")
    east.target_group("web")
    for index in range(count):
        east.load_balancer(f"lb{index}")
        east.listener(f"lb{index}", 443, "HTTPS", "web")
    return east.fleet


def moto_policies(fleet: Fleet) -> dict[str, str]:
    client = boto3.client("elbv2", region_name="us-east-1")
    return {
        arn: client.describe_listeners(ListenerArns=[arn])["Listeners"][0]["SslPolicy"]
        for arn in fleet.listeners.values()
    }


def audit(fleet: Fleet, state: Path) -> tuple[int, int]:
    """(lost, half-changed): listeners changed with no `applied` entry, and entries whose
    outcome disagrees with what moto holds."""
    now = moto_policies(fleet)
    rows = [row for row in journal_rows(state) if row[2] == "ssl_policy"]
    applied = {resource for _, resource, _, _, outcome in rows if outcome == "applied"}
    lost = sum(1 for arn, value in now.items() if value != WEAK and arn not in applied)
    half = 0
    for _, resource, _, after, outcome in rows:
        holds_after = now[resource] == json.loads(after)
        if outcome in ("pending", "written") or (outcome == "applied") != holds_after:
            half += 1
    return lost, half


# Scenarios per signal (REMEDIATE_KILL_SCENARIOS raises it for a longer soak).
PER_SIGNAL = int(os.environ.get("REMEDIATE_KILL_SCENARIOS", "2"))
SCENARIOS = [
    pytest.param(signum, index, id=f"{signum.name}-{index}")
    for signum in (signal.SIGKILL, signal.SIGTERM, signal.SIGINT)
    for index in range(PER_SIGNAL)
]


@pytest.mark.parametrize(("signum", "index"), SCENARIOS)
def test_a_killed_aws_apply_is_reconciled_and_converges(
    signum: signal.Signals,
    index: int,
    aws: MotoServer,
    cli: Cli,
    write_policy: Callable[[str], Path],
    tmp_path: Path,
) -> None:
    fleet = seed_weak_listeners(LISTENERS)
    policy = write_policy(POLICY)
    state = tmp_path / "state"
    env = {**os.environ, "REMEDIATE_STATE_DIR": str(state)}
    writes = random.Random(f"{SEED}-{signum}-{index}").randint(1, LISTENERS - 2)

    process = remediate("apply", "-p", str(policy), "-q", "--auto-approve", "--no-verify", env=env)
    stderr = kill_at(process, state, writes, signum)

    if process.returncode == 128 + signum:
        # Stopped between two writes: a summary line, and nothing left pending.
        assert f"stopped by {signal.Signals(signum).name} between two writes" in stderr
        assert not [row for row in journal_rows(state) if row[4] in ("pending", "written")]
    replan = cli("plan", "-p", str(policy), "-q", "--format", "json")
    assert replan.code == 0, replan.stderr
    if process.returncode == -signal.SIGKILL:
        # The next run reports the run that died, and what its pending writes really did.
        assert "was interrupted; its pending changes read back as:" in replan.stderr
    [run] = json.loads(cli("history", "--kind", "apply", "--format", "json").stdout)["runs"]
    lost, half = audit(fleet, state)
    changed = sum(1 for value in moto_policies(fleet).values() if value != WEAK)
    figures(
        f"kill scenario aws {signal.Signals(signum).name} after {writes} write(s) started: "
        f"exit {process.returncode}, run {run['status']}, {changed}/{LISTENERS} changed, "
        f"lost {lost}, half-changed {half}"
    )
    assert (lost, half) == (0, 0)
    if process.returncode == 0:
        assert run["status"] == "applied"
    else:
        # 128+N: stopped by remediate between writes (or by Python's own SIGINT handling before
        # the apply began); -N: the signal's default action (SIGKILL, or SIGTERM during startup).
        assert process.returncode in (128 + signum, -signum)
        assert run["status"] == "interrupted"

    again = cli("apply", "-p", str(policy), "-q", "--auto-approve", "--no-verify")
    assert again.code == 0, again.stderr
    final = cli("plan", "-p", str(policy), "-q", "--detailed-exitcode")
    assert final.code == 0, final.stdout
    assert WEAK not in moto_policies(fleet).values()


def _descendants(pid: int) -> set[int]:
    """Every process below `pid`, from /proc."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(entry.name))
    found: set[int] = set()
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@needs_nginx
def test_a_killed_nginx_apply_is_finished_by_the_next_run(
    tmp_path: Path,
    hosts: Callable[..., NginxHost],  # noqa: F811 (the fixture)
    cli: Cli,
) -> None:
    """SIGKILL while Ansible writes the files: Ansible dies too, the next plan does not call the
    host clean, and the next apply validates, reloads and journals what is on disk."""
    web = hosts("web1")
    policy = write_setup(tmp_path, web)
    state = tmp_path / "state"
    env = {**os.environ, "REMEDIATE_STATE_DIR": str(state)}
    process = remediate("apply", "-p", str(policy), "--auto-approve", "--no-verify", env=env)
    deadline = time.monotonic() + 300
    while process.poll() is None and time.monotonic() < deadline:
        if any(row[4] == "pending" for row in journal_rows(state)):
            break
        time.sleep(0.01)
    # Somewhere in the playbook run: before, during or after the writes.
    time.sleep(random.Random(SEED).uniform(0.5, 3.0))
    children = _descendants(process.pid)
    process.kill()
    process.communicate(timeout=60)
    deadline = time.monotonic() + 30
    while any(_alive(pid) for pid in children) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [pid for pid in children if _alive(pid)], "a child outlived remediate"

    plan = json.loads(cli("plan", "-p", str(policy), "-q", "--format", "json").stdout)
    written = any(row[4] in ("pending", "written") for row in journal_rows(state))
    figures(f"kill scenario nginx SIGKILL: pending writes left {written}, plan {plan['summary']}")
    assert plan["changes"] or plan["findings"], "an interrupted host was reported clean"

    applied = cli("apply", "-p", str(policy), "-q", "--auto-approve", "--no-verify")
    assert applied.code == 0, applied.stdout + applied.stderr
    assert_fixed(web)
    rows = journal_rows(state)
    assert not [row for row in rows if row[4] in ("pending", "written")]
    files = {path: state_.data.decode() for path, state_ in web.files().items()}
    for _, resource, _, after, outcome in rows:
        path = resource.split(":", 1)[1]
        if outcome == "applied":
            assert files[path] == json.loads(after)
    final = cli("plan", "-p", str(policy), "-q", "--detailed-exitcode")
    assert final.code == 0, final.stdout


@needs_nginx
def test_files_written_but_never_reloaded_are_finished_by_the_next_run(
    tmp_path: Path,
    hosts: Callable[..., NginxHost],  # noqa: F811 (the fixture)
    cli: Cli,
) -> None:
    """SIGKILL at the worst moment, made deterministic: the host's reload command blocks while a
    gate file exists, so remediate is killed after Ansible wrote the new files and validated them
    but before nginx reloaded. The old, weak configuration is still serving; the next plan must
    not call the host clean, and the next apply must reload it and journal what is on disk."""
    gate = tmp_path / "hold-reload"
    gate.touch()
    reload = tmp_path / "reload-when-released"
    root = tmp_path / "web1"
    reload.write_text(
        "#!/bin/sh\n"
        f"while [ -e {gate} ]; do sleep 0.1; done\n"
        f"exec {NGINX} -p {root} -c {root / 'nginx.conf'} -s reload\n",
        encoding="utf-8",
    )
    reload.chmod(0o755)
    web = hosts("web1", nginx_reload_command=str(reload))
    policy = write_setup(tmp_path, web)
    before = {path: item.data for path, item in web.files().items()}
    state = tmp_path / "state"
    env = {**os.environ, "REMEDIATE_STATE_DIR": str(state)}
    process = remediate("apply", "-p", str(policy), "--auto-approve", "--no-verify", env=env)
    deadline = time.monotonic() + 300
    while process.poll() is None and time.monotonic() < deadline:
        now = {path: item.data for path, item in web.files().items()}
        if now != before:
            break
        time.sleep(0.05)
    time.sleep(1.0)  # past the write and `nginx -t`, into the blocked reload
    children = _descendants(process.pid)
    process.kill()
    process.communicate(timeout=60)
    assert {path: item.data for path, item in web.files().items()} != before
    assert_weak(web)  # new files on disk, old configuration serving

    gate.unlink()
    plan = json.loads(cli("plan", "-p", str(policy), "-q", "--format", "json").stdout)
    figures(f"kill scenario nginx written-not-reloaded: plan {plan['summary']}")
    assert plan["changes"] or plan["findings"], "a host serving its old config was called clean"
    assert not [pid for pid in children if _alive(pid)], "a child outlived remediate"

    applied = cli("apply", "-p", str(policy), "-q", "--auto-approve", "--no-verify")
    assert applied.code == 0, applied.stdout + applied.stderr
    assert_fixed(web)
    assert not [row for row in journal_rows(state) if row[4] in ("pending", "written")]
    final = cli("plan", "-p", str(policy), "-q", "--detailed-exitcode")
    assert final.code == 0, final.stdout


GCP_PROJECT = "kill-tests"
GCP_PROXIES = 12
GCP_POLICY = f"""\
version: 1
tls:
  minimum: "1.2"
gcp:
  projects: [{GCP_PROJECT}]
"""


@pytest.fixture(scope="module")
def compute_server() -> Iterator[ComputeServer]:
    server = ComputeServer(operation_polls=2)
    yield server
    server.stop()


def gcp_attachments(server: ComputeServer, proxies: list[str]) -> dict[str, str | None]:
    """Each proxy's SSL policy as the Compute stand-in holds it now."""
    return {link: server.get(link).get("sslPolicy") or None for link in proxies}


@pytest.mark.parametrize(("signum", "index"), SCENARIOS)
def test_a_killed_gcp_apply_is_reconciled_and_converges(
    signum: signal.Signals,
    index: int,
    compute_server: ComputeServer,
    cli: Cli,
    write_policy: Callable[[str], Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The same on GCP: weak global proxies attached one by one to remediate's SSL policy."""
    compute_server.reset()
    monkeypatch.setenv("REMEDIATE_GCP_ENDPOINT", compute_server.url)
    service = compute_server.backend_service(GCP_PROJECT, "web")
    url_map = compute_server.url_map(GCP_PROJECT, "web", service)
    proxies = [
        compute_server.https_proxy(GCP_PROJECT, f"p{number}", url_map)
        for number in range(GCP_PROXIES)
    ]
    policy = write_policy(GCP_POLICY)
    state = tmp_path / "state"
    env = {**os.environ, "REMEDIATE_STATE_DIR": str(state)}
    # The policy is created first, then one write per proxy.
    writes = random.Random(f"{SEED}-gcp-{signum}-{index}").randint(2, GCP_PROXIES - 1)

    process = remediate("apply", "-p", str(policy), "-q", "--auto-approve", "--no-verify", env=env)
    stderr = kill_at(process, state, writes, signum)
    if process.returncode == 128 + signum:
        assert f"stopped by {signal.Signals(signum).name} between two writes" in stderr
    replan = cli("plan", "-p", str(policy), "-q", "--format", "json")
    assert replan.code == 0, replan.stderr

    now = gcp_attachments(compute_server, proxies)
    rows = [row for row in journal_rows(state) if row[1] in now]
    applied = {resource for _, resource, _, _, outcome in rows if outcome == "applied"}
    lost = sum(1 for link, value in now.items() if value is not None and link not in applied)
    half = sum(
        1
        for _, resource, _, _, outcome in rows
        if outcome in ("pending", "written")
        or (outcome == "applied") != (now[resource] is not None)
    )
    figures(
        f"kill scenario gcp {signal.Signals(signum).name} after {writes} write(s) started: "
        f"exit {process.returncode}, "
        f"{sum(v is not None for v in now.values())}/{GCP_PROXIES} attached, "
        f"lost {lost}, half-changed {half}"
    )
    assert (lost, half) == (0, 0)

    again = cli("apply", "-p", str(policy), "-q", "--auto-approve", "--no-verify")
    assert again.code == 0, again.stderr
    final = cli("plan", "-p", str(policy), "-q", "--detailed-exitcode")
    assert final.code == 0, final.stdout
    assert None not in gcp_attachments(compute_server, proxies).values()
