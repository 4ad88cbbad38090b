"""Real servers on loopback for the probe tests: nginx with a private prefix and a real
certificate, a `websockets` backend, and a stdlib HTTP server that answers 426; and the planned
change to an Nginx file that those tests feed in."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from remediate.model import Change
from remediate.sandbox.certs import self_signed
from remediate.sandbox.nginx import echo_backend, free_port
from remediate.targets import HostFile, Socket

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
OLD_TLS = "ssl_protocols TLSv1 TLSv1.1 TLSv1.2 TLSv1.3; ssl_ciphers DEFAULT:@SECLEVEL=0;"
NEW_TLS = "ssl_protocols TLSv1.2 TLSv1.3;"
WS_HEADERS = """
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection $connection_upgrade;"""


def nginx_file_change(
    host: str,
    path: str = "/etc/nginx/nginx.conf",
    sockets: tuple[Socket, ...] = (),
    **fields: Any,
) -> Change:
    """A change to one file of an Nginx host, shaped as the Nginx rules plan it; `fields` (such
    as `before`, `after`, `diff`) fill in the rest."""
    values: dict[str, Any] = {"before": "", "after": "", "reason": "", **fields}
    return Change(
        provider="nginx",
        kind="file",
        target=HostFile(host=host, path=path, sockets=sockets),
        resource=f"{host}:{path}",
        attribute="content",
        executor="ansible",
        fingerprint="sha256:0",
        **values,
    )


def wait_for_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port}")


def server_block(
    port: int,
    tls: str,
    backend_port: int | None = None,
    ws_headers: bool = True,
    http2: bool = True,
    cert_days: int = 30,
    locations: str = "",
) -> str:
    """One TLS server on `port`; with a backend, `/ws/` is proxied to it."""
    location = extra = ""
    if backend_port is not None:
        # The backend speaks plain HTTP: proxying the upgrade over TLS is a protocol mismatch.
        extra = f"""
        location /ws-tls/ {{
            proxy_pass https://127.0.0.1:{backend_port};{WS_HEADERS}
        }}
        location /ws-no-upgrade/ {{
            proxy_pass http://127.0.0.1:{backend_port};
            proxy_http_version 1.1;
        }}"""
        headers = WS_HEADERS if ws_headers else ""
        location = f"""
        location /ws/ {{
            proxy_pass http://127.0.0.1:{backend_port};{headers}
        }}"""
    h2 = " http2" if http2 else ""
    return f"""
    server {{
        listen 127.0.0.1:{port} ssl{h2};
        server_name localhost;
        ssl_certificate certs/cert{cert_days}.crt;
        ssl_certificate_key certs/cert{cert_days}.key;
        {tls}
        location = / {{ return 200 "ok\\n"; }}
        location /backend-502/ {{ proxy_pass http://127.0.0.1:1; }}{location}{extra}{locations}
    }}"""


class Nginx:
    """The real nginx binary under a private prefix, in the foreground, until `stop()`."""

    def __init__(self, prefix: Path, servers: str, cert_days: tuple[int, ...] = (30,)) -> None:
        self.prefix = prefix
        (prefix / "logs").mkdir(parents=True, exist_ok=True)
        (prefix / "conf" / "certs").mkdir(parents=True, exist_ok=True)
        for days in cert_days:
            self_signed(prefix / "conf" / "certs", f"cert{days}", "localhost", days=days)
        user = "user root;" if os.geteuid() == 0 else ""
        (prefix / "conf" / "nginx.conf").write_text(
            f"""{user}
worker_processes 1;
pid logs/nginx.pid;
error_log logs/error.log;
events {{ worker_connections 64; }}
http {{
    access_log logs/access.log;
    client_body_temp_path tmp/body;
    proxy_temp_path tmp/proxy;
    fastcgi_temp_path tmp/fastcgi;
    uwsgi_temp_path tmp/uwsgi;
    scgi_temp_path tmp/scgi;
    map $http_upgrade $connection_upgrade {{ default upgrade; '' close; }}
{servers}
}}
""",
            encoding="utf-8",
        )
        (prefix / "tmp").mkdir(exist_ok=True)
        self.process = subprocess.Popen(
            [NGINX, "-p", str(prefix), "-c", "conf/nginx.conf", "-g", "daemon off;"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )

    def wait(self, port: int) -> None:
        try:
            wait_for_port(port)
        except TimeoutError:
            self.stop()
            errors = (self.prefix / "logs" / "error.log").read_text(errors="replace")
            raise RuntimeError(f"nginx did not start: {errors}") from None

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@contextmanager
def websocket_backend() -> Iterator[int]:
    """A real `websockets` echo server; a request without the upgrade gets its 426."""
    with echo_backend() as port:
        yield port


class Upgrade426(BaseHTTPRequestHandler):
    """Answers every request `426 Upgrade Required` with `Upgrade: TLS/1.2, HTTP/1.1`."""

    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        body = b"426 Upgrade Required\n"
        self.send_response(426, "Upgrade Required")
        self.send_header("Upgrade", "TLS/1.2, HTTP/1.1")
        self.send_header("Connection", "Upgrade")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        return


class NoUpgrade(BaseHTTPRequestHandler):
    """A plain HTTP/1.1 backend: 200 to requests, but it hangs up on an upgrade it cannot speak."""

    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        if self.headers.get("Upgrade"):
            self.close_connection = True
            return
        body = b"plain\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        return


@contextmanager
def http_server(handler: type[BaseHTTPRequestHandler]) -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@dataclass(frozen=True)
class Edge:
    """Ports of the loopback edge: nginx servers in front of real backends, and a 426 server."""

    old: int  # TLS 1.0-1.3, h2, WebSocket headers
    new: int  # TLS 1.2-1.3, no h2, no WebSocket headers
    fixed: int  # TLS 1.2-1.3, h2, WebSocket headers: healthy
    tls13: int  # TLS 1.3 only: the floor is too high
    expiring: int  # healthy but for a certificate that expires in 5 days
    legacy: int  # TLS 1.0 and 1.1 only
    upgrade426: int  # plain HTTP, every request 426 with Upgrade: TLS/1.2, HTTP/1.1
    websocket: int  # the websockets backend itself


@pytest.fixture(scope="module")
def edge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Edge]:
    with (
        websocket_backend() as backend,
        http_server(Upgrade426) as upgrade426,
        http_server(NoUpgrade) as plain,
    ):
        ports = [free_port() for _ in range(6)]
        closer = f"""
        location /ws-closer/ {{
            proxy_pass http://127.0.0.1:{plain};{WS_HEADERS}
        }}"""
        servers = (
            server_block(ports[0], OLD_TLS, backend)
            + server_block(ports[1], NEW_TLS, backend, ws_headers=False, http2=False)
            + server_block(ports[2], NEW_TLS, backend, locations=closer)
            + server_block(ports[3], "ssl_protocols TLSv1.3;", backend)
            + server_block(ports[4], NEW_TLS, backend, cert_days=5)
            + server_block(
                ports[5], "ssl_protocols TLSv1 TLSv1.1; ssl_ciphers DEFAULT:@SECLEVEL=0;"
            )
        )
        nginx = Nginx(tmp_path_factory.mktemp("nginx"), servers, cert_days=(30, 5))
        try:
            for port in ports:
                nginx.wait(port)
            yield Edge(*ports, upgrade426=upgrade426, websocket=backend)
        finally:
            nginx.stop()
