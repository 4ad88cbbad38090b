"""Which GCP projects to read: the ids `gcp.projects` names, the projects its globs match, and the
ACTIVE projects under `gcp.organization` and `gcp.folders`, minus `gcp.exclude`.

Plain ids are taken as they are, with no call. The rest goes through Resource Manager v3
(google-cloud-resource-manager, REST transport, the retries and timeouts of Compute's calls):

- Globs are matched (fnmatch, case-sensitive as ids are) against `projects.search` with no query:
  every project on which the credentials hold `resourcemanager.projects.get`.
- An organization or a folder is walked breadth first: `projects.list(parent)` for the projects
  directly in it and `folders.list(parent)` for the folders in it, each walked in turn. Both list
  direct children only, ACTIVE ones unless `showDeleted` is asked for, and are strongly consistent
  (`projects.search` with a `parent:` query is eventually consistent and also stops at direct
  children). They need `resourcemanager.projects.list` and `resourcemanager.folders.list` on the
  organization or folder.

A project that is not ACTIVE (DELETE_REQUESTED) is never read, whichever way it was found.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Any

from google.api_core.client_options import ClientOptions
from google.cloud import resourcemanager_v3

from remediate.errors import DiscoveryError
from remediate.providers.gcp.discover import FAILURES, call_options, credentials_for, failure
from remediate.providers.gcp.model import GCPSettings, is_glob
from remediate.timeouts import Timeouts
from remediate.units import nested

ENDPOINT_ENV = "REMEDIATE_GCP_RESOURCE_MANAGER_ENDPOINT"
SCOPES = ["https://www.googleapis.com/auth/cloud-platform.read-only"]
ACTIVE = resourcemanager_v3.Project.State.ACTIVE
FOLDER_ACTIVE = resourcemanager_v3.Folder.State.ACTIVE


@dataclass(frozen=True)
class Project:
    """A project to read, with its labels when Resource Manager listed it."""

    id: str
    labels: Mapping[str, str] = field(default_factory=dict)


def endpoint_of(settings: GCPSettings) -> str | None:
    """`REMEDIATE_GCP_RESOURCE_MANAGER_ENDPOINT`, else `gcp.resource_manager_endpoint`, else
    None for Google's own."""
    return os.environ.get(ENDPOINT_ENV) or settings.resource_manager_endpoint or None


class ResourceManager:
    """The projects and folders clients, pointed at one endpoint."""

    def __init__(self, settings: GCPSettings) -> None:
        endpoint = endpoint_of(settings)
        credentials = credentials_for(endpoint, SCOPES)
        options = ClientOptions(api_endpoint=endpoint) if endpoint else None
        kwargs: dict[str, Any] = {
            "credentials": credentials,
            "client_options": options,
            "transport": "rest",
        }
        self.endpoint = endpoint or "https://cloudresourcemanager.googleapis.com"
        self.timeouts = Timeouts.from_env()
        self.projects = resourcemanager_v3.ProjectsClient(**kwargs)
        self.folders = resourcemanager_v3.FoldersClient(**kwargs)

    def call(self, what: str, method: Callable[..., Iterable[Any]], request: Any) -> list[Any]:
        """Every item of a paged listing; a failure is one line saying what was being listed."""
        try:
            return list(method(request=request, **call_options(self.timeouts)))
        except FAILURES as exc:
            reason = failure(exc, f"the Resource Manager API at {self.endpoint}", self.timeouts)
            raise DiscoveryError(f"{what}: {reason}") from None

    def search(self) -> list[resourcemanager_v3.Project]:
        """Every ACTIVE project the credentials can see."""
        found = self.call(
            "gcp.projects: cannot search the projects to match its globs",
            self.projects.search_projects,
            resourcemanager_v3.SearchProjectsRequest(),
        )
        return [project for project in found if project.state == ACTIVE]

    def under(self, roots: Iterable[str]) -> Iterator[resourcemanager_v3.Project]:
        """The ACTIVE projects in each root (an organization or a folder) and in the folders
        nested in it, at any depth."""
        needs = (
            "(the credentials need resourcemanager.projects.list and "
            "resourcemanager.folders.list on it)"
        )

        def folders(parent: str) -> list[str]:
            found = self.call(
                f"cannot list the folders in {parent} {needs}",
                self.folders.list_folders,
                resourcemanager_v3.ListFoldersRequest(parent=parent),
            )
            return [folder.name for folder in found if folder.state == FOLDER_ACTIVE]

        for parent in nested(roots, folders):
            projects = self.call(
                f"cannot list the projects in {parent} {needs}",
                self.projects.list_projects,
                resourcemanager_v3.ListProjectsRequest(parent=parent),
            )
            yield from (project for project in projects if project.state == ACTIVE)


def resolve(settings: GCPSettings) -> list[Project]:
    """Every project the section names, sorted by id, without the excluded ones. Raises
    `DiscoveryError` when Resource Manager cannot list them or nothing is left."""
    if not (settings.projects or settings.organization or settings.folders):
        raise DiscoveryError(
            "gcp lists no project: set gcp.projects (ids or globs), gcp.organization or gcp.folders"
        )
    found: dict[str, Project] = {
        name: Project(name) for name in settings.projects if not is_glob(name)
    }
    if settings.listed():
        api = ResourceManager(settings)
        globs = [name for name in settings.projects if is_glob(name)]
        listed = [
            project
            for project in (api.search() if globs else ())
            if any(fnmatchcase(project.project_id, glob) for glob in globs)
        ]
        roots = [*([settings.organization] if settings.organization else []), *settings.folders]
        listed.extend(api.under(roots))
        for project in listed:
            found[project.project_id] = Project(project.project_id, dict(project.labels))
    kept = [
        found[name]
        for name in sorted(found)
        if not any(fnmatchcase(name, pattern) for pattern in settings.exclude)
    ]
    if not kept:
        raise DiscoveryError(
            "gcp: the projects, organization and folders of the section leave no ACTIVE "
            "project to read (after gcp.exclude)"
        )
    return kept
