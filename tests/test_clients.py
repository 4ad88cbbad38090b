"""`remediate clients` and `plan --client-logs` on generated ALB and Nginx access logs: plain and
gzipped, with malformed lines, in the documented formats."""

from __future__ import annotations

import gzip
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3

from remediate.clients import analyze, attach
from remediate.model import Change, Plan
from remediate.sandbox.aws import FleetBuilder, MotoServer
from tests.conftest import Cli
from tests.loopback import nginx_file_change

ELB = "app/shop/50dc6c495c0c9188"
OLD_BROWSER = "Mozilla/4.0 (compatible; MSIE 8.0; Windows NT 5.1)"
POS = "PosTerminal/2.1 (WinCE)"
MODERN = "Mozilla/5.0 (X11; Linux x86_64; rv:140.0) Gecko/20100101 Firefox/140.0"


def alb_line(
    agent: str,
    protocol: str = "TLSv1.2",
    status: int = 200,
    elb: str = ELB,
    port: int = 443,
    kind: str = "https",
) -> str:
    """One entry in the documented ALB access log format (all fields, newest layout)."""
    scheme = "https" if kind in ("https", "h2", "wss") else "http"
    cipher = "ECDHE-RSA-AES128-SHA" if protocol != "-" else "-"
    return (
        f"{kind} 2026-11-20T10:00:00.123456Z {elb} 192.0.2.10:50123 10.0.0.5:8080 "
        f"0.001 0.002 0.000 {status} {status} 120 540 "
        f'"GET {scheme}://shop.example.com:{port}/cart?id=1 HTTP/1.1" "{agent}" '
        f"{cipher} {protocol} "
        "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/web/73e2d6bc24d8a067 "
        '"Root=1-58337262-36d228ad5d99923122bbe354" "shop.example.com" '
        '"arn:aws:acm:us-east-1:123456789012:certificate/12345678-1234-1234-1234-123456789012" '
        '0 2026-11-20T10:00:00.120000Z "forward" "-" "-" "10.0.0.5:8080" "200" "-" "-" TID_1234\n'
    )


def nginx_line(agent: str, protocol: str = "TLSv1.2", status: int = 200) -> str:
    """`combined` plus `$ssl_protocol`, as Nginx writes it (an empty variable logs as `-`)."""
    return (
        f'198.51.100.7 - - [20/Nov/2026:10:00:00 +0000] "GET /ws/ HTTP/1.1" {status} 612 '
        f'"https://shop.example.com/" "{agent}" {protocol}\n'
    )


MALFORMED = [
    "this is not a log line\n",
    "https 2026-11-20T10:00:00Z app/shop/1 truncated\n",
    '198.51.100.7 - - [20/Nov/2026:10:00:00 +0000] "GET / HTTP/1.1" two-hundred\n',
]


def write_logs(tmp_path: Path) -> list[Path]:
    alb = tmp_path / "alb.log.gz"
    with gzip.open(alb, "wt", encoding="utf-8") as handle:
        handle.writelines(alb_line(OLD_BROWSER, "TLSv1") for _ in range(3))
        handle.writelines(alb_line(POS, "TLSv1.1") for _ in range(2))
        handle.writelines(alb_line(MODERN, "TLSv1.3") for _ in range(10))
        handle.write(alb_line("curl/8.5.0", "-", 426, port=80, kind="http"))
        handle.write(MALFORMED[1])
    nginx = tmp_path / "access.log"
    with nginx.open("w", encoding="utf-8") as handle:
        handle.writelines(nginx_line(POS, "TLSv1.1") for _ in range(4))
        handle.writelines(nginx_line(MODERN, "TLSv1.2") for _ in range(5))
        handle.write(nginx_line("okhttp/3.12.0", "-", 426))
        handle.write(MALFORMED[0])
        handle.write(MALFORMED[2])
        handle.write("\n")
    return [alb, nginx]


def test_old_tls_and_426_clients_from_alb_and_nginx_logs(cli: Cli, tmp_path: Path) -> None:
    result = cli("clients", *map(str, write_logs(tmp_path)), "--format", "json")
    assert result.code == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["requests"] == 26
    assert report["skipped"] == 3
    assert [(f["formats"], f["requests"], f["skipped"]) for f in report["files"]] == [
        (["alb"], 16, 1),
        (["nginx"], 10, 2),
    ]
    assert report["tls_protocols"] == {"none": 2, "1.0": 3, "1.1": 6, "1.2": 5, "1.3": 10}
    assert report["old_tls"] == [
        {"user_agent": POS, "protocol": "1.1", "count": 6, "share": round(6 / 26, 4)},
        {"user_agent": OLD_BROWSER, "protocol": "1.0", "count": 3, "share": round(3 / 26, 4)},
    ]
    assert report["upgrade_required"] == [
        {"user_agent": "curl/8.5.0", "count": 1, "share": round(1 / 26, 4)},
        {"user_agent": "okhttp/3.12.0", "count": 1, "share": round(1 / 26, 4)},
    ]


def test_text_report_for_people(cli: Cli, tmp_path: Path) -> None:
    result = cli("clients", *map(str, write_logs(tmp_path)))
    assert result.code == 0
    lines = result.stdout.splitlines()
    assert lines[0] == "26 request(s) read from 2 file(s); 3 unparseable line(s) skipped."
    assert "Clients below TLS 1.2: 9 request(s), 34.6% of all:" in lines
    assert f"         6   23.1%  1.1   {POS}" in lines
    assert "Clients receiving 426 Upgrade Required: 2 request(s):" in lines


def test_tls_1_3_minimum_counts_tls_1_2_clients_too(cli: Cli, tmp_path: Path) -> None:
    result = cli("clients", *map(str, write_logs(tmp_path)), "--min-tls", "1.3", "--format", "json")
    report = json.loads(result.stdout)
    assert {(row["user_agent"], row["protocol"]) for row in report["old_tls"]} == {
        (POS, "1.1"),
        (OLD_BROWSER, "1.0"),
        (MODERN, "1.2"),
    }


def test_custom_nginx_log_format_and_regex(cli: Cli, tmp_path: Path) -> None:
    log = tmp_path / "custom.log"
    log.write_text(
        'TLSv1 426 "LegacyApp/1.0" 0.003 [shop]\n'
        'TLSv1.3 200 "Modern/2.0" 0.001 [shop]\n' + nginx_line(POS, "TLSv1.1"),
        encoding="utf-8",
    )
    log_format = '$ssl_protocol $status "$http_user_agent" $request_time [$host]'
    result = cli("clients", str(log), "--nginx-format", log_format, "--format", "json")
    report = json.loads(result.stdout)
    # The combined line does not match the configured format: skipped, not misread.
    assert (report["requests"], report["skipped"]) == (2, 1)
    assert [(r["user_agent"], r["protocol"]) for r in report["old_tls"]] == [
        ("LegacyApp/1.0", "1.0")
    ]
    assert [r["user_agent"] for r in report["upgrade_required"]] == ["LegacyApp/1.0"]

    regex = r'^(?P<ssl_protocol>\S+) (?P<status>\d+) "(?P<http_user_agent>[^"]*)"'
    result = cli("clients", str(log), "--nginx-regex", regex, "--format", "json")
    report = json.loads(result.stdout)
    assert (report["requests"], report["skipped"]) == (2, 1)


def test_truncated_gzip_keeps_what_was_read_and_says_so(cli: Cli, tmp_path: Path) -> None:
    whole = gzip.compress("".join(alb_line(POS, "TLSv1") for _ in range(2000)).encode())
    log = tmp_path / "cut.log.gz"
    log.write_bytes(whole[: len(whole) // 2])
    result = cli("clients", str(log), "--format", "json")
    assert result.code == 1
    report = json.loads(result.stdout)
    assert 0 < report["requests"] < 2000
    assert report["truncated"] is True
    assert report["files"][0]["truncated"] is True
    assert report["old_tls"][0]["user_agent"] == POS
    [warning] = result.stderr.splitlines()
    assert warning == (
        f"warning: {log}: the gzip stream ends early (a truncated file): only its first "
        f"{report['requests']} request(s) were read"
    )
    allowed = cli("clients", str(log), "--allow-truncated")
    assert allowed.code == 0
    assert allowed.stderr == result.stderr
    assert "1 truncated file(s) read up to where they end" in allowed.stdout
    # A whole file is not flagged.
    (tmp_path / "whole.log.gz").write_bytes(whole)
    complete = cli("clients", str(tmp_path / "whole.log.gz"), "--format", "json")
    assert complete.code == 0, complete.stderr
    assert json.loads(complete.stdout)["truncated"] is False


def test_bad_input_is_one_line(cli: Cli, tmp_path: Path) -> None:
    cases = [
        ((str(tmp_path / "missing.log"),), "missing.log: log file not found"),
        (
            (str(tmp_path), "--nginx-regex", "(unclosed"),
            "--nginx-regex is not a valid regular expression",
        ),
        ((str(tmp_path), "--nginx-format", "$remote_addr $body_bytes_sent"), "neither"),
        ((str(tmp_path), "--min-tls", "2"), "--min-tls must be one of"),
    ]
    for args, message in cases:
        result = cli("clients", *args)
        assert result.code == 1, args
        assert result.stderr.startswith("error: ")
        assert message in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1


def test_big_log_is_streamed_quickly(cli: Cli, tmp_path: Path) -> None:
    log = tmp_path / "big.log"
    chunk = nginx_line(MODERN, "TLSv1.3") * 999 + nginx_line(POS, "TLSv1")
    with log.open("w", encoding="utf-8") as handle:
        for _ in range(200):
            handle.write(chunk)
    started = time.monotonic()
    result = cli("clients", str(log), "--format", "json")
    elapsed = time.monotonic() - started
    report = json.loads(result.stdout)
    assert report["requests"] == 200_000
    assert report["old_tls"] == [
        {"user_agent": POS, "protocol": "1.0", "count": 200, "share": 0.001}
    ]
    assert elapsed < 20, f"200k lines took {elapsed:.1f}s"


POLICY = """\
version: 1
tls:
  minimum: "1.2"
aws:
  regions: [us-east-1]
"""


def test_plan_attaches_who_would_lose_access(
    cli: Cli, aws: MotoServer, tmp_path: Path, write_policy: Callable[[str], Path]
) -> None:
    fleet = FleetBuilder("us-east-1")
    for name in ("shop", "api"):
        fleet.load_balancer(name)
        fleet.target_group(f"{name}-web")
        fleet.listener(name, 443, "HTTPS", f"{name}-web", ssl_policy="ELBSecurityPolicy-2016-08")
    shop_arn = fleet.fleet.load_balancers["shop"]
    shop = shop_arn.partition(":loadbalancer/")[2]
    log = tmp_path / "alb.log"
    log.write_text(
        alb_line(POS, "TLSv1", elb=shop) * 3
        + alb_line(MODERN, "TLSv1.3", elb=shop) * 7
        # Same load balancer, another port: not this listener's clients.
        + alb_line(OLD_BROWSER, "TLSv1", elb=shop, port=8443)
        + alb_line(OLD_BROWSER, "TLSv1.1", elb="app/elsewhere/1234"),
        encoding="utf-8",
    )
    policy = write_policy(POLICY)
    result = cli(
        "plan", "-p", str(policy), "--quiet", "--format", "json", "--client-logs", str(log)
    )
    assert result.code == 0, result.stderr
    changes = {c["name"]: c for c in json.loads(result.stdout)["changes"]}
    losing: dict[str, Any] = changes["shop:443 HTTPS"]["clients_losing_access"]
    assert losing == {
        "source": f"ALB logs of {shop} port 443",
        "requests": 3,
        "of_requests": 10,
        "clients": [{"user_agent": POS, "protocol": "1.0", "count": 3, "share": 0.3}],
    }
    # No log line names the api load balancer: the summary of all logs is attached instead.
    fallback = changes["api:443 HTTPS"]["clients_losing_access"]
    assert fallback["source"] == "all logs"
    assert (fallback["requests"], fallback["of_requests"]) == (5, 12)

    text = cli("plan", "-p", str(policy), "--quiet", "--client-logs", str(log)).stdout
    assert f"# clients losing access: 3 of 10 request(s) in ALB logs of {shop} port 443:" in text
    assert f"#   3 x TLS 1.0 {POS}" in text
    # Without logs the plan is unchanged.
    plain = json.loads(cli("plan", "-p", str(policy), "--quiet", "--format", "json").stdout)
    assert all(c["clients_losing_access"] is None for c in plain["changes"])
    assert (
        boto3.client("elbv2", region_name="us-east-1").describe_listeners(LoadBalancerArn=shop_arn)[
            "Listeners"
        ][0]["SslPolicy"]
        == "ELBSecurityPolicy-2016-08"
    )


def test_nginx_tls_edits_get_the_summary_of_all_logs(tmp_path: Path) -> None:
    def change(path: str, diff: str) -> Change:
        return nginx_file_change("web1", path, diff={path: diff})

    tls = change(
        "/etc/nginx/nginx.conf", "-    ssl_protocols TLSv1 TLSv1.2;\n+    ssl_protocols TLSv1.2;\n"
    )
    websocket = change("/etc/nginx/site.conf", "+        proxy_http_version 1.1;\n")
    plan = attach(Plan(changes=[tls, websocket]), analyze(write_logs(tmp_path)), "1.2")
    losing = plan.changes[0].clients_losing_access
    assert losing is not None
    assert (losing.source, losing.requests, losing.of_requests) == ("all logs", 9, 26)
    assert plan.changes[1].clients_losing_access is None
