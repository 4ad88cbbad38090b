"""Classic Load Balancers end to end against a moto server over HTTP.

moto 5 validates little of the Classic policy API; the sandbox makes it answer as real ELB does
(`remediate.sandbox.aws._strict_classic_policies`): predefined policies listed, DuplicatePolicyName,
PolicyNotFound and ListenerNotFound. The tests below read state back with the real boto3 client.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from remediate.sandbox.aws import Fleet, MotoServer, classic_resource, seed_classic_fleet
from tests.conftest import Cli

WritePolicy = Callable[..., Path]
OWN = "remediate-ELBSecurityPolicy-TLS-1-2-2017-01"

POLICY = """\
version: 1
tls:
  minimum: "{minimum}"
http2: true
aws:
  regions: [us-east-1]
"""


@pytest.fixture
def classic(aws: MotoServer) -> Fleet:
    return seed_classic_fleet()


@pytest.fixture
def policy_file(write_policy: WritePolicy) -> Path:
    return write_policy(POLICY.format(minimum="1.2"))


def _elb() -> Any:
    return boto3.client("elb", region_name="us-east-1")


def listener_policies(name: str, port: int) -> list[str]:
    """The policy names of listener `port` of `name`, as describe_load_balancers reports them."""
    lb = _elb().describe_load_balancers(LoadBalancerNames=[name])["LoadBalancerDescriptions"][0]
    for item in lb["ListenerDescriptions"]:
        if item["Listener"]["LoadBalancerPort"] == port:
            return list(item["PolicyNames"])
    raise AssertionError(f"{name} has no listener {port}")


def negotiation_policies(name: str) -> list[str]:
    raw = _elb().describe_load_balancer_policies(LoadBalancerName=name)["PolicyDescriptions"]
    return [p["PolicyName"] for p in raw if p["PolicyTypeName"] == "SSLNegotiationPolicyType"]


def reference_of(name: str, policy: str) -> str:
    raw = _elb().describe_load_balancer_policies(LoadBalancerName=name, PolicyNames=[policy])
    attributes = raw["PolicyDescriptions"][0]["PolicyAttributeDescriptions"]
    return {a["AttributeName"]: a["AttributeValue"] for a in attributes}[
        "Reference-Security-Policy"
    ]


def plan_json(cli: Cli, policy_file: Path) -> dict[str, Any]:
    result = cli("plan", "-p", str(policy_file), "--format", "json", "--quiet")
    assert result.code == 0, result.stderr
    plan: dict[str, Any] = json.loads(result.stdout)
    return plan


def test_plan_floors_each_weak_classic_listener_from_its_reference_policy(
    cli: Cli, classic: Fleet, policy_file: Path
) -> None:
    plan = plan_json(cli, policy_file)
    changes = {c["resource"]: c for c in plan["changes"]}
    assert set(changes) == {
        classic.classic["shop-classic:443"],
        classic.classic["shop-classic:8443"],
    }
    https = changes[classic.classic["shop-classic:443"]]
    assert (https["kind"], https["attribute"]) == ("classic-listener", "ssl_negotiation_policy")
    assert (https["before"], https["after"]) == ("ELBSecurityPolicy-2016-08", OWN)
    assert https["reason"].startswith(
        "accepts TLS 1.0, TLS 1.1 (ELBSecurityPolicy-2016-08 references ELBSecurityPolicy-2016-08)"
    )
    assert https["rules"] == ["aws-clb-tls-floor"]
    assert https["target"]["type"] == "aws-classic-listener"
    assert https["target"]["load_balancer_name"] == "shop-classic"
    ssl = changes[classic.classic["shop-classic:8443"]]
    assert (ssl["before"], ssl["after"]) == (None, OWN)
    assert "no negotiation policy, so ELB applies ELBSecurityPolicy-2016-08" in ssl["reason"]
    # partner-classic already references TLS-1-2-2017-01; HTTP :80 has no TLS.
    assert classic.classic["partner-classic:443"] not in changes


def test_apply_keeps_other_policies_and_creates_one_policy_per_load_balancer(
    cli: Cli, classic: Fleet, policy_file: Path
) -> None:
    """Real ELB's SetLoadBalancerPoliciesOfListener replaces the listener's whole policy list, so a
    listener's stickiness policy survives only if remediate sends it back; and one negotiation
    policy serves both listeners of shop-classic (a second CreateLoadBalancerPolicy of the same
    name is DuplicatePolicyName on real ELB, which the sandbox enforces)."""
    result = cli("apply", "-p", str(policy_file), "--auto-approve", "--quiet")
    assert result.code == 0, result.stdout + result.stderr
    assert "Apply: 2 applied, 0 failed" in result.stdout
    assert listener_policies("shop-classic", 443) == [OWN, "shop-classic-sticky"]
    assert listener_policies("shop-classic", 8443) == [OWN]
    assert sorted(negotiation_policies("shop-classic")) == ["ELBSecurityPolicy-2016-08", OWN]
    assert reference_of("shop-classic", OWN) == "ELBSecurityPolicy-TLS-1-2-2017-01"
    assert listener_policies("partner-classic", 443) == ["ELBSecurityPolicy-TLS-1-2-2017-01"]
    second = cli("plan", "-p", str(policy_file), "--quiet", "--detailed-exitcode")
    assert second.code == 0, second.stdout
    assert "No changes." in second.stdout


def test_a_later_run_reuses_remediates_policy_instead_of_creating_another(
    cli: Cli, classic: Fleet, policy_file: Path
) -> None:
    """A listener that drifted back after a fix gets the policy remediate created the first time:
    real ELB would answer DuplicatePolicyName to a second create, and a new name per run would
    fill the account's policy quota (Cloud Custodian issue 1295)."""
    assert cli("apply", "-p", str(policy_file), "--auto-approve", "--quiet").code == 0
    _elb().set_load_balancer_policies_of_listener(
        LoadBalancerName="shop-classic",
        LoadBalancerPort=443,
        PolicyNames=["ELBSecurityPolicy-2016-08", "shop-classic-sticky"],
    )
    drift = cli("drift", "-p", str(policy_file), "--fix", "--quiet")
    assert drift.code == 0, drift.stdout + drift.stderr
    assert listener_policies("shop-classic", 443) == [OWN, "shop-classic-sticky"]
    assert sorted(negotiation_policies("shop-classic")) == ["ELBSecurityPolicy-2016-08", OWN]


def test_rollback_restores_the_previous_negotiation_policy_and_keeps_the_rest(
    cli: Cli, classic: Fleet, policy_file: Path
) -> None:
    applied = cli("apply", "-p", str(policy_file), "--auto-approve", "-q", "--format", "json")
    assert applied.code == 0, applied.stderr
    run_id = json.loads(applied.stdout)["run_id"]
    rollback = cli("rollback", run_id, "-p", str(policy_file), "--auto-approve", "--quiet")
    assert rollback.code == 0, rollback.stdout + rollback.stderr
    assert listener_policies("shop-classic", 443) == [
        "ELBSecurityPolicy-2016-08",
        "shop-classic-sticky",
    ]
    assert listener_policies("shop-classic", 8443) == []


def test_a_foreign_policy_with_remediates_name_is_refused_not_overwritten(
    cli: Cli, classic: Fleet, policy_file: Path
) -> None:
    """Real ELB refuses a second policy of the same name (DuplicatePolicyName); a policy of that
    name that does not reference the chosen predefined policy is someone else's and stays."""
    _elb().create_load_balancer_policy(
        LoadBalancerName="shop-classic",
        PolicyName=OWN,
        PolicyTypeName="SSLNegotiationPolicyType",
        PolicyAttributes=[
            {
                "AttributeName": "Reference-Security-Policy",
                "AttributeValue": "ELBSecurityPolicy-2016-08",
            }
        ],
    )
    result = cli("apply", "-p", str(policy_file), "--auto-approve", "--quiet")
    assert result.code != 0
    assert "does not reference ELBSecurityPolicy-TLS-1-2-2017-01" in result.stdout + result.stderr
    assert listener_policies("shop-classic", 443) == [
        "ELBSecurityPolicy-2016-08",
        "shop-classic-sticky",
    ]


def test_the_sandbox_refuses_what_real_elb_refuses(classic: Fleet) -> None:
    """What the tests above rely on: the strict sandbox answers as real ELB."""
    elb = _elb()
    with pytest.raises(ClientError, match="DuplicatePolicyName"):
        elb.create_load_balancer_policy(
            LoadBalancerName="shop-classic",
            PolicyName="ELBSecurityPolicy-2016-08",
            PolicyTypeName="SSLNegotiationPolicyType",
            PolicyAttributes=[
                {
                    "AttributeName": "Reference-Security-Policy",
                    "AttributeValue": "ELBSecurityPolicy-2016-08",
                }
            ],
        )
    with pytest.raises(ClientError, match="PolicyNotFound"):
        elb.set_load_balancer_policies_of_listener(
            LoadBalancerName="shop-classic", LoadBalancerPort=443, PolicyNames=["nope"]
        )
    with pytest.raises(ClientError, match="ListenerNotFound"):
        elb.set_load_balancer_policies_of_listener(
            LoadBalancerName="shop-classic", LoadBalancerPort=9999, PolicyNames=[]
        )
    names = [p["PolicyName"] for p in elb.describe_load_balancer_policies()["PolicyDescriptions"]]
    assert "ELBSecurityPolicy-TLS-1-2-2017-01" in names


def test_tls_1_3_minimum_is_a_finding_classic_elb_cannot_meet(
    cli: Cli, classic: Fleet, write_policy: WritePolicy
) -> None:
    plan = plan_json(cli, write_policy(POLICY.format(minimum="1.3")))
    assert not [c for c in plan["changes"] if c["kind"] == "classic-listener"]
    rules = {(f["resource"], f["rule"]) for f in plan["findings"]}
    for key in ("shop-classic:443", "shop-classic:8443", "partner-classic:443"):
        assert (classic.classic[key], "aws-clb-no-policy-meets") in rules


def test_resource_id_names_load_balancer_and_port() -> None:
    assert classic_resource("us-east-1", "shop", 443).endswith(":loadbalancer/shop/listener/443")


def test_permissions_list_the_classic_calls(cli: Cli) -> None:
    result = cli("permissions", "--provider", "aws", "--write")
    assert result.code == 0, result.stderr
    actions = json.loads(result.stdout)["Statement"][0]["Action"]
    for action in (
        "elasticloadbalancing:DescribeLoadBalancerPolicies",
        "elasticloadbalancing:CreateLoadBalancerPolicy",
        "elasticloadbalancing:SetLoadBalancerPoliciesOfListener",
    ):
        assert action in actions
