"""`remediate.pulumi.enforce()` under Pulumi's mocks with the real pulumi_aws/pulumi_gcp classes:
what the engine receives for each resource once the program has called enforce()."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_gcp as gcp
import pytest

from remediate import planner
from remediate.inventory import Inventory
from remediate.model import Endpoint
from remediate.policy import build
from remediate.policy import model as policy_model
from remediate.providers.aws.rules import SslPolicy
from remediate.providers.gcp.rules import Link
from remediate.pulumi import EnforceError, enforce
from remediate.pulumi.catalog import bundled
from tests.pulumi_engine import Registered, run

APIS = ["transforms", "transformations"]
WEAK = "ELBSecurityPolicy-2016-08"
STRICT = "ELBSecurityPolicy-TLS13-1-3-2021-06"


def _versions(name: str) -> tuple[str, ...]:
    return next(p.versions for p in bundled() if p.name == name)


def _listener(name: str, protocol: str, **extra: Any) -> aws.lb.Listener:
    return aws.lb.Listener(
        name,
        load_balancer_arn=f"arn:aws:elasticloadbalancing:us-east-1:1:loadbalancer/app/{name}/1",
        protocol=protocol,
        port=443,
        default_actions=[aws.lb.ListenerDefaultActionArgs(type="forward", target_group_arn="tg")],
        **extra,
    )


def _proxy(name: str, **extra: Any) -> gcp.compute.TargetHttpsProxy:
    return gcp.compute.TargetHttpsProxy(
        name, url_map="projects/p/global/urlMaps/web", ssl_certificates=["cert"], **extra
    )


def _regional_proxy(name: str, region: str) -> gcp.compute.RegionTargetHttpsProxy:
    return gcp.compute.RegionTargetHttpsProxy(
        name,
        url_map=f"projects/p/regions/{region}/urlMaps/web",
        ssl_certificates=["cert"],
        region=region,
    )


def _of_type(resources: dict[str, Registered], type_: str) -> list[Registered]:
    return [r for r in resources.values() if r.type == type_]


@pytest.mark.parametrize("api", APIS)
def test_weak_program_comes_out_compliant(api: str) -> None:
    def program() -> None:
        assert enforce(api=api).api == api  # type: ignore[arg-type]
        _listener("alb-default", "HTTPS")
        _listener("alb-weak", "HTTPS", ssl_policy=WEAK)
        _listener("alb-strict", "HTTPS", ssl_policy=STRICT)
        _listener("alb-http", "HTTP")
        _listener("nlb-tls", "TLS", ssl_policy="ELBSecurityPolicy-TLS-1-1-2017-01")
        aws.alb.Listener(
            "alias-weak",
            load_balancer_arn="arn:lb",
            protocol="HTTPS",
            port=443,
            default_actions=[
                aws.alb.ListenerDefaultActionArgs(type="forward", target_group_arn="t")
            ],
        )
        aws.lb.LoadBalancer("alb", enable_http2=False)
        aws.lb.LoadBalancer("nlb", load_balancer_type="network")
        _proxy("web")
        _proxy("api")
        _regional_proxy("eu", "europe-west1")
        _regional_proxy("us", "us-central1")
        gcp.compute.SSLPolicy("weak-policy", min_tls_version="TLS_1_0", profile="COMPATIBLE")
        gcp.compute.SSLPolicy("strict-policy", min_tls_version="TLS_1_3", profile="RESTRICTED")
        gcp.compute.RegionSslPolicy("regional-weak", region="europe-west1")

    resources = run(program)
    chosen = resources["alb-default"].inputs["sslPolicy"]
    assert _versions(chosen)[0] == "1.2" and "1.3" in _versions(chosen)
    assert resources["alb-weak"].inputs["sslPolicy"] == chosen
    assert resources["alias-weak"].inputs["sslPolicy"] == chosen
    assert resources["alb-strict"].inputs["sslPolicy"] == STRICT
    assert "alpnPolicy" not in resources["alb-default"].inputs
    assert "sslPolicy" not in resources["alb-http"].inputs
    nlb = resources["nlb-tls"].inputs
    assert not [v for v in _versions(nlb["sslPolicy"]) if v < "1.2"]
    assert nlb["alpnPolicy"] == "HTTP2Preferred"
    assert resources["alb"].inputs["enableHttp2"] is True
    assert "enableHttp2" not in resources["nlb"].inputs

    policies = _of_type(resources, "gcp:compute/sSLPolicy:SSLPolicy")
    managed = [p for p in policies if p.inputs.get("name") == "remediate-tls"]
    assert len(managed) == 1, "one managed SSL policy for every global proxy of the stack"
    assert managed[0].inputs["minTlsVersion"] == "TLS_1_2"
    assert managed[0].inputs["profile"] == "MODERN"
    managed_id = f"{managed[0].name}-id"
    assert resources["web"].inputs["sslPolicy"] == managed_id
    assert resources["api"].inputs["sslPolicy"] == managed_id
    regional = _of_type(resources, "gcp:compute/regionSslPolicy:RegionSslPolicy")
    by_region = {r.inputs["region"]: r for r in regional if r.inputs.get("name") == "remediate-tls"}
    assert sorted(by_region) == ["europe-west1", "us-central1"]
    for proxy, region in (("eu", "europe-west1"), ("us", "us-central1")):
        assert resources[proxy].inputs["sslPolicy"] == f"{by_region[region].name}-id"
        assert by_region[region].inputs["minTlsVersion"] == "TLS_1_2"

    assert resources["weak-policy"].inputs["minTlsVersion"] == "TLS_1_2"
    assert resources["weak-policy"].inputs["profile"] == "MODERN"
    assert resources["strict-policy"].inputs["minTlsVersion"] == "TLS_1_3"
    assert resources["strict-policy"].inputs["profile"] == "RESTRICTED"
    assert resources["regional-weak"].inputs["minTlsVersion"] == "TLS_1_2"


@pytest.mark.parametrize("api", APIS)
def test_opt_out_by_tag_and_by_name(api: str) -> None:
    def program() -> None:
        enforce(skip=["legacy-*"], api=api)  # type: ignore[arg-type]
        _listener("tagged", "HTTPS", ssl_policy=WEAK, tags={"remediate:skip": "POS terminals"})
        _listener("tag-says-false", "HTTPS", ssl_policy=WEAK, tags={"remediate:skip": "false"})
        _listener("legacy-pos", "HTTPS", ssl_policy=WEAK)
        _proxy("legacy-proxy")
        aws.lb.LoadBalancer("legacy-alb", enable_http2=False)

    resources = run(program)
    assert resources["tagged"].inputs["sslPolicy"] == WEAK
    assert resources["tag-says-false"].inputs["sslPolicy"] != WEAK
    assert resources["legacy-pos"].inputs["sslPolicy"] == WEAK
    assert "sslPolicy" not in resources["legacy-proxy"].inputs
    assert resources["legacy-alb"].inputs["enableHttp2"] is False
    assert not _of_type(resources, "gcp:compute/sSLPolicy:SSLPolicy")


@pytest.mark.parametrize("api", APIS)
def test_policy_file_and_inputs_known_only_later(api: str, tmp_path: Path) -> None:
    path = tmp_path / "remediate.yaml"
    path.write_text(
        'tls:\n  minimum: "1.3"\nhttp2: false\ngcp:\n  ssl_policy_name: edge-tls\n'
        "  profile: RESTRICTED\n",
        encoding="utf-8",
    )

    def program() -> None:
        enforce(path, api=api)  # type: ignore[arg-type]
        _listener("alb", "HTTPS", ssl_policy=pulumi.Output.from_input(WEAK))
        _listener("nlb", "TLS", ssl_policy=STRICT)
        aws.lb.LoadBalancer("alb-lb", enable_http2=False)
        _proxy("web", project="shop")

    resources = run(program)
    assert _versions(resources["alb"].inputs["sslPolicy"]) == ("1.3",)
    assert "alpnPolicy" not in resources["nlb"].inputs, "http2: false asks for no ALPN"
    assert resources["alb-lb"].inputs["enableHttp2"] is False
    (managed,) = _of_type(resources, "gcp:compute/sSLPolicy:SSLPolicy")
    assert managed.inputs == {
        "name": "edge-tls",
        "project": "shop",
        "minTlsVersion": "TLS_1_3",
        "profile": "RESTRICTED",
    }
    assert resources["web"].inputs["sslPolicy"] == f"{managed.name}-id"


def test_auto_uses_transforms_where_the_engine_supports_them() -> None:
    apis: list[str] = []

    def program() -> None:
        apis.append(enforce().api)
        _listener("alb", "HTTPS")

    resources = run(program)
    assert apis == ["transforms"]
    assert resources["alb"].inputs["sslPolicy"] != WEAK


def test_a_bad_policy_file_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "remediate.yaml"
    path.write_text('tls:\n  minimum: "1.1"\n', encoding="utf-8")
    with pytest.raises(EnforceError) as caught:
        enforce(path)
    assert str(caught.value).startswith(f"{path}:2: tls.minimum: must be")
    assert isinstance(caught.value, pulumi.RunError), "Pulumi prints RunErrors without a traceback"


def test_an_explicit_policy_too_weak_fails_naming_the_listener() -> None:
    policy = policy_model().model_validate({"aws": {"ssl_policy": WEAK}})
    errors: list[str] = []

    def program() -> None:
        enforce(policy, api="transformations")
        try:
            _listener("alb", "HTTPS")
        except EnforceError as exc:
            errors.append(str(exc))

    run(program)
    assert errors == [
        f"alb: aws.ssl_policy {WEAK} accepts TLS 1.0, 1.1, below tls.minimum 1.2",
    ]


@pytest.mark.parametrize("minimum", ["1.2", "1.3"])
def test_planner_and_library_agree(minimum: str) -> None:
    """The same settings, as discovered cloud state for the planner and as declared inputs for
    the library, get the same new values."""
    policy = build(tls={"minimum": minimum}, gcp={"ssl_policy_name": "remediate-tls"})
    catalog: list[SslPolicy] = bundled()
    listeners = {
        "alb-weak": {"protocol": "HTTPS", "ssl_policy": WEAK, "alpn_policy": None},
        "alb-tls12": {
            "protocol": "HTTPS",
            "ssl_policy": "ELBSecurityPolicy-TLS13-1-2-2021-06",
            "alpn_policy": None,
        },
        "alb-strict": {"protocol": "HTTPS", "ssl_policy": STRICT, "alpn_policy": None},
        "nlb-weak": {
            "protocol": "TLS",
            "ssl_policy": "ELBSecurityPolicy-TLS-1-1-2017-01",
            "alpn_policy": None,
        },
        "nlb-http1": {"protocol": "TLS", "ssl_policy": STRICT, "alpn_policy": "HTTP1Only"},
    }
    lb_type = {"HTTPS": "application", "TLS": "network"}
    endpoints = [
        Endpoint(
            provider="aws",
            resource=f"arn:listener/{name}",
            kind="listener",
            name=name,
            location="us-east-1",
            settings={**settings, "port": 443},
            context={
                "load_balancer_type": lb_type[settings["protocol"]],
                "load_balancer_arn": f"arn:loadbalancer/{name}",
            },
        )
        for name, settings in listeners.items()
    ]
    endpoints += [
        Endpoint(
            provider="aws",
            resource=f"arn:loadbalancer/{name}",
            kind="load-balancer",
            name=name,
            location="us-east-1",
            settings={"routing.http2.enabled": enabled},
            context={"load_balancer_type": "application"},
        )
        for name, enabled in (("http2-off", False), ("http2-on", True))
    ]
    proxy_link = "https://www.googleapis.com/compute/v1/projects/shop/global/targetHttpsProxies/web"
    endpoints.append(
        Endpoint(
            provider="gcp",
            resource=proxy_link,
            kind="target-https-proxy",
            name="web",
            settings={"ssl_policy": None},
        )
    )
    inventory = Inventory(
        endpoints=endpoints,
        facts={"aws.ssl_policies": {"us-east-1": catalog}, "gcp.ssl_policies": {}},
    )
    planned = {
        (change.name, change.attribute): change.after
        for change in planner.plan(inventory, policy).changes
    }

    def program() -> None:
        enforce(policy, ssl_policies=catalog, api="transformations")
        for name, settings in listeners.items():
            _listener(
                name,
                settings["protocol"],
                ssl_policy=settings["ssl_policy"],
                alpn_policy=settings["alpn_policy"],
            )
        aws.lb.LoadBalancer("http2-off", enable_http2=False)
        aws.lb.LoadBalancer("http2-on", enable_http2=True)
        _proxy("web", project="shop")

    resources = run(program)
    declared: dict[tuple[str, str], Any] = {}
    for name, settings in listeners.items():
        inputs = resources[name].inputs
        if inputs.get("sslPolicy") != settings["ssl_policy"]:
            declared[(name, "ssl_policy")] = inputs["sslPolicy"]
        if inputs.get("alpnPolicy") != settings["alpn_policy"]:
            declared[(name, "alpn_policy")] = inputs["alpnPolicy"]
    for name, enabled in (("http2-off", False), ("http2-on", True)):
        if resources[name].inputs["enableHttp2"] != enabled:
            declared[(name, "routing.http2.enabled")] = resources[name].inputs["enableHttp2"]
    (managed,) = _of_type(resources, "gcp:compute/sSLPolicy:SSLPolicy")
    if resources["web"].inputs.get("sslPolicy") == f"{managed.name}-id":
        scope = Link("shop", None, "sslPolicies", managed.inputs["name"])
        declared[("web", "ssl_policy")] = scope.self_link

    assert declared == planned
    assert ("alb-weak", "ssl_policy") in planned
