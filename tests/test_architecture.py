"""The provider contract as users of the library and authors of a provider meet it: the registry
(third-party providers included), typed targets, plan format 2 and the migration of format 1, the
permissions each provider declares (checked against the calls it really makes), and the facade."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

import remediate
from remediate import executors, registry
from remediate.model import Plan
from remediate.policy import parse
from remediate.progress import Silent
from remediate.providers.aws.model import ListenerTarget
from remediate.sandbox.aws import Fleet, seed_api_domains, seed_classic_fleet, seed_rest_apis
from remediate.targets import HostFile
from tests.conftest import Cli

ROOT = Path(__file__).resolve().parents[1]


def test_the_builtin_providers_come_from_the_entry_points() -> None:
    assert list(registry.providers()) == ["aws", "gcp", "haproxy", "nginx"]
    for provider in registry.providers().values():
        ids = [rule.id for rule in provider.rules]
        assert len(ids) == len(set(ids)), provider.name
        assert all(rule.url.startswith("https://") for rule in provider.rules)
        assert provider.default_executor in provider.executors()


def test_every_name_the_library_exports_is_what_it_says() -> None:
    """Each name of `remediate.__all__` after the providers are loaded (which binds the package
    `remediate.providers` on `remediate`): no export is a module in its place. The facade's list
    of providers was `remediate.providers()`, which the package shadowed before any call."""
    registry.providers()
    for name in remediate.__all__:
        assert not isinstance(getattr(remediate, name), types.ModuleType), name
    assert remediate.registered_providers() is registry.providers()
    assert list(remediate.registered_providers()) == ["aws", "gcp", "haproxy", "nginx"]


def test_an_unknown_provider_or_executor_is_one_line_naming_the_known_ones() -> None:
    with pytest.raises(remediate.RemediateError, match=r"unknown provider 'f5' \(known: aws, gcp"):
        registry.get("f5")
    with pytest.raises(remediate.RemediateError, match=r"unknown executor 'terraform' \(known: "):
        executors.get("terraform", executors.Settings(), Silent())


@pytest.fixture
def third_party(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """An installed distribution (a dist-info directory on sys.path) that registers a provider
    of its own in the `remediate.providers` entry points, as a third-party package would."""
    site = tmp_path / "site"
    package = site / "edgecorp_remediate"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(
        textwrap.dedent(
            """
            from remediate.inventory import Inventory
            from remediate.model import Endpoint
            from remediate.policy import Section
            from remediate.provider import Permissions, Provider, RuleInfo, Severity
            from remediate.rules import Desired, Verdict
            from remediate.targets import Target


            class EdgeSettings(Section):
                appliances: list[str] = []


            class ApplianceTarget(Target):
                type: str = "edgecorp-appliance"
                serial: str


            class EdgeCorp(Provider):
                name = "edgecorp"
                title = "EdgeCorp appliances"
                section = EdgeSettings
                kinds = ("appliance",)
                default_executor = "edgecorp-api"
                rules = (
                    RuleInfo("edgecorp-tls", "Old TLS", Severity.HIGH, "Raise it.",
                             "https://example.com/tls"),
                )
                permissions = Permissions("host", ("read the appliance",), ("write it",))

                def executors(self):
                    return {}

                def discover(self, policy, progress):
                    section = policy.sections["edgecorp"]
                    return Inventory(
                        [
                            Endpoint(provider="edgecorp", resource=serial, kind="appliance",
                                     name=serial, settings={"tls": "1.0"})
                            for serial in section.appliances
                        ],
                        providers=["edgecorp"],
                    )

                def evaluate(self, endpoint, policy, facts):
                    return Verdict([Desired("tls", "1.0", policy.tls.minimum, "old",
                                            ("edgecorp-tls",))])

                def target(self, endpoint):
                    return ApplianceTarget(serial=endpoint.resource)


            PROVIDER = EdgeCorp()
            """
        ),
        encoding="utf-8",
    )
    info = site / "edgecorp_remediate-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: edgecorp-remediate\nVersion: 1.0\n"
    )
    (info / "entry_points.txt").write_text(
        "[remediate.providers]\nedgecorp = edgecorp_remediate:PROVIDER\n", encoding="utf-8"
    )
    monkeypatch.syspath_prepend(str(site))
    _forget_providers()
    yield site
    monkeypatch.undo()
    _forget_providers()


def _forget_providers() -> None:
    registry.providers.cache_clear()
    registry.executor_factories.cache_clear()
    registry.policy_model.cache_clear()


def test_a_third_party_package_adds_a_provider_without_touching_remediate(
    third_party: Path,
) -> None:
    policy = parse("edgecorp: {appliances: [sn-1, sn-2]}\ntls: {minimum: '1.3'}\n")
    assert policy.providers == ["edgecorp"]
    plan = remediate.plan(policy)
    assert [(c.provider, c.resource, c.after, c.rules) for c in plan.changes] == [
        ("edgecorp", "sn-1", "1.3", ("edgecorp-tls",)),
        ("edgecorp", "sn-2", "1.3", ("edgecorp-tls",)),
    ]
    # Its typed target survives the plan file.
    loaded = Plan.model_validate_json(plan.to_json())
    assert loaded.changes[0].target.model_dump() == {"type": "edgecorp-appliance", "serial": "sn-1"}
    with pytest.raises(remediate.RemediateError, match=r"edgecorp\.appliances"):
        parse("edgecorp: {appliances: 3}\n")


def test_a_policy_section_nobody_registered_is_an_unknown_setting() -> None:
    with pytest.raises(remediate.RemediateError, match=r"<policy>:2: f5: unknown setting"):
        parse("tls: {minimum: '1.2'}\nf5: {}\n")


def test_plan_json_is_format_2_with_typed_targets(cli: Cli, fleet: Fleet, tmp_path: Path) -> None:
    policy = tmp_path / "remediate.yaml"
    policy.write_text("aws: {regions: [us-east-1, eu-west-1]}\n", encoding="utf-8")
    result = cli("plan", "-p", str(policy), "--quiet", "--format", "json")
    document = json.loads(result.stdout)
    assert document["format_version"] == 2
    shop = next(c for c in document["changes"] if c["name"] == "shop:443 HTTPS")
    assert shop["kind"] == "listener"
    assert shop["rules"] == ["aws-elb-tls-floor"]
    target = shop["target"]
    assert target["type"] == "aws-listener"
    assert target["port"] == 443 and target["protocol"] == "HTTPS"
    assert target["arn"] == shop["resource"]
    assert ":loadbalancer/app/shop/" in target["load_balancer_arn"]
    grpc = next(f for f in document["findings"] if f["rule"] == "aws-tg-backend-protocol")
    assert grpc["severity"] == "medium"


def _v1(change: dict[str, Any]) -> dict[str, Any]:
    return {
        "format_version": 1,
        "run_id": "",
        "created_at": "2026-01-02T03:04:05Z",
        "policy_digest": "abc",
        "providers": [change["provider"]],
        "changes": [change],
        "findings": [
            {"provider": "aws", "resource": "arn:tg", "message": "502 risk", "severity": "warning"}
        ],
        "excluded": [],
    }


def test_a_format_1_plan_is_migrated_on_read(tmp_path: Path) -> None:
    listener = "arn:aws:elasticloadbalancing:us-east-1:123:listener/app/shop/1/2"
    old = _v1(
        {
            "provider": "aws",
            "resource": listener,
            "attribute": "ssl_policy",
            "before": "ELBSecurityPolicy-2016-08",
            "after": "ELBSecurityPolicy-TLS13-1-2-2021-06",
            "reason": "weak",
            "executor": "boto3",
            "fingerprint": "sha256:1",
            "name": "shop:8443 HTTPS",
            "location": "us-east-1",
            "context": {
                "kind": "listener",
                "load_balancer_arn": "arn:lb",
                "load_balancer_type": "application",
                "dns_name": "shop.example",
            },
        }
    )
    path = tmp_path / "old.json"
    path.write_text(json.dumps(old), encoding="utf-8")
    plan = Plan.load(path)
    [change] = plan.changes
    assert change.kind == "listener"
    assert change.target == ListenerTarget(
        arn=listener,
        region="us-east-1",
        port=8443,
        protocol="HTTPS",
        load_balancer_arn="arn:lb",
        load_balancer_type="application",
        dns_name="shop.example",
    )
    assert plan.findings[0].severity == "medium"

    nginx = _v1(
        {
            "provider": "nginx",
            "resource": "web1:/etc/nginx/nginx.conf",
            "attribute": "content",
            "before": "a",
            "after": "b",
            "reason": "weak",
            "executor": "ansible",
            "fingerprint": "sha256:2",
            "context": {
                "kind": "nginx-host",
                "host": "web1",
                "path": "/etc/nginx/nginx.conf",
                "sockets": [
                    {"address": "*", "port": 443, "server_name": "a", "ws_paths": ["/ws/"]}
                ],
            },
        }
    )
    path.write_text(json.dumps(nginx), encoding="utf-8")
    [file_change] = Plan.load(path).changes
    assert file_change.kind == "file"
    assert isinstance(file_change.target, HostFile)
    assert (file_change.target.host, file_change.target.path) == ("web1", "/etc/nginx/nginx.conf")
    assert file_change.target.sockets[0].ws_paths == ("/ws/",)


def test_a_plan_with_a_target_nobody_registered_is_one_line(tmp_path: Path) -> None:
    document = json.loads(
        Plan(providers=["aws"]).to_json().replace('"changes": []', '"changes": [{}]')
    )
    document["changes"] = [
        {
            "provider": "aws",
            "kind": "listener",
            "resource": "arn:x",
            "attribute": "ssl_policy",
            "before": None,
            "after": None,
            "reason": "",
            "executor": "boto3",
            "fingerprint": "",
            "target": {"type": "f5-virtual-server"},
        }
    ]
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(document), encoding="utf-8")
    with pytest.raises(remediate.RemediateError, match="unknown target type 'f5-virtual-server'"):
        Plan.load(path)


def test_aws_permissions_cover_every_call_a_plan_and_an_apply_make(
    cli: Cli, fleet: Fleet, tmp_path: Path
) -> None:
    """The IAM document `remediate permissions --write` prints allows every ELBv2, Classic ELB,
    API Gateway and STS operation remediate really calls (recorded from botocore's own events),
    and the read-only one allows every call of a plan, and no write."""
    seed_rest_apis(seed_api_domains(seed_classic_fleet(fleet)))
    called: list[str] = []

    def record(model: Any, **_: Any) -> None:
        service = model.service_model.signing_name
        # API Gateway's IAM actions are the HTTP methods of its resources.
        action = model.http["method"] if service == "apigateway" else model.name
        called.append(f"{service}:{action}")

    original = boto3.session.Session.client

    def client(self: boto3.session.Session, *args: Any, **kwargs: Any) -> Any:
        made = original(self, *args, **kwargs)
        made.meta.events.register("before-call", record)
        return made

    policy = tmp_path / "remediate.yaml"
    policy.write_text("aws: {regions: [us-east-1, eu-west-1]}\n", encoding="utf-8")
    saved = tmp_path / "plan.json"
    mp = pytest.MonkeyPatch()
    mp.setattr(boto3.session.Session, "client", client)
    try:
        assert cli("plan", "-p", str(policy), "--quiet", "--out", str(saved)).code == 0
        planned = set(called)
        result = cli("apply", str(saved), "-p", str(policy), "--quiet", "--no-verify")
        assert result.code == 0, result.stderr
    finally:
        mp.undo()
    applied = set(called)

    def allowed(*args: str) -> set[str]:
        document = json.loads(cli("permissions", "--provider", "aws", *args).stdout)
        return {action for statement in document["Statement"] for action in statement["Action"]}

    assert planned and planned <= allowed()
    assert applied - planned, "the apply made no write call"
    assert applied <= allowed("--write")
    assert not (allowed() & {"elasticloadbalancing:ModifyListener"})
    assert "elasticloadbalancing:SetLoadBalancerPoliciesOfListener" in applied
    assert "apigateway:PATCH" in applied


def test_the_cli_prints_its_version_and_the_providers(cli: Cli) -> None:
    assert cli("--version").stdout == f"remediate {remediate.__version__}\n"
    listing = json.loads(cli("providers", "--format", "json").stdout)
    assert [item["name"] for item in listing] == ["aws", "gcp", "haproxy", "nginx"]
    assert "aws-elb-tls-floor" in [rule["id"] for rule in listing[0]["rules"]]


def test_no_provider_name_switch_outside_the_providers() -> None:
    """Core modules find providers through the registry; only documentation names them."""
    engine_layer = [
        path
        for path in (ROOT / "remediate").glob("*.py")
        if path.name not in {"clients.py", "diagnose.py", "verify.py"}
    ]
    offenders = []
    for path in engine_layer:
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            code = line.split("#", 1)[0]
            if any(f'"{name}"' in code for name in ("aws", "gcp", "haproxy", "nginx")):
                offenders.append(f"{path.name}:{number}: {line.strip()}")
    assert offenders == []


def test_the_python_api_example_of_the_readme_runs(fleet: Fleet, tmp_path: Path) -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    example = readme.split("## Python API", 1)[1].split("```python", 1)[1].split("```", 1)[0]
    (tmp_path / "remediate.yaml").write_text(
        "aws: {regions: [us-east-1, eu-west-1]}\n", encoding="utf-8"
    )
    result = subprocess.run(
        [sys.executable, "-c", example],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
        env={**_env(), "REMEDIATE_STATE_DIR": str(tmp_path / "state")},
    )
    assert result.returncode == 0, result.stderr
    assert "applied" in result.stdout


def _env() -> dict[str, str]:
    import os

    return dict(os.environ)
