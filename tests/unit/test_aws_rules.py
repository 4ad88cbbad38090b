"""AWS ELBv2 rules on their own: which security policy a weak listener gets (chosen from the
`describe_ssl_policies` catalog, never by name), HTTP/2 on ALBs and NLBs, and target group risks."""

from __future__ import annotations

from typing import Any

import pytest

from remediate.inventory import Inventory
from remediate.model import Endpoint
from remediate.planner import plan
from remediate.policy import Policy
from remediate.policy import model as policy_model
from remediate.providers.aws.rules import (
    SslPolicy,
    choose_ssl_policy,
    evaluate,
    listener_verdict,
    load_balancer_verdict,
    target_group_verdict,
    tls_version,
)
from remediate.pulumi.catalog import bundled
from remediate.rules import RuleError

AEAD = ("ECDHE-RSA-AES128-GCM-SHA256",)
CBC = ("ECDHE-RSA-AES128-SHA256",)
TLS13 = ("TLS_AES_128_GCM_SHA256",)


def ssl_policy(
    name: str, *versions: str, ciphers: tuple[str, ...] = AEAD, types: tuple[str, ...] = ()
) -> SslPolicy:
    return SslPolicy(name, tuple(versions), ciphers, types)


LEGACY = ssl_policy("ELBSecurityPolicy-2016-08", "1.0", "1.1", "1.2", ciphers=AEAD + CBC)
CATALOG = [
    LEGACY,
    ssl_policy("ELBSecurityPolicy-TLS13-1-2-2021-06", "1.2", "1.3", ciphers=TLS13 + AEAD),
    ssl_policy("ELBSecurityPolicy-TLS13-1-3-2021-06", "1.3", ciphers=TLS13),
    ssl_policy("ELBSecurityPolicy-TLS-1-2-2017-01", "1.2", ciphers=AEAD + CBC),
]


def policy(**overrides: Any) -> Policy:
    return policy_model().model_validate({"aws": {}, **overrides})


def listener(
    protocol: str | None = "HTTPS", ssl: str | None = LEGACY.name, alpn: str | None = None
) -> dict[str, Any]:
    return {"protocol": protocol, "port": 443, "ssl_policy": ssl, "alpn_policy": alpn}


def test_api_protocol_names_become_plain_versions() -> None:
    assert [tls_version(p) for p in ("TLSv1", "TLSv1.1", "TLSv1.2", "Protocol-TLSv1.3")] == [
        "1.0",
        "1.1",
        "1.2",
        "1.3",
    ]
    raw = {
        "Name": "p",
        "SslProtocols": ["TLSv1.2", "TLSv1", "TLSv1.2"],
        "Ciphers": [{"Name": "B", "Priority": 2}, {"Name": "A", "Priority": 1}],
        "SupportedLoadBalancerTypes": ["application"],
    }
    parsed = SslPolicy.from_api(raw)
    assert parsed == SslPolicy("p", ("1.0", "1.2"), ("A", "B"), ("application",))
    assert parsed.floor == "1.0"
    assert SslPolicy.from_api({"Name": "bare"}) == SslPolicy("bare", ())


def test_a_policy_without_protocols_meets_nothing() -> None:
    empty = ssl_policy("empty")
    assert empty.floor == "0"
    assert not empty.meets("1.2")
    assert ssl_policy("x", "1.2", "1.3").meets("1.2")
    assert not ssl_policy("x", "1.2", "1.3").meets("1.3")


def test_auto_picks_tls13_with_the_most_compatible_floor_and_only_aead_ciphers() -> None:
    assert choose_ssl_policy(CATALOG, "1.2", "application").name == (
        "ELBSecurityPolicy-TLS13-1-2-2021-06"
    )
    assert choose_ssl_policy(CATALOG, "1.3", "application").name == (
        "ELBSecurityPolicy-TLS13-1-3-2021-06"
    )


def test_ties_go_to_aead_then_the_newest_revision_then_not_fips_then_the_name() -> None:
    cbc = ssl_policy("A-TLS13-2023-06", "1.2", "1.3", ciphers=TLS13 + CBC)
    old = ssl_policy("B-TLS13-2021-06", "1.2", "1.3", ciphers=TLS13)
    new = ssl_policy("C-TLS13-2023-06", "1.2", "1.3", ciphers=TLS13)
    newer_month = ssl_policy("D-TLS13-2023-09", "1.2", "1.3", ciphers=TLS13)
    fips = ssl_policy("A-FIPS-TLS13-2023-09", "1.2", "1.3", ciphers=TLS13)
    undated = ssl_policy("A-TLS13", "1.2", "1.3", ciphers=TLS13)
    assert choose_ssl_policy([cbc, old], "1.2", "application") is old
    assert choose_ssl_policy([old, new], "1.2", "application") is new
    assert choose_ssl_policy([new, newer_month], "1.2", "application") is newer_month
    assert choose_ssl_policy([fips, newer_month], "1.2", "application") is newer_month
    assert choose_ssl_policy([undated, old], "1.2", "application") is old
    twin = ssl_policy("E-TLS13-2023-09", "1.2", "1.3", ciphers=TLS13)
    assert choose_ssl_policy([twin, newer_month], "1.2", "application") is newer_month
    chacha = ssl_policy("Z-2023-09", "1.2", "1.3", ciphers=("ECDHE-RSA-CHACHA20-POLY1305",))
    assert choose_ssl_policy([cbc, chacha], "1.2", "application") is chacha


def test_tls13_offered_wins_over_a_lower_floor() -> None:
    only12 = ssl_policy("A-2024-01", "1.2", ciphers=AEAD)
    with13 = ssl_policy("Z-2020-01", "1.3", ciphers=TLS13)
    assert choose_ssl_policy([only12, with13], "1.2", "application") is with13


def test_each_catalog_gets_its_own_policy_back_when_an_equal_one_was_ranked_before() -> None:
    """The ranking is remembered by catalog contents; the policy returned is the one of the
    catalog asked about (its region's read), not an equal one of an earlier call."""
    first = [ssl_policy("A-2024-01", "1.2", ciphers=AEAD), ssl_policy("Z-2020-01", "1.3")]
    second = [ssl_policy("A-2024-01", "1.2", ciphers=AEAD), ssl_policy("Z-2020-01", "1.3")]
    assert first == second
    assert choose_ssl_policy(first, "1.2", "application") is first[1]
    assert choose_ssl_policy(second, "1.2", "application") is second[1]


def test_a_policy_the_load_balancer_type_does_not_support_is_never_chosen() -> None:
    alb_only = ssl_policy("A-TLS13-2024-01", "1.2", "1.3", ciphers=TLS13, types=("application",))
    nlb_ok = ssl_policy("B-TLS13-2021-06", "1.2", "1.3", ciphers=TLS13, types=("network",))
    assert choose_ssl_policy([alb_only, nlb_ok], "1.2", "network") is nlb_ok
    assert choose_ssl_policy([alb_only, nlb_ok], "1.2", "application") is alb_only
    with pytest.raises(RuleError) as error:
        choose_ssl_policy([alb_only], "1.2", "network")
    assert str(error.value) == (
        "no security policy offered for network load balancers accepts only TLS 1.2 and above"
    )
    # A catalog that names no types (moto's) supports every load balancer type.
    assert choose_ssl_policy(CATALOG, "1.2", "network").name.startswith("ELBSecurityPolicy-TLS13")


def test_an_explicit_policy_wins_when_it_is_strong_enough() -> None:
    chosen = choose_ssl_policy(CATALOG, "1.2", "application", "ELBSecurityPolicy-TLS-1-2-2017-01")
    assert chosen.name == "ELBSecurityPolicy-TLS-1-2-2017-01"


def test_an_explicit_policy_that_is_too_weak_or_unknown_is_a_rule_error() -> None:
    with pytest.raises(RuleError) as weak:
        choose_ssl_policy(CATALOG, "1.3", "application", "ELBSecurityPolicy-TLS-1-2-2017-01")
    assert str(weak.value) == (
        "aws.ssl_policy ELBSecurityPolicy-TLS-1-2-2017-01 accepts TLS 1.2, below tls.minimum 1.3"
    )
    with pytest.raises(RuleError) as unknown:
        choose_ssl_policy(CATALOG, "1.2", "application", "ELBSecurityPolicy-Nope")
    assert str(unknown.value) == (
        "aws.ssl_policy ELBSecurityPolicy-Nope is not offered by describe_ssl_policies"
    )


def test_no_fitting_policy_is_a_rule_error() -> None:
    with pytest.raises(RuleError, match=r"application load balancers accepts only TLS 1\.3"):
        choose_ssl_policy([LEGACY], "1.3", "application")


def test_a_weak_listener_gets_the_chosen_policy_with_the_reason() -> None:
    verdict = listener_verdict(listener(), "application", CATALOG, policy())
    assert [(c.attribute, c.before, c.after, c.reason) for c in verdict.changes] == [
        (
            "ssl_policy",
            LEGACY.name,
            "ELBSecurityPolicy-TLS13-1-2-2021-06",
            "accepts TLS 1.0, 1.1; policy minimum is TLS 1.2",
        )
    ]
    assert verdict.changes[0].rules == ("aws-elb-tls-floor",)
    assert verdict.findings == []


def test_the_explicit_policy_of_the_policy_file_is_used() -> None:
    pol = policy(aws={"ssl_policy": "ELBSecurityPolicy-TLS-1-2-2017-01"})
    verdict = listener_verdict(listener(), "application", CATALOG, pol)
    assert verdict.changes[0].after == "ELBSecurityPolicy-TLS-1-2-2017-01"
    too_weak = policy(
        tls={"minimum": "1.3"}, aws={"ssl_policy": "ELBSecurityPolicy-TLS-1-2-2017-01"}
    )
    with pytest.raises(RuleError):
        listener_verdict(listener(), "application", CATALOG, too_weak)


def test_a_policy_without_an_aws_section_chooses_automatically() -> None:
    pol = policy_model().model_validate({"gcp": {}})
    verdict = listener_verdict(listener(), "application", CATALOG, pol)
    assert verdict.changes[0].after == "ELBSecurityPolicy-TLS13-1-2-2021-06"


def test_a_listener_stricter_than_needed_is_left_alone() -> None:
    strict = listener(ssl="ELBSecurityPolicy-TLS13-1-3-2021-06")
    assert listener_verdict(strict, "application", CATALOG, policy()).changes == []
    exact = listener(ssl="ELBSecurityPolicy-TLS-1-2-2017-01")
    assert listener_verdict(exact, "application", CATALOG, policy()).changes == []
    weak_for_13 = listener_verdict(exact, "application", CATALOG, policy(tls={"minimum": "1.3"}))
    assert [c.after for c in weak_for_13.changes] == ["ELBSecurityPolicy-TLS13-1-3-2021-06"]
    assert weak_for_13.changes[0].reason == "accepts TLS 1.2; policy minimum is TLS 1.3"


def test_an_unknown_security_policy_is_a_finding_not_a_guess() -> None:
    verdict = listener_verdict(listener(ssl="Custom-Policy"), "application", CATALOG, policy())
    assert verdict.changes == []
    assert [n.rule for n in verdict.findings] == ["aws-elb-unknown-policy"]
    assert [n.message for n in verdict.findings] == [
        "security policy 'Custom-Policy' is not offered by describe_ssl_policies; "
        "cannot tell which TLS versions it accepts"
    ]
    missing = listener_verdict(listener(ssl=None), "application", CATALOG, policy())
    assert missing.findings[0].message.startswith("security policy None is not offered")


@pytest.mark.parametrize("protocol", ["HTTP", "TCP", "UDP", None])
def test_listeners_without_tls_are_not_judged(protocol: str | None) -> None:
    assert listener_verdict(listener(protocol=protocol), "network", CATALOG, policy()) == (
        listener_verdict(listener(protocol=protocol), "network", [], policy())
    )
    assert listener_verdict(listener(protocol=protocol), "network", CATALOG, policy()).changes == []
    verdict = listener_verdict(listener(protocol=protocol), "network", CATALOG, policy())
    assert [n.message for n in verdict.findings] == []


@pytest.mark.parametrize("alpn", [None, "", "None"])
def test_an_nlb_tls_listener_without_alpn_gets_http2_preferred(alpn: str | None) -> None:
    strong = "ELBSecurityPolicy-TLS13-1-2-2021-06"
    verdict = listener_verdict(listener("TLS", strong, alpn), "network", CATALOG, policy())
    assert [(c.attribute, c.before, c.after) for c in verdict.changes] == [
        ("alpn_policy", alpn, "HTTP2Preferred")
    ]
    assert verdict.changes[0].rules == ("aws-nlb-alpn-h2",)
    assert "HTTP2Preferred keeps HTTP/1.1 clients working" in verdict.changes[0].reason
    assert (
        listener_verdict(
            listener("TLS", strong, alpn), "network", CATALOG, policy(http2=False)
        ).changes
        == []
    )


def test_a_weak_nlb_listener_gets_both_the_policy_and_alpn() -> None:
    verdict = listener_verdict(listener("TLS", LEGACY.name, None), "network", CATALOG, policy())
    assert [c.attribute for c in verdict.changes] == ["ssl_policy", "alpn_policy"]


def test_alpn_on_https_listeners_and_chosen_alpn_policies_are_left_alone() -> None:
    strong = "ELBSecurityPolicy-TLS13-1-2-2021-06"
    https = listener_verdict(listener("HTTPS", strong, None), "application", CATALOG, policy())
    assert https == listener_verdict(
        listener("HTTPS", strong, "x"), "application", CATALOG, policy()
    )
    assert https.changes == [] and https.findings == []
    for alpn in ("HTTP2Preferred", "HTTP2Only", "HTTP2Optional", "HTTP1Only"):
        verdict = listener_verdict(listener("TLS", strong, alpn), "network", CATALOG, policy())
        assert verdict.changes == []
    pinned = listener_verdict(listener("TLS", strong, "HTTP1Only"), "network", CATALOG, policy())
    assert [n.rule for n in pinned.findings] == ["aws-nlb-alpn-http1-only"]
    assert [n.message for n in pinned.findings] == [
        "ALPN policy HTTP1Only pins clients to HTTP/1.1; left alone as a deliberate choice"
    ]


def test_alb_http2_attribute_switched_off_is_switched_on() -> None:
    verdict = load_balancer_verdict({"routing.http2.enabled": False}, policy())
    assert [(c.attribute, c.before, c.after, c.reason) for c in verdict.changes] == [
        (
            "routing.http2.enabled",
            False,
            True,
            "HTTP/2 is switched off: clients fall back to HTTP/1.1",
        )
    ]
    assert verdict.changes[0].rules == ("aws-alb-http2",)
    assert load_balancer_verdict({"routing.http2.enabled": False}, policy(http2=False)) == (
        load_balancer_verdict({}, policy())
    )
    assert (
        load_balancer_verdict({"routing.http2.enabled": False}, policy(http2=False)).changes == []
    )


def test_a_missing_http2_attribute_means_the_aws_default_on() -> None:
    assert load_balancer_verdict({}, policy()).changes == []
    assert load_balancer_verdict({"routing.http2.enabled": True}, policy()).changes == []


@pytest.mark.parametrize("version", ["HTTP2", "GRPC"])
def test_target_groups_speaking_http2_or_grpc_are_findings(version: str) -> None:
    verdict = target_group_verdict({"protocol_version": version})
    assert verdict.changes == []
    assert [n.rule for n in verdict.findings] == ["aws-tg-backend-protocol"]
    assert [n.message for n in verdict.findings] == [
        f"target group sends {version} to its targets: backends that do not speak HTTP/2 answer "
        "502; confirm they do, or set ProtocolVersion HTTP1"
    ]


@pytest.mark.parametrize("version", ["HTTP1", None])
def test_http1_target_groups_are_fine(version: str | None) -> None:
    verdict = target_group_verdict({"protocol_version": version})
    assert verdict.changes == [] and verdict.findings == []


def endpoint(kind: str, settings: dict[str, Any], **context: Any) -> Endpoint:
    return Endpoint(
        provider="aws",
        resource=f"arn:aws:elasticloadbalancing:eu-west-1:1:{kind}/x",
        kind=kind,
        name=kind,
        location="eu-west-1",
        settings=settings,
        context=context,
    )


def test_evaluate_dispatches_on_kind_with_the_region_catalog_and_load_balancer_type() -> None:
    alb_only = ssl_policy("A-TLS13-2024-01", "1.2", "1.3", ciphers=TLS13, types=("application",))
    nlb_ok = ssl_policy("B-TLS13-2021-06", "1.2", "1.3", ciphers=TLS13, types=("network",))
    facts = {"aws.ssl_policies": {"eu-west-1": [LEGACY, alb_only, nlb_ok], "us-east-1": CATALOG}}
    nlb = endpoint(
        "listener", listener("TLS", LEGACY.name, "HTTP2Preferred"), load_balancer_type="network"
    )
    assert [c.after for c in evaluate(nlb, policy(), facts).changes] == [nlb_ok.name]
    alb = endpoint("listener", listener(), load_balancer_type="application")
    assert [c.after for c in evaluate(alb, policy(), facts).changes] == [alb_only.name]
    elsewhere = endpoint("listener", listener(), load_balancer_type="application")
    assert evaluate(elsewhere, policy(), {}).findings[0].message.startswith("security policy")
    lb = endpoint("load-balancer", {"routing.http2.enabled": False})
    assert [c.after for c in evaluate(lb, policy(), facts).changes] == [True]
    tg = endpoint("target-group", {"protocol_version": "GRPC"})
    assert len(evaluate(tg, policy(), facts).findings) == 1
    with pytest.raises(KeyError):
        evaluate(endpoint("something-else", {}), policy(), facts)


def test_the_bundled_catalog_gives_the_same_choice_the_planner_makes() -> None:
    catalog = bundled()
    alb = endpoint(
        "listener", listener(), load_balancer_type="application", load_balancer_arn="arn:lb"
    )
    inventory = Inventory([alb], {"aws.ssl_policies": {"eu-west-1": catalog}}, ["aws"])
    result = plan(inventory, policy())
    assert [(c.attribute, c.after, c.executor) for c in result.changes] == [
        ("ssl_policy", "ELBSecurityPolicy-TLS13-1-2-Res-PQ-2025-09", "boto3")
    ]


@pytest.mark.parametrize(
    ("kind", "minimum", "expected"),
    [
        ("application", "1.2", "ELBSecurityPolicy-TLS13-1-2-Res-FIPS-PQ-2025-09"),
        ("network", "1.2", "ELBSecurityPolicy-TLS13-1-2-Res-FIPS-PQ-2025-09"),
        ("application", "1.3", "ELBSecurityPolicy-TLS13-1-3-FIPS-PQ-2025-09"),
        ("network", "1.3", "ELBSecurityPolicy-TLS13-1-3-FIPS-PQ-2025-09"),
        ("application", "1.0", "ELBSecurityPolicy-TLS13-1-0-FIPS-PQ-2025-09"),
    ],
)
def test_fips_with_the_published_catalog_follows_the_floor_and_the_type(
    kind: str, minimum: str, expected: str
) -> None:
    chosen = choose_ssl_policy(bundled(), minimum, kind, fips=True)
    assert chosen.name == expected
    assert chosen.fips and chosen.supports(kind) and chosen.floor == minimum


def test_fips_never_gives_a_network_load_balancer_an_application_only_policy() -> None:
    """The RFC 9151 FIPS policies are in the ALB tables only: when they would rank best, an NLB
    still gets a policy its type supports."""
    rfc9151 = [p for p in bundled() if "RFC9151" in p.name]
    shared = ssl_policy("ELBSecurityPolicy-TLS13-1-2-Ext2-FIPS-2023-04", "1.2", "1.3", ciphers=CBC)
    assert choose_ssl_policy([*rfc9151, shared], "1.2", "application", fips=True) in rfc9151
    assert choose_ssl_policy([*rfc9151, shared], "1.2", "network", fips=True) is shared
    with pytest.raises(RuleError) as error:
        choose_ssl_policy(rfc9151, "1.2", "network", fips=True)
    assert str(error.value) == (
        "no FIPS security policy offered for network load balancers accepts only TLS 1.2 and above"
    )


def test_an_explicit_policy_its_load_balancer_type_lacks_is_a_rule_error() -> None:
    name = "ELBSecurityPolicy-TLS13-1-2-RFC9151-FIPS-2023-07"
    assert choose_ssl_policy(bundled(), "1.2", "application", name, fips=True).name == name
    with pytest.raises(RuleError) as error:
        choose_ssl_policy(bundled(), "1.2", "network", name, fips=True)
    assert str(error.value) == f"aws.ssl_policy {name} is not offered for network load balancers"


def test_fips_moves_a_listener_on_a_strong_non_fips_policy_with_the_fips_rule() -> None:
    settings = listener(ssl="ELBSecurityPolicy-TLS13-1-2-Res-PQ-2025-09")
    verdict = listener_verdict(settings, "network", bundled(), policy(aws={"fips": True}))
    assert [(c.before, c.after, c.rules, c.reason) for c in verdict.changes] == [
        (
            "ELBSecurityPolicy-TLS13-1-2-Res-PQ-2025-09",
            "ELBSecurityPolicy-TLS13-1-2-Res-FIPS-PQ-2025-09",
            ("aws-elb-fips",),
            "not a FIPS security policy; aws.fips requires one",
        )
    ]
    on_fips = listener(ssl="ELBSecurityPolicy-TLS13-1-2-Ext0-FIPS-2023-04")
    assert not listener_verdict(on_fips, "network", bundled(), policy(aws={"fips": True})).changes
