"""The AWS provider's policy section, resource kinds and typed change targets."""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    Field,
    SerializerFunctionWrapHandler,
    model_serializer,
)

from remediate.policy import Section
from remediate.targets import Target

ACCOUNT_ID = re.compile(r"^[0-9]{12}$")
ROLE_ARN = re.compile(r"^arn:aws[a-z-]*:iam::[0-9]{12}:role/[\w+=,.@/-]+$")
ROLE_NAME = re.compile(r"^[\w+=,.@/-]{1,512}$")


def _account_id(value: object) -> object:
    # YAML reads 012345678901 as a number (losing the zero) unless quoted: take what is a number.
    return f"{value:012d}" if isinstance(value, int) and not isinstance(value, bool) else value


def _check_account_id(value: str) -> str:
    if not ACCOUNT_ID.match(value):
        raise ValueError(f"{value!r} is not an AWS account id (12 digits)")
    return value


def _check_role_name(value: str) -> str:
    if value.startswith("arn:") or not ROLE_NAME.match(value):
        raise ValueError(f"{value!r} is not a role name (the role is assumed in every account)")
    return value


def _roles(value: object) -> object:
    return [value] if isinstance(value, str) else value


def _check_role(value: str) -> str:
    if not (ROLE_ARN.match(value) or ROLE_NAME.match(value)):
        raise ValueError(f"{value!r} is neither a role ARN nor a role name")
    return value


AccountId = Annotated[str, BeforeValidator(_account_id), AfterValidator(_check_account_id)]
Role = Annotated[str, AfterValidator(_check_role)]


class Account(Section):
    """One AWS account to read, through the role assumed in it (none: the credentials' own)."""

    id: AccountId
    name: str = ""
    role: Annotated[list[Role], BeforeValidator(_roles)] = Field(
        default_factory=list,
        description="The role to assume: an ARN, or a name in this account "
        "(arn:aws:iam::ID:role/NAME); a list is a chain, each assumed with the previous one's "
        "credentials, the last one in this account.",
    )
    external_id: str | None = None
    regions: list[str] = Field(
        default_factory=list, description="This account's regions; empty means aws.regions."
    )
    tags: dict[str, str] = Field(default_factory=dict)

    def role_arns(self) -> list[str]:
        """The chain of role ARNs, bare names expanded in this account."""
        return [
            role if role.startswith("arn:") else f"arn:aws:iam::{self.id}:role/{role}"
            for role in self.role
        ]


class Organization(Section):
    """Every ACTIVE account of an AWS Organization (or of some of its OUs), read through the
    same role in each."""

    role: Annotated[str, AfterValidator(_check_role_name)] = Field(
        description="The name of the role assumed in each account (the same name in every one)."
    )
    ous: list[str] = Field(
        default_factory=list,
        description="Organizational unit ids (ou-...) or the root id (r-...) whose accounts, "
        "nested OUs included, are read; empty means the whole organization.",
    )
    exclude: list[Annotated[str, BeforeValidator(_account_id)]] = Field(
        default_factory=list, description="Account ids or names to leave out."
    )
    external_id: str | None = None


class AWSSettings(Section):
    regions: list[str] = Field(
        default_factory=list,
        description="Regions to scan; empty means the region of the AWS configuration.",
    )
    accounts: list[Account] = Field(
        default_factory=list,
        description="Accounts to read, each through a role assumed from the credentials' "
        "account; empty (and no accounts_file or organization) means the credentials' account.",
    )
    accounts_file: str | None = Field(
        default=None,
        description="A c7n-org accounts file (accounts: [{account_id, name, role, regions, "
        "external_id, tags: [key:value]}]) listing the accounts to read; a relative path is read "
        "from the current directory.",
    )
    organization: Organization | None = Field(
        default=None,
        description="Read every ACTIVE account of the organization the credentials manage (or "
        "are delegated administrator of), through `role` in each.",
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


class InAccount(BaseModel):
    """The account that holds an API Gateway resource, whose ARN names none."""

    account: str = ""
    """Empty: the credentials' own account."""

    @model_serializer(mode="wrap")
    def _without_empty_account(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # Targets of the credentials' own account serialize (and digest) as before accounts.
        data: dict[str, Any] = handler(self)
        if not data.get("account"):
            data.pop("account", None)
        return data


class ApiDomainTarget(Target, InAccount):
    """An API Gateway custom domain of HTTP and WebSocket APIs (apigatewayv2)."""

    type: str = "aws-http-api-domain"
    region: str
    domain_name: str


class RestDomainTarget(Target, InAccount):
    """An API Gateway custom domain name of REST APIs (apigateway)."""

    type: str = "aws-rest-api-domain"
    region: str
    domain_name: str
    domain_name_id: str = ""
    """Set for a private custom domain, which its name alone does not identify."""


class RestApiTarget(Target, InAccount):
    """An API Gateway REST API (its own securityPolicy governs its endpoints' TLS handshake)."""

    type: str = "aws-rest-api"
    region: str
    api_id: str
