"""The bundled ELBv2 catalog (remediate/pulumi/data/elb-ssl-policies.json), built from AWS's
published policy tables by scripts/elb-catalog-from-docs, against moto's live describe_ssl_policies
and against what the planner chooses."""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

import boto3

from remediate.providers.aws.rules import SslPolicy, choose_ssl_policy
from remediate.pulumi.catalog import bundled
from remediate.sandbox.aws import MotoServer

DOCUMENTED = "AWS guides' policy tables"


def _document() -> dict[str, Any]:
    text = resources.files("remediate.pulumi").joinpath("data", "elb-ssl-policies.json")
    document: dict[str, Any] = json.loads(text.read_text("utf-8"))
    return document


def test_the_catalog_holds_the_published_policies_with_their_types() -> None:
    document = _document()
    assert "CC BY-SA 4.0" in document["provenance"]
    names = {raw["Name"]: raw for raw in document["SslPolicies"]}
    assert set(document["sources"]) == set(names)
    # Policies moto's list lacks, each from the tables.
    for name in (
        "ELBSecurityPolicy-TLS-1-0-2015-04",
        "ELBSecurityPolicy-FS-2018-06",
        "ELBSecurityPolicy-FS-1-1-2019-08",
        "ELBSecurityPolicy-FS-1-2-2019-08",
        "ELBSecurityPolicy-FS-1-2-Res-2019-08",
        "ELBSecurityPolicy-FS-1-2-Res-2020-10",
    ):
        assert document["sources"][name] == DOCUMENTED, name
    for name, raw in names.items():
        if document["sources"][name] == DOCUMENTED:
            assert raw["SupportedLoadBalancerTypes"] == ["application", "network"], name
            priorities = [cipher["Priority"] for cipher in raw["Ciphers"]]
            assert priorities == list(range(1, len(priorities) + 1)), name
    # The guides spell TLS 1.3 suites with dashes; the API (and the catalog) with underscores.
    assert names["ELBSecurityPolicy-TLS13-1-3-2021-06"]["Ciphers"][0]["Name"] == (
        "TLS_AES_128_GCM_SHA256"
    )


def test_moto_answers_in_the_catalogs_shape_and_agrees_on_protocols(aws: MotoServer) -> None:
    """The live answer has the catalog's members (moto leaves SupportedLoadBalancerTypes out,
    which real ELBv2 sends) and, for each policy both know, the same protocols."""
    live = boto3.client("elbv2", region_name="us-east-1").describe_ssl_policies()["SslPolicies"]
    catalog = {raw["Name"]: raw for raw in _document()["SslPolicies"]}
    keys = {key for raw in catalog.values() for key in raw}
    assert live
    for raw in live:
        assert set(raw) <= keys, raw["Name"]
        if raw["Name"] in catalog:
            assert sorted(raw["SslProtocols"]) == sorted(catalog[raw["Name"]]["SslProtocols"])


def test_the_offline_choice_honours_the_load_balancer_type() -> None:
    catalog = bundled()
    for kind in ("application", "network"):
        chosen = choose_ssl_policy(catalog, "1.2", kind)
        assert chosen.supports(kind) and chosen.meets("1.2")
    nlb_only = SslPolicy("Example-NLB-only-2030-01", ("1.2", "1.3"), (), ("network",))
    assert choose_ssl_policy([*catalog, nlb_only], "1.2", "application").name != nlb_only.name
