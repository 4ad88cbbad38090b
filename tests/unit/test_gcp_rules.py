"""GCP rules on their own: which proxies move to remediate's SSL policy, when that policy is
created or corrected, declared policies (Pulumi), backend services, and resource links."""

from __future__ import annotations

from typing import Any

import pytest

from remediate.model import Endpoint
from remediate.policy import Policy
from remediate.policy import model as policy_model
from remediate.providers.gcp.rules import (
    Link,
    backend_service_verdict,
    declared_policy_verdict,
    evaluate,
    owned_policy_link,
    owned_policy_verdict,
    proxy_verdict,
    same_resource,
)

BASE = "https://www.googleapis.com/compute/v1/"
PROXY = BASE + "projects/p/global/targetHttpsProxies/web"
REGIONAL_PROXY = BASE + "projects/p/regions/us-east1/targetHttpsProxies/api"
OWNED = BASE + "projects/p/global/sslPolicies/remediate-tls"
REGIONAL_OWNED = BASE + "projects/p/regions/us-east1/sslPolicies/remediate-tls"
WEAK = BASE + "projects/p/global/sslPolicies/legacy"
STRICT = BASE + "projects/p/global/sslPolicies/strict"
FACTS = {
    WEAK: {"name": "legacy", "min_tls_version": "TLS_1_0"},
    STRICT: {"name": "strict", "min_tls_version": "TLS_1_3"},
}


def policy(**overrides: Any) -> Policy:
    return policy_model().model_validate({"gcp": {}, **overrides})


def test_links_parse_full_partial_and_regional_urls() -> None:
    assert Link.parse(PROXY) == Link("p", None, "targetHttpsProxies", "web")
    assert Link.parse("/projects/p/global/targetHttpsProxies/web") == Link.parse(PROXY)
    regional = Link.parse("projects/p/regions/us-east1/targetHttpsProxies/api")
    assert regional == Link("p", "us-east1", "targetHttpsProxies", "api")
    assert regional.self_link == REGIONAL_PROXY
    assert (regional.scope, regional.location) == ("regions/us-east1", "p/us-east1")
    assert (Link.parse(PROXY).scope, Link.parse(PROXY).location) == ("global", "p/global")
    assert regional.sibling("sslPolicies", "x").self_link == (
        BASE + "projects/p/regions/us-east1/sslPolicies/x"
    )
    with pytest.raises(ValueError, match="not a Compute resource URL: projects/p/zones"):
        Link.parse("projects/p/zones")


def test_same_resource_ignores_host_and_form_but_not_identity() -> None:
    assert same_resource(
        PROXY, "http://127.0.0.1:1/compute/v1/projects/p/global/targetHttpsProxies/web"
    )
    assert same_resource(PROXY, "projects/p/global/targetHttpsProxies/web")
    assert not same_resource(PROXY, REGIONAL_PROXY)
    assert same_resource("not a url", "not a url")
    assert not same_resource("not a url", "other")


def test_the_owned_policy_lives_in_the_proxys_project_and_scope() -> None:
    assert owned_policy_link(PROXY, policy()) == OWNED
    without_section = policy_model().model_validate({"aws": {}})
    assert owned_policy_link(PROXY, without_section) == OWNED
    assert owned_policy_link(REGIONAL_PROXY, policy()) == REGIONAL_OWNED
    named = policy(gcp={"ssl_policy_name": "edge"})
    assert owned_policy_link(PROXY, named) == BASE + "projects/p/global/sslPolicies/edge"


def test_a_proxy_without_a_policy_has_googles_default_and_is_moved() -> None:
    verdict = proxy_verdict(PROXY, {"ssl_policy": None}, {}, policy())
    assert [(c.attribute, c.before, c.after, c.reason) for c in verdict.changes] == [
        (
            "ssl_policy",
            None,
            OWNED,
            "no SSL policy: Google's default (COMPATIBLE) accepts TLS 1.0, 1.1; "
            "policy minimum is TLS 1.2",
        )
    ]
    strict = proxy_verdict(PROXY, {}, {}, policy(tls={"minimum": "1.3"}))
    assert "accepts TLS 1.0, 1.1, 1.2; policy minimum is TLS 1.3" in strict.changes[0].reason


def test_a_proxy_on_a_weak_policy_moves_and_the_policy_is_left_alone() -> None:
    verdict = proxy_verdict(PROXY, {"ssl_policy": WEAK}, FACTS, policy())
    assert [(c.before, c.after, c.rules) for c in verdict.changes] == [
        (WEAK, OWNED, ("gcp-lb-tls-floor",))
    ]
    assert verdict.changes[0].reason == (
        "SSL policy legacy accepts TLS 1.0, 1.1; policy minimum is TLS 1.2 "
        "(that policy is not remediate's and is left unchanged)"
    )


def test_a_proxy_on_a_strong_policy_or_on_remediates_is_left_alone() -> None:
    assert proxy_verdict(PROXY, {"ssl_policy": STRICT}, FACTS, policy()).changes == []
    partial = "projects/p/global/sslPolicies/remediate-tls"
    assert proxy_verdict(PROXY, {"ssl_policy": partial}, {}, policy()) == proxy_verdict(
        PROXY, {"ssl_policy": OWNED}, {}, policy()
    )
    assert proxy_verdict(PROXY, {"ssl_policy": OWNED}, {}, policy()).changes == []
    assert proxy_verdict(PROXY, {"ssl_policy": OWNED}, {}, policy()).findings == []


def test_an_attached_policy_is_found_under_another_form_of_its_link() -> None:
    short = {"projects/p/global/sslPolicies/legacy": FACTS[WEAK]}
    assert [
        c.after for c in proxy_verdict(PROXY, {"ssl_policy": WEAK}, short, policy()).changes
    ] == [OWNED]


def test_an_unreadable_attached_policy_is_a_finding() -> None:
    verdict = proxy_verdict(PROXY, {"ssl_policy": WEAK}, {}, policy())
    assert [n.rule for n in verdict.findings] == ["gcp-lb-unreadable-policy"]
    assert verdict.changes == []
    assert [n.message for n in verdict.findings] == [
        f"SSL policy {WEAK} could not be read; cannot tell which TLS versions it accepts"
    ]


def test_the_owned_policy_is_created_only_when_a_proxy_of_its_scope_needs_it() -> None:
    weak = {PROXY: {"ssl_policy": WEAK}}
    created = owned_policy_verdict(OWNED, {"exists": False}, weak, FACTS, policy())
    assert [(c.attribute, c.before, c.after) for c in created.changes] == [
        (
            "ssl_policy",
            None,
            {"name": "remediate-tls", "minTlsVersion": "TLS_1_2", "profile": "MODERN"},
        )
    ]
    assert created.changes[0].rules == ("gcp-owned-policy-settings",)
    assert created.changes[0].reason == ("missing: created for the weak proxies of p/global to use")
    fine = {PROXY: {"ssl_policy": STRICT}}
    assert owned_policy_verdict(OWNED, {"exists": False}, fine, FACTS, policy()).changes == []
    # The proxy needs the regional policy, not this global one.
    regional = {REGIONAL_PROXY: {"ssl_policy": None}}
    assert owned_policy_verdict(OWNED, {"exists": False}, regional, FACTS, policy()).changes == []


def test_a_drifted_owned_policy_is_corrected_field_by_field() -> None:
    pol = policy(gcp={"profile": "RESTRICTED"})
    drifted = {"exists": True, "min_tls_version": "TLS_1_0", "profile": "COMPATIBLE"}
    verdict = owned_policy_verdict(OWNED, drifted, {}, {}, pol)
    assert [(c.attribute, c.before, c.after, c.reason) for c in verdict.changes] == [
        (
            "minTlsVersion",
            "TLS_1_0",
            "TLS_1_2",
            "remediate's SSL policy drifted: it accepts TLS 1.0, 1.1; policy minimum is TLS 1.2",
        ),
        (
            "profile",
            "COMPATIBLE",
            "RESTRICTED",
            "remediate's SSL policy drifted: profile COMPATIBLE, policy says RESTRICTED",
        ),
    ]
    stricter = {"exists": True, "min_tls_version": "TLS_1_3", "profile": "RESTRICTED"}
    lowered = owned_policy_verdict(OWNED, stricter, {}, {}, pol)
    assert [(c.attribute, c.after) for c in lowered.changes] == [("minTlsVersion", "TLS_1_2")]
    assert lowered.changes[0].reason.startswith(
        "remediate's SSL policy drifted: it requires TLS_1_3"
    )
    unset = owned_policy_verdict(OWNED, {"exists": True, "profile": "MODERN"}, {}, {}, policy())
    assert [(c.before, c.after) for c in unset.changes] == [(None, "TLS_1_2")]
    assert "accepts TLS 1.0, 1.1" in unset.changes[0].reason
    compliant = {"exists": True, "min_tls_version": "TLS_1_2", "profile": "MODERN"}
    assert owned_policy_verdict(OWNED, compliant, {}, {}, policy()).changes == []


def test_a_declared_policy_is_raised_never_lowered() -> None:
    assert [
        (c.attribute, c.before, c.after) for c in declared_policy_verdict({}, policy()).changes
    ] == [("minTlsVersion", None, "TLS_1_2"), ("profile", None, "MODERN")]
    weak = declared_policy_verdict({"min_tls_version": "TLS_1_1", "profile": "MODERN"}, policy())
    assert [(c.attribute, c.before, c.reason) for c in weak.changes] == [
        ("minTlsVersion", "TLS_1_1", "accepts TLS 1.1; policy minimum is TLS 1.2")
    ]
    strict = {"min_tls_version": "TLS_1_3", "profile": "RESTRICTED"}
    assert declared_policy_verdict(strict, policy()).changes == []
    compatible = declared_policy_verdict(
        {"min_tls_version": "TLS_1_2", "profile": "COMPATIBLE"}, policy()
    )
    assert [(c.attribute, c.before, c.after, c.reason) for c in compatible.changes] == [
        ("profile", "COMPATIBLE", "MODERN", "profile COMPATIBLE offers weaker ciphers than MODERN")
    ]
    modern_for_restricted = declared_policy_verdict(
        {"min_tls_version": "TLS_1_2", "profile": "MODERN"}, policy(gcp={"profile": "RESTRICTED"})
    )
    assert [c.after for c in modern_for_restricted.changes] == ["RESTRICTED"]
    custom = declared_policy_verdict({"min_tls_version": "TLS_1_2", "profile": "CUSTOM"}, policy())
    assert custom.changes == []
    assert [n.rule for n in custom.findings] == ["gcp-custom-profile"]
    assert [n.message for n in custom.findings] == [
        "profile CUSTOM lists its own features; they are not checked"
    ]


@pytest.mark.parametrize(
    ("protocol", "risky"), [("HTTP2", True), ("HTTP", False), ("HTTPS", False), (None, False)]
)
def test_backend_services_speaking_http2_are_findings(protocol: str | None, risky: bool) -> None:
    verdict = backend_service_verdict({"protocol": protocol})
    assert verdict.changes == []
    assert [n.rule for n in verdict.findings] == (["gcp-backend-http2"] if risky else [])
    assert [n.message for n in verdict.findings] == (
        [
            "backend service sends HTTP/2 to its backends: backends that do not speak HTTP/2 "
            "answer 502; confirm they do, or set protocol HTTP or HTTPS"
        ]
        if risky
        else []
    )


def endpoint(kind: str, resource: str, settings: dict[str, Any]) -> Endpoint:
    return Endpoint(provider="gcp", resource=resource, kind=kind, name="x", settings=settings)


def test_evaluate_dispatches_on_kind_and_scopes_proxies_to_their_policy() -> None:
    facts = {
        "gcp.ssl_policies": FACTS,
        "gcp.proxies": {
            PROXY: {"ssl_policy": STRICT},
            REGIONAL_PROXY: {"ssl_policy": None},
        },
    }
    proxy = endpoint("target-https-proxy", PROXY, {"ssl_policy": WEAK})
    assert [c.after for c in evaluate(proxy, policy(), facts).changes] == [OWNED]
    missing_global = endpoint("ssl-policy", OWNED, {"exists": False})
    assert evaluate(missing_global, policy(), facts).changes == []
    on_weak = {**facts, "gcp.proxies": {PROXY: {"ssl_policy": WEAK}}}
    assert [c.after["name"] for c in evaluate(missing_global, policy(), on_weak).changes] == [
        "remediate-tls"
    ]
    missing_regional = endpoint("ssl-policy", REGIONAL_OWNED, {"exists": False})
    assert [c.after["name"] for c in evaluate(missing_regional, policy(), facts).changes] == [
        "remediate-tls"
    ]
    backend = endpoint(
        "backend-service", BASE + "projects/p/global/backendServices/b", {"protocol": "HTTP2"}
    )
    assert len(evaluate(backend, policy(), facts).findings) == 1
    with pytest.raises(KeyError):
        evaluate(endpoint("url-map", BASE + "projects/p/global/urlMaps/m", {}), policy(), facts)
    assert [n.message for n in evaluate(proxy, policy(), {}).findings] == [
        f"SSL policy {WEAK} could not be read; cannot tell which TLS versions it accepts"
    ]
