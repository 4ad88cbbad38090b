"""AWS changes as resources of the Pulumi remediation stack."""

from __future__ import annotations

from typing import Any

from remediate.model import Change
from remediate.provider import UnsupportedChangeError
from remediate.providers.aws.model import Kind, ListenerTarget
from remediate.providers.aws.rules import HTTP2_ATTRIBUTE
from remediate.pulumi.remediation import LISTENER, LOAD_BALANCER, Declaration

# A change's attribute -> the Pulumi input it sets, per kind of resource.
INPUTS: dict[str, tuple[str, dict[str, str]]] = {
    Kind.LISTENER: (LISTENER, {"ssl_policy": "sslPolicy", "alpn_policy": "alpnPolicy"}),
    Kind.LOAD_BALANCER: (LOAD_BALANCER, {HTTP2_ATTRIBUTE: "enableHttp2"}),
}


def declaration(change: Change) -> Declaration:
    kind_type, inputs = INPUTS.get(change.kind, ("", {}))
    name = inputs.get(change.attribute)
    if name is None:
        raise UnsupportedChangeError(f"{change.resource}: {change.kind} {change.attribute}")
    fixed: dict[str, Any] = {}
    if isinstance(change.target, ListenerTarget):
        fixed["loadBalancerArn"] = change.target.load_balancer_arn
    return Declaration(
        type=kind_type,
        resource=change.resource,
        import_id=change.resource,
        location=change.location,
        observed={name: change.before},
        desired={name: change.after},
        fixed=fixed,
    )
