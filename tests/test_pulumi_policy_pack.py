"""The CrossGuard pack's policies, called directly (pulumi_policy lives in the pack's own venv)."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from remediate.pulumi import resources
from remediate.pulumi.catalog import bundled

PACK = Path(__file__).resolve().parent.parent / "stacks" / "policy-pack"
# The virtualenv PulumiPolicy.yaml names; `make policy-pack-venv` builds it as Pulumi would.
PACK_PYTHON = PACK / "venv" / "bin" / "python"
LISTENER = "aws:lb/listener:Listener"
WEAK = "ELBSecurityPolicy-2016-08"
STRICT = "ELBSecurityPolicy-TLS13-1-3-2021-06"


@pytest.fixture(scope="module")
def pack() -> ModuleType:
    spec = importlib.util.spec_from_file_location("remediate_pack_policies", PACK / "policies.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _versions(name: str) -> tuple[str, ...]:
    return next(p.versions for p in bundled() if p.name == name)


def test_pack_project_files_exist_and_pin_its_own_environment() -> None:
    assert "runtime:" in (PACK / "PulumiPolicy.yaml").read_text(encoding="utf-8")
    requirements = (PACK / "requirements.txt").read_text(encoding="utf-8").splitlines()
    assert any(line.startswith("pulumi-policy") for line in requirements)
    assert "../.." in requirements


def test_every_enforced_type_has_exactly_one_policy(pack: ModuleType) -> None:
    covered = [type_ for policy in pack.POLICIES for type_ in policy.types]
    assert sorted(covered) == sorted(resources.TYPES)


def test_weak_listener_is_reported_and_remediated(pack: ModuleType) -> None:
    props: dict[str, Any] = {"protocol": "HTTPS", "port": 443, "sslPolicy": WEAK, "tags": {}}
    lines = pack.violations(LISTENER, "shop", props, {})
    assert len(lines) == 1 and lines[0].startswith("sslPolicy should be 'ELBSecurityPolicy-")
    assert "accepts TLS 1.0, 1.1" in lines[0]
    fixed = pack.remediation(LISTENER, "shop", props, {})
    assert fixed["port"] == 443 and fixed["protocol"] == "HTTPS"
    assert _versions(fixed["sslPolicy"])[0] == "1.2"
    assert pack.violations(LISTENER, "shop", fixed, {}) == []


def test_listener_without_policy_gets_the_aws_default_judged(pack: ModuleType) -> None:
    props = {"protocol": "TLS", "port": 8883}
    fixed = pack.remediation("aws:alb/listener:Listener", "mqtt", props, {})
    assert fixed["alpnPolicy"] == "HTTP2Preferred"
    assert "1.0" not in _versions(fixed["sslPolicy"])


@pytest.mark.parametrize(
    ("type_", "props"),
    [
        (LISTENER, {"protocol": "HTTPS", "sslPolicy": STRICT}),
        (LISTENER, {"protocol": "HTTP", "port": 80}),
        (LISTENER, {"protocol": "TLS", "sslPolicy": STRICT, "alpnPolicy": "HTTP1Only"}),
        ("aws:lb/loadBalancer:LoadBalancer", {"enableHttp2": True}),
        ("aws:lb/loadBalancer:LoadBalancer", {"loadBalancerType": "network"}),
        ("gcp:compute/sSLPolicy:SSLPolicy", {"minTlsVersion": "TLS_1_3", "profile": "RESTRICTED"}),
        ("gcp:compute/targetHttpsProxy:TargetHttpsProxy", {"sslPolicy": "projects/p/x"}),
        ("aws:s3/bucket:Bucket", {"acl": "public-read"}),
    ],
)
def test_compliant_resources_pass(pack: ModuleType, type_: str, props: dict[str, Any]) -> None:
    assert pack.violations(type_, "r", props, {}) == []
    assert pack.remediation(type_, "r", props, {}) is None


def test_http2_and_gcp_policies_are_raised(pack: ModuleType) -> None:
    lb = pack.remediation("aws:lb/loadBalancer:LoadBalancer", "alb", {"enableHttp2": False}, {})
    assert lb == {"enableHttp2": True}
    ssl = pack.remediation(
        "gcp:compute/regionSslPolicy:RegionSslPolicy", "p", {"region": "europe-west1"}, {}
    )
    assert ssl == {"region": "europe-west1", "minTlsVersion": "TLS_1_2", "profile": "MODERN"}


def test_proxy_without_ssl_policy_is_reported_not_remediated(pack: ModuleType) -> None:
    proxy = "gcp:compute/regionTargetHttpsProxy:RegionTargetHttpsProxy"
    lines = pack.violations(proxy, "eu", {"region": "europe-west1"}, {})
    assert lines == [
        "sslPolicy should be the SSL policy remediate-tls (TLS_1_2, MODERN): no SSL policy: "
        "Google's default (COMPATIBLE) accepts TLS 1.0, 1.1; policy minimum is TLS 1.2"
    ]
    assert pack.remediation(proxy, "eu", {"region": "europe-west1"}, {}) is None
    assert not next(p for p in pack.POLICIES if proxy in p.types).fixable


def test_opt_out_and_policy_file(pack: ModuleType, tmp_path: Path) -> None:
    weak = {"protocol": "HTTPS", "sslPolicy": WEAK}
    tagged = {**weak, "tags": {"remediate:skip": "until March"}}
    assert pack.violations(LISTENER, "pos", tagged, {}) == []
    assert pack.violations(LISTENER, "legacy-pos", weak, {"skip": ["legacy-*"]}) == []
    policy_file = tmp_path / "remediate.yaml"
    policy_file.write_text('tls:\n  minimum: "1.3"\n', encoding="utf-8")
    config = {"policyFile": str(policy_file)}
    fixed = pack.remediation(LISTENER, "shop", {"protocol": "HTTPS", "sslPolicy": STRICT}, {})
    assert fixed is None
    fixed = pack.remediation(
        LISTENER,
        "shop",
        {"protocol": "HTTPS", "sslPolicy": "ELBSecurityPolicy-TLS13-1-2-2021-06"},
        config,
    )
    assert _versions(fixed["sslPolicy"]) == ("1.3",)


@pytest.mark.skipif(
    not PACK_PYTHON.exists(), reason="the pack's own venv is missing: make policy-pack-venv"
)
def test_the_pack_served_by_pulumi_policy_reports_and_remediates() -> None:
    requests = [
        {"type": LISTENER, "name": "shop", "props": {"protocol": "HTTPS", "sslPolicy": WEAK}},
        {"type": LISTENER, "name": "admin", "props": {"protocol": "HTTPS", "sslPolicy": STRICT}},
        {"type": "gcp:compute/targetHttpsProxy:TargetHttpsProxy", "name": "web", "props": {}},
    ]
    done = subprocess.run(
        [str(PACK_PYTHON), str(Path(__file__).with_name("policy_pack_driver.py"))],
        input=json.dumps(requests),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    shop, admin, web = json.loads(done.stdout)
    assert [v["policy"] for v in shop["violations"]] == ["elb-listener-tls"]
    (fix,) = shop["remediations"]
    assert fix["policy"] == "elb-listener-tls"
    assert _versions(fix["props"]["sslPolicy"])[0] == "1.2"
    assert admin == {"violations": [], "remediations": []}
    assert [v["policy"] for v in web["violations"]] == ["gcp-proxy-ssl-policy"]
    assert "remediate-tls" in web["violations"][0]["message"]
    assert web["remediations"] == []
