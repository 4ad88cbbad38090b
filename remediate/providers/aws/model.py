"""The AWS provider's policy section, resource kinds and typed change targets."""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import Field

from remediate.policy import Section
from remediate.targets import Target


class AWSSettings(Section):
    regions: list[str] = Field(
        default_factory=list,
        description="Regions to scan; empty means the region of the AWS configuration.",
    )
    ssl_policy: str = Field(
        default="auto",
        description="An ELBSecurityPolicy name, or auto to pick the best one the API offers.",
    )
    fips: bool = Field(
        default=False,
        description="Require FIPS security policies on ELBv2 listeners: a listener on another "
        "policy is moved to the best FIPS policy the API offers for its load balancer type.",
    )
    api_security_policy: str = Field(
        default="auto",
        description="The securityPolicy for weak API Gateway REST APIs and REST custom domains: "
        "a value of the service model's SecurityPolicy enum, or auto for the most compatible one "
        "that meets tls.minimum (FIPS ones only with aws.fips).",
    )
    endpoint_access_mode: Literal["BASIC", "STRICT"] = Field(
        default="BASIC",
        description="The endpointAccessMode API Gateway requires with an enhanced "
        "(SecurityPolicy_*) policy. STRICT refuses requests that arrive through another endpoint "
        "type or a mismatched SNI host; BASIC keeps today's behaviour.",
    )


class Kind(StrEnum):
    LISTENER = "listener"
    LOAD_BALANCER = "load-balancer"
    TARGET_GROUP = "target-group"
    CLASSIC_LISTENER = "classic-listener"
    HTTP_API_DOMAIN = "http-api-domain"
    REST_API_DOMAIN = "rest-api-domain"
    REST_API = "rest-api"


class LoadBalancerTarget(Target):
    """An ELBv2 load balancer (its attributes are what changes)."""

    type: str = "aws-load-balancer"
    arn: str
    region: str
    load_balancer_type: str
    dns_name: str = ""


class ListenerTarget(Target):
    """An HTTPS or TLS listener of an ELBv2 load balancer."""

    type: str = "aws-listener"
    arn: str
    region: str
    port: int
    protocol: str
    load_balancer_arn: str
    load_balancer_type: str
    dns_name: str = ""


class ClassicListenerTarget(Target):
    """An HTTPS or SSL listener of a Classic Load Balancer (named by load balancer and port)."""

    type: str = "aws-classic-listener"
    region: str
    load_balancer_name: str
    port: int
    protocol: str
    dns_name: str = ""


class ApiDomainTarget(Target):
    """An API Gateway custom domain of HTTP and WebSocket APIs (apigatewayv2)."""

    type: str = "aws-http-api-domain"
    region: str
    domain_name: str


class RestDomainTarget(Target):
    """An API Gateway custom domain name of REST APIs (apigateway)."""

    type: str = "aws-rest-api-domain"
    region: str
    domain_name: str
    domain_name_id: str = ""
    """Set for a private custom domain, which its name alone does not identify."""


class RestApiTarget(Target):
    """An API Gateway REST API (its own securityPolicy governs its endpoints' TLS handshake)."""

    type: str = "aws-rest-api"
    region: str
    api_id: str
