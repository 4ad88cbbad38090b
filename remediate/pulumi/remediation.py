"""The remediation stack's program: adopt the resources a plan changes, then hold them at the plan's
values.

A plan's AWS and GCP changes become `Declaration`s, one per resource. The pulumi executor runs the
program twice through the Automation API: first resources not yet in the stack's state are
declared with `import_` and their observed values (an import must match what exists), then every
resource is declared with the plan's values, which `pulumi up` writes. Inputs remediate does not
manage are in `ignore_changes`, so the stack never touches them, and `retain_on_delete` keeps a
resource alive should it ever leave the stack. The SSL policy remediate owns on GCP is the one
resource the stack may create rather than adopt.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import re
from collections.abc import Collection, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import pulumi

from remediate.model import Change
from remediate.providers.gcp.rules import same_resource

LISTENER = "aws:lb/listener:Listener"
LOAD_BALANCER = "aws:lb/loadBalancer:LoadBalancer"
GLOBAL_PROXY = "gcp:compute/targetHttpsProxy:TargetHttpsProxy"
REGIONAL_PROXY = "gcp:compute/regionTargetHttpsProxy:RegionTargetHttpsProxy"
GLOBAL_SSL_POLICY = "gcp:compute/sSLPolicy:SSLPolicy"
REGIONAL_SSL_POLICY = "gcp:compute/regionSslPolicy:RegionSslPolicy"


@dataclass(frozen=True)
class Declaration:
    """One resource of the remediation stack, in the engine's input names.

    `observed` holds the managed inputs as discovered (declared while adopting), `desired` the
    plan's values; `fixed` holds inputs the type requires that remediate does not change.
    `create` marks a resource the plan creates (remediate's own SSL policy), never imported.
    """

    type: str
    resource: str
    import_id: str
    location: str
    observed: dict[str, Any] = field(default_factory=dict)
    desired: dict[str, Any] = field(default_factory=dict)
    fixed: dict[str, Any] = field(default_factory=dict)
    create: bool = False

    @property
    def logical_name(self) -> str:
        """Stable across runs, unique per resource, readable in `pulumi preview`."""
        parts = self.import_id.rsplit(":", 1)[-1].split("/")
        # listener/app/NAME of an ARN; sslPolicies/NAME of a Compute path.
        readable = parts[:3] if self.import_id.startswith("arn:") else parts[-2:]
        tail = re.sub(r"[^A-Za-z0-9._-]+", "-", "-".join(readable))
        digest = hashlib.sha256(self.resource.encode()).hexdigest()[:8]
        return f"{tail}-{digest}"

    def merged(self, newer: Declaration) -> Declaration:
        """This declaration (from an earlier run) with a newer plan's values on top."""
        return Declaration(
            type=self.type,
            resource=self.resource,
            import_id=self.import_id,
            location=self.location,
            observed={**self.observed, **newer.observed},
            desired={**self.desired, **newer.desired},
            fixed={**self.fixed, **newer.fixed},
            create=self.create and newer.create,
        )

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> Declaration:
        return cls(**raw)


def declarations(changes: Iterable[Change]) -> list[Declaration]:
    """One declaration per changed resource, in plan order (each provider maps its own)."""
    from remediate import registry

    found: dict[str, Declaration] = {}
    for change in changes:
        declaration = registry.get(change.provider).declaration(change)
        earlier = found.get(change.resource)
        found[change.resource] = declaration if earlier is None else earlier.merged(declaration)
    return list(found.values())


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)([A-Z])", r"_\1", name).lower()


def _unmanaged(args_class: type, managed: Collection[str]) -> list[str]:
    """Every input of the type except `managed` (Python names): the stack must not touch them."""
    names = inspect.signature(args_class).parameters
    return sorted(name for name in names if name not in managed)


def declare(declared: Sequence[Declaration], adopting: Collection[str] = ()) -> None:
    """Declare every resource: those in `adopting` with `import_` and their observed values, the
    rest with the plan's values."""
    import pulumi_aws as aws
    import pulumi_gcp as gcp

    aws_providers: dict[str, aws.Provider] = {}
    created: dict[str, pulumi.Resource] = {}
    classes: dict[str, tuple[type[pulumi.CustomResource], type]] = {
        LISTENER: (aws.lb.Listener, aws.lb.ListenerArgs),
        LOAD_BALANCER: (aws.lb.LoadBalancer, aws.lb.LoadBalancerArgs),
        GLOBAL_PROXY: (gcp.compute.TargetHttpsProxy, gcp.compute.TargetHttpsProxyArgs),
        REGIONAL_PROXY: (
            gcp.compute.RegionTargetHttpsProxy,
            gcp.compute.RegionTargetHttpsProxyArgs,
        ),
        GLOBAL_SSL_POLICY: (gcp.compute.SSLPolicy, gcp.compute.SSLPolicyArgs),
        REGIONAL_SSL_POLICY: (gcp.compute.RegionSslPolicy, gcp.compute.RegionSslPolicyArgs),
    }
    # Policies first: a proxy may be attached to the SSL policy this run creates.
    ordered = sorted(declared, key=lambda d: d.type not in (GLOBAL_SSL_POLICY, REGIONAL_SSL_POLICY))
    for item in ordered:
        resource_class, args_class = classes[item.type]
        adopt = item.resource in adopting and not item.create
        values = item.observed if adopt else item.desired
        inputs = {_snake(k): v for k, v in {**item.fixed, **values}.items()}
        if item.type == LISTENER:
            inputs["default_actions"] = []
        provider: pulumi.ProviderResource | None = None
        if item.type in (LISTENER, LOAD_BALANCER):
            if item.location not in aws_providers:
                aws_providers[item.location] = aws.Provider(
                    f"aws-{item.location}", region=item.location
                )
            provider = aws_providers[item.location]
        depends_on = [
            resource
            for link, resource in created.items()
            if isinstance(values.get("sslPolicy"), str) and same_resource(values["sslPolicy"], link)
        ]
        managed = {_snake(k) for k in (*item.fixed, *item.desired, *item.observed)}
        opts = pulumi.ResourceOptions(
            import_=item.import_id if adopt else None,
            provider=provider,
            ignore_changes=_unmanaged(args_class, managed),
            retain_on_delete=not item.create,
            depends_on=depends_on,
        )
        resource = resource_class(item.logical_name, opts=opts, **inputs)
        if item.create:
            created[item.resource] = resource
    pulumi.export("declarations", json.dumps([item.to_json() for item in declared]))
