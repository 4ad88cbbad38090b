"""The fleet benchmark's parts on a small fleet: seeding member accounts that are read through
their role, the proxy's rate buckets per account, and the lower bound's arithmetic."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from bench.__main__ import fleet_bound, table
from bench.accounts import POLICY, accounts_file
from bench.fleet import MEMBER_ROLE, REGIONS, account_ids, seed_accounts, unit_key
from bench.lower_bound import fleet_lower_bound
from bench.proxy import DEFAULT_ACCOUNT, Limits, Proxy
from remediate.sandbox.aws import MotoServer

NO_RETRIES = Config(retries={"mode": "standard", "total_max_attempts": 1})


def member_client(account: str, region: str) -> Any:
    """An ELBv2 client signing with the member role's credentials (assumed through the proxy
    that AWS_ENDPOINT_URL points at)."""
    answer = boto3.client("sts", region_name="us-east-1").assume_role(
        RoleArn=f"arn:aws:iam::{account}:role/{MEMBER_ROLE}", RoleSessionName="bench"
    )["Credentials"]
    return boto3.client(
        "elbv2",
        region_name=region,
        aws_access_key_id=answer["AccessKeyId"],
        aws_secret_access_key=answer["SecretAccessKey"],
        aws_session_token=answer["SessionToken"],
        config=NO_RETRIES,
    )


def test_each_member_is_read_through_its_role_and_throttled_in_its_own_bucket(
    aws: MotoServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")
    members = account_ids(3)
    shape = seed_accounts(members, 2)
    assert dict(shape.load_balancers) == {unit_key(a, r): 2 for a in members for r in REGIONS}
    # Room for the four AssumeRole calls of the management account, four calls per member
    # account and region, and nothing refilled during the test.
    with Proxy(aws.url, Limits(latency=0, burst=4, rate=0.001)) as proxy:
        monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.url)
        clients = {account: member_client(account, REGIONS[0]) for account in members}
        for account, client in clients.items():
            arns = [
                lb["LoadBalancerArn"] for lb in client.describe_load_balancers()["LoadBalancers"]
            ]
            assert len(arns) == 2 and {arn.split(":")[4] for arn in arns} == {account}
        first = clients[members[0]]
        first.describe_load_balancers()
        first.describe_target_groups()
        first.describe_ssl_policies()
        with pytest.raises(ClientError) as throttled:
            first.describe_listeners(LoadBalancerArn=arns[0])
        assert throttled.value.response["Error"]["Code"] == "Throttling"
        # The other members' buckets, and the first member's other region, are untouched.
        clients[members[1]].describe_load_balancers()
        assert (
            len(member_client(members[0], REGIONS[1]).describe_load_balancers()["LoadBalancers"])
            == 2
        )
        by_account = proxy.calls_by_account()
        calls, throttled_count = proxy.counts_by_action()
    assert by_account == {
        DEFAULT_ACCOUNT: 4,  # AssumeRole, signed with the management account's credentials
        members[0]: 6,
        members[1]: 2,
        members[2]: 1,
    }
    assert throttled_count == 1
    assert calls["AssumeRole"] == 4


def test_the_fleet_bound_is_the_sts_bucket_or_the_units_in_flight() -> None:
    """Two units of 5 calls (3 pages, 1 load balancer, 1 ALB), each T_u = L + 2L (three calls
    depend on one another), with 40 ms latency."""
    from bench.fleet import Shape

    shape = Shape()
    for key in ("a/us-east-1", "a/eu-west-1"):
        shape.load_balancers[key] = 1
        shape.albs_with_https[key] = 1
    pages = {"a/us-east-1": 3, "a/eu-west-1": 3}
    limits = Limits(latency=0.04, burst=40, rate=20)
    # One unit at a time: both units' 0.12 s and the AssumeRole's 0.04 s.
    one = fleet_lower_bound(shape, pages, accounts=1, limits=limits, workers=8, parallel=1)
    assert (one.calls, round(one.seconds, 3)) == (11, 0.28)
    # Side by side: the longest unit after its AssumeRole.
    two = fleet_lower_bound(shape, pages, accounts=1, limits=limits, workers=8, parallel=2)
    assert round(two.seconds, 3) == 0.16
    # 100 AssumeRole calls in one bucket of 40, refilled at 20 a second: the last is admitted at
    # 3 s, then its unit's calls.
    many = fleet_lower_bound(shape, pages, accounts=100, limits=limits, workers=8, parallel=2)
    assert round(many.seconds, 3) == round(0.04 + 3.0 + 0.12, 3)


def test_the_floor_client_makes_the_calls_remediate_makes(
    aws: MotoServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The bench holds the plan to the floor client only if both do the same work: the same
    calls by action through the proxy, none throttled."""
    monkeypatch.setenv("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")
    members = account_ids(2)
    seed_accounts(members, 2)
    listed = tmp_path / "accounts.yml"
    accounts_file(members, listed)
    policy = tmp_path / "policy.yaml"
    policy.write_text(
        POLICY.format(regions=", ".join(REGIONS), accounts_file=json.dumps(str(listed))),
        encoding="utf-8",
    )
    calls: dict[str, Counter[str]] = {}
    with Proxy(aws.url, Limits(latency=0, burst=1000, rate=1000)) as proxy:
        env = {
            **os.environ,
            "AWS_ENDPOINT_URL": proxy.url,
            "REMEDIATE_STATE_DIR": str(tmp_path / "state"),
        }
        floor = [sys.executable, "-m", "bench.floor", str(listed), "--parallel", "4"]
        plan = [sys.executable, "-m", "remediate", "plan", "-p", str(policy), "--quiet"]
        for name, command in (("floor", floor), ("remediate", plan)):
            proxy.reset()
            done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
            assert done.returncode == 0, done.stderr
            calls[name], throttled = proxy.counts_by_action()
            assert throttled == 0
    # Per unit: 3 ELBv2 listings, 2 DescribeListeners, 2 attribute reads (both ALBs serve
    # HTTPS), Classic DescribeLoadBalancers and 3 API Gateway listings; one AssumeRole an account.
    units = len(members) * len(REGIONS)
    assert calls["floor"]["AssumeRole"] == len(members)
    assert calls["floor"]["DescribeListeners"] == 2 * units
    assert calls["floor"]["DescribeLoadBalancerAttributes"] == 2 * units
    assert calls["floor"]["DescribeLoadBalancers"] == 2 * units
    assert sum(calls["floor"].values()) == len(members) + 11 * units
    assert calls["floor"] == calls["remediate"]


def test_the_fleet_goal_is_held_to_the_larger_of_the_bound_and_the_floor() -> None:
    results = {"fleet.remediate_plan_s": 13.0, "fleet.lower_bound_s": 3.16, "fleet.floor_s": 10.0}
    assert fleet_bound(results) == 10.0
    assert "fleet plan / bound           1.30x    <=1.3x  yes" in table(results)
    assert fleet_bound({**results, "fleet.floor_s": 2.0}) == 3.16
    assert fleet_bound({"fleet.remediate_plan_s": 13.0}) is None
