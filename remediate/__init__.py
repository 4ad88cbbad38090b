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

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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

    __version__: str

# Each name of the library, and where it lives: imported on first use, so that a program (the
# `remediate` command's entry point included) imports only what it uses.
_EXPORTS = {
    "drift": ("remediate.correction", "drift"),
    "ApplyResult": ("remediate.engine", "ApplyResult"),
    "RunStatus": ("remediate.engine", "RunStatus"),
    "apply": ("remediate.engine", "apply"),
    "discover": ("remediate.engine", "discover"),
    "plan": ("remediate.engine", "plan"),
    "RemediateError": ("remediate.errors", "RemediateError"),
    "Outcome": ("remediate.executors", "Outcome"),
    "Settings": ("remediate.executors", "Settings"),
    "Status": ("remediate.executors", "Status"),
    "Journal": ("remediate.journal", "Journal"),
    "Change": ("remediate.model", "Change"),
    "Finding": ("remediate.model", "Finding"),
    "Plan": ("remediate.model", "Plan"),
    "Policy": ("remediate.policy", "Policy"),
    "build_policy": ("remediate.policy", "build"),
    "load_policy": ("remediate.policy", "load"),
    "Provider": ("remediate.provider", "Provider"),
    "registered_providers": ("remediate.registry", "providers"),
    "render_plan": ("remediate.render", "plan_text"),
    "rollback": ("remediate.undo", "rollback"),
    "FailedUnit": ("remediate.units", "FailedUnit"),
    "Selection": ("remediate.units", "Selection"),
    "Shard": ("remediate.units", "Shard"),
}


def __getattr__(name: str) -> Any:
    if name == "__version__":
        value: Any = _version()
    elif name in _EXPORTS:
        module, attribute = _EXPORTS[name]
        value = getattr(importlib.import_module(module), attribute)
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("remediate")
    except PackageNotFoundError:  # running from a source tree that was never installed
        return "0+unknown"


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
