"""GCP load balancing rules: SSL policies on target HTTPS and SSL proxies, backend service risks.

A proxy with no SSL policy gets Google's default (profile COMPATIBLE, TLS 1.0 and up). Weak proxies
are attached to the SSL policy remediate owns (named `gcp.ssl_policy_name`, one per project and
scope: global proxies need a global policy, regional ones a policy in their own region). That
policy is created when missing and corrected when it drifted; any other policy is never edited,
even when weak: its proxies are moved to remediate's policy instead.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from remediate.model import Endpoint
from remediate.policy import Policy
from remediate.providers.gcp.model import GCPSettings, Kind
from remediate.rules import Desired, Note, Verdict, accepts_phrase, versions_from, weak_versions

TLS_FLOOR = "gcp-lb-tls-floor"
UNREADABLE_POLICY = "gcp-lb-unreadable-policy"
OWNED_POLICY = "gcp-owned-policy-settings"
CUSTOM_PROFILE = "gcp-custom-profile"
BACKEND_PROTOCOL = "gcp-backend-http2"

GOOGLE_BASE = "https://www.googleapis.com/compute/v1/"
# What Google applies to a proxy without an SSL policy.
GOOGLE_DEFAULT_MIN_TLS = "TLS_1_0"
GOOGLE_DEFAULT_PROFILE = "COMPATIBLE"
_PATH = re.compile(
    r"^projects/(?P<project>[^/]+)/(?:global|regions/(?P<region>[^/]+))/"
    r"(?P<collection>[^/]+)/(?P<name>[^/]+)$"
)


@dataclass(frozen=True)
class Link:
    """A Compute resource identity parsed from its selfLink (or a partial URL)."""

    project: str
    region: str | None
    collection: str
    name: str

    @classmethod
    def parse(cls, url: str) -> Link:
        path = url.split("/compute/v1/", 1)[-1].lstrip("/")
        match = _PATH.match(path)
        if match is None:
            raise ValueError(f"not a Compute resource URL: {url}")
        return cls(match["project"], match["region"], match["collection"], match["name"])

    @property
    def scope(self) -> str:
        return f"regions/{self.region}" if self.region else "global"

    @property
    def location(self) -> str:
        """`project/global` or `project/region`: where the resource lives, as the plan shows it."""
        return f"{self.project}/{self.region or 'global'}"

    @property
    def self_link(self) -> str:
        return f"{GOOGLE_BASE}projects/{self.project}/{self.scope}/{self.collection}/{self.name}"

    def sibling(self, collection: str, name: str) -> Link:
        """The resource `name` of `collection` in the same project and scope."""
        return Link(self.project, self.region, collection, name)


def same_resource(a: str, b: str) -> bool:
    """Whether two Compute URLs (full, partial, any host) name the same resource."""
    try:
        return Link.parse(a) == Link.parse(b)
    except ValueError:
        return a == b


def gcp_tls(version: str) -> str:
    """ "1.2" as the API's "TLS_1_2"."""
    return "TLS_" + version.replace(".", "_")


def plain_tls(min_tls_version: str) -> str:
    """The API's "TLS_1_0" as "1.0"."""
    return min_tls_version.removeprefix("TLS_").replace("_", ".")


def settings_of(policy: Policy) -> GCPSettings:
    return policy.section("gcp", GCPSettings)


def owned_policy_link(proxy: str, policy: Policy) -> str:
    """The selfLink of the SSL policy remediate owns in the proxy's project and scope."""
    return Link.parse(proxy).sibling("sslPolicies", settings_of(policy).ssl_policy_name).self_link


# The profile the API requires with minTlsVersion TLS_1_3.
TLS_1_3_PROFILE = "RESTRICTED"


def desired_ssl_policy(policy: Policy) -> dict[str, str]:
    """The settings of the SSL policy remediate owns, in API field names.

    A TLS 1.3 minimum takes the RESTRICTED profile whatever `gcp.profile` says: the API refuses
    TLS_1_3 with any other. `postQuantumKeyExchange` is only managed when the policy sets it.
    """
    section = settings_of(policy)
    minimum = gcp_tls(policy.tls.minimum)
    desired = {
        "minTlsVersion": minimum,
        "profile": TLS_1_3_PROFILE if minimum == "TLS_1_3" else section.profile,
    }
    if section.post_quantum_key_exchange is not None:
        desired["postQuantumKeyExchange"] = section.post_quantum_key_exchange
    return desired


def proxy_verdict(
    proxy: str, settings: Mapping[str, Any], ssl_policies: Mapping[str, Any], policy: Policy
) -> Verdict:
    """Changes for one target HTTPS proxy given its `ssl_policy` and the SSL policies it may use.

    `ssl_policies` maps selfLinks to `{"name", "min_tls_version", ...}` as discovery reads them.
    """
    current = settings.get("ssl_policy")
    target = owned_policy_link(proxy, policy)
    minimum = policy.tls.minimum
    if current is None:
        weak = weak_versions(versions_from(plain_tls(GOOGLE_DEFAULT_MIN_TLS)), minimum)
        reason = (
            f"no SSL policy: Google's default ({GOOGLE_DEFAULT_PROFILE}) {accepts_phrase(weak)}; "
            f"policy minimum is TLS {minimum}"
        )
    elif same_resource(current, target):
        return Verdict()
    else:
        attached = _find(ssl_policies, current)
        if attached is None:
            return Verdict(
                findings=[
                    Note(
                        UNREADABLE_POLICY,
                        f"SSL policy {current} could not be read; cannot tell which TLS versions "
                        "it accepts",
                    )
                ]
            )
        weak = weak_versions(versions_from(plain_tls(attached["min_tls_version"])), minimum)
        if not weak:
            return Verdict()
        reason = (
            f"SSL policy {attached['name']} {accepts_phrase(weak)}; policy minimum is TLS "
            f"{minimum} (that policy is not remediate's and is left unchanged)"
        )
    return Verdict(
        [
            Desired(
                attribute="ssl_policy",
                before=current,
                after=target,
                reason=reason,
                rules=(TLS_FLOOR,),
            )
        ]
    )


def owned_policy_verdict(
    self_link: str,
    settings: Mapping[str, Any],
    proxies: Mapping[str, Mapping[str, Any]],
    ssl_policies: Mapping[str, Any],
    policy: Policy,
) -> Verdict:
    """Create remediate's SSL policy where a proxy of its scope needs it; correct it if it drifted.

    `settings` is `{"exists": False}` for a missing policy, else its `min_tls_version` and
    `profile`; `proxies` maps proxy selfLinks to their settings.
    """
    desired = desired_ssl_policy(policy)
    parsed = Link.parse(self_link)
    name = parsed.name
    if not settings.get("exists"):
        needed = any(
            same_resource(change.after, self_link)
            for proxy, proxy_settings in proxies.items()
            for change in proxy_verdict(proxy, proxy_settings, ssl_policies, policy).changes
        )
        if not needed:
            return Verdict()
        return Verdict(
            [
                Desired(
                    attribute="ssl_policy",
                    before=None,
                    after={"name": name, **desired},
                    reason=f"missing: created for the weak proxies of {parsed.location} to use",
                    rules=(OWNED_POLICY,),
                )
            ]
        )
    changes: list[Desired] = []
    current_min = settings.get("min_tls_version")
    if current_min != desired["minTlsVersion"]:
        accepted = versions_from(plain_tls(current_min or GOOGLE_DEFAULT_MIN_TLS))
        below = weak_versions(accepted, policy.tls.minimum)
        what = accepts_phrase(below) if below else f"requires {current_min}"
        changes.append(
            Desired(
                attribute="minTlsVersion",
                before=current_min,
                after=desired["minTlsVersion"],
                reason=f"remediate's SSL policy drifted: it {what}; "
                f"policy minimum is TLS {policy.tls.minimum}",
                rules=(OWNED_POLICY,),
            )
        )
    if settings.get("profile") != desired["profile"]:
        changes.append(
            Desired(
                attribute="profile",
                before=settings.get("profile"),
                after=desired["profile"],
                reason=f"remediate's SSL policy drifted: profile {settings.get('profile')}, "
                f"policy says {desired['profile']}",
                rules=(OWNED_POLICY,),
            )
        )
    wanted_pq = desired.get("postQuantumKeyExchange")
    current_pq = settings.get("post_quantum_key_exchange")
    if wanted_pq is not None and current_pq != wanted_pq:
        changes.append(
            Desired(
                attribute="postQuantumKeyExchange",
                before=current_pq,
                after=wanted_pq,
                reason=f"remediate's SSL policy has postQuantumKeyExchange {current_pq}, "
                f"gcp.post_quantum_key_exchange says {wanted_pq}",
                rules=(OWNED_POLICY,),
            )
        )
    return Verdict(changes)


# Profiles by strength; CUSTOM lists its own features and has no place in the order.
PROFILE_STRENGTH = {"COMPATIBLE": 0, "MODERN": 1, "RESTRICTED": 2}


def declared_policy_verdict(settings: Mapping[str, Any], policy: Policy) -> Verdict:
    """Changes for an SSL policy a program declares itself (Pulumi): a minimum TLS version or a
    profile weaker than the policy's is raised, a stricter one is kept.

    `settings` holds `min_tls_version` and `profile` as declared; a missing one is the API default
    (TLS_1_0, COMPATIBLE). Unlike `owned_policy_verdict`, this never lowers a setting: the program
    owns the policy and may be stricter than remediate asks.
    """
    minimum = policy.tls.minimum
    desired = desired_ssl_policy(policy)
    current_min = settings.get("min_tls_version") or GOOGLE_DEFAULT_MIN_TLS
    profile = settings.get("profile") or GOOGLE_DEFAULT_PROFILE
    changes: list[Desired] = []
    findings: list[Note] = []
    weak = weak_versions(versions_from(plain_tls(current_min)), minimum)
    if weak:
        changes.append(
            Desired(
                attribute="minTlsVersion",
                before=settings.get("min_tls_version"),
                after=desired["minTlsVersion"],
                reason=f"{accepts_phrase(weak)}; policy minimum is TLS {minimum}",
                rules=(TLS_FLOOR,),
            )
        )
    if profile not in PROFILE_STRENGTH:
        findings.append(
            Note(CUSTOM_PROFILE, f"profile {profile} lists its own features; they are not checked")
        )
    elif PROFILE_STRENGTH[profile] < PROFILE_STRENGTH[desired["profile"]]:
        changes.append(
            Desired(
                attribute="profile",
                before=settings.get("profile"),
                after=desired["profile"],
                reason=f"profile {profile} offers weaker ciphers than {desired['profile']}",
                rules=(TLS_FLOOR,),
            )
        )
    return Verdict(changes, findings)


def backend_service_verdict(settings: Mapping[str, Any]) -> Verdict:
    """A backend service that speaks HTTP/2 to its backends is a 502 risk, never a change."""
    if settings.get("protocol") != "HTTP2":
        return Verdict()
    return Verdict(
        findings=[
            Note(
                BACKEND_PROTOCOL,
                "backend service sends HTTP/2 to its backends: backends that do not speak HTTP/2 "
                "answer 502; confirm they do, or set protocol HTTP or HTTPS",
            )
        ]
    )


def _find(ssl_policies: Mapping[str, Any], url: str) -> Mapping[str, Any] | None:
    found = ssl_policies.get(url)
    if found is not None:
        return found  # type: ignore[no-any-return]
    return next((value for key, value in ssl_policies.items() if same_resource(key, url)), None)


def _proxy(endpoint: Endpoint, policy: Policy, facts: Mapping[str, Any]) -> Verdict:
    ssl_policies: Mapping[str, Any] = facts.get("gcp.ssl_policies", {})
    return proxy_verdict(endpoint.resource, endpoint.settings, ssl_policies, policy)


def _owned_policy(endpoint: Endpoint, policy: Policy, facts: Mapping[str, Any]) -> Verdict:
    ssl_policies: Mapping[str, Any] = facts.get("gcp.ssl_policies", {})
    # Target HTTPS and target SSL proxies alike: either may need remediate's policy.
    proxies: Mapping[str, Mapping[str, Any]] = facts.get("gcp.proxies", {})
    in_scope = {
        link: settings
        for link, settings in proxies.items()
        if same_resource(owned_policy_link(link, policy), endpoint.resource)
    }
    return owned_policy_verdict(
        endpoint.resource, endpoint.settings, in_scope, ssl_policies, policy
    )


_VERDICTS: dict[str, Callable[[Endpoint, Policy, Mapping[str, Any]], Verdict]] = {
    Kind.TARGET_HTTPS_PROXY: _proxy,
    Kind.TARGET_SSL_PROXY: _proxy,
    Kind.SSL_POLICY: _owned_policy,
    Kind.BACKEND_SERVICE: lambda endpoint, _, __: backend_service_verdict(endpoint.settings),
}


def evaluate(endpoint: Endpoint, policy: Policy, facts: Mapping[str, Any]) -> Verdict:
    """The verdict for any GCP endpoint the provider discovers."""
    return _VERDICTS[endpoint.kind](endpoint, policy, facts)
