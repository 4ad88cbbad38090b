"""The planner on its own: which changes and findings a plan shows, and how exclusions hold them
back (a live exclusion wins over an expired one; an expired one is reported and holds nothing)."""

from __future__ import annotations

from datetime import date
from typing import Any

from remediate.inventory import Inventory
from remediate.model import Endpoint, Plan
from remediate.planner import plan
from remediate.policy import model as policy_model
from remediate.providers.aws.model import ListenerTarget
from remediate.providers.aws.rules import SslPolicy

TODAY = date(2026, 6, 15)
REGION = "eu-west-1"
LB = "arn:aws:elasticloadbalancing:eu-west-1:1:loadbalancer/app/shop/1"
LISTENER = "arn:aws:elasticloadbalancing:eu-west-1:1:listener/app/shop/1/2"
TG = "arn:aws:elasticloadbalancing:eu-west-1:1:targetgroup/grpc/3"
CATALOG = [
    SslPolicy("ELBSecurityPolicy-2016-08", ("1.0", "1.1", "1.2")),
    SslPolicy("ELBSecurityPolicy-TLS13-1-2-2021-06", ("1.2", "1.3"), ("TLS_AES_128_GCM_SHA256",)),
]


def load_balancer(http2: bool = False, resource: str = LB) -> Endpoint:
    return Endpoint(
        provider="aws",
        resource=resource,
        kind="load-balancer",
        name="shop",
        location=REGION,
        settings={"routing.http2.enabled": http2},
        context={"load_balancer_type": "application", "dns_name": "shop.example"},
    )


def listener(ssl_policy: str = "ELBSecurityPolicy-2016-08") -> Endpoint:
    return Endpoint(
        provider="aws",
        resource=LISTENER,
        kind="listener",
        name="shop:443 HTTPS",
        location=REGION,
        settings={"protocol": "HTTPS", "port": 443, "ssl_policy": ssl_policy, "alpn_policy": None},
        context={"load_balancer_arn": LB, "load_balancer_type": "application"},
    )


def target_group(version: str = "GRPC") -> Endpoint:
    return Endpoint(
        provider="aws",
        resource=TG,
        kind="target-group",
        name="grpc",
        location=REGION,
        settings={"protocol_version": version},
    )


def run(*endpoints: Endpoint, exclude: list[dict[str, Any]] | None = None, **policy: Any) -> Plan:
    inventory = Inventory(list(endpoints), {"aws.ssl_policies": {REGION: CATALOG}}, ["aws"])
    pol = policy_model().model_validate({"aws": {}, "exclude": exclude or [], **policy})
    return plan(inventory, pol, today=TODAY)


def test_a_change_carries_everything_apply_needs() -> None:
    result = run(listener())
    [change] = result.changes
    assert change.provider == "aws"
    assert change.resource == LISTENER
    assert (change.attribute, change.before, change.after) == (
        "ssl_policy",
        "ELBSecurityPolicy-2016-08",
        "ELBSecurityPolicy-TLS13-1-2-2021-06",
    )
    assert change.reason == "accepts TLS 1.0, 1.1; policy minimum is TLS 1.2"
    assert change.executor == "boto3"
    assert change.fingerprint == listener().fingerprint
    assert (change.name, change.location) == ("shop:443 HTTPS", REGION)
    assert change.kind == "listener"
    assert change.rules == ("aws-elb-tls-floor",)
    assert change.target == ListenerTarget(
        arn=LISTENER,
        region=REGION,
        port=443,
        protocol="HTTPS",
        load_balancer_arn=LB,
        load_balancer_type="application",
    )
    assert result.providers == ["aws"]
    assert result.findings == [] and result.excluded == []
    assert result.summary["changes"] == 1


def test_compliant_endpoints_plan_nothing() -> None:
    result = run(listener("ELBSecurityPolicy-TLS13-1-2-2021-06"), load_balancer(True))
    assert result.changes == [] and result.findings == [] and result.excluded == []
    assert not result.has_changes


def test_findings_are_shown_with_the_endpoint_they_belong_to() -> None:
    [finding] = run(target_group()).findings
    assert (finding.provider, finding.resource, finding.name, finding.location) == (
        "aws",
        TG,
        "grpc",
        REGION,
    )
    assert finding.message.startswith("target group sends GRPC to its targets")
    assert (finding.rule, finding.severity) == ("aws-tg-backend-protocol", "medium")


def test_a_live_exclusion_holds_the_change_and_says_how_many() -> None:
    result = run(
        listener(),
        load_balancer(),
        exclude=[{"match": "*listener/app/shop/*", "reason": "vendor pins TLS 1.0"}],
    )
    assert [c.resource for c in result.changes] == [LB]
    [excluded] = result.excluded
    assert (excluded.resource, excluded.match, excluded.reason) == (
        LISTENER,
        "*listener/app/shop/*",
        "vendor pins TLS 1.0",
    )
    assert (excluded.expired, excluded.changes, excluded.until) == (False, 1, None)
    assert result.summary["excluded"] == 1
    assert result.summary["expired_exclusions"] == 0


def test_an_exclusion_lasts_until_the_end_of_its_day() -> None:
    held = run(listener(), exclude=[{"match": LISTENER, "reason": "r", "until": "2026-06-15"}])
    assert held.changes == []
    assert held.excluded[0].expired is False


def test_an_expired_exclusion_is_reported_and_holds_nothing() -> None:
    result = run(listener(), exclude=[{"match": LISTENER, "reason": "r", "until": "2026-06-14"}])
    assert [c.resource for c in result.changes] == [LISTENER]
    [excluded] = result.excluded
    assert excluded.expired is True
    assert excluded.changes == 1
    assert excluded.until == date(2026, 6, 14)
    assert result.summary["excluded"] == 0
    assert result.summary["expired_exclusions"] == 1


def test_a_live_exclusion_wins_over_an_expired_one_in_either_order() -> None:
    expired = {"match": "arn:*", "reason": "old", "until": "2026-01-01"}
    live = {"match": LISTENER, "reason": "new", "until": "2026-12-31"}
    for exclude in ([expired, live], [live, expired]):
        result = run(listener(), exclude=exclude)
        assert result.changes == []
        assert [(e.reason, e.expired, e.changes) for e in result.excluded] == [("new", False, 1)]


def test_of_two_live_exclusions_the_first_listed_is_reported() -> None:
    first = {"match": "arn:*", "reason": "first"}
    second = {"match": LISTENER, "reason": "second"}
    result = run(listener(), exclude=[first, second])
    assert [e.reason for e in result.excluded] == ["first"]


def test_findings_of_an_excluded_endpoint_are_hidden_while_the_exclusion_lives() -> None:
    live = run(target_group(), exclude=[{"match": TG, "reason": "r", "until": "2026-06-30"}])
    assert live.findings == []
    [excluded] = live.excluded
    assert (excluded.resource, excluded.changes, excluded.expired) == (TG, 0, False)


def test_findings_of_an_endpoint_come_back_once_its_exclusion_expired() -> None:
    expired = run(target_group(), exclude=[{"match": TG, "reason": "r", "until": "2026-06-01"}])
    assert [f.resource for f in expired.findings] == [TG]
    assert [(e.resource, e.expired, e.changes) for e in expired.excluded] == [(TG, True, 0)]


def test_an_exclusion_of_another_endpoint_hides_nothing() -> None:
    result = run(target_group(), listener(), exclude=[{"match": LB, "reason": "r"}])
    assert [f.resource for f in result.findings] == [TG]
    assert [c.resource for c in result.changes] == [LISTENER]
    assert result.excluded == []


def test_an_endpoint_without_changes_or_findings_is_not_reported_as_excluded() -> None:
    result = run(load_balancer(True), exclude=[{"match": "*", "reason": "r"}])
    assert result.excluded == []


def test_counts_across_several_endpoints() -> None:
    other_lb = LB.replace("/shop/1", "/blog/9")
    result = run(
        listener(),
        load_balancer(),
        load_balancer(resource=other_lb),
        target_group(),
        exclude=[
            {"match": LB, "reason": "held"},
            {"match": other_lb, "reason": "lapsed", "until": "2026-01-01"},
        ],
    )
    assert sorted(c.resource for c in result.changes) == sorted([LISTENER, other_lb])
    assert [(e.resource, e.expired, e.changes) for e in result.excluded] == [
        (LB, False, 1),
        (other_lb, True, 1),
    ]
    assert result.summary == {
        "changes": 2,
        "resources": 2,
        "findings": 1,
        "excluded": 1,
        "expired_exclusions": 1,
        "changes_by_provider": {"aws": 2},
    }
