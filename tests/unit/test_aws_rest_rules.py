"""API Gateway REST APIs and REST custom domains on their own: the floor each security policy name
implies, which policies an endpoint type may take, and the verdict on a domain or API, with the
values of botocore's own `SecurityPolicy` enum (what the API accepts), never a hand-made list."""

from __future__ import annotations

from typing import Any

import botocore.session
import pytest

from remediate.policy import Policy
from remediate.policy import model as policy_model
from remediate.providers.aws.rules import (
    FIPS_POLICY,
    REST_MIXED_ENDPOINTS,
    REST_NO_POLICY_MEETS,
    REST_TLS_FLOOR,
    REST_UNKNOWN_POLICY,
    enhanced_api_policy,
    rest_policies_for,
    rest_policy_floor,
    rest_verdict,
)
from remediate.rules import RuleError

ALLOWED: list[str] = list(
    botocore.session.get_session().get_service_model("apigateway").shape_for("SecurityPolicy").enum
)


def policy(minimum: str = "1.2", **aws: Any) -> Policy:
    return policy_model().model_validate({"tls": {"minimum": minimum}, "aws": aws})


def domain(
    current: str | None = "TLS_1_0", types: tuple[str, ...] = ("REGIONAL",), **more: Any
) -> dict[str, Any]:
    return {"security_policy": current, "endpoint_types": list(types), **more}


def test_the_model_offers_legacy_and_enhanced_policies() -> None:
    """What the tests below rely on: botocore's enum holds both families and edge variants."""
    assert {"TLS_1_0", "TLS_1_2", "SecurityPolicy_TLS13_1_3_2025_09"} <= set(ALLOWED)
    assert any(name.endswith("_EDGE") for name in ALLOWED)


@pytest.mark.parametrize(
    ("name", "floor"),
    [
        ("TLS_1_0", "1.0"),
        ("TLS_1_2", "1.2"),
        ("SecurityPolicy_TLS13_1_2_2021_06", "1.2"),
        ("SecurityPolicy_TLS13_1_3_2025_09", "1.3"),
        ("SecurityPolicy_TLS13_1_2_FIPS_PQ_2025_09", "1.2"),
        ("SecurityPolicy_TLS13_2025_EDGE", "1.3"),
        ("SecurityPolicy_TLS12_PFS_2025_EDGE", "1.2"),
        ("SecurityPolicy_TLS12_2018_EDGE", "1.2"),
        ("SSL_3", None),
        ("", None),
    ],
)
def test_a_policy_floor_is_read_from_its_name(name: str, floor: str | None) -> None:
    assert rest_policy_floor(name) == floor


def test_every_value_of_the_model_has_a_floor() -> None:
    assert [name for name in ALLOWED if rest_policy_floor(name) is None] == []


def test_only_the_new_family_is_enhanced() -> None:
    assert [name for name in ALLOWED if not enhanced_api_policy(name)] == ["TLS_1_0", "TLS_1_2"]


def test_edge_policies_go_to_edge_endpoints_and_the_others_to_regional_and_private() -> None:
    edge = rest_policies_for(ALLOWED, "EDGE")
    regional = rest_policies_for(ALLOWED, "REGIONAL")
    assert edge == [n for n in ALLOWED if n.startswith("TLS_") or n.endswith("_EDGE")]
    assert regional == [n for n in ALLOWED if not n.endswith("_EDGE")]
    assert rest_policies_for(ALLOWED, "PRIVATE") == regional


def test_a_weak_domain_gets_the_most_compatible_legacy_policy_that_meets_the_minimum() -> None:
    verdict = rest_verdict(domain(), ALLOWED, policy(), "REST custom domain")
    assert verdict.findings == []
    [change] = verdict.changes
    assert (change.attribute, change.before, change.after) == (
        "security_policy",
        "TLS_1_0",
        "TLS_1_2",
    )
    assert change.rules == (REST_TLS_FLOOR,)
    assert change.reason.startswith("TLS_1_0 accepts TLS 1.0, 1.1")
    assert "policy minimum is TLS 1.2" in change.reason
    assert "domainNameStatus" in change.reason and "apiStatus" not in change.reason


def test_a_rest_api_is_told_about_its_stages_and_redeployment() -> None:
    [change] = rest_verdict(domain(), ALLOWED, policy(), "REST API").changes
    assert "apiStatus" in change.reason and "redeployed" in change.reason


def test_a_tls13_minimum_takes_the_plainest_enhanced_policy_and_sets_the_access_mode() -> None:
    verdict = rest_verdict(domain("TLS_1_2"), ALLOWED, policy("1.3"), "REST custom domain")
    first, mode = verdict.changes
    assert first.after == "SecurityPolicy_TLS13_1_3_2025_09"
    assert "accepts TLS 1.2" in first.reason
    assert (mode.attribute, mode.before, mode.after) == ("endpoint_access_mode", None, "BASIC")
    assert mode.rules == (REST_TLS_FLOOR,)
    assert "requires an endpoint access mode" in mode.reason


def test_the_access_mode_of_the_policy_file_is_used_and_a_matching_one_is_left() -> None:
    strict = policy("1.3", endpoint_access_mode="STRICT")
    changes = rest_verdict(domain("TLS_1_2"), ALLOWED, strict, "REST custom domain").changes
    assert [(c.attribute, c.after) for c in changes][1] == ("endpoint_access_mode", "STRICT")
    already = domain("TLS_1_2", endpoint_access_mode="STRICT")
    changes = rest_verdict(already, ALLOWED, strict, "REST custom domain").changes
    assert [c.attribute for c in changes] == ["security_policy"]


def test_an_edge_domain_takes_an_edge_policy() -> None:
    edge = domain("TLS_1_2", types=("EDGE",))
    first, _ = rest_verdict(edge, ALLOWED, policy("1.3"), "REST custom domain").changes
    assert first.after == "SecurityPolicy_TLS13_2025_EDGE"


def test_a_strong_enough_policy_is_left_alone() -> None:
    for current in ("TLS_1_2", "SecurityPolicy_TLS13_1_2_2021_06"):
        assert rest_verdict(domain(current), ALLOWED, policy(), "REST API").changes == []
    strong = domain("SecurityPolicy_TLS13_1_3_2025_09")
    assert rest_verdict(strong, ALLOWED, policy("1.3"), "REST API").changes == []


def test_fips_moves_a_strong_non_fips_policy_with_the_fips_rule() -> None:
    verdict = rest_verdict(domain("TLS_1_2"), ALLOWED, policy(fips=True), "REST custom domain")
    first, mode = verdict.changes
    assert first.after == "SecurityPolicy_TLS13_1_2_FIPS_PQ_2025_09"
    assert first.rules == mode.rules == (FIPS_POLICY,)
    assert first.reason.startswith("TLS_1_2 is not a FIPS security policy")
    fips = domain("SecurityPolicy_TLS13_1_2_FIPS_PQ_2025_09")
    assert rest_verdict(fips, ALLOWED, policy(fips=True), "REST API").changes == []


def test_an_implied_policy_is_named_in_the_reason() -> None:
    implied = domain(policy_implied=True)
    [change] = rest_verdict(implied, ALLOWED, policy(), "REST API").changes
    assert "(none set: TLS_1_0)" in change.reason
    worded = domain(policy_implied="no securityPolicy set: API Gateway applies TLS_1_0")
    [change] = rest_verdict(worded, ALLOWED, policy(), "REST API").changes
    assert "(no securityPolicy set: API Gateway applies TLS_1_0)" in change.reason


def test_an_explicit_policy_is_used_when_it_fits_and_refused_when_it_does_not() -> None:
    chosen = policy(api_security_policy="SecurityPolicy_TLS13_1_2_2021_06")
    first, mode = rest_verdict(domain(), ALLOWED, chosen, "REST custom domain").changes
    assert (first.after, mode.after) == ("SecurityPolicy_TLS13_1_2_2021_06", "BASIC")
    edge_only = policy(api_security_policy="SecurityPolicy_TLS13_2025_EDGE")
    with pytest.raises(RuleError, match="not one of the security policies a REGIONAL"):
        rest_verdict(domain(), ALLOWED, edge_only, "REST custom domain")
    too_weak = policy("1.3", api_security_policy="TLS_1_2")
    with pytest.raises(RuleError, match=r"meet tls\.minimum 1\.3"):
        rest_verdict(domain(), ALLOWED, too_weak, "REST API")


def test_an_unknown_policy_is_a_finding_not_a_guess() -> None:
    verdict = rest_verdict(domain("SSL_3"), ALLOWED, policy(), "REST API")
    assert verdict.changes == []
    [note] = verdict.findings
    assert note.rule == REST_UNKNOWN_POLICY
    assert "REST API security policy 'SSL_3'" in note.message


@pytest.mark.parametrize("types", [(), ("EDGE", "REGIONAL")])
def test_a_domain_without_exactly_one_endpoint_type_is_a_finding(types: tuple[str, ...]) -> None:
    verdict = rest_verdict(domain(types=types), ALLOWED, policy(), "REST custom domain")
    assert verdict.changes == []
    [note] = verdict.findings
    assert note.rule == REST_MIXED_ENDPOINTS
    assert f"endpoint types {', '.join(types) or 'none'}" in note.message
    assert note.message.startswith("TLS_1_0 accepts TLS 1.0, 1.1")


def test_no_policy_meeting_the_minimum_is_a_finding_naming_what_is_offered() -> None:
    legacy_only = ["TLS_1_0", "TLS_1_2"]
    verdict = rest_verdict(domain(), legacy_only, policy("1.3"), "REST API")
    assert verdict.changes == []
    [note] = verdict.findings
    assert note.rule == REST_NO_POLICY_MEETS
    assert "(TLS_1_0, TLS_1_2) accepts only TLS 1.3 and above" in note.message
    fips = rest_verdict(domain(), legacy_only, policy(fips=True), "REST API")
    assert fips.findings[0].message.endswith("and above and is FIPS")
