"""Nginx hosts end to end: real nginx on loopback and over SSH, changed through Ansible.

Each test starts fresh weak hosts (TLS 1.0 accepted, no HTTP/2, a WebSocket location without
the upgrade headers behind a real WebSocket backend), runs the `remediate` command as a user
would, and checks what a user would: the bytes, owner and mode of each file, the nginx master
pid, and what a TLS, ALPN or WebSocket client gets from the live server.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from remediate import engine
from remediate import policy as policy_module
from remediate.executors import Status, get
from remediate.journal import Journal
from remediate.model import Plan
from remediate.progress import Silent
from remediate.sandbox.nginx import free_port
from remediate.verify import Target, alpn_selected, tls_accepted, websocket_ok
from tests.conftest import Cli
from tests.nginx_env import (
    NGINX,
    SSHD,
    NginxHost,
    SshNamespace,
    ssh_namespace,
    wait_until,
    websocket_backend,
)

pytestmark = pytest.mark.skipif(
    shutil.which("nginx") is None and not Path(NGINX).exists(),
    reason="needs the nginx binary (Debian package nginx; `make test` installs it)",
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
"""

HostFactory = Callable[..., NginxHost]
# nginx 1.25.1+ from Debian 13, unpacked by scripts/fetch-newer-nginx (`make test` runs it).
NEWER_NGINX = Path(__file__).resolve().parents[1] / "build" / "nginx-trixie" / "nginx"


def _can_use_netns() -> bool:
    if os.geteuid() != 0 or not Path(SSHD).exists():
        return False
    probe = f"remediate-probe-{os.getpid()}"
    created = subprocess.run(["ip", "netns", "add", probe], capture_output=True, check=False)
    subprocess.run(["ip", "netns", "del", probe], capture_output=True, check=False)
    return created.returncode == 0


@pytest.fixture(scope="session")
def backend() -> Iterator[str]:
    with websocket_backend() as address:
        yield address


@pytest.fixture(scope="session")
def ssh_ns(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SshNamespace]:
    if not _can_use_netns():
        pytest.skip("needs root, sshd and `ip netns` to run an SSH host in a network namespace")
    with ssh_namespace(tmp_path_factory.mktemp("sshd")) as namespace:
        yield namespace


@pytest.fixture(scope="session")
def ns_backend(ssh_ns: SshNamespace) -> Iterator[str]:
    with websocket_backend(ssh_ns.host_address) as address:
        yield address


@pytest.fixture
def hosts(tmp_path: Path, backend: str) -> Iterator[HostFactory]:
    """Start weak nginx hosts on loopback (or in `ns`); all are stopped at teardown."""
    started: list[NginxHost] = []

    def start(
        name: str,
        ns: SshNamespace | None = None,
        ns_backend: str = "",
        binary: str = NGINX,
        **extra_vars: str,
    ) -> NginxHost:
        if ns is None:
            host = NginxHost(name, tmp_path / name, "127.0.0.1", free_port(), backend, binary)
        else:
            host = NginxHost(
                name,
                tmp_path / name,
                ns.address,
                8443 + len(started),
                ns_backend,
                netns=ns.netns,
                extra_vars=dict(ns.ssh_vars),
            )
        host.extra_vars.update(extra_vars)
        host.write_weak_config()
        host.start()
        started.append(host)
        return host

    yield start
    for host in started:
        host.stop()


def write_setup(tmp_path: Path, *hosts: NginxHost) -> Path:
    inventory = tmp_path / "hosts.ini"
    inventory.write_text(
        "[web]\n" + "".join(host.inventory_line() + "\n" for host in hosts), encoding="utf-8"
    )
    policy = tmp_path / "remediate.yaml"
    policy.write_text(POLICY.format(inventory=inventory), encoding="utf-8")
    return policy


def target(host: NginxHost) -> Target:
    return Target(host.address, host.port, server_name="site.test")


def assert_weak(host: NginxHost) -> None:
    """The live server is still the old, weak configuration."""
    probe = target(host)
    assert tls_accepted(probe, "1.0") is True
    assert alpn_selected(probe) == "http/1.1"
    assert websocket_ok(probe, "/ws/")[0] is False


def assert_fixed(host: NginxHost) -> None:
    """The live server now refuses old TLS, speaks h2 and carries WebSockets."""
    probe = target(host)
    wait_until(lambda: tls_accepted(probe, "1.0") is False, what="TLS 1.0 to be refused")
    assert tls_accepted(probe, "1.1") is False
    assert tls_accepted(probe, "1.2") is True
    assert alpn_selected(probe) == "h2"
    assert websocket_ok(probe, "/ws/") == (True, 101)


def test_plan_shows_diffs_and_apply_fixes_the_live_server(
    tmp_path: Path, hosts: HostFactory, cli: Cli
) -> None:
    web = hosts("web1")
    policy = write_setup(tmp_path, web)
    before = web.files()
    pid = web.master_pid()
    assert_weak(web)

    saved = tmp_path / "plan.json"
    planned = cli("plan", "-p", str(policy), "--detailed-exitcode", "--out", str(saved))
    assert planned.code == 2, planned.stderr
    assert f"+    listen 127.0.0.1:{web.port} ssl http2;" in planned.stdout
    assert "-    ssl_protocols TLSv1 TLSv1.1 TLSv1.2;" in planned.stdout
    assert "+        proxy_set_header Upgrade $http_upgrade;" in planned.stdout
    assert f"--- a{web.site}" in planned.stdout
    assert web.files() == before

    dry = cli("apply", str(saved), "-p", str(policy), "--dry-run")
    assert dry.code == 0, dry.stdout + dry.stderr
    assert f"nginx web1:{web.site} would be written (dry run)" in dry.stdout
    assert web.files() == before
    assert not any(web.backups.iterdir())

    applied = cli("apply", str(saved), "-p", str(policy))
    assert applied.code == 0, applied.stdout + applied.stderr
    assert f"nginx web1:{web.site} written (read back)" in applied.stdout
    after = web.files()
    assert after.keys() == before.keys()
    for path, state in after.items():
        assert (state.mode, state.uid, state.gid) == (
            before[path].mode,
            before[path].uid,
            before[path].gid,
        ), path
        assert state.data != before[path].data, path
    assert oct(after[str(web.site)].mode & 0o777) == "0o640"
    assert b"ssl_protocols TLSv1.2 TLSv1.3;" in after[str(web.conf)].data
    # The untouched lines survive as they were, comments included.
    assert b"    # live updates\n" in after[str(web.site)].data
    backups = {p.name: p.read_bytes() for p in web.backups.rglob("*.conf")}
    assert backups == {
        "nginx.conf": before[str(web.conf)].data,
        "site.conf": before[str(web.site)].data,
    }
    assert web.master_pid() == pid, "nginx was restarted instead of reloaded"
    assert_fixed(web)

    again = cli("plan", "-p", str(policy), "--detailed-exitcode")
    assert again.code == 0, again.stdout + again.stderr
    assert "No changes" in again.stdout


def test_failed_validation_restores_every_file_and_keeps_serving(
    tmp_path: Path, hosts: HostFactory, cli: Cli
) -> None:
    web = hosts("web1")
    policy = write_setup(tmp_path, web)
    saved = tmp_path / "plan.json"
    assert cli("plan", "-p", str(policy), "--out", str(saved)).code == 0
    # Plant a reference that only `nginx -t` on the whole tree can catch: the edited site file
    # includes a file that does not exist.
    # A saved plan edited like this is refused by `apply PLAN` (see test_tampering.py), so the
    # executor's own restore path is driven through the library, as an in-memory plan.
    document = json.loads(saved.read_text(encoding="utf-8"))
    for change in document["changes"]:
        if change["target"]["path"] == str(web.site):
            change["after"] += "include /nonexistent/remediate-planted.conf;\n"
    planted = Plan.model_validate({k: v for k, v in document.items() if k != "summary"})
    before = web.files()
    pid = web.master_pid()

    result = engine.apply(
        planted,
        policy_module.load(policy),
        journal=Journal(tmp_path / "state"),
        verify=False,
    )

    assert result.status is engine.RunStatus.FAILED
    messages = " ".join(outcome.message for outcome in result.outcomes)
    assert "nginx -t failed" in messages
    assert '[emerg] open() "/nonexistent/remediate-planted.conf" failed' in messages
    assert "every file was restored" in messages
    assert web.files() == before
    assert web.master_pid() == pid
    assert_weak(web)


def test_moved_file_makes_the_saved_plan_stale(
    tmp_path: Path, hosts: HostFactory, cli: Cli
) -> None:
    web = hosts("web1")
    policy = write_setup(tmp_path, web)
    saved = tmp_path / "plan.json"
    assert cli("plan", "-p", str(policy), "--out", str(saved)).code == 0
    web.conf.write_text(web.conf.read_text() + "# edited by hand\n", encoding="utf-8")
    before = web.files()

    result = cli("apply", str(saved), "-p", str(policy), "--auto-approve")

    assert result.code == 1
    error = result.stderr.strip().splitlines()[-1]
    assert error.startswith("error: plan is stale"), result.stderr
    assert f"web1:{web.conf}" in error
    assert web.files() == before


def test_unparseable_file_is_a_clear_error_and_changes_nothing(
    tmp_path: Path, hosts: HostFactory, cli: Cli
) -> None:
    web = hosts("web1")
    policy = write_setup(tmp_path, web)
    web.site.write_text(web.site.read_text() + "server {\n    listen 9;\n", encoding="utf-8")
    before = web.files()

    result = cli("apply", "-p", str(policy), "--auto-approve")

    assert result.code == 1
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith("error: "), result.stderr
    assert "Traceback" not in result.stderr
    assert "web1" in lines[-1] and str(web.site) in lines[-1]
    assert web.files() == before
    assert_weak(web)


def test_ssh_host_plans_and_applies_like_a_local_one(
    tmp_path: Path,
    hosts: HostFactory,
    cli: Cli,
    ssh_ns: SshNamespace,
    ns_backend: str,
) -> None:
    remote = hosts("edge1", ns=ssh_ns, ns_backend=ns_backend)
    policy = write_setup(tmp_path, remote)
    assert "ansible_host=10.201." in (tmp_path / "hosts.ini").read_text()
    before = remote.files()
    pid = remote.master_pid()
    assert_weak(remote)

    saved = tmp_path / "plan.json"
    planned = cli("plan", "-p", str(policy), "--out", str(saved))
    assert planned.code == 0, planned.stderr
    assert f"+    listen {remote.address}:{remote.port} ssl http2;" in planned.stdout
    assert remote.files() == before

    applied = cli("apply", str(saved), "-p", str(policy))
    assert applied.code == 0, applied.stdout + applied.stderr
    after = remote.files()
    assert all(after[path].mode == before[path].mode for path in before)
    assert b"ssl_protocols TLSv1.2 TLSv1.3;" in after[str(remote.conf)].data
    assert remote.master_pid() == pid
    assert_fixed(remote)
    assert "No changes" in cli("plan", "-p", str(policy)).stdout


def test_one_failing_host_does_not_stop_the_other(
    tmp_path: Path, hosts: HostFactory, cli: Cli
) -> None:
    good = hosts("good1")
    # A reload that nginx refuses: the files are valid, the reload command is not.
    bad = hosts("bad1")
    bad.extra_vars["nginx_reload_command"] = (
        f"'{bad.binary} -p {bad.root} -c {bad.root}/missing.conf -s reload'"
    )
    policy = write_setup(tmp_path, good, bad)
    bad_before = bad.files()

    result = cli("apply", "-p", str(policy), "--auto-approve")

    assert result.code == 3, result.stdout + result.stderr
    failed = [line for line in result.stdout.splitlines() if line.startswith("  ✗")]
    assert failed and all("bad1:" in line for line in failed)
    assert "Reload nginx failed" in failed[0] and "missing.conf" in failed[0]
    assert bad.files() == bad_before
    assert_weak(bad)
    assert_fixed(good)


@pytest.mark.skipif(
    not NEWER_NGINX.exists(), reason="no nginx 1.25.1+: run scripts/fetch-newer-nginx"
)
def test_newer_nginx_gets_http2_on_instead_of_the_listen_parameter(
    tmp_path: Path, hosts: HostFactory, cli: Cli
) -> None:
    web = hosts("web126", binary=str(NEWER_NGINX))
    policy = write_setup(tmp_path, web)
    assert_weak(web)

    saved = tmp_path / "plan.json"
    planned = cli("plan", "-p", str(policy), "--out", str(saved))
    assert planned.code == 0, planned.stderr
    assert "nginx 1.26" in planned.stdout
    assert "+    http2 on;" in planned.stdout
    assert "-    listen" not in planned.stdout and "+    listen" not in planned.stdout

    applied = cli("apply", str(saved), "-p", str(policy))
    assert applied.code == 0, applied.stdout + applied.stderr
    assert f"    listen 127.0.0.1:{web.port} ssl;\n" in web.site.read_text()
    assert_fixed(web)
    assert "No changes" in cli("plan", "-p", str(policy)).stdout


def test_an_inventory_without_hosts_is_an_error(tmp_path: Path, cli: Cli) -> None:
    inventory = tmp_path / "hosts.ini"
    inventory.write_text("# nobody here yet\n", encoding="utf-8")
    policy = tmp_path / "remediate.yaml"
    policy.write_text(POLICY.format(inventory=inventory), encoding="utf-8")

    result = cli("plan", "-p", str(policy))

    assert result.code == 1
    assert result.stderr.strip().splitlines()[-1] == (
        f"error: {inventory}: no hosts found (is it an Ansible inventory?)"
    )


def test_a_file_edited_between_the_check_and_the_write_is_refused(
    tmp_path: Path, hosts: HostFactory
) -> None:
    """The playbook's own checksum guard, for an edit that lands after apply's stale check."""
    web = hosts("web1")
    policy = policy_module.load(write_setup(tmp_path, web))
    plan = engine.plan(policy)
    web.site.write_text(web.site.read_text() + "# edited by hand\n", encoding="utf-8")
    before = web.files()

    outcomes = get("ansible", policy, Silent()).apply(plan.changes)

    assert [outcome.status for outcome in outcomes] == [Status.FAILED] * len(plan.changes)
    assert f"{web.site} changed since it was planned; nothing was written" in outcomes[0].message
    assert web.files() == before
    assert not any(web.backups.iterdir())
