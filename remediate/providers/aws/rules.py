"""AWS ELBv2 rules: listener security policies, HTTP/2 (ALB attribute, NLB ALPN), backend risks."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from remediate.model import Endpoint
from remediate.policy import Policy, tls_key
from remediate.providers.aws.model import AWSSettings, Kind
from remediate.rules import Desired, Note, RuleError, Verdict, accepts_phrase, weak_versions

TLS_FLOOR = "aws-elb-tls-floor"
UNKNOWN_POLICY = "aws-elb-unknown-policy"
ALB_HTTP2 = "aws-alb-http2"
NLB_ALPN = "aws-nlb-alpn-h2"
NLB_HTTP1_ONLY = "aws-nlb-alpn-http1-only"
BACKEND_PROTOCOL = "aws-tg-backend-protocol"

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
    catalog: Sequence[SslPolicy], minimum: str, load_balancer_type: str, explicit: str = "auto"
) -> SslPolicy:
    """The security policy a weak listener should get.

    An explicit name wins (and must exist and meet the minimum); with `auto`, the best policy that
    `describe_ssl_policies` offers for this load balancer type and whose protocols all meet it.
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
                return candidate
        raise RuleError(f"aws.ssl_policy {explicit} is not offered by describe_ssl_policies")
    fitting = [p for p in catalog if p.meets(minimum) and p.supports(load_balancer_type)]
    if not fitting:
        raise RuleError(
            f"no security policy offered for {load_balancer_type} load balancers "
            f"accepts only TLS {minimum} and above"
        )
    return min(fitting, key=_rank)


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
        if weak:
            target = choose_ssl_policy(
                catalog,
                minimum,
                load_balancer_type,
                _wanted_policy(policy),
            )
            changes.append(
                Desired(
                    attribute="ssl_policy",
                    before=current.name,
                    after=target.name,
                    reason=f"{accepts_phrase(weak)}; policy minimum is TLS {minimum}",
                    rules=(TLS_FLOOR,),
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
    section = policy.sections.get("aws")
    return section.ssl_policy if isinstance(section, AWSSettings) else "auto"


def _listener(endpoint: Endpoint, policy: Policy, facts: Mapping[str, Any]) -> Verdict:
    catalogs: Mapping[str, Iterable[SslPolicy]] = facts.get("aws.ssl_policies", {})
    catalog = list(catalogs.get(endpoint.location, ()))
    return listener_verdict(
        endpoint.settings, str(endpoint.context.get("load_balancer_type", "")), catalog, policy
    )


_VERDICTS: dict[str, Callable[[Endpoint, Policy, Mapping[str, Any]], Verdict]] = {
    Kind.LISTENER: _listener,
    Kind.LOAD_BALANCER: lambda endpoint, policy, _: load_balancer_verdict(
        endpoint.settings, policy
    ),
    Kind.TARGET_GROUP: lambda endpoint, _, __: target_group_verdict(endpoint.settings),
}


def evaluate(endpoint: Endpoint, policy: Policy, facts: Mapping[str, Any]) -> Verdict:
    """The verdict for any AWS endpoint the provider discovers."""
    return _VERDICTS[endpoint.kind](endpoint, policy, facts)
