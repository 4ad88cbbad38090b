"""The one place providers are known: the `remediate.providers` entry-point group.

remediate's own providers are registered there by its `pyproject.toml`, exactly as a third-party
package registers one of its own; nothing else in the code lists provider names.
"""

from __future__ import annotations

from functools import cache
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any

from pydantic import create_model

from remediate.errors import RemediateError
from remediate.provider import ExecutorFactory, Provider

if TYPE_CHECKING:
    from remediate.policy import Policy

GROUP = "remediate.providers"


@cache
def providers() -> dict[str, Provider]:
    """Every registered provider by name, in name order."""
    found: dict[str, Provider] = {}
    for entry in entry_points(group=GROUP):
        provider = entry.load()
        if not isinstance(provider, Provider):
            raise RemediateError(
                f"entry point {entry.name} = {entry.value} in {GROUP} is not a remediate Provider"
            )
        found[provider.name] = provider
    if not found:
        raise RemediateError(
            f"no provider is registered in the {GROUP} entry points: "
            "is remediate installed (pip install remediate)?"
        )
    return dict(sorted(found.items()))


def names() -> list[str]:
    return list(providers())


def get(name: str) -> Provider:
    """The provider called `name`; an unknown name is an error that lists the known ones."""
    try:
        return providers()[name]
    except KeyError:
        raise RemediateError(
            f"unknown provider {name!r} (known: {', '.join(providers())})"
        ) from None


@cache
def executor_factories() -> dict[str, ExecutorFactory]:
    """Every executor any provider offers, by name (one executor may serve several providers)."""
    found: dict[str, ExecutorFactory] = {}
    for provider in providers().values():
        found.update(provider.executors())
    return found


def executor_factory(name: str) -> ExecutorFactory:
    try:
        return executor_factories()[name]
    except KeyError:
        known = ", ".join(sorted(executor_factories()))
        raise RemediateError(f"unknown executor {name!r} (known: {known})") from None


@cache
def policy_model() -> type[Policy]:
    """The policy file's model: the core settings plus one optional section per provider."""
    from remediate.policy import Policy

    sections: dict[str, Any] = {
        name: (provider.section | None, None) for name, provider in providers().items()
    }
    model: type[Policy] = create_model("Policy", __base__=Policy, **sections)
    model.__doc__ = Policy.__doc__
    return model
