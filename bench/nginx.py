"""The Nginx scenario: a generated tree of server blocks on one local host, reached through an
Ansible inventory (`ansible_connection=local`), the way `remediate` reaches any Nginx host.

`remediate plan --only nginx` (collect through Ansible, parse, plan) is timed against a crossplane
parse of the same tree alone, in the same kind of process. Each server block has five `listen`
directives, so the default 2,000 blocks are the 10,000 listeners of the memory goal.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.rss import run_measured
from remediate.sandbox.certs import self_signed

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
LISTENS_PER_BLOCK = 5
MAIN_CONF = """\
# Benchmark host: a private prefix, nothing outside it.
pid logs/nginx.pid;
error_log logs/error.log;
events {
    worker_connections 1024;
}
http {
    access_log off;
    server_names_hash_max_size 8192;
    server_names_hash_bucket_size 128;
    client_body_temp_path tmp/body;
    proxy_temp_path tmp/proxy;
    fastcgi_temp_path tmp/fastcgi;
    uwsgi_temp_path tmp/uwsgi;
    scgi_temp_path tmp/scgi;
    ssl_certificate certs/site.crt;
    ssl_certificate_key certs/site.key;
    # Old clients still connect with TLS 1.0
    ssl_protocols TLSv1 TLSv1.1 TLSv1.2;
    include sites/*.conf;
}
"""
SERVER = """\
# {name}: team {team}
server {{
    listen {port_tls} ssl;
    listen [::]:{port_tls} ssl;
    listen {port_plain};
    listen [::]:{port_plain};
    listen {port_alt} ssl;
    server_name {name}.example.com www.{name}.example.com;
{protocols}
    location / {{
        proxy_pass http://127.0.0.1:9000;
        proxy_set_header Host $host;
    }}

    # live updates
    location /ws/ {{
        proxy_pass http://127.0.0.1:9001;
    }}
}}
"""


def write_tree(root: Path, server_blocks: int, files: int) -> Path:
    """`server_blocks` servers spread over `files` files under ROOT/sites; returns nginx.conf.

    Sockets are shared the way a real host shares them (many names on one address:port): block i
    listens on one of 10 TLS ports, its plain and alternative ports. Every third block sets its own
    `ssl_protocols`; the rest inherit the weak http-level one.
    """
    for directory in ("sites", "logs", "tmp", "certs"):
        (root / directory).mkdir(parents=True, exist_ok=True)
    self_signed(root / "certs", "site", "bench.example.com", days=1)
    conf = root / "nginx.conf"
    conf.write_text(MAIN_CONF, encoding="utf-8")
    per_file = -(-server_blocks // files)
    for number in range(files):
        blocks = []
        for index in range(number * per_file, min(server_blocks, (number + 1) * per_file)):
            protocols = "    ssl_protocols TLSv1.2 TLSv1.3;\n" if index % 3 == 0 else ""
            blocks.append(
                SERVER.format(
                    name=f"site{index:05d}",
                    team=number,
                    port_tls=8400 + index % 10,
                    port_plain=8000 + index % 10,
                    port_alt=9400 + index % 10,
                    protocols=protocols,
                )
            )
        (root / "sites" / f"site-{number:04d}.conf").write_text("\n".join(blocks), "utf-8")
    return conf


def skipped(server_blocks: int, reason: str) -> dict[str, Any]:
    return {
        "nginx.server_blocks": server_blocks,
        "nginx.plan_s": None,
        "nginx.parse_only_s": None,
        "nginx.peak_rss_mb": None,
        "nginx.skipped": reason,
    }


def scenario(server_blocks: int, files: int, log: Callable[[str], None]) -> dict[str, Any]:
    if not Path(NGINX).exists():
        return skipped(server_blocks, "no nginx binary (make system-deps installs it)")
    from remediate.engine import PROVIDERS

    if "nginx" not in PROVIDERS:
        return skipped(server_blocks, "this version of remediate has no Nginx provider")
    python = Path(sys.executable)
    with tempfile.TemporaryDirectory(prefix="remediate-bench-") as tmp:
        root = Path(tmp) / "host"
        conf = write_tree(root, server_blocks, files)
        inventory = Path(tmp) / "hosts.ini"
        inventory.write_text(
            f"bench ansible_connection=local ansible_python_interpreter={python} "
            f"nginx_binary={NGINX} nginx_prefix={root}/ nginx_conf_path={conf}\n",
            encoding="utf-8",
        )
        policy = Path(tmp) / "remediate.yaml"
        policy.write_text(
            f'version: 1\ntls:\n  minimum: "1.2"\nhttp2: true\n'
            f'websocket:\n  locations: ["/ws/"]\nnginx:\n  inventory: {inventory}\n',
            encoding="utf-8",
        )
        env = {**os.environ, "REMEDIATE_STATE_DIR": f"{tmp}/state", "ANSIBLE_LOCAL_TEMP": tmp}
        parse = run_measured(
            [str(python.parent / "crossplane"), "parse", "-o", os.devnull, str(conf)], env
        )
        if parse.code != 0:
            raise RuntimeError(f"crossplane parse failed: {parse.stderr[-2000:]}")
        log(f"crossplane parse of {server_blocks} server blocks: {parse.seconds:.2f} s")
        command = [str(python), "-m", "remediate", "plan", "-p", str(policy), "--only", "nginx"]
        plan = run_measured([*command, "--format", "json", "--quiet"], env)
        if plan.code != 0:
            return skipped(
                server_blocks, f"remediate plan --only nginx failed: {plan.stderr.strip()[-500:]}"
            )
        changes = json.loads(plan.stdout)["changes"]
        log(
            f"remediate plan --only nginx: {plan.seconds:.2f} s, {len(changes)} changes, "
            f"{plan.peak_rss_mb:.0f} MB peak"
        )
    return {
        "nginx.server_blocks": server_blocks,
        "nginx.plan_s": round(plan.seconds, 2),
        "nginx.parse_only_s": round(parse.seconds, 2),
        "nginx.peak_rss_mb": plan.peak_rss_mb,
        "nginx.changes": len(changes),
        "nginx.listeners": server_blocks * LISTENS_PER_BLOCK,
        "nginx.files": files,
    }
