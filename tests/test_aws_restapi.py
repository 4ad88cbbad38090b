"""API Gateway REST custom domains and REST APIs against moto over HTTP.

moto stores a REST domain's securityPolicy but implements no update of it, and its REST APIs have
no securityPolicy at all; the sandbox adds UpdateDomainName and UpdateRestApi patch operations on
`/securityPolicy` and `/endpointAccessMode`, checked against botocore's own model of the
operations (`remediate.sandbox.aws._rest_security_policies`). The tests drive it with the real
boto3 client and read the resources back.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
import botocore.session
import pytest
from botocore.exceptions import ClientError

from remediate.policy import build
from remediate.providers.aws.rules import (
    REST_MIXED_ENDPOINTS,
    REST_NO_POLICY_MEETS,
    REST_UNKNOWN_POLICY,
    rest_policy_floor,
    rest_verdict,
)
from remediate.rules import RuleError
from remediate.sandbox.aws import REST_UPDATING_SECONDS, Fleet, MotoServer, seed_rest_apis
from tests.conftest import Cli

WritePolicy = Callable[..., Path]
SHOP, EDGE, PARTNERS = "shop.example.com", "edge.shop.example.com", "partners.example.com"
MODEL = botocore.session.get_session().get_service_model("apigateway")
ALLOWED = list(MODEL.shape_for("SecurityPolicy").enum)  # type: ignore[attr-defined]


@pytest.fixture
def rest(aws: MotoServer) -> Fleet:
    return seed_rest_apis()


def _client() -> Any:
    return boto3.client("apigateway", region_name="us-east-1")


def domain(name: str) -> dict[str, Any]:
    return dict(_client().get_domain_name(domainName=name))


def api(fleet: Fleet) -> dict[str, Any]:
    return dict(_client().get_rest_api(restApiId=fleet.rest["orders"].rsplit("/", 1)[1]))


def _plan(cli: Cli, path: Path) -> dict[str, dict[str, Any]]:
    result = cli("plan", "-p", str(path), "--format", "json", "-q")
    assert result.code == 0, result.stderr
    changes: dict[str, dict[str, Any]] = {}
    for change in json.loads(result.stdout)["changes"]:
        changes[f"{change['resource']} {change['attribute']}"] = change
    return changes


def test_weak_domains_and_api_are_planned_applied_and_rolled_back(
    cli: Cli, rest: Fleet, write_policy: WritePolicy
) -> None:
    path = write_policy("aws: {regions: [us-east-1]}\n")
    changes = _plan(cli, path)
    policy = "security_policy"
    assert set(changes) == {
        f"{rest.rest[SHOP]} {policy}",
        f"{rest.rest[EDGE]} {policy}",
        f"{rest.rest['orders']} {policy}",
    }
    shop = changes[f"{rest.rest[SHOP]} {policy}"]
    assert (shop["kind"], shop["before"], shop["after"]) == (
        "rest-api-domain",
        "TLS_1_0",
        "TLS_1_2",
    )
    assert shop["target"]["type"] == "aws-rest-api-domain"
    assert "UPDATING (domainNameStatus) for about 15 minutes" in shop["reason"]
    orders = changes[f"{rest.rest['orders']} {policy}"]
    assert (orders["kind"], orders["before"], orders["after"]) == ("rest-api", "TLS_1_0", "TLS_1_2")
    assert "no securityPolicy set: API Gateway applies TLS_1_0" in orders["reason"]
    assert "redeployed" in orders["reason"]

    applied = cli("apply", "-p", str(path), "--auto-approve", "-q", "--format", "json")
    assert applied.code == 0, applied.stdout + applied.stderr
    assert [domain(name)["securityPolicy"] for name in (SHOP, EDGE, PARTNERS)] == ["TLS_1_2"] * 3
    assert domain(SHOP)["domainNameStatus"] == "UPDATING"
    assert "endpointAccessMode" not in domain(SHOP)  # a legacy policy needs none
    assert api(rest)["securityPolicy"] == "TLS_1_2"
    assert domain(EDGE)["endpointConfiguration"] == {"types": ["EDGE"]}  # the rest is kept
    assert cli("plan", "-p", str(path), "-q", "--detailed-exitcode").code == 0

    run_id = json.loads(applied.stdout)["run_id"]
    back = cli("rollback", run_id, "-p", str(path), "--auto-approve", "-q")
    assert back.code == 0, back.stdout + back.stderr
    assert [domain(name)["securityPolicy"] for name in (SHOP, EDGE)] == ["TLS_1_0"] * 2
    assert api(rest)["securityPolicy"] == "TLS_1_0"
    time.sleep(REST_UPDATING_SECONDS)
    assert domain(SHOP)["domainNameStatus"] == "AVAILABLE"


def test_a_tls13_minimum_takes_enhanced_policies_with_the_access_mode(
    cli: Cli, rest: Fleet, write_policy: WritePolicy
) -> None:
    """TLS 1.3 needs an enhanced policy: `_EDGE` for the edge-optimized domain, the Regional one
    for the others, each with aws.endpoint_access_mode in the same update."""
    path = write_policy(
        "tls: {minimum: '1.3'}\naws: {regions: [us-east-1], endpoint_access_mode: STRICT}\n"
    )
    changes = _plan(cli, path)
    assert (
        changes[f"{rest.rest[EDGE]} security_policy"]["after"] == "SecurityPolicy_TLS13_2025_EDGE"
    )
    regional = changes[f"{rest.rest[PARTNERS]} security_policy"]["after"]
    assert regional == "SecurityPolicy_TLS13_1_3_2025_09"
    mode = changes[f"{rest.rest[PARTNERS]} endpoint_access_mode"]
    assert (mode["before"], mode["after"]) == (None, "STRICT")

    applied = cli("apply", "-p", str(path), "--auto-approve", "-q", "--format", "json")
    assert applied.code == 0, applied.stdout + applied.stderr
    edge = domain(EDGE)
    assert (edge["securityPolicy"], edge["endpointAccessMode"]) == (
        "SecurityPolicy_TLS13_2025_EDGE",
        "STRICT",
    )
    assert api(rest)["securityPolicy"] == "SecurityPolicy_TLS13_1_3_2025_09"
    assert cli("plan", "-p", str(path), "-q", "--detailed-exitcode").code == 0

    run_id = json.loads(applied.stdout)["run_id"]
    back = cli("rollback", run_id, "-p", str(path), "--auto-approve", "-q")
    assert back.code == 0, back.stdout + back.stderr
    assert domain(PARTNERS)["securityPolicy"] == "TLS_1_2"
    assert api(rest)["securityPolicy"] == "TLS_1_0"


def _update(name: str, *operations: tuple[str, str]) -> None:
    _client().update_domain_name(
        domainName=name,
        patchOperations=[{"op": "replace", "path": path, "value": v} for path, v in operations],
    )


def test_the_stand_in_refuses_what_api_gateway_refuses(rest: Fleet) -> None:
    """botocore's client checks neither enums nor the rules between members: the stand-in must."""
    cases = [
        ((("/securityPolicy", "TLS_1_3"),), "TLS_1_3.*expected one of"),
        ((("/securityPolicy", "SecurityPolicy_TLS13_1_3_2025_09"),), "endpoint access mode"),
        (
            (
                ("/securityPolicy", "SecurityPolicy_TLS13_2025_EDGE"),
                ("/endpointAccessMode", "BASIC"),
            ),
            "not supported for REGIONAL",
        ),
        ((("/endpointAccessMode", "LOOSE"),), "LOOSE.*BASIC, STRICT"),
        ((("/certificateArn", "x"),), "serves only"),
    ]
    for operations, message in cases:
        with pytest.raises(ClientError, match=f"BadRequestException.*{message}"):
            _update(SHOP, *operations)
    assert domain(SHOP)["securityPolicy"] == "TLS_1_0"
    _client().create_domain_name(
        domainName="both.example.com",
        endpointConfiguration={"types": ["EDGE", "REGIONAL"]},
        securityPolicy="TLS_1_0",
    )
    with pytest.raises(ClientError, match="endpoint types"):
        _update("both.example.com", ("/securityPolicy", "TLS_1_2"))


def test_every_policy_of_the_model_has_a_floor_read_from_its_name() -> None:
    """The candidates are the model's SecurityPolicy enum; each name tells its lowest version."""
    floors = {name: rest_policy_floor(name) for name in ALLOWED}
    assert None not in floors.values(), floors
    assert floors["TLS_1_0"] == "1.0"
    assert floors["SecurityPolicy_TLS13_1_2_2021_06"] == "1.2"
    assert floors["SecurityPolicy_TLS12_2018_EDGE"] == "1.2"
    assert floors["SecurityPolicy_TLS13_1_3_FIPS_2025_09"] == "1.3"


def _settings(policy: str, *types: str) -> dict[str, Any]:
    return {"security_policy": policy, "endpoint_types": list(types)}


def test_findings_and_choices_follow_the_policy_file() -> None:
    regional = _settings("TLS_1_2", "REGIONAL")
    fips = rest_verdict(regional, ALLOWED, build(aws={"fips": True}), "REST API")
    assert [c.after for c in fips.changes] == ["SecurityPolicy_TLS13_1_2_FIPS_PQ_2025_09", "BASIC"]
    edge_fips = rest_verdict(_settings("TLS_1_2", "EDGE"), ALLOWED, build(aws={"fips": True}), "x")
    assert edge_fips.findings[0].rule == REST_NO_POLICY_MEETS
    mixed = rest_verdict(_settings("TLS_1_0", "EDGE", "REGIONAL"), ALLOWED, build(), "x")
    assert (mixed.changes, mixed.findings[0].rule) == ([], REST_MIXED_ENDPOINTS)
    unknown = rest_verdict(_settings("TLS_2025_NEW", "REGIONAL"), ALLOWED, build(), "x")
    assert unknown.findings[0].rule == REST_UNKNOWN_POLICY
    chosen = build(aws={"api_security_policy": "SecurityPolicy_TLS13_1_2_PQ_2025_09"})
    weak = _settings("TLS_1_0", "REGIONAL")
    assert rest_verdict(weak, ALLOWED, chosen, "x").changes[0].after == (
        "SecurityPolicy_TLS13_1_2_PQ_2025_09"
    )
    with pytest.raises(RuleError, match="SecurityPolicy_TLS13_2025_EDGE is not one of"):
        rest_verdict(
            weak, ALLOWED, build(aws={"api_security_policy": "SecurityPolicy_TLS13_2025_EDGE"}), "x"
        )


def test_drift_on_a_domain_is_fixed_and_rollback_refuses_it_once_moved(
    cli: Cli, rest: Fleet, write_policy: WritePolicy
) -> None:
    path = write_policy("aws: {regions: [us-east-1]}\n")
    args = ("drift", "-p", str(path), "-q", "--format", "json")
    fixed = json.loads(cli(*args, "--fix").stdout)
    assert fixed["status"] == "fixed", fixed
    assert domain(SHOP)["securityPolicy"] == "TLS_1_2"

    # An old template puts the domain back on TLS_1_0.
    _update(SHOP, ("/securityPolicy", "TLS_1_0"))
    check = cli(*args)
    assert check.code == 2
    (change,) = json.loads(check.stdout)["changes"]
    assert (change["resource"], change["after"]) == (rest.rest[SHOP], "TLS_1_2")
    assert change["recurring"]["runs"] == [fixed["run_id"]]
    refused = cli("rollback", fixed["run_id"], "-p", str(path), "--auto-approve", "-q")
    assert refused.code == 1
    assert "is now 'TLS_1_0', not 'TLS_1_2'" in refused.stderr
    assert domain(EDGE)["securityPolicy"] == "TLS_1_2"  # the refusal changed nothing


def test_a_plan_saved_while_a_domain_settles_still_applies(
    cli: Cli, rest: Fleet, write_policy: WritePolicy, tmp_path: Path
) -> None:
    """UPDATING turns AVAILABLE by itself: the status is not part of what a saved plan checks,
    or every plan made within 15 minutes of a change would be refused as stale."""
    _client().update_rest_api(
        restApiId=rest.rest["orders"].rsplit("/", 1)[1],
        patchOperations=[{"op": "replace", "path": "/securityPolicy", "value": "TLS_1_0"}],
    )
    _update(SHOP, ("/securityPolicy", "TLS_1_0"))
    assert domain(SHOP)["domainNameStatus"] == "UPDATING"
    path = write_policy("aws: {regions: [us-east-1]}\n")
    saved = tmp_path / "plan.json"
    assert cli("plan", "-p", str(path), "-q", "--out", str(saved)).code == 0
    time.sleep(REST_UPDATING_SECONDS)
    assert domain(SHOP)["domainNameStatus"] == "AVAILABLE"
    applied = cli("apply", str(saved), "-p", str(path), "--auto-approve", "-q", "--no-verify")
    assert applied.code == 0, applied.stdout + applied.stderr
    assert domain(SHOP)["securityPolicy"] == "TLS_1_2"
