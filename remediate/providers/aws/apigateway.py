"""API Gateway custom domains of HTTP and WebSocket APIs (`apigatewayv2`).

A domain's TLS settings are the `SecurityPolicy` of each of its `DomainNameConfigurations`;
`update_domain_name` replaces the configurations as a whole, so each one is sent back as read
(output-only members left out) with only its security policy changed. The values a policy may
take are the `SecurityPolicy` enum of the client's own service model, never a list kept here.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from botocore.exceptions import ClientError

from remediate.model import Change, Endpoint
from remediate.provider import UnsupportedChangeError
from remediate.providers.aws.model import ApiDomainTarget, Kind
from remediate.providers.aws.rules import API_SECURITY_POLICIES

NAME = "aws"
# Members of DomainNameConfiguration the service sets itself: not sent back in an update.
OUTPUT_ONLY = frozenset(
    {
        "ApiGatewayDomainName",
        "HostedZoneId",
        "DomainNameStatus",
        "DomainNameStatusMessage",
        "CertificateUploadDate",
    }
)


def security_policies(client: Any) -> list[str]:
    """The SecurityPolicy values the client's service model declares."""
    return list(client.meta.service_model.shape_for("SecurityPolicy").enum)


def settings_of(domain: dict[str, Any]) -> dict[str, Any]:
    configurations = domain.get("DomainNameConfigurations", [])
    return {
        API_SECURITY_POLICIES: [item.get("SecurityPolicy") for item in configurations],
        "endpoint_types": [item.get("EndpointType") for item in configurations],
    }


def endpoints(client: Any, region: str) -> list[Endpoint]:
    found: list[Endpoint] = []
    for page in client.get_paginator("get_domain_names").paginate():
        for domain in page.get("Items", []):
            found.append(
                Endpoint(
                    provider=NAME,
                    resource=domain["DomainNameArn"],
                    kind=Kind.HTTP_API_DOMAIN,
                    name=f"{domain['DomainName']} (HTTP/WebSocket API domain)",
                    location=region,
                    settings=settings_of(domain),
                    context={
                        "domain_name": domain["DomainName"],
                        # UPDATING for minutes after a change: not part of the fingerprint.
                        "statuses": [
                            item.get("DomainNameStatus")
                            for item in domain.get("DomainNameConfigurations", [])
                        ],
                    },
                )
            )
    return found


def read(client: Any, targets: Iterable[tuple[str, ApiDomainTarget]]) -> dict[str, Any]:
    """Each (resource, target)'s settings now, or None when the domain is gone."""
    found: dict[str, Any] = {}
    for resource, target in targets:
        try:
            domain = client.get_domain_name(DomainName=target.domain_name)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "NotFoundException":
                raise
            found[resource] = None
            continue
        found[resource] = settings_of(domain)
    return found


def write(client: Any, group: Sequence[Change]) -> None:
    """Set each configuration's SecurityPolicy to `after` (a list, one per configuration)."""
    change = group[0]
    target = change.target
    if len(group) != 1 or change.attribute != API_SECURITY_POLICIES:
        raise UnsupportedChangeError(f"{change.resource}: API domain {change.attribute}")
    if not isinstance(target, ApiDomainTarget):
        raise UnsupportedChangeError(f"{change.resource}: expected an API domain target")
    wanted = list(change.after or [])
    domain = client.get_domain_name(DomainName=target.domain_name)
    configurations = domain.get("DomainNameConfigurations", [])
    if len(configurations) != len(wanted):
        raise UnsupportedChangeError(
            f"{change.resource}: the domain has {len(configurations)} configurations now, "
            f"the plan was made for {len(wanted)}; run `remediate plan` again"
        )
    client.update_domain_name(
        DomainName=target.domain_name,
        DomainNameConfigurations=[
            {
                **{k: v for k, v in item.items() if k not in OUTPUT_ONLY},
                "SecurityPolicy": policy,
            }
            for item, policy in zip(configurations, wanted, strict=True)
        ],
    )
