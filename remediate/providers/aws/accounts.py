"""Many AWS accounts: which accounts to read (`aws.accounts`, a c7n-org accounts file, or the
ACTIVE accounts of an AWS Organization) and credentials in each, through STS AssumeRole.

Credentials of an assumed role expire (an hour by default, at most an hour for a chain): each
account's are botocore `RefreshableCredentials`, assumed when first used and assumed again
shortly before they expire, so a long run never signs with expired keys. Each account has one
boto3 session signing with them, made once and shared by every region of the account (sessions
are not thread-safe: `discover.Session.open` makes every client under one lock). A session costs
about 8 ms of CPU to make (botocore registers its ~130 built-in event handlers in each) and is
garbage for the cyclic collector afterwards: one per account rather than one per unit. The
sessions share one botocore data loader, which caches the service models and endpoint data it
has parsed: a session of its own would parse them again (about 0.3 s of CPU for five clients,
against 0.06 s with the cache).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Annotated, Any

import boto3
import botocore.session
from botocore.credentials import RefreshableCredentials
from botocore.exceptions import BotoCoreError, ClientError
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from remediate.errors import DiscoveryError, PolicyError
from remediate.inputs import decode_text, read_bytes
from remediate.policy import read_yaml, validate
from remediate.providers.aws.discover import client_config
from remediate.providers.aws.model import Account, AccountId, AWSSettings, Organization, Role
from remediate.timeouts import Timeouts
from remediate.units import nested

SESSION_NAME = "remediate"
"""Every role session remediate opens is named `remediate-ACCOUNT`: CloudTrail shows who."""
MAX_ACCOUNTS_FILE_BYTES = 8 * 1024 * 1024


def _c7n_tags(value: object) -> object:
    """c7n-org writes tags as `key:value` strings; a mapping is taken as is."""
    if isinstance(value, list):
        pairs: dict[str, str] = {}
        for item in value:
            if not isinstance(item, str):
                raise ValueError(f"a tag must be a 'key:value' string, not {item!r}")
            key, _, tag_value = item.partition(":")
            pairs[key.strip()] = tag_value.strip()
        return pairs
    return value


def _c7n_roles(value: object) -> object:
    return [value] if isinstance(value, str) else value


class _FileAccount(BaseModel):
    """One account of a c7n-org accounts file (its `vars` and other keys are not used here)."""

    model_config = ConfigDict(extra="ignore")

    account_id: AccountId
    name: str = ""
    role: Annotated[list[Role], BeforeValidator(_c7n_roles)] = Field(default_factory=list)
    external_id: str | None = None
    regions: list[str] = Field(default_factory=list)
    tags: Annotated[dict[str, str], BeforeValidator(_c7n_tags)] = Field(default_factory=dict)


class _AccountsFile(BaseModel):
    model_config = ConfigDict(extra="ignore")

    accounts: list[_FileAccount]


def load_accounts_file(path: Path | str) -> list[Account]:
    """The accounts of a c7n-org accounts file; a problem is one line naming file, line, field."""
    path = Path(path)
    source = str(path)
    data = read_bytes(path, "accounts file", MAX_ACCOUNTS_FILE_BYTES, PolicyError)
    root, parsed = read_yaml(decode_text(data, source, "a YAML accounts file", PolicyError), source)
    if not isinstance(parsed, dict) or "accounts" not in parsed:
        raise PolicyError(f"{source}:1: not a c7n-org accounts file (expected `accounts:` list)")
    listed = validate(_AccountsFile, root, parsed, source).accounts
    return [
        Account(
            id=item.account_id,
            name=item.name,
            role=item.role,
            external_id=item.external_id,
            regions=item.regions,
            tags=item.tags,
        )
        for item in listed
    ]


def configured(settings: AWSSettings) -> bool:
    """Whether the section names accounts of its own (otherwise: the credentials' account)."""
    return bool(settings.accounts or settings.accounts_file or settings.organization)


def resolve(settings: AWSSettings, base: boto3.session.Session) -> list[Account]:
    """Every account the section names, the first mention of an id winning."""
    found: dict[str, Account] = {}
    listed = list(settings.accounts)
    if settings.accounts_file:
        listed.extend(load_accounts_file(settings.accounts_file))
    if settings.organization is not None:
        listed.extend(organization_accounts(settings.organization, base))
    for account in listed:
        found.setdefault(account.id, account)
    return list(found.values())


def organization_accounts(org: Organization, base: boto3.session.Session) -> list[Account]:
    """The ACTIVE accounts of the organization (or of `org.ous`, nested OUs included), minus
    `org.exclude` (ids or names), each with its tags, to be read through `org.role` (the
    credentials' own account through the credentials themselves)."""
    region = base.region_name or "us-east-1"
    config = client_config(Timeouts.from_env())
    try:
        client = base.client("organizations", region_name=region, config=config)
        own = str(
            base.client("sts", region_name=region, config=config).get_caller_identity()["Account"]
        )
        raw = list(_all_accounts(client) if not org.ous else _accounts_under(client, org.ous))
        accounts: list[Account] = []
        seen: set[str] = set()
        for item in raw:
            if item.get("Status", "ACTIVE") != "ACTIVE" or item["Id"] in seen:
                continue
            seen.add(item["Id"])
            if item["Id"] in org.exclude or item.get("Name") in org.exclude:
                continue
            tags = {
                tag["Key"]: tag["Value"]
                for page in client.get_paginator("list_tags_for_resource").paginate(
                    ResourceId=item["Id"]
                )
                for tag in page.get("Tags", [])
            }
            accounts.append(
                Account(
                    id=item["Id"],
                    name=item.get("Name", ""),
                    # The credentials' own account is read with them: the management account
                    # holds no role Organizations made for itself.
                    role=[] if item["Id"] == own else [org.role],
                    external_id=org.external_id,
                    tags=tags,
                )
            )
        return accounts
    except ClientError as exc:
        error = exc.response.get("Error", {})
        raise DiscoveryError(
            f"aws.organization: cannot list the organization's accounts: "
            f"{error.get('Code', 'error')}: {error.get('Message', exc)} (the credentials must be "
            "of the management account or a delegated administrator)"
        ) from None
    except (BotoCoreError, ValueError) as exc:
        raise DiscoveryError(f"aws.organization: cannot list accounts: {exc}") from None


def _all_accounts(client: Any) -> Iterator[dict[str, Any]]:
    for page in client.get_paginator("list_accounts").paginate():
        yield from page["Accounts"]


def _accounts_under(client: Any, parents: Iterable[str]) -> Iterator[dict[str, Any]]:
    """The accounts of each parent (root or OU) and of the OUs nested in it."""

    def ous(parent: str) -> Iterator[str]:
        for page in client.get_paginator("list_organizational_units_for_parent").paginate(
            ParentId=parent
        ):
            yield from (ou["Id"] for ou in page["OrganizationalUnits"])

    for parent in nested(parents, ous):
        for page in client.get_paginator("list_accounts_for_parent").paginate(ParentId=parent):
            yield from page["Accounts"]


class Credentials:
    """Credentials in each account, assumed once per account and refreshed as they expire."""

    def __init__(self, base: boto3.session.Session | None = None) -> None:
        self._base = base or boto3.session.Session()
        self._region = self._base.region_name or "us-east-1"
        self._config = client_config(Timeouts.from_env())
        # Clients are thread-safe, sessions are not: the base session makes its STS client once.
        try:
            self._sts = self._base.client("sts", region_name=self._region, config=self._config)
        except (BotoCoreError, ValueError) as exc:
            # ValueError: botocore's word for an AWS_ENDPOINT_URL that is not a URL.
            raise DiscoveryError(f"cannot create an STS client: {exc}") from None
        self._lock = threading.Lock()
        self._locks: dict[str, threading.Lock] = {}
        self._by_account: dict[str, boto3.session.Session] = {}
        self._loader = botocore.session.Session().get_component("data_loader")

    @property
    def base(self) -> boto3.session.Session:
        return self._base

    def session(self, account: Account) -> boto3.session.Session:
        """The account's boto3 session, signing as `account` (with the base session's own
        credentials when the account names no role); its region is the base session's, and
        callers name the regions of their clients. Raises DiscoveryError when a role cannot be
        assumed."""
        with self._lock:
            lock = self._locks.setdefault(account.id, threading.Lock())
        with lock:  # each account's role is assumed once, its regions wait for it
            session = self._by_account.get(account.id)
            if session is None:
                credentials: Any = self._base.get_credentials()
                if account.role:
                    # The first assume is made here, so a refusal is this account's error;
                    # later ones are botocore's refreshes, shortly before the credentials expire.
                    credentials = RefreshableCredentials.create_from_metadata(
                        metadata=self._first(account),
                        refresh_using=lambda: self._assume(account),
                        method="sts-assume-role",
                    )
                session = self._by_account[account.id] = self._signing(credentials)
        return session

    def _signing(self, credentials: Any) -> boto3.session.Session:
        """A session signing with `credentials`."""
        core = botocore.session.Session()
        # Loading is read-only once parsed; two threads missing the cache at once parse twice.
        core.register_component("data_loader", self._loader)
        # botocore reads a session's credentials from here; no public setter takes refreshable ones.
        core._credentials = credentials  # type: ignore[attr-defined]
        with self._lock:
            session = boto3.session.Session(botocore_session=core, region_name=self._region)
            # boto3 appends its data directory to the loader's search path for every session it
            # wraps: with the loader shared, the path would grow by a directory an account, and
            # every model file not yet cached (paginators are loaded on first use, by several
            # threads at once) would be looked for in each copy.
            paths = self._loader.search_paths
            paths[:] = list(dict.fromkeys(paths))
        return session

    def _first(self, account: Account) -> dict[str, str]:
        try:
            return self._assume(account)
        except ClientError as exc:
            error = exc.response.get("Error", {})
            raise DiscoveryError(
                f"cannot assume {' -> '.join(account.role_arns())}: "
                f"{error.get('Code', 'error')}: {error.get('Message', exc)}"
            ) from None
        except BotoCoreError as exc:
            raise DiscoveryError(f"cannot assume {account.role_arns()[-1]}: {exc}") from None

    def _assume(self, account: Account) -> dict[str, str]:
        """Assume each role of the chain with the previous one's credentials; the external id
        goes with the last (the one in the account)."""
        arns = account.role_arns()
        sts = self._sts
        answer: dict[str, Any] = {}
        for position, arn in enumerate(arns):
            request: dict[str, Any] = {
                "RoleArn": arn,
                "RoleSessionName": f"{SESSION_NAME}-{account.id}",
            }
            last = position == len(arns) - 1
            if last and account.external_id:
                request["ExternalId"] = account.external_id
            answer = sts.assume_role(**request)["Credentials"]
            if not last:
                sts = boto3.session.Session(
                    aws_access_key_id=answer["AccessKeyId"],
                    aws_secret_access_key=answer["SecretAccessKey"],
                    aws_session_token=answer["SessionToken"],
                ).client("sts", region_name=self._region, config=self._config)
        return {
            "access_key": answer["AccessKeyId"],
            "secret_key": answer["SecretAccessKey"],
            "token": answer["SessionToken"],
            "expiry_time": answer["Expiration"].isoformat(),
        }
