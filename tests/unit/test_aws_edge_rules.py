"""AWS rules for Classic Load Balancer listeners and API Gateway (HTTP/WebSocket) custom domains:
which negotiation policy or security policy a weak endpoint gets, and what is only a finding.

Listener and domain settings are built from responses shaped as botocore returns them (the same
`listener_settings` / `settings_of` discovery uses); the allowed API Gateway security policies
come from botocore's own service model, as in discovery."""

from __future__ import annotations

from typing import Any

import boto3
import pytest

from remediate.inventory import Inventory
from remediate.model import Endpoint
from remediate.planner import plan
from remediate.policy import Policy
from remediate.policy import model as policy_model
from remediate.providers.aws import apigateway, classic
from remediate.providers.aws.rules import (
    API_NO_POLICY_MEETS,
    API_SECURITY_POLICIES,
    API_TLS_FLOOR,
    CLASSIC_NEGOTIATION,
    CLASSIC_NO_POLICY_MEETS,
    CLASSIC_TLS_FLOOR,
    CLASSIC_UNKNOWN_POLICY,
    ClassicPolicy,
    api_policy_floor,
    classic_listener_verdict,
    evaluate,
    http_api_domain_verdict,
)
from remediate.rules import Verdict

pytestmark = pytest.mark.unit

REGION = "eu-west-1"
# The Classic ELB predefined policies as AWS documents them (protocols each enables).
P2011 = ClassicPolicy("ELBSecurityPolicy-2011-08", ("1.0",), sslv3=True)
P2015 = ClassicPolicy("ELBSecurityPolicy-2015-05", ("1.0", "1.1", "1.2"))
P2016 = ClassicPolicy("ELBSecurityPolicy-2016-08", ("1.0", "1.1", "1.2"))
TLS11 = ClassicPolicy("ELBSecurityPolicy-TLS-1-1-2017-01", ("1.1", "1.2"))
TLS12_2017 = ClassicPolicy("ELBSecurityPolicy-TLS-1-2-2017-01", ("1.2",))
TLS12_2015 = ClassicPolicy("ELBSecurityPolicy-TLS-1-2-2015-01", ("1.2",))
CATALOG = [P2011, P2015, P2016, TLS11, TLS12_2015, TLS12_2017]


def policy(minimum: str = "1.2") -> Policy:
    return policy_model().model_validate({"aws": {}, "tls": {"minimum": minimum}})


def negotiation(**attributes: str) -> dict[str, Any]:
    """A load balancer's SSL negotiation policy as `describe_load_balancer_policies` returns it."""
    return {
        "type": classic.NEGOTIATION_TYPE,
        "attributes": attributes,
    }


def classic_listener(
    policies: dict[str, dict[str, Any]], names: list[str], protocol: str = "HTTPS"
) -> dict[str, Any]:
    """Settings of one listener from a `ListenerDescriptions` item and the LB's policies."""
    description = {
        "Listener": {"Protocol": protocol, "LoadBalancerPort": 443, "InstancePort": 80},
        "PolicyNames": names,
    }
    return classic.listener_settings(description, policies)


def test_a_listener_without_a_negotiation_policy_is_judged_by_the_elb_default() -> None:
    settings = classic_listener({}, [])
    assert settings[CLASSIC_NEGOTIATION] is None
    verdict = classic_listener_verdict(settings, CATALOG, policy())
    [change] = verdict.changes
    assert (change.attribute, change.before, change.after) == (
        CLASSIC_NEGOTIATION,
        None,
        "remediate-ELBSecurityPolicy-TLS-1-2-2017-01",
    )
    assert change.rules == (CLASSIC_TLS_FLOOR,)
    assert change.reason == (
        "accepts TLS 1.0, TLS 1.1 (no negotiation policy, so ELB applies "
        "ELBSecurityPolicy-2016-08); policy minimum is TLS 1.2; the new policy references "
        "ELBSecurityPolicy-TLS-1-2-2017-01"
    )
    assert verdict.findings == []


def test_a_referenced_predefined_policy_is_judged_by_its_protocols() -> None:
    policies = {
        "shop-tls": negotiation(**{"Reference-Security-Policy": TLS11.name}),
        "sticky": {"type": "LBCookieStickinessPolicyType", "attributes": {}},
    }
    settings = classic_listener(policies, ["sticky", "shop-tls"])
    assert settings["other_policies"] == ["sticky"]
    [change] = classic_listener_verdict(settings, CATALOG, policy()).changes
    assert change.before == "shop-tls"
    assert change.reason.startswith(
        f"accepts TLS 1.1 (shop-tls references {TLS11.name}); policy minimum is TLS 1.2"
    )
    strong = classic_listener(
        {"ok": negotiation(**{"Reference-Security-Policy": TLS12_2017.name})}, ["ok"]
    )
    assert classic_listener_verdict(strong, CATALOG, policy()) == Verdict()


def test_a_custom_policy_is_judged_by_its_own_protocol_attributes() -> None:
    custom = negotiation(
        **{
            "Protocol-SSLv3": "true",
            "Protocol-TLSv1": "false",
            "Protocol-TLSv1.1": "false",
            "Protocol-TLSv1.2": "true",
            "ECDHE-RSA-AES128-GCM-SHA256": "true",
        },
    )
    settings = classic_listener({"custom": custom}, ["custom"])
    assert (settings["policy_versions"], settings["policy_sslv3"]) == (["1.2"], True)
    [change] = classic_listener_verdict(settings, CATALOG, policy()).changes
    assert change.reason.startswith("accepts SSLv3 (custom policy custom)")
    tls_only = negotiation(**{"Protocol-TLSv1.1": "TRUE", "Protocol-TLSv1.2": "true"})
    settings = classic_listener({"t": tls_only}, ["t"])
    assert settings["policy_versions"] == ["1.1", "1.2"]
    assert (
        classic_listener_verdict(settings, CATALOG, policy())
        .changes[0]
        .reason.startswith("accepts TLS 1.1 (custom policy t)")
    )
    # A custom policy with SSLv3 alone is still judged by its attributes.
    settings = {CLASSIC_NEGOTIATION: "c", "policy_versions": [], "policy_sslv3": True}
    assert (
        classic_listener_verdict(settings, CATALOG, policy())
        .changes[0]
        .reason.startswith("accepts SSLv3 (custom policy c)")
    )


def test_a_policy_whose_protocols_cannot_be_told_is_a_finding() -> None:
    unknown_reference = classic_listener(
        {"p": negotiation(**{"Reference-Security-Policy": "ELBSecurityPolicy-2099-01"})},
        ["p"],
    )
    verdict = classic_listener_verdict(unknown_reference, CATALOG, policy())
    assert verdict.changes == []
    [finding] = verdict.findings
    assert finding.rule == CLASSIC_UNKNOWN_POLICY
    assert finding.message == (
        "negotiation policy p references ELBSecurityPolicy-2099-01: "
        "describe_load_balancer_policies does not say which protocols it enables"
    )
    no_attributes = classic_listener({"bare": negotiation()}, ["bare"])
    [finding] = classic_listener_verdict(no_attributes, CATALOG, policy()).findings
    assert finding.message.startswith("negotiation policy bare: ")
    # Without the catalog even the ELB default cannot be judged.
    [finding] = classic_listener_verdict(classic_listener({}, []), [], policy()).findings
    assert finding.message.startswith(
        "negotiation policy no negotiation policy, so ELB applies ELBSecurityPolicy-2016-08: "
    )


def test_the_most_compatible_then_newest_predefined_policy_is_chosen() -> None:
    weak = classic_listener({}, [])
    # For TLS 1.2, both TLS-1-2 policies fit: the newer revision wins; a policy with SSLv3 or
    # no protocols never fits.
    empty = ClassicPolicy("ELBSecurityPolicy-2020-01", ())
    catalog = [P2016, TLS12_2015, TLS12_2017, empty]
    assert classic_listener_verdict(weak, catalog, policy()).changes[0].after == (
        "remediate-ELBSecurityPolicy-TLS-1-2-2017-01"
    )
    # Same floor and revision: the name decides, whatever the catalog order.
    a = ClassicPolicy("ELBSecurityPolicy-A-2017-01", ("1.2",))
    b = ClassicPolicy("ELBSecurityPolicy-B-2017-01", ("1.2",))
    assert classic_listener_verdict(weak, [P2016, b, a], policy()).changes[0].after == (
        "remediate-ELBSecurityPolicy-A-2017-01"
    )
    # A name without a date ranks as the oldest revision.
    undated = ClassicPolicy("ELBSecurityPolicy-TLS-1-2-Ext", ("1.2",))
    assert classic_listener_verdict(weak, [P2016, undated, TLS12_2015], policy()).changes[
        0
    ].after == ("remediate-ELBSecurityPolicy-TLS-1-2-2015-01")
    # The most compatible floor wins over a newer revision (a TLS 1.3-only policy, were one
    # offered, would shut out TLS 1.2 clients).
    tls13_only = ClassicPolicy("ELBSecurityPolicy-TLS13-2030-01", ("1.3",))
    sslv3_too = ClassicPolicy("ELBSecurityPolicy-SSL-2031-01", ("1.2",), sslv3=True)
    assert classic_listener_verdict(
        weak, [P2016, tls13_only, sslv3_too, TLS12_2015], policy()
    ).changes[0].after == ("remediate-ELBSecurityPolicy-TLS-1-2-2015-01")


def test_no_classic_policy_meeting_the_minimum_is_a_finding_naming_the_way_out() -> None:
    verdict = classic_listener_verdict(classic_listener({}, []), CATALOG, policy("1.3"))
    assert verdict.changes == []
    [finding] = verdict.findings
    assert finding.rule == CLASSIC_NO_POLICY_MEETS
    assert finding.message == (
        "accepts TLS 1.0, TLS 1.1, TLS 1.2 (no negotiation policy, so ELB applies "
        "ELBSecurityPolicy-2016-08); no Classic ELB predefined policy accepts only TLS 1.3 and "
        "above (Classic ELB has no TLS 1.3): move the listener to an ALB or NLB"
    )


def test_classic_listeners_are_evaluated_with_their_regions_catalog() -> None:
    endpoint = Endpoint(
        provider="aws",
        resource=classic.resource_id(REGION, "123456789012", "shop", 443),
        kind="classic-listener",
        name="shop:443",
        location=REGION,
        settings=classic_listener({}, []),
        context={"load_balancer_name": "shop"},
    )
    facts = {"aws.classic_policies": {REGION: CATALOG, "us-east-1": [P2016]}}
    assert [c.after for c in evaluate(endpoint, policy(), facts).changes] == [
        "remediate-ELBSecurityPolicy-TLS-1-2-2017-01"
    ]
    assert evaluate(endpoint, policy(), {}).findings[0].rule == CLASSIC_UNKNOWN_POLICY


# -- API Gateway HTTP/WebSocket custom domains ----------------------------------------------------


@pytest.fixture(scope="module")
def allowed() -> list[str]:
    """The SecurityPolicy enum of botocore's apigatewayv2 model (no call is made)."""
    client = boto3.client(
        "apigatewayv2",
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    return apigateway.security_policies(client)


def domain(*policies: str) -> dict[str, Any]:
    """Settings of a domain from a `get_domain_names` item."""
    return apigateway.settings_of(
        {
            "DomainName": "api.example.com",
            "DomainNameArn": f"arn:aws:apigateway:{REGION}::/domainnames/api.example.com",
            "DomainNameConfigurations": [
                {
                    "ApiGatewayDomainName": "d-abc.execute-api.eu-west-1.amazonaws.com",
                    "CertificateArn": "arn:aws:acm:eu-west-1:123456789012:certificate/x",
                    "DomainNameStatus": "AVAILABLE",
                    "EndpointType": "REGIONAL",
                    "SecurityPolicy": name,
                }
                for name in policies
            ],
        }
    )


def test_api_policy_names_give_their_floor() -> None:
    assert [api_policy_floor(n) for n in ("TLS_1_0", "TLS_1_2", "TLS_1_3")] == ["1.0", "1.2", "1.3"]
    assert api_policy_floor("SecurityPolicy_TLS13_1_2_2021_06") is None
    assert api_policy_floor("TLS_1_2_extra") is None
    assert api_policy_floor("") is None


def test_the_service_model_offers_tls_1_0_and_1_2(allowed: list[str]) -> None:
    assert {"TLS_1_0", "TLS_1_2"} <= set(allowed)


def test_a_tls_1_0_domain_gets_tls_1_2_in_every_weak_configuration(allowed: list[str]) -> None:
    verdict = http_api_domain_verdict(domain("TLS_1_0", "TLS_1_2", "TLS_1_0"), allowed, policy())
    [change] = verdict.changes
    assert (change.attribute, change.before, change.after) == (
        API_SECURITY_POLICIES,
        ["TLS_1_0", "TLS_1_2", "TLS_1_0"],
        ["TLS_1_2", "TLS_1_2", "TLS_1_2"],
    )
    assert change.reason == "TLS_1_0 accepts TLS 1.0, 1.1; policy minimum is TLS 1.2"
    assert change.rules == (API_TLS_FLOOR,)
    assert verdict.findings == []


def test_the_most_compatible_allowed_policy_meeting_the_minimum_is_chosen() -> None:
    allowed = ["TLS_1_3", "TLS_1_0", "TLS_1_2", "Custom_Policy"]
    [change] = http_api_domain_verdict(domain("TLS_1_0"), allowed, policy()).changes
    assert change.after == ["TLS_1_2"]
    [change] = http_api_domain_verdict(domain("TLS_1_2"), allowed, policy("1.3")).changes
    assert change.after == ["TLS_1_3"]
    assert change.reason == "TLS_1_2 accepts TLS 1.2; policy minimum is TLS 1.3"


def test_strong_or_unrecognised_policies_are_left_alone(allowed: list[str]) -> None:
    assert http_api_domain_verdict(domain("TLS_1_2"), allowed, policy()).changes == []
    assert http_api_domain_verdict(domain("TLS_1_2"), allowed, policy()).findings == []
    assert http_api_domain_verdict(domain("SecurityPolicy_X"), allowed, policy()).changes == []
    assert http_api_domain_verdict(domain(), allowed, policy()).changes == []


def test_no_allowed_policy_meeting_the_minimum_is_a_finding(allowed: list[str]) -> None:
    verdict = http_api_domain_verdict(
        domain("TLS_1_0", "TLS_1_2"), ["TLS_1_0", "TLS_1_2"], policy("1.3")
    )
    assert verdict.changes == []
    [finding] = verdict.findings
    assert finding.rule == API_NO_POLICY_MEETS
    assert finding.message == (
        "TLS_1_0 accepts TLS 1.0, 1.1, 1.2; TLS_1_2 accepts TLS 1.2; no security policy of "
        "HTTP/WebSocket API domains (TLS_1_0, TLS_1_2) accepts only TLS 1.3 and above"
    )


def test_domains_are_evaluated_with_their_regions_allowed_policies(allowed: list[str]) -> None:
    endpoint = Endpoint(
        provider="aws",
        resource=f"arn:aws:apigateway:{REGION}::/domainnames/api.example.com",
        kind="http-api-domain",
        name="api.example.com (HTTP/WebSocket API domain)",
        location=REGION,
        settings=domain("TLS_1_0"),
        context={"domain_name": "api.example.com"},
    )
    facts = {"aws.api_security_policies": {REGION: allowed, "us-east-1": []}}
    assert evaluate(endpoint, policy(), facts).changes[0].after == ["TLS_1_2"]
    # No allowed list for the region: nothing can be proposed, only reported.
    assert evaluate(endpoint, policy(), {}).findings[0].rule == API_NO_POLICY_MEETS
    result = plan(Inventory([endpoint], facts, ["aws"]), policy())
    assert [(c.attribute, c.after, c.kind) for c in result.changes] == [
        (API_SECURITY_POLICIES, ["TLS_1_2"], "http-api-domain")
    ]
