"""`enforce()` and the CrossGuard pack on API Gateway domains and REST APIs and on GCP target SSL
proxies, with the real pulumi_aws/pulumi_gcp classes under Pulumi's mocks (tests/pulumi_engine)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pulumi_aws as aws
import pulumi_gcp as gcp
import pytest

from remediate.policy import build
from remediate.pulumi import enforce
from tests.pulumi_engine import run

PACK = Path(__file__).resolve().parent.parent / "stacks" / "policy-pack" / "policies.py"
REST_DOMAIN = "aws:apigateway/domainName:DomainName"


@pytest.fixture(scope="module")
def pack() -> ModuleType:
    spec = importlib.util.spec_from_file_location("remediate_pack_apigw", PACK)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _program(policy: Any) -> Any:
    def program() -> None:
        enforce(policy)
        aws.apigateway.DomainName(
            "shop",
            domain_name="shop.example.com",
            regional_certificate_arn="arn:cert",
            security_policy="TLS_1_0",
            endpoint_configuration={"types": "REGIONAL"},
        )
        aws.apigateway.DomainName(
            "edge", domain_name="edge.example.com", certificate_arn="arn:cert"
        )
        aws.apigateway.RestApi("orders", endpoint_configuration={"types": "REGIONAL"})
        aws.apigateway.RestApi(
            "internal", endpoint_configuration={"types": "PRIVATE"}, security_policy="TLS_1_2"
        )
        aws.apigatewayv2.DomainName(
            "ws",
            domain_name="ws.example.com",
            domain_name_configuration={
                "certificate_arn": "arn:cert",
                "endpoint_type": "REGIONAL",
                "security_policy": "TLS_1_0",
            },
        )
        gcp.compute.TargetSSLProxy("mqtt", backend_service="bs", ssl_certificates=["cert"])

    return program


def test_weak_api_gateway_resources_and_ssl_proxies_come_out_compliant() -> None:
    resources = run(_program(build()))
    assert resources["shop"].inputs["securityPolicy"] == "TLS_1_2"
    assert "endpointAccessMode" not in resources["shop"].inputs  # legacy: no mode
    assert resources["edge"].inputs["securityPolicy"] == "TLS_1_2"  # none declared: TLS_1_0
    assert resources["orders"].inputs["securityPolicy"] == "TLS_1_2"
    assert resources["internal"].inputs["securityPolicy"] == "TLS_1_2"
    assert resources["ws"].inputs["domainNameConfiguration"]["securityPolicy"] == "TLS_1_2"
    assert resources["ws"].inputs["domainNameConfiguration"]["certificateArn"] == "arn:cert"
    managed = [
        r
        for r in resources.values()
        if r.type == "gcp:compute/sSLPolicy:SSLPolicy" and r.inputs.get("name") == "remediate-tls"
    ]
    assert len(managed) == 1
    assert resources["mqtt"].inputs["sslPolicy"] == f"{managed[0].name}-id"


def test_a_tls13_minimum_declares_enhanced_policies_with_the_access_mode() -> None:
    resources = run(_program(build(tls={"minimum": "1.3"}, aws={"endpoint_access_mode": "STRICT"})))
    shop = resources["shop"].inputs
    assert (shop["securityPolicy"], shop["endpointAccessMode"]) == (
        "SecurityPolicy_TLS13_1_3_2025_09",
        "STRICT",
    )
    edge = resources["edge"].inputs  # no endpoint configuration: API Gateway's default, EDGE
    assert edge["securityPolicy"] == "SecurityPolicy_TLS13_2025_EDGE"
    # HTTP/WebSocket domains offer no TLS 1.3 policy: a finding, the input is left as declared.
    assert resources["ws"].inputs["domainNameConfiguration"]["securityPolicy"] == "TLS_1_0"


def test_the_pack_reports_and_remediates_a_weak_rest_domain(pack: ModuleType) -> None:
    props = {"securityPolicy": "TLS_1_0", "endpointConfiguration": {"types": "REGIONAL"}}
    (line,) = pack.violations(REST_DOMAIN, "shop", props, {})
    assert line.startswith("securityPolicy should be 'TLS_1_2': TLS_1_0 accepts TLS 1.0, 1.1")
    fixed = pack.remediation(REST_DOMAIN, "shop", props, {})
    assert fixed == {**props, "securityPolicy": "TLS_1_2"}
    assert pack.violations(REST_DOMAIN, "shop", fixed, {}) == []
    proxy = "gcp:compute/targetSSLProxy:TargetSSLProxy"
    assert pack.violations(proxy, "mqtt", {}, {})[0].startswith("sslPolicy should be the SSL")
    assert pack.remediation(proxy, "mqtt", {}, {}) is None


def test_a_weak_classic_negotiation_policy_references_a_strict_one(pack: ModuleType) -> None:
    def program() -> None:
        enforce(build())
        lb = "shop-classic"
        aws.elb.LoadBalancerPolicy(
            "weak",
            load_balancer_name=lb,
            policy_name="weak",
            policy_type_name="SSLNegotiationPolicyType",
            policy_attributes=[
                {"name": "Reference-Security-Policy", "value": "ELBSecurityPolicy-2016-08"}
            ],
        )
        aws.elb.LoadBalancerPolicy(
            "custom",
            load_balancer_name=lb,
            policy_name="custom",
            policy_type_name="SSLNegotiationPolicyType",
            policy_attributes=[
                {"name": "Protocol-TLSv1", "value": "true"},
                {"name": "Protocol-TLSv1.2", "value": "true"},
                {"name": "ECDHE-RSA-AES128-GCM-SHA256", "value": "true"},
            ],
        )
        aws.elb.LoadBalancerPolicy(
            "sticky",
            load_balancer_name=lb,
            policy_name="sticky",
            policy_type_name="LBCookieStickinessPolicyType",
            policy_attributes=[{"name": "CookieExpirationPeriod", "value": "300"}],
        )

    resources = run(program)
    strict = [{"name": "Reference-Security-Policy", "value": "ELBSecurityPolicy-TLS-1-2-2017-01"}]
    assert resources["weak"].inputs["policyAttributes"] == strict
    assert resources["custom"].inputs["policyAttributes"] == strict
    assert resources["sticky"].inputs["policyAttributes"] == [
        {"name": "CookieExpirationPeriod", "value": "300"}
    ]
    classic = "aws:elb/loadBalancerPolicy:LoadBalancerPolicy"
    props = {
        "policyTypeName": "SSLNegotiationPolicyType",
        "policyAttributes": [
            {"name": "Reference-Security-Policy", "value": "ELBSecurityPolicy-TLS-1-1-2017-01"}
        ],
    }
    (line,) = pack.violations(classic, "p", props, {})
    assert "accepts TLS 1.1" in line
    fixed = pack.remediation(classic, "p", props, {})
    assert fixed["policyAttributes"] == strict
    assert pack.remediation(classic, "p", fixed, {}) is None
