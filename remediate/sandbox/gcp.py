"""The demo's GCP world: the local Compute server seeded with a project of weak load balancers,
and a sandbox organization in its Resource Manager API."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from remediate.sandbox.compute import ComputeServer

DEMO_PROJECT = "demo-shop"
DISABLED_PROJECT = "batch-jobs"
"""The organization's project whose Compute API is not enabled."""


def seed_estate(server: ComputeServer, project: str = DEMO_PROJECT) -> None:
    """A project the way a team's Terraform leaves it.

    - storefront (global): no SSL policy, so Google's default (TLS 1.0)
    - partners (global): a shared policy `partner-compat` on TLS 1.0, which is not remediate's
    - checkout (europe-west1): a regional proxy with no SSL policy
    - its URL map routes /rpc to a backend service that speaks HTTP/2 to its backends (502 risk)
    - mqtt (global target SSL proxy, an SSL proxy load balancer): no SSL policy
    """
    web = server.backend_service(project, "storefront-web")
    web_map = server.url_map(project, "storefront", web)
    server.https_proxy(project, "storefront", web_map)
    partner_policy = server.ssl_policy(project, "partner-compat", "TLS_1_0", "COMPATIBLE")
    server.https_proxy(project, "partners", web_map, partner_policy)
    region = "europe-west1"
    checkout = server.backend_service(project, "checkout-web", region=region)
    rpc = server.backend_service(project, "checkout-rpc", protocol="HTTP2", region=region)
    checkout_map = server.url_map(
        project,
        "checkout",
        checkout,
        region=region,
        hostRules=[{"hosts": ["*"], "pathMatcher": "checkout"}],
        pathMatchers=[
            {
                "name": "checkout",
                "defaultService": checkout,
                "pathRules": [{"paths": ["/rpc/*"], "service": rpc}],
            }
        ],
    )
    server.https_proxy(project, "checkout", checkout_map, region=region)
    broker = server.backend_service(project, "mqtt-broker", protocol="SSL")
    server.ssl_proxy(project, "mqtt", broker)


@dataclass
class SandboxOrg:
    """Handles to what `seed_organization` created."""

    organization: str = ""
    folders: dict[str, str] = field(default_factory=dict)
    """Display name -> `folders/N`."""
    projects: dict[str, str] = field(default_factory=dict)
    """ACTIVE project id -> the selfLink of its weak target HTTPS proxy (none for the project
    whose Compute API is disabled)."""
    deleted: str = ""
    """The DELETE_REQUESTED project (it has a weak proxy too, which must never be read)."""
    outside: str = ""
    """An ACTIVE project of another organization, visible to search, with a weak proxy."""


def weak_proxy(server: ComputeServer, project: str, name: str = "web") -> str:
    """A global target HTTPS proxy with no SSL policy (Google's default accepts TLS 1.0)."""
    service = server.backend_service(project, name)
    return server.https_proxy(project, name, server.url_map(project, name, service))


def seed_organization(server: ComputeServer) -> SandboxOrg:
    """An organization whose projects sit in nested folders, each with a weak proxy:

    - org-admin: directly in the organization
    - workloads/web-staging, workloads/web-old (DELETE_REQUESTED)
    - workloads/prod/web-prod (labels env=prod, team=web), workloads/prod/pay-prod (env=prod)
    - legacy/batch-jobs: the Compute API is not enabled (every Compute call answers 403)
    - partner-web: another organization's project the credentials can also see
    """
    rm = server.resource_manager
    sandbox = SandboxOrg(organization=rm.organization("example.com"))
    workloads = rm.folder(sandbox.organization, "workloads")
    prod = rm.folder(workloads, "prod")
    legacy = rm.folder(sandbox.organization, "legacy")
    sandbox.folders = {"workloads": workloads, "prod": prod, "legacy": legacy}
    placed = {
        "org-admin": (sandbox.organization, {}),
        "web-staging": (workloads, {"env": "staging", "team": "web"}),
        "web-prod": (prod, {"env": "prod", "team": "web"}),
        "pay-prod": (prod, {"env": "prod", "team": "pay"}),
    }
    for project, (parent, labels) in placed.items():
        rm.project(project, parent, labels=labels)
        sandbox.projects[project] = weak_proxy(server, project)
    rm.project(DISABLED_PROJECT, legacy, labels={"team": "batch"})
    sandbox.deleted = "web-old"
    rm.project(sandbox.deleted, workloads, state="DELETE_REQUESTED")
    sandbox.outside = "partner-web"
    rm.project(sandbox.outside, rm.organization("partner.example"))
    for project in (sandbox.deleted, sandbox.outside):
        weak_proxy(server, project)
    server.disable_compute(DISABLED_PROJECT)
    return sandbox


@contextmanager
def gcp_world(workdir: Path) -> Iterator[dict[str, Any]]:
    """The local Compute server with one demo project named by id and the projects of the
    sandbox organization (one of them without the Compute API); the policy points at both APIs
    by `gcp.endpoint` and `gcp.resource_manager_endpoint`."""
    server = ComputeServer()
    try:
        seed_estate(server)
        sandbox = seed_organization(server)
        yield {
            "gcp": {
                "projects": [DEMO_PROJECT],
                "organization": sandbox.organization,
                "endpoint": server.url,
                "resource_manager_endpoint": server.url,
            }
        }
    finally:
        server.stop()
