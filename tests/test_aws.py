"""AWS ELBv2 end to end against a moto server over HTTP: discover, plan, apply, read back."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse

from remediate import planner
from remediate.policy import parse
from remediate.providers.aws import discover as aws_provider
from remediate.sandbox.aws import Fleet, FleetBuilder, MotoServer, seed_fleet
from tests.aws_state import http2_attribute, listener
from tests.conftest import Cli

WritePolicy = Callable[..., Path]
BEST_1_2 = "ELBSecurityPolicy-TLS13-1-2-Res-PQ-2025-09"

POLICY = """\
version: 1
tls:
  minimum: "1.2"
http2: true
aws:
  regions: [us-east-1, eu-west-1]
exclude:
  - match: "arn:aws:elasticloadbalancing:*:*:listener/app/legacy-pos/*"
    reason: "POS terminals speak TLS 1.0 until the March upgrade"
    until: {until}
"""


@pytest.fixture
def policy_file(write_policy: WritePolicy) -> Path:
    return write_policy(POLICY.format(until="2099-03-31"))


def plan_json(cli: Cli, policy_file: Path, *extra: str) -> dict[str, Any]:
    result = cli("plan", "-p", str(policy_file), "--format", "json", "--quiet", *extra)
    assert result.code == 0, result.stderr
    plan: dict[str, Any] = json.loads(result.stdout)
    return plan


def test_plan_finds_every_weak_listener_and_nothing_else(
    cli: Cli, fleet: Fleet, policy_file: Path
) -> None:
    plan = plan_json(cli, policy_file)
    assert plan["format_version"] == 2
    changes = {(c["resource"], c["attribute"]): c for c in plan["changes"]}
    assert changes == {
        (fleet.listeners["shop:443"], "ssl_policy"): changes[
            (fleet.listeners["shop:443"], "ssl_policy")
        ],
        (fleet.listeners["admin:8443"], "ssl_policy"): changes[
            (fleet.listeners["admin:8443"], "ssl_policy")
        ],
        (fleet.listeners["mqtt-edge:8883"], "ssl_policy"): changes[
            (fleet.listeners["mqtt-edge:8883"], "ssl_policy")
        ],
        (fleet.listeners["mqtt-edge:8883"], "alpn_policy"): changes[
            (fleet.listeners["mqtt-edge:8883"], "alpn_policy")
        ],
        (fleet.load_balancers["api"], "routing.http2.enabled"): changes[
            (fleet.load_balancers["api"], "routing.http2.enabled")
        ],
    }
    shop = changes[(fleet.listeners["shop:443"], "ssl_policy")]
    assert shop["before"] == "ELBSecurityPolicy-2016-08"
    assert shop["after"] == BEST_1_2
    assert shop["reason"].startswith("accepts TLS 1.0, 1.1")
    assert shop["executor"] == "boto3"
    assert shop["fingerprint"].startswith("sha256:")
    mqtt = changes[(fleet.listeners["mqtt-edge:8883"], "alpn_policy")]
    assert (mqtt["before"], mqtt["after"]) == (None, "HTTP2Preferred")
    assert changes[(fleet.listeners["mqtt-edge:8883"], "ssl_policy")]["reason"].startswith(
        "accepts TLS 1.1;"
    )
    # The 1.3-only admin:443 policy is stricter than needed and stays; HTTP :80 gets nothing.
    assert fleet.listeners["admin:443"] not in {c["resource"] for c in plan["changes"]}
    assert fleet.listeners["shop:80"] not in {c["resource"] for c in plan["changes"]}
    assert [f["resource"] for f in plan["findings"]] == [fleet.target_groups["api-grpc"]]
    assert "502" in plan["findings"][0]["message"]
    assert [(e["resource"], e["expired"], e["changes"]) for e in plan["excluded"]] == [
        (fleet.listeners["legacy-pos:443"], False, 1)
    ]
    assert plan["summary"]["changes"] == 5


def test_text_plan_reads_like_terraform(cli: Cli, fleet: Fleet, policy_file: Path) -> None:
    result = cli("plan", "-p", str(policy_file), "--quiet")
    assert result.code == 0
    assert f'~ ssl_policy = "ELBSecurityPolicy-2016-08" -> "{BEST_1_2}"' in result.stdout
    assert "# accepts TLS 1.0, 1.1; policy minimum is TLS 1.2" in result.stdout
    assert "~ routing.http2.enabled = false -> true" in result.stdout
    assert "POS terminals speak TLS 1.0 until the March upgrade" in result.stdout
    assert result.stdout.rstrip().endswith("Plan: 5 changes to 4 resources, 1 finding, 1 excluded.")


def test_apply_changes_the_fleet_and_a_second_plan_is_clean(
    cli: Cli, fleet: Fleet, policy_file: Path
) -> None:
    result = cli("apply", "-p", str(policy_file), "--auto-approve", "--quiet")
    assert result.code == 0, result.stderr
    assert "Apply: 5 applied, 0 failed" in result.stdout
    assert listener(fleet, "shop:443")["SslPolicy"] == BEST_1_2
    assert listener(fleet, "admin:8443")["SslPolicy"] == BEST_1_2
    mqtt = listener(fleet, "mqtt-edge:8883")
    assert (mqtt["SslPolicy"], mqtt["AlpnPolicy"]) == (BEST_1_2, ["HTTP2Preferred"])
    assert http2_attribute(fleet, "api") == "true"
    # Left alone: the stricter policy, the excluded listener, and the certificate.
    assert listener(fleet, "admin:443")["SslPolicy"] == "ELBSecurityPolicy-TLS13-1-3-2021-06"
    assert listener(fleet, "legacy-pos:443")["SslPolicy"] == "ELBSecurityPolicy-2016-08"
    assert listener(fleet, "shop:443")["Certificates"]
    second = cli("plan", "-p", str(policy_file), "--quiet", "--detailed-exitcode")
    assert second.code == 0, second.stdout
    assert "No changes." in second.stdout


def test_detailed_exitcode_and_only(cli: Cli, fleet: Fleet, policy_file: Path) -> None:
    assert cli("plan", "-p", str(policy_file), "-q", "--detailed-exitcode").code == 2
    assert cli("plan", "-p", str(policy_file), "-q", "--only", "aws").code == 0
    wrong = cli("plan", "-p", str(policy_file), "-q", "--only", "gcp")
    assert wrong.code == 1
    assert "no gcp section" in wrong.stderr


def test_saved_plan_applies_exactly_what_was_reviewed(
    cli: Cli, fleet: Fleet, policy_file: Path, tmp_path: Path
) -> None:
    saved = tmp_path / "plan.json"
    assert cli("plan", "-p", str(policy_file), "-q", "--out", str(saved)).code == 0
    applied = cli("apply", str(saved), "-p", str(policy_file), "-q", "--format", "json")
    assert applied.code == 0, applied.stderr
    report = json.loads(applied.stdout)
    assert report["status"] == "applied"
    assert len(report["outcomes"]) == 5
    assert listener(fleet, "shop:443")["SslPolicy"] == BEST_1_2


def test_stale_plan_is_refused_whole_and_names_what_moved(
    cli: Cli, fleet: Fleet, policy_file: Path, tmp_path: Path
) -> None:
    saved = tmp_path / "plan.json"
    assert cli("plan", "-p", str(policy_file), "-q", "--out", str(saved)).code == 0
    # Someone changes one listener out of band after the plan was reviewed.
    boto3.client("elbv2", region_name="us-east-1").modify_listener(
        ListenerArn=fleet.listeners["shop:443"], SslPolicy="ELBSecurityPolicy-TLS-1-1-2017-01"
    )
    result = cli("apply", str(saved), "-p", str(policy_file), "-q")
    assert result.code == 1
    assert "plan is stale" in result.stderr
    assert fleet.listeners["shop:443"] in result.stderr
    assert fleet.listeners["admin:8443"] not in result.stderr
    # Nothing was applied, not even the resources that did not move.
    assert listener(fleet, "admin:8443")["SslPolicy"] == "ELBSecurityPolicy-2016-08"
    assert http2_attribute(fleet, "api") == "false"


def test_expired_exclusion_stops_applying_and_plan_says_so(
    cli: Cli, fleet: Fleet, write_policy: WritePolicy
) -> None:
    path = write_policy(POLICY.format(until="2020-01-31"))
    plan = plan_json(cli, path)
    assert fleet.listeners["legacy-pos:443"] in {c["resource"] for c in plan["changes"]}
    assert plan["excluded"][0]["expired"] is True
    text = cli("plan", "-p", str(path), "-q").stdout
    assert "exclusion expired on 2020-01-31" in text


def test_tls_1_3_minimum_and_explicit_policy(
    cli: Cli, fleet: Fleet, write_policy: WritePolicy
) -> None:
    strict = plan_json(cli, write_policy("tls: {minimum: '1.3'}\naws: {regions: [eu-west-1]}\n"))
    targets = {
        c["resource"]: c["after"] for c in strict["changes"] if c["attribute"] == "ssl_policy"
    }
    assert targets == {
        fleet.listeners["admin:8443"]: "ELBSecurityPolicy-TLS13-1-3-PQ-2025-09",
        fleet.listeners["mqtt-edge:8883"]: "ELBSecurityPolicy-TLS13-1-3-PQ-2025-09",
    }
    explicit = plan_json(
        cli,
        write_policy(
            "aws: {regions: [eu-west-1], ssl_policy: ELBSecurityPolicy-TLS13-1-2-2021-06}\n",
            name="explicit.yaml",
        ),
    )
    assert {c["after"] for c in explicit["changes"] if c["attribute"] == "ssl_policy"} == {
        "ELBSecurityPolicy-TLS13-1-2-2021-06"
    }
    weak = cli(
        "plan",
        "-q",
        "-p",
        str(write_policy("aws: {regions: [eu-west-1], ssl_policy: ELBSecurityPolicy-2016-08}\n")),
    )
    assert weak.code == 1
    assert "ELBSecurityPolicy-2016-08 accepts TLS 1.0, 1.1, below tls.minimum 1.2" in weak.stderr


def test_http2_off_in_policy_plans_no_http2_changes(
    cli: Cli, fleet: Fleet, write_policy: WritePolicy
) -> None:
    plan = plan_json(cli, write_policy("http2: false\naws: {regions: [us-east-1, eu-west-1]}\n"))
    assert {c["attribute"] for c in plan["changes"]} == {"ssl_policy"}


def test_many_listeners_on_one_load_balancer(
    cli: Cli, aws: MotoServer, write_policy: WritePolicy
) -> None:
    builder = FleetBuilder("us-east-1")
    builder.target_group("web")
    builder.load_balancer("multi")
    weak = {port: builder.listener("multi", port, "HTTPS", "web") for port in (443, 8443, 9443)}
    builder.listener("multi", 10443, "HTTPS", "web", ssl_policy=BEST_1_2)
    plan = plan_json(cli, write_policy("aws: {regions: [us-east-1]}\n"))
    assert sorted(c["resource"] for c in plan["changes"]) == sorted(weak.values())


def test_throttling_is_retried_not_reported(aws: MotoServer) -> None:
    seed_fleet()
    session = boto3.session.Session()
    throttled: list[str] = []

    def throttle(request: Any, **_: Any) -> AWSResponse | None:
        # The first six listener reads are throttled, as a busy account would see them.
        if len(throttled) < 6:
            throttled.append(request.url)
            body = (
                b"<ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code>"
                b"<Message>Rate exceeded</Message></Error><RequestId>x</RequestId></ErrorResponse>"
            )
            return AWSResponse(request.url, 400, {}, _Raw(body))
        return None

    session.events.register("before-send.elastic-load-balancing-v2.DescribeListeners", throttle)
    policy = parse("aws: {regions: [us-east-1, eu-west-1]}\n")
    inventory = aws_provider.discover(policy, boto_session=session)
    assert len(throttled) == 6
    # Every weak listener is still found: five, plus legacy-pos (no exclusion here).
    assert len(planner.plan(inventory, policy).changes) == 6


class _Raw:
    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: Any) -> Any:
        yield self._body


def test_missing_credentials_is_a_clear_error(
    cli: Cli, fleet: Fleet, policy_file: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    result = cli("plan", "-p", str(policy_file), "-q")
    assert result.code == 1
    assert result.stderr.startswith("error: no AWS credentials found")
    assert "Traceback" not in result.stderr


def test_unknown_region_is_a_clear_error(
    cli: Cli, aws: MotoServer, write_policy: WritePolicy
) -> None:
    result = cli(
        "plan", "-q", "-p", str(write_policy("aws: {regions: [us-east-1, mars-north-1]}\n"))
    )
    assert result.code == 1
    assert result.stderr.startswith("error: unknown AWS region 'mars-north-1'")


def test_apply_refuses_to_run_unattended_without_auto_approve(
    cli: Cli, fleet: Fleet, policy_file: Path
) -> None:
    result = cli("apply", "-p", str(policy_file), "-q")
    assert result.code == 1
    assert "--auto-approve" in result.stderr
    assert listener(fleet, "shop:443")["SslPolicy"] == "ELBSecurityPolicy-2016-08"


def test_apply_records_before_and_after_in_the_journal(
    cli: Cli, fleet: Fleet, policy_file: Path, tmp_path: Path
) -> None:
    state = tmp_path / "elsewhere"
    result = cli("apply", "-p", str(policy_file), "-q", "--auto-approve", "--state-dir", str(state))
    assert result.code == 0
    import sqlite3

    with sqlite3.connect(state / "journal.sqlite3") as db:
        rows = db.execute(
            "SELECT resource, attribute, before, after, outcome FROM changes ORDER BY seq"
        ).fetchall()
    assert (
        fleet.listeners["shop:443"],
        "ssl_policy",
        '"ELBSecurityPolicy-2016-08"',
        f'"{BEST_1_2}"',
        "applied",
    ) in rows
    assert len(rows) == 5
