"""API Gateway custom domains of HTTP and WebSocket APIs against moto over HTTP.

moto has no UpdateDomainName for apigatewayv2; the sandbox adds one that checks each request
against botocore's own model of the operation (`remediate.sandbox.aws._update_http_api_domains`),
and the tests drive it with the real boto3 client and read the domains back.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
import botocore.session
import pytest
from botocore.exceptions import ClientError

from remediate.policy import build
from remediate.providers.aws.rules import http_api_domain_verdict
from remediate.sandbox.aws import Fleet, MotoServer, seed_api_domains
from tests.conftest import Cli

WritePolicy = Callable[..., Path]
WS, API = "ws.shop.example.com", "api.shop.example.com"


@pytest.fixture
def domains(aws: MotoServer) -> Fleet:
    return seed_api_domains()


def _client() -> Any:
    return boto3.client("apigatewayv2", region_name="us-east-1")


def policies_of(name: str) -> list[str]:
    domain = _client().get_domain_name(DomainName=name)
    return [item["SecurityPolicy"] for item in domain["DomainNameConfigurations"]]


def test_a_weak_domain_is_planned_applied_rolled_back(
    cli: Cli, domains: Fleet, write_policy: WritePolicy
) -> None:
    path = write_policy("aws: {regions: [us-east-1]}\n")
    plan = json.loads(cli("plan", "-p", str(path), "--format", "json", "-q").stdout)
    changes = {c["resource"]: c for c in plan["changes"]}
    assert set(changes) == {domains.api_domains[WS]}
    change = changes[domains.api_domains[WS]]
    assert (change["kind"], change["attribute"]) == ("http-api-domain", "security_policies")
    assert (change["before"], change["after"]) == (["TLS_1_0"], ["TLS_1_2"])
    assert change["reason"] == "TLS_1_0 accepts TLS 1.0, 1.1; policy minimum is TLS 1.2"

    applied = cli("apply", "-p", str(path), "--auto-approve", "-q", "--format", "json")
    assert applied.code == 0, applied.stdout + applied.stderr
    assert policies_of(WS) == ["TLS_1_2"]
    certificate = _client().get_domain_name(DomainName=WS)["DomainNameConfigurations"][0]
    assert certificate["CertificateArn"].startswith("arn:aws:acm:")  # the rest is kept
    assert policies_of(API) == ["TLS_1_2"]
    assert cli("plan", "-p", str(path), "-q", "--detailed-exitcode").code == 0

    run_id = json.loads(applied.stdout)["run_id"]
    back = cli("rollback", run_id, "-p", str(path), "--auto-approve", "-q")
    assert back.code == 0, back.stdout + back.stderr
    assert policies_of(WS) == ["TLS_1_0"]


def test_values_come_from_the_service_model_not_a_list() -> None:
    """The candidates are the model's SecurityPolicy enum: with a TLS 1.3 minimum none of
    apigatewayv2's values meets it, and the finding names what the model offers."""
    model = botocore.session.get_session().get_service_model("apigatewayv2")
    allowed = list(model.shape_for("SecurityPolicy").enum)
    verdict = http_api_domain_verdict(
        {"security_policies": ["TLS_1_2"]}, allowed, build(tls={"minimum": "1.3"})
    )
    assert not verdict.changes
    assert verdict.findings[0].rule == "aws-apigw-no-policy-meets"
    assert ", ".join(allowed) in verdict.findings[0].message
    fixed = http_api_domain_verdict({"security_policies": ["TLS_1_0", "TLS_1_2"]}, allowed, build())
    assert fixed.changes[0].after == ["TLS_1_2", "TLS_1_2"]


def test_the_stand_in_refuses_what_the_model_refuses(domains: Fleet) -> None:
    """Real API Gateway answers BadRequestException to a SecurityPolicy outside the model's enum;
    botocore's client does not check enums, so the sandbox must."""
    with pytest.raises(ClientError, match=r"BadRequestException.*TLS_1_3"):
        _client().update_domain_name(
            DomainName=WS, DomainNameConfigurations=[{"SecurityPolicy": "TLS_1_3"}]
        )
    assert policies_of(WS) == ["TLS_1_0"]
