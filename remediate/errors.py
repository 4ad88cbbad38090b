"""Errors that reach the user as one clear line (the CLI prints them and exits 1)."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterable, Iterator, Sequence
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


# Each optional extra of pyproject.toml: the top-level modules remediate imports from it, and the
# distribution each comes from (what the one-line error names).
EXTRAS: dict[str, dict[str, str]] = {
    "gcp": {"google.cloud.compute_v1": "google-cloud-compute"},
    "nginx": {
        "crossplane": "crossplane",
        "ansible_runner": "ansible-runner",
        "ansible": "ansible-core",
    },
    "pulumi": {"pulumi": "pulumi", "pulumi_aws": "pulumi-aws", "pulumi_gcp": "pulumi-gcp"},
    # The demo runs every provider against its emulator: the sandbox extra includes gcp and nginx.
    "sandbox": {
        "google.cloud.compute_v1": "google-cloud-compute",
        "crossplane": "crossplane",
        "ansible_runner": "ansible-runner",
        "ansible": "ansible-core",
        "moto": "moto[server]",
        "flask": "moto[server]",
        "googleapiclient": "google-api-python-client",
        "jsonschema": "jsonschema",
    },
}


class MissingExtraError(RemediateError):
    """A feature needs packages of an optional extra that is not installed."""

    def __init__(self, feature: str, extra: str, packages: Sequence[str]) -> None:
        self.feature = feature
        self.extra = extra
        self.packages = list(packages)
        super().__init__(f"{feature} needs {', '.join(packages)}: pip install 'remediate[{extra}]'")


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:  # a parent package of a dotted name is missing
        return False


def _related(name: str, modules: Iterable[str]) -> bool:
    """Whether the missing module `name` is one of `modules`, a parent or a submodule of one."""
    return any(
        name == module or module.startswith(f"{name}.") or name.startswith(f"{module}.")
        for module in modules
    )


def require(extra: str, feature: str) -> None:
    """Raise `MissingExtraError` unless every package of `extra` is installed (looked up only)."""
    modules = EXTRAS[extra]
    missing = list(dict.fromkeys(modules[name] for name in modules if not _importable(name)))
    if missing:
        raise MissingExtraError(feature, extra, missing)


@contextmanager
def requires(extra: str | None, feature: str) -> Iterator[None]:
    """Run the body only when the packages of `extra` are installed, else raise `MissingExtraError`.

    The packages are looked up before the body runs (several import theirs lazily, deep in a run),
    and a `ModuleNotFoundError` of one of them inside the body becomes `MissingExtraError` too.
    `extra=None` means the core install has everything `feature` needs.
    """
    if extra is None:
        yield
        return
    require(extra, feature)
    modules = EXTRAS[extra]
    try:
        yield
    except ModuleNotFoundError as exc:
        if exc.name is None or not _related(exc.name, modules):
            raise
        raise MissingExtraError(feature, extra, list(dict.fromkeys(modules.values()))) from None
