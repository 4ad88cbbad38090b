"""One collection pass per host: a host that runs both Nginx and HAProxy, in the inventory both
policy sections name, is read by one Ansible playbook run, and both providers plan from it.

The runs are counted by Ansible itself (the `playbook_runs` fixture).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import date
from pathlib import Path

import pytest

from remediate import planner
from remediate.hosts import collection
from remediate.policy import Policy
from remediate.policy import load as load_policy
from remediate.progress import Silent
from remediate.provider import discovery
from remediate.providers.haproxy.discover import collector as haproxy_collector
from remediate.providers.haproxy.host import read as haproxy_read
from remediate.providers.nginx.discover import collector as nginx_collector
from remediate.providers.nginx.discover import discover as nginx_discover
from remediate.providers.nginx.host import COLLECT_TASK, Prepared
from remediate.providers.nginx.rules import REVIEWED
from remediate.sandbox.nginx import echo_backend, free_port
from tests.conftest import Cli
from tests.nginx_env import NGINX, NginxHost, websocket_backend
from tests.test_haproxy_apply import HAPROXY, HAProxyHost

pytestmark = pytest.mark.skipif(
    not Path(HAPROXY).exists() or not Path(NGINX).exists(),
    reason="needs the nginx and haproxy binaries (`make test` installs them)",
)

POLICY = """\
version: 1
tls:
  minimum: "1.2"
http2: true
websocket:
  locations: ["/ws/"]
nginx:
  inventory: {inventory}
haproxy:
  inventory: {inventory}
  websocket_backends: ["live"]
"""


def write_policy(tmp_path: Path, inventory: Path) -> Policy:
    path = tmp_path / "remediate.yaml"
    path.write_text(POLICY.format(inventory=inventory), encoding="utf-8")
    return load_policy(path)


@pytest.fixture
def edge(tmp_path: Path) -> Iterator[tuple[NginxHost, HAProxyHost]]:
    """One machine running a weak nginx and a weak HAProxy."""
    with websocket_backend() as nginx_backend, echo_backend() as haproxy_backend:
        nginx = NginxHost("edge1", tmp_path / "nginx", "127.0.0.1", free_port(), nginx_backend)
        haproxy = HAProxyHost("edge1", tmp_path / "haproxy", free_port(), haproxy_backend)
        nginx.write_weak_config()
        haproxy.write()
        nginx.start()
        haproxy.start()
        try:
            yield nginx, haproxy
        finally:
            haproxy.stop()
            nginx.stop()


def test_a_host_running_nginx_and_haproxy_is_collected_by_one_playbook_run_for_one_plan(
    tmp_path: Path, edge: tuple[NginxHost, HAProxyHost], playbook_runs: Path, cli: Cli
) -> None:
    nginx, haproxy = edge
    # One inventory line: the variables of both on the one host.
    inventory = tmp_path / "hosts.ini"
    haproxy_vars = haproxy.inventory_line().removeprefix("edge1 ")
    inventory.write_text(f"{nginx.inventory_line()} {haproxy_vars}\n", encoding="utf-8")
    policy = tmp_path / "remediate.yaml"
    policy.write_text(POLICY.format(inventory=inventory), encoding="utf-8")

    planned = cli("plan", "-p", str(policy), "--detailed-exitcode")

    assert planned.code == 2, planned.stdout + planned.stderr
    assert f"  ~ edge1:{nginx.site}\n" in planned.stdout
    assert f"  ~ edge1:{haproxy.conf}\n" in planned.stdout
    assert "+\ttimeout tunnel 1h" in planned.stdout
    assert playbook_runs.read_text(encoding="utf-8").splitlines() == ["collect-all.yml"]

    # Narrowed to one provider, only its own playbook runs (still once).
    playbook_runs.write_text("", encoding="utf-8")
    only = cli("plan", "-p", str(policy), "--only", "haproxy")
    assert only.code == 0, only.stdout + only.stderr
    assert f"edge1:{nginx.site}" not in only.stdout
    assert f"  ~ edge1:{haproxy.conf}\n" in only.stdout
    assert playbook_runs.read_text(encoding="utf-8").splitlines() == ["collect.yml"]


def test_a_host_one_collect_play_fails_on_is_still_read_by_the_next(
    tmp_path: Path, edge: tuple[NginxHost, HAProxyHost], playbook_runs: Path
) -> None:
    nginx, haproxy = edge
    only_haproxy = HAProxyHost("lb2", tmp_path / "lb2", free_port(), haproxy.backend)
    only_haproxy.write()
    inventory = tmp_path / "hosts.ini"
    haproxy_vars = haproxy.inventory_line().removeprefix("edge1 ")
    # lb2 has no nginx: Ansible marks it failed in the Nginx play, and the HAProxy play must
    # still visit it, as a run of its own would.
    missing = "nginx_binary=/nonexistent/nginx"
    inventory.write_text(
        f"{nginx.inventory_line()} {haproxy_vars}\n{only_haproxy.inventory_line()} {missing}\n",
        encoding="utf-8",
    )
    policy = write_policy(tmp_path, inventory)

    with discovery(["nginx", "haproxy"]):
        # Nginx asks first, so its play runs first.
        nginx_part = collection(nginx_collector(policy, inventory), policy, Silent())
        haproxy_part = collection(haproxy_collector(inventory), policy, Silent())

    assert playbook_runs.read_text(encoding="utf-8").splitlines() == ["collect-all.yml"]
    assert set(nginx_part.failures) == {"lb2"}
    assert haproxy_part.failures == {}
    read = {host.host: host for host in haproxy_read(haproxy_part, inventory, Silent()).hosts}
    assert sorted(read) == ["edge1", "lb2"]
    assert read["lb2"].files[str(only_haproxy.conf)] == only_haproxy.conf.read_text()
    # Nginx's part of the shared run was read and parsed as edge1's result arrived.
    prepared = nginx_part.early[("edge1", COLLECT_TASK)]
    assert isinstance(prepared, Prepared)
    assert prepared.host.files[str(nginx.site)] == nginx.site.read_text()
    assert prepared.config.tls_servers()
    # ... and reviewed under the policy discovery ran with.
    assert prepared.reviewed is not None
    assert prepared.reviewed[0] is policy
    assert f"edge1:{nginx.site}" in [c.resource for c in prepared.reviewed[1].changes]
    assert ("lb2", COLLECT_TASK) not in nginx_part.early


def test_the_verdict_reached_as_a_host_arrived_is_the_plan_only_under_its_own_policy(
    tmp_path: Path, edge: tuple[NginxHost, HAProxyHost]
) -> None:
    nginx, _ = edge
    inventory = tmp_path / "hosts.ini"
    inventory.write_text(nginx.inventory_line() + "\n", encoding="utf-8")
    policy = write_policy(tmp_path, inventory)
    stricter = policy.model_copy(update={"tls": policy.tls.model_copy(update={"minimum": "1.3"})})
    today = date(2026, 12, 2)
    with discovery(["nginx"]):
        found = nginx_discover(policy, Silent())
    assert list(found.facts[REVIEWED]) == ["edge1"]
    unreviewed = replace(found, facts={k: v for k, v in found.facts.items() if k != REVIEWED})

    for under in (policy, stricter):
        reached, fresh = (planner.plan(inv, under, today) for inv in (found, unreviewed))
        assert (reached.changes, reached.findings) == (fresh.changes, fresh.findings)
    # The two policies plan different texts: the stricter one was not served the early verdict.
    weaker, strict = (planner.plan(found, p, today).changes[0].after for p in (policy, stricter))
    assert "ssl_protocols TLSv1.2 TLSv1.3;" in str(weaker)
    assert "ssl_protocols TLSv1.3;" in str(strict)
