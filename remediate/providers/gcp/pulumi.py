"""GCP changes as resources of the Pulumi remediation stack."""

from __future__ import annotations

from typing import Any

from remediate.model import Change
from remediate.provider import UnsupportedChangeError
from remediate.providers.gcp.model import ComputeTarget, Kind
from remediate.providers.gcp.rules import Link
from remediate.pulumi.remediation import (
    GLOBAL_PROXY,
    GLOBAL_SSL_POLICY,
    REGIONAL_PROXY,
    REGIONAL_SSL_POLICY,
    Declaration,
)

POLICY_INPUTS = frozenset({"minTlsVersion", "profile", "postQuantumKeyExchange"})


def declaration(change: Change) -> Declaration:
    link = Link.parse(change.resource)
    path = f"projects/{link.project}/{link.scope}/{link.collection}/{link.name}"
    scope: dict[str, Any] = {"project": link.project, "name": link.name}
    if link.region:
        scope["region"] = link.region
    if change.kind == Kind.TARGET_HTTPS_PROXY and change.attribute == "ssl_policy":
        target = change.target
        url_map = target.url_map if isinstance(target, ComputeTarget) else None
        return Declaration(
            type=REGIONAL_PROXY if link.region else GLOBAL_PROXY,
            resource=change.resource,
            import_id=path,
            location=change.location,
            observed={"sslPolicy": change.before},
            desired={"sslPolicy": change.after},
            fixed={**scope, "urlMap": url_map},
        )
    if change.kind == Kind.SSL_POLICY:
        policy_type = REGIONAL_SSL_POLICY if link.region else GLOBAL_SSL_POLICY
        if change.attribute == "ssl_policy" and change.before is None:
            wanted = {k: v for k, v in dict(change.after).items() if k != "name"}
            return Declaration(
                policy_type, change.resource, path, change.location, {}, wanted, scope, True
            )
        if change.attribute in POLICY_INPUTS:
            return Declaration(
                type=policy_type,
                resource=change.resource,
                import_id=path,
                location=change.location,
                observed={change.attribute: change.before},
                desired={change.attribute: change.after},
                fixed=scope,
            )
    raise UnsupportedChangeError(f"{change.resource}: {change.kind} {change.attribute}")
