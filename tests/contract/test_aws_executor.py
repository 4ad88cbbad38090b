"""The boto3 executor in-process against moto over HTTP, beyond the shared contract: every kind it
writes (ELBv2 listeners and attributes, NLB ALPN, Classic negotiation policies, API Gateway
domains) applied and rolled back, and each way a write or its read-back can go wrong: refused,
an answer lost after the write landed or before, a read-back that fails, a change it
cannot make. Writes that land behind a lost answer are made through the emulator's own API."""

from __future__ import annotations

import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest

from remediate import engine, executors, undo
from remediate.executors import Outcome, Status
from remediate.journal import Journal
from remediate.model import Change
from remediate.policy import Policy, parse
from remediate.progress import Silent
from remediate.sandbox.aws import (
    Fleet,
    MotoServer,
    seed_api_domains,
    seed_classic_fleet,
    seed_fleet,
)
from remediate.sandbox.org import (
    MEMBER_ROLE,
    OUTSIDER_ACCOUNT,
    WEAK_POLICY,
    as_account,
    seed_organization,
    trust_policy,
)
from tests.contract.fault_proxy import FaultProxy

pytestmark = pytest.mark.contract

EAST, WEST = "us-east-1", "eu-west-1"
OWN = "remediate-ELBSecurityPolicy-TLS-1-2-2017-01"


def error_xml(code: str, message: str) -> bytes:
    return (
        '<ErrorResponse xmlns="http://elasticloadbalancing.amazonaws.com/doc/2015-12-01/">'
        f"<Error><Type>Sender</Type><Code>{code}</Code><Message>{message}</Message></Error>"
        "<RequestId>00000000-0000-0000-0000-000000000000</RequestId></ErrorResponse>"
    ).encode()


@dataclass
class World:
    fleet: Fleet
    policy: Policy
    proxy: FaultProxy
    upstream: str

    def client(self, service: Any, region: str = EAST) -> Any:
        return boto3.client(service, region_name=region, endpoint_url=self.upstream)

    def plan(self) -> list[Change]:
        return engine.plan(self.policy, record=False).changes

    def executor(self) -> executors.Executor:
        return executors.get("boto3", executors.Settings.from_policy(self.policy), Silent())

    def listener(self, name: str) -> dict[str, Any]:
        region = WEST if name.startswith(("mqtt-edge", "admin")) else EAST
        found: dict[str, Any] = self.client("elbv2", region).describe_listeners(
            ListenerArns=[self.fleet.listeners[name]]
        )["Listeners"][0]
        return found

    def http2(self, name: str) -> str:
        attributes = self.client("elbv2").describe_load_balancer_attributes(
            LoadBalancerArn=self.fleet.load_balancers[name]
        )["Attributes"]
        return str(next(a["Value"] for a in attributes if a["Key"] == "routing.http2.enabled"))

    def classic_policies(self, name: str, port: int) -> list[str]:
        lb = self.client("elb").describe_load_balancers(LoadBalancerNames=[name])
        [listener] = [
            item
            for item in lb["LoadBalancerDescriptions"][0]["ListenerDescriptions"]
            if item["Listener"]["LoadBalancerPort"] == port
        ]
        return list(listener["PolicyNames"])

    def domain_policy(self, name: str) -> str:
        domain = self.client("apigatewayv2").get_domain_name(DomainName=name)
        return str(domain["DomainNameConfigurations"][0]["SecurityPolicy"])


@pytest.fixture
def world(aws: MotoServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    """The ELBv2 fleet only (quicker to seed)."""
    with FaultProxy(aws.url) as proxy:
        monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.url)
        policy = parse(f"aws:\n  regions: [{EAST}, {WEST}]\n")
        yield World(seed_fleet(), policy, proxy, aws.url)


@pytest.fixture
def every_kind(aws: MotoServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    """ELBv2, Classic load balancers and API Gateway domains."""
    fleet = seed_fleet()
    seed_classic_fleet(fleet)
    seed_api_domains(fleet)
    with FaultProxy(aws.url) as proxy:
        monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.url)
        policy = parse(f"aws:\n  regions: [{EAST}, {WEST}]\n")
        yield World(fleet, policy, proxy, aws.url)


def form(body: bytes) -> dict[str, list[str]]:
    return urllib.parse.parse_qs(body.decode(errors="replace"))


def by_resource(outcomes: list[Outcome]) -> dict[tuple[str, str], Outcome]:
    return {(o.change.resource, o.change.attribute): o for o in outcomes}


def test_every_kind_is_written_read_back_and_rolled_back(every_kind: World, tmp_path: Path) -> None:
    world = every_kind
    journal = Journal(tmp_path / "state")
    planned = engine.plan(world.policy, journal=journal)
    assert {c.kind for c in planned.changes} == {
        "listener",
        "load-balancer",
        "classic-listener",
        "http-api-domain",
    }
    result = engine.apply(planned, world.policy, journal=journal, verify=False)
    assert [(o.change.name, o.status, o.message) for o in result.outcomes] == [
        (c.name, Status.APPLIED, "") for c in planned.changes
    ]
    assert world.listener("shop:443")["SslPolicy"] != "ELBSecurityPolicy-2016-08"
    assert world.listener("mqtt-edge:8883")["AlpnPolicy"] == ["HTTP2Preferred"]
    assert world.http2("api") == "true"
    assert world.classic_policies("shop-classic", 443) == [OWN, "shop-classic-sticky"]
    assert world.classic_policies("shop-classic", 8443) == [OWN]
    assert world.domain_policy("ws.shop.example.com") == "TLS_1_2"
    assert world.plan() == []

    back = undo.rollback(result.run_id, world.policy, journal=journal)
    assert [o.status for o in back.outcomes] == [Status.APPLIED] * len(planned.changes)
    assert world.listener("shop:443")["SslPolicy"] == "ELBSecurityPolicy-2016-08"
    assert world.listener("mqtt-edge:8883").get("AlpnPolicy") in (None, [], ["None"])
    assert world.http2("api") == "false"
    assert world.classic_policies("shop-classic", 443) == [
        "ELBSecurityPolicy-2016-08",
        "shop-classic-sticky",
    ]
    assert world.classic_policies("shop-classic", 8443) == []
    assert world.domain_policy("ws.shop.example.com") == "TLS_1_0"


def test_a_write_whose_answer_was_lost_after_it_landed_is_applied(world: World) -> None:
    changes = world.plan()
    target = next(c for c in changes if c.resource == world.fleet.listeners["shop:443"])
    direct = world.client("elbv2")

    def lands_then_fails(method: str, path: str, body: bytes) -> tuple[int, str, bytes] | None:
        fields = form(body)
        if fields.get("Action") == ["ModifyListener"] and fields.get("ListenerArn") == [
            target.resource
        ]:
            direct.modify_listener(ListenerArn=target.resource, SslPolicy=target.after)
            return 200, "text/xml", b"<ModifyListenerResponse><cut"
        return None

    world.proxy.responders.append(lands_then_fails)
    outcome = by_resource(world.executor().apply(changes))[(target.resource, "ssl_policy")]
    assert outcome.status is Status.APPLIED
    assert outcome.message.startswith(
        "the write answered the API's answer could not be read (cut off or malformed): "
    )
    assert outcome.message.endswith(", but it landed: read back as asked")
    assert world.listener("shop:443")["SslPolicy"] == target.after


@pytest.mark.parametrize(
    ("status", "body", "words"),
    [
        (400, error_xml("AccessDenied", "no"), "AccessDenied: no"),
        (200, b"<ModifyListenerResponse><cut", "the API's answer could not be read"),
    ],
)
def test_a_write_that_did_not_land_fails_in_the_apis_words(
    world: World, status: int, body: bytes, words: str
) -> None:
    changes = world.plan()
    lb = world.fleet.load_balancers["api"]

    def fails(method: str, path: str, request: bytes) -> tuple[int, str, bytes] | None:
        fields = form(request)
        if fields.get("Action") == ["ModifyLoadBalancerAttributes"] and fields.get(
            "LoadBalancerArn"
        ) == [lb]:
            return status, "text/xml", body
        return None

    world.proxy.responders.append(fails)
    outcomes = by_resource(world.executor().apply(changes))
    failed = outcomes[(lb, "routing.http2.enabled")]
    assert failed.status is Status.FAILED
    assert words in failed.message
    assert world.http2("api") == "false"
    others = [o for key, o in outcomes.items() if key[0] != lb]
    assert others and {o.status for o in others} == {Status.APPLIED}


def test_when_the_read_back_fails_each_writes_own_answer_decides(every_kind: World) -> None:
    world = every_kind
    changes = world.plan()
    shop = world.fleet.listeners["shop:443"]
    api = world.fleet.load_balancers["api"]
    writes_done: list[str] = []

    def after_writes(method: str, path: str, body: bytes) -> tuple[int, str, bytes] | None:
        fields = form(body)
        action = (fields.get("Action") or [""])[0]
        if action == "ModifyListener" and fields.get("ListenerArn") == [shop]:
            return 400, "text/xml", error_xml("AccessDenied", "not this one")
        if action == "ModifyLoadBalancerAttributes":
            return 200, "text/xml", b"<ModifyLoadBalancerAttributesResponse><cut"
        if method == "PATCH" and "/domainnames/" in path:
            writes_done.append(path)  # the last write: reading back starts after it
            return None
        if writes_done and action.startswith("Describe"):
            return 403, "text/xml", error_xml("AccessDenied", "cannot read")
        if writes_done and method == "GET" and "/domainnames/" in path:
            return 403, "application/json", b'{"message": "cannot read"}'
        return None

    world.proxy.responders.append(after_writes)
    outcomes = by_resource(world.executor().apply(changes))
    refused = outcomes[(shop, "ssl_policy")]
    assert (refused.status, refused.message) == (Status.FAILED, "AccessDenied: not this one")
    unsure = outcomes[(api, "routing.http2.enabled")]
    assert unsure.status is Status.FAILED
    assert ") and reading it back failed, state unknown: " in unsure.message
    assert unsure.message.startswith(
        "the write failed (the API's answer could not be read (cut off or malformed): "
    )
    answered = outcomes[(world.fleet.listeners["admin:8443"], "ssl_policy")]
    assert answered.status is Status.APPLIED
    assert answered.message.startswith("not read back (")
    domain = outcomes[(world.fleet.api_domains["ws.shop.example.com"], "security_policies")]
    assert domain.status is Status.FAILED
    assert domain.message.startswith("written, but reading it back failed: ")
    assert writes_done


def test_a_change_the_executor_cannot_make_is_refused_and_nothing_is_written(
    world: World,
) -> None:
    changes = world.plan()
    listener = next(c for c in changes if c.resource == world.fleet.listeners["shop:443"])
    lb = next(c for c in changes if c.kind == "load-balancer")
    odd = [
        listener.model_copy(update={"attribute": "port", "after": 8443}),
        lb.model_copy(update={"attribute": "idle_timeout.timeout_seconds", "after": 60}),
        listener.model_copy(update={"kind": "target-group", "resource": "arn:tg"}),
    ]
    outcomes = world.executor().apply(odd)
    assert [(o.status, o.message) for o in outcomes] == [
        (Status.FAILED, f"{listener.resource}: listener port"),
        (Status.FAILED, f"{lb.resource}: load balancer idle_timeout.timeout_seconds"),
        (Status.FAILED, "arn:tg: the boto3 executor cannot change a target-group"),
    ]
    assert world.listener("shop:443")["Port"] == 443


@pytest.mark.filterwarnings("ignore:Exception\\(STSClientError\\):UserWarning")
def test_each_account_is_written_as_itself_and_a_denied_one_fails_alone(
    aws: MotoServer,
) -> None:
    """Across an organization each listener is written through its own account's role; an
    account whose role stopped trusting remediate since the plan fails its changes, naming the
    role, and the others are applied (read back as each account's administrator reads)."""
    org = seed_organization()
    policy = parse(f"aws: {{regions: [{EAST}], organization: {{role: {MEMBER_ROLE}}}}}\n")
    changes = engine.plan(policy, record=False).changes
    listener = {
        name: org.fleets[org.accounts[name]].listeners[f"{name}-web:443"] for name in org.accounts
    }
    assert {c.resource for c in changes} == {listener[n] for n in ("shop", "payments", "media")}
    payments = org.accounts["payments"]
    as_account(payments).client("iam").update_assume_role_policy(
        RoleName=MEMBER_ROLE, PolicyDocument=trust_policy(OUTSIDER_ACCOUNT)
    )
    outcomes = {
        o.change.resource: o
        for o in executors.get("boto3", executors.Settings.from_policy(policy), Silent()).apply(
            changes
        )
    }

    def read(name: str) -> str:
        client: Any = as_account(org.accounts[name]).client("elbv2", region_name=EAST)
        found = client.describe_listeners(ListenerArns=[listener[name]])["Listeners"][0]
        return str(found["SslPolicy"])

    denied = outcomes[listener["payments"]]
    assert denied.status is Status.FAILED
    assert "cannot assume" in denied.message and MEMBER_ROLE in denied.message, denied.message
    assert "AccessDenied" in denied.message
    assert read("payments") == WEAK_POLICY
    for name in ("shop", "media"):
        fixed = outcomes[listener[name]]
        assert (fixed.status, fixed.message) == (Status.APPLIED, ""), name
        assert read(name) == fixed.change.after != WEAK_POLICY
