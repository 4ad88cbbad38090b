"""A sandbox AWS Organization on the moto server: a management account, member accounts in
nested OUs, each with its own weak load balancers and the role Organizations creates in a new
account, and one member whose role does not trust the management account.

moto's STS assumes any role ARN, even one that does not exist. The real STS refuses (403
AccessDenied) unless the role exists and its trust policy lets the caller's account in, with the
external id its condition asks for. `strict_assume_role` makes the sandbox answer as the real
service does, so a denied account fails as it would in AWS.

Seeding acts as each member account's own administrator through moto's `x-moto-account-id`
header: what CloudFormation in that account would do, without going through a role.
"""

from __future__ import annotations

import json
import urllib.parse
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import boto3

from remediate.sandbox.aws import Fleet, FleetBuilder

MANAGEMENT_ACCOUNT = "123456789012"
"""moto's default account: where the sandbox credentials sign."""
MEMBER_ROLE = "OrganizationAccountAccessRole"
"""The role AWS Organizations creates in each account it creates, trusting the management one."""
OUTSIDER_ACCOUNT = "999999999999"
WEAK_POLICY = "ELBSecurityPolicy-2016-08"


def strict_assume_role() -> Callable[[], None]:
    """Make moto's AssumeRole refuse a role that does not exist or whose trust policy does not
    allow the caller's account (or whose sts:ExternalId condition is not met), as the real STS
    does. Returns what puts moto's own method back."""
    from moto.iam.models import iam_backends
    from moto.sts.exceptions import STSClientError
    from moto.sts.models import STSBackend

    original = STSBackend.assume_role
    # moto's serializer warns that the STS model declares no AccessDenied shape; the real service
    # answers it all the same.
    warnings.filterwarnings(
        "ignore",
        message=r"Exception\(STSClientError\) with code AccessDenied",
        category=UserWarning,
    )

    def assume_role(self: Any, *args: Any, **kwargs: Any) -> Any:
        role_arn = str(kwargs.get("role_arn", ""))
        external_id = kwargs.get("external_id")
        caller = f"arn:aws:iam::{self.account_id}:root"
        denied = STSClientError(
            "AccessDenied",
            f"User: {caller} is not authorized to perform: sts:AssumeRole on resource: {role_arn}",
        )
        denied.code = "AccessDenied"
        parts = role_arn.split(":", 5)
        if len(parts) != 6:
            raise denied
        try:
            role = iam_backends[parts[4]]["aws"].get_role_by_arn(role_arn)
        except Exception:  # moto's IAMNotFoundException: the role does not exist
            raise denied from None
        if not _trusts(role.assume_role_policy_document, self.account_id, external_id):
            raise denied
        return original(self, *args, **kwargs)

    setattr(STSBackend, "assume_role", assume_role)  # noqa: B010

    def restore() -> None:
        setattr(STSBackend, "assume_role", original)  # noqa: B010

    return restore


def _trusts(document: str, account: str, external_id: str | None) -> bool:
    """Whether a trust policy allows `account` to assume the role (its Allow statements naming
    the account or its root as an AWS principal, with any sts:ExternalId condition met)."""
    policy = json.loads(urllib.parse.unquote(document))
    statements = policy.get("Statement", [])
    for statement in statements if isinstance(statements, list) else [statements]:
        actions = statement.get("Action", [])
        actions = [actions] if isinstance(actions, str) else actions
        if statement.get("Effect") != "Allow" or "sts:AssumeRole" not in actions:
            continue
        principals = statement.get("Principal", {}).get("AWS", [])
        principals = [principals] if isinstance(principals, str) else principals
        if account not in principals and f"arn:aws:iam::{account}:root" not in principals:
            continue
        wanted = statement.get("Condition", {}).get("StringEquals", {}).get("sts:ExternalId")
        if wanted is not None and wanted != external_id:
            continue
        return True
    return False


def trust_policy(account: str, external_id: str | None = None) -> str:
    statement: dict[str, Any] = {
        "Effect": "Allow",
        "Principal": {"AWS": f"arn:aws:iam::{account}:root"},
        "Action": "sts:AssumeRole",
    }
    if external_id:
        statement["Condition"] = {"StringEquals": {"sts:ExternalId": external_id}}
    return json.dumps({"Version": "2012-10-17", "Statement": [statement]})


def as_account(account: str) -> boto3.session.Session:
    """A session whose requests moto serves as `account`'s (seeding only)."""
    session = boto3.session.Session()

    def tag(request: Any, **_: Any) -> None:
        request.headers["x-moto-account-id"] = account

    session.events.register("before-sign", tag)
    return session


@dataclass
class SandboxOrg:
    """Handles to what `seed_organization` created."""

    accounts: dict[str, str] = field(default_factory=dict)
    """Account name -> id, the management account excluded."""
    denied: str = ""
    """The id of the member whose role does not trust the management account."""
    root: str = ""
    ous: dict[str, str] = field(default_factory=dict)
    fleets: dict[str, Fleet] = field(default_factory=dict)
    """Account id -> its load balancers and listeners."""


def seed_organization(
    members: tuple[str, ...] = ("shop", "payments", "media"),
    denied: str = "legacy",
    regions: tuple[str, ...] = ("us-east-1",),
) -> SandboxOrg:
    """An organization: `workloads` OU under the root and `prod` nested in it; the first member
    in `prod`, the others and `denied` in `workloads`. Each member has `MEMBER_ROLE` trusting
    the management account (the denied one's trusts an outsider only), tags `team` and `env`,
    and in each region an ALB with an HTTPS listener on a policy that accepts TLS 1.0."""
    org: Any = boto3.client("organizations", region_name="us-east-1")
    org.create_organization(FeatureSet="ALL")
    sandbox = SandboxOrg(root=org.list_roots()["Roots"][0]["Id"])
    workloads = org.create_organizational_unit(ParentId=sandbox.root, Name="workloads")
    sandbox.ous["workloads"] = workloads["OrganizationalUnit"]["Id"]
    prod = org.create_organizational_unit(ParentId=sandbox.ous["workloads"], Name="prod")
    sandbox.ous["prod"] = prod["OrganizationalUnit"]["Id"]
    for position, name in enumerate((*members, denied)):
        status = org.create_account(
            Email=f"{name}@example.com",
            AccountName=name,
            Tags=[
                {"Key": "team", "Value": name},
                {"Key": "env", "Value": "prod" if position == 0 else "staging"},
            ],
        )["CreateAccountStatus"]
        account = str(status["AccountId"])
        sandbox.accounts[name] = account
        parent = sandbox.ous["prod"] if position == 0 else sandbox.ous["workloads"]
        org.move_account(AccountId=account, SourceParentId=sandbox.root, DestinationParentId=parent)
        session = as_account(account)
        trusted = OUTSIDER_ACCOUNT if name == denied else MANAGEMENT_ACCOUNT
        # moto creates the role with the account, as Organizations does; its trust policy is
        # set here so the denied member's lets only an outsider in.
        session.client("iam").update_assume_role_policy(
            RoleName=MEMBER_ROLE, PolicyDocument=trust_policy(trusted)
        )
        if name == denied:
            sandbox.denied = account
        fleet = Fleet()
        for region in regions:
            builder = FleetBuilder(region, fleet, session)
            builder.load_balancer(f"{name}-web")
            builder.target_group(f"{name}-app")
            builder.listener(f"{name}-web", 443, "HTTPS", f"{name}-app", ssl_policy=WEAK_POLICY)
        sandbox.fleets[account] = fleet
    return sandbox
