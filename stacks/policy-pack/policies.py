"""The pack's policies as plain functions, so they run (and are tested) without pulumi_policy.

Each policy covers resource types of `remediate.pulumi.resources` and asks the same question
`enforce()` asks: what do remediate's rules want these inputs to be? `violations` reports the
answer; `remediation` returns the corrected inputs. A policy over several resources (a Classic
listener policy and the negotiation policies it names) is a stack policy: `stack_violations`
judges the stack's resources together. Configuration (per pack, `pulumi policy
enable --config` or `--policy-pack-config`): `policyFile`, a remediate policy file (absolute, or
relative to where Pulumi runs), and `skip`, resource-name globs to leave alone. Resources tagged
`remediate:skip` are left alone too.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

from remediate import policy as policy_module
from remediate.policy import Policy
from remediate.providers.aws.rules import SslPolicy
from remediate.pulumi import resources
from remediate.pulumi.catalog import bundled


@dataclass(frozen=True)
class PackPolicy:
    name: str
    description: str
    types: frozenset[str]
    fixable: bool
    stack: bool = False


POLICIES = [
    PackPolicy(
        "elb-listener-tls",
        "HTTPS/TLS listeners use a security policy that meets the TLS minimum; TLS listeners "
        "offer HTTP/2 through ALPN",
        resources.LISTENERS,
        fixable=True,
    ),
    PackPolicy(
        "elb-http2",
        "Application load balancers keep HTTP/2 on",
        resources.LOAD_BALANCERS,
        fixable=True,
    ),
    PackPolicy(
        "gcp-ssl-policy-tls",
        "SSL policies meet the TLS minimum and profile",
        resources.SSL_POLICIES,
        fixable=True,
    ),
    PackPolicy(
        "gcp-proxy-ssl-policy",
        "Target HTTPS and SSL proxies have an SSL policy (without one, Google's default accepts "
        "TLS 1.0)",
        resources.PROXIES,
        # Remediation can only change the proxy's inputs, not declare the SSL policy it needs:
        # `remediate.pulumi.enforce()` does that in the program.
        fixable=False,
    ),
    PackPolicy(
        "apigateway-security-policy",
        "API Gateway REST APIs and custom domains (REST, HTTP, WebSocket) use a security policy "
        "that meets the TLS minimum, with an endpoint access mode when it is an enhanced one",
        resources.API_DOMAINS,
        fixable=True,
    ),
    PackPolicy(
        "classic-elb-ssl-negotiation",
        "Classic ELB SSL negotiation policies reference a predefined policy that meets the TLS "
        "minimum",
        resources.CLASSIC_POLICIES,
        fixable=True,
    ),
    PackPolicy(
        "classic-elb-listener-negotiation",
        "Classic ELB listener policies assign a negotiation policy that meets the TLS minimum "
        "(with none, ELB applies ELBSecurityPolicy-2016-08)",
        resources.LISTENER_POLICIES,
        # The fix is another resource: the weak negotiation policy's own (classic-elb-ssl-
        # negotiation), or one to declare, which `remediate.pulumi.enforce()` does.
        fixable=False,
        stack=True,
    ),
]
CONFIG_SCHEMA: dict[str, dict[str, Any]] = {
    "policyFile": {"type": "string"},
    "skip": {"type": "array", "items": {"type": "string"}},
}


@cache
def _policy(path: str | None) -> Policy:
    return Policy() if not path else policy_module.load(path)


@cache
def _catalog() -> list[SslPolicy]:
    return bundled()


def _decision(
    resource_type: str,
    name: str,
    props: Mapping[str, Any],
    config: Mapping[str, Any],
    classic: Mapping[tuple[str, str], Mapping[str, Any]] | None = None,
) -> resources.Decision:
    if resources.skipped(name, props, config.get("skip") or ()):
        return resources.Decision()
    policy = _policy(config.get("policyFile"))
    return resources.decide(
        resource_type, name, props, policy, _catalog(), classic_policies=classic
    )


def stack_violations(
    stack: Sequence[tuple[str, str, Mapping[str, Any]]], config: Mapping[str, Any]
) -> list[tuple[int, str]]:
    """For each listener policy among the stack's (type, name, inputs), by its index, what the
    rules would change, given the Classic ELB policies the stack declares."""
    classic = {
        (str(props.get("loadBalancerName")), str(props.get("policyName"))): props
        for type_, _, props in stack
        if type_ == resources.CLASSIC_POLICY
    }
    return [
        (index, line)
        for index, (type_, name, props) in enumerate(stack)
        if type_ in resources.LISTENER_POLICIES
        for line in _decision(type_, name, props, config, classic).violations()
    ]


def violations(
    resource_type: str, name: str, props: Mapping[str, Any], config: Mapping[str, Any]
) -> list[str]:
    """What the rules would change on this resource, one line each; empty when compliant."""
    return _decision(resource_type, name, props, config).violations()


def remediation(
    resource_type: str, name: str, props: Mapping[str, Any], config: Mapping[str, Any]
) -> dict[str, Any] | None:
    """The inputs with the rules' values, or None when nothing changes."""
    decision = _decision(resource_type, name, props, config)
    if not decision.updates:
        return None
    return {**props, **decision.updates}
