"""The journal and the apply lock on both back ends: the embedded SQLite file and a shared
PostgreSQL database (a real server, see tests/postgres.py). Runners are real processes: two on
different units hold their locks at once, two on one unit exclude each other, and a holder that
is killed releases its lock."""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from remediate import lock, recovery, render
from remediate.errors import RemediateError
from remediate.journal import INTERRUPTED, PENDING, Journal
from remediate.model import Change
from remediate.policy import build
from remediate.providers.aws.model import ListenerTarget
from remediate.sandbox.aws import Fleet, FleetBuilder, MotoServer
from remediate.store import MIGRATIONS, VERSION
from remediate.targets import HostFile
from tests.aws_state import ssl_policy
from tests.conftest import Cli

ACCOUNT_A = "arn:aws:elasticloadbalancing:us-east-1:111111111111:listener/app/a/1/1"
ACCOUNT_B = "arn:aws:elasticloadbalancing:us-east-1:222222222222:listener/app/b/2/2"
MOTO_ACCOUNT = "123456789012"
WEAK = "ELBSecurityPolicy-2016-08"
AWS_POLICY = """\
version: 1
tls:
  minimum: "1.2"
aws:
  regions: [{region}]
"""


def _listener(arn: str) -> Change:
    return Change(
        provider="aws",
        kind="listener",
        resource=arn,
        attribute="ssl_policy",
        before="ELBSecurityPolicy-2016-08",
        after="ELBSecurityPolicy-TLS13-1-2-2021-06",
        reason="test",
        rules=["aws-elb-tls-floor"],
        executor="boto3",
        fingerprint="sha256:0",
        location="us-east-1",
        target=ListenerTarget(
            arn=arn,
            region="us-east-1",
            port=443,
            protocol="HTTPS",
            load_balancer_arn=arn,
            load_balancer_type="application",
        ),
    )


def test_units_come_from_the_provider() -> None:
    assert lock.units_of([_listener(ACCOUNT_A), _listener(ACCOUNT_B)]) == {
        "aws:111111111111:us-east-1",
        "aws:222222222222:us-east-1",
    }
    nginx = _listener(ACCOUNT_A).model_copy(
        update={"provider": "nginx", "target": HostFile(host="web1", path="/etc/nginx/a.conf")}
    )
    assert lock.units_of([nginx]) == {"host:web1"}


def test_runs_changes_and_history_round_trip(journal_backend: str, tmp_path: Path) -> None:
    journal = Journal(tmp_path / "state", shard="2/4")
    assert journal.shared == bool(journal_backend)
    run_id = journal.start("apply", "digest")
    seqs = journal.pending(run_id, [_listener(ACCOUNT_A), _listener(ACCOUNT_B)])
    assert seqs == [0, 1]
    journal.settle(run_id, [(0, "applied", "ok")])
    assert [c.resource for _, c in journal.pending_changes(run_id)] == [ACCOUNT_B]
    journal.settle(run_id, [(1, "applied", "ok")])
    journal.finish(run_id, "applied", {"applied": 2})
    run = journal.run(run_id)
    assert (run.status, run.host, run.shard) == ("applied", socket.gethostname(), "2/4")
    assert f"on {run.host} (pid {os.getpid()}, shard 2/4)" in render.run_text(run)
    assert run.outcomes == {"applied": 2}
    assert [event.run_id for event in journal.writes(ACCOUNT_A, "ssl_policy")] == [run_id]
    # Another runner (another process, another shard) writes into the same history.
    other = subprocess.run(
        [sys.executable, "-c", _RECORD, str(tmp_path / "state"), ACCOUNT_A],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    if journal_backend:
        assert [event.run_id for event in journal.writes(ACCOUNT_A, "ssl_policy")] == [
            run_id,
            other,
        ]
        assert journal.run(other).shard == "1/4"
    assert journal.runs(kind="apply")[0].id in {run_id, other}
    with pytest.raises(RemediateError, match="no run 'nope' in "):
        journal.run("nope")


_RECORD = """
import sys
from pathlib import Path
from remediate.journal import Journal
from tests.test_journal_backends import _listener
journal = Journal(Path(sys.argv[1] + "-elsewhere"), shard="1/4")
run_id = journal.start("apply", "digest")
journal.record(run_id, [(_listener(sys.argv[2]), "applied", "")])
journal.finish(run_id, "applied", {})
print(run_id)
"""


def test_an_old_sqlite_journal_is_migrated(tmp_path: Path) -> None:
    """A journal of the first schema (no version table, no pid) is brought to the current one."""
    state = tmp_path / "state"
    state.mkdir()
    with sqlite3.connect(state / "journal.sqlite3") as db:
        db.executescript(MIGRATIONS[0])
        db.execute(
            "INSERT INTO runs (id, kind, started_at, user, host, policy_digest, status)"
            " VALUES ('old', 'apply', '2026-01-01T00:00:00+00:00', 'u', 'h', 'd', 'applied')"
        )
    journal = Journal(state, url="")
    assert journal.run("old").pid == 0
    with sqlite3.connect(state / "journal.sqlite3") as db:
        assert db.execute("SELECT version FROM schema_version").fetchall() == [(VERSION,)]


def test_the_postgres_schema_is_versioned(postgres_url: str, tmp_path: Path) -> None:
    import psycopg

    Journal(tmp_path, url=postgres_url)
    Journal(tmp_path, url=postgres_url)  # opening again migrates nothing
    with psycopg.connect(postgres_url) as db:
        assert db.execute("SELECT version FROM schema_version").fetchall() == [(VERSION,)]
        db.execute("UPDATE schema_version SET version = version + 1")
    with pytest.raises(RemediateError, match="newer than this remediate knows"):
        Journal(tmp_path, url=postgres_url)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("mysql://x/y", "unknown scheme 'mysql'"),
        ("postgresql://u:secret@127.0.0.1:1/db", r"cannot|journal error"),
    ],
)
def test_a_bad_journal_url_is_one_line(
    url: str, message: str, tmp_path: Path, postgres_server: object
) -> None:
    with pytest.raises(RemediateError, match=message) as error:
        Journal(tmp_path, url=url)
    assert "secret" not in str(error.value)
    assert "\n" not in str(error.value)


_HOLD = """
import sys
from pathlib import Path
from remediate.journal import Journal
units = None if sys.argv[2] == "*" else set(sys.argv[2].split(","))
with Journal(Path(sys.argv[1])).hold(units):
    print("held", flush=True)
    sys.stdin.readline()
"""


@contextmanager
def _holder(state: Path, units: str) -> Iterator[subprocess.Popen[str]]:
    """Another runner (a process) holding the apply lock on `units` (`*`: every unit)."""
    process = subprocess.Popen(
        [sys.executable, "-c", _HOLD, str(state), units],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    assert process.stdout.readline() == "held\n"
    try:
        yield process
    finally:
        _release(process)


def _release(process: subprocess.Popen[str]) -> None:
    """The holder reads its stdin to its end, then lets go and exits."""
    assert process.stdin is not None
    if not process.stdin.closed:
        process.stdin.close()
    process.wait(timeout=30)


def test_runners_on_different_units_proceed_in_parallel(
    postgres_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REMEDIATE_JOURNAL_URL", postgres_url)
    journal = Journal(tmp_path / "here")
    with _holder(tmp_path / "there", "aws:111111111111:us-east-1") as holder:
        # Another account: held at the same time.
        with journal.hold({"aws:222222222222:us-east-1"}) as held:
            assert held.covers("aws:222222222222:us-east-1")
            assert not held.covers("aws:111111111111:us-east-1")
        # The same account: excluded, naming the holder.
        with (
            pytest.raises(lock.LockHeldError, match=rf"pid {holder.pid} on .* since") as error,
            journal.hold({"aws:111111111111:us-east-1", "aws:222222222222:us-east-1"}),
        ):
            pass
        assert "unit aws:111111111111:us-east-1" in str(error.value)
        # Nothing taken before the refusal stays held.
        with _holder(tmp_path / "third", "aws:222222222222:us-east-1"):
            pass
        # A run that needs every unit waits for the unit holder.
        with pytest.raises(lock.LockHeldError), journal.hold(None):
            pass


def test_a_waiting_runner_gets_the_unit_once_the_holder_is_done(
    postgres_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REMEDIATE_JOURNAL_URL", postgres_url)
    journal = Journal(tmp_path)
    notes: list[str] = []
    with _holder(tmp_path, "host:web1") as holder:
        timer = threading.Timer(0.5, _release, [holder])
        timer.start()
        with journal.hold({"host:web1"}, wait=True, note=notes.append) as held:
            assert held.waited
        timer.join()
    assert len(notes) == 1
    assert f"waiting for the lock held by pid {holder.pid} on" in notes[0]


def test_a_killed_holder_releases_its_lock(
    postgres_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PostgreSQL ends a session whose client died, and its advisory locks with it."""
    monkeypatch.setenv("REMEDIATE_JOURNAL_URL", postgres_url)
    journal = Journal(tmp_path)
    with _holder(tmp_path, "gcp:shop") as holder:
        with pytest.raises(lock.LockHeldError), journal.hold({"gcp:shop"}):
            pass
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=30)
        deadline = time.monotonic() + 10
        while True:
            try:
                with journal.hold({"gcp:shop"}) as held:
                    assert not held.waited
                break
            except lock.LockHeldError:
                assert time.monotonic() < deadline, "the dead holder's lock stayed"
                time.sleep(0.1)


_DIE_MID_RUN = """
import os, sys
from pathlib import Path
from remediate.journal import Journal
from tests.test_journal_backends import _listener
journal = Journal(Path(sys.argv[1]))
run_id = journal.start("apply", "digest")
journal.pending(run_id, [_listener(sys.argv[2])])
print(run_id, flush=True)
os.kill(os.getpid(), 9)
"""


def test_a_run_killed_mid_write_is_found_by_the_next_run(
    journal_backend: str, tmp_path: Path
) -> None:
    """The write-ahead entry of a killed run is there for the next run, whichever back end; in
    PostgreSQL the run's liveness lock tells it died, wherever it ran."""
    died = subprocess.run(
        [sys.executable, "-c", _DIE_MID_RUN, str(tmp_path), ACCOUNT_A],
        capture_output=True,
        text=True,
        check=False,
    )
    assert died.returncode == -signal.SIGKILL
    run_id = died.stdout.strip()
    journal = Journal(tmp_path)
    [pending] = journal.pending_changes(run_id)
    assert pending[1].resource == ACCOUNT_A
    assert journal.run(run_id).status == "running"
    if journal_backend:
        assert journal.alive(run_id) is False
    found = recovery.dead_runs(journal, holding_lock=False)
    assert [run.id for run in found] == [run_id]
    assert journal.run(run_id).status == INTERRUPTED
    assert journal.run(run_id).changes[0].outcome == PENDING


def test_a_live_run_is_not_taken_for_dead(postgres_url: str, tmp_path: Path) -> None:
    """A running run of another host (a different host name in the journal) is left alone while
    its process holds its liveness lock."""
    journal = Journal(tmp_path, url=postgres_url)
    run_id = journal.start("apply", "digest")
    other = Journal(tmp_path, url=postgres_url)
    assert other.alive(run_id) is True
    assert recovery.dead_runs(other, holding_lock=False) == []
    journal.finish(run_id, "applied", {})
    assert other.alive(run_id) is False


def test_apply_locks_only_the_units_it_writes(
    cli: Cli,
    aws: MotoServer,
    write_policy: Callable[..., Path],
    postgres_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Through the command: while another runner holds one account's region, an apply in
    another region goes ahead and an apply in the held one is refused, changing nothing."""
    monkeypatch.setenv("REMEDIATE_JOURNAL_URL", postgres_url)
    fleet = Fleet()
    for region in ("us-east-1", "eu-west-1"):
        builder = FleetBuilder(region, fleet)
        builder.load_balancer(f"shop-{region}")
        builder.target_group(f"web-{region}")
        builder.listener(f"shop-{region}", 443, "HTTPS", f"web-{region}", ssl_policy=WEAK)
    policies = {
        region: str(write_policy(AWS_POLICY.format(region=region), f"{region}.yaml"))
        for region in ("us-east-1", "eu-west-1")
    }
    with _holder(tmp_path / "other", f"aws:{MOTO_ACCOUNT}:us-east-1") as holder:
        elsewhere = cli("apply", "-p", policies["eu-west-1"], "-q", "--auto-approve", "--no-verify")
        assert elsewhere.code == 0, elsewhere.stderr
        held = cli("apply", "-p", policies["us-east-1"], "-q", "--auto-approve", "--no-verify")
        assert held.code == 1
        assert f"pid {holder.pid} on " in held.stderr
        assert f"unit aws:{MOTO_ACCOUNT}:us-east-1" in held.stderr
    assert ssl_policy(fleet, "shop-eu-west-1:443") != WEAK
    assert ssl_policy(fleet, "shop-us-east-1:443") == WEAK
    # Once the other runner is done, the held region is applied too.
    done = cli("apply", "-p", policies["us-east-1"], "-q", "--auto-approve", "--no-verify")
    assert done.code == 0, done.stderr
    assert ssl_policy(fleet, "shop-us-east-1:443") != WEAK
    # One history: both applies, from this runner's journal, in the shared database.
    assert len(Journal(tmp_path / "elsewhere").runs(kind="apply")) == 2


def test_a_bad_journal_url_on_the_command_line_is_one_line(
    cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REMEDIATE_JOURNAL_URL", "postgres://u:secret@/db?host=/nonexistent")
    result = cli("history")
    assert result.code == 1
    assert result.stderr.startswith("error: postgres://u:***@/db?host=/nonexistent: ")
    assert result.stderr.count("\n") == 1
    assert "secret" not in result.stderr


def test_a_killed_runs_pending_write_is_read_back_on_either_back_end(
    journal_backend: str, aws: MotoServer, tmp_path: Path
) -> None:
    """Recovery end to end: a run killed after journaling a write it never made is reconciled by
    the next run, which reads the listener back from AWS (moto) and records `not-applied`."""
    builder = FleetBuilder("us-east-1")
    builder.load_balancer("shop")
    builder.target_group("web")
    builder.listener("shop", 443, "HTTPS", "web", ssl_policy=WEAK)
    arn = builder.fleet.listeners["shop:443"]
    died = subprocess.run(
        [sys.executable, "-c", _DIE_MID_RUN, str(tmp_path), arn],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, **aws.env()},
    )
    assert died.returncode == -signal.SIGKILL, died.stderr
    run_id = died.stdout.strip()
    journal = Journal(tmp_path)
    [recovered] = recovery.reconcile(
        journal, build(aws={"regions": ["us-east-1"]}), holding_lock=True
    )
    assert (recovered.run_id, recovered.settled, recovered.error) == (
        run_id,
        {"not-applied": 1},
        "",
    )
    run = journal.run(run_id)
    assert run.status == INTERRUPTED
    assert [change.outcome for change in run.changes] == ["not-applied"]
    assert journal.unfinished() == []
