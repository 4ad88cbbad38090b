"""AWS ELBv2 rules: listener security policies, HTTP/2 (ALB attribute, NLB ALPN), backend risks."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from remediate.model import Endpoint
from remediate.policy import Policy, tls_key
from remediate.providers.aws.model import AWSSettings, Kind
from remediate.rules import (
    Desired,
    Note,
    RuleError,
    Verdict,
    accepts_phrase,
    versions_from,
    weak_versions,
)

TLS_FLOOR = "aws-elb-tls-floor"
UNKNOWN_POLICY = "aws-elb-unknown-policy"
ALB_HTTP2 = "aws-alb-http2"
NLB_ALPN = "aws-nlb-alpn-h2"
NLB_HTTP1_ONLY = "aws-nlb-alpn-http1-only"
BACKEND_PROTOCOL = "aws-tg-backend-protocol"
FIPS_POLICY = "aws-elb-fips"
CLASSIC_TLS_FLOOR = "aws-clb-tls-floor"
CLASSIC_UNKNOWN_POLICY = "aws-clb-unknown-policy"
CLASSIC_NO_POLICY_MEETS = "aws-clb-no-policy-meets"

API_TLS_FLOOR = "aws-apigw-tls-floor"
API_NO_POLICY_MEETS = "aws-apigw-no-policy-meets"
API_SECURITY_POLICIES = "security_policies"
_API_POLICY = re.compile(r"^TLS_(\d+)_(\d+)$")

REST_TLS_FLOOR = "aws-apigw-rest-tls-floor"
REST_NO_POLICY_MEETS = "aws-apigw-rest-no-policy-meets"
REST_UNKNOWN_POLICY = "aws-apigw-rest-unknown-policy"
REST_MIXED_ENDPOINTS = "aws-apigw-rest-mixed-endpoints"
API_SECURITY_POLICY = "security_policy"
API_ACCESS_MODE = "endpoint_access_mode"
ENHANCED_PREFIX = "SecurityPolicy_"
EDGE_SUFFIX = "_EDGE"
# SecurityPolicy_TLS13_1_2_PQ_2025_09: the highest version (1.3) then the lowest (1.2), when the
# name has both; SecurityPolicy_TLS13_2025_EDGE, SecurityPolicy_TLS12_2018_EDGE: one version,
# the lowest accepted.
_ENHANCED = re.compile(r"^SecurityPolicy_TLS1(\d)_(?:1_(\d)_)?")

CLASSIC_NEGOTIATION = "ssl_negotiation_policy"
# What ELB applies to an HTTPS/SSL listener that has no negotiation policy of its own.
CLASSIC_DEFAULT_POLICY = "ELBSecurityPolicy-2016-08"
# remediate's own negotiation policy for predefined policy P is named OWN_PREFIX + P.
OWN_PREFIX = "remediate-"

TLS_PROTOCOLS = frozenset({"HTTPS", "TLS"})
HTTP2_ATTRIBUTE = "routing.http2.enabled"
ALPN_HTTP2 = "HTTP2Preferred"
_DATE = re.compile(r"(\d{4})-(\d{2})$")


def tls_version(protocol: str) -> str:
    """AWS protocol names ("TLSv1", "TLSv1.2", "Protocol-TLSv1.1") as plain versions ("1.0")."""
    version = protocol.removeprefix("Protocol-").removeprefix("TLSv")
    return "1.0" if version == "1" else version


@dataclass(frozen=True)
class SslPolicy:
    """A predefined ELB security policy as `describe_ssl_policies` reports it."""

    name: str
    versions: tuple[str, ...]
    ciphers: tuple[str, ...] = ()
    load_balancer_types: tuple[str, ...] = ()

    @classmethod
    def from_api(cls, raw: Mapping[str, Any]) -> SslPolicy:
        ciphers = sorted(raw.get("Ciphers", []), key=lambda c: c.get("Priority", 0))
        return cls(
            name=raw["Name"],
            versions=tuple(
                sorted({tls_version(p) for p in raw.get("SslProtocols", [])}, key=tls_key)
            ),
            ciphers=tuple(c["Name"] for c in ciphers),
            load_balancer_types=tuple(raw.get("SupportedLoadBalancerTypes", [])),
        )

    @property
    def floor(self) -> str:
        return self.versions[0] if self.versions else "0"

    def supports(self, load_balancer_type: str) -> bool:
        return not self.load_balancer_types or load_balancer_type in self.load_balancer_types

    def meets(self, minimum: str) -> bool:
        return bool(self.versions) and not weak_versions(self.versions, minimum)

    @property
    def fips(self) -> bool:
        """A FIPS policy: the API flags them only by name (`...-FIPS-...`)."""
        return "FIPS" in self.name.upper().split("-")


def _is_aead(cipher: str) -> bool:
    return "GCM" in cipher or "CHACHA20" in cipher or cipher.startswith("TLS_AES")


def _rank(policy: SslPolicy) -> tuple[Any, ...]:
    """Best first: TLS 1.3 offered, the most compatible floor that still meets the minimum, only
    AEAD ciphers, the newest revision, not FIPS-restricted; the name breaks remaining ties."""
    match = _DATE.search(policy.name)
    revision = (int(match.group(1)), int(match.group(2))) if match else (0, 0)
    return (
        "1.3" not in policy.versions,
        tls_key(policy.floor),
        sum(1 for cipher in policy.ciphers if not _is_aead(cipher)),
        (-revision[0], -revision[1]),
        "FIPS" in policy.name.upper(),
        policy.name,
    )


def choose_ssl_policy(
    catalog: Sequence[SslPolicy],
    minimum: str,
    load_balancer_type: str,
    explicit: str = "auto",
    fips: bool = False,
) -> SslPolicy:
    """The security policy a weak listener should get.

    An explicit name wins (and must exist, be offered for this load balancer type, meet the
    minimum and, with `fips`, be a FIPS policy);
    with `auto`, the best policy that `describe_ssl_policies` offers for this load balancer type
    (its `SupportedLoadBalancerTypes`) whose protocols all meet it, among FIPS policies only when
    `fips` is set.
    """
    if explicit != "auto":
        for candidate in catalog:
            if candidate.name == explicit:
                weak = weak_versions(candidate.versions, minimum)
                if weak:
                    raise RuleError(
                        f"aws.ssl_policy {explicit} {accepts_phrase(weak)}, "
                        f"below tls.minimum {minimum}"
                    )
                if fips and not candidate.fips:
                    raise RuleError(f"aws.ssl_policy {explicit} is not a FIPS policy (aws.fips)")
                if not candidate.supports(load_balancer_type):
                    raise RuleError(
                        f"aws.ssl_policy {explicit} is not offered for {load_balancer_type} "
                        "load balancers"
                    )
                return candidate
        raise RuleError(f"aws.ssl_policy {explicit} is not offered by describe_ssl_policies")
    offered = tuple(catalog)
    best = _best(offered, minimum, load_balancer_type, fips)
    if best is None:
        raise RuleError(
            f"no {'FIPS ' if fips else ''}security policy offered for {load_balancer_type} "
            f"load balancers accepts only TLS {minimum} and above"
        )
    return offered[best]


@lru_cache(maxsize=64)
def _best(
    catalog: tuple[SslPolicy, ...], minimum: str, load_balancer_type: str, fips: bool
) -> int | None:
    """Where in `catalog` the best fitting policy is, remembered: a fleet's regions share one
    catalog, and ranking it again for each weak listener was most of the planner's time in a
    fleet. An index, not the policy: an equal catalog read elsewhere gets its own object back."""
    fitting = [
        index
        for index, p in enumerate(catalog)
        if p.meets(minimum) and p.supports(load_balancer_type) and (p.fips or not fips)
    ]
    return min(fitting, key=lambda index: _rank(catalog[index])) if fitting else None


def listener_verdict(
    settings: Mapping[str, Any],
    load_balancer_type: str,
    catalog: Sequence[SslPolicy],
    policy: Policy,
) -> Verdict:
    """Changes for one listener given its observed settings (protocol, ssl_policy, alpn_policy)."""
    protocol = settings.get("protocol")
    if protocol not in TLS_PROTOCOLS:
        return Verdict()
    changes: list[Desired] = []
    findings: list[Note] = []
    minimum = policy.tls.minimum
    current_name = settings.get("ssl_policy")
    by_name = {p.name: p for p in catalog}
    current = by_name.get(current_name) if isinstance(current_name, str) else None
    if current is None:
        findings.append(
            Note(
                UNKNOWN_POLICY,
                f"security policy {current_name!r} is not offered by describe_ssl_policies; "
                "cannot tell which TLS versions it accepts",
            )
        )
    else:
        weak = weak_versions(current.versions, minimum)
        fips = _fips_required(policy)
        if weak or (fips and not current.fips):
            target = choose_ssl_policy(
                catalog, minimum, load_balancer_type, _wanted_policy(policy), fips
            )
            changes.append(
                Desired(
                    attribute="ssl_policy",
                    before=current.name,
                    after=target.name,
                    reason=f"{accepts_phrase(weak)}; policy minimum is TLS {minimum}"
                    if weak
                    else "not a FIPS security policy; aws.fips requires one",
                    rules=(TLS_FLOOR,) if weak else (FIPS_POLICY,),
                )
            )
    if policy.http2 and protocol == "TLS":
        alpn = settings.get("alpn_policy")
        if alpn in (None, "", "None"):
            changes.append(
                Desired(
                    attribute="alpn_policy",
                    before=alpn,
                    after=ALPN_HTTP2,
                    reason="no ALPN policy: clients cannot negotiate HTTP/2 "
                    "(HTTP2Preferred keeps HTTP/1.1 clients working)",
                    rules=(NLB_ALPN,),
                )
            )
        elif alpn == "HTTP1Only":
            findings.append(
                Note(
                    NLB_HTTP1_ONLY,
                    "ALPN policy HTTP1Only pins clients to HTTP/1.1; "
                    "left alone as a deliberate choice",
                )
            )
    return Verdict(changes, findings)


def load_balancer_verdict(settings: Mapping[str, Any], policy: Policy) -> Verdict:
    """Changes for an ALB's attributes; `settings` hold the effective values (defaults filled)."""
    if not policy.http2:
        return Verdict()
    enabled = settings.get(HTTP2_ATTRIBUTE, True)
    if enabled:
        return Verdict()
    return Verdict(
        [
            Desired(
                attribute=HTTP2_ATTRIBUTE,
                before=False,
                after=True,
                reason="HTTP/2 is switched off: clients fall back to HTTP/1.1",
                rules=(ALB_HTTP2,),
            )
        ]
    )


def target_group_verdict(settings: Mapping[str, Any]) -> Verdict:
    """A target group that speaks HTTP/2 or gRPC to its targets is a 502 risk, never a change."""
    version = settings.get("protocol_version")
    if version in ("HTTP2", "GRPC"):
        return Verdict(
            findings=[
                Note(
                    BACKEND_PROTOCOL,
                    f"target group sends {version} to its targets: backends that do not speak "
                    "HTTP/2 answer 502; confirm they do, or set ProtocolVersion HTTP1",
                )
            ]
        )
    return Verdict()


def _wanted_policy(policy: Policy) -> str:
    """`aws.ssl_policy`: an explicit security policy name, or "auto"."""
    return policy.section("aws", AWSSettings).ssl_policy


def _fips_required(policy: Policy) -> bool:
    return policy.section("aws", AWSSettings).fips


def _listener(endpoint: Endpoint, policy: Policy, facts: Mapping[str, Any]) -> Verdict:
    catalogs: Mapping[str, Iterable[SslPolicy]] = facts.get("aws.ssl_policies", {})
    catalog = list(catalogs.get(endpoint.location, ()))
    return listener_verdict(
        endpoint.settings, str(endpoint.context.get("load_balancer_type", "")), catalog, policy
    )


@dataclass(frozen=True)
class ClassicPolicy:
    """A Classic ELB predefined policy: the TLS versions it enables, and whether SSLv3 is on."""

    name: str
    versions: tuple[str, ...]
    sslv3: bool = False

    def weak(self, minimum: str) -> list[str]:
        """What it accepts below `minimum`, as protocol names ("SSLv3", "TLS 1.0")."""
        tls = [f"TLS {v}" for v in weak_versions(self.versions, minimum)]
        return (["SSLv3"] if self.sslv3 else []) + tls


def _classic_rank(policy: ClassicPolicy) -> tuple[Any, ...]:
    """The most compatible floor that meets the minimum first, then the newest revision."""
    match = _DATE.search(policy.name)
    revision = (int(match.group(1)), int(match.group(2))) if match else (0, 0)
    floor = policy.versions[0] if policy.versions else "0"
    return (tls_key(floor), (-revision[0], -revision[1]), policy.name)


def classic_listener_verdict(
    settings: Mapping[str, Any], catalog: Sequence[ClassicPolicy], policy: Policy
) -> Verdict:
    """A Classic HTTPS/SSL listener: its negotiation policy's protocols against the minimum.

    The protocols come from the referenced predefined policy (`Reference-Security-Policy`), from
    the policy's own `Protocol-*` attributes for a custom policy, or, with no negotiation policy,
    from ELBSecurityPolicy-2016-08, which ELB applies then. The fix is remediate's own negotiation
    policy referencing the most compatible predefined policy that meets the minimum.
    """
    minimum = policy.tls.minimum
    by_name = {item.name: item for item in catalog}
    current = settings.get(CLASSIC_NEGOTIATION)
    reference = settings.get("reference_policy")
    observed: ClassicPolicy | None
    if current is None:
        observed = by_name.get(CLASSIC_DEFAULT_POLICY)
        source = f"no negotiation policy, so ELB applies {CLASSIC_DEFAULT_POLICY}"
    elif reference:
        observed = by_name.get(str(reference))
        source = f"{current} references {reference}"
    elif settings.get("policy_versions") or settings.get("policy_sslv3"):
        observed = ClassicPolicy(
            str(current),
            tuple(settings.get("policy_versions", ())),
            bool(settings.get("policy_sslv3")),
        )
        source = f"custom policy {current}"
    else:
        observed = None
        source = str(current)
    if observed is None:
        return Verdict(
            findings=[
                Note(
                    CLASSIC_UNKNOWN_POLICY,
                    f"negotiation policy {source}: describe_load_balancer_policies does not say "
                    "which protocols it enables",
                )
            ]
        )
    weak = observed.weak(minimum)
    if not weak:
        return Verdict()
    fitting = [
        item for item in catalog if not item.sslv3 and item.versions and not item.weak(minimum)
    ]
    if not fitting:
        return Verdict(
            findings=[
                Note(
                    CLASSIC_NO_POLICY_MEETS,
                    f"accepts {', '.join(weak)} ({source}); no Classic ELB predefined policy "
                    f"accepts only TLS {minimum} and above (Classic ELB has no TLS 1.3): move "
                    "the listener to an ALB or NLB",
                )
            ]
        )
    target = min(fitting, key=_classic_rank)
    return Verdict(
        [
            Desired(
                attribute=CLASSIC_NEGOTIATION,
                before=current,
                after=f"{OWN_PREFIX}{target.name}",
                reason=f"accepts {', '.join(weak)} ({source}); policy minimum is TLS {minimum}; "
                f"the new policy references {target.name}",
                rules=(CLASSIC_TLS_FLOOR,),
            )
        ]
    )


def _classic_listener(endpoint: Endpoint, policy: Policy, facts: Mapping[str, Any]) -> Verdict:
    catalogs: Mapping[str, Iterable[ClassicPolicy]] = facts.get("aws.classic_policies", {})
    return classic_listener_verdict(
        endpoint.settings, list(catalogs.get(endpoint.location, ())), policy
    )


def api_policy_floor(name: str) -> str | None:
    """The lowest TLS version an API Gateway security policy named `TLS_X_Y` accepts."""
    match = _API_POLICY.match(name or "")
    return f"{match.group(1)}.{match.group(2)}" if match else None


def http_api_domain_verdict(
    settings: Mapping[str, Any], allowed: Sequence[str], policy: Policy
) -> Verdict:
    """An HTTP/WebSocket API custom domain: each configuration's SecurityPolicy against the
    minimum. `allowed` is the SecurityPolicy enum of the service model; the fix is the most
    compatible of those that meets the minimum, for every weak configuration."""
    minimum = policy.tls.minimum
    current = list(settings.get(API_SECURITY_POLICIES, []))
    weak: dict[str, list[str]] = {}
    for name in current:
        floor = api_policy_floor(str(name))
        if floor is not None:
            below = weak_versions(versions_from(floor), minimum)
            if below:
                weak[str(name)] = below
    if not weak:
        return Verdict()
    candidates = [
        name
        for name in allowed
        if (floor := api_policy_floor(name)) is not None and tls_key(floor) >= tls_key(minimum)
    ]
    phrase = "; ".join(f"{name} {accepts_phrase(below)}" for name, below in weak.items())
    if not candidates:
        return Verdict(
            findings=[
                Note(
                    API_NO_POLICY_MEETS,
                    f"{phrase}; no security policy of HTTP/WebSocket API domains "
                    f"({', '.join(allowed)}) accepts only TLS {minimum} and above",
                )
            ]
        )
    target = min(candidates, key=lambda name: tls_key(api_policy_floor(name) or "0"))
    return Verdict(
        [
            Desired(
                attribute=API_SECURITY_POLICIES,
                before=current,
                after=[target if name in weak else name for name in current],
                reason=f"{phrase}; policy minimum is TLS {minimum}",
                rules=(API_TLS_FLOOR,),
            )
        ]
    )


def _http_api_domain(endpoint: Endpoint, policy: Policy, facts: Mapping[str, Any]) -> Verdict:
    allowed: Mapping[str, Sequence[str]] = facts.get("aws.api_security_policies", {})
    return http_api_domain_verdict(endpoint.settings, allowed.get(endpoint.location, ()), policy)


def enhanced_api_policy(name: object) -> bool:
    """An enhanced API Gateway security policy (`SecurityPolicy_*`), which needs an
    endpointAccessMode."""
    return isinstance(name, str) and name.startswith(ENHANCED_PREFIX)


def rest_policy_floor(name: str) -> str | None:
    """The lowest TLS version an API Gateway REST security policy accepts, read from its name:
    `TLS_1_0` -> 1.0, `SecurityPolicy_TLS13_1_2_2021_06` -> 1.2,
    `SecurityPolicy_TLS13_2025_EDGE` -> 1.3; None for a name of another form."""
    legacy = api_policy_floor(name)
    if legacy is not None:
        return legacy
    match = _ENHANCED.match(name or "")
    if match is None:
        return None
    return f"1.{match.group(2) or match.group(1)}"


def rest_policies_for(allowed: Sequence[str], endpoint_type: str) -> list[str]:
    """The policies of `allowed` a REST endpoint of this type may take: the `_EDGE` enhanced
    policies belong to edge-optimized endpoints, the other enhanced ones to Regional and private
    endpoints; the legacy ones to all."""
    return [
        name
        for name in allowed
        if not enhanced_api_policy(name) or name.endswith(EDGE_SUFFIX) == (endpoint_type == "EDGE")
    ]


def _rest_rank(name: str) -> tuple[Any, ...]:
    """The most compatible floor first; then a legacy policy (no endpoint access mode to set),
    then the plainest enhanced one (no FIPS, PQ, PFS or extended cipher restrictions)."""
    extras = sum(1 for word in ("FIPS", "PQ", "PFS", "Ext") if f"_{word}" in name)
    return (tls_key(rest_policy_floor(name) or "0"), enhanced_api_policy(name), extras, name)


def rest_verdict(
    settings: Mapping[str, Any], allowed: Sequence[str], policy: Policy, what: str
) -> Verdict:
    """A REST API or REST custom domain: its securityPolicy against the minimum (and aws.fips).

    `allowed` is the SecurityPolicy enum of the service model; the fix is the most compatible of
    those its endpoint type may take that meets the minimum (or aws.api_security_policy), with
    the endpointAccessMode of aws.endpoint_access_mode when the new policy is an enhanced one.
    """
    section = policy.section("aws", AWSSettings)
    minimum = policy.tls.minimum
    current = settings.get(API_SECURITY_POLICY)
    types = list(settings.get("endpoint_types") or [])
    floor = rest_policy_floor(str(current)) if current else None
    if floor is None:
        return Verdict(
            findings=[
                Note(
                    REST_UNKNOWN_POLICY,
                    f"{what} security policy {current!r}: remediate cannot tell which TLS "
                    "versions it accepts",
                )
            ]
        )
    weak = weak_versions(versions_from(floor), minimum)
    not_fips = section.fips and "_FIPS" not in str(current)
    if not weak and not not_fips:
        return Verdict()
    problem = (
        f"{current} {accepts_phrase(weak)}"
        if weak
        else f"{current} is not a FIPS security policy; aws.fips requires one"
    )
    implied = settings.get("policy_implied")
    if current and implied:
        problem += f" ({implied})" if isinstance(implied, str) else f" (none set: {current})"
    if len(types) != 1:
        return Verdict(
            findings=[
                Note(
                    REST_MIXED_ENDPOINTS,
                    f"{problem}; the {what} has endpoint types {', '.join(types) or 'none'}: "
                    "API Gateway cannot update the security policy of a domain with several "
                    "endpoint types; give it one endpoint type first",
                )
            ]
        )
    candidates = [
        name
        for name in rest_policies_for(allowed, types[0])
        if (name_floor := rest_policy_floor(name)) is not None
        and tls_key(name_floor) >= tls_key(minimum)
        and (not section.fips or "_FIPS" in name)
    ]
    explicit = section.api_security_policy
    if explicit != "auto":
        if explicit not in candidates:
            raise RuleError(
                f"aws.api_security_policy {explicit} is not one of the security policies a "
                f"{types[0]} {what} may take that meet tls.minimum {minimum}: "
                f"{', '.join(candidates) or 'none'}"
            )
        candidates = [explicit]
    if not candidates:
        return Verdict(
            findings=[
                Note(
                    REST_NO_POLICY_MEETS,
                    f"{problem}; no security policy the API offers a {types[0]} {what} "
                    f"({', '.join(rest_policies_for(allowed, types[0]))}) accepts only TLS "
                    f"{minimum} and above{' and is FIPS' if section.fips else ''}",
                )
            ]
        )
    target = min(candidates, key=_rest_rank)
    wait = (
        "API Gateway reports the API UPDATING (apiStatus) for about 15 minutes, and its stages "
        "take the new policy once redeployed (remediate does not redeploy: a deployment would "
        "also publish any undeployed change)"
        if what == "REST API"
        else "API Gateway reports the domain UPDATING (domainNameStatus) for about 15 minutes "
        "while the policy propagates; the APIs mapped to it negotiate with their own policy"
    )
    reason = f"{problem}; policy minimum is TLS {minimum}; {wait}"
    rule = REST_TLS_FLOOR if weak else FIPS_POLICY
    changes = [
        Desired(
            attribute=API_SECURITY_POLICY,
            before=current,
            after=target,
            reason=reason,
            rules=(rule,),
        )
    ]
    mode = settings.get(API_ACCESS_MODE)
    if enhanced_api_policy(target) and mode != section.endpoint_access_mode:
        changes.append(
            Desired(
                attribute=API_ACCESS_MODE,
                before=mode,
                after=section.endpoint_access_mode,
                reason=f"{target} is an enhanced policy: API Gateway requires an endpoint "
                "access mode with it (aws.endpoint_access_mode)",
                rules=(rule,),
            )
        )
    return Verdict(changes)


def _rest(what: str) -> Callable[[Endpoint, Policy, Mapping[str, Any]], Verdict]:
    def verdict(endpoint: Endpoint, policy: Policy, facts: Mapping[str, Any]) -> Verdict:
        allowed: Mapping[str, Sequence[str]] = facts.get("aws.rest_security_policies", {})
        return rest_verdict(endpoint.settings, allowed.get(endpoint.location, ()), policy, what)

    return verdict


_VERDICTS: dict[str, Callable[[Endpoint, Policy, Mapping[str, Any]], Verdict]] = {
    Kind.LISTENER: _listener,
    Kind.LOAD_BALANCER: lambda endpoint, policy, _: load_balancer_verdict(
        endpoint.settings, policy
    ),
    Kind.TARGET_GROUP: lambda endpoint, _, __: target_group_verdict(endpoint.settings),
    Kind.CLASSIC_LISTENER: _classic_listener,
    Kind.HTTP_API_DOMAIN: _http_api_domain,
    Kind.REST_API_DOMAIN: _rest("REST custom domain"),
    Kind.REST_API: _rest("REST API"),
}


def evaluate(endpoint: Endpoint, policy: Policy, facts: Mapping[str, Any]) -> Verdict:
    """The verdict for any AWS endpoint the provider discovers."""
    return _VERDICTS[endpoint.kind](endpoint, policy, facts)
