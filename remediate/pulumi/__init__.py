"""remediate for Pulumi programs: `enforce()` fixes weak edge settings as the program declares them.

    import remediate.pulumi
    remediate.pulumi.enforce()          # or enforce("remediate.yaml"), enforce(Policy(...))

Every resource declared after the call goes through the same rules the planner applies to live
state (`remediate.rules`), so `remediate plan` and the program never disagree:

- `aws:lb/listener:Listener` (and `aws:alb/...`): an HTTPS/TLS listener whose security policy
  accepts TLS below `tls.minimum` gets the policy `rules.aws.choose_ssl_policy` picks (a stricter
  one is kept); a TLS listener gets `alpnPolicy: HTTP2Preferred` when `http2` is on.
- `aws:lb/loadBalancer:LoadBalancer` (and the alias): `enableHttp2` for application load balancers.
- `gcp:compute/sSLPolicy:SSLPolicy` and `regionSslPolicy`: `minTlsVersion`/`profile` raised.
- `gcp:compute/targetHttpsProxy:TargetHttpsProxy` and `regionTargetHttpsProxy` without an SSL
  policy: attached to one SSL policy named `gcp.ssl_policy_name`, declared once per stack (per
  project and region for regional proxies); `targetSSLProxy:TargetSSLProxy` (SSL proxy load
  balancers) likewise, to the global one.
- `aws:apigateway/domainName:DomainName` and `aws:apigateway/restApi:RestApi`: a `securityPolicy`
  below `tls.minimum` (none declared counts as `TLS_1_0`, or `TLS_1_2` for a private API) gets the
  one `rules.aws.rest_verdict` picks from botocore's `SecurityPolicy` enum for the endpoint type,
  with `endpointAccessMode` (`aws.endpoint_access_mode`) when it is an enhanced policy.
- `aws:apigatewayv2/domainName:DomainName`: `domainNameConfiguration.securityPolicy` likewise.
- `aws:elb/loadBalancerPolicy:LoadBalancerPolicy` of type `SSLNegotiationPolicyType` whose
  reference (or own `Protocol-*` attributes) accepts TLS below the minimum: it references the
  predefined policy the Classic rule picks instead (its attributes become that reference).
- `aws:elb/listenerPolicy:ListenerPolicy`: a Classic listener's policy list, judged by the
  negotiation policy it assigns (as that `LoadBalancerPolicy` is declared, once fixed: declare the
  policies before the listener policies that name them). With none among its names, ELB applies
  `ELBSecurityPolicy-2016-08`: when that is too weak, remediate declares its own negotiation
  policy on the load balancer (`remediate-` and the predefined policy it references, the name the
  planner gives it) and appends it to the list, keeping every other policy.

Opt a resource out with the AWS tag `remediate:skip` or by name: `enforce(skip=["legacy-*"])`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import pulumi

from remediate import policy as policy_module
from remediate.errors import RemediateError
from remediate.policy import Policy
from remediate.providers.aws.rules import SslPolicy
from remediate.pulumi import catalog
from remediate.pulumi.resources import (
    CLASSIC_POLICY,
    PROXIES,
    READS,
    SKIP_TAG,
    TYPES,
    WRITES,
    Decision,
    ManagedPolicy,
    OwnNegotiation,
    decide,
    skipped,
)
from remediate.rules import RuleError

__all__ = ["SKIP_TAG", "EnforceError", "Enforcement", "enforce"]

Api = Literal["auto", "transforms", "transformations"]


class EnforceError(RemediateError, pulumi.RunError):
    """A policy `enforce()` cannot meet; Pulumi prints it as one line, without a traceback."""


def _snake(name: str) -> str:
    """An engine property name as the Python SDK spells it (`enableHttp2` -> `enable_http2`)."""
    return re.sub(r"(?<!^)([A-Z])", r"_\1", name).lower()


def _known(value: Any) -> bool:
    """Whether `value` is a plain value now (no Output or awaitable anywhere inside)."""
    if isinstance(value, pulumi.Output) or hasattr(value, "__await__"):
        return False
    if isinstance(value, Mapping):
        return all(_known(item) for item in value.values())
    if isinstance(value, list | tuple):
        return all(_known(item) for item in value)
    return True


@dataclass
class Enforcement:
    """What `enforce()` registered: which Pulumi API runs it, and the rules' inputs."""

    policy: Policy
    skip: tuple[str, ...]
    ssl_policies: Sequence[SslPolicy]
    api: str = ""
    _managed: dict[tuple[str | None, str | None, int], pulumi.Output[str]] = field(
        default_factory=dict
    )
    _classic: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    _negotiation: dict[tuple[str, str, int], pulumi.Output[str]] = field(default_factory=dict)

    def transform(
        self, args: pulumi.ResourceTransformArgs
    ) -> pulumi.ResourceTransformResult | None:
        """The current transforms API: the engine passes inputs under their engine names."""
        props = self._apply(args.type_, args.name, dict(args.props), args.opts, snake=False)
        return None if props is None else pulumi.ResourceTransformResult(props, args.opts)

    def transformation(
        self, args: pulumi.ResourceTransformationArgs
    ) -> pulumi.ResourceTransformationResult | None:
        """The older transformations API: inputs arrive under their Python names."""
        props = self._apply(args.type_, args.name, dict(args.props), args.opts, snake=True)
        return None if props is None else pulumi.ResourceTransformationResult(props, args.opts)

    def _apply(
        self,
        type_: str,
        name: str,
        props: dict[str, Any],
        opts: pulumi.ResourceOptions | None,
        snake: bool,
    ) -> dict[str, Any] | None:
        if type_ not in TYPES:
            return None

        def key(engine_name: str) -> str:
            return _snake(engine_name) if snake else engine_name

        read = {name_: props.get(key(name_)) for name_ in READS[type_]}
        if _known(read):
            decision = self._decide(type_, name, read)
            props.update({key(input_): value for input_, value in decision.updates.items()})
            if decision.attach is not None:
                props[key("sslPolicy")] = self._managed_policy(decision.attach, opts)
            if decision.negotiate is not None:
                props[key("policyNames")] = self._negotiated(decision.negotiate, opts)
            return props
        if type_ in PROXIES:
            if not _known(read["sslPolicy"]):
                return None  # an SSL policy is attached, its value just not known yet
            raise EnforceError(
                f"{name}: project and region must be plain values for remediate to declare "
                "the SSL policy of this proxy's scope"
            )
        # Decide once the inputs resolve; the decided inputs become Outputs of the rule's answer.
        decided = pulumi.Output.from_input(read).apply(
            lambda values: self._decide(type_, name, values)
        )
        for input_ in WRITES[type_]:
            props[key(input_)] = decided.apply(self._value_of(input_, props.get(key(input_)), opts))
        return props

    def _decide(self, type_: str, name: str, read: Mapping[str, Any]) -> Decision:
        if skipped(name, read, self.skip):
            return Decision()
        region = pulumi.Config("gcp").get("region") if type_ in PROXIES else None
        try:
            decision = decide(
                type_, name, read, self.policy, self.ssl_policies, region, self._classic
            )
        except RuleError as exc:
            raise EnforceError(f"{name}: {exc}") from None
        if type_ == CLASSIC_POLICY:
            # What a listener policy naming it will find: the policy as the rules leave it.
            declared = {**read, **decision.updates}
            self._classic[(str(read["loadBalancerName"]), str(read["policyName"]))] = declared
        for finding in decision.findings:
            pulumi.log.warn(f"remediate: {name}: {finding}")
        for line in decision.violations():
            pulumi.log.info(f"remediate: {name}: {line}")
        return decision

    def _managed_policy(
        self, managed: ManagedPolicy, opts: pulumi.ResourceOptions | None
    ) -> pulumi.Output[str]:
        """The reference of the SSL policy for this project and scope, declared on first use."""
        provider = opts.provider if opts is not None else None
        slot = (managed.project, managed.region, id(provider))
        if slot in self._managed:
            return self._managed[slot]
        import pulumi_gcp as gcp

        same_scope = sum(1 for p, r, _ in self._managed if (p, r) == slot[:2])
        logical = "-".join(
            part
            for part in (managed.name, managed.project, managed.region, str(same_scope or ""))
            if part
        )
        inputs: dict[str, Any] = {
            "name": managed.name,
            "project": managed.project,
            "min_tls_version": managed.min_tls_version,
            "profile": managed.profile,
            "opts": pulumi.ResourceOptions(provider=provider),
        }
        ssl_policy: gcp.compute.SSLPolicy | gcp.compute.RegionSslPolicy
        if managed.region is not None:
            ssl_policy = gcp.compute.RegionSslPolicy(logical, region=managed.region, **inputs)
        else:
            ssl_policy = gcp.compute.SSLPolicy(logical, **inputs)
        self._managed[slot] = ssl_policy.id
        return ssl_policy.id

    def _value_of(
        self, input_: str, original: Any, opts: pulumi.ResourceOptions | None
    ) -> Callable[[Decision], Any]:
        """The decided value of one input, or what the program declared when the rules keep
        it."""

        def value(decision: Decision) -> Any:
            if decision.negotiate is not None and input_ == "policyNames":
                return self._negotiated(decision.negotiate, opts)
            return decision.updates.get(input_, original)

        return value

    def _negotiated(
        self, negotiate: OwnNegotiation, opts: pulumi.ResourceOptions | None
    ) -> pulumi.Output[list[str]]:
        """The listener's policy names with remediate's negotiation policy appended, declared on
        first use (one per load balancer, reference and provider)."""
        provider = opts.provider if opts is not None else None
        slot = (negotiate.load_balancer, negotiate.reference, id(provider))
        if slot not in self._negotiation:
            import pulumi_aws as aws

            declared = aws.elb.LoadBalancerPolicy(
                f"{negotiate.policy_name}-{negotiate.load_balancer}",
                load_balancer_name=negotiate.load_balancer,
                policy_name=negotiate.policy_name,
                policy_type_name="SSLNegotiationPolicyType",
                policy_attributes=[
                    {"name": "Reference-Security-Policy", "value": negotiate.reference}
                ],
                opts=pulumi.ResourceOptions(provider=provider),
            )
            self._negotiation[slot] = declared.policy_name
        return pulumi.Output.all(*negotiate.names, self._negotiation[slot])


def _load(policy: Policy | str | Path | None) -> Policy:
    if policy is None:
        return Policy()
    if isinstance(policy, Policy):
        return policy
    try:
        return policy_module.load(policy)
    except RemediateError as exc:
        raise EnforceError(str(exc)) from None


def enforce(
    policy: Policy | str | Path | None = None,
    *,
    skip: Iterable[str] = (),
    ssl_policies: Sequence[SslPolicy] | None = None,
    api: Api = "auto",
) -> Enforcement:
    """Apply `policy` (a Policy, a policy file, or None for TLS 1.2 minimum and HTTP/2 on) to every
    resource the current stack declares after this call.

    `skip` holds resource-name globs left alone (as is anything tagged `remediate:skip`).
    `ssl_policies` is the ELB security policy catalog the rules choose from: by default the bundled
    `describe_ssl_policies` snapshot, `remediate.pulumi.catalog.fetch()` for the live one.
    `api` picks the Pulumi mechanism: `auto` registers a stack transform where the engine supports
    them and falls back to the older stack transformation otherwise.
    """
    enforcement = Enforcement(
        policy=_load(policy),
        skip=tuple(skip),
        ssl_policies=list(ssl_policies) if ssl_policies is not None else catalog.bundled(),
    )
    if api in ("auto", "transforms"):
        register = getattr(pulumi.runtime, "register_resource_transform", None)
        try:
            if register is None:
                raise EnforceError("this Pulumi SDK has no register_resource_transform")
            register(enforcement.transform)
        except Exception as exc:
            if api == "transforms":
                raise EnforceError(f"cannot register a stack transform: {exc}") from None
        else:
            enforcement.api = "transforms"
            return enforcement
    pulumi.runtime.register_stack_transformation(enforcement.transformation)
    enforcement.api = "transformations"
    return enforcement
