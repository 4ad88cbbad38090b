"""`enforce()` and the CrossGuard pack on Classic ELB listener policies (`aws.elb.ListenerPolicy`)
and the negotiation policies they assign, with the real pulumi_aws classes under Pulumi's mocks
(tests/pulumi_engine)."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pulumi_aws as aws
import pytest

from remediate.policy import build
from remediate.pulumi import enforce
from remediate.pulumi.catalog import classic_bundled
from tests.pulumi_engine import Registered, run

PACK = Path(__file__).resolve().parent.parent / "stacks" / "policy-pack" / "policies.py"
# The virtualenv PulumiPolicy.yaml names; `make policy-pack-venv` builds it as Pulumi would.
PACK_PYTHON = PACK.parent / "venv" / "bin" / "python"
LISTENER_POLICY = "aws:elb/listenerPolicy:ListenerPolicy"
CLASSIC_POLICY = "aws:elb/loadBalancerPolicy:LoadBalancerPolicy"
NEGOTIATION = "SSLNegotiationPolicyType"
REFERENCE = "Reference-Security-Policy"
STRICT = "ELBSecurityPolicy-TLS-1-2-2017-01"
OWN = f"remediate-{STRICT}"
APIS = ["transforms", "transformations"]


@pytest.fixture(scope="module")
def pack() -> ModuleType:
    spec = importlib.util.spec_from_file_location("remediate_pack_classic", PACK)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _negotiation(name: str, balancer: str, reference: str) -> aws.elb.LoadBalancerPolicy:
    return aws.elb.LoadBalancerPolicy(
        name,
        load_balancer_name=balancer,
        policy_name=name,
        policy_type_name=NEGOTIATION,
        policy_attributes=[{"name": REFERENCE, "value": reference}],
    )


def _program(api: str) -> Any:
    def program() -> None:
        enforce(build(), api=api)  # type: ignore[arg-type]
        weak = _negotiation("weak", "shop", "ELBSecurityPolicy-2016-08")
        sticky = aws.elb.LoadBalancerPolicy(
            "sticky",
            load_balancer_name="shop",
            policy_name="sticky",
            policy_type_name="LBCookieStickinessPolicyType",
            policy_attributes=[{"name": "CookieExpirationPeriod", "value": "300"}],
        )
        # Names known only once the policies resolve (Outputs), as programs write them.
        aws.elb.ListenerPolicy(
            "shop-443",
            load_balancer_name="shop",
            load_balancer_port=443,
            policy_names=[weak.policy_name, sticky.policy_name],
        )
        # Stickiness only: ELB applies ELBSecurityPolicy-2016-08.
        aws.elb.ListenerPolicy(
            "shop-8443",
            load_balancer_name="shop",
            load_balancer_port=8443,
            policy_names=[sticky.policy_name],
        )
        aws.elb.ListenerPolicy(
            "shop-9443", load_balancer_name="shop", load_balancer_port=9443, policy_names=[]
        )
        aws.elb.ListenerPolicy(
            "pos-443", load_balancer_name="pos", load_balancer_port=443, policy_names=["external"]
        )

    return program


def _negotiation_of(resources: dict[str, Registered], name: str) -> str:
    attributes = resources[name].inputs["policyAttributes"]
    assert resources[name].inputs["policyTypeName"] == NEGOTIATION
    return str(next(a["value"] for a in attributes if a["name"] == REFERENCE))


@pytest.mark.parametrize("api", APIS)
def test_classic_listeners_end_up_on_a_negotiation_policy_that_meets_the_minimum(api: str) -> None:
    resources = run(_program(api))
    # The assigned weak policy is fixed where it is declared; the listener keeps its names.
    assert _negotiation_of(resources, "weak") == STRICT
    assert resources["shop-443"].inputs["policyNames"] == ["weak", "sticky"]
    # Listeners without a negotiation policy get remediate's own, once per load balancer, and
    # keep the policies they had (set_load_balancer_policies_of_listener replaces the list).
    own = [r for r in resources.values() if r.type == CLASSIC_POLICY and r.name.startswith(OWN)]
    assert [(r.inputs["loadBalancerName"], r.inputs["policyName"]) for r in own] == [("shop", OWN)]
    assert _negotiation_of(resources, own[0].name) == STRICT
    assert resources["shop-8443"].inputs["policyNames"] == ["sticky", OWN]
    assert resources["shop-9443"].inputs["policyNames"] == [OWN]
    # A policy the program does not declare may be a negotiation policy: left alone.
    assert resources["pos-443"].inputs["policyNames"] == ["external"]


def test_no_predefined_policy_meeting_the_minimum_or_an_opt_out_changes_nothing() -> None:
    """Classic ELB has no TLS 1.3: with that minimum the rule only reports (move the listener to
    an ALB or NLB). A listener policy skipped by name is left alone."""

    def program() -> None:
        enforce(build(tls={"minimum": "1.3"}))
        aws.elb.ListenerPolicy(
            "strict", load_balancer_name="shop", load_balancer_port=443, policy_names=[]
        )

    def skipping() -> None:
        enforce(build(), skip=["legacy-*"])
        aws.elb.ListenerPolicy(
            "legacy-443", load_balancer_name="pos", load_balancer_port=443, policy_names=[]
        )

    for body, name in ((program, "strict"), (skipping, "legacy-443")):
        resources = run(body)
        assert resources[name].inputs.get("policyNames") in (None, [])
        assert not [r for r in resources.values() if r.type == CLASSIC_POLICY]


def test_the_own_policy_references_the_most_compatible_predefined_policy_that_meets() -> None:
    """The reference is the Classic rule's choice among AWS's published Classic table, not a
    name written here: it must meet the minimum and enable no SSLv3."""
    by_name = {item.name: item for item in classic_bundled()}
    assert not by_name[STRICT].weak("1.2") and not by_name[STRICT].sslv3
    assert by_name["ELBSecurityPolicy-2016-08"].weak("1.2") == ["TLS 1.0", "TLS 1.1"]


def test_the_pack_judges_listener_policies_with_the_stacks_negotiation_policies(
    pack: ModuleType,
) -> None:
    weak = {
        "loadBalancerName": "shop",
        "policyName": "weak",
        "policyTypeName": NEGOTIATION,
        "policyAttributes": [{"name": REFERENCE, "value": "ELBSecurityPolicy-TLS-1-1-2017-01"}],
    }
    strict = {
        **weak,
        "policyName": "strict",
        "policyAttributes": [{"name": REFERENCE, "value": STRICT}],
    }
    sticky = {
        "loadBalancerName": "shop",
        "policyName": "sticky",
        "policyTypeName": "LBCookieStickinessPolicyType",
        "policyAttributes": [],
    }

    def listener(port: int, *names: str) -> tuple[str, str, dict[str, Any]]:
        props = {"loadBalancerName": "shop", "loadBalancerPort": port, "policyNames": list(names)}
        return (LISTENER_POLICY, f"shop-{port}", props)

    stack = [
        (CLASSIC_POLICY, "weak", weak),
        (CLASSIC_POLICY, "strict", strict),
        (CLASSIC_POLICY, "sticky", sticky),
        listener(443, "weak", "sticky"),
        listener(8443, "sticky"),
        listener(9443, "strict", "sticky"),
        listener(10443, "external"),
    ]
    found = pack.stack_violations(stack, {})
    assert [index for index, _ in found] == [3, 4]
    assert found[0][1].startswith(
        "assigns the negotiation policy weak, which accepts TLS 1.1 (weak references"
    )
    assert found[0][1].endswith(f"it should reference {STRICT}")
    assert found[1][1] == (
        f"policyNames should include the negotiation policy {OWN} (referencing {STRICT}): "
        "accepts TLS 1.0, TLS 1.1 (no negotiation policy, so ELB applies "
        f"ELBSecurityPolicy-2016-08); policy minimum is TLS 1.2; the new policy references {STRICT}"
    )
    # Opted out by name: nothing to report.
    assert pack.stack_violations(stack, {"skip": ["shop-*"]}) == []
    # On its own, a listener policy is never remediated (the fix is another resource), and the
    # names it gives say nothing without the stack; an empty list does.
    props = stack[4][2]
    assert pack.remediation(LISTENER_POLICY, "shop-8443", props, {}) is None
    assert pack.violations(LISTENER_POLICY, "shop-8443", props, {}) == []
    empty = {**props, "policyNames": []}
    assert pack.remediation(LISTENER_POLICY, "shop-8443", empty, {}) is None
    (line,) = pack.violations(LISTENER_POLICY, "shop-8443", empty, {})
    assert line.startswith(f"policyNames should include the negotiation policy {OWN}")


@pytest.mark.skipif(
    not PACK_PYTHON.exists(), reason="the pack's own venv is missing: make policy-pack-venv"
)
def test_the_pack_served_by_pulumi_policy_reports_listener_policies_as_a_stack() -> None:
    negotiation = {
        "loadBalancerName": "shop",
        "policyName": "weak",
        "policyTypeName": NEGOTIATION,
        "policyAttributes": [{"name": REFERENCE, "value": "ELBSecurityPolicy-2016-08"}],
    }
    requests = [
        {"type": CLASSIC_POLICY, "name": "weak", "props": negotiation},
        {
            "type": LISTENER_POLICY,
            "name": "shop-443",
            "props": {"loadBalancerName": "shop", "loadBalancerPort": 443, "policyNames": ["weak"]},
        },
        {
            "type": LISTENER_POLICY,
            "name": "shop-8443",
            "props": {"loadBalancerName": "shop", "loadBalancerPort": 8443, "policyNames": []},
        },
    ]
    done = subprocess.run(
        [str(PACK_PYTHON), str(Path(__file__).with_name("policy_pack_driver.py")), "--stack"],
        input=json.dumps(requests),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout)
    assert [(v["policy"], v["urn"].rsplit("::", 1)[-1]) for v in found] == [
        ("classic-elb-listener-negotiation", "shop-443"),
        ("classic-elb-listener-negotiation", "shop-8443"),
    ]
    assert "assigns the negotiation policy weak, which accepts TLS 1.0" in found[0]["message"]
    assert OWN in found[1]["message"]
