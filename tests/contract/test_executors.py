"""The executor contract, run against every executor with its emulator or a real host:

- `fingerprints` of what was just planned match the plan; a resource changed since differs, and
  one deleted since is None (only that one, not the others read in the same batch);
- `apply` writes, reads back and says applied, and the emulator then holds the planned values;
  `current` reads them too; a dry run writes nothing;
- a resource changed by someone else between the write and the read-back is a failed outcome
  naming what it reads, while the other changes still apply.

Each rig plans through the provider's real discovery and the planner, and changes the world
behind the executor's back only through the emulator's own API (or the host's own files and
reload hook), never by patching a client.
"""

from __future__ import annotations

import json
import shutil
import urllib.parse
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest
import requests
from botocore.exceptions import ClientError

from remediate import engine, executors, registry
from remediate.executors import ReadsCurrent, Status
from remediate.model import Change
from remediate.policy import Policy, load, parse
from remediate.progress import Silent
from remediate.sandbox.aws import FleetBuilder, MotoServer
from remediate.sandbox.compute import ComputeServer, canonical
from remediate.targets import HostFile, require
from tests.contract.fault_proxy import Exchange, FaultProxy
from tests.test_nginx_apply import NGINX, HostFactory, backend, hosts, write_setup

__all__ = ["backend", "hosts"]  # fixtures this module uses from the Nginx apply tests

REGION = "us-east-1"
STRONG_ELB = "ELBSecurityPolicy-TLS-1-2-2017-01"
OTHER_ELB = "ELBSecurityPolicy-TLS13-1-3-2021-06"
PROJECT = "shop-prod"
EXECUTORS = ["boto3", "gcp-api", "ansible", "pulumi"]
ACCESS_DENIED = (
    b'<ErrorResponse xmlns="http://elasticloadbalancing.amazonaws.com/doc/2015-12-01/">'
    b"<Error><Type>Sender</Type><Code>AccessDenied</Code>"
    b"<Message>not authorized to perform elasticloadbalancing:ModifyListener</Message></Error>"
    b"<RequestId>00000000-0000-0000-0000-000000000000</RequestId></ErrorResponse>"
)
LISTENER_NOT_FOUND = (
    b'<ErrorResponse xmlns="http://elasticloadbalancing.amazonaws.com/doc/2015-12-01/">'
    b"<Error><Type>Sender</Type><Code>ListenerNotFound</Code>"
    b"<Message>One or more listeners not found</Message></Error>"
    b"<RequestId>00000000-0000-0000-0000-000000000000</RequestId></ErrorResponse>"
)


def kind_of(change: Change) -> str:
    return change.kind


def path_of(change: Change) -> Path:
    return Path(require(change.target, HostFile).path)


@dataclass
class Rig:
    """One executor and the world behind it.

    `read` is the emulator's own view of a change's attribute, in the change's shape; `victim`
    picks the change whose resource a test moves, deletes or tampers with; `tamper` arranges for
    that resource to be rewritten by someone else right after the executor writes it; `refuse`
    makes the service refuse its write, and yields words the failure must quote.
    """

    name: str
    policy: Policy
    read: Callable[[Change], object]
    victim: Callable[[list[Change]], Change]
    move: Callable[[Change], None]
    delete: Callable[[Change], None]
    tamper: Callable[[Change], AbstractContextManager[None]]
    refuse: Callable[[Change], AbstractContextManager[str]]
    executor_name: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def executor(self) -> executors.Executor:
        settings = executors.Settings.from_policy(self.policy)
        return executors.get(self.executor_name or self.name, settings, Silent())

    def plan(self) -> list[Change]:
        changes = engine.plan(self.policy).changes
        assert changes, f"the {self.name} rig plans nothing"
        return changes


# -- AWS: boto3 (and pulumi) against moto over HTTP, through a fault proxy ---------------------


@pytest.fixture
def aws_rig(aws: MotoServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[Rig]:
    east = FleetBuilder(REGION)
    east.target_group("web")
    east.target_group("mqtt", protocol="TCP")
    east.load_balancer("shop")
    east.listener("shop", 443, "HTTPS", "web")  # the API default: ELBSecurityPolicy-2016-08
    east.listener("shop", 8443, "HTTPS", "web", ssl_policy="ELBSecurityPolicy-2016-08")
    east.attributes("shop", **{"routing.http2.enabled": "false"})
    east.load_balancer("mqtt-edge", kind="network")
    east.listener("mqtt-edge", 8883, "TLS", "mqtt", ssl_policy="ELBSecurityPolicy-TLS-1-1-2017-01")
    direct: Any = boto3.client("elbv2", region_name=REGION, endpoint_url=aws.url)

    def read(change: Change) -> object:
        if kind_of(change) == "listener":
            found = direct.describe_listeners(ListenerArns=[change.resource])["Listeners"][0]
            if change.attribute == "ssl_policy":
                return found.get("SslPolicy")
            alpn = found.get("AlpnPolicy") or [None]
            return None if alpn[0] == "None" else alpn[0]
        attributes = direct.describe_load_balancer_attributes(LoadBalancerArn=change.resource)
        values = {a["Key"]: a["Value"] for a in attributes["Attributes"]}
        return values.get(change.attribute, "true") == "true"

    def victim(changes: list[Change]) -> Change:
        return next(c for c in changes if c.resource == east.fleet.listeners["shop:8443"])

    def move(change: Change) -> None:
        direct.modify_listener(ListenerArn=change.resource, SslPolicy=STRONG_ELB)

    def delete(change: Change) -> None:
        direct.delete_listener(ListenerArn=change.resource)

    @contextmanager
    def tamper(change: Change) -> Iterator[None]:
        done: list[bool] = []

        def rewrite(exchange: Exchange) -> None:
            form = urllib.parse.parse_qs(exchange.request.decode())
            if (
                not done
                and form.get("Action") == ["ModifyListener"]
                and form.get("ListenerArn") == [change.resource]
            ):
                done.append(True)
                direct.modify_listener(ListenerArn=change.resource, SslPolicy=OTHER_ELB)

        proxy.hooks.append(rewrite)
        try:
            yield
        finally:
            proxy.hooks.remove(rewrite)
        assert done, "the write never went through the proxy"

    def listener_not_found(method: str, path: str, body: bytes) -> tuple[int, str, bytes] | None:
        """DescribeListeners fails whole with ListenerNotFound when any ARN it names is gone, as
        AWS answers; moto answers with the listeners it found and fails only when none is."""
        form = urllib.parse.parse_qs(body.decode())
        if form.get("Action") != ["DescribeListeners"]:
            return None
        arns = [v[0] for k, v in form.items() if k.startswith("ListenerArns.member.")]
        for arn in arns:
            try:
                direct.describe_listeners(ListenerArns=[arn])
            except ClientError:
                return 400, "text/xml", LISTENER_NOT_FOUND
        return None

    @contextmanager
    def refuse(change: Change) -> Iterator[str]:
        def denied(method: str, path: str, body: bytes) -> tuple[int, str, bytes] | None:
            form = urllib.parse.parse_qs(body.decode())
            if form.get("Action") == ["ModifyListener"] and form.get("ListenerArn") == [
                change.resource
            ]:
                return 400, "text/xml", ACCESS_DENIED
            return None

        proxy.responders.append(denied)
        try:
            yield "AccessDenied: not authorized to perform elasticloadbalancing:ModifyListener"
        finally:
            proxy.responders.remove(denied)

    with FaultProxy(aws.url) as proxy:
        proxy.responders.append(listener_not_found)
        monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.url)
        policy = parse(f"aws:\n  regions: [{REGION}]\n")
        yield Rig("boto3", policy, read, victim, move, delete, tamper, refuse)


# -- GCP: the gcp-api executor against the local Compute stand-in, through a fault proxy -------


@pytest.fixture(scope="module")
def compute_server() -> Iterator[ComputeServer]:
    server = ComputeServer(operation_polls=2)
    yield server
    server.stop()


@pytest.fixture
def gcp_rig(compute_server: ComputeServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[Rig]:
    server = compute_server
    server.reset()
    service = server.backend_service(PROJECT, "web")
    url_map = server.url_map(PROJECT, "web", service)
    weak = server.ssl_policy(PROJECT, "legacy-compat", "TLS_1_0", "COMPATIBLE")
    strict = server.ssl_policy(PROJECT, "strict", "TLS_1_2", "RESTRICTED")
    server.https_proxy(PROJECT, "web", url_map)
    legacy = server.https_proxy(PROJECT, "legacy", url_map, weak)

    def read(change: Change) -> object:
        try:
            item = server.get(change.resource)
        except Exception:
            return None
        if kind_of(change) == "target-https-proxy":
            value = item.get("sslPolicy")
            return canonical(value) if value else None
        if change.attribute == "ssl_policy":
            return {key: item[key] for key in ("name", "minTlsVersion", "profile")}
        return item.get(change.attribute)

    def victim(changes: list[Change]) -> Change:
        return next(c for c in changes if c.resource == legacy)

    def move(change: Change) -> None:
        server.test_hooks.touch(change.resource, sslPolicy=strict)

    def call(method: str, url: str) -> None:
        answer = requests.request(method, url, timeout=10)
        answer.raise_for_status()
        operation = answer.json()
        while operation["status"] != "DONE":
            operation = requests.get(
                operation["selfLink"].replace("https://www.googleapis.com", proxy.url), timeout=10
            ).json()

    def delete(change: Change) -> None:
        call("DELETE", change.resource.replace("https://www.googleapis.com", server.url))

    @contextmanager
    def tamper(change: Change) -> Iterator[None]:
        done: list[bool] = []

        def rewrite(exchange: Exchange) -> None:
            try:
                body = json.loads(exchange.response or b"null")
            except ValueError:
                return
            if (
                not done
                and isinstance(body, dict)
                and body.get("kind") == "compute#operation"
                and body.get("status") == "DONE"
                and canonical(str(body.get("targetLink"))) == canonical(change.resource)
            ):
                done.append(True)
                server.test_hooks.touch(change.resource, sslPolicy=strict)

        proxy.hooks.append(rewrite)
        try:
            yield
        finally:
            proxy.hooks.remove(rewrite)
        assert done, "the write's operation never finished through the proxy"

    @contextmanager
    def refuse(change: Change) -> Iterator[str]:
        server.test_hooks.fail_next(
            change.resource, "The proxy is being updated by another operation"
        )
        yield "RESOURCE_NOT_READY: The proxy is being updated by another operation"

    with FaultProxy(server.url) as proxy:
        monkeypatch.setenv("REMEDIATE_GCP_ENDPOINT", proxy.url)
        policy = parse(f"gcp:\n  projects: [{PROJECT}]\n")
        yield Rig("gcp-api", policy, read, victim, move, delete, tamper, refuse)


# -- Nginx: the ansible executor against a real nginx on loopback -------------------------------

RELOAD_AND_MAYBE_REWRITE = """#!/bin/sh
# Reload as remediate would, then (when a test asks) let another tool append to a file; or, when
# a test asks, refuse the reload as a broken service manager would.
set -e
if [ -e {refused} ]; then
    echo "reload refused by the service manager" >&2
    exit 1
fi
{nginx} -p {root} -c {conf} -s reload
if [ -s {flag} ]; then
    printf '# rewritten by another tool\\n' >> "$(cat {flag})"
fi
"""


@pytest.fixture
def ansible_rig(tmp_path: Path, hosts: HostFactory) -> Iterator[Rig]:
    if not Path(NGINX).exists():
        pytest.skip("needs the nginx binary (Debian package nginx)")
    script = tmp_path / "reload.sh"
    flag = tmp_path / "rewrite-after-reload"
    refused = tmp_path / "refuse-reload"
    web = hosts("web1", nginx_reload_command=str(script))
    script.write_text(
        RELOAD_AND_MAYBE_REWRITE.format(
            nginx=web.binary, root=web.root, conf=web.conf, flag=flag, refused=refused
        ),
        encoding="utf-8",
    )
    script.chmod(0o755)
    policy = load(write_setup(tmp_path, web))

    def read(change: Change) -> object:
        path = path_of(change)
        return path.read_text(encoding="utf-8") if path.exists() else None

    def victim(changes: list[Change]) -> Change:
        return next(c for c in changes if path_of(c) == web.site)

    def move(change: Change) -> None:
        with path_of(change).open("a", encoding="utf-8") as file:
            file.write("# edited by hand\n")

    def delete(change: Change) -> None:
        path_of(change).unlink()

    @contextmanager
    def tamper(change: Change) -> Iterator[None]:
        flag.write_text(str(path_of(change)), encoding="utf-8")
        try:
            yield
        finally:
            flag.write_text("", encoding="utf-8")

    @contextmanager
    def refuse(change: Change) -> Iterator[str]:
        refused.touch()
        try:
            yield "reload refused by the service manager"
        finally:
            refused.unlink()

    yield Rig("ansible", policy, read, victim, move, delete, tamper, refuse)


@pytest.fixture(params=EXECUTORS)
def rig(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Rig:
    name = request.param
    if name == "pulumi":
        if shutil.which("pulumi") is None:
            pytest.skip("needs the Pulumi CLI (`pulumi` on PATH)")
        monkeypatch.setenv("REMEDIATE_STATE_DIR", str(tmp_path / "state"))
        aws: Rig = request.getfixturevalue("aws_rig")
        aws.executor_name = "pulumi"
        return aws
    fixture = {"boto3": "aws_rig", "gcp-api": "gcp_rig", "ansible": "ansible_rig"}[name]
    found: Rig = request.getfixturevalue(fixture)
    return found


def test_fingerprints_of_a_fresh_plan_match_it(rig: Rig) -> None:
    changes = rig.plan()
    current = rig.executor().fingerprints(changes)
    assert {c.resource: current[c.resource] for c in changes} == {
        c.resource: c.fingerprint for c in changes
    }


def test_a_resource_changed_since_the_plan_has_another_fingerprint(rig: Rig) -> None:
    changes = rig.plan()
    moved = rig.victim(changes)
    rig.move(moved)
    current = rig.executor().fingerprints(changes)
    assert current[moved.resource] is not None
    assert current[moved.resource] != moved.fingerprint


def test_a_deleted_resource_reads_as_none_and_only_that_one(rig: Rig) -> None:
    changes = rig.plan()
    gone = rig.victim(changes)
    rig.delete(gone)
    current = rig.executor().fingerprints(changes)
    assert current[gone.resource] is None
    others = {c.resource for c in changes} - {gone.resource}
    assert others, "the rig plans more than one resource"
    assert all(current[resource] is not None for resource in others), current


def test_apply_writes_reads_back_and_the_emulator_holds_the_plan(rig: Rig) -> None:
    changes = rig.plan()
    executor = rig.executor()
    outcomes = executor.apply(changes)
    assert [(o.change.resource, o.change.attribute, o.status, o.message) for o in outcomes] == [
        (c.resource, c.attribute, Status.APPLIED, "") for c in changes
    ]
    assert [rig.read(c) for c in changes] == [c.after for c in changes]
    assert isinstance(executor, ReadsCurrent)
    current = executor.current(changes)
    for change in changes:
        assert _same(current[(change.resource, change.attribute)], change.after), change
    assert engine.plan(rig.policy).changes == [], "a second plan finds nothing left to do"


def test_a_dry_run_writes_nothing(rig: Rig) -> None:
    changes = rig.plan()
    outcomes = rig.executor().apply(changes, dry_run=True)
    assert [o.status for o in outcomes] == [Status.DRY_RUN] * len(changes)
    assert [rig.read(c) for c in changes] == [c.before for c in changes]


def test_a_value_rewritten_before_the_read_back_is_a_failure(rig: Rig) -> None:
    changes = rig.plan()
    target = rig.victim(changes)
    with rig.tamper(target):
        outcomes = rig.executor().apply(changes)
    by_change = {(o.change.resource, o.change.attribute): o for o in outcomes}
    failed = by_change.pop((target.resource, target.attribute))
    assert failed.status is Status.FAILED
    assert "written, but" in failed.message and "reads back" in failed.message
    assert failed.observed is not None and not _same(failed.observed, target.after)
    assert rig.read(target) != target.after
    assert {key: o.status for key, o in by_change.items()} == dict.fromkeys(
        by_change, Status.APPLIED
    )


def test_a_refused_write_is_a_failure_in_the_services_words(rig: Rig) -> None:
    changes = rig.plan()
    target = rig.victim(changes)
    with rig.refuse(target) as words:
        outcomes = rig.executor().apply(changes)
    by_change = {(o.change.resource, o.change.attribute): o for o in outcomes}
    failed = by_change[(target.resource, target.attribute)]
    assert failed.status is Status.FAILED
    assert words in failed.message, failed.message
    assert rig.read(target) == target.before
    assert len(outcomes) == len(changes)


def _same(value: object, after: object) -> bool:
    if isinstance(value, str) and isinstance(after, str) and "/compute/v1/" in after:
        return canonical(value) == canonical(after)
    return value == after


# Executors with a contract module of their own rather than a rig here: haproxy-ansible
# (tests/contract/test_haproxy_executor.py, against a real HAProxy).
END_TO_END_ONLY = {"haproxy-ansible"}


def test_every_executor_has_a_rig() -> None:
    assert sorted(EXECUTORS) == sorted(set(registry.executor_factories()) - END_TO_END_ONLY)
