"""The GCP provider's units: one per project (`projects.resolve` says which), each read through
the Compute clients all of them share, each failing alone (a project whose Compute API is not
enabled is one failed unit, the others are read).
"""

from __future__ import annotations

from dataclasses import dataclass

from remediate.errors import DiscoveryError
from remediate.inventory import Inventory
from remediate.policy import Policy
from remediate.progress import Progress, Silent
from remediate.providers.gcp import projects
from remediate.providers.gcp.discover import NAME, Clients, project_inventory, read_project
from remediate.providers.gcp.rules import settings_of
from remediate.units import Unit


@dataclass(frozen=True)
class Scope:
    """What reading one project needs: its id and the clients all projects share."""

    project: str
    clients: Clients


def units(policy: Policy) -> list[Unit]:
    """One unit per project of the section (see `projects.resolve`), its labels as its tags."""
    settings = settings_of(policy)
    clients = Clients.open(policy)
    found = projects.resolve(settings)
    return [
        Unit(
            provider=NAME,
            key=f"{NAME}/{project.id}",
            label=f"{NAME} {project.id}",
            names=frozenset({project.id}),
            tags=dict(project.labels),
            scope=Scope(project.id, clients),
        )
        for project in found
    ]


def discover_unit(policy: Policy, unit: Unit, progress: Progress) -> Inventory:
    """Every target HTTPS and SSL proxy of one project, the SSL policies they use or need, and
    the backend services their URL maps route to."""
    scope = unit.scope
    if not isinstance(scope, Scope):
        raise TypeError(f"{unit.key}: not a unit the GCP provider listed")
    progress.update(unit.label, "reading proxies, SSL policies, URL maps, services")
    state = read_project(scope.clients, scope.project)
    progress.done(
        unit.label,
        f"{len(state.proxies)} target HTTPS proxies, {len(state.ssl_proxies)} target SSL "
        f"proxies, {len(state.ssl_policies)} SSL policies",
    )
    return project_inventory(policy, state)


def discover(policy: Policy, progress: Progress | None = None) -> Inventory:
    """Every project of the section read one after the other; the first that cannot be read
    fails the whole (the engine reads `units` instead, each failing alone)."""
    progress = progress or Silent()
    inventory = Inventory(providers=[NAME])
    for unit in units(policy):
        try:
            inventory.merge(discover_unit(policy, unit, progress))
        except DiscoveryError as exc:
            raise DiscoveryError(f"{unit.label}: {exc}") from None
    return inventory
