"""What a user reads back from the (moto) ELBv2 API after remediate ran."""

from __future__ import annotations

from typing import Any

import boto3

from remediate.sandbox.aws import Fleet


def _client(arn: str) -> Any:
    return boto3.client("elbv2", region_name=arn.split(":")[3])


def listener(fleet: Fleet, key: str) -> dict[str, Any]:
    """The listener `key` ("shop:443") as describe_listeners returns it."""
    arn = fleet.listeners[key]
    found: dict[str, Any] = _client(arn).describe_listeners(ListenerArns=[arn])["Listeners"][0]
    return found


def ssl_policy(fleet: Fleet, key: str) -> str:
    return str(listener(fleet, key)["SslPolicy"])


def http2_attribute(fleet: Fleet, name: str) -> str | None:
    """The raw `routing.http2.enabled` attribute of load balancer `name`, None when unset."""
    arn = fleet.load_balancers[name]
    attributes = _client(arn).describe_load_balancer_attributes(LoadBalancerArn=arn)["Attributes"]
    return {a["Key"]: a["Value"] for a in attributes}.get("routing.http2.enabled")


def http2_enabled(fleet: Fleet, name: str) -> bool:
    """Whether HTTP/2 is on: an unset attribute means the AWS default, on."""
    return http2_attribute(fleet, name) in (None, "true")
