"""Live probes of one endpoint: TLS versions, ALPN, HTTP/1.1 and HTTP/2 requests, WebSocket upgrade.

The probes test protocol, not trust: certificates are not validated (expiry is read separately).
They are honest about what they cannot tell (DESIGN §3): OpenSSL 3 refuses TLS 1.0/1.1 at its
default security level, so the client context for a version pins min = max to that version and
drops to `@SECLEVEL=0`; only the server's refusal of the version (a `protocol_version` alert, or a
server hello with another version) counts as "not accepted". A cipher mismatch, a reset or a
timeout says nothing about the version, and is reported as inconclusive (`None`).
"""

from __future__ import annotations

import ipaddress
import socket
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

TLS_VERSIONS: dict[str, ssl.TLSVersion] = {
    "1.0": ssl.TLSVersion.TLSv1,
    "1.1": ssl.TLSVersion.TLSv1_1,
    "1.2": ssl.TLSVersion.TLSv1_2,
    "1.3": ssl.TLSVersion.TLSv1_3,
}
# OpenSSL reasons meaning "the server does not speak this version": its protocol_version alert,
# or (seen from the client) a server hello choosing a version the client did not offer.
REFUSED_REASONS = frozenset({"TLSV1_ALERT_PROTOCOL_VERSION", "UNSUPPORTED_PROTOCOL"})
TIMEOUT = 5.0


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


def days_to_expiry(target: Target, now: datetime | None = None) -> int | None:
    expiry = certificate_expiry(target)
    if expiry is None:
        return None
    return (expiry - (now or datetime.now(UTC))).days


def websocket_ok(target: Target, path: str) -> tuple[bool, int | None]:
    """Whether a WebSocket opening handshake on `path` succeeds, and the HTTP status seen
    (101 on success; the refusing status otherwise; None when no HTTP response came back)."""
    from websockets.exceptions import InvalidHandshake, InvalidStatus
    from websockets.sync.client import connect as ws_connect

    scheme = "wss" if target.tls else "ws"
    uri = f"{scheme}://{target.authority}{path if path.startswith('/') else '/' + path}"
    try:
        sock = connect(target)
    except OSError:
        return False, None
    try:
        with ws_connect(
            uri,
            sock=sock,
            ssl=client_context() if target.tls else None,
            server_hostname=target.sni if target.tls else None,
            proxy=None,
            open_timeout=TIMEOUT,
            close_timeout=1,
        ):
            return True, 101
    except InvalidStatus as exc:
        return False, exc.response.status_code
    except (InvalidHandshake, OSError, TimeoutError):
        return False, None
    finally:
        sock.close()
