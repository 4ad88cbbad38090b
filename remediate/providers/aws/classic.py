"""Classic Load Balancers: HTTPS/SSL listeners and their SSL negotiation policies.

A Classic listener's TLS settings are a load balancer policy of type `SSLNegotiationPolicyType`
whose `Reference-Security-Policy` attribute names a predefined policy (`ELBSecurityPolicy-*`).
remediate fixes a weak listener by giving it remediate's own negotiation policy for the chosen
predefined policy (`remediate-<predefined name>`, created once per load balancer and reused by
every listener and every later run) and by replacing only the negotiation policy in the listener's
policy list: `set_load_balancer_policies_of_listener` replaces the whole list, so every other
policy of the listener (cookie stickiness, for one) is sent back with it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from botocore.exceptions import ClientError

from remediate.model import Change, Endpoint
from remediate.provider import UnsupportedChangeError
from remediate.providers.aws.model import ClassicListenerTarget, Kind
from remediate.providers.aws.rules import (
    CLASSIC_NEGOTIATION,
    OWN_PREFIX,
    ClassicPolicy,
    tls_version,
)

NAME = "aws"
TLS_PROTOCOLS = frozenset({"HTTPS", "SSL"})
NEGOTIATION_TYPE = "SSLNegotiationPolicyType"
REFERENCE = "Reference-Security-Policy"


def resource_id(region: str, account: str, name: str, port: int) -> str:
    """A Classic listener has no ARN of its own: the load balancer's ARN and the port name it."""
    return f"arn:aws:elasticloadbalancing:{region}:{account}:loadbalancer/{name}/listener/{port}"


def predefined(client: Any) -> list[ClassicPolicy]:
    """The predefined policies (`describe_load_balancer_policies` without a load balancer)."""
    raw = client.describe_load_balancer_policies()["PolicyDescriptions"]
    return [
        ClassicPolicy(item["PolicyName"], _versions(_attributes(item)), _sslv3(_attributes(item)))
        for item in raw
        if item.get("PolicyTypeName") == NEGOTIATION_TYPE
        and item["PolicyName"].startswith("ELBSecurityPolicy-")
    ]


def _attributes(description: Mapping[str, Any]) -> dict[str, str]:
    return {
        item["AttributeName"]: item.get("AttributeValue", "")
        for item in description.get("PolicyAttributeDescriptions", [])
    }


def _enabled(attributes: Mapping[str, str]) -> list[str]:
    return [
        name
        for name, value in attributes.items()
        if name.startswith("Protocol-") and value.lower() == "true"
    ]


def _versions(attributes: Mapping[str, str]) -> tuple[str, ...]:
    """The TLS versions a policy's `Protocol-TLSv*` attributes enable, oldest first."""
    return tuple(
        sorted(
            {tls_version(name) for name in _enabled(attributes) if name.startswith("Protocol-TLS")},
            key=lambda version: tuple(int(part) for part in version.split(".")),
        )
    )


def _sslv3(attributes: Mapping[str, str]) -> bool:
    return "Protocol-SSLv3" in _enabled(attributes)


def listener_settings(
    listener: Mapping[str, Any], policies: Mapping[str, Mapping[str, Any]]
) -> dict[str, Any]:
    """What remediate reads of one listener: its negotiation policy (name, reference, the
    versions its own attributes enable) and every other policy it carries, in order."""
    names = list(listener.get("PolicyNames", []))
    negotiation = [name for name in names if policies.get(name, {}).get("type") == NEGOTIATION_TYPE]
    current = negotiation[0] if negotiation else None
    attributes: Mapping[str, str] = (
        policies.get(current, {}).get("attributes", {}) if current else {}
    )
    return {
        "protocol": listener["Listener"]["Protocol"].upper(),
        "port": int(listener["Listener"]["LoadBalancerPort"]),
        CLASSIC_NEGOTIATION: current,
        "reference_policy": attributes.get(REFERENCE),
        "policy_versions": list(_versions(attributes)),
        "policy_sslv3": _sslv3(attributes),
        "other_policies": [name for name in names if name not in negotiation],
    }


def _policies_of(client: Any, name: str) -> dict[str, dict[str, Any]]:
    raw = client.describe_load_balancer_policies(LoadBalancerName=name)["PolicyDescriptions"]
    return {
        item["PolicyName"]: {"type": item.get("PolicyTypeName"), "attributes": _attributes(item)}
        for item in raw
    }


def load_balancers(client: Any) -> list[dict[str, Any]]:
    return [
        dict(lb)
        for page in client.get_paginator("describe_load_balancers").paginate()
        for lb in page["LoadBalancerDescriptions"]
    ]


def endpoints(client: Any, region: str, account: Callable[[], str]) -> list[Endpoint]:
    """Every HTTPS/SSL listener of every Classic Load Balancer in the region."""
    found: list[Endpoint] = []
    for lb in load_balancers(client):
        tls = [
            item
            for item in lb.get("ListenerDescriptions", [])
            if item["Listener"]["Protocol"].upper() in TLS_PROTOCOLS
        ]
        if not tls:
            continue
        policies = _policies_of(client, lb["LoadBalancerName"])
        for item in tls:
            settings = listener_settings(item, policies)
            name = lb["LoadBalancerName"]
            found.append(
                Endpoint(
                    provider=NAME,
                    resource=resource_id(region, account(), name, settings["port"]),
                    kind=Kind.CLASSIC_LISTENER,
                    name=f"{name}:{settings['port']} {settings['protocol']} (Classic)",
                    location=region,
                    settings=settings,
                    context={"load_balancer_name": name, "dns_name": lb.get("DNSName")},
                )
            )
    return found


def read(
    client: Any, targets: Iterable[tuple[str, ClassicListenerTarget]]
) -> dict[str, dict[str, Any] | None]:
    """The settings of each (resource, target) now, or None when the listener is gone."""
    found: dict[str, dict[str, Any] | None] = {}
    by_name: dict[str, list[tuple[str, ClassicListenerTarget]]] = {}
    for resource, target in targets:
        by_name.setdefault(target.load_balancer_name, []).append((resource, target))
    for name, group in by_name.items():
        try:
            lb = client.describe_load_balancers(LoadBalancerNames=[name])[
                "LoadBalancerDescriptions"
            ][0]
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "LoadBalancerNotFound":
                raise
            found.update(dict.fromkeys(resource for resource, _ in group))
            continue
        policies = _policies_of(client, name)
        listeners = {
            int(item["Listener"]["LoadBalancerPort"]): item
            for item in lb.get("ListenerDescriptions", [])
        }
        for resource, target in group:
            item = listeners.get(target.port)
            found[resource] = None if item is None else listener_settings(item, policies)
    return found


def write(client: Any, group: Sequence[Change]) -> None:
    """Put the change's negotiation policy on the listener, keeping its other policies.

    `after` is remediate's own policy (`remediate-<predefined>`: created when the load balancer
    does not have it yet, reused when it does), or, for a rollback, the policy the listener had
    before (which must still exist), or None for "no negotiation policy".
    """
    if len(group) != 1 or group[0].attribute != CLASSIC_NEGOTIATION:
        raise UnsupportedChangeError(
            f"{group[0].resource}: Classic listener {', '.join(c.attribute for c in group)}"
        )
    change = group[0]
    target = change.target
    if not isinstance(target, ClassicListenerTarget):
        raise UnsupportedChangeError(f"{change.resource}: expected a Classic listener target")
    name = target.load_balancer_name
    wanted = change.after
    policies = _policies_of(client, name)
    if isinstance(wanted, str) and wanted.startswith(OWN_PREFIX):
        _ensure_own(client, name, wanted, policies)
    elif wanted is not None and wanted not in policies:
        raise UnsupportedChangeError(
            f"{change.resource}: negotiation policy {wanted} no longer exists on {name}"
        )
    lb = client.describe_load_balancers(LoadBalancerNames=[name])["LoadBalancerDescriptions"][0]
    listener = next(
        (
            item
            for item in lb.get("ListenerDescriptions", [])
            if int(item["Listener"]["LoadBalancerPort"]) == target.port
        ),
        None,
    )
    if listener is None:
        raise UnsupportedChangeError(f"{change.resource}: {name} has no listener on {target.port}")
    replaced: list[str] = []
    for policy in listener.get("PolicyNames", []):
        if policies.get(policy, {}).get("type") != NEGOTIATION_TYPE:
            replaced.append(policy)
        elif wanted and wanted not in replaced:
            replaced.append(wanted)  # in the old negotiation policy's place
    if wanted and wanted not in replaced:
        replaced.append(wanted)
    client.set_load_balancer_policies_of_listener(
        LoadBalancerName=name, LoadBalancerPort=target.port, PolicyNames=replaced
    )


def _ensure_own(
    client: Any, load_balancer: str, policy: str, existing: Mapping[str, Mapping[str, Any]]
) -> None:
    """Create remediate's negotiation policy on the load balancer unless an earlier run did."""
    reference = policy.removeprefix(OWN_PREFIX)
    found = existing.get(policy)
    if found is not None:
        if found.get("type") != NEGOTIATION_TYPE or found["attributes"].get(REFERENCE) != reference:
            raise UnsupportedChangeError(
                f"{load_balancer}: a policy named {policy} exists but does not reference "
                f"{reference}; rename or delete it"
            )
        return
    client.create_load_balancer_policy(
        LoadBalancerName=load_balancer,
        PolicyName=policy,
        PolicyTypeName=NEGOTIATION_TYPE,
        PolicyAttributes=[{"AttributeName": REFERENCE, "AttributeValue": reference}],
    )
