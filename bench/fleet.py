"""Seed a large ELBv2 fleet into the in-process moto server.

Seeding goes straight into moto's in-process backend (`elbv2_backends[account][region]`): the
resulting state is exactly what the API calls would build, without thousands of ~4 ms HTTP round
trips through one Python process. Only the VPC, subnets and certificate go through the API, as
`remediate.sandbox.aws.FleetBuilder` does. Measured on 2 busy cores, load balancers with a target
group and two listeners each: 200 took 8.2 s through the API (about 40 s for 1,000), while 1,000
take about 3.5 s through the backend.

`seed_accounts` makes the fleet of many accounts the same way, everything in the backends.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from remediate.sandbox.aws import FleetBuilder
from remediate.sandbox.org import MANAGEMENT_ACCOUNT, MEMBER_ROLE, trust_policy

REGIONS = ("us-east-1", "eu-west-1")
ACCOUNT = MANAGEMENT_ACCOUNT  # moto's default account
MEMBER_BASE = 200000000000
WEAK_ALB = "ELBSecurityPolicy-2016-08"
WEAK_NLB = "ELBSecurityPolicy-TLS-1-1-2017-01"
STRONG = "ELBSecurityPolicy-TLS13-1-2-2021-06"


@dataclass
class Shape:
    """What was seeded, per region (per `ACCOUNT/REGION` unit for a fleet of accounts): what the
    lower bound and the sanity checks need."""

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
    shape = Shape()
    for index_region, region in enumerate(REGIONS):
        count = load_balancers // len(REGIONS) + (
            1 if index_region < load_balancers % len(REGIONS) else 0
        )
        _seed_region(ACCOUNT, region, FleetBuilder(region), count, shape, region)
    return shape


@dataclass(frozen=True)
class Place:
    """Where a region's load balancers go: a VPC, two subnets, a certificate."""

    vpc: str
    subnets: list[str]
    certificate: str


def _seed_region(
    account: str, region: str, builder: Place | FleetBuilder, count: int, shape: Shape, key: str
) -> None:
    """`count` load balancers of the mix `seed` describes in one account's region, counted in
    `shape` under `key`."""
    from moto.elbv2.models import elbv2_backends

    backend: Any = elbv2_backends[account][region]
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
        shape.load_balancers[key] += 1
        shape.target_groups[key] += 1
        shape.listeners += 2
        if not network:
            shape.albs_with_https[key] += 1


def account_ids(count: int) -> list[str]:
    """`count` member account ids, none of them the management account (moto's default)."""
    return [f"{MEMBER_BASE + number:012d}" for number in range(1, count + 1)]


def seed_accounts(accounts: Sequence[str], per_region: int, role: str = MEMBER_ROLE) -> Shape:
    """In each of `accounts`: the role `role`, trusting the management account (moto's default,
    where the sandbox credentials sign) as the role Organizations creates does, and in each of
    `REGIONS` `per_region` load balancers of the mix `seed` makes. `Shape` counts by unit key,
    `ACCOUNT/REGION`.

    Everything is made in moto's backends (the role in IAM, the load balancers in ELBv2), and the
    load balancers use the default VPC moto gives each account's region and an IAM server
    certificate of the account: the API route (`FleetBuilder`) costs about 2 s an account in
    moto (a new EC2 backend per VPC call, an RSA key per ACM certificate), some 3 minutes for
    100 accounts."""
    from moto.apigateway.models import apigateway_backends
    from moto.apigatewayv2.models import apigatewayv2_backends
    from moto.ec2.models import ec2_backends
    from moto.elb.models import elb_backends
    from moto.iam.models import iam_backends

    shape = Shape()
    for account in accounts:
        iam: Any = iam_backends[account]["aws"]
        iam.create_role(
            role_name=role,
            assume_role_policy_document=trust_policy(MANAGEMENT_ACCOUNT),
            path="/",
            permissions_boundary=None,
            description="bench fleet member role",
            tags=[],
            max_session_duration=None,
        )
        # ELBv2 only checks that the certificate exists; its body is never read here.
        certificate = iam.upload_server_certificate("bench", "bench", "bench").arn
        for region in REGIONS:
            ec2: Any = ec2_backends[account][region]
            vpc = ec2.describe_vpcs(filters={"is-default": "true"})[0].id
            subnets = ec2.describe_subnets(filters={"vpc-id": vpc})
            zones = {subnet.availability_zone: subnet.id for subnet in subnets}
            place = Place(vpc, sorted(zones.values())[:2], certificate)
            _seed_region(account, region, place, per_region, shape, unit_key(account, region))
            # moto builds a service's backend for an account and region on its first request
            # (API Gateway's take 20 ms each): built here, as AWS has them before anyone asks,
            # so that no tool's measured run pays for the emulator's set-up.
            for backends in (elb_backends, apigateway_backends, apigatewayv2_backends):
                backends[account][region]
    return shape


def unit_key(account: str, region: str) -> str:
    return f"{account}/{region}"
