"""`remediate diagnose` against real servers on loopback: each failure mode is built for real
(nginx without the WebSocket headers, a TLS proxy to a plain backend, a 426 server...)."""

from __future__ import annotations

import json

from tests.conftest import Cli
from tests.loopback import Edge, edge

__all__ = ["edge"]

NGINX_LINES = [
    "map $http_upgrade $connection_upgrade {",
    "default upgrade;",
    "''      close;",
    "proxy_http_version 1.1;",
    "proxy_set_header Upgrade $http_upgrade;",
    "proxy_set_header Connection $connection_upgrade;",
]


def _findings(cli: Cli, url: str) -> tuple[int, list[dict[str, str | None]]]:
    result = cli("diagnose", url, "--format", "json")
    assert result.stderr == ""
    document = json.loads(result.stdout)
    findings: list[dict[str, str | None]] = document["findings"]
    assert document["healthy"] is (not findings)
    return result.code, findings


def test_proxy_speaking_http10_to_websocket_backend_gets_the_nginx_lines(
    cli: Cli, edge: Edge
) -> None:
    result = cli("diagnose", f"https://localhost:{edge.new}/ws/")
    assert result.code == 2
    assert "505 HTTP Version Not Supported" in result.stdout
    assert "a proxy forwards it as HTTP/1.0" in result.stdout
    for line in NGINX_LINES:
        assert line in result.stdout
    assert "`remediate plan`" in result.stdout


def test_proxy_dropping_upgrade_header(cli: Cli, edge: Edge) -> None:
    code, findings = _findings(cli, f"https://localhost:{edge.new}/ws-no-upgrade/")
    assert code == 2
    [websocket] = [f for f in findings if f["nginx"]]
    assert "Upgrade: websocket" in str(websocket["problem"])
    assert "the Upgrade header does not reach it" in str(websocket["problem"])
    for line in NGINX_LINES:
        assert line in str(websocket["nginx"])


def test_working_websocket_endpoint_is_healthy(cli: Cli, edge: Edge) -> None:
    # A plain GET on the WebSocket path gets the backend's own 426 (Upgrade: websocket): by design.
    result = cli("diagnose", f"https://localhost:{edge.fixed}/ws/")
    assert result.code == 0, result.stdout
    assert "HTTP/1.1 status: 426 (Upgrade: websocket)" in result.stdout
    assert "WebSocket /ws/: ok (101)" in result.stdout
    assert "No problem found." in result.stdout


def test_426_demanding_tls_names_the_https_url(cli: Cli, edge: Edge) -> None:
    code, findings = _findings(cli, f"http://127.0.0.1:{edge.upgrade426}/login")
    assert code == 2
    assert len(findings) == 1
    assert "upgraded to TLS (Upgrade: TLS/1.2, HTTP/1.1)" in str(findings[0]["problem"])
    assert f"Use https://127.0.0.1:{edge.upgrade426}/login (TLS 1.2 or later)" in str(
        findings[0]["fix"]
    )


def test_tls_floor_too_low_names_clients_plan_and_apply(cli: Cli, edge: Edge) -> None:
    code, findings = _findings(cli, f"https://localhost:{edge.old}/")
    assert code == 2
    [floor] = findings
    assert floor["problem"] == (
        "The TLS floor is too low: TLS 1.0 and TLS 1.1 accepted (minimum TLS 1.2)."
    )
    fix = str(floor["fix"])
    assert "`remediate clients`" in fix
    assert "`remediate plan`" in fix
    assert "`remediate apply`" in fix


def test_tls_floor_too_high(cli: Cli, edge: Edge) -> None:
    code, findings = _findings(cli, f"https://localhost:{edge.tls13}/")
    assert code == 2
    [floor] = findings
    assert str(floor["problem"]).startswith(
        "The TLS floor is too high: TLS 1.2 is refused (only TLS 1.3 accepted)"
    )
    # With a TLS 1.3 floor as the target, the same endpoint is fine.
    assert cli("diagnose", f"https://localhost:{edge.tls13}/", "--min-tls", "1.3").code == 0


def test_h2_not_offered(cli: Cli, edge: Edge) -> None:
    code, findings = _findings(cli, f"https://localhost:{edge.new}/")
    assert code == 2
    [h2] = findings
    assert str(h2["problem"]).startswith("h2 is not offered through ALPN")
    assert "`http2: true`" in str(h2["fix"])
    assert "`remediate plan`" in str(h2["fix"])


def test_502_after_the_upgrade(cli: Cli, edge: Edge) -> None:
    # Plain requests reach the backend; it hangs up on the upgrade it does not speak.
    code, findings = _findings(cli, f"https://localhost:{edge.fixed}/ws-closer/")
    assert code == 2
    [bad_gateway] = findings
    assert "Plain requests work but the WebSocket handshake on /ws-closer/ is answered 502" in str(
        bad_gateway["problem"]
    )


def test_502_from_a_protocol_mismatch_on_every_request(cli: Cli, edge: Edge) -> None:
    # nginx proxies over TLS to a backend that speaks plain HTTP.
    code, findings = _findings(cli, f"https://localhost:{edge.fixed}/ws-tls/")
    assert code == 2
    [bad_gateway] = findings
    assert str(bad_gateway["problem"]).startswith("Requests are answered 502 Bad Gateway")
    assert "`proxy_pass http://`" in str(bad_gateway["fix"])


def test_bad_input_is_one_line(cli: Cli) -> None:
    result = cli("diagnose", "https://127.0.0.1:1/")
    assert result.code == 1
    assert result.stderr.strip() == (
        "error: https://127.0.0.1:1/: cannot connect to 127.0.0.1:1: Connection refused"
    )
    result = cli("diagnose", "https://localhost/", "--min-tls", "1.4")
    assert result.code == 1
    assert result.stderr.strip() == "error: --min-tls must be one of 1.0, 1.1, 1.2, 1.3 (got '1.4')"
