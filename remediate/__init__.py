"""remediate: find and fix edge endpoints that speak old protocols.

The library is what the `remediate` command runs; every caller gets the same guarantees (the run
lock, the journal, read-back after each write)::

    import remediate

    policy = remediate.load_policy("remediate.yaml")
    plan = remediate.plan(policy)              # discover and plan; nothing is written
    print(remediate.render_plan(plan))
    result = remediate.apply(plan, policy)     # refuses a stale plan whole
    print(result.status, [o.status for o in result.outcomes])

`plan(policy, selection=Selection.parse(names=["prod"], shard="0/4"))` reads some units (accounts
in a region) of a fleet; `plan.failed_units` names those that could not be read. `drift` runs one
drift pass (optionally fixing), `rollback` undoes an applied run. Providers
(AWS ELBv2, GCP load balancers, Nginx hosts...) come from the `remediate.providers` entry points;
`registered_providers()` lists them (`remediate.providers` is the package of the built-in ones).
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from remediate.correction import drift
from remediate.engine import ApplyResult, RunStatus, apply, discover, plan
from remediate.errors import RemediateError
from remediate.executors import Outcome, Settings, Status
from remediate.journal import Journal
from remediate.model import Change, Finding, Plan
from remediate.policy import Policy
from remediate.policy import build as build_policy
from remediate.policy import load as load_policy
from remediate.provider import Provider
from remediate.registry import providers as registered_providers
from remediate.render import plan_text as render_plan
from remediate.undo import rollback
from remediate.units import FailedUnit, Selection, Shard

try:
    __version__ = version("remediate")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"

__all__ = [
    "ApplyResult",
    "Change",
    "FailedUnit",
    "Finding",
    "Journal",
    "Outcome",
    "Plan",
    "Policy",
    "Provider",
    "RemediateError",
    "RunStatus",
    "Selection",
    "Settings",
    "Shard",
    "Status",
    "__version__",
    "apply",
    "build_policy",
    "discover",
    "drift",
    "load_policy",
    "plan",
    "registered_providers",
    "render_plan",
    "rollback",
]
