"""The bundled ELBv2 catalog (remediate/pulumi/data/elb-ssl-policies.json), rebuilt from AWS's
published policy tables (scripts/elb-policy-tables/) by scripts/elb-catalog-from-docs, against
moto's own list, the sandbox's live describe_ssl_policies and what the planner chooses."""

from __future__ import annotations

import json
import subprocess
import sys
from importlib import resources
from pathlib import Path
from typing import Any

import boto3
import pytest

from remediate.providers.aws.rules import SslPolicy, choose_ssl_policy
from remediate.pulumi.catalog import bundled
from remediate.sandbox.aws import MotoServer

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "elb-catalog-from-docs"
BOTH = ["application", "network"]
# Every FIPS policy of the FIPS and RFC 9151 tables.
FIPS = {
    "ELBSecurityPolicy-TLS13-1-3-FIPS-2023-04",
    "ELBSecurityPolicy-TLS13-1-3-FIPS-PQ-2025-09",
    "ELBSecurityPolicy-TLS13-1-2-FIPS-2023-04",
    "ELBSecurityPolicy-TLS13-1-2-FIPS-PQ-2025-09",
    "ELBSecurityPolicy-TLS13-1-2-Res-FIPS-2023-04",
    "ELBSecurityPolicy-TLS13-1-2-Res-FIPS-PQ-2025-09",
    "ELBSecurityPolicy-TLS13-1-2-Ext2-FIPS-2023-04",
    "ELBSecurityPolicy-TLS13-1-2-Ext2-FIPS-PQ-2025-09",
    "ELBSecurityPolicy-TLS13-1-2-Ext1-FIPS-2023-04",
    "ELBSecurityPolicy-TLS13-1-2-Ext1-FIPS-PQ-2025-09",
    "ELBSecurityPolicy-TLS13-1-2-Ext0-FIPS-2023-04",
    "ELBSecurityPolicy-TLS13-1-2-Ext0-FIPS-PQ-2025-09",
    "ELBSecurityPolicy-TLS13-1-1-FIPS-2023-04",
    "ELBSecurityPolicy-TLS13-1-0-FIPS-2023-04",
    "ELBSecurityPolicy-TLS13-1-0-FIPS-PQ-2025-09",
    "ELBSecurityPolicy-TLS13-1-3-RFC9151-FIPS-2023-07",
    "ELBSecurityPolicy-TLS13-1-2-RFC9151-FIPS-2023-07",
    "ELBSecurityPolicy-TLS13-1-2-Ext0-RFC9151-FIPS-2023-07",
    "ELBSecurityPolicy-TLS13-1-2-RFC9151-INTEROP1-FIPS-2023-07",
    "ELBSecurityPolicy-TLS13-1-2-RFC9151-INTEROP2-FIPS-2023-07",
    "ELBSecurityPolicy-TLS13-1-2-RFC9151-INTEROP3-FIPS-2023-07",
    "ELBSecurityPolicy-TLS13-1-2-RFC9151-INTEROP4-FIPS-2023-07",
}
# Neither is a FIPS 140 approved algorithm; no FIPS table lists them.
NOT_FIPS_CIPHERS = ("CHACHA20", "DES", "RC4")


def _document() -> dict[str, Any]:
    text = resources.files("remediate.pulumi").joinpath("data", "elb-ssl-policies.json")
    document: dict[str, Any] = json.loads(text.read_text("utf-8"))
    return document


def _by_name() -> dict[str, dict[str, Any]]:
    return {raw["Name"]: raw for raw in _document()["SslPolicies"]}


def _ciphers(raw: dict[str, Any]) -> list[str]:
    return [c["Name"] for c in sorted(raw["Ciphers"], key=lambda c: c["Priority"])]


def test_the_bundled_catalog_is_what_the_script_builds_from_the_tables() -> None:
    """Rebuilt, not hand-edited: the script, run on the tables in the repository, gives the
    bundled file byte for byte."""
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--check"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr


def test_every_entry_names_its_source_and_has_the_api_shape() -> None:
    document = _document()
    names = _by_name()
    assert set(document["sources"]) == set(names)
    assert "docs.aws.amazon.com/elasticloadbalancing/latest/application" in document["provenance"]
    assert "docs.aws.amazon.com/elasticloadbalancing/latest/network" in document["provenance"]
    for name, raw in names.items():
        source = document["sources"][name]
        assert source.startswith(("AWS tables: ", "not in the current tables")), name
        assert set(raw) == {"Name", "SslProtocols", "Ciphers", "SupportedLoadBalancerTypes"}
        priorities = [cipher["Priority"] for cipher in raw["Ciphers"]]
        assert priorities == list(range(1, len(priorities) + 1)), name
        assert raw["SslProtocols"] and raw["SupportedLoadBalancerTypes"], name
    # Nothing comes from moto any more.
    assert not [s for s in document["sources"].values() if "moto" in s]
    # Only the policy the current tables dropped is carried over, and it says so.
    carried = [n for n, s in document["sources"].items() if not s.startswith("AWS tables")]
    assert carried == ["ELBSecurityPolicy-TLS-1-0-2015-04"]


def test_every_fips_policy_is_there_with_fips_ciphers_only() -> None:
    names = _by_name()
    assert {name for name in names if "FIPS" in name.split("-")} == FIPS
    for name in FIPS:
        raw = names[name]
        assert "TLSv1.3" in raw["SslProtocols"], name
        for cipher in _ciphers(raw):
            assert not any(word in cipher for word in NOT_FIPS_CIPHERS), (name, cipher)
    # The non-FIPS TLS 1.3 policies do offer ChaCha20, so the check above can fail.
    assert "TLS_CHACHA20_POLY1305_SHA256" in _ciphers(names["ELBSecurityPolicy-TLS13-1-3-2021-06"])
    assert _ciphers(names["ELBSecurityPolicy-TLS13-1-3-RFC9151-FIPS-2023-07"]) == [
        "TLS_AES_256_GCM_SHA384"
    ]


def test_pq_policies_match_their_classical_twins_where_the_tables_say_so() -> None:
    """The tables list each PQ policy in the row of its classical twin: same protocols, same
    ciphers. Ext1 and Ext2 differ (Ext1 has no CBC-SHA1 suites), PQ or not."""
    names = _by_name()
    pq = [name for name in names if "-PQ-2025-09" in name]
    assert len(pq) == 13
    for name in pq:
        twin = name.replace("-PQ-2025-09", "-2021-06" if "FIPS" not in name else "-2023-04")
        assert _ciphers(names[name]) == _ciphers(names[twin]), name
        assert names[name]["SslProtocols"] == names[twin]["SslProtocols"], name
    ext1 = _ciphers(names["ELBSecurityPolicy-TLS13-1-2-Ext1-PQ-2025-09"])
    ext2 = _ciphers(names["ELBSecurityPolicy-TLS13-1-2-Ext2-PQ-2025-09"])
    assert set(ext2) - set(ext1) == {
        "ECDHE-ECDSA-AES128-SHA",
        "ECDHE-RSA-AES128-SHA",
        "ECDHE-ECDSA-AES256-SHA",
        "ECDHE-RSA-AES256-SHA",
        "AES128-SHA",
        "AES256-SHA",
    }


def test_load_balancer_types_follow_the_pages_that_list_each_policy() -> None:
    names = _by_name()
    types = {name: raw["SupportedLoadBalancerTypes"] for name, raw in names.items()}
    # Only the NLB page lists ELBSecurityPolicy-2015-05; only the ALB page has the RFC 9151 table.
    assert types["ELBSecurityPolicy-2015-05"] == ["network"]
    rfc9151 = {name for name in names if "RFC9151" in name}
    assert len(rfc9151) == 7
    assert all(types[name] == ["application"] for name in rfc9151)
    assert {name for name, kinds in types.items() if kinds != BOTH} == rfc9151 | {
        "ELBSecurityPolicy-2015-05"
    }


def test_moto_own_list_differs_from_the_published_tables_where_a_test_says_so() -> None:
    """moto's list (moto/elbv2/ssl_policies.py) agrees with the tables on every policy both
    hold, protocols and cipher order alike, but one: its Ext1-PQ cipher list is Ext2's. It has no
    FIPS policy at all and one FS policy. The sandbox serves the catalog instead (the next test)."""
    from moto.elbv2.ssl_policies import SSL_POLICIES

    catalog = _by_name()
    differing = []
    for name, data in SSL_POLICIES.items():
        raw = catalog[name]
        assert sorted(data["ssl_protocols"]) == sorted(raw["SslProtocols"]), name
        if data["ciphers"] != _ciphers(raw):
            differing.append(name)
    assert differing == ["ELBSecurityPolicy-TLS13-1-2-Ext1-PQ-2025-09"]
    ext2 = catalog["ELBSecurityPolicy-TLS13-1-2-Ext2-PQ-2025-09"]
    assert SSL_POLICIES["ELBSecurityPolicy-TLS13-1-2-Ext1-PQ-2025-09"]["ciphers"] == _ciphers(ext2)
    assert not [name for name in SSL_POLICIES if "FIPS" in name]
    assert len(set(catalog) - set(SSL_POLICIES)) == 28


def test_the_sandbox_answers_describe_ssl_policies_with_the_catalog(aws: MotoServer) -> None:
    """The live answer has the catalog's shape, SupportedLoadBalancerTypes included (real ELBv2
    sends it), and the catalog's content; the planner reads this answer, never the file."""
    live = boto3.client("elbv2", region_name="us-east-1").describe_ssl_policies()["SslPolicies"]
    catalog = _by_name()
    assert {raw["Name"] for raw in live} == set(catalog)
    for raw in live:
        assert set(raw) == set(catalog[raw["Name"]]), raw["Name"]
        assert SslPolicy.from_api(raw) == SslPolicy.from_api(catalog[raw["Name"]])


@pytest.mark.parametrize("kind", BOTH)
def test_the_offline_choice_honours_the_load_balancer_type(kind: str) -> None:
    catalog = bundled()
    for fips in (False, True):
        chosen = choose_ssl_policy(catalog, "1.2", kind, fips=fips)
        assert chosen.supports(kind) and chosen.meets("1.2") and chosen.fips == fips
    nlb_only = SslPolicy("Example-NLB-only-2030-01", ("1.2", "1.3"), (), ("network",))
    assert choose_ssl_policy([*catalog, nlb_only], "1.2", "application").name != nlb_only.name
