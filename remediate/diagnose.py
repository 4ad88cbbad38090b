"""Triage of `426 Upgrade Required` and its neighbours from evidence gathered at the URL itself.

The evidence is what `verify` collects (a plain HTTP/1.1 request, an HTTP/2 request, a WebSocket
handshake on the URL's path, the TLS version probes); each finding says what is wrong and what to
run or change, naming the `remediate` command where one fixes it.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

from remediate.model import REPORT_FORMAT_VERSION
from remediate.policy import tls_key
from remediate.verify import HttpResult, Report, parse_url, probe, reachable, report_text

# The Nginx lines a WebSocket location needs: the map once at http level, the
# three directives in every location that proxies WebSockets.
NGINX_WEBSOCKET_LINES = """\
# http { } level, once:
map $http_upgrade $connection_upgrade {
    default upgrade;
    ''      close;
}

# in the location that proxies the WebSocket:
proxy_http_version 1.1;
proxy_set_header Upgrade $http_upgrade;
proxy_set_header Connection $connection_upgrade;
"""
PLAN_AND_APPLY = "`remediate plan` shows the change and `remediate apply` makes it"


@dataclass(frozen=True)
class Finding:
    """One diagnosed problem: what is wrong, what fixes it, and config lines when they help."""

    problem: str
    fix: str
    nginx: str | None = None


@dataclass(frozen=True)
class Diagnosis:
    report: Report
    findings: list[Finding]

    @property
    def healthy(self) -> bool:
        return not self.findings


def diagnose(url: str, minimum: str = "1.2") -> Diagnosis:
    """Probe `url` and explain what would make clients fail there."""
    target, path = parse_url(url)
    reachable(target, url)
    report = probe(target, path=path, ws_paths=[path], url=url, minimum=minimum)
    return Diagnosis(report, findings(report, minimum))


def findings(report: Report, minimum: str = "1.2") -> list[Finding]:
    """Every finding the evidence supports, most specific first."""
    found: list[Finding] = []
    ws_ok, ws_response = next(iter(report.websocket.values()), (True, None))
    found.extend(_upgrade_required(report, ws_ok))
    if not ws_ok and ws_response is not None:
        found.extend(_websocket(report, ws_response))
    found.extend(_bad_gateway(report))
    if report.target.tls:
        found.extend(_tls(report, minimum))
    return found


def _tokens(upgrade: str) -> list[str]:
    return [token.strip() for token in upgrade.split(",") if token.strip()]


def _upgrade_required(report: Report, ws_ok: bool) -> list[Finding]:
    """A 426 on the plain request: what the server demands, from its `Upgrade` header."""
    if report.status != 426:
        return []
    upgrade = report.upgrade
    if not upgrade:
        return [
            Finding(
                "The server answers 426 Upgrade Required without an Upgrade header, so it "
                "does not say which protocol it wants.",
                "Check the backend's logs or documentation for the protocol it requires; the "
                "probes below show what the endpoint offers.",
            )
        ]
    found: list[Finding] = []
    tokens = _tokens(upgrade)
    tls_tokens = [token for token in tokens if token.upper().startswith("TLS")]
    if tls_tokens:
        demanded = tls_tokens[0].partition("/")[2] or "1.2"
        if report.target.tls:
            fix = (
                f"Clients must negotiate TLS {demanded} or later; if the endpoint in front "
                f"still accepts older versions, raise its floor: {PLAN_AND_APPLY}."
            )
        else:
            secure = report.url.replace("http://", "https://", 1).replace("ws://", "wss://", 1)
            fix = (
                f"Use {secure} (TLS {demanded} or later) instead of plain HTTP; "
                "`remediate verify` on the https:// URL checks what it accepts."
            )
        found.append(
            Finding(
                f"The server refuses the request until it is upgraded to TLS (Upgrade: {upgrade}).",
                fix,
            )
        )
    if any(token.upper().startswith(("HTTP/2", "H2")) for token in tokens):
        found.append(
            Finding(
                f"The server demands HTTP/2 (Upgrade: {upgrade}).",
                "Clients must negotiate h2 through ALPN; make the endpoint in front offer it "
                f"(policy `http2: true`): {PLAN_AND_APPLY}.",
            )
        )
    if any(token.lower() == "websocket" for token in tokens) and ws_ok:
        return found
    if any(token.lower() == "websocket" for token in tokens):
        found.append(
            Finding(
                f"The backend wants a WebSocket upgrade (Upgrade: {upgrade}) and a WebSocket "
                "handshake fails too: the Upgrade header does not reach it.",
                "A proxy in front drops Upgrade/Connection; add the lines below to it, or list "
                "the location in the policy's `websocket.locations` and run `remediate plan` "
                "and `remediate apply`.",
                NGINX_WEBSOCKET_LINES,
            )
        )
    return found


def _websocket(report: Report, response: HttpResult) -> list[Finding]:
    """A failed WebSocket handshake whose status tells how the request reached the backend."""
    status = response.status
    upgrade = response.headers.get("upgrade", "")
    already = report.status == 426 and "websocket" in (report.upgrade or "").lower()
    if status == 505:
        problem = (
            "The WebSocket handshake is answered 505 HTTP Version Not Supported: a proxy "
            "forwards it as HTTP/1.0 (Nginx's proxy default) without Upgrade/Connection."
        )
    elif status == 426 and not already and "websocket" in upgrade.lower():
        wanted = f" (Upgrade: {upgrade})" if upgrade else ""
        problem = (
            f"The WebSocket handshake is answered 426{wanted}: the backend never saw the "
            "Upgrade header, a proxy in front drops Upgrade/Connection."
        )
    elif status == 400 and report.status in (400, 426):
        problem = (
            "The WebSocket handshake is answered 400 like a plain request: a proxy in front "
            "most likely drops Upgrade/Connection."
        )
    else:
        return []
    return [
        Finding(
            problem,
            "Add the lines below to the proxy, or list the location in the policy's "
            "`websocket.locations` and run `remediate plan` and `remediate apply`.",
            NGINX_WEBSOCKET_LINES,
        )
    ]


def _bad_gateway(report: Report) -> list[Finding]:
    """502s: on every request, only after a WebSocket upgrade, or only over HTTP/2."""
    if report.status == 502:
        return [
            Finding(
                "Requests are answered 502 Bad Gateway: the proxy cannot talk to its backend. "
                "Either the backend is down or it speaks another protocol than the proxy uses "
                "(TLS to a plain backend, HTTP/2 to an HTTP/1.1 one, the wrong port).",
                "Check that the backend runs and that the proxy's upstream address, port and "
                "scheme match what it serves (`proxy_pass http://` for a plain backend, "
                "`https://` for a TLS one).",
            )
        ]
    found: list[Finding] = []
    ws_502 = [path for path, (_, r) in report.websocket.items() if r and r.status == 502]
    if ws_502:
        found.append(
            Finding(
                f"Plain requests work but the WebSocket handshake on {ws_502[0]} is answered "
                "502 Bad Gateway: after the upgrade the backend does not answer in the protocol "
                "the proxy forwarded (it does not speak WebSocket on that port).",
                "Point the WebSocket location at a backend that speaks WebSocket over HTTP/1.1, "
                "and check the upstream port and scheme.",
            )
        )
    h2 = report.http2_response
    if h2 is not None and h2.status == 502 and report.status is not None:
        found.append(
            Finding(
                f"HTTP/2 requests get 502 while HTTP/1.1 gets {report.status}: HTTP/2 reaches a "
                "backend that does not speak it.",
                "Send HTTP/1.1 to that backend (on AWS a target group ProtocolVersion HTTP1; "
                "`remediate plan` lists such target groups as findings).",
            )
        )
    return found


def _tls(report: Report, minimum: str) -> list[Finding]:
    found: list[Finding] = []
    versions = report.tls_versions
    weak = [v for v, ok in versions.items() if ok and tls_key(v) < tls_key(minimum)]
    if weak:
        listed = " and ".join(f"TLS {v}" for v in weak)
        found.append(
            Finding(
                f"The TLS floor is too low: {listed} accepted (minimum TLS {minimum}).",
                "Run `remediate clients` on the access logs to see who still uses them, then "
                f"raise the floor: {PLAN_AND_APPLY}.",
            )
        )
    if versions.get(minimum) is False:
        higher = [v for v, ok in versions.items() if ok]
        found.append(
            Finding(
                f"The TLS floor is too high: TLS {minimum} is refused"
                + (f" (only TLS {', '.join(higher)} accepted)" if higher else "")
                + f", so clients that stop at TLS {minimum} fail the handshake.",
                f"Accept TLS {minimum} again (Nginx `ssl_protocols TLSv1.2 TLSv1.3;`, on AWS a "
                "security policy with TLS 1.2; `remediate plan` never lowers a floor).",
            )
        )
    if all(ok is None for ok in versions.values()):
        found.append(
            Finding(
                "No TLS handshake completed with any version: the endpoint may not speak TLS on "
                "this port, or it offers no cipher a client shares.",
                "Check the port and scheme, and the server's certificate and cipher settings.",
            )
        )
    if report.alpn != "h2":
        found.append(
            Finding(
                "h2 is not offered through ALPN: every client stays on HTTP/1.1, and a backend "
                "that demands HTTP/2 answers 426.",
                f"Set `http2: true` in the policy: {PLAN_AND_APPLY} (Nginx `http2`, ALB "
                "routing.http2.enabled, NLB ALPN policy HTTP2Preferred).",
            )
        )
    elif not report.http2:
        found.append(
            Finding(
                "h2 is negotiated but an HTTP/2 request gets no response.",
                "Check the server's HTTP/2 configuration and error log.",
            )
        )
    days = report.certificate_days
    if days is not None and days < 0:
        found.append(
            Finding(
                f"The certificate expired {-days} day(s) ago.", "Renew and deploy the certificate."
            )
        )
    return found


def diagnosis_text(diagnosis: Diagnosis) -> str:
    lines = [report_text(diagnosis.report, with_problems=False)]
    if not diagnosis.findings:
        lines.append("No problem found.\n")
    for finding in diagnosis.findings:
        lines.append(f"! {finding.problem}\n  fix: {finding.fix}\n")
        if finding.nginx:
            lines.append(
                "".join(f"    {row}\n" if row else "\n" for row in finding.nginx.splitlines())
            )
    return "\n".join(lines)


def diagnosis_json(diagnosis: Diagnosis) -> str:
    # The findings replace verify's problem sentences, which would only repeat them.
    evidence = diagnosis.report.to_dict()
    evidence.pop("problems")
    return (
        json.dumps(
            {
                "format_version": REPORT_FORMAT_VERSION,
                "healthy": diagnosis.healthy,
                "evidence": evidence,
                "findings": [asdict(finding) for finding in diagnosis.findings],
            },
            indent=2,
        )
        + "\n"
    )
