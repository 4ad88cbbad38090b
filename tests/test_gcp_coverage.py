"""GCP: target SSL proxies, the explicit-null detach of regional HTTPS proxies,
postQuantumKeyExchange and the TLS 1.3 profile, end to end through the CLI and the real
google-cloud-compute client against the local Compute server, read back from its state."""

from __future__ import annotations

import json
import re
import typing
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests
from google.api_core.client_options import ClientOptions
from google.api_core.exceptions import BadRequest
from google.auth.credentials import AnonymousCredentials
from google.cloud import compute_v1

from remediate.providers.gcp.model import GCPSettings
from remediate.sandbox.compute import ComputeServer, discovery, link
from tests.conftest import Cli

PROJECT = "edge-prod"
POLICY = """
version: 1
tls:
  minimum: "{minimum}"
gcp:
  projects: [edge-prod]
{extra}
"""


@pytest.fixture(scope="module")
def compute_server() -> Iterator[ComputeServer]:
    server = ComputeServer(operation_polls=2)
    yield server
    server.stop()


@pytest.fixture
def compute(compute_server: ComputeServer, monkeypatch: pytest.MonkeyPatch) -> ComputeServer:
    compute_server.reset()
    monkeypatch.setenv("REMEDIATE_GCP_ENDPOINT", compute_server.url)
    return compute_server


def policy(write: Callable[[str], Path], minimum: str = "1.2", extra: str = "") -> Path:
    return write(POLICY.format(minimum=minimum, extra=extra))


def _run_id(output: str) -> str:
    found = re.search(r"\(run (\S+)\)", output)
    assert found, output
    return found.group(1)


def test_target_ssl_proxies_are_attached_checked_and_rolled_back(
    compute: ComputeServer, cli: Cli, write_policy: Callable[[str], Path]
) -> None:
    broker = compute.backend_service(PROJECT, "broker", protocol="SSL")
    weak = compute.ssl_policy(PROJECT, "old-compat", "TLS_1_0", "COMPATIBLE")
    bare = compute.ssl_proxy(PROJECT, "mqtt", broker)
    shared = compute.ssl_proxy(PROJECT, "imaps", broker, weak)
    path = policy(write_policy)

    plan = json.loads(cli("plan", "-p", str(path), "--format", "json", "-q").stdout)
    changes = {c["resource"]: c for c in plan["changes"]}
    owned = link(PROJECT, "sslPolicies", "remediate-tls")
    assert changes[bare]["kind"] == "target-ssl-proxy"
    assert (changes[bare]["before"], changes[bare]["after"]) == (None, owned)
    assert changes[shared]["before"] == weak
    assert "accepts TLS 1.0, 1.1" in changes[shared]["reason"]
    assert owned in changes  # created for them: SSL proxies need a global policy

    applied = cli("apply", "-p", str(path), "--auto-approve", "-q")
    assert applied.code == 0, applied.stdout + applied.stderr
    assert compute.get(bare)["sslPolicy"] == owned
    assert compute.get(shared)["sslPolicy"] == owned
    assert compute.get(weak)["minTlsVersion"] == "TLS_1_0"  # not remediate's: never edited
    again = cli("plan", "-p", str(path), "-q", "--detailed-exitcode")
    assert again.code == 0, again.stdout

    back = cli("rollback", _run_id(applied.stdout), "-p", str(path), "--auto-approve", "-q")
    assert back.code == 0, back.stdout + back.stderr
    assert "sslPolicy" not in compute.get(bare)
    assert compute.get(shared)["sslPolicy"] == weak


def test_a_regional_detach_sends_an_explicit_null(
    compute: ComputeServer, cli: Cli, write_policy: Callable[[str], Path]
) -> None:
    """Rolling back a regional proxy's attachment must clear its sslPolicy: only a PATCH with
    `"sslPolicy": null` does (the sandbox refuses `""`, which the real API does not read as
    "clear"), and the generated client leaves a None field out of the JSON altogether."""
    region = "europe-west1"
    service = compute.backend_service(PROJECT, "web-eu", region=region)
    url_map = compute.url_map(PROJECT, "web-eu", service, region=region)
    proxy = compute.https_proxy(PROJECT, "web-eu", url_map, region=region)
    path = policy(write_policy)
    applied = cli("apply", "-p", str(path), "--auto-approve", "-q")
    assert applied.code == 0, applied.stdout + applied.stderr
    assert compute.get(proxy)["sslPolicy"] == link(PROJECT, "sslPolicies", "remediate-tls", region)

    back = cli("rollback", _run_id(applied.stdout), "-p", str(path), "--auto-approve", "-q")
    assert back.code == 0, back.stdout + back.stderr
    assert "sslPolicy" not in compute.get(proxy)
    patches = [(m, p, s) for m, p, s in compute.requests if m == "PATCH" and "/web-eu" in p]
    # A rollback carries the fingerprint of the apply's time: the first PATCH may meet 412 and is
    # retried with a fresh one; none is refused as malformed.
    assert patches[-1][2] == 200
    assert 400 not in {status for _, _, status in patches}


def test_the_client_cannot_send_null_and_the_server_refuses_an_empty_reference(
    compute: ComputeServer,
) -> None:
    region = "europe-west1"
    service = compute.backend_service(PROJECT, "api", region=region)
    url_map = compute.url_map(PROJECT, "api", service, region=region)
    attached = compute.ssl_policy(PROJECT, "tls12", "TLS_1_2", "MODERN", region)
    proxy = compute.https_proxy(PROJECT, "api", url_map, attached, region=region)
    unset = compute_v1.TargetHttpsProxy(ssl_policy=None, fingerprint="f")
    assert "sslPolicy" not in json.loads(compute_v1.TargetHttpsProxy.to_json(unset))
    client = compute_v1.RegionTargetHttpsProxiesClient(
        credentials=AnonymousCredentials(),  # type: ignore[no-untyped-call]
        client_options=ClientOptions(api_endpoint=compute.url),
    )
    with pytest.raises(BadRequest, match="Send null to clear it"):
        client.patch_unary(
            project=PROJECT,
            region=region,
            target_https_proxy="api",
            target_https_proxy_resource=compute_v1.TargetHttpsProxy(
                ssl_policy="", fingerprint=compute.get(proxy)["fingerprint"]
            ),
        )
    assert compute.get(proxy)["sslPolicy"] == attached
    url = f"{compute.url}/compute/v1/projects/{PROJECT}/regions/{region}/targetHttpsProxies/api"
    cleared = requests.patch(
        url, json={"fingerprint": compute.get(proxy)["fingerprint"], "sslPolicy": None}, timeout=10
    )
    assert cleared.status_code == 200, cleared.text


def test_post_quantum_key_exchange_is_set_and_kept(
    compute: ComputeServer, cli: Cli, write_policy: Callable[[str], Path]
) -> None:
    service = compute.backend_service(PROJECT, "web")
    compute.https_proxy(PROJECT, "web", compute.url_map(PROJECT, "web", service))
    path = policy(write_policy, extra="  post_quantum_key_exchange: ENABLED")
    applied = cli("apply", "-p", str(path), "--auto-approve", "-q")
    assert applied.code == 0, applied.stdout + applied.stderr
    owned = link(PROJECT, "sslPolicies", "remediate-tls")
    assert compute.get(owned)["postQuantumKeyExchange"] == "ENABLED"

    compute.test_hooks.touch(owned, postQuantumKeyExchange="DEFERRED")
    plan = json.loads(cli("plan", "-p", str(path), "--format", "json", "-q").stdout)
    assert [(c["attribute"], c["before"], c["after"]) for c in plan["changes"]] == [
        ("postQuantumKeyExchange", "DEFERRED", "ENABLED")
    ]
    fixed = cli("apply", "-p", str(path), "--auto-approve", "-q")
    assert fixed.code == 0, fixed.stdout + fixed.stderr
    assert compute.get(owned)["postQuantumKeyExchange"] == "ENABLED"
    # Unset in the policy: the field is not managed, whatever it holds.
    quiet = cli("plan", "-p", str(policy(write_policy)), "-q", "--detailed-exitcode")
    assert quiet.code == 0, quiet.stdout


def test_post_quantum_values_are_the_discovery_documents() -> None:
    """The policy option takes exactly the values the Compute API's SslPolicy field declares."""
    field = discovery()["schemas"]["SslPolicy"]["properties"]["postQuantumKeyExchange"]
    annotation = GCPSettings.model_fields["post_quantum_key_exchange"].annotation
    literal = next(arg for arg in typing.get_args(annotation) if arg is not type(None))
    assert sorted(typing.get_args(literal)) == sorted(field["enum"])


def test_a_tls_1_3_minimum_creates_a_restricted_policy(
    compute: ComputeServer, cli: Cli, write_policy: Callable[[str], Path]
) -> None:
    """The API accepts minTlsVersion TLS_1_3 only with profile RESTRICTED (the field's own
    description in the discovery document); the sandbox refuses the rest, so gcp.profile MODERN
    would fail here if remediate did not override it."""
    service = compute.backend_service(PROJECT, "web")
    compute.https_proxy(PROJECT, "web", compute.url_map(PROJECT, "web", service))
    path = policy(write_policy, minimum="1.3", extra="  profile: MODERN")
    applied = cli("apply", "-p", str(path), "--auto-approve", "-q")
    assert applied.code == 0, applied.stdout + applied.stderr
    created = compute.get(link(PROJECT, "sslPolicies", "remediate-tls"))
    assert (created["minTlsVersion"], created["profile"]) == ("TLS_1_3", "RESTRICTED")
    client = compute_v1.SslPoliciesClient(
        credentials=AnonymousCredentials(),  # type: ignore[no-untyped-call]
        client_options=ClientOptions(api_endpoint=compute.url),
    )
    with pytest.raises(BadRequest, match="RESTRICTED"):
        client.insert_unary(
            project=PROJECT,
            ssl_policy_resource=compute_v1.SslPolicy(
                name="modern13", min_tls_version="TLS_1_3", profile="MODERN"
            ),
        )


def test_permissions_cover_target_ssl_proxies(cli: Cli) -> None:
    role = cli("permissions", "--provider", "gcp", "--write").stdout
    for permission in (
        "compute.targetSslProxies.list",
        "compute.targetSslProxies.get",
        "compute.targetSslProxies.setSslPolicy",
    ):
        assert permission in role
