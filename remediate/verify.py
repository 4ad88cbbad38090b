"""Live probes of one endpoint: TLS versions, ALPN, HTTP/1.1 and HTTP/2 requests, WebSocket upgrade.

The probes test protocol, not trust: certificates are not validated (expiry is read separately).
They are honest about what they cannot tell: OpenSSL 3 refuses TLS 1.0/1.1 at its
default security level, so the client context for a version pins min = max to that version and
drops to `@SECLEVEL=0`; only the server's refusal of the version (a `protocol_version` alert, or a
server hello with another version) counts as "not accepted". A cipher mismatch, a reset or a
timeout says nothing about the version, and is reported as inconclusive (`None`).
"""

from __future__ import annotations

import ipaddress
import json
import socket
import ssl
import time
import warnings
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from remediate.errors import RemediateError
from remediate.model import REPORT_FORMAT_VERSION
from remediate.policy import tls_key

if TYPE_CHECKING:
    from remediate.websocket_client import WebSocket

TLS_VERSIONS: dict[str, ssl.TLSVersion] = {
    "1.0": ssl.TLSVersion.TLSv1,
    "1.1": ssl.TLSVersion.TLSv1_1,
    "1.2": ssl.TLSVersion.TLSv1_2,
    "1.3": ssl.TLSVersion.TLSv1_3,
}
# OpenSSL reasons meaning "the server does not speak this version": its protocol_version alert,
# or (seen from the client) a server hello choosing a version the client did not offer.
REFUSED_REASONS = frozenset({"TLSV1_ALERT_PROTOCOL_VERSION", "UNSUPPORTED_PROTOCOL"})
# Connecting and the TLS handshake: a black-holed endpoint is given up on after this long.
TIMEOUT = 5.0
# An HTTP answer (or a WebSocket handshake's) once connected: it may come from a backend behind a
# proxy, which can be slow, and a slow answer must not read as "no response" (a 502 to find, an
# HTTP/2 request that "gets no response"). Its own, longer bound.
RESPONSE_TIMEOUT = 15.0
# A certificate closer than this to its expiry is reported as a problem.
CERTIFICATE_WARNING_DAYS = 14


def check_minimum(minimum: str) -> None:
    """Raise a RemediateError unless `minimum` names a TLS version (the `--min-tls` options)."""
    if minimum not in TLS_VERSIONS:
        raise RemediateError(f"--min-tls must be one of 1.0, 1.1, 1.2, 1.3 (got {minimum!r})")


@dataclass(frozen=True)
class Target:
    """Where to probe: the socket to connect to, and the name to ask for (SNI and Host)."""

    host: str
    port: int
    server_name: str | None = None
    tls: bool = True

    @property
    def name(self) -> str:
        """The name a client would ask for: the server name, else the host."""
        return self.server_name or self.host

    @property
    def sni(self) -> str | None:
        """The SNI to send; none for a bare IP address (clients never send one for those)."""
        try:
            ipaddress.ip_address(self.name)
        except ValueError:
            return self.name
        return None

    @property
    def authority(self) -> str:
        """The Host header value: the name, with the port unless it is the scheme's default."""
        default = 443 if self.tls else 80
        host = f"[{self.name}]" if ":" in self.name else self.name
        return host if self.port == default else f"{host}:{self.port}"


def client_context(version: str | None = None) -> ssl.SSLContext:
    """A non-validating client context, pinned to one TLS version when `version` is given.

    The security level drops to 0 so that the client is never the side refusing old versions or
    their ciphers: a refusal must come from the server to count.
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.set_ciphers("DEFAULT:@SECLEVEL=0")
    if version is not None:
        try:
            pinned = TLS_VERSIONS[version]
        except KeyError:
            raise ValueError(f"unknown TLS version {version!r} (1.0, 1.1, 1.2, 1.3)") from None
        with warnings.catch_warnings():
            # Python deprecates TLS 1.0/1.1; probing whether a server still accepts them is
            # exactly the point here.
            warnings.simplefilter("ignore", DeprecationWarning)
            context.minimum_version = pinned
            context.maximum_version = pinned
    return context


def connect(target: Target, timeout: float = TIMEOUT) -> socket.socket:
    """A TCP connection to the target (OSError when it cannot be made)."""
    return socket.create_connection((target.host, target.port), timeout=timeout)


def handshake(target: Target, context: ssl.SSLContext, timeout: float = TIMEOUT) -> ssl.SSLSocket:
    """A completed TLS handshake with the target; the caller closes the socket."""
    raw = connect(target, timeout)
    try:
        return context.wrap_socket(raw, server_hostname=target.sni)
    except BaseException:
        raw.close()
        raise


def tls_accepted(target: Target, version: str) -> bool | None:
    """Whether the target accepts TLS `version` ("1.0".."1.3").

    True when a handshake pinned to that version completes; False only when the server refuses
    the version itself; None when the probe cannot tell (no TLS, cipher mismatch, reset, timeout).
    """
    context = client_context(version)
    try:
        with handshake(target, context):
            return True
    except ssl.SSLError as exc:
        if exc.reason in REFUSED_REASONS:
            return False
        return None
    except OSError:
        return None


def alpn_selected(target: Target, offer: Sequence[str] = ("h2", "http/1.1")) -> str | None:
    """The ALPN protocol the target selects from `offer`; None when it selects none or the
    handshake fails."""
    context = client_context()
    context.set_alpn_protocols(list(offer))
    try:
        with handshake(target, context) as tls:
            return tls.selected_alpn_protocol()
    except OSError:
        return None


def certificate_expiry(target: Target) -> datetime | None:
    """When the certificate the target presents expires (None without TLS or a certificate)."""
    from cryptography import x509

    try:
        with handshake(target, client_context()) as tls:
            der = tls.getpeercert(binary_form=True)
    except OSError:
        return None
    if der is None:
        return None
    return x509.load_der_x509_certificate(der).not_valid_after_utc


def days_to_expiry(target: Target) -> int | None:
    expiry = certificate_expiry(target)
    if expiry is None:
        return None
    return (expiry - datetime.now(UTC)).days


@dataclass(frozen=True)
class HttpResult:
    """One HTTP response: status, the protocol that carried it, headers (lower-case names)."""

    status: int
    http_version: str
    headers: Mapping[str, str] = field(default_factory=dict)


def websocket_ok(target: Target, path: str) -> tuple[bool, int | None]:
    """Whether a WebSocket opening handshake on `path` succeeds, and the HTTP status seen
    (101 on success; the refusing status otherwise; None when no HTTP response came back)."""
    ok, response = websocket_handshake(target, path)
    return ok, response.status if response else None


def websocket_handshake(target: Target, path: str) -> tuple[bool, HttpResult | None]:
    """The WebSocket opening handshake on `path`: whether it succeeded, and the response.

    A handshake that got no HTTP answer at all (the connection broke while it was sent) is tried
    once more before it counts: one broken connection says nothing about the endpoint."""
    ok, response = _websocket_handshake_once(target, path)
    if response is None and not ok:
        ok, response = _websocket_handshake_once(target, path)
    return ok, response


def _websocket_handshake_once(target: Target, path: str) -> tuple[bool, HttpResult | None]:
    from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

    try:
        sock = connect(target)
    except OSError:
        return False, None
    try:
        with websocket(target, path, sock) as connection:
            response = connection.response
            headers = {k.lower(): v for k, v in response.headers.raw_items()} if response else {}
            return True, HttpResult(101, "HTTP/1.1", headers)
    except InvalidStatus as exc:
        headers = {k.lower(): v for k, v in exc.response.headers.raw_items()}
        return False, HttpResult(exc.response.status_code, "HTTP/1.1", headers)
    except (InvalidHandshake, ConnectionClosed, OSError):
        return False, None
    finally:
        sock.close()


def websocket(
    target: Target, path: str, sock: socket.socket, timeout: float = RESPONSE_TIMEOUT
) -> AbstractContextManager[WebSocket]:
    """A WebSocket opened on `path` over `sock`, connected to the target (TLS and SNI as the
    target says); see `websocket_client.open_websocket` for what it raises."""
    from remediate.websocket_client import open_websocket

    return open_websocket(
        sock,
        _ws_uri(target, path),
        timeout=timeout,
        context=client_context() if target.tls else None,
        server_hostname=target.sni if target.tls else None,
    )


def _ws_uri(target: Target, path: str) -> str:
    scheme = "wss" if target.tls else "ws"
    return f"{scheme}://{target.authority}{path if path.startswith('/') else '/' + path}"


def websocket_stays_open(target: Target, path: str, idle: float) -> tuple[bool | None, str]:
    """Whether a WebSocket on `path` is still open after `idle` seconds of silence, and what was
    seen. True when a ping sent after the silence is answered; False when the connection closed
    during it (or the ping went unanswered); None when no WebSocket could be opened, which says
    nothing about idle connections.

    Nothing is sent while idle: an idle timeout on the way must be the only thing that can end
    the connection."""
    from websockets.exceptions import ConnectionClosed, InvalidHandshake

    try:
        sock = connect(target)
    except OSError as exc:
        return None, f"no connection: {exc.strerror or type(exc).__name__}"
    try:
        with websocket(target, path, sock) as connection:
            started = time.monotonic()
            try:
                while (left := idle - (time.monotonic() - started)) > 0:
                    try:
                        connection.receive(timeout=left)
                    except TimeoutError:
                        break
                answered = connection.ping(RESPONSE_TIMEOUT)
            except (ConnectionClosed, OSError):
                return False, f"closed after {time.monotonic() - started:.1f} s idle"
            if not answered:
                return False, f"no answer to a ping after {idle:g} s idle"
            return True, f"open after {idle:g} s idle"
    except (InvalidHandshake, ConnectionClosed, OSError):
        return None, "the WebSocket handshake failed"
    finally:
        sock.close()


def http_request(target: Target, path: str = "/", http2: bool = False) -> HttpResult | None:
    """A GET of `path`, over HTTP/1.1 or (with `http2`, when ALPN selects it) HTTP/2; None when
    no response came back. Redirects are not followed: their status is the answer."""
    import httpx

    scheme = "https" if target.tls else "http"
    host = f"[{target.host}]" if ":" in target.host else target.host
    extensions = {"sni_hostname": target.sni} if target.tls and target.sni else {}
    try:
        with httpx.Client(
            verify=client_context() if target.tls else False,
            http1=True,
            http2=http2,
            trust_env=False,
            timeout=httpx.Timeout(RESPONSE_TIMEOUT, connect=TIMEOUT),
        ) as client:
            response = client.get(
                f"{scheme}://{host}:{target.port}{path}",
                headers={"Host": target.authority},
                extensions=extensions,
            )
    except httpx.HTTPError:
        return None
    headers = {k.lower(): v for k, v in response.headers.multi_items()}
    return HttpResult(response.status_code, response.http_version, headers)


def parse_url(url: str) -> tuple[Target, str]:
    """The target and path of an http(s):// or ws(s):// URL; a bad URL is a RemediateError."""
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        raise RemediateError(f"{url}: not a valid URL: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme not in ("https", "wss", "http", "ws"):
        raise RemediateError(f"{url}: not an https://, http://, wss:// or ws:// URL")
    tls = scheme in ("https", "wss")
    try:
        port = parts.port or (443 if tls else 80)
    except ValueError:
        raise RemediateError(f"{url}: invalid port") from None
    if not parts.hostname:
        raise RemediateError(f"{url}: no host name")
    try:
        # What the resolver will be asked for: a label over 63 characters, or an empty one, is
        # refused here rather than failing inside the socket module.
        parts.hostname.encode("idna")
    except UnicodeError:
        raise RemediateError(f"{url}: invalid host name {parts.hostname!r}") from None
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return Target(parts.hostname, port, None, tls), path


@dataclass
class Report:
    """What the probes saw at one endpoint, and the problems that follow from it."""

    url: str
    target: Target
    tls_versions: dict[str, bool | None]
    alpn: str | None
    http2: bool | None
    http1: HttpResult | None
    http2_response: HttpResult | None
    websocket: dict[str, tuple[bool, HttpResult | None]]
    certificate_days: int | None
    problems: list[str] = field(default_factory=list)

    @property
    def status(self) -> int | None:
        return self.http1.status if self.http1 else None

    @property
    def upgrade(self) -> str | None:
        if self.http1 is None or self.http1.status != 426:
            return None
        return self.http1.headers.get("upgrade")

    @property
    def healthy(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "tls_versions": self.tls_versions,
            "alpn": self.alpn,
            "http2": self.http2,
            "status": self.status,
            "upgrade": self.upgrade,
            "websocket": {
                path: {"ok": ok, "status": response.status if response else None}
                for path, (ok, response) in self.websocket.items()
            },
            "certificate_days": self.certificate_days,
            "problems": self.problems,
        }


def reachable(target: Target, what: str) -> None:
    """Raise a RemediateError naming `what` unless a TCP connection to the target succeeds."""
    try:
        connect(target).close()
    except socket.gaierror as exc:
        raise RemediateError(f"{what}: cannot resolve {target.host}: {exc.strerror}") from None
    except OSError as exc:
        reason = exc.strerror or str(exc) or type(exc).__name__
        raise RemediateError(
            f"{what}: cannot connect to {target.host}:{target.port}: {reason}"
        ) from None


def probe(
    target: Target,
    *,
    path: str = "/",
    ws_paths: Sequence[str] = (),
    url: str = "",
    minimum: str = "1.2",
    expect_http2: bool = True,
) -> Report:
    """Every probe against one endpoint; the caller checks it is reachable first."""
    tls = target.tls
    versions: dict[str, bool | None] = {
        version: tls_accepted(target, version) if tls else None for version in TLS_VERSIONS
    }
    alpn = alpn_selected(target) if tls else None
    http2_response = http_request(target, path, http2=True) if alpn == "h2" else None
    http2 = (
        (http2_response is not None and http2_response.http_version == "HTTP/2") if tls else None
    )
    report = Report(
        url=url or f"{'https' if tls else 'http'}://{target.authority}{path}",
        target=target,
        tls_versions=versions,
        alpn=alpn,
        http2=http2,
        http1=http_request(target, path),
        http2_response=http2_response,
        websocket={ws_path: websocket_handshake(target, ws_path) for ws_path in ws_paths},
        certificate_days=days_to_expiry(target) if tls else None,
    )
    report.problems = problems(report, minimum, expect_http2)
    return report


def problems(report: Report, minimum: str = "1.2", expect_http2: bool = True) -> list[str]:
    """The report's findings as sentences a person can act on."""
    found: list[str] = []
    floor = tls_key(minimum)
    versions = report.tls_versions
    if report.target.tls:
        for version, accepted in versions.items():
            if accepted and tls_key(version) < floor:
                found.append(f"TLS {version} is accepted, below the minimum TLS {minimum}.")
        if versions.get(minimum) is False:
            found.append(
                f"TLS {minimum} is refused: clients that stop at TLS {minimum} fail the handshake."
            )
        if all(accepted is None for accepted in versions.values()):
            found.append("No TLS handshake completed: the TLS probes are inconclusive.")
        if expect_http2 and report.alpn != "h2":
            chosen = f"it selects {report.alpn}" if report.alpn else "it selects none"
            found.append(f"h2 is not offered through ALPN ({chosen}): clients stay on HTTP/1.1.")
        elif report.alpn == "h2" and not report.http2:
            found.append("h2 is negotiated but an HTTP/2 request gets no response.")
        elif report.http2_response is not None and report.http2_response.status >= 500:
            found.append(f"An HTTP/2 request is answered {report.http2_response.status}.")
        days = report.certificate_days
        if days is not None and days < 0:
            found.append(f"The certificate expired {-days} day(s) ago.")
        elif days is not None and days < CERTIFICATE_WARNING_DAYS:
            found.append(f"The certificate expires in {days} day(s).")
    status = report.status
    if status is None:
        found.append("The HTTP/1.1 request got no response.")
    elif status == 426:
        upgrade = report.upgrade or "no Upgrade header"
        found.append(f"The HTTP/1.1 request is answered 426 Upgrade Required ({upgrade}).")
    elif status >= 500:
        found.append(f"The HTTP/1.1 request is answered {status}.")
    for path, (ok, response) in report.websocket.items():
        if not ok:
            seen = f"HTTP {response.status}" if response else "no HTTP response"
            found.append(f"The WebSocket handshake on {path} fails ({seen}).")
    return found


def _mark(value: bool | None) -> str:
    return {True: "accepted", False: "refused", None: "inconclusive"}[value]


def report_text(report: Report, with_problems: bool = True) -> str:
    """One endpoint's results as a person reads them (the evidence, then the problems)."""
    lines = [f"{report.url}"]
    if report.target.tls:
        for version, accepted in report.tls_versions.items():
            lines.append(f"  TLS {version}: {_mark(accepted)}")
        lines.append(f"  ALPN: {report.alpn or 'none'}")
        lines.append(f"  HTTP/2 request: {'works' if report.http2 else 'fails'}")
        if report.certificate_days is not None:
            lines.append(f"  certificate: expires in {report.certificate_days} day(s)")
    status = "no response" if report.status is None else str(report.status)
    if report.upgrade:
        status += f" (Upgrade: {report.upgrade})"
    lines.append(f"  HTTP/1.1 status: {status}")
    for path, (ok, response) in report.websocket.items():
        seen = response.status if response else "no response"
        lines.append(f"  WebSocket {path}: {'ok' if ok else 'fails'} ({seen})")
    if with_problems and report.problems:
        lines.append("  problems:")
        lines.extend(f"    ! {problem}" for problem in report.problems)
    elif with_problems:
        lines.append("  healthy")
    return "\n".join(lines) + "\n"


def reports_json(reports: Sequence[Report]) -> str:
    return (
        json.dumps(
            {
                "format_version": REPORT_FORMAT_VERSION,
                "healthy": all(report.healthy for report in reports),
                "endpoints": [report.to_dict() for report in reports],
            },
            indent=2,
        )
        + "\n"
    )
