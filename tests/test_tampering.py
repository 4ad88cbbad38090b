"""Tampered saved plans: `apply PLAN` enforces the policy in force, not the file.

Each plan is saved by `remediate plan --out`, edited as someone with write access to the file
could (its digest recomputed, so only the policy check stands in the way), and applied. The whole
plan must be refused, naming each offending change, exit 1, and nothing written: the state read
back from moto (or the files and live TLS of a real nginx) is what it was before.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from google.api_core.client_options import ClientOptions
from google.api_core.exceptions import NotFound
from google.auth.credentials import AnonymousCredentials
from google.cloud import compute_v1

from remediate import engine
from remediate import policy as policy_module
from remediate.model import Plan, fingerprint
from remediate.sandbox.aws import Fleet
from remediate.sandbox.compute import ComputeServer
from tests.aws_state import http2_attribute, listener, ssl_policy
from tests.conftest import Cli
from tests.test_gcp import POLICY as GCP_POLICY
from tests.test_gcp import SHOP, compute, compute_server, seed_estate  # noqa: F401 (fixtures)
from tests.test_nginx_apply import (  # noqa: F401 (fixtures)
    assert_weak,
    backend,
    hosts,
    write_setup,
)
from tests.test_nginx_apply import pytestmark as needs_nginx

Document = dict[str, Any]

POLICY = """\
version: 1
tls:
  minimum: "1.2"
http2: true
aws:
  regions: [us-east-1, eu-west-1]
"""


def seal(document: Document) -> Document:
    """Recompute the digest, as anyone who edits a plan on purpose can."""
    document.pop("summary", None)
    document["digest"] = ""
    document["digest"] = Plan.model_validate(document).content_digest()
    return document


def save_plan(cli: Cli, policy: Path, path: Path) -> Document:
    result = cli("plan", "-p", str(policy), "-q", "--out", str(path))
    assert result.code == 0, result.stderr
    document: Document = json.loads(path.read_text(encoding="utf-8"))
    return document


def change_of(document: Document, resource: str, attribute: str) -> Document:
    found: Document = next(
        c for c in document["changes"] if c["resource"] == resource and c["attribute"] == attribute
    )
    return found


def aws_state(fleet: Fleet) -> dict[str, Any]:
    """Every listener's description and every load balancer's HTTP/2 attribute, from moto."""
    state: dict[str, Any] = {key: listener(fleet, key) for key in fleet.listeners}
    state.update({f"http2 {name}": http2_attribute(fleet, name) for name in fleet.load_balancers})
    return state


def weaken_tls(document: Document, fleet: Fleet) -> list[str]:
    change = change_of(document, fleet.listeners["shop:443"], "ssl_policy")
    change["after"] = "ELBSecurityPolicy-2016-08"
    return [fleet.listeners["shop:443"]]


def add_weak_policy_to_compliant(document: Document, fleet: Fleet) -> list[str]:
    # A compliant listener (no change planned) given a TLS 1.0 policy, with the fingerprint of
    # its current state, computed as discovery computes it.
    template = dict(change_of(document, fleet.listeners["admin:8443"], "ssl_policy"))
    template.update(
        resource=fleet.listeners["admin:443"],
        before="ELBSecurityPolicy-TLS13-1-3-2021-06",
        after="ELBSecurityPolicy-TLS-1-0-2015-04",
        fingerprint=document["_fingerprints"][fleet.listeners["admin:443"]],
    )
    document["changes"].append(template)
    return [fleet.listeners["admin:443"]]


def switch_http2_off(document: Document, fleet: Fleet) -> list[str]:
    change = change_of(document, fleet.load_balancers["api"], "routing.http2.enabled")
    change["after"] = False
    return [fleet.load_balancers["api"]]


def unmanaged_attribute(document: Document, fleet: Fleet) -> list[str]:
    template = dict(change_of(document, fleet.load_balancers["api"], "routing.http2.enabled"))
    template.update(attribute="deletion_protection.enabled", before=False, after=True)
    document["changes"].append(template)
    return [fleet.load_balancers["api"]]


def unknown_resource(document: Document, fleet: Fleet) -> list[str]:
    template = dict(change_of(document, fleet.listeners["shop:443"], "ssl_policy"))
    ghost = fleet.listeners["shop:443"].rsplit("/", 1)[0] + "/0123456789abcdef"
    template.update(resource=ghost)
    document["changes"].append(template)
    return [ghost]


TAMPERS: dict[str, Callable[[Document, Fleet], list[str]]] = {
    "weakened after": weaken_tls,
    "added change, recomputed fingerprint": add_weak_policy_to_compliant,
    "HTTP/2 switched off": switch_http2_off,
    "unmanaged attribute": unmanaged_attribute,
    "unknown resource": unknown_resource,
}


@pytest.mark.parametrize("name", sorted(TAMPERS))
def test_a_tampered_aws_plan_is_refused_whole(
    name: str, cli: Cli, fleet: Fleet, write_policy: Callable[[str], Path], tmp_path: Path
) -> None:
    policy = write_policy(POLICY)
    path = tmp_path / "plan.json"
    document = save_plan(cli, policy, path)
    inventory = engine.discover(policy_module.load(policy))
    document["_fingerprints"] = {e.resource: e.fingerprint for e in inventory.endpoints}
    offending = TAMPERS[name](document, fleet)
    document.pop("_fingerprints")
    path.write_text(json.dumps(seal(document)), encoding="utf-8")
    before = aws_state(fleet)

    result = cli("apply", str(path), "-p", str(policy), "-q")

    assert result.code == 1, result.stdout + result.stderr
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("error: plan refused:"), line
    assert "nothing was applied" in line
    for resource in offending:
        assert resource in line
    assert aws_state(fleet) == before
    history = json.loads(cli("history", "--format", "json").stdout)
    assert [run["kind"] for run in history["runs"]] == ["plan"]


def test_an_honest_saved_plan_still_applies(
    cli: Cli, fleet: Fleet, write_policy: Callable[[str], Path], tmp_path: Path
) -> None:
    policy = write_policy(POLICY)
    path = tmp_path / "plan.json"
    save_plan(cli, policy, path)
    result = cli("apply", str(path), "-p", str(policy), "-q")
    assert result.code == 0, result.stderr
    assert http2_attribute(fleet, "api") == "true"
    assert ssl_policy(fleet, "shop:443") != "ELBSecurityPolicy-2016-08"


def test_an_edited_plan_is_told_apart_from_a_damaged_one(
    cli: Cli, fleet: Fleet, write_policy: Callable[[str], Path], tmp_path: Path
) -> None:
    policy = write_policy(POLICY)
    path = tmp_path / "plan.json"
    document = save_plan(cli, policy, path)
    text = path.read_text(encoding="utf-8")
    weaken_tls(document, fleet)
    path.write_text(json.dumps(document), encoding="utf-8")  # digest not recomputed
    edited = cli("apply", str(path), "-p", str(policy), "-q")
    assert edited.code == 1
    assert "edited since it was saved" in edited.stderr
    path.write_text(text[: len(text) // 2], encoding="utf-8")
    damaged = cli("apply", str(path), "-p", str(policy), "-q")
    assert damaged.code == 1
    assert "not a valid plan" in damaged.stderr
    assert "edited since" not in damaged.stderr
    assert ssl_policy(fleet, "shop:443") == "ELBSecurityPolicy-2016-08"


def test_applying_a_saved_plan_needs_a_policy(
    cli: Cli, fleet: Fleet, write_policy: Callable[[str], Path], tmp_path: Path
) -> None:
    policy = write_policy(POLICY)
    path = tmp_path / "plan.json"
    save_plan(cli, policy, path)
    result = cli("apply", str(path), "-p", str(tmp_path / "missing.yaml"), "-q")
    assert result.code == 1
    [line] = result.stderr.strip().splitlines()
    assert "policy file not found" in line
    assert ssl_policy(fleet, "shop:443") == "ELBSecurityPolicy-2016-08"


@needs_nginx
def test_a_tampered_nginx_plan_writes_nowhere(
    tmp_path: Path,
    hosts: Callable[..., Any],  # noqa: F811 (the fixture)
    cli: Cli,
) -> None:
    """A cron file smuggled in, a host not in the inventory and TLS 1.0 written back: refused."""
    web = hosts("web1")
    policy = write_setup(tmp_path, web)
    path = tmp_path / "plan.json"
    document = save_plan(cli, policy, path)
    cron = tmp_path / "cron.d-remediate"
    cron.write_text("# harmless\n", encoding="utf-8")
    planned = document["changes"][0]
    smuggled = dict(planned)
    smuggled["resource"] = f"web1:{cron}"
    smuggled["target"] = {**planned["target"], "path": str(cron)}
    smuggled.update(before="# harmless\n", after="* * * * * root /bin/sh -c 'id > /tmp/p'\n")
    stranger = dict(planned)
    stranger["resource"] = planned["resource"].replace("web1:", "web9:", 1)
    stranger["target"] = {**planned["target"], "host": "web9"}
    weak = change_of(document, planned["resource"], planned["attribute"])
    weak["after"] = weak["after"].replace("TLSv1.2 TLSv1.3", "TLSv1")
    # The same file's change, written elsewhere: its target's real path redirected.
    assert len(document["changes"]) >= 2
    redirected = dict(document["changes"][1])
    redirected["target"] = {**redirected["target"], "real_path": str(cron)}
    document["changes"][1] = redirected
    document["changes"] += [smuggled, stranger]
    path.write_text(json.dumps(seal(document)), encoding="utf-8")
    before = web.files()

    result = cli("apply", str(path), "-p", str(policy), "-q", "--auto-approve")

    assert result.code == 1, result.stdout + result.stderr
    [line] = result.stderr.strip().splitlines()
    assert f"web1:{cron}" in line and "not part of what web1 reports" in line
    assert stranger["resource"] in line and "no host web9 in the inventory" in line
    assert planned["resource"] in line and "not what the policy in force chooses" in line
    assert redirected["resource"] in line and "target is not the one discovery reports" in line
    assert cron.read_text(encoding="utf-8") == "# harmless\n"
    assert web.files() == before
    assert_weak(web)
    assert fingerprint(before) == fingerprint(web.files())


def test_a_gcp_plan_attaching_a_weak_policy_is_refused(
    compute: ComputeServer,  # noqa: F811 (the fixture)
    cli: Cli,
    write_policy: Callable[[str], Path],
    tmp_path: Path,
) -> None:
    """A proxy pointed at the shared TLS 1.0 policy, and remediate's own policy created as
    TLS_1_0/COMPATIBLE: refused, and no proxy or policy of the Compute API changes."""
    estate = seed_estate(compute)
    policy = write_policy(GCP_POLICY)
    path = tmp_path / "plan.json"
    document = save_plan(cli, policy, path)
    attach = change_of(document, estate.web, "ssl_policy")
    attach["after"] = estate.legacy_policy
    created = next(c for c in document["changes"] if isinstance(c["after"], dict))
    created["after"] = {**created["after"], "minTlsVersion": "TLS_1_0", "profile": "COMPATIBLE"}
    path.write_text(json.dumps(seal(document)), encoding="utf-8")
    watched = [estate.web, estate.legacy_a, estate.eu, estate.api, estate.api_policy]
    before = {resource: compute.get(resource) for resource in watched}

    result = cli("apply", str(path), "-p", str(policy), "-q")

    assert result.code == 1, result.stdout + result.stderr
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("error: plan refused: 2 change(s)"), line
    assert estate.web in line and created["resource"] in line
    assert {resource: compute.get(resource) for resource in watched} == before
    with pytest.raises(NotFound):
        compute_v1.SslPoliciesClient(
            credentials=AnonymousCredentials(),
            client_options=ClientOptions(api_endpoint=compute.url),
            transport="rest",
        ).get(project=SHOP, ssl_policy="remediate-tls")
