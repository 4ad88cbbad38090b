"""The demo's HAProxy host: a weak TLS edge (TLS 1.0 accepted, no ALPN, a WebSocket backend without
`timeout tunnel`) on loopback, run by the local haproxy binary in master-worker mode, in front of
a real WebSocket echo backend, and reached through Ansible like any other host."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from remediate.sandbox.certs import self_signed
from remediate.sandbox.nginx import echo_backend, free_port

HOST = "lb.demo"

CONFIG = """\
# The demo's TLS edge: everything lives under {root}.
global
\tpidfile {root}/haproxy.pid
\t# kept for a kiosk that only speaks TLS 1.0
\tssl-default-bind-options ssl-min-ver TLSv1.0
\tssl-default-bind-ciphers DEFAULT:@SECLEVEL=0

defaults
\tmode http
\ttimeout connect 5s
\ttimeout http-request 10s
\t# short, so verification's idle WebSocket (kept just past it) takes seconds
\ttimeout client 5s
\ttimeout server 30s

frontend shop
\tbind 127.0.0.1:{port} ssl crt {root}/shop.pem
\tuse_backend updates if {{ path_beg /ws/ }}
\tdefault_backend updates

backend updates
\t# order updates over WebSockets
\tserver echo 127.0.0.1:{backend}
"""


def _wait(port: int, pidfile: Path) -> None:
    import socket

    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                if pidfile.exists():
                    return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("the demo haproxy did not start")


@contextmanager
def haproxy_world(workdir: Path) -> Iterator[dict[str, Any]]:
    """An HAProxy host for the demo when a haproxy binary is installed; nothing otherwise."""
    binary = shutil.which("haproxy") or (
        "/usr/sbin/haproxy" if Path("/usr/sbin/haproxy").exists() else None
    )
    if binary is None:
        print(
            "demo: no haproxy binary, so no HAProxy host (apt-get install haproxy)", file=sys.stderr
        )
        yield {}
        return
    root = workdir / "haproxy"
    root.mkdir(parents=True)
    cert, key = self_signed(root, "shop", "shop.demo", days=7)
    (root / "shop.pem").write_bytes(cert.read_bytes() + key.read_bytes())
    port = free_port()
    pidfile = root / "haproxy.pid"
    with echo_backend() as backend:
        conf = root / "haproxy.cfg"
        conf.write_text(CONFIG.format(root=root, port=port, backend=backend), encoding="utf-8")
        subprocess.run(
            [binary, "-W", "-D", "-p", str(pidfile), "-f", str(conf)],
            check=True,
            capture_output=True,
        )
        try:
            _wait(port, pidfile)
            inventory = workdir / "haproxy-hosts.ini"
            reload = f"kill -USR2 $(cat {pidfile})"
            inventory.write_text(
                "[haproxy]\n"
                f"{HOST} ansible_connection=local ansible_python_interpreter={sys.executable} "
                f"haproxy_binary={binary} haproxy_config_paths={conf} "
                f"haproxy_backup_dir={workdir / 'haproxy-backups'} "
                f"""haproxy_reload_command='["sh", "-c", "{reload}"]'\n""",
                encoding="utf-8",
            )
            yield {"haproxy": {"inventory": str(inventory), "websocket_backends": ["updates"]}}
        finally:
            with suppress(OSError, ValueError):
                os.kill(int(pidfile.read_text().split()[0]), signal.SIGTERM)
