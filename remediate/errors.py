"""Errors that reach the user as one clear line (the CLI prints them and exits 1)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

DISTRIBUTION = "remediate"


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
    """A feature needs packages of an optional extra that is not installed."""

    def __init__(self, feature: str, extra: str, packages: Sequence[str]) -> None:
        self.feature = feature
        self.extra = extra
        self.packages = list(packages)
        super().__init__(f"{feature} needs {', '.join(packages)}: pip install 'remediate[{extra}]'")


def _missing(requirements: Iterable[str], extra: str, seen: set[str]) -> list[str]:
    """The requirements of `extra` among `requirements` (a distribution's metadata) that are not
    installed, each with its own extras (`moto[server]` needs flask); remediate's own extras an
    extra includes are expanded in place."""
    # The distribution metadata and packaging only when a feature checks its extra: this module
    # is on the path of the command's first steps (`providers.headstart`).
    from importlib import metadata

    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    missing: list[str] = []
    for line in requirements:
        requirement = Requirement(line)
        if requirement.marker is None or not requirement.marker.evaluate({"extra": extra}):
            continue
        name = canonicalize_name(requirement.name)
        if name == DISTRIBUTION:
            for own in sorted(requirement.extras):
                missing += _missing(metadata.requires(DISTRIBUTION) or [], own, seen)
            continue
        shown = f"{name}[{','.join(sorted(requirement.extras))}]" if requirement.extras else name
        if shown in seen:
            continue
        seen.add(shown)
        try:
            needs = metadata.requires(name) or []
        except metadata.PackageNotFoundError:
            missing.append(shown)
            continue
        if any(_missing(needs, sub, set()) for sub in requirement.extras):
            missing.append(shown)
    return missing


def require(extra: str, feature: str) -> None:
    """Raise `MissingExtraError` unless every package the `extra` of remediate's metadata names
    (pyproject.toml's optional-dependencies) is installed; the check imports none of them."""
    from importlib import metadata

    try:
        requirements = metadata.requires(DISTRIBUTION) or []
    except metadata.PackageNotFoundError:
        return  # not installed (run from a source tree): nothing to check against
    missing = _missing(requirements, extra, set())
    if missing:
        raise MissingExtraError(feature, extra, missing)
