"""Seed a large ELBv2 fleet into the in-process moto server.

Seeding goes straight into moto's in-process backend (`elbv2_backends[account][region]`): the
resulting state is exactly what the API calls would build, without thousands of ~4 ms HTTP round
trips through one Python process. Only the VPC, subnets and certificate go through the API, as
`remediate.sandbox.aws.FleetBuilder` does. Measured on 2 busy cores, load balancers with a target
group and two listeners each: 200 took 8.2 s through the API (about 40 s for 1,000), while 1,000
take about 3.5 s through the backend.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from remediate.sandbox.aws import FleetBuilder

REGIONS = ("us-east-1", "eu-west-1")
ACCOUNT = "123456789012"  # moto's default account
WEAK_ALB = "ELBSecurityPolicy-2016-08"
WEAK_NLB = "ELBSecurityPolicy-TLS-1-1-2017-01"
STRONG = "ELBSecurityPolicy-TLS13-1-2-2021-06"


@dataclass
class Shape:
    """What was seeded, per region: what the lower bound and the sanity checks need."""

    load_balancers: Counter[str] = field(default_factory=Counter)
    albs_with_https: Counter[str] = field(default_factory=Counter)
    target_groups: Counter[str] = field(default_factory=Counter)
    listeners: int = 0

    @property
    def total(self) -> int:
        return sum(self.load_balancers.values())


def seed(load_balancers: int) -> Shape:
    """`load_balancers` split evenly over two regions, two listeners each (boto3 must point at the
    in-process moto server).

    Every fifth load balancer is an NLB (TLS 443 + TCP 80), the rest are ALBs (HTTPS 443 + HTTP 80).
    Half the TLS listeners use a policy that accepts TLS 1.0/1.1; every tenth ALB has HTTP/2
    switched off; every twentieth target group speaks gRPC to its targets. Each load balancer has
    its own target group.
    """
    from moto.elbv2.models import elbv2_backends

    shape = Shape()
    for index_region, region in enumerate(REGIONS):
        count = load_balancers // len(REGIONS) + (
            1 if index_region < load_balancers % len(REGIONS) else 0
        )
        builder = FleetBuilder(region)
        backend: Any = elbv2_backends[ACCOUNT][region]
        for index in range(count):
            network = index % 5 == 4
            name = f"bench-{index:05d}"
            lb = backend.create_load_balancer(
                name=name,
                security_groups=[],
                subnet_ids=builder.subnets,
                scheme="internet-facing",
                loadbalancer_type="network" if network else "application",
            )
            tg = backend.create_target_group(
                name=name,
                vpc_id=builder.vpc,
                protocol="TCP" if network else "HTTP",
                protocol_version=None if network or index % 20 else "GRPC",
                port=8080,
                target_type="ip",
            )
            forward = [{"Type": "forward", "TargetGroupArn": tg.arn}]
            weak = index % 2 == 0
            backend.create_listener(
                load_balancer_arn=lb.arn,
                protocol="TLS" if network else "HTTPS",
                port=443,
                ssl_policy=(WEAK_NLB if network else WEAK_ALB) if weak else STRONG,
                certificate=builder.certificate,
                actions=forward,
                alpn_policy=[] if weak else ["HTTP2Preferred"],
            )
            backend.create_listener(
                load_balancer_arn=lb.arn,
                protocol="TCP" if network else "HTTP",
                port=80,
                ssl_policy=None,
                certificate=None,
                actions=forward,
            )
            if not network and index % 10 == 1:
                backend.modify_load_balancer_attributes(lb.arn, {"routing.http2.enabled": "false"})
            shape.load_balancers[region] += 1
            shape.target_groups[region] += 1
            shape.listeners += 2
            if not network:
                shape.albs_with_https[region] += 1
    return shape
