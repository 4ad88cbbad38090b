"""An in-process moto server over real HTTP, and a realistic mixed ELBv2 fleet to seed it with.

boto3 reaches it exactly as it reaches AWS: through `AWS_ENDPOINT_URL`, which botocore honours.
"""

from __future__ import annotations

import logging
import os
import threading
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import boto3

SANDBOX_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}
# Settings that would point boto3 at a real account's profile instead of the sandbox.
PROFILE_VARIABLES = ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_CONFIG_FILE")


class _WhileServing:
    """What a sandbox moto server changes in its process, only while one runs.

    - moto's modify_listener drops AlpnPolicy; the real API applies it: moto's handler is wrapped
      to apply it.
    - werkzeug logs every request moto serves: its logger is quieted to errors.

    moto serves every server of a process from the same backends and handler classes, so both are
    counted: the first server to start applies them, the last to stop puts the originals back.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._users = 0
        self._original: Any = None
        self._log_level = logging.NOTSET

    def acquire(self) -> None:
        from moto.elbv2.responses import ELBV2Response

        with self._lock:
            self._users += 1
            if self._users > 1:
                return
            original = self._original = ELBV2Response.modify_listener

            def modify_listener(handler: Any) -> Any:
                result = original(handler)
                alpn = handler._get_params().get("AlpnPolicy")
                if alpn is not None:
                    arn = handler._get_param("ListenerArn")
                    listener = handler.elbv2_backend.describe_listeners(None, [arn])[0]
                    listener.alpn_policy = list(alpn)
                return result

            setattr(ELBV2Response, "modify_listener", modify_listener)  # noqa: B010
            log = logging.getLogger("werkzeug")
            self._log_level = log.level
            log.setLevel(logging.ERROR)

    def release(self) -> None:
        from moto.elbv2.responses import ELBV2Response

        with self._lock:
            self._users -= 1
            if self._users == 0:
                setattr(ELBV2Response, "modify_listener", self._original)  # noqa: B010
                self._original = None
                logging.getLogger("werkzeug").setLevel(self._log_level)


_WHILE_SERVING = _WhileServing()


class MotoServer:
    """A moto server on a free loopback port, in a thread of this process, until `stop()`."""

    def __init__(self) -> None:
        from moto.server import ThreadedMotoServer

        _WHILE_SERVING.acquire()
        try:
            self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
            self._server.start()
        except BaseException:
            _WHILE_SERVING.release()
            raise
        host, port = self._server.get_host_and_port()
        self.url = f"http://{host}:{port}"

    def env(self) -> dict[str, str]:
        """Environment that points boto3 (ours or a subprocess's) at this server."""
        return {**SANDBOX_ENV, "AWS_ENDPOINT_URL": self.url}

    def reset(self) -> None:
        request = urllib.request.Request(f"{self.url}/moto-api/reset", method="POST")
        # A reset is CPU work in this process (every backend and model instance is dropped): on a
        # loaded two-core machine it took more than 10 s, so the bound is generous.
        with urllib.request.urlopen(request, timeout=120):
            pass

    def stop(self) -> None:
        self._server.stop()
        _WHILE_SERVING.release()


@contextmanager
def environment(values: dict[str, str]) -> Iterator[None]:
    """Set environment variables for the duration, without the ambient AWS profile settings;
    every variable touched is put back as it was afterwards, and no other is."""
    touched = {*PROFILE_VARIABLES, *values}
    saved = {name: os.environ.get(name) for name in touched}
    for name in PROFILE_VARIABLES:
        os.environ.pop(name, None)
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@dataclass
class Fleet:
    """Handles to what `seed_fleet` created, by short name."""

    load_balancers: dict[str, str] = field(default_factory=dict)
    listeners: dict[str, str] = field(default_factory=dict)
    target_groups: dict[str, str] = field(default_factory=dict)


class FleetBuilder:
    """Creates load balancers the way a team's CloudFormation would, one region at a time."""

    def __init__(self, region: str, fleet: Fleet | None = None) -> None:
        self.region = region
        self.fleet = fleet or Fleet()
        self.elbv2: Any = boto3.client("elbv2", region_name=region)
        ec2 = boto3.client("ec2", region_name=region)
        vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
        zones = [z["ZoneName"] for z in ec2.describe_availability_zones()["AvailabilityZones"]]
        self.vpc = vpc
        self.subnets = [
            ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.0.{index}.0/24", AvailabilityZone=zone)[
                "Subnet"
            ]["SubnetId"]
            for index, zone in enumerate(zones[:2])
        ]
        acm = boto3.client("acm", region_name=region)
        self.certificate = acm.request_certificate(DomainName=f"*.{region}.example.com")[
            "CertificateArn"
        ]

    def load_balancer(self, name: str, kind: str = "application") -> str:
        arn: str = self.elbv2.create_load_balancer(
            Name=name, Subnets=self.subnets, Type=kind, Scheme="internet-facing"
        )["LoadBalancers"][0]["LoadBalancerArn"]
        self.fleet.load_balancers[name] = arn
        return arn

    def target_group(self, name: str, protocol: str = "HTTP", version: str | None = None) -> str:
        extra: dict[str, Any] = {"ProtocolVersion": version} if version else {}
        arn: str = self.elbv2.create_target_group(
            Name=name, Protocol=protocol, Port=8080, VpcId=self.vpc, TargetType="ip", **extra
        )["TargetGroups"][0]["TargetGroupArn"]
        self.fleet.target_groups[name] = arn
        return arn

    def listener(
        self,
        lb: str,
        port: int,
        protocol: str,
        target_group: str,
        *,
        ssl_policy: str | None = None,
        alpn: str | None = None,
    ) -> str:
        extra: dict[str, Any] = {}
        if protocol in ("HTTPS", "TLS"):
            extra["Certificates"] = [{"CertificateArn": self.certificate}]
            if ssl_policy:
                extra["SslPolicy"] = ssl_policy
        if alpn:
            extra["AlpnPolicy"] = [alpn]
        arn: str = self.elbv2.create_listener(
            LoadBalancerArn=self.fleet.load_balancers[lb],
            Port=port,
            Protocol=protocol,
            DefaultActions=[
                {"Type": "forward", "TargetGroupArn": self.fleet.target_groups[target_group]}
            ],
            **extra,
        )["Listeners"][0]["ListenerArn"]
        self.fleet.listeners[f"{lb}:{port}"] = arn
        return arn

    def attributes(self, lb: str, **values: str) -> None:
        self.elbv2.modify_load_balancer_attributes(
            LoadBalancerArn=self.fleet.load_balancers[lb],
            Attributes=[{"Key": key, "Value": value} for key, value in values.items()],
        )


def seed_fleet() -> Fleet:
    """A realistic mixed estate in us-east-1 and eu-west-1 (boto3 must already point at moto).

    - shop (ALB): HTTPS on the API default ELBSecurityPolicy-2016-08, plus an HTTP redirect port
    - api (ALB): compliant TLS policy, but HTTP/2 switched off, and a gRPC target group
    - legacy-pos (ALB): weak policy, excluded by the demo policy until the terminals are upgraded
    - mqtt-edge (NLB): TLS listener on TLS 1.1 with no ALPN policy
    - admin (ALB): one compliant HTTPS listener, one weak on 8443
    """
    fleet = Fleet()
    east = FleetBuilder("us-east-1", fleet)
    east.target_group("shop-web")
    east.target_group("api-grpc", version="GRPC")
    east.target_group("pos-web")
    east.load_balancer("shop")
    east.listener("shop", 443, "HTTPS", "shop-web")  # API default: ELBSecurityPolicy-2016-08
    east.listener("shop", 80, "HTTP", "shop-web")
    east.load_balancer("api")
    east.listener("api", 443, "HTTPS", "api-grpc", ssl_policy="ELBSecurityPolicy-TLS13-1-2-2021-06")
    east.attributes("api", **{"routing.http2.enabled": "false"})
    east.load_balancer("legacy-pos")
    east.listener("legacy-pos", 443, "HTTPS", "pos-web", ssl_policy="ELBSecurityPolicy-2016-08")

    west = FleetBuilder("eu-west-1", fleet)
    west.target_group("mqtt", protocol="TCP")
    west.target_group("admin-web")
    west.load_balancer("mqtt-edge", kind="network")
    west.listener("mqtt-edge", 8883, "TLS", "mqtt", ssl_policy="ELBSecurityPolicy-TLS-1-1-2017-01")
    west.load_balancer("admin")
    west.listener(
        "admin", 443, "HTTPS", "admin-web", ssl_policy="ELBSecurityPolicy-TLS13-1-3-2021-06"
    )
    west.listener("admin", 8443, "HTTPS", "admin-web", ssl_policy="ELBSecurityPolicy-2016-08")
    return fleet
