"""What the shared rules say about one Pulumi resource, given its inputs as the engine names them.

Pure: no Pulumi runtime here, so the transforms of `enforce()` and the CrossGuard policy pack (which
runs in its own environment) make the same decisions from the same `remediate.rules`. Inputs use
the engine's property names (`sslPolicy`, `enableHttp2`...); a missing input means the provider's
default, which is what the resource will get.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from remediate.policy import Policy
from remediate.providers.aws import rules as aws_rules
from remediate.providers.gcp import rules as gcp_rules
from remediate.rules import Verdict

LISTENERS = frozenset({"aws:lb/listener:Listener", "aws:alb/listener:Listener"})
LOAD_BALANCERS = frozenset(
    {"aws:lb/loadBalancer:LoadBalancer", "aws:alb/loadBalancer:LoadBalancer"}
)
SSL_POLICIES = frozenset(
    {"gcp:compute/sSLPolicy:SSLPolicy", "gcp:compute/regionSslPolicy:RegionSslPolicy"}
)
GLOBAL_PROXY = "gcp:compute/targetHttpsProxy:TargetHttpsProxy"
REGIONAL_PROXY = "gcp:compute/regionTargetHttpsProxy:RegionTargetHttpsProxy"
SSL_PROXY = "gcp:compute/targetSSLProxy:TargetSSLProxy"
PROXIES = frozenset({GLOBAL_PROXY, REGIONAL_PROXY, SSL_PROXY})
REST_DOMAIN = "aws:apigateway/domainName:DomainName"
REST_API = "aws:apigateway/restApi:RestApi"
REST = frozenset({REST_DOMAIN, REST_API})
HTTP_API_DOMAIN = "aws:apigatewayv2/domainName:DomainName"
API_DOMAINS = REST | {HTTP_API_DOMAIN}
CLASSIC_POLICY = "aws:elb/loadBalancerPolicy:LoadBalancerPolicy"
CLASSIC_POLICIES = frozenset({CLASSIC_POLICY})
LISTENER_POLICY = "aws:elb/listenerPolicy:ListenerPolicy"
LISTENER_POLICIES = frozenset({LISTENER_POLICY})
TYPES = (
    LISTENERS
    | LOAD_BALANCERS
    | SSL_POLICIES
    | PROXIES
    | API_DOMAINS
    | CLASSIC_POLICIES
    | LISTENER_POLICIES
)

# The AWS tag that opts one resource out (any value but "false").
SKIP_TAG = "remediate:skip"
# What ELBv2 gives an HTTPS or TLS listener created without a security policy.
DEFAULT_LISTENER_POLICY = "ELBSecurityPolicy-2016-08"
# HTTPS listeners exist only on application load balancers, TLS listeners only on network ones.
LOAD_BALANCER_TYPE = {"HTTPS": "application", "TLS": "network"}
# The inputs each decision reads (engine names); the transforms resolve these before deciding.
READS: dict[str, tuple[str, ...]] = {
    **dict.fromkeys(LISTENERS, ("protocol", "sslPolicy", "alpnPolicy", "tags")),
    **dict.fromkeys(LOAD_BALANCERS, ("loadBalancerType", "enableHttp2", "tags")),
    **dict.fromkeys(SSL_POLICIES, ("minTlsVersion", "profile")),
    **dict.fromkeys(PROXIES, ("sslPolicy", "project", "region")),
    **dict.fromkeys(
        REST, ("securityPolicy", "endpointAccessMode", "endpointConfiguration", "tags")
    ),
    HTTP_API_DOMAIN: ("domainNameConfiguration", "tags"),
    CLASSIC_POLICY: ("loadBalancerName", "policyName", "policyTypeName", "policyAttributes"),
    LISTENER_POLICY: ("loadBalancerName", "loadBalancerPort", "policyNames"),
}
# The inputs a decision may write.
WRITES: dict[str, tuple[str, ...]] = {
    **dict.fromkeys(LISTENERS, ("sslPolicy", "alpnPolicy")),
    **dict.fromkeys(LOAD_BALANCERS, ("enableHttp2",)),
    **dict.fromkeys(SSL_POLICIES, ("minTlsVersion", "profile")),
    **dict.fromkeys(PROXIES, ("sslPolicy",)),
    **dict.fromkeys(REST, ("securityPolicy", "endpointAccessMode")),
    HTTP_API_DOMAIN: ("domainNameConfiguration",),
    CLASSIC_POLICY: ("policyAttributes",),
    LISTENER_POLICY: ("policyNames",),
}
CLASSIC_NEGOTIATION_TYPE = "SSLNegotiationPolicyType"
CLASSIC_REFERENCE = "Reference-Security-Policy"
# API Gateway's default endpoint type for REST APIs and their domains.
DEFAULT_REST_ENDPOINT = "EDGE"
_ATTRIBUTE_INPUT = {
    "ssl_policy": "sslPolicy",
    "alpn_policy": "alpnPolicy",
    aws_rules.HTTP2_ATTRIBUTE: "enableHttp2",
    "minTlsVersion": "minTlsVersion",
    "profile": "profile",
    aws_rules.API_SECURITY_POLICY: "securityPolicy",
    aws_rules.API_ACCESS_MODE: "endpointAccessMode",
}


@dataclass(frozen=True)
class ManagedPolicy:
    """The SSL policy remediate declares for proxies that have none: one per project and scope."""

    name: str
    min_tls_version: str
    profile: str
    project: str | None = None
    region: str | None = None


@dataclass(frozen=True)
class OwnNegotiation:
    """The Classic ELB negotiation policy remediate declares for a listener that has none: named
    as the planner names its own (`remediate-` and the predefined policy it references), on the
    listener's load balancer, appended to the policies `names` the listener already has."""

    load_balancer: str
    reference: str
    names: tuple[str, ...]

    @property
    def policy_name(self) -> str:
        return f"{aws_rules.OWN_PREFIX}{self.reference}"


@dataclass(frozen=True)
class Decision:
    """New values for some inputs (engine names), each with its reason, plus findings.

    For a proxy without an SSL policy, `attach` names the managed policy to declare and attach;
    for a Classic listener without a negotiation policy, `negotiate` the one to declare and
    assign; their references are only known once declared, so `updates` does not carry them.
    `unfixed` holds violations another resource's fix answers (a listener assigned a weak
    negotiation policy: the fix is that policy's).
    """

    updates: dict[str, Any] = field(default_factory=dict)
    reasons: dict[str, str] = field(default_factory=dict)
    findings: list[str] = field(default_factory=list)
    attach: ManagedPolicy | None = None
    negotiate: OwnNegotiation | None = None
    unfixed: list[str] = field(default_factory=list)

    @property
    def compliant(self) -> bool:
        return not (self.updates or self.attach or self.negotiate or self.unfixed)

    def violations(self) -> list[str]:
        """The changes in words, one line each, as the policy pack reports them."""
        lines = [
            f"{name} should be {value!r}: {self.reasons[name]}"
            for name, value in self.updates.items()
        ]
        if self.attach is not None:
            managed = self.attach
            lines.append(
                f"sslPolicy should be the SSL policy {managed.name} "
                f"({managed.min_tls_version}, {managed.profile}): {self.reasons['sslPolicy']}"
            )
        if self.negotiate is not None:
            lines.append(
                f"policyNames should include the negotiation policy {self.negotiate.policy_name} "
                f"(referencing {self.negotiate.reference}): {self.reasons['policyNames']}"
            )
        return lines + self.unfixed


def skipped(name: str, props: Mapping[str, Any], names: Iterable[str] = ()) -> bool:
    """Opted out: tagged `remediate:skip` (AWS), or the resource name matches a glob of `names`."""
    tags = props.get("tags")
    if (
        isinstance(tags, Mapping)
        and SKIP_TAG in tags
        and str(tags[SKIP_TAG]).strip().lower() != "false"
    ):
        return True
    return any(fnmatch.fnmatchcase(name, pattern) for pattern in names)


def decide(
    type_: str,
    name: str,
    props: Mapping[str, Any],
    policy: Policy,
    catalog: Sequence[aws_rules.SslPolicy],
    default_region: str | None = None,
    classic_policies: Mapping[tuple[str, str], Mapping[str, Any]] | None = None,
) -> Decision:
    """The decision for one resource; resources of other types are left alone.

    `classic_policies` holds the Classic ELB policies the program declares, by load balancer
    and policy name (their READS inputs): what a listener policy's names stand for.
    """
    if type_ in LISTENERS:
        protocol = props.get("protocol")
        if protocol not in aws_rules.TLS_PROTOCOLS:
            return Decision()
        settings = {
            "protocol": protocol,
            "ssl_policy": props.get("sslPolicy") or DEFAULT_LISTENER_POLICY,
            "alpn_policy": props.get("alpnPolicy"),
        }
        return _from_verdict(
            aws_rules.listener_verdict(settings, LOAD_BALANCER_TYPE[protocol], catalog, policy)
        )
    if type_ in LOAD_BALANCERS:
        if (props.get("loadBalancerType") or "application") != "application":
            return Decision()
        enabled = props.get("enableHttp2")
        settings = {aws_rules.HTTP2_ATTRIBUTE: True if enabled is None else bool(enabled)}
        return _from_verdict(aws_rules.load_balancer_verdict(settings, policy))
    if type_ in SSL_POLICIES:
        settings = {"min_tls_version": props.get("minTlsVersion"), "profile": props.get("profile")}
        return _from_verdict(gcp_rules.declared_policy_verdict(settings, policy))
    if type_ in PROXIES:
        return _proxy(type_, name, props, policy, default_region)
    if type_ in REST:
        return _rest(type_, props, policy)
    if type_ == HTTP_API_DOMAIN:
        return _http_api_domain(props, policy)
    if type_ == CLASSIC_POLICY:
        return _classic_policy(name, props, policy)
    if type_ == LISTENER_POLICY:
        return _listener_policy(props, policy, classic_policies or {})
    return Decision()


def _listener_policy(
    props: Mapping[str, Any],
    policy: Policy,
    declared: Mapping[tuple[str, str], Mapping[str, Any]],
) -> Decision:
    """A Classic listener's policies (`aws.elb.ListenerPolicy`, which replaces the listener's
    whole list): the negotiation policy among them decides its TLS versions, and with none ELB
    applies ELBSecurityPolicy-2016-08. A weak assigned policy is fixed where it is declared; a
    listener without one gets remediate's own, appended to the names it keeps."""
    from remediate.pulumi.catalog import classic_bundled

    load_balancer = str(props.get("loadBalancerName") or "")
    names = tuple(str(item) for item in props.get("policyNames") or [])
    unknown = [item for item in names if (load_balancer, item) not in declared]
    for item in names:
        assigned = declared.get((load_balancer, item))
        if assigned is None or assigned.get("policyTypeName") != CLASSIC_NEGOTIATION_TYPE:
            continue
        decision = _classic_policy(item, assigned, policy)
        if decision.compliant:
            return Decision(findings=decision.findings)
        return Decision(
            findings=decision.findings,
            unfixed=[
                f"assigns the negotiation policy {item}, which "
                + decision.reasons["policyAttributes"].replace(
                    "the policy now references", "it should reference"
                )
            ],
        )
    if unknown:
        return Decision(
            findings=[
                f"policies {', '.join(unknown)} are not declared in this program: cannot tell "
                "whether one is the listener's negotiation policy"
            ]
        )
    settings = {aws_rules.CLASSIC_NEGOTIATION: None}
    verdict = aws_rules.classic_listener_verdict(settings, classic_bundled(), policy)
    findings = [note.message for note in verdict.findings]
    if not verdict.changes:
        return Decision(findings=findings)
    change = verdict.changes[0]
    reference = str(change.after).removeprefix(aws_rules.OWN_PREFIX)
    return Decision(
        reasons={"policyNames": change.reason},
        findings=findings,
        negotiate=OwnNegotiation(load_balancer, reference, names),
    )


def _classic_policy(name: str, props: Mapping[str, Any], policy: Policy) -> Decision:
    """A Classic ELB SSL negotiation policy: its reference (or its own `Protocol-*` attributes)
    against the minimum; the fix references the predefined policy the Classic rule picks."""
    from remediate.pulumi.catalog import classic_bundled

    if props.get("policyTypeName") != CLASSIC_NEGOTIATION_TYPE:
        return Decision()
    attributes = [dict(item) for item in props.get("policyAttributes") or []]
    values = {str(item.get("name")): str(item.get("value")) for item in attributes}
    enabled = [k for k, v in values.items() if k.startswith("Protocol-") and v.lower() == "true"]
    settings = {
        aws_rules.CLASSIC_NEGOTIATION: name,
        "reference_policy": values.get(CLASSIC_REFERENCE),
        "policy_versions": sorted(
            {aws_rules.tls_version(p) for p in enabled if p.startswith("Protocol-TLS")},
            key=lambda version: [int(part) for part in version.split(".")],
        ),
        "policy_sslv3": "Protocol-SSLv3" in enabled,
    }
    verdict = aws_rules.classic_listener_verdict(settings, classic_bundled(), policy)
    findings = [note.message for note in verdict.findings]
    if not verdict.changes:
        return Decision(findings=findings)
    change = verdict.changes[0]
    reference = str(change.after).removeprefix(aws_rules.OWN_PREFIX)
    # A reference stands for the predefined policy's protocol, cipher and order attributes:
    # ELB expands it, so the policy declares the reference alone.
    return Decision(
        {"policyAttributes": [{"name": CLASSIC_REFERENCE, "value": reference}]},
        {"policyAttributes": change.reason.replace("the new policy", "the policy now")},
        findings,
    )


@cache
def security_policies(service: str) -> tuple[str, ...]:
    """The SecurityPolicy enum of botocore's model of `service` (apigateway, apigatewayv2): what
    a program's API Gateway resources may take, as discovery reads it from the live client."""
    import botocore.session

    model = botocore.session.get_session().get_service_model(service)
    return tuple(getattr(model.shape_for("SecurityPolicy"), "enum", ()))


def _rest(type_: str, props: Mapping[str, Any], policy: Policy) -> Decision:
    configuration = props.get("endpointConfiguration") or {}
    # pulumi_aws 7 declares one endpoint type (a string); the API and older SDKs, a list.
    raw = configuration.get("types")
    types = ([raw] if isinstance(raw, str) else list(raw or [])) or [DEFAULT_REST_ENDPOINT]
    current = props.get("securityPolicy")
    implied = ""
    if not current:
        # API Gateway's default endpoints take TLS_1_0 (edge, Regional) or TLS_1_2 (private);
        # a program that declares none is judged by the most permissive, and gets one declared.
        current = "TLS_1_2" if types == ["PRIVATE"] else "TLS_1_0"
        implied = f"no securityPolicy declared: taken as {current}"
    settings = {
        aws_rules.API_SECURITY_POLICY: current,
        aws_rules.API_ACCESS_MODE: props.get("endpointAccessMode"),
        "endpoint_types": types,
        "policy_implied": implied,
    }
    what = "REST API" if type_ == REST_API else "REST custom domain"
    return _from_verdict(
        aws_rules.rest_verdict(settings, security_policies("apigateway"), policy, what)
    )


def _http_api_domain(props: Mapping[str, Any], policy: Policy) -> Decision:
    configuration = dict(props.get("domainNameConfiguration") or {})
    current = configuration.get("securityPolicy") or "TLS_1_0"  # undeclared: the most permissive
    verdict = aws_rules.http_api_domain_verdict(
        {aws_rules.API_SECURITY_POLICIES: [current]}, security_policies("apigatewayv2"), policy
    )
    if not verdict.changes:
        return Decision(findings=[note.message for note in verdict.findings])
    change = verdict.changes[0]
    return Decision(
        {"domainNameConfiguration": {**configuration, "securityPolicy": change.after[0]}},
        {"domainNameConfiguration": change.reason},
        [note.message for note in verdict.findings],
    )


def _from_verdict(verdict: Verdict) -> Decision:
    updates: dict[str, Any] = {}
    reasons: dict[str, str] = {}
    for change in verdict.changes:
        key = _ATTRIBUTE_INPUT[change.attribute]
        updates[key] = change.after
        reasons[key] = change.reason
    return Decision(updates, reasons, [note.message for note in verdict.findings])


def _proxy(
    type_: str, name: str, props: Mapping[str, Any], policy: Policy, default_region: str | None
) -> Decision:
    if props.get("sslPolicy"):
        # An attached policy is either declared in the program (and enforced there) or external.
        return Decision()
    project = props.get("project") or None
    region = None
    if type_ == REGIONAL_PROXY:
        region = props.get("region") or default_region
        if not region:
            return Decision(
                findings=[
                    "regional proxy without a region (input or gcp:region config): "
                    "cannot tell where its SSL policy belongs"
                ]
            )
    collection = (
        "targetSslProxies"
        if type_ == SSL_PROXY
        else "regionTargetHttpsProxies"
        if region
        else "targetHttpsProxies"
    )
    link = gcp_rules.Link(project or "default", region, collection, name).self_link
    verdict = gcp_rules.proxy_verdict(link, {"ssl_policy": None}, {}, policy)
    if not verdict.changes:
        return Decision(findings=[note.message for note in verdict.findings])
    desired = gcp_rules.desired_ssl_policy(policy)
    managed = ManagedPolicy(
        name=gcp_rules.settings_of(policy).ssl_policy_name,
        min_tls_version=desired["minTlsVersion"],
        profile=desired["profile"],
        project=project,
        region=region,
    )
    return Decision(
        reasons={"sslPolicy": verdict.changes[0].reason},
        findings=[note.message for note in verdict.findings],
        attach=managed,
    )
