"""The AWS provider's units (one per account and region) and the sessions that read and write
each account.

A resource's identity stays its ARN, which carries the account (an API domain's ARN does not: its
target carries the account instead), so plans, history and exclusions are the same with one
account or a hundred; the executor reads the account of each change and signs with that
account's credentials.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import boto3

from remediate.errors import DiscoveryError, RemediateError
from remediate.inventory import Inventory
from remediate.model import Change
from remediate.policy import Policy
from remediate.progress import Progress
from remediate.providers.aws import accounts
from remediate.providers.aws.accounts import Credentials
from remediate.providers.aws.discover import NAME, discover
from remediate.providers.aws.model import Account, AWSSettings, InAccount, Kind
from remediate.units import Unit


@dataclass(frozen=True)
class Scope:
    """What reading one unit needs: the account, the region, and the shared credentials."""

    account: Account
    region: str
    credentials: Credentials


def _label(account: Account) -> str:
    return f"aws {account.name} ({account.id})" if account.name else f"aws {account.id}"


def units(policy: Policy) -> list[Unit] | None:
    """Every (account, region) of the section's accounts; None when it names no accounts."""
    settings = policy.section(NAME, AWSSettings)
    if not accounts.configured(settings):
        return None
    credentials = Credentials()
    base = credentials.base
    if base.get_credentials() is None:
        raise DiscoveryError(
            "no AWS credentials found: the accounts are read through roles assumed from the "
            "credentials of the standard chain (AWS_PROFILE, AWS_ACCESS_KEY_ID..., SSO, a role)"
        )
    listed = accounts.resolve(settings, base)
    if not listed:
        raise DiscoveryError("aws: accounts, accounts_file and organization list no account")
    found: list[Unit] = []
    for account in listed:
        regions = account.regions or settings.regions or [base.region_name or ""]
        if "" in regions:
            raise DiscoveryError(
                f"aws account {account.id}: no region: set its regions, aws.regions, or AWS_REGION"
            )
        for region in regions:
            found.append(
                Unit(
                    provider=NAME,
                    key=f"{NAME}/{account.id}/{region}",
                    label=f"{_label(account)} {region}",
                    names=frozenset(name for name in (account.id, account.name) if name),
                    tags=dict(account.tags),
                    scope=Scope(account, region, credentials),
                )
            )
    return found


def discover_unit(policy: Policy, unit: Unit, progress: Progress) -> Inventory:
    """One account's endpoints in one region, read with that account's credentials."""
    scope = unit.scope
    if not isinstance(scope, Scope):
        raise TypeError(f"{unit.key}: not a unit the AWS provider listed")
    session = scope.credentials.session(scope.account)
    inventory = discover(
        policy, progress, session, [scope.region], _label(scope.account), scope.account.id
    )
    # The catalogs (security policies by region) are AWS's, the same in every account; a unit
    # that needed none (no Classic load balancer here) leaves its region out rather than erase
    # another account's catalog of the same region when the units' facts are merged.
    inventory.facts = {
        key: {region: found for region, found in value.items() if found}
        if isinstance(value, dict)
        else value
        for key, value in inventory.facts.items()
    }
    # An API Gateway resource's ARN names no account: its endpoint carries it, for the executor.
    inventory.endpoints = [
        endpoint.model_copy(update={"context": {**endpoint.context, "account": scope.account.id}})
        if endpoint.kind in (Kind.HTTP_API_DOMAIN, Kind.REST_API_DOMAIN, Kind.REST_API)
        else endpoint
        for endpoint in inventory.endpoints
    ]
    return inventory


def account_of(change: Change) -> str:
    """The account a change's resource lives in ("" when it does not say: the credentials')."""
    if isinstance(change.target, InAccount):
        return change.target.account
    parts = change.resource.split(":", 5)
    return parts[4] if len(parts) == 6 and parts[0] == "arn" else ""


class Signers:
    """The boto3 session that signs for each account: the default chain's for the credentials'
    own account (and when the section names no accounts), an assumed role's for the others."""

    def __init__(self, settings: AWSSettings) -> None:
        self._settings = settings
        self._credentials: Credentials | None = None
        self._accounts: dict[str, Account] | None = None

    def session(self, account: str) -> boto3.session.Session | None:
        """None means boto3's default chain."""
        if not account or not accounts.configured(self._settings):
            return None
        if self._credentials is None or self._accounts is None:
            self._credentials = Credentials()
            listed = accounts.resolve(self._settings, self._credentials.base)
            self._accounts = {item.id: item for item in listed}
        found = self._accounts.get(account)
        if found is None:
            raise RemediateError(
                f"account {account} is not one of aws.accounts, aws.accounts_file or "
                "aws.organization: no role to change it through"
            )
        return self._credentials.session(found)


def by_account(changes: Iterable[Change]) -> dict[str, list[Change]]:
    grouped: dict[str, list[Change]] = {}
    for change in changes:
        grouped.setdefault(account_of(change), []).append(change)
    return grouped
