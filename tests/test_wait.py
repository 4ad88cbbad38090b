"""`apply --wait`: a run that waited for another plans afresh, or refuses a saved plan that the
other run made stale, instead of applying what the other run already changed."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import boto3
import pytest

from remediate.sandbox.aws import Fleet, MotoServer
from tests.aws_state import ssl_policy
from tests.conftest import Cli
from tests.test_drift import POLICY, REMEDIATE, WEAK, hold_lock

# On both journal back ends (SQLite and PostgreSQL).
pytestmark = pytest.mark.usefixtures("journal_backend")

COMPLIANT = "ELBSecurityPolicy-TLS13-1-2-2021-06"


def _waiting_apply(args: list[str], env: dict[str, str]) -> subprocess.Popen[str]:
    process = subprocess.Popen(
        [REMEDIATE, "apply", "-q", "--no-verify", "--wait", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stderr is not None
    assert "waiting for the lock held by" in process.stderr.readline()
    return process


def _fix_out_of_band(fleet: Fleet) -> None:
    """What the run holding the lock did meanwhile: it fixed one listener."""
    boto3.client("elbv2", region_name="us-east-1").modify_listener(
        ListenerArn=fleet.listeners["shop:443"], SslPolicy=COMPLIANT
    )


def test_a_run_that_waited_plans_afresh(
    fleet: Fleet, aws: MotoServer, write_policy: Callable[[str], Path], tmp_path: Path
) -> None:
    policy = write_policy(POLICY)
    env = {**os.environ, **aws.env(), "REMEDIATE_STATE_DIR": str(tmp_path / "state")}
    with hold_lock(tmp_path / "state"):
        process = _waiting_apply(["-p", str(policy), "--auto-approve", "--format", "json"], env=env)
        _fix_out_of_band(fleet)
    out, err = process.communicate(timeout=300)
    assert process.returncode == 0, err
    report = json.loads(out)
    assert report["status"] == "applied"
    resources = {outcome["resource"] for outcome in report["outcomes"]}
    assert fleet.listeners["shop:443"] not in resources
    assert fleet.listeners["admin:8443"] in resources
    assert ssl_policy(fleet, "shop:443") == COMPLIANT
    assert ssl_policy(fleet, "admin:8443") != WEAK


def test_a_saved_plan_made_stale_while_waiting_is_refused(
    cli: Cli, fleet: Fleet, aws: MotoServer, write_policy: Callable[[str], Path], tmp_path: Path
) -> None:
    policy = write_policy(POLICY)
    saved = tmp_path / "plan.json"
    assert cli("plan", "-p", str(policy), "-q", "--out", str(saved)).code == 0
    env = {**os.environ, **aws.env(), "REMEDIATE_STATE_DIR": str(tmp_path / "state")}
    with hold_lock(tmp_path / "state"):
        process = _waiting_apply([str(saved), "-p", str(policy)], env=env)
        _fix_out_of_band(fleet)
    _, err = process.communicate(timeout=300)
    assert process.returncode == 1
    [line] = err.strip().splitlines()
    assert "plan is stale" in line and fleet.listeners["shop:443"] in line
    assert "while this one waited for the lock" in line
    assert ssl_policy(fleet, "admin:8443") == WEAK
