"""The demo's Nginx host: a temporary config tree that still accepts TLS 1.0, lacks HTTP/2 and
drops the WebSocket headers, served on loopback by the local nginx binary (with a private
prefix, a self-signed certificate and a WebSocket echo backend), and reached through Ansible
with `ansible_connection=local`, exactly as a remote host would be.

The tree has Debian's layout: the site lives in `sites-available/shop` and is enabled by a
symbolic link in `sites-enabled/`, so the demo writes through the link to the real file."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from websockets.sync.server import ServerConnection, serve

from remediate.sandbox.certs import self_signed

HOST = "demo-web"


def private_conf(header: str, http: str) -> str:
    """A main nginx.conf whose pid, logs and temp files all stay under its `nginx -p` prefix:
    `header` opens the file, `http` (indented lines) ends its http block."""
    return f"""{header}
pid logs/nginx.pid;
error_log logs/error.log;

events {{
    worker_connections 64;
}}

http {{
    access_log off;
    client_body_temp_path tmp/body;
    proxy_temp_path tmp/proxy;
    fastcgi_temp_path tmp/fastcgi;
    uwsgi_temp_path tmp/uwsgi;
    scgi_temp_path tmp/scgi;
{http}}}
"""


MAIN_HTTP = """
    # Old point-of-sale terminals still connect with TLS 1.0
    ssl_protocols TLSv1 TLSv1.1 TLSv1.2 TLSv1.3;
    ssl_ciphers "DEFAULT:@SECLEVEL=0";

    include sites-enabled/*;
"""

SITE = """# The shop, with live order updates over WebSockets.
server {{
    listen 127.0.0.1:{port} ssl default_server;
    server_name shop.demo;

    ssl_certificate     certs/shop.crt;
    ssl_certificate_key certs/shop.key;

    location / {{
        return 200 "shop\\n";
    }}

    location /ws/ {{
        proxy_pass http://127.0.0.1:{backend};   # order updates
    }}
}}
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def echo_backend(address: str = "127.0.0.1") -> Iterator[int]:
    """A `websockets` echo server on `address` in a thread; yields its port.

    It refuses anything but a proper HTTP/1.1 Upgrade request (426), as real backends do, so a
    proxy location without the Upgrade/Connection headers fails the handshake through nginx.
    """

    def echo(connection: ServerConnection) -> None:
        for message in connection:
            connection.send(message)

    with serve(echo, address, 0) as server:
        port: int = server.socket.getsockname()[1]
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield port
        finally:
            server.shutdown()
            thread.join(timeout=5)


def write_tree(prefix: Path, port: int, backend: int) -> Path:
    """The demo host's files under `prefix`; returns the main config file."""
    for name in ("logs", "tmp", "conf/sites-available", "conf/sites-enabled"):
        (prefix / name).mkdir(parents=True, exist_ok=True)
    self_signed(prefix / "conf" / "certs", "shop", "shop.demo", days=7)
    user = "user root;\n" if os.geteuid() == 0 else ""
    conf = prefix / "conf" / "nginx.conf"
    header = (
        f"{user}# The demo host: everything lives under its private prefix.\nworker_processes 1;"
    )
    conf.write_text(private_conf(header, MAIN_HTTP), encoding="utf-8")
    site = SITE.format(port=port, backend=backend)
    (prefix / "conf" / "sites-available" / "shop").write_text(site, encoding="utf-8")
    enabled = prefix / "conf" / "sites-enabled" / "shop"
    if not enabled.is_symlink():
        enabled.symlink_to("../sites-available/shop")
    return conf


def _wait(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and process.poll() is None:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    errors = log.read_text(errors="replace") if log.exists() else ""
    raise RuntimeError(f"the demo nginx did not start: {errors.strip()}")


@contextmanager
def nginx_world(workdir: Path) -> Iterator[dict[str, Any]]:
    """An Nginx host for the demo when an nginx binary is installed; nothing otherwise."""
    binary = shutil.which("nginx") or (
        "/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None
    )
    if binary is None:
        print("demo: no nginx binary, so no Nginx host (apt-get install nginx)", file=sys.stderr)
        yield {}
        return
    prefix = workdir / "nginx"
    port = free_port()
    with echo_backend() as backend:
        conf = write_tree(prefix, port, backend)
        process = subprocess.Popen(
            [binary, "-p", str(prefix), "-c", str(conf), "-g", "daemon off;"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            _wait(port, process, prefix / "logs" / "error.log")
            inventory = workdir / "nginx-hosts.ini"
            inventory.write_text(
                "[nginx]\n"
                f"{HOST} ansible_connection=local ansible_python_interpreter={sys.executable} "
                f"nginx_binary={binary} nginx_prefix={prefix} nginx_conf_path={conf} "
                f"nginx_backup_dir={workdir / 'nginx-backups'}\n",
                encoding="utf-8",
            )
            yield {"nginx": {"inventory": str(inventory)}, "websocket": {"locations": ["/ws/"]}}
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
