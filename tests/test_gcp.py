"""GCP load balancers end to end: the CLI and the real google-cloud-compute client (REST) against
the local Compute server, checked by reading the server's state back."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from google.api_core.client_options import ClientOptions
from google.api_core.exceptions import BadRequest, NotFound
from google.auth.credentials import AnonymousCredentials
from google.cloud import compute_v1

from remediate.policy import parse
from remediate.providers.gcp.rules import owned_policy_verdict, proxy_verdict
from remediate.sandbox.compute import ComputeServer, link
from tests.conftest import Cli

SHOP, API = "shop-prod", "api-prod"
POLICY = f"""
version: 1
tls:
  minimum: "1.2"
gcp:
  projects: [{SHOP}, {API}]
"""


@pytest.fixture(scope="module")
def compute_server() -> Iterator[ComputeServer]:
    server = ComputeServer(operation_polls=3)
    yield server
    server.stop()


@pytest.fixture
def compute(compute_server: ComputeServer, monkeypatch: pytest.MonkeyPatch) -> ComputeServer:
    """The local Compute server, emptied, with remediate pointed at it."""
    compute_server.reset()
    monkeypatch.setenv("REMEDIATE_GCP_ENDPOINT", compute_server.url)
    return compute_server


@dataclass
class Estate:
    web: str  # global, no SSL policy
    legacy_a: str  # global, on the shared weak policy "legacy-compat"
    legacy_b: str  # global, on the shared weak policy too
    legacy_policy: str
    eu: str  # regional (europe-west1), no SSL policy
    strict: str  # regional (us-central1), on a compliant policy that is not remediate's
    api: str  # global in the API project, on remediate-tls that drifted to TLS 1.0, COMPATIBLE
    api_policy: str
    grpc_service: str


def seed_estate(server: ComputeServer) -> Estate:
    web_service = server.backend_service(SHOP, "web")
    web_map = server.url_map(SHOP, "web", web_service)
    legacy = server.ssl_policy(SHOP, "legacy-compat", "TLS_1_0", "COMPATIBLE")
    eu_service = server.backend_service(SHOP, "web-eu", region="europe-west1")
    eu_map = server.url_map(SHOP, "web-eu", eu_service, region="europe-west1")
    us_service = server.backend_service(SHOP, "web-us", timeout_sec=3600, region="us-central1")
    us_map = server.url_map(SHOP, "web-us", us_service, region="us-central1")
    strict_policy = server.ssl_policy(SHOP, "strict", "TLS_1_2", "RESTRICTED", "us-central1")
    grpc = server.backend_service(API, "grpc", protocol="HTTP2")
    api_map = server.url_map(API, "api", server.backend_service(API, "rest"))
    server.test_hooks.touch(
        api_map,
        pathMatchers=[{"name": "rpc", "defaultService": grpc}],
        hostRules=[{"hosts": ["rpc.example.com"], "pathMatcher": "rpc"}],
    )
    api_policy = server.ssl_policy(API, "remediate-tls", "TLS_1_0", "COMPATIBLE")
    return Estate(
        web=server.https_proxy(SHOP, "web", web_map),
        legacy_a=server.https_proxy(SHOP, "legacy-a", web_map, legacy),
        legacy_b=server.https_proxy(SHOP, "legacy-b", web_map, legacy),
        legacy_policy=legacy,
        eu=server.https_proxy(SHOP, "web-eu", eu_map, region="europe-west1"),
        strict=server.https_proxy(SHOP, "web-us", us_map, strict_policy, region="us-central1"),
        api=server.https_proxy(API, "api", api_map, api_policy),
        api_policy=api_policy,
        grpc_service=grpc,
    )


@pytest.fixture
def policy_file(write_policy: Callable[[str], Path]) -> Path:
    return write_policy(POLICY)


def test_plan_shows_every_weak_proxy_and_the_policies_they_need(
    compute: ComputeServer, cli: Cli, policy_file: Path
) -> None:
    estate = seed_estate(compute)
    result = cli("plan", "-p", str(policy_file), "--only", "gcp", "--format", "json", "--quiet")
    assert result.code == 0, result.stderr
    plan = json.loads(result.stdout)
    changes = {(c["resource"], c["attribute"]): c for c in plan["changes"]}
    global_policy = link(SHOP, "sslPolicies", "remediate-tls")
    eu_policy = link(SHOP, "sslPolicies", "remediate-tls", "europe-west1")
    assert set(changes) == {
        (global_policy, "ssl_policy"),
        (eu_policy, "ssl_policy"),
        (estate.web, "ssl_policy"),
        (estate.legacy_a, "ssl_policy"),
        (estate.legacy_b, "ssl_policy"),
        (estate.eu, "ssl_policy"),
        (estate.api_policy, "minTlsVersion"),
        (estate.api_policy, "profile"),
    }
    created = changes[(eu_policy, "ssl_policy")]
    assert created["before"] is None
    assert created["after"] == {
        "name": "remediate-tls",
        "minTlsVersion": "TLS_1_2",
        "profile": "MODERN",
    }
    assert changes[(estate.eu, "ssl_policy")]["after"] == eu_policy
    assert changes[(estate.legacy_a, "ssl_policy")]["before"] == estate.legacy_policy
    assert all(c["executor"] == "gcp-api" for c in plan["changes"])
    order = [c["resource"] for c in plan["changes"]]
    assert order.index(global_policy) < order.index(estate.web)
    assert order.index(eu_policy) < order.index(estate.eu)
    # The shared weak policy is not remediate's: its proxies move, it is never edited.
    assert not any(c["resource"] == estate.legacy_policy for c in plan["changes"])
    findings = {f["resource"]: f["message"] for f in plan["findings"]}
    assert "502" in findings[estate.grpc_service]


def test_apply_fixes_the_estate_and_the_second_plan_is_clean(
    compute: ComputeServer, cli: Cli, policy_file: Path
) -> None:
    estate = seed_estate(compute)
    legacy_before = compute.get(estate.legacy_policy)
    strict_before = compute.get(estate.strict)

    result = cli("apply", "-p", str(policy_file), "--only", "gcp", "--auto-approve", "--quiet")
    assert result.code == 0, result.stdout + result.stderr
    assert "Apply: 8 applied, 0 failed" in result.stdout

    global_policy = compute.get(link(SHOP, "sslPolicies", "remediate-tls"))
    eu_policy = compute.get(link(SHOP, "sslPolicies", "remediate-tls", "europe-west1"))
    for created in (global_policy, eu_policy):
        assert (created["minTlsVersion"], created["profile"]) == ("TLS_1_2", "MODERN")
    assert eu_policy["region"].endswith("/regions/europe-west1")
    for proxy in (estate.web, estate.legacy_a, estate.legacy_b):
        assert compute.get(proxy)["sslPolicy"] == global_policy["selfLink"]
    assert compute.get(estate.eu)["sslPolicy"] == eu_policy["selfLink"]
    corrected = compute.get(estate.api_policy)
    assert (corrected["minTlsVersion"], corrected["profile"]) == ("TLS_1_2", "MODERN")
    assert compute.get(estate.legacy_policy) == legacy_before
    assert compute.get(estate.strict) == strict_before

    again = cli("plan", "-p", str(policy_file), "--detailed-exitcode", "--quiet")
    assert again.code == 0, again.stdout + again.stderr
    assert "No changes." in again.stdout
    assert "grpc" in again.stdout  # the 502 risk is still reported: it needs a person


def test_rollback_restores_every_proxy_and_policy(
    compute: ComputeServer, cli: Cli, policy_file: Path
) -> None:
    estate = seed_estate(compute)
    before = {self_link: compute.get(self_link) for self_link in compute.links()}
    applied = cli("apply", "-p", str(policy_file), "--auto-approve", "--quiet")
    assert applied.code == 0, applied.stdout + applied.stderr
    run_id = re.search(r"\(run (\S+)\)", applied.stdout).group(1)  # type: ignore[union-attr]

    result = cli("rollback", run_id, "-p", str(policy_file), "--auto-approve", "--quiet")
    assert result.code == 0, result.stdout + result.stderr
    assert compute.links() == sorted(before)  # remediate's policies are deleted again
    for self_link, resource in before.items():
        now = compute.get(self_link)
        assert now.get("sslPolicy") == resource.get("sslPolicy"), self_link
        assert now.get("minTlsVersion") == resource.get("minTlsVersion"), self_link
        assert now.get("profile") == resource.get("profile"), self_link
    assert compute.get(estate.eu).get("sslPolicy") is None


def test_a_stale_fingerprint_is_re_read_and_retried_once(
    compute: ComputeServer, cli: Cli, policy_file: Path, tmp_path: Path
) -> None:
    estate = seed_estate(compute)
    saved = tmp_path / "plan.json"
    assert cli("plan", "-p", str(policy_file), "--out", str(saved), "--quiet").code == 0
    # Someone edits the regional proxy between plan and apply: its fingerprint changes, the
    # settings remediate planned from do not.
    compute.test_hooks.touch(estate.eu, description="edited in the console")
    compute.test_hooks.touch(estate.api_policy, description="edited in the console")

    result = cli("apply", str(saved), "-p", str(policy_file), "--quiet")
    assert result.code == 0, result.stdout + result.stderr
    proxy = compute.get(estate.eu)
    assert proxy["sslPolicy"] == link(SHOP, "sslPolicies", "remediate-tls", "europe-west1")
    assert proxy["description"] == "edited in the console"
    patches = [status for method, path, status in compute.requests if method == "PATCH"]
    assert patches.count(412) == 2  # the regional proxy and the drifted policy, once each
    assert patches.count(200) == 2
    corrected = compute.get(estate.api_policy)
    assert (corrected["minTlsVersion"], corrected["profile"]) == ("TLS_1_2", "MODERN")
    assert corrected["description"] == "edited in the console"


def test_a_plan_whose_resource_moved_is_refused_whole(
    compute: ComputeServer, cli: Cli, policy_file: Path, tmp_path: Path
) -> None:
    estate = seed_estate(compute)
    saved = tmp_path / "plan.json"
    assert cli("plan", "-p", str(policy_file), "--out", str(saved), "--quiet").code == 0
    compute.test_hooks.touch(estate.web, sslPolicy=estate.legacy_policy)

    result = cli("apply", str(saved), "-p", str(policy_file), "--quiet")
    assert result.code == 1
    assert "plan is stale" in result.stderr and estate.web in result.stderr
    assert compute.get(estate.eu).get("sslPolicy") is None
    assert compute.get(estate.api_policy)["minTlsVersion"] == "TLS_1_0"


def test_a_failed_operation_is_reported_and_the_rest_applies(
    compute: ComputeServer, cli: Cli, policy_file: Path
) -> None:
    estate = seed_estate(compute)
    compute.test_hooks.fail_next(estate.eu, "The backend of this proxy is being updated")

    result = cli("apply", "-p", str(policy_file), "--only", "gcp", "--auto-approve", "--quiet")
    assert result.code == 3, result.stdout + result.stderr
    failed = [line for line in result.stdout.splitlines() if "✗" in line]
    assert len(failed) == 1
    assert "web-eu: ssl_policy: operation operation-" in failed[0]
    assert "failed: RESOURCE_NOT_READY: The backend of this proxy is being updated" in failed[0]
    assert "Traceback" not in result.stdout + result.stderr
    assert compute.get(estate.eu).get("sslPolicy") is None
    assert compute.get(estate.web)["sslPolicy"] == link(SHOP, "sslPolicies", "remediate-tls")


def test_a_failed_policy_creation_blocks_the_attachments_that_need_it(
    compute: ComputeServer, cli: Cli, policy_file: Path
) -> None:
    estate = seed_estate(compute)
    eu_policy = link(SHOP, "sslPolicies", "remediate-tls", "europe-west1")
    compute.test_hooks.fail_next(eu_policy, "Quota 'SSL_POLICIES' exceeded", code="QUOTA_EXCEEDED")

    result = cli("apply", "-p", str(policy_file), "--only", "gcp", "--auto-approve", "--quiet")
    assert result.code == 3
    assert "QUOTA_EXCEEDED: Quota 'SSL_POLICIES' exceeded" in result.stdout
    assert f"not attached: SSL policy {eu_policy} was not written" in result.stdout
    assert eu_policy not in compute.links()
    assert compute.get(estate.eu).get("sslPolicy") is None


def test_the_endpoint_can_come_from_the_policy_file(
    compute: ComputeServer,
    cli: Cli,
    write_policy: Callable[[str], Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seed_estate(compute)
    monkeypatch.delenv("REMEDIATE_GCP_ENDPOINT")
    path = write_policy(POLICY + f"  endpoint: {compute.url}\n")
    result = cli("plan", "-p", str(path), "--quiet")
    assert result.code == 0, result.stderr
    assert "Plan: 8 changes to 7 resources" in result.stdout


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def test_an_unreachable_endpoint_is_one_clear_line_per_project(
    cli: Cli, policy_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each project is a unit that fails alone, with its one-line reason."""
    endpoint = f"http://127.0.0.1:{_closed_port()}"
    monkeypatch.setenv("REMEDIATE_GCP_ENDPOINT", endpoint)
    result = cli("plan", "-p", str(policy_file), "--quiet")
    assert result.code == 1
    assert result.stderr.strip().splitlines() == [
        *(
            f"error: gcp {project}: cannot reach the Compute API at {endpoint} (ConnectionError)"
            for project in (API, SHOP)
        ),
        "2 units could not be read; the report covers the others",
    ]


def test_missing_application_default_credentials_is_one_clear_error(
    policy_file: Path, tmp_path: Path
) -> None:
    # A fresh process, as a user runs it: google-auth reads NO_GCE_CHECK when it is imported.
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("REMEDIATE_GCP_ENDPOINT", "GOOGLE_APPLICATION_CREDENTIALS")
    }
    env.update(
        CLOUDSDK_CONFIG=str(tmp_path / "gcloud"),  # no gcloud application-default login
        NO_GCE_CHECK="true",  # and no metadata server to ask
        REMEDIATE_STATE_DIR=str(tmp_path / "state"),
    )
    result = subprocess.run(
        [sys.executable, "-m", "remediate", "plan", "-p", str(policy_file), "--quiet"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert result.returncode == 1
    assert result.stderr.startswith("error: no Google Cloud credentials found")
    assert len(result.stderr.strip().splitlines()) == 1


def test_plain_http_is_refused_off_loopback(
    cli: Cli, policy_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REMEDIATE_GCP_ENDPOINT", "http://compute.internal.example:8080")
    result = cli("plan", "-p", str(policy_file), "--quiet")
    assert result.code == 1
    assert "plain http is only allowed on loopback" in result.stderr


def test_an_unknown_project_is_one_clear_error_and_the_others_are_planned(
    compute: ComputeServer, cli: Cli, policy_file: Path
) -> None:
    service = compute.backend_service(SHOP, "web")
    proxy = compute.https_proxy(SHOP, "web", compute.url_map(SHOP, "web", service))
    result = cli("plan", "-p", str(policy_file), "--format", "json", "--quiet")
    assert result.code == 1
    assert result.stderr.strip().splitlines() == [
        f"error: gcp {API}: 404 The resource 'projects/{API}' was not found",
        "1 units could not be read; the report covers the others",
    ]
    assert proxy in {change["resource"] for change in json.loads(result.stdout)["changes"]}


# -- the local server, through the real client --


def _client(server: ComputeServer, kind: type) -> object:
    return kind(
        credentials=AnonymousCredentials(),  # type: ignore[no-untyped-call]
        client_options=ClientOptions(api_endpoint=server.url),
    )


def test_server_pages_lists_and_warns_on_empty_scopes(compute: ComputeServer) -> None:
    names = [f"p{index:02d}" for index in range(7)]
    for name in names:
        compute.ssl_policy(SHOP, name)
    compute.ssl_policy(SHOP, "regional", region="us-east1")
    client: compute_v1.SslPoliciesClient = _client(compute, compute_v1.SslPoliciesClient)  # type: ignore[assignment]
    pager = client.list(request=compute_v1.ListSslPoliciesRequest(project=SHOP, max_results=3))
    assert [p.name for p in pager] == names
    lists = [path for method, path, _ in compute.requests if path.endswith("/global/sslPolicies")]
    assert len(lists) == 3
    pages = list(
        client.aggregated_list(
            request=compute_v1.AggregatedListSslPoliciesRequest(project=SHOP, max_results=5)
        ).pages
    )
    assert len(pages) == 2
    scopes = {scope: scoped for page in pages for scope, scoped in page.items.items()}
    assert [p.name for p in scopes["regions/us-east1"].ssl_policies] == ["regional"]
    assert scopes["regions/europe-west1"].warning.code == "NO_RESULTS_ON_PAGE"
    assert not scopes["regions/europe-west1"].ssl_policies


def test_server_rejects_what_the_real_api_rejects(compute: ComputeServer) -> None:
    compute.add_project(SHOP)
    client: compute_v1.SslPoliciesClient = _client(compute, compute_v1.SslPoliciesClient)  # type: ignore[assignment]
    with pytest.raises(NotFound):
        client.get(project=SHOP, ssl_policy="missing")
    with pytest.raises(BadRequest, match="TLS_9_9"):
        client.insert_unary(
            project=SHOP,
            ssl_policy_resource=compute_v1.SslPolicy(name="bad", min_tls_version="TLS_9_9"),
        )
    # Fields the client cannot even express: an unknown name, a wrong type.
    url = f"{compute.url}/compute/v1/projects/{SHOP}/global/sslPolicies"
    unknown = requests.post(url, json={"name": "x", "minTls": "TLS_1_2"}, timeout=10)
    assert unknown.status_code == 400
    assert "Unknown name 'minTls'" in unknown.json()["error"]["message"]
    wrong = requests.post(url, json={"name": "x", "customFeatures": "TLS_AES"}, timeout=10)
    assert wrong.status_code == 400
    assert compute.links() == []


# -- the shared rules, as the Pulumi library calls them --


def test_rules_follow_the_tls_minimum() -> None:
    policy = parse('tls:\n  minimum: "1.3"\ngcp:\n  ssl_policy_name: edge-tls\n')
    proxy = link("p", "targetHttpsProxies", "web", "us-east1")
    owned = link("p", "sslPolicies", "edge-tls", "us-east1")
    facts = {
        link("p", "sslPolicies", "modern", "us-east1"): {
            "name": "modern",
            "min_tls_version": "TLS_1_2",
        }
    }
    verdict = proxy_verdict(
        proxy, {"ssl_policy": link("p", "sslPolicies", "modern", "us-east1")}, facts, policy
    )
    assert [(c.attribute, c.after) for c in verdict.changes] == [("ssl_policy", owned)]
    assert "accepts TLS 1.2" in verdict.changes[0].reason
    created = owned_policy_verdict(
        owned, {"exists": False}, {proxy: {"ssl_policy": None}}, {}, policy
    )
    # The API takes TLS_1_3 only with the RESTRICTED profile, whatever gcp.profile says.
    assert created.changes[0].after == {
        "name": "edge-tls",
        "minTlsVersion": "TLS_1_3",
        "profile": "RESTRICTED",
    }
    strict = link("p", "sslPolicies", "strict", "us-east1")
    compliant = {proxy: {"ssl_policy": strict}}
    strict_facts = {strict: {"name": "strict", "min_tls_version": "TLS_1_3"}}
    assert not owned_policy_verdict(
        owned, {"exists": False}, compliant, strict_facts, policy
    ).changes
