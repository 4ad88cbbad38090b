"""The pulumi executor: its remediation program under Pulumi's mocks (what it declares, with which
values and import ids), and the Automation API path where a `pulumi` binary exists."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from remediate import planner
from remediate.model import Change
from remediate.policy import parse
from remediate.providers.aws import discover as aws_provider
from remediate.providers.aws.model import ListenerTarget, LoadBalancerTarget
from remediate.providers.gcp.model import ComputeTarget
from remediate.pulumi.remediation import Declaration, declarations, declare
from remediate.sandbox.aws import MotoServer, seed_fleet
from remediate.targets import Target
from tests.conftest import Cli
from tests.pulumi_engine import Registered, run

LISTENER_ARN = "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/shop/50dc6c/f2f7"
LB_ARN = "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/shop/50dc6c"
COMPUTE = "https://www.googleapis.com/compute/v1/projects/shop"
PROXY = f"{COMPUTE}/global/targetHttpsProxies/web"
REGIONAL_PROXY = f"{COMPUTE}/regions/europe-west1/targetHttpsProxies/eu"
OWNED = f"{COMPUTE}/global/sslPolicies/remediate-tls"
OWNED_EU = f"{COMPUTE}/regions/europe-west1/sslPolicies/remediate-tls"
HAS_PULUMI = shutil.which("pulumi") is not None


def _change(
    provider: str, resource: str, attribute: str, before: Any, after: Any, **ctx: Any
) -> Change:
    kind = ctx.pop("kind")
    location = ctx.pop("location", "us-east-1" if provider == "aws" else "shop/global")
    target: Target
    if kind == "listener":
        target = ListenerTarget(
            arn=resource,
            region=location,
            port=443,
            protocol="HTTPS",
            load_balancer_arn=ctx["load_balancer_arn"],
            load_balancer_type="application",
        )
    elif kind == "load-balancer":
        target = LoadBalancerTarget(arn=resource, region=location, load_balancer_type="application")
    else:
        target = ComputeTarget(link=resource, url_map=ctx.get("url_map"))
    return Change(
        provider=provider,
        kind=kind,
        resource=resource,
        attribute=attribute,
        before=before,
        after=after,
        reason="test",
        executor="pulumi",
        fingerprint="sha256:0",
        location=location,
        target=target,
    )


CHANGES = [
    _change(
        "aws",
        LISTENER_ARN,
        "ssl_policy",
        "ELBSecurityPolicy-2016-08",
        "ELBSecurityPolicy-TLS13-1-2-Res-PQ-2025-09",
        kind="listener",
        load_balancer_arn=LB_ARN,
    ),
    _change(
        "aws",
        LISTENER_ARN,
        "alpn_policy",
        None,
        "HTTP2Preferred",
        kind="listener",
        load_balancer_arn=LB_ARN,
    ),
    _change("aws", LB_ARN, "routing.http2.enabled", False, True, kind="load-balancer"),
    _change(
        "gcp",
        OWNED,
        "ssl_policy",
        None,
        {"name": "remediate-tls", "minTlsVersion": "TLS_1_2", "profile": "MODERN"},
        kind="ssl-policy",
    ),
    _change("gcp", PROXY, "ssl_policy", None, OWNED, kind="target-https-proxy", url_map="um-web"),
    _change(
        "gcp",
        REGIONAL_PROXY,
        "ssl_policy",
        f"{COMPUTE}/regions/europe-west1/sslPolicies/old",
        OWNED_EU,
        kind="target-https-proxy",
        url_map="um-eu",
        location="shop/europe-west1",
    ),
    _change(
        "gcp",
        OWNED_EU,
        "minTlsVersion",
        "TLS_1_0",
        "TLS_1_2",
        kind="ssl-policy",
        location="shop/europe-west1",
    ),
]


def _declared(resources: dict[str, Registered]) -> dict[str, Registered]:
    """The declared cloud resources by import id (or name, for created ones); no providers."""
    return {
        (r.import_id or r.inputs.get("name", r.name)): r
        for r in resources.values()
        if not r.type.startswith("pulumi:providers:")
    }


def test_one_declaration_per_resource() -> None:
    found = declarations(CHANGES)
    assert [d.resource for d in found] == [
        LISTENER_ARN,
        LB_ARN,
        OWNED,
        PROXY,
        REGIONAL_PROXY,
        OWNED_EU,
    ]
    listener = found[0]
    assert listener.observed == {"sslPolicy": "ELBSecurityPolicy-2016-08", "alpnPolicy": None}
    assert [Declaration.from_json(d.to_json()) for d in found] == found


def test_adopting_declares_exactly_the_plan_resources_with_observed_values_and_import_ids() -> None:
    found = declarations(CHANGES)
    resources = _declared(run(lambda: declare(found, {d.resource for d in found})))
    assert sorted(resources) == sorted(
        [
            LISTENER_ARN,
            LB_ARN,
            "remediate-tls",
            "projects/shop/global/targetHttpsProxies/web",
            "projects/shop/regions/europe-west1/targetHttpsProxies/eu",
            "projects/shop/regions/europe-west1/sslPolicies/remediate-tls",
        ]
    )
    listener = resources[LISTENER_ARN]
    assert listener.type == "aws:lb/listener:Listener"
    assert listener.inputs["sslPolicy"] == "ELBSecurityPolicy-2016-08"
    assert listener.inputs["loadBalancerArn"] == LB_ARN
    assert resources[LB_ARN].inputs["enableHttp2"] is False
    created = resources["remediate-tls"]
    assert created.type == "gcp:compute/sSLPolicy:SSLPolicy"
    assert created.import_id == "", "remediate's own SSL policy is created, never imported"
    assert created.inputs == {
        "name": "remediate-tls",
        "project": "shop",
        "minTlsVersion": "TLS_1_2",
        "profile": "MODERN",
    }
    proxy = resources["projects/shop/global/targetHttpsProxies/web"]
    assert proxy.inputs == {"name": "web", "project": "shop", "urlMap": "um-web"}
    regional = resources["projects/shop/regions/europe-west1/targetHttpsProxies/eu"]
    assert regional.type == "gcp:compute/regionTargetHttpsProxy:RegionTargetHttpsProxy"
    assert regional.inputs["sslPolicy"].endswith("/sslPolicies/old")
    owned_eu = resources["projects/shop/regions/europe-west1/sslPolicies/remediate-tls"]
    assert owned_eu.inputs["minTlsVersion"] == "TLS_1_0"


def test_after_adoption_every_resource_gets_the_plan_values() -> None:
    found = declarations(CHANGES)
    resources = _declared(run(lambda: declare(found)))
    assert not [r for r in resources.values() if r.import_id]
    by_name = {r.name: r for r in resources.values()}
    names = {d.resource: d.logical_name for d in found}
    listener = by_name[names[LISTENER_ARN]].inputs
    assert listener["sslPolicy"] == "ELBSecurityPolicy-TLS13-1-2-Res-PQ-2025-09"
    assert listener["alpnPolicy"] == "HTTP2Preferred"
    assert by_name[names[LB_ARN]].inputs["enableHttp2"] is True
    assert by_name[names[PROXY]].inputs["sslPolicy"] == OWNED
    assert by_name[names[REGIONAL_PROXY]].inputs["sslPolicy"] == OWNED_EU
    assert by_name[names[OWNED_EU]].inputs["minTlsVersion"] == "TLS_1_2"


def test_names_are_stable_and_distinct() -> None:
    names = {d.resource: d.logical_name for d in declarations(CHANGES)}
    assert names == {d.resource: d.logical_name for d in declarations(reversed(CHANGES))}
    assert len(set(names.values())) == len(names)
    assert names[LISTENER_ARN].startswith("listener-app-shop-")
    assert names[PROXY].startswith("targetHttpsProxies-web-")


@pytest.mark.skipif(HAS_PULUMI, reason="a pulumi binary is on PATH")
def test_without_the_pulumi_cli_apply_fails_in_one_line(
    cli: Cli, aws: MotoServer, write_policy: Any
) -> None:
    seed_fleet()
    policy = write_policy("version: 1\naws:\n  regions: [us-east-1]\n")
    result = cli("apply", "-p", str(policy), "-q", "--executor", "pulumi", "--auto-approve")
    assert result.code == 1
    assert result.stderr.strip().splitlines() == [
        "error: the pulumi executor needs the Pulumi CLI: install it "
        "(https://www.pulumi.com/docs/iac/download-install/) and put `pulumi` on PATH"
    ]


@pytest.mark.skipif(not HAS_PULUMI, reason="needs the Pulumi CLI (`pulumi` on PATH)")
def test_automation_adopts_once_and_applies(
    cli: Cli, aws: MotoServer, write_policy: Any, tmp_path: Path
) -> None:
    seed_fleet()
    policy_text = 'version: 1\ntls:\n  minimum: "1.2"\naws:\n  regions: [us-east-1]\n'
    policy_file = write_policy(policy_text)
    preview = cli("apply", "-p", str(policy_file), "--executor", "pulumi", "--dry-run")
    assert preview.code == 0, preview.stderr
    assert "pulumi preview:" in preview.stdout
    applied = cli("apply", "-p", str(policy_file), "--executor", "pulumi", "--auto-approve")
    assert applied.code == 0, applied.stderr
    policy = parse(policy_text)
    assert not planner.plan(aws_provider.discover(policy), policy).changes
    from pulumi import automation as auto

    stack = auto.select_stack(
        "remediation",
        "remediate",
        program=lambda: None,
        opts=auto.LocalWorkspaceOptions(
            project_settings=auto.ProjectSettings(
                name="remediate",
                runtime="python",
                backend=auto.ProjectBackend((tmp_path / "state" / "pulumi").as_uri()),
            ),
            env_vars={"PULUMI_CONFIG_PASSPHRASE": ""},
        ),
    )
    imports = [e for e in stack.history() if e.kind == "update"]
    assert len(imports) == 2, "one up to adopt, one to apply"
