"""Errors that reach the user as one clear line (the CLI prints them and exits 1)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager


class RemediateError(Exception):
    """A failure the user can act on; its message is the whole story, no traceback needed."""


class PolicyError(RemediateError):
    """The policy file is missing, malformed or invalid."""


class DiscoveryError(RemediateError):
    """A provider could not read the world (credentials, region, endpoint...)."""


class StalePlanError(RemediateError):
    """A saved plan no longer matches the world: some of its resources moved since."""

    def __init__(self, resources: list[str]) -> None:
        self.resources = resources
        names = ", ".join(resources)
        super().__init__(
            f"plan is stale: {len(resources)} resource(s) changed since it was planned "
            f"({names}); nothing was applied, run `remediate plan` again"
        )


class MissingExtraError(RemediateError):
    """An optional dependency is not installed; the message names the extra that brings it."""


@contextmanager
def requires(extra: str, package: str, module: str) -> Iterator[None]:
    """Turn the ModuleNotFoundError of `module` (or a parent package) inside the block into one
    line naming the pip extra to install."""
    try:
        yield
    except ModuleNotFoundError as exc:
        if not exc.name or not (module == exc.name or module.startswith(exc.name + ".")):
            raise
        raise MissingExtraError(
            f"this needs {package}, which is not installed: pip install 'remediate[{extra}]'"
        ) from None
