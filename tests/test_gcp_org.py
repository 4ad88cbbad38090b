"""Many GCP projects: globs, an organization and nested folders listed through Resource Manager
v3, exclusions, DELETE_REQUESTED projects skipped, a project whose Compute API is disabled
reported as a failed unit while the others are planned and applied, shards over projects, and
bad input. Everything goes through the CLI and the real google-cloud-resource-manager and
google-cloud-compute clients (REST) against the local stand-in, checked by reading its state."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from google.api_core.client_options import ClientOptions
from google.api_core.exceptions import BadRequest, Forbidden
from google.auth.credentials import AnonymousCredentials
from google.cloud import compute_v1, resourcemanager_v3

from bench.proxy import Proxy
from remediate.providers.gcp.model import GCPSettings
from remediate.sandbox import resourcemanager
from remediate.sandbox.compute import ComputeServer, link
from remediate.sandbox.gcp import DISABLED_PROJECT, SandboxOrg, seed_organization
from remediate.sandbox.googleapi import discovery
from tests.conftest import Cli
from tests.faults import Faults, Kind

WritePolicy = Callable[..., Path]
ORG_PROJECTS = {"org-admin", "web-staging", "web-prod", "pay-prod"}
DOCUMENT = "cloudresourcemanager.v3"


@pytest.fixture(scope="module")
def server() -> Iterator[ComputeServer]:
    running = ComputeServer(operation_polls=1)
    yield running
    running.stop()


@pytest.fixture
def org(server: ComputeServer, monkeypatch: pytest.MonkeyPatch) -> SandboxOrg:
    """The sandbox organization, seeded afresh, with remediate pointed at both APIs."""
    server.reset()
    monkeypatch.setenv("REMEDIATE_GCP_ENDPOINT", server.url)
    monkeypatch.setenv("REMEDIATE_GCP_RESOURCE_MANAGER_ENDPOINT", server.url)
    return seed_organization(server)


def gcp_policy(write_policy: WritePolicy, section: str) -> Path:
    return write_policy(f'version: 1\ntls:\n  minimum: "1.2"\ngcp:\n{section}')


def planned_projects(cli: Cli, policy: Path, *extra: str) -> tuple[int, set[str], dict[str, Any]]:
    """The exit code, the projects whose resources the plan changes, and the JSON plan."""
    result = cli("plan", "-p", str(policy), "--format", "json", "--quiet", *extra)
    plan = json.loads(result.stdout)
    projects = {c["resource"].split("/projects/")[1].split("/")[0] for c in plan["changes"]}
    return result.code, projects, plan


def compute_calls(server: ComputeServer, project: str) -> list[tuple[str, str, int]]:
    return [r for r in server.requests if f"/compute/v1/projects/{project}/" in r[1]]


def owned(project: str) -> str:
    return link(project, "sslPolicies", "remediate-tls")


def test_an_organization_is_applied_across_nested_folders_and_a_disabled_api_is_one_failed_unit(
    cli: Cli, org: SandboxOrg, server: ComputeServer, write_policy: WritePolicy
) -> None:
    policy = gcp_policy(write_policy, f"  organization: {org.organization}\n")
    result = cli("apply", "-p", str(policy), "--auto-approve", "--no-verify", "--quiet")
    # The project without the Compute API is reported in one line; the others are applied: 1.
    assert result.code == 1, result.stdout + result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert errors == [
        f"error: gcp {DISABLED_PROJECT}: 403 compute.googleapis.com is not enabled in this "
        "project (SERVICE_DISABLED): enable it, or leave the project out with gcp.exclude"
    ]
    for project in ORG_PROJECTS:
        assert server.get(org.projects[project])["sslPolicy"] == owned(project), project
    # Not in the organization, or DELETE_REQUESTED: never read, never changed.
    for project in (org.outside, org.deleted):
        assert compute_calls(server, project) == [], project
    assert not any(owned(org.deleted) == found for found in server.links())

    code, projects, plan = planned_projects(cli, policy)
    assert code == 1 and projects == set()  # applied: nothing left but the unreadable project
    assert plan["failed_units"] == [
        {
            "provider": "gcp",
            "unit": f"gcp {DISABLED_PROJECT}",
            "reason": errors[0].removeprefix(f"error: gcp {DISABLED_PROJECT}: "),
        }
    ]


def test_globs_match_the_active_projects_the_credentials_can_see(
    cli: Cli, org: SandboxOrg, server: ComputeServer, write_policy: WritePolicy
) -> None:
    """`web-*` would match the DELETE_REQUESTED `web-old` too; search answers it, remediate
    skips it. The stand-in pages search by two, so a client that stops at the first page
    misses projects."""
    policy = gcp_policy(write_policy, "  projects: ['web-*', '*-admin', partner-web]\n")
    code, projects, _ = planned_projects(cli, policy)
    assert code == 0
    assert projects == {"web-prod", "web-staging", "org-admin", org.outside}
    searches = [r for r in server.requests if r[1] == "/v3/projects:search"]
    assert len(searches) >= 3, searches
    assert compute_calls(server, org.deleted) == []


def test_plain_ids_are_read_without_resource_manager(
    cli: Cli, org: SandboxOrg, server: ComputeServer, write_policy: WritePolicy
) -> None:
    policy = gcp_policy(write_policy, "  projects: [web-prod, pay-prod]\n")
    code, projects, _ = planned_projects(cli, policy)
    assert (code, projects) == (0, {"web-prod", "pay-prod"})
    assert [r for r in server.requests if r[1].startswith("/v3/")] == []


def test_folders_are_walked_through_nested_folders(
    cli: Cli, org: SandboxOrg, server: ComputeServer, write_policy: WritePolicy
) -> None:
    bare = org.folders["workloads"].removeprefix("folders/")
    policy = gcp_policy(write_policy, f"  folders: [{bare}]\n")  # a bare number, unquoted
    code, projects, _ = planned_projects(cli, policy)
    assert (code, projects) == (0, {"web-staging", "web-prod", "pay-prod"})
    # web-prod and pay-prod are in workloads/prod: found only by walking the nested folder.


def test_exclude_takes_projects_out_by_id_and_glob(
    cli: Cli, org: SandboxOrg, write_policy: WritePolicy
) -> None:
    policy = gcp_policy(
        write_policy,
        f"  organization: '{org.organization.removeprefix('organizations/')}'\n"
        f"  exclude: [{DISABLED_PROJECT}, 'pay-*']\n",
    )
    code, projects, plan = planned_projects(cli, policy)
    assert code == 0, plan.get("failed_units")
    assert projects == {"org-admin", "web-staging", "web-prod"}


def test_project_labels_are_unit_tags_and_ids_unit_names(
    cli: Cli, org: SandboxOrg, write_policy: WritePolicy
) -> None:
    policy = gcp_policy(write_policy, f"  organization: {org.organization}\n")
    code, projects, _ = planned_projects(cli, policy, "--account-tag", "env=prod")
    assert (code, projects) == (0, {"web-prod", "pay-prod"})
    code, projects, _ = planned_projects(cli, policy, "--account", "web-staging")
    assert (code, projects) == (0, {"web-staging"})


def test_shards_split_the_projects_and_together_cover_them_once(
    cli: Cli, org: SandboxOrg, write_policy: WritePolicy
) -> None:
    policy = gcp_policy(
        write_policy, f"  organization: {org.organization}\n  exclude: [{DISABLED_PROJECT}]\n"
    )
    _, everything, whole = planned_projects(cli, policy)
    assert everything == ORG_PROJECTS
    seen: list[str] = []
    covered: list[set[str]] = []
    for index in range(3):
        code, projects, plan = planned_projects(cli, policy, "--shard", f"{index}/3")
        assert code == 0
        covered.append(projects)
        seen.extend(c["resource"] for c in plan["changes"])
    assert sorted(seen) == sorted(c["resource"] for c in whole["changes"])
    assert sum(len(projects) for projects in covered) == len(ORG_PROJECTS)  # each exactly once
    assert sum(1 for projects in covered if projects) >= 2  # split, not all in one shard


def test_resource_manager_failures_are_retried_like_computes(
    cli: Cli,
    org: SandboxOrg,
    server: ComputeServer,
    write_policy: WritePolicy,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """503s and resets on a third of the Resource Manager calls: the listing is retried within
    its budget and comes out whole."""
    faults = Faults("gcp", Kind.UNAVAILABLE, rate=0.35, resets=0.1, seed=7)
    policy = gcp_policy(
        write_policy, f"  organization: {org.organization}\n  exclude: [{DISABLED_PROJECT}]\n"
    )
    with Proxy(server.url, intercept=faults) as proxy:
        monkeypatch.setenv("REMEDIATE_GCP_RESOURCE_MANAGER_ENDPOINT", proxy.url)
        code, projects, _ = planned_projects(cli, policy)
    assert faults.injected[Kind.UNAVAILABLE.value] > 0, faults.injected
    assert (code, projects) == (0, ORG_PROJECTS)


@pytest.mark.parametrize(
    ("section", "expected"),
    [
        ("  organization: acme\n", ":5: gcp.organization: value error, 'acme' is not "),
        ("  folders: [folders/4x]\n", ":5: gcp.folders[0]: value error, 'folders/4x' is not "),
        ("  projects: ['Web_*']\n", ":5: gcp.projects[0]: value error, 'Web_*' is not a glob"),
        ("  exclude: ['a b']\n", ":5: gcp.exclude[0]: value error, 'a b' is not a project id"),
        (
            "  folders: [folders/999]\n",
            "error: cannot list the projects in folders/999 (the credentials need "
            "resourcemanager.projects.list and resourcemanager.folders.list on it): 403 The "
            "caller does not have permission",
        ),
        (
            "  organization: organizations/100000000001\n  exclude: ['*']\n",
            "error: gcp: the projects, organization and folders of the section leave no ACTIVE "
            "project to read",
        ),
        ("  ssl_policy_name: remediate-tls\n", "error: gcp lists no project: set gcp.projects"),
    ],
)
def test_bad_input_is_one_line_and_reads_no_project(
    cli: Cli,
    org: SandboxOrg,
    server: ComputeServer,
    write_policy: WritePolicy,
    section: str,
    expected: str,
) -> None:
    assert org.organization == "organizations/100000000001"
    result = cli("plan", "-p", str(gcp_policy(write_policy, section)), "--quiet")
    assert result.code != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and expected in lines[0], result.stderr
    assert [r for r in server.requests if r[1].startswith("/compute/")] == []


def test_permissions_name_what_resource_manager_needs(cli: Cli) -> None:
    role = cli("permissions", "--provider", "gcp").stdout
    for permission in (
        "resourcemanager.projects.get",
        "resourcemanager.projects.list",
        "resourcemanager.folders.list",
    ):
        assert f"- {permission}\n" in role


# -- the stand-in against the cloudresourcemanager.v3 discovery document --


def _clients(server: ComputeServer) -> tuple[Any, Any]:
    kwargs: dict[str, Any] = {
        "credentials": AnonymousCredentials(),  # type: ignore[no-untyped-call]
        "client_options": ClientOptions(api_endpoint=server.url),
        "transport": "rest",
    }
    return resourcemanager_v3.ProjectsClient(**kwargs), resourcemanager_v3.FoldersClient(**kwargs)


def test_the_stand_in_serves_the_documents_methods_and_enums(org: SandboxOrg) -> None:
    document = discovery(DOCUMENT)
    for route in resourcemanager.routes():
        spec = document["resources"][route.resource]["methods"][route.method]
        assert route.http_method == spec["httpMethod"]
        assert route.pattern.match(
            spec["flatPath"].removeprefix("v3/").replace("{", "").replace("}", "")
        )
    states = document["schemas"]["Project"]["properties"]["state"]["enum"]
    assert {"ACTIVE", "DELETE_REQUESTED"} <= set(states)
    # The client's own enum agrees with the document's order (what enum-encoding=int relies on).
    assert [resourcemanager_v3.Project.State(i).name for i in range(len(states))] == states
    # Required parameters come from the document: projects.list says its parent is.
    list_route = next(
        r for r in resourcemanager.routes() if (r.resource, r.method) == ("projects", "list")
    )
    assert list_route.required() == ["parent"]
    server_rm = resourcemanager.ResourceManager()
    with pytest.raises(Exception, match="enum"):
        server_rm.project("gone-project", server_rm.organization("x"), state="GONE")


def test_lists_page_and_tokens_belong_to_their_request(
    org: SandboxOrg, server: ComputeServer
) -> None:
    projects, folders = _clients(server)
    children = projects.list_projects(
        request=resourcemanager_v3.ListProjectsRequest(parent=org.folders["prod"], page_size=1)
    )
    assert sorted(p.project_id for p in children) == ["pay-prod", "web-prod"]
    shown = projects.list_projects(
        request={"parent": org.folders["workloads"], "show_deleted": True}
    )
    assert {(p.project_id, p.state.name) for p in shown} == {
        ("web-staging", "ACTIVE"),
        ("web-old", "DELETE_REQUESTED"),
    }
    first = next(iter(projects.search_projects(request={"page_size": 1}).pages))
    assert first.next_page_token
    with pytest.raises(BadRequest, match="Invalid page token"):
        list(
            folders.list_folders(
                request={"parent": org.organization, "page_token": first.next_page_token}
            )
        )
    with pytest.raises(BadRequest, match="Invalid page token"):
        list(projects.list_projects(request={"parent": org.organization, "page_token": "garbage"}))
    with pytest.raises(BadRequest, match="parent is required"):
        list(projects.list_projects(request={}))
    with pytest.raises(Forbidden, match="The caller does not have permission"):
        list(folders.list_folders(parent="folders/999"))
    with pytest.raises(BadRequest, match="unknown field"):
        list(projects.search_projects(query="color:red"))
    assert {p.project_id for p in projects.search_projects(query="labels.env:prod")} == {
        "web-prod",
        "pay-prod",
    }


def test_raw_requests_are_checked_against_the_document(
    org: SandboxOrg, server: ComputeServer
) -> None:
    base = f"{server.url}/v3/projects"
    parent = {"parent": org.folders["prod"]}
    for query in (
        {**parent, "color": "red"},
        {**parent, "showDeleted": "maybe"},
        {**parent, "pageSize": "x"},
    ):
        answer = requests.get(base, params=query, timeout=10)
        assert answer.status_code == 400, (query, answer.text)
        assert answer.json()["error"]["status"] == "INVALID_ARGUMENT"
    named = requests.get(base, params=parent, timeout=10).json()
    numbered = requests.get(base, params={**parent, "$alt": "json;enum-encoding=int"}, timeout=10)
    assert {p["state"] for p in named["projects"]} == {"ACTIVE"}
    assert {p["state"] for p in numbered.json()["projects"]} == {1}
    assert set(named["projects"][0]) <= set(discovery(DOCUMENT)["schemas"]["Project"]["properties"])


def test_a_disabled_compute_api_answers_as_google_does(
    org: SandboxOrg, server: ComputeServer
) -> None:
    client = compute_v1.TargetHttpsProxiesClient(
        credentials=AnonymousCredentials(),  # type: ignore[no-untyped-call]
        client_options=ClientOptions(api_endpoint=server.url),
    )
    with pytest.raises(Forbidden) as caught:
        list(client.aggregated_list(project=DISABLED_PROJECT))
    number = server.resource_manager.number(DISABLED_PROJECT)
    assert caught.value.reason == "SERVICE_DISABLED"
    assert caught.value.metadata == {
        "service": "compute.googleapis.com",
        "consumer": f"projects/{number}",
    }
    assert caught.value.errors[0]["reason"] == "accessNotConfigured"
    assert f"has not been used in project {number}" in str(caught.value.message)


def test_project_settings_keep_their_names() -> None:
    settings = GCPSettings.model_validate({"organization": 123, "folders": ["folders/4", 5]})
    assert (settings.organization, settings.folders) == (
        "organizations/123",
        ["folders/4", "folders/5"],
    )
    assert settings.listed()
    assert not GCPSettings.model_validate({"projects": ["web-prod"]}).listed()
