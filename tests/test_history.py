"""The run journal through `remediate history`, and `remediate rollback` against a real moto
server: a rollback that restores the before-state, and one refused because a resource moved."""

from __future__ import annotations

import getpass
import json
import socket
from collections.abc import Callable
from pathlib import Path

import boto3
import pytest

from remediate.policy import load
from remediate.sandbox.aws import Fleet
from tests.aws_state import http2_enabled, ssl_policy
from tests.conftest import Cli
from tests.test_drift import POLICY, WEAK

# On both journal back ends (SQLite and PostgreSQL).
pytestmark = pytest.mark.usefixtures("journal_backend")


@pytest.fixture
def policy(write_policy: Callable[[str], Path]) -> Path:
    return write_policy(POLICY)


def _json(text: str) -> dict[str, object]:
    document = json.loads(text)
    assert isinstance(document, dict)
    return document


def test_history_lists_plan_apply_and_drift_runs(cli: Cli, fleet: Fleet, policy: Path) -> None:
    planned = _json(cli("plan", "-p", str(policy), "-q", "--format", "json").stdout)
    applied = _json(
        cli("apply", "-p", str(policy), "-q", "--auto-approve", "--format", "json").stdout
    )
    drifted = _json(cli("drift", "-p", str(policy), "-q", "--format", "json").stdout)

    listing = cli("history", "--format", "json")
    assert listing.code == 0
    runs = _json(listing.stdout)["runs"]
    assert isinstance(runs, list)
    assert [(r["run_id"], r["kind"], r["status"]) for r in runs] == [
        (drifted["run_id"], "drift", "clean"),
        (applied["run_id"], "apply", "applied"),
        (planned["run_id"], "plan", "changes-pending"),
    ]
    digest = load(policy).digest()
    for run in runs:
        assert run["user"] == getpass.getuser()
        assert run["host"] == socket.gethostname()
        assert run["policy_digest"] == digest
        assert run["finished_at"] >= run["started_at"]
    assert runs[1]["outcomes"] == {"applied": 5}
    assert runs[2]["outcomes"] == {"planned": 5}

    one = _json(cli("history", str(applied["run_id"]), "--format", "json").stdout)["run"]
    assert isinstance(one, dict)
    shop = next(c for c in one["changes"] if c["name"] == "shop:443 HTTPS")
    assert shop["before"] == WEAK
    assert shop["after"] == ssl_policy(fleet, "shop:443")
    assert shop["outcome"] == "applied"

    only_plans = _json(cli("history", "--kind", "plan", "--format", "json").stdout)["runs"]
    assert isinstance(only_plans, list)
    assert [r["run_id"] for r in only_plans] == [planned["run_id"]]
    assert len(_json(cli("history", "--limit", "1", "--format", "json").stdout)["runs"]) == 1

    text = cli("history").stdout
    assert text.splitlines()[0].split() == ["RUN", "KIND", "STARTED", "BY", "STATUS", "CHANGES"]
    assert f"{applied['run_id']}  apply " in text
    shown = cli("history", str(applied["run_id"])).stdout
    assert f"Undo with: remediate rollback {applied['run_id']}" in shown
    assert f'ssl_policy = "{WEAK}" -> "{shop["after"]}"' in shown


def test_history_of_an_unknown_run_is_one_line(cli: Cli) -> None:
    result = cli("history", "nope")
    assert result.code == 1
    assert result.stderr.startswith("error: no run 'nope' in ")
    assert len(result.stderr.splitlines()) == 1
    result = cli("history", "--kind", "deploy")
    assert result.code == 1
    assert result.stderr == (
        "error: --kind 'deploy': not a kind of run (plan, apply, dry-run, drift, rollback)\n"
    )
    assert cli("history").stdout == "No runs recorded yet.\n"


def test_rollback_restores_the_before_state(cli: Cli, fleet: Fleet, policy: Path) -> None:
    fixed = _json(cli("drift", "-p", str(policy), "-q", "--fix", "--format", "json").stdout)
    assert ssl_policy(fleet, "shop:443") != WEAK
    assert http2_enabled(fleet, "api")

    result = cli("rollback", str(fixed["run_id"]), "-p", str(policy), "-q", "--auto-approve")
    assert result.code == 0, result.stderr
    assert f"rollback of run {fixed['run_id']}" in result.stdout
    assert ssl_policy(fleet, "shop:443") == WEAK
    assert ssl_policy(fleet, "admin:8443") == WEAK
    assert not http2_enabled(fleet, "api")
    mqtt = boto3.client("elbv2", region_name="eu-west-1").describe_listeners(
        ListenerArns=[fleet.listeners["mqtt-edge:8883"]]
    )["Listeners"][0]
    assert mqtt["SslPolicy"] == "ELBSecurityPolicy-TLS-1-1-2017-01"
    assert mqtt.get("AlpnPolicy", []) in ([], ["None"])  # the API's two spellings of "no ALPN"

    runs = _json(cli("history", "--format", "json").stdout)["runs"]
    assert isinstance(runs, list)
    latest = runs[0]
    assert latest["kind"] == "rollback" and latest["status"] == "applied"
    assert latest["summary"]["rollback_of"] == fixed["run_id"]
    assert latest["outcomes"] == {"applied": 5}

    # The rollback is journaled like any apply: the drift it reintroduced is not "recurring".
    again = _json(cli("drift", "-p", str(policy), "-q", "--format", "json").stdout)
    assert again["summary"]["changes"] == 5
    assert again["summary"]["recurring"] == 0


def test_rollback_refuses_when_a_resource_moved(cli: Cli, fleet: Fleet, policy: Path) -> None:
    fixed = _json(cli("drift", "-p", str(policy), "-q", "--fix", "--format", "json").stdout)
    admin = fleet.listeners["admin:8443"]
    boto3.client("elbv2", region_name="eu-west-1").modify_listener(
        ListenerArn=admin, SslPolicy="ELBSecurityPolicy-TLS13-1-3-2021-06"
    )

    result = cli("rollback", str(fixed["run_id"]), "-p", str(policy), "-q", "--auto-approve")
    assert result.code == 1
    assert len(result.stderr.splitlines()) == 1
    assert result.stderr.startswith(f"error: rollback of run {fixed['run_id']} refused: ")
    assert admin in result.stderr
    assert "nothing was changed" in result.stderr
    assert fleet.listeners["shop:443"] not in result.stderr
    # Nothing was rolled back, not even the resources that did not move.
    assert ssl_policy(fleet, "shop:443") != WEAK
    assert http2_enabled(fleet, "api")

    latest = _json(cli("history", "--format", "json").stdout)["runs"]
    assert isinstance(latest, list)
    assert latest[0]["kind"] == "rollback" and latest[0]["status"] == "refused"
    assert latest[0]["summary"]["rollback_of"] == fixed["run_id"]


def test_rollback_of_a_run_that_changed_nothing(cli: Cli, fleet: Fleet, policy: Path) -> None:
    planned = _json(cli("plan", "-p", str(policy), "-q", "--format", "json").stdout)
    result = cli("rollback", str(planned["run_id"]), "-p", str(policy), "--auto-approve")
    assert result.code == 1
    assert result.stderr.strip() == (
        f"error: run {planned['run_id']} is a plan run: it changed nothing; "
        "there is nothing to roll back"
    )
    checked = _json(cli("drift", "-p", str(policy), "-q", "--format", "json").stdout)
    result = cli("rollback", str(checked["run_id"]), "-p", str(policy), "--auto-approve")
    assert result.code == 1
    assert "applied no change" in result.stderr


def test_rollback_asks_unless_auto_approved(cli: Cli, fleet: Fleet, policy: Path) -> None:
    fixed = _json(cli("drift", "-p", str(policy), "-q", "--fix", "--format", "json").stdout)
    result = cli("rollback", str(fixed["run_id"]), "-p", str(policy), "-q")
    assert result.code == 1
    assert "use --auto-approve" in result.stderr
    assert ssl_policy(fleet, "shop:443") != WEAK
