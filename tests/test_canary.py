"""Canary and batched rollout: `apply --canary N` applies the first resources or hosts, verifies
them live and stops before the rest when they do not verify; the rest is reported and journaled
as not applied, and the next apply applies it. On moto (whose load balancers do not resolve, so
their probes cannot verify) and on a pair of real Nginx hosts."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from remediate.sandbox.aws import FleetBuilder, MotoServer
from remediate.sandbox.nginx import free_port
from tests.aws_state import ssl_policy
from tests.conftest import Cli
from tests.loopback import websocket_backend
from tests.nginx_env import NGINX, NginxHost

WEAK = "ELBSecurityPolicy-2016-08"
POLICY = """\
version: 1
tls:
  minimum: "1.2"
aws:
  regions: [us-east-1]
"""


def test_a_canary_that_does_not_verify_stops_the_rollout(
    cli: Cli, aws: MotoServer, write_policy: Callable[[str], Path]
) -> None:
    builder = FleetBuilder("us-east-1")
    builder.load_balancer("shop")
    builder.target_group("web")
    for port in (443, 8443, 9443):
        builder.listener("shop", port, "HTTPS", "web", ssl_policy=WEAK)
    fleet = builder.fleet
    policy = str(write_policy(POLICY))

    result = cli("apply", "-p", policy, "--auto-approve", "-q", "--canary", "1", "--format", "json")
    assert result.code == 3, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert report["status"] == "halted"
    assert report["halted"].startswith("the canary did not verify (")
    [applied] = report["outcomes"]
    assert applied["status"] == "applied"
    # The canary's probe could not reach it (moto's names do not resolve): not verified.
    [probe] = report["verification"]
    assert (probe["resource"], probe["status"]) == (applied["resource"], "skipped")
    left = {item["resource"] for item in report["not_applied"]}
    assert len(left) == 2
    assert applied["resource"] not in left
    assert "rollout halted: the canary did not verify" in result.stderr
    # What AWS holds: the canary written, the rest untouched.
    states = {name: ssl_policy(fleet, name) for name in ("shop:443", "shop:8443", "shop:9443")}
    assert sum(state != WEAK for state in states.values()) == 1
    # The journal says which were not applied, and why.
    run = json.loads(cli("history", report["run_id"], "--format", "json").stdout)["run"]
    outcomes = {change["resource"]: change["outcome"] for change in run["changes"]}
    assert outcomes == {
        applied["resource"]: "applied",
        **dict.fromkeys(left, "not-applied"),
    }
    assert "not reached: the canary did not verify" in run["changes"][-1]["message"]

    # Resumed: the next apply plans only what is left, and applies it.
    again = cli("apply", "-p", policy, "--auto-approve", "-q", "--no-verify", "--format", "json")
    assert again.code == 0, again.stdout + again.stderr
    assert {o["resource"] for o in json.loads(again.stdout)["outcomes"]} == left
    assert all(ssl_policy(fleet, name) != WEAK for name in states)


def test_a_saved_plan_applied_again_resumes_a_halted_rollout(
    cli: Cli, aws: MotoServer, write_policy: Callable[[str], Path], tmp_path: Path
) -> None:
    builder = FleetBuilder("us-east-1")
    builder.load_balancer("shop")
    builder.target_group("web")
    for port in (443, 8443):
        builder.listener("shop", port, "HTTPS", "web", ssl_policy=WEAK)
    policy = str(write_policy(POLICY))
    saved = str(tmp_path / "plan.json")
    assert cli("plan", "-p", policy, "-q", "--out", saved).code == 0
    halted = cli("apply", saved, "-p", policy, "-q", "--canary", "1", "--format", "json")
    assert halted.code == 3, halted.stdout + halted.stderr
    first = json.loads(halted.stdout)
    assert first["status"] == "halted"
    [canary] = [o["resource"] for o in first["outcomes"]]
    [left] = [item["resource"] for item in first["not_applied"]]

    # The same plan again: the canary's resource moved (it was applied), which alone would make
    # the plan stale; the journal says this plan applied it, so the rest is applied.
    again = cli("apply", saved, "-p", policy, "-q", "--no-verify", "--format", "json")
    assert again.code == 0, again.stdout + again.stderr
    assert [o["resource"] for o in json.loads(again.stdout)["outcomes"]] == [left]
    assert f"1 change(s) of this plan were applied by run {first['run_id']}" in again.stderr
    assert ssl_policy(builder.fleet, "shop:443") != WEAK
    assert ssl_policy(builder.fleet, "shop:8443") != WEAK
    assert canary != left
    # Once all of it is in, the plan has nothing left to do.
    done = cli("apply", saved, "-p", policy, "-q", "--no-verify")
    assert done.code == 0, done.stderr
    assert "Nothing to apply." in done.stderr


def test_bad_rollout_options_are_one_line_and_change_nothing(
    cli: Cli, aws: MotoServer, write_policy: Callable[[str], Path]
) -> None:
    builder = FleetBuilder("us-east-1")
    builder.load_balancer("shop")
    builder.target_group("web")
    builder.listener("shop", 443, "HTTPS", "web", ssl_policy=WEAK)
    policy = str(write_policy(POLICY))
    for args, message in [
        (["--canary", "0"], "--canary '0': expected a positive count or a percentage"),
        (["--canary", "ten"], "--canary 'ten': expected a positive count"),
        (["--batch", "1,150%"], "--batch '150%': expected a positive count"),
        (["--max-failures", "-1"], "--max-failures -1: must be zero or more"),
        (["--canary", "1", "--no-verify"], "drop --no-verify"),
    ]:
        result = cli("apply", "-p", policy, "--auto-approve", "-q", *args)
        assert result.code == 1, args
        assert message in result.stderr
        assert "Traceback" not in result.stderr
        assert ssl_policy(builder.fleet, "shop:443") == WEAK


needs_nginx = pytest.mark.skipif(
    shutil.which("nginx") is None and not Path(NGINX).exists(), reason="no nginx"
)


def _hosts(tmp_path: Path, backends: list[str]) -> tuple[list[NginxHost], Path]:
    hosts = [
        NginxHost(f"web{index}", tmp_path / f"web{index}", "127.0.0.1", free_port(), backend)
        for index, backend in enumerate(backends, start=1)
    ]
    for host in hosts:
        host.write_weak_config()
        host.start()
    inventory = tmp_path / "hosts.ini"
    lines = "\n".join(host.inventory_line() for host in hosts)
    inventory.write_text(f"[web]\n{lines}\n", encoding="utf-8")
    policy = tmp_path / "remediate.yaml"
    policy.write_text(
        'version: 1\ntls:\n  minimum: "1.2"\nhttp2: true\n'
        f'websocket:\n  locations: ["/ws/"]\nnginx:\n  inventory: {inventory}\n',
        encoding="utf-8",
    )
    return hosts, policy


@needs_nginx
def test_an_nginx_canary_host_that_fails_its_probe_keeps_the_other_host_untouched(
    cli: Cli, tmp_path: Path
) -> None:
    # web1's WebSocket backend is down, so its probe fails once its config is fixed.
    with websocket_backend() as live:
        hosts, policy = _hosts(tmp_path, [f"127.0.0.1:{free_port()}", f"127.0.0.1:{live}"])
        try:
            untouched = hosts[1].site.read_bytes()
            result = cli("apply", "-p", str(policy), "--auto-approve", "-q", "--canary", "1")
            assert result.code == 3, result.stdout + result.stderr
            assert "WebSocket /ws/: FAILED (HTTP 502)" in result.stdout
            assert "Not applied (the canary did not verify (web1)):" in result.stdout
            assert "nginx web2" in result.stdout.split("Not applied")[1]
            assert hosts[1].site.read_bytes() == untouched
            assert hosts[0].site.read_bytes() != untouched
        finally:
            for host in hosts:
                host.stop()


@needs_nginx
def test_nginx_hosts_roll_out_one_batch_at_a_time(cli: Cli, tmp_path: Path) -> None:
    with websocket_backend() as first, websocket_backend() as second:
        hosts, policy = _hosts(tmp_path, [f"127.0.0.1:{first}", f"127.0.0.1:{second}"])
        try:
            weak = [host.site.read_bytes() for host in hosts]
            result = cli(
                "apply",
                "-p",
                str(policy),
                "--auto-approve",
                "-q",
                "--canary",
                "50%",
                "--batch",
                "1",
                "--max-failures",
                "0",
                "--format",
                "json",
            )
            assert result.code == 0, result.stdout + result.stderr
            report = json.loads(result.stdout)
            assert report["status"] == "applied"
            assert {v["status"] for v in report["verification"]} == {"verified"}
            assert len(report["verification"]) == 2
            # One host per batch, each verified: both fixed in the end.
            assert [v["resource"] for v in report["verification"]] == ["web1", "web2"]
            for host, before in zip(hosts, weak, strict=True):
                assert host.site.read_bytes() != before
                assert "proxy_set_header Upgrade $http_upgrade" in host.site.read_text("utf-8")
        finally:
            for host in hosts:
                host.stop()
