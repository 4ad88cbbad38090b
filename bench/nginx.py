"""The Nginx scenario: a generated tree of server blocks on one local host, reached through an
Ansible inventory (`ansible_connection=local`), the way `remediate` reaches any Nginx host.

`remediate plan --only nginx` (collect through Ansible, parse, plan) is timed against the floor of
any Ansible-based collection, measured in the same run: the same inventory read by one bare
ad-hoc `ansible -m command` task running `nginx -T`; once for one host of 2,000 server blocks and
once for 30 local hosts of 50 blocks each. A crossplane parse of the one big tree and an
in-process breakdown (Ansible, parse, rules, render) say where the rest goes. Each server block
has five `listen` directives, so the default 2,000 blocks are the 10,000 listeners of the memory
goal.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
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
        "nginx.ansible_floor_s": None,
        "nginx.parse_only_s": None,
        "nginx.peak_rss_mb": None,
        "nginx.fleet_plan_s": None,
        "nginx.fleet_ansible_floor_s": None,
        "nginx.skipped": reason,
    }


def write_inventory(path: Path, hosts: dict[str, Path]) -> None:
    """One `ansible_connection=local` host per tree: {name: its nginx.conf}."""
    python = Path(sys.executable)
    path.write_text(
        "".join(
            f"{name} ansible_connection=local ansible_python_interpreter={python} "
            f"nginx_binary={NGINX} nginx_prefix={conf.parent}/ nginx_conf_path={conf}\n"
            for name, conf in hosts.items()
        ),
        encoding="utf-8",
    )


def write_policy(path: Path, inventory: Path, forks: int) -> None:
    path.write_text(
        f'version: 1\ntls:\n  minimum: "1.2"\nhttp2: true\n'
        f'websocket:\n  locations: ["/ws/"]\n'
        f"nginx:\n  inventory: {inventory}\n  forks: {forks}\n",
        encoding="utf-8",
    )


def ansible_floor(inventory: Path, forks: int, env: dict[str, str]) -> float:
    """The same inventory read by one bare ad-hoc `ansible` command task running `nginx -T`:
    the least any Ansible-based collection of these hosts can cost."""
    ansible = Path(sys.executable).parent / "ansible"
    command = [
        str(ansible),
        "all",
        "-i",
        str(inventory),
        "-f",
        str(forks),
        "-m",
        "command",
        "-a",
        "{{ nginx_binary }} -p {{ nginx_prefix }} -c {{ nginx_conf_path }} -T -q",
    ]
    result = run_measured(command, {**env, "ANSIBLE_PIPELINING": "1"})
    if result.code != 0:
        raise RuntimeError(f"ansible ad-hoc nginx -T failed: {result.stderr[-2000:]}")
    return result.seconds


@dataclass(frozen=True)
class Planned:
    seconds: float
    peak_mb: float
    changes: int


def plan(policy: Path, env: dict[str, str]) -> Planned:
    """`remediate plan --only nginx` as a user runs it: seconds, peak MiB, changes."""
    command = [sys.executable, "-m", "remediate", "plan", "-p", str(policy), "--only", "nginx"]
    result = run_measured([*command, "--format", "json", "--quiet"], env)
    if result.code != 0:
        raise RuntimeError(f"remediate plan --only nginx failed: {result.stderr.strip()[-500:]}")
    return Planned(result.seconds, result.peak_rss_mb, len(json.loads(result.stdout)["changes"]))


def alternate(
    inventory: Path, policy: Path, forks: int, env: dict[str, str], repeat: int
) -> tuple[list[float], list[Planned]]:
    """The floor and the plan of one inventory, `repeat` times each, one after the other: on a
    shared machine one pair can differ by a third from the next, and alternating puts both
    sides of the ratio under the same load."""
    floors: list[float] = []
    plans: list[Planned] = []
    for _ in range(repeat):
        floors.append(ansible_floor(inventory, forks, env))
        plans.append(plan(policy, env))
    return floors, plans


def breakdown(policy_path: Path) -> dict[str, float]:
    """Where one plan's time goes, measured step by step in this process: the Ansible collection
    (the plan parses each host's tree as its result arrives, so this includes the parse), the
    part of it spent parsing, the rules (edits, diffs) and the rendering of the plan."""
    from remediate import planner, render
    from remediate.ansible_run import run_playbook
    from remediate.inventory import Inventory
    from remediate.model import Plan
    from remediate.policy import load
    from remediate.progress import Silent
    from remediate.providers.nginx import discover, rules
    from remediate.providers.nginx.host import COLLECT_PLAYBOOK, COLLECT_TASK, Prepared, prepare
    from remediate.providers.nginx.host import read as read_hosts
    from remediate.providers.nginx.runner import PLAYBOOKS

    policy = load(policy_path)
    inventory_file = discover.inventory_path(policy)
    parsing = 0.0

    def timed(host: str, result: Any) -> Prepared:
        nonlocal parsing
        began = time.perf_counter()
        try:
            return prepare(host, result)
        finally:
            parsing += time.perf_counter() - began

    started = time.perf_counter()
    run = run_playbook(
        PLAYBOOKS / COLLECT_PLAYBOOK,
        inventory_file,
        Silent(),
        label="nginx",
        early={COLLECT_TASK: timed},
    )
    hosts = read_hosts(run, inventory_file, Silent())
    collected = time.perf_counter()
    parsed = {}
    for h in hosts:
        early = run.early[(h.host, COLLECT_TASK)]
        assert isinstance(early, Prepared)
        parsed[h.host] = early.config
    inventory = Inventory(providers=["nginx"])
    inventory.endpoints.extend(discover.endpoint_of(h, policy, parsed[h.host]) for h in hosts)
    inventory.facts[rules.TREES] = {h.host: h.files for h in hosts}
    inventory.facts[rules.PARSED] = parsed
    document: Plan = planner.plan(inventory, policy)
    ruled = time.perf_counter()
    render.plan_text(document)
    rendered = time.perf_counter()
    return {
        "nginx.ansible_s": round(collected - started, 2),
        "nginx.parse_s": round(parsing, 2),
        "nginx.rules_s": round(ruled - collected, 2),
        "nginx.render_s": round(rendered - ruled, 2),
    }


def startup(env: dict[str, str]) -> float:
    """A fresh `remediate` process that does nothing (`--help`): imports and start-up."""
    result = run_measured([sys.executable, "-m", "remediate", "--help"], env)
    if result.code != 0:
        raise RuntimeError(f"remediate --help failed: {result.stderr[-500:]}")
    return result.seconds


def scenario(
    server_blocks: int,
    files: int,
    log: Callable[[str], None],
    fleet_hosts: int = 30,
    fleet_blocks: int = 50,
    forks: int = 20,
    repeat: int = 3,
) -> dict[str, Any]:
    if not Path(NGINX).exists():
        return skipped(server_blocks, "no nginx binary (make system-deps installs it)")
    python = Path(sys.executable)
    with tempfile.TemporaryDirectory(prefix="remediate-bench-") as tmp:
        env = {**os.environ, "REMEDIATE_STATE_DIR": f"{tmp}/state", "ANSIBLE_LOCAL_TEMP": tmp}
        # One host of `server_blocks` blocks.
        conf = write_tree(Path(tmp) / "host", server_blocks, files)
        inventory = Path(tmp) / "hosts.ini"
        write_inventory(inventory, {"bench": conf})
        policy = Path(tmp) / "remediate.yaml"
        write_policy(policy, inventory, forks)
        parse = run_measured(
            [str(python.parent / "crossplane"), "parse", "-o", os.devnull, str(conf)], env
        )
        if parse.code != 0:
            raise RuntimeError(f"crossplane parse failed: {parse.stderr[-2000:]}")
        try:
            floors, plans = alternate(inventory, policy, forks, env, repeat)
        except RuntimeError as exc:
            return skipped(server_blocks, str(exc))
        floor, plan_s = statistics.median(floors), statistics.median(p.seconds for p in plans)
        peak, changes = max(p.peak_mb for p in plans), plans[-1].changes
        steps = {**breakdown(policy), "nginx.startup_s": round(startup(env), 2)}
        log(
            f"one host, {server_blocks} server blocks, median of {repeat}: plan {plan_s:.2f} s "
            f"({changes} changes, {peak:.0f} MB peak), bare ansible nginx -T {floor:.2f} s, "
            f"crossplane parse {parse.seconds:.2f} s; in-process steps {steps}"
        )
        # `fleet_hosts` hosts of `fleet_blocks` blocks each, read in parallel (forks).
        fleet = {
            f"web{n:02d}": write_tree(Path(tmp) / f"web{n:02d}", fleet_blocks, 5)
            for n in range(fleet_hosts)
        }
        fleet_inventory = Path(tmp) / "fleet.ini"
        write_inventory(fleet_inventory, fleet)
        fleet_policy = Path(tmp) / "fleet.yaml"
        write_policy(fleet_policy, fleet_inventory, forks)
        fleet_floors, fleet_plans = alternate(fleet_inventory, fleet_policy, forks, env, repeat)
        fleet_floor = statistics.median(fleet_floors)
        fleet_plan_s = statistics.median(p.seconds for p in fleet_plans)
        fleet_peak, fleet_changes = max(p.peak_mb for p in fleet_plans), fleet_plans[-1].changes
        log(
            f"{fleet_hosts} hosts x {fleet_blocks} server blocks, forks {forks}, median of "
            f"{repeat}: plan "
            f"{fleet_plan_s:.2f} s ({fleet_changes} changes, {fleet_peak:.0f} MB peak), "
            f"bare ansible nginx -T {fleet_floor:.2f} s"
        )
    return {
        "nginx.server_blocks": server_blocks,
        "nginx.plan_s": round(plan_s, 2),
        "nginx.ansible_floor_s": round(floor, 2),
        "nginx.parse_only_s": round(parse.seconds, 2),
        "nginx.peak_rss_mb": peak,
        "nginx.changes": changes,
        "nginx.listeners": server_blocks * LISTENS_PER_BLOCK,
        "nginx.files": files,
        **steps,
        "nginx.fleet_hosts": fleet_hosts,
        "nginx.fleet_server_blocks": fleet_blocks,
        "nginx.forks": forks,
        "nginx.fleet_plan_s": round(fleet_plan_s, 2),
        "nginx.fleet_ansible_floor_s": round(fleet_floor, 2),
        "nginx.fleet_peak_rss_mb": fleet_peak,
        "nginx.repeat": repeat,
        "nginx.plan_samples_s": [round(p.seconds, 2) for p in plans],
        "nginx.ansible_floor_samples_s": [round(f, 2) for f in floors],
        "nginx.fleet_plan_samples_s": [round(p.seconds, 2) for p in fleet_plans],
        "nginx.fleet_ansible_floor_samples_s": [round(f, 2) for f in fleet_floors],
    }
