"""ELBv2 security policy choice: FIPS (`aws.fips`), the load balancer type, and the shape of
`describe_ssl_policies` against botocore's own service model."""

from __future__ import annotations

import json
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

import boto3
import botocore.session
import pytest

from remediate.policy import build
from remediate.providers.aws.rules import SslPolicy, choose_ssl_policy, listener_verdict
from remediate.rules import RuleError
from remediate.sandbox.aws import FleetBuilder, MotoServer
from tests.conftest import Cli


def _policy(name: str, protocols: list[str], types: list[str]) -> SslPolicy:
    return SslPolicy.from_api(
        {
            "Name": name,
            "SslProtocols": protocols,
            "Ciphers": [{"Name": "ECDHE-RSA-AES128-GCM-SHA256", "Priority": 1}],
            "SupportedLoadBalancerTypes": types,
        }
    )


# Synthetic entries: what matters is the name's FIPS marker, the protocols and the types.
CATALOG = [
    _policy("Example-TLS13-1-2-2023-04", ["TLSv1.2", "TLSv1.3"], ["application", "network"]),
    _policy("Example-TLS13-1-2-FIPS-ALB-2023-04", ["TLSv1.2", "TLSv1.3"], ["application"]),
    _policy("Example-TLS13-1-2-FIPS-NLB-2023-04", ["TLSv1.2", "TLSv1.3"], ["network"]),
    _policy("Example-TLS13-1-0-FIPS-2023-04", ["TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3"], []),
]


def test_fips_chooses_only_fips_policies_for_the_load_balancer_type() -> None:
    assert choose_ssl_policy(CATALOG, "1.2", "application").name == "Example-TLS13-1-2-2023-04"
    fips_alb = choose_ssl_policy(CATALOG, "1.2", "application", fips=True)
    fips_nlb = choose_ssl_policy(CATALOG, "1.2", "network", fips=True)
    assert fips_alb.name == "Example-TLS13-1-2-FIPS-ALB-2023-04"
    assert fips_nlb.name == "Example-TLS13-1-2-FIPS-NLB-2023-04"
    with pytest.raises(RuleError, match="not a FIPS policy"):
        choose_ssl_policy(CATALOG, "1.2", "application", "Example-TLS13-1-2-2023-04", fips=True)
    with pytest.raises(RuleError, match="no FIPS security policy offered for gateway"):
        choose_ssl_policy(CATALOG, "1.2", "gateway", fips=True)


def test_fips_moves_a_compliant_listener_that_is_not_on_a_fips_policy() -> None:
    policy = build(aws={"fips": True})
    settings = {"protocol": "HTTPS", "ssl_policy": "Example-TLS13-1-2-2023-04"}
    verdict = listener_verdict(settings, "application", CATALOG, policy)
    assert [(c.after, c.rules) for c in verdict.changes] == [
        ("Example-TLS13-1-2-FIPS-ALB-2023-04", ("aws-elb-fips",))
    ]
    assert not listener_verdict(settings, "application", CATALOG, build(aws={})).changes


def test_fips_moves_alb_and_nlb_listeners_to_fips_policies_end_to_end(
    cli: Cli, aws: MotoServer, write_policy: Callable[..., Path]
) -> None:
    """Plan and apply with aws.fips on the sandbox: each listener gets the best FIPS policy for
    its load balancer type and the TLS floor, read back from the API; the second plan is clean.

    moto's own list has no FIPS policy (real ELBv2 has 22) and its modify_listener refuses one;
    the sandbox serves the published catalog instead (remediate.sandbox.aws), as real ELBv2 would.
    """
    builder = FleetBuilder("us-east-1")
    builder.target_group("web")
    builder.target_group("mqtt", protocol="TCP")
    builder.load_balancer("shop")
    alb = builder.listener("shop", 443, "HTTPS", "web", ssl_policy="ELBSecurityPolicy-2016-08")
    compliant = builder.listener(
        "shop", 8443, "HTTPS", "web", ssl_policy="ELBSecurityPolicy-TLS13-1-2-Res-2021-06"
    )
    builder.load_balancer("edge", kind="network")
    nlb = builder.listener(
        "edge", 8883, "TLS", "mqtt", ssl_policy="ELBSecurityPolicy-TLS-1-1-2017-01"
    )
    path = write_policy("aws: {regions: [us-east-1], fips: true}\nhttp2: false\n")
    result = cli("apply", "-p", str(path), "-q", "--auto-approve")
    assert result.code == 0, result.stderr
    client = boto3.client("elbv2", region_name="us-east-1")
    after = {
        arn: client.describe_listeners(ListenerArns=[arn])["Listeners"][0]["SslPolicy"]
        for arn in (alb, compliant, nlb)
    }
    # TLS 1.3 and 1.2, AEAD ciphers only, the newest revision: the FIPS twin of the console's
    # default, offered for both types.
    assert after == dict.fromkeys(
        (alb, compliant, nlb), "ELBSecurityPolicy-TLS13-1-2-Res-FIPS-PQ-2025-09"
    )
    again = cli("plan", "-p", str(path), "-q", "--format", "json")
    assert again.code == 0, again.stderr
    assert json.loads(again.stdout)["changes"] == []
    # A TLS 1.3 floor takes the TLS 1.3-only FIPS policy.
    strict = write_policy(
        "aws: {regions: [us-east-1], fips: true}\nhttp2: false\ntls: {minimum: '1.3'}\n",
        name="strict.yaml",
    )
    assert cli("apply", "-p", str(strict), "-q", "--auto-approve").code == 0
    assert client.describe_listeners(ListenerArns=[nlb])["Listeners"][0]["SslPolicy"] == (
        "ELBSecurityPolicy-TLS13-1-3-FIPS-PQ-2025-09"
    )


def _model_members(shape: str) -> dict[str, Any]:
    model = botocore.session.get_session().get_service_model("elbv2")
    return dict(model.shape_for(shape).members)


def test_the_ssl_policy_shape_is_botocores() -> None:
    """What `SslPolicy.from_api` reads, the bundled catalog holds and moto answers are members of
    the SslPolicy shape in botocore's elbv2 service model (botocore/data/elbv2/*/service-2.json)."""
    members = _model_members("SslPolicy")
    assert {"Name", "SslProtocols", "Ciphers", "SupportedLoadBalancerTypes"} <= set(members)
    cipher = set(members["Ciphers"].member.members)
    assert {"Name", "Priority"} <= cipher
    text = resources.files("remediate.pulumi").joinpath("data", "elb-ssl-policies.json")
    for raw in json.loads(text.read_text("utf-8"))["SslPolicies"]:
        assert set(raw) <= set(members), raw["Name"]
        for item in raw.get("Ciphers", []):
            assert set(item) <= cipher


def test_the_live_answer_has_the_models_shape(aws: MotoServer) -> None:
    members = _model_members("SslPolicy")
    answer = boto3.client("elbv2", region_name="us-east-1").describe_ssl_policies()
    assert answer["SslPolicies"]
    for raw in answer["SslPolicies"]:
        assert set(raw) <= set(members), raw["Name"]
