"""API Gateway REST custom domain names and REST APIs (`apigateway`).

Both carry a `securityPolicy` (the legacy `TLS_1_0`/`TLS_1_2` or an enhanced `SecurityPolicy_*`)
and, with an enhanced policy, an `endpointAccessMode` (`BASIC` or `STRICT`). Both are changed
with `update_domain_name`/`update_rest_api` patch operations on `/securityPolicy` and
`/endpointAccessMode`, sent in one request. The values a policy may take are the
`SecurityPolicy` enum of the client's own service model, never a list kept here.

A REST API's own securityPolicy governs the TLS handshake of requests that reach it through a
custom domain too, so REST APIs are read and planned alongside the domains.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from botocore.exceptions import ClientError

from remediate.model import Change, Endpoint
from remediate.provider import UnsupportedChangeError
from remediate.providers.aws.model import Kind, RestApiTarget, RestDomainTarget
from remediate.providers.aws.rules import (
    API_ACCESS_MODE,
    API_SECURITY_POLICY,
    enhanced_api_policy,
)

NAME = "aws"
# The securityPolicy API Gateway applies to a REST API's default endpoint that names none
# (API Gateway developer guide, "Choose a security policy for your REST API custom domain").
DEFAULT_API_POLICY = {"EDGE": "TLS_1_0", "REGIONAL": "TLS_1_0", "PRIVATE": "TLS_1_2"}
PATCH_PATHS = {API_SECURITY_POLICY: "/securityPolicy", API_ACCESS_MODE: "/endpointAccessMode"}


def security_policies(client: Any) -> list[str]:
    """The SecurityPolicy values the client's service model declares."""
    return list(client.meta.service_model.shape_for("SecurityPolicy").enum)


def _settings(raw: dict[str, Any], *, api: bool) -> dict[str, Any]:
    types = list((raw.get("endpointConfiguration") or {}).get("types") or [])
    policy = raw.get("securityPolicy")
    implied = ""
    if policy is None and api and len(types) == 1:
        policy = DEFAULT_API_POLICY.get(types[0])
        implied = f"no securityPolicy set: API Gateway applies {policy}"
    return {
        API_SECURITY_POLICY: policy,
        # The mode is a parameter of enhanced policies only: with a legacy one it means nothing.
        API_ACCESS_MODE: raw.get("endpointAccessMode") if enhanced_api_policy(policy) else None,
        "endpoint_types": types,
        "policy_implied": implied,
    }


def _status(raw: dict[str, Any], *, api: bool) -> Any:
    """UPDATING for minutes after a change, then AVAILABLE: context, not settings, so that the
    fingerprint of a resource does not move while it settles."""
    return raw.get("apiStatus" if api else "domainNameStatus")


def domain_endpoints(client: Any, region: str) -> list[Endpoint]:
    found: list[Endpoint] = []
    for page in client.get_paginator("get_domain_names").paginate():
        for domain in page.get("items", []):
            name = domain["domainName"]
            found.append(
                Endpoint(
                    provider=NAME,
                    resource=domain.get("domainNameArn")
                    or f"arn:aws:apigateway:{region}::/domainnames/{name}",
                    kind=Kind.REST_API_DOMAIN,
                    name=f"{name} (REST custom domain)",
                    location=region,
                    settings=_settings(domain, api=False),
                    context={
                        "domain_name": name,
                        "domain_name_id": domain.get("domainNameId"),
                        "status": _status(domain, api=False),
                    },
                )
            )
    return found


def api_endpoints(client: Any, region: str) -> list[Endpoint]:
    found: list[Endpoint] = []
    for page in client.get_paginator("get_rest_apis").paginate():
        for api in page.get("items", []):
            found.append(
                Endpoint(
                    provider=NAME,
                    resource=f"arn:aws:apigateway:{region}::/restapis/{api['id']}",
                    kind=Kind.REST_API,
                    name=f"{api.get('name', api['id'])} (REST API {api['id']})",
                    location=region,
                    settings=_settings(api, api=True),
                    context={"api_id": api["id"], "status": _status(api, api=True)},
                )
            )
    return found


def _get(client: Any, target: RestDomainTarget | RestApiTarget) -> dict[str, Any] | None:
    try:
        if isinstance(target, RestApiTarget):
            return dict(client.get_rest_api(restApiId=target.api_id))
        extra = {"domainNameId": target.domain_name_id} if target.domain_name_id else {}
        return dict(client.get_domain_name(domainName=target.domain_name, **extra))
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "NotFoundException":
            raise
        return None


def read(
    client: Any, targets: Iterable[tuple[str, RestDomainTarget | RestApiTarget]]
) -> dict[str, dict[str, Any] | None]:
    """Each (resource, target)'s settings now, or None when it is gone."""
    found: dict[str, dict[str, Any] | None] = {}
    for resource, target in targets:
        raw = _get(client, target)
        found[resource] = (
            None if raw is None else _settings(raw, api=isinstance(target, RestApiTarget))
        )
    return found


def patch_operations(group: Sequence[Change]) -> list[dict[str, str]]:
    """The patch operations of one resource's changes: the policy, then its access mode.

    A mode going back to None (a rollback to a legacy policy) sends nothing: the mode has no
    meaning with a legacy policy."""
    operations: list[dict[str, str]] = []
    for change in sorted(group, key=lambda c: c.attribute != API_SECURITY_POLICY):
        if change.attribute not in PATCH_PATHS:
            raise UnsupportedChangeError(f"{change.resource}: API Gateway {change.attribute}")
        if change.after is None:
            continue
        path = PATCH_PATHS[change.attribute]
        operations.append({"op": "replace", "path": path, "value": str(change.after)})
    return operations


def write(client: Any, group: Sequence[Change]) -> None:
    """One update_domain_name or update_rest_api call with every patch operation of the group."""
    target = group[0].target
    operations = patch_operations(group)
    if isinstance(target, RestApiTarget):
        client.update_rest_api(restApiId=target.api_id, patchOperations=operations)
    elif isinstance(target, RestDomainTarget):
        extra = {"domainNameId": target.domain_name_id} if target.domain_name_id else {}
        client.update_domain_name(
            domainName=target.domain_name, patchOperations=operations, **extra
        )
    else:
        raise UnsupportedChangeError(f"{group[0].resource}: expected a REST API or domain target")
