"""The provider contract: what a provider package gives the rest of remediate.

A provider (AWS ELBv2, GCP load balancers, Nginx hosts...) is one package under
`remediate/providers/` (or a third-party package) whose `__init__` defines a `Provider` subclass
and whose instance is registered in the `remediate.providers` entry-point group. Everything the
core needs to know about a provider goes through this interface, so the planner, engine,
verification, permissions and the Pulumi mapping never switch on provider names.

A provider's `__init__` imports nothing heavy: the registry loads every provider to read a policy
or a plan, and a provider's client libraries may be an optional extra. Discovery, executors and
mappings are imported inside the methods that need them.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel

from remediate.errors import RemediateError
from remediate.targets import HostFile, Target

if TYPE_CHECKING:
    from remediate.executors import Executor, Settings
    from remediate.inventory import Inventory
    from remediate.model import Change, Endpoint
    from remediate.policy import Policy
    from remediate.progress import Progress
    from remediate.pulumi.remediation import Declaration
    from remediate.rules import Verdict
    from remediate.units import Unit
    from remediate.verification import Expectation


class Severity(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


@dataclass(frozen=True)
class RuleInfo:
    """A rule's metadata: a stable id (`aws-elb-tls-floor`), what it checks, how bad a violation
    is, the fix in words and where to read more."""

    id: str
    title: str
    severity: Severity
    remediation: str
    url: str
    fixes: bool = True
    """False for rules that only report (findings): they never change anything."""


@dataclass(frozen=True)
class Permissions:
    """What a read-only plan and an apply need, in the provider's own permission system."""

    system: str
    """`aws-iam` (IAM actions), `gcp-iam` (Google Cloud permissions) or `host` (prose)."""
    read: tuple[str, ...]
    write: tuple[str, ...]


class UnsupportedChangeError(RemediateError):
    """An executor or mapping was handed a change it does not know how to carry out."""


ExecutorFactory = Callable[["Settings", "Progress"], "Executor"]


class Provider(ABC):
    """One kind of edge remediate discovers, plans and fixes."""

    name: ClassVar[str]
    """The policy section's key and the provider's name everywhere (`--only aws`)."""
    title: ClassVar[str]
    extra: ClassVar[str | None] = None
    """The pip extra that brings the provider's client libraries, when they are optional."""
    section: ClassVar[type[BaseModel]]
    """The model of the provider's policy section."""
    rules: ClassVar[tuple[RuleInfo, ...]]
    kinds: ClassVar[tuple[str, ...]]
    """The resource kinds the provider's changes carry (dispatch tables are keyed by these)."""
    permissions: ClassVar[Permissions]
    default_executor: ClassVar[str]

    @abstractmethod
    def executors(self) -> Mapping[str, ExecutorFactory]:
        """The executors that can apply this provider's changes, by name."""

    @abstractmethod
    def discover(self, policy: Policy, progress: Progress) -> Inventory:
        """Read every endpoint the policy's section points at; raise DiscoveryError on failure."""

    def units(self, policy: Policy) -> Sequence[Unit] | None:
        """The independent parts of the estate the policy points at (accounts x regions,
        projects, hosts), read one by one with `discover_unit`; None (the default) makes the whole
        provider one unit, read with `discover`. Raise for a policy that cannot be split (a
        malformed accounts file): that fails the run, not one unit."""
        return None

    def discover_unit(self, policy: Policy, unit: Unit, progress: Progress) -> Inventory:
        """Read one of the units `units` listed; a `RemediateError` fails that unit alone."""
        raise NotImplementedError(f"the {self.name} provider lists no units")

    @abstractmethod
    def evaluate(self, endpoint: Endpoint, policy: Policy, facts: Mapping[str, Any]) -> Verdict:
        """The changes and findings for one endpoint (pure: reads nothing, writes nothing)."""

    @abstractmethod
    def target(self, endpoint: Endpoint) -> Target:
        """The typed reference of a change to `endpoint` itself."""

    def expectations(self, changes: Sequence[Change], policy: Policy) -> Iterable[Expectation]:
        """What a live probe must find once `changes` are in (none by default)."""
        return ()

    def declaration(self, change: Change) -> Declaration:
        """The Pulumi resource that carries `change`, for the pulumi executor."""
        raise UnsupportedChangeError(f"{change.resource}: {self.name} changes have no Pulumi type")

    def migrate_v1(self, kind: str, change: Mapping[str, Any]) -> Target:
        """The typed target of a format-1 plan's change, from its `context` dictionary."""
        raise UnsupportedChangeError(f"{change.get('resource')}: {self.name} plans of format 1")

    def unit(self, change: Change) -> str:
        """The unit a change writes to, which the apply lock of a shared journal covers: runners
        on different units proceed in parallel, never two on one unit. By default the host of a
        file on a host (whichever provider edits it), else the resource itself."""
        if isinstance(change.target, HostFile):
            return f"host:{change.target.host}"
        return f"{self.name}:{change.resource}"

    def rule(self, rule_id: str) -> RuleInfo:
        """The metadata of a rule this provider declares; a rule it does not declare is a bug."""
        for info in self.rules:
            if info.id == rule_id:
                return info
        raise KeyError(f"rule {rule_id!r} is not declared by the {self.name} provider")


@dataclass
class Discovery:
    """One `engine.discover` call as providers see it: the providers it covers, and work they
    may share. Host-based providers whose hosts are in one Ansible inventory read them all in one
    playbook run (`remediate.hosts.collection`) and keep each provider's part here."""

    selected: tuple[str, ...]
    shared: dict[object, Any] = field(default_factory=dict)


_DISCOVERY: ContextVar[Discovery | None] = ContextVar("remediate_discovery", default=None)


@contextmanager
def discovery(selected: Iterable[str]) -> Iterator[Discovery]:
    """Mark the discovery of the `selected` providers under way (for `current_discovery`)."""
    scope = Discovery(tuple(selected))
    token = _DISCOVERY.set(scope)
    try:
        yield scope
    finally:
        _DISCOVERY.reset(token)


def current_discovery() -> Discovery | None:
    """The discovery under way, or None outside `engine.discover`."""
    return _DISCOVERY.get()
