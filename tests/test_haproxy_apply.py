"""HAProxy hosts end to end: a real `haproxy` (master-worker, on loopback, real certificates) in
front of a real WebSocket echo backend, discovered and changed through Ansible by the `remediate`
command as a user runs it.

Each test starts fresh weak hosts (TLS 1.0 accepted through `ssl-min-ver TLSv1.0` and
`@SECLEVEL=0`, no ALPN, a WebSocket backend without `timeout tunnel` behind a 2 s client timeout)
and checks what a user would: the bytes of the files, the master pid (reloaded, not restarted), and
what a TLS, ALPN or WebSocket client gets from the live server.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from websockets.exceptions import ConnectionClosed

from remediate import engine, verification
from remediate import policy as policy_module
from remediate.executors import Outcome, Status
from remediate.journal import Journal
from remediate.model import Plan
from remediate.providers.haproxy.rules import MODERN_CIPHERS
from remediate.sandbox.certs import self_signed
from remediate.sandbox.nginx import echo_backend, free_port
from remediate.verify import Target, alpn_selected, connect, tls_accepted, websocket
from tests.conftest import Cli
from tests.nginx_env import SshNamespace, ssh_namespace
from tests.test_nginx_apply import _can_use_netns

HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"
# HAProxy 2.8+ from Debian 13, unpacked by scripts/fetch-newer-haproxy (`make test` runs it).
NEWER_HAPROXY = Path(__file__).resolve().parents[1] / "build" / "haproxy-trixie" / "haproxy"
CLIENT_TIMEOUT = 2
IDLE = CLIENT_TIMEOUT + 1.5

pytestmark = pytest.mark.skipif(
    not Path(HAPROXY).exists(),
    reason="needs the haproxy binary (Debian package haproxy; `make test` installs it)",
)

WEAK = """\
# A TLS edge in front of a WebSocket service.
global
\tpidfile {root}/haproxy.pid
\tssl-default-bind-options ssl-min-ver TLSv1.0
\tssl-default-bind-ciphers DEFAULT:@SECLEVEL=0

defaults
\tmode http
\ttimeout connect 5s
\ttimeout http-request 10s
\ttimeout client {client}s   # keep idle clients short
\ttimeout server {client}s

frontend web
\tbind {address}:{port} ssl crt {root}/site.pem
\tdefault_backend live

backend live
\tserver echo {backend_address}:{backend}
"""

POLICY = """\
version: 1
tls:
  minimum: "1.2"
http2: true
haproxy:
  inventory: {inventory}
  websocket_backends: ["live"]
"""


def wait_until(check: Callable[[], object], timeout: float = 15.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


@dataclass
class HAProxyHost:
    """One HAProxy host: its files under `root`, run in master-worker mode, reloaded by SIGUSR2."""

    name: str
    root: Path
    port: int
    backend: int
    binary: str = HAPROXY
    extra_vars: dict[str, str] = field(default_factory=dict)
    foreground: subprocess.Popen[bytes] | None = None
    paths: list[Path] = field(default_factory=list)
    address: str = "127.0.0.1"
    backend_address: str = "127.0.0.1"
    netns: str | None = None
    """The network namespace HAProxy runs in, reached over SSH (`extra_vars`), when not local."""
    """The files and directories HAProxy loads, in order (default: `conf` alone)."""

    @property
    def conf(self) -> Path:
        return self.root / "haproxy.cfg"

    def loads(self) -> list[str]:
        return [arg for path in self.paths or [self.conf] for arg in ("-f", str(path))]

    @property
    def backups(self) -> Path:
        return self.root / "backups"

    def write(self, text: str | None = None) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.backups.mkdir(exist_ok=True)
        cert, key = self_signed(self.root, "site", "site.test")
        (self.root / "site.pem").write_bytes(cert.read_bytes() + key.read_bytes())
        template = WEAK if text is None else text
        body = self.render(template)
        self.conf.write_text(body, encoding="utf-8")
        self.conf.chmod(0o640)

    def render(self, template: str) -> str:
        return template.format(
            root=self.root,
            address=self.address,
            port=self.port,
            backend_address=self.backend_address,
            backend=self.backend,
            client=CLIENT_TIMEOUT,
        )

    def start(self) -> None:
        inside = ["ip", "netns", "exec", self.netns] if self.netns else []
        if self.binary != HAPROXY:
            # The unpacked newer release runs through its own loader, which the master-worker
            # re-exec does not keep: it runs in the foreground, for plans (no reload) only.
            self.foreground = subprocess.Popen(
                [self.binary, *self.loads()],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            wait_until(lambda: tls_accepted(self.target, "1.2") is not None, what="haproxy")
            return
        subprocess.run(
            [*inside, self.binary, "-W", "-D", "-p", str(self.root / "haproxy.pid"), *self.loads()],
            check=True,
            capture_output=True,
        )
        wait_until(lambda: tls_accepted(self.target, "1.2") is not None, what="haproxy to listen")

    def master_pid(self) -> int:
        return int((self.root / "haproxy.pid").read_text().split()[0])

    def stop(self) -> None:
        if self.foreground is not None:
            self.foreground.terminate()
            self.foreground.wait(timeout=10)
            return
        try:
            pid = self.master_pid()
            os.kill(pid, signal.SIGTERM)
        except (OSError, ValueError):
            return
        wait_until(lambda: not Path(f"/proc/{pid}").exists(), what="haproxy to stop")

    @property
    def target(self) -> Target:
        return Target(self.address, self.port, server_name="site.test")

    def inventory_line(self) -> str:
        variables = {
            "haproxy_binary": self.binary,
            "haproxy_config_paths": repr(json.dumps([str(p) for p in self.paths or [self.conf]])),
            "haproxy_backup_dir": str(self.backups),
            # The master re-reads its files on SIGUSR2; its workers finish their connections.
            "haproxy_reload_command": (
                f'\'["sh", "-c", "kill -USR2 $(cat {self.root}/haproxy.pid)"]\''
            ),
            **(
                {}
                if self.netns
                else {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}
            ),
            **self.extra_vars,
        }
        return f"{self.name} " + " ".join(f"{key}={value}" for key, value in variables.items())


HostFactory = Callable[..., HAProxyHost]


@pytest.fixture(scope="module")
def backend() -> Iterator[int]:
    with echo_backend() as port:
        yield port


@pytest.fixture
def hosts(tmp_path: Path, backend: int) -> Iterator[HostFactory]:
    started: list[HAProxyHost] = []

    def start(name: str, text: str | None = None, binary: str = HAPROXY) -> HAProxyHost:
        host = HAProxyHost(name, tmp_path / name, free_port(), backend, binary=binary)
        host.write(text)
        if text is None:
            host.start()
        started.append(host)
        return host

    yield start
    for host in started:
        host.stop()


def write_setup(tmp_path: Path, *hosts: HAProxyHost) -> Path:
    inventory = tmp_path / "hosts.ini"
    inventory.write_text(
        "[lb]\n" + "".join(host.inventory_line() + "\n" for host in hosts), encoding="utf-8"
    )
    policy = tmp_path / "remediate.yaml"
    policy.write_text(POLICY.format(inventory=inventory), encoding="utf-8")
    return policy


def websocket_survives_idle(host: HAProxyHost, idle: float = IDLE) -> bool:
    """A WebSocket through the frontend, idle for longer than the client timeout, then used."""
    with websocket(host.target, "/", connect(host.target), timeout=5) as connection:
        connection.send_text("before")
        assert connection.receive(timeout=5).data == b"before"
        time.sleep(idle)
        try:
            connection.send_text("after")
            return connection.receive(timeout=5).data == b"after"
        except (ConnectionClosed, OSError):
            return False


def assert_weak(host: HAProxyHost) -> None:
    probe = host.target
    assert tls_accepted(probe, "1.0") is True
    assert alpn_selected(probe) in (None, "http/1.1")
    assert websocket_survives_idle(host) is False


def assert_fixed(host: HAProxyHost) -> None:
    probe = host.target
    wait_until(lambda: tls_accepted(probe, "1.0") is False, what="TLS 1.0 to be refused")
    assert tls_accepted(probe, "1.1") is False
    assert tls_accepted(probe, "1.2") is True
    assert alpn_selected(probe) == "h2"
    assert websocket_survives_idle(host) is True


def test_weak_host_is_planned_applied_verified_live_and_clean_on_the_second_plan(
    tmp_path: Path, hosts: HostFactory, cli: Cli
) -> None:
    lb = hosts("lb1")
    policy = write_setup(tmp_path, lb)
    before = lb.conf.read_bytes()
    pid = lb.master_pid()
    assert_weak(lb)

    saved = tmp_path / "plan.json"
    planned = cli("plan", "-p", str(policy), "--detailed-exitcode", "--out", str(saved))
    assert planned.code == 2, planned.stdout + planned.stderr
    assert "-\tssl-default-bind-options ssl-min-ver TLSv1.0" in planned.stdout
    assert "+\tssl-default-bind-options ssl-min-ver TLSv1.2" in planned.stdout
    assert f"+\tbind 127.0.0.1:{lb.port} ssl crt {lb.root}/site.pem alpn h2,http/1.1" in (
        planned.stdout
    )
    assert "+\ttimeout tunnel 1h" in planned.stdout
    assert lb.conf.read_bytes() == before

    applied = cli("apply", str(saved), "-p", str(policy), "--auto-approve")
    assert applied.code == 0, applied.stdout + applied.stderr
    assert f"haproxy lb1:{lb.conf} written (read back)" in applied.stdout
    after = lb.conf.read_text(encoding="utf-8")
    expected = (
        before.decode()
        .replace("ssl-min-ver TLSv1.0", "ssl-min-ver TLSv1.2")
        .replace("DEFAULT:@SECLEVEL=0", MODERN_CIPHERS)
        .replace("site.pem\n\tdefault_backend", "site.pem alpn h2,http/1.1\n\tdefault_backend")
        .replace("\nbackend live\n", "\nbackend live\n\ttimeout tunnel 1h\n")
    )
    assert after.splitlines() == expected.splitlines()
    assert "@SECLEVEL" not in after and "ECDHE-ECDSA-AES128-GCM-SHA256" in after
    assert oct(lb.conf.stat().st_mode & 0o777) == "0o640"
    assert [p.read_bytes() for p in lb.backups.rglob("haproxy.cfg")] == [before]
    assert lb.master_pid() == pid, "haproxy was restarted instead of reloaded"
    assert "Verification:" in applied.stdout and "FAILED" not in applied.stdout
    assert f"WebSocket / stays open idle: ok (open after {CLIENT_TIMEOUT + 1:g} s idle)" in (
        applied.stdout
    )
    assert_fixed(lb)

    again = cli("plan", "-p", str(policy), "--detailed-exitcode")
    assert again.code == 0, again.stdout + again.stderr
    assert "No changes" in again.stdout

    run_id = applied.stdout.split("(run ")[1].split(")")[0]
    back = cli("rollback", run_id, "-p", str(policy), "--auto-approve")
    assert back.code == 0, back.stdout + back.stderr
    assert lb.conf.read_bytes() == before
    wait_until(lambda: tls_accepted(lb.target, "1.0") is True, what="TLS 1.0 accepted again")


def idle_checks(results: list[verification.Verification]) -> list[verification.Check]:
    return [c for r in results for c in r.checks if c.name == "WebSocket / stays open idle"]


def test_verification_keeps_a_websocket_idle_past_the_client_timeout_cut_before_open_after(
    tmp_path: Path, hosts: HostFactory
) -> None:
    lb = hosts("lb1")
    policy = policy_module.load(write_setup(tmp_path, lb))
    planned = engine.plan(policy, record=False)
    (expectation,) = verification.expectations(planned.changes, policy)
    assert expectation.ws_paths == ("/",)
    assert expectation.ws_idle == CLIENT_TIMEOUT + 1

    # The same verification, run against the host as it still is (the changes not yet applied):
    # the handshake works, the idle WebSocket is cut by the 2 s client timeout.
    before = verification.verify_outcomes(
        [Outcome(change, Status.APPLIED) for change in planned.changes], policy, settle=0
    )
    (cut,) = idle_checks(before)
    assert cut.ok is False
    assert cut.detail.startswith(f"closed after {CLIENT_TIMEOUT}."), cut.detail
    assert [c.ok for r in before for c in r.checks if c.name == "WebSocket /"] == [True]

    result = engine.apply(planned, policy, journal=Journal(tmp_path / "state"))
    assert result.status is engine.RunStatus.APPLIED, result
    (kept,) = idle_checks(result.checks or [])
    assert (kept.ok, kept.detail) == (True, f"open after {CLIENT_TIMEOUT + 1:g} s idle")
    assert [r.status for r in result.checks or []] == [verification.VERIFIED]
    assert websocket_survives_idle(lb) is True


def test_failed_validation_restores_every_file_and_keeps_serving(
    tmp_path: Path, hosts: HostFactory, cli: Cli
) -> None:
    lb = hosts("lb1")
    policy = write_setup(tmp_path, lb)
    saved = tmp_path / "plan.json"
    assert cli("plan", "-p", str(policy), "--out", str(saved)).code == 0
    # Only `haproxy -c` on the host can catch a certificate that does not exist there. A saved
    # plan edited like this is refused by `apply PLAN`, so the executor's own restore path is
    # driven through the library, as an in-memory plan.
    document = json.loads(saved.read_text(encoding="utf-8"))
    for change in document["changes"]:
        change["after"] = change["after"].replace("/site.pem", "/missing.pem")
    planted = Plan.model_validate({k: v for k, v in document.items() if k != "summary"})
    before = lb.conf.read_bytes()
    pid = lb.master_pid()

    result = engine.apply(
        planted, policy_module.load(policy), journal=Journal(tmp_path / "state"), verify=False
    )

    assert result.status is engine.RunStatus.FAILED
    messages = " ".join(outcome.message for outcome in result.outcomes)
    assert "Validate the whole configuration with haproxy -c failed" in messages
    assert "missing.pem" in messages
    assert "every file was restored" in messages
    assert lb.conf.read_bytes() == before
    assert lb.master_pid() == pid
    assert_weak(lb)


def test_a_config_haproxy_rejects_is_one_line_and_the_other_hosts_go_on(
    tmp_path: Path, hosts: HostFactory, cli: Cli
) -> None:
    good = hosts("lb1")
    bad = hosts("lb2", text="global\n\tmaxconn 10\n\tfrobnicate yes\n")
    policy = write_setup(tmp_path, good, bad)
    result = cli("plan", "-p", str(policy), "--detailed-exitcode")
    assert result.code == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert f"  ~ lb1:{good.conf}\n" in result.stdout
    assert f"lb2:{bad.conf}\n" not in result.stdout
    # One line: the host, the file and line, and HAProxy's own message.
    assert (
        f"      lb2: {bad.conf}:3: unknown keyword 'frobnicate' in 'global' section\n"
        in result.stdout
    )
    assert "Plan: 1 change to 1 resource, 1 finding" in result.stdout


@pytest.mark.skipif(not NEWER_HAPROXY.exists(), reason="needs scripts/fetch-newer-haproxy")
def test_from_2_8_a_bind_without_alpn_already_offers_h2(
    tmp_path: Path, hosts: HostFactory, cli: Cli
) -> None:
    lb = hosts("lb1", binary=str(NEWER_HAPROXY))
    assert alpn_selected(lb.target) == "h2"
    policy = write_setup(tmp_path, lb)
    planned = cli("plan", "-p", str(policy))
    assert planned.code == 0, planned.stdout + planned.stderr
    assert "alpn h2,http/1.1" not in planned.stdout
    assert "ssl-min-ver TLSv1.2" in planned.stdout


def test_a_directory_loads_its_cfg_files_in_order_and_only_the_file_with_the_bind_changes(
    tmp_path: Path, hosts: HostFactory, cli: Cli
) -> None:
    lb = hosts("lb1", text="")
    main_text, site_text = lb.render(WEAK).split("frontend web\n")
    lb.conf.write_text(main_text, encoding="utf-8")
    confd = lb.root / "conf.d"
    confd.mkdir()
    site = confd / "20-site.cfg"
    site.write_text("frontend web\n" + site_text, encoding="utf-8")
    (confd / "README").write_text("not loaded: only *.cfg files are\n", encoding="utf-8")
    lb.paths = [lb.conf, confd]
    lb.start()
    policy = write_setup(tmp_path, lb)
    saved = tmp_path / "plan.json"
    planned = cli("plan", "-p", str(policy), "--detailed-exitcode", "--out", str(saved))
    assert planned.code == 2, planned.stdout + planned.stderr
    assert f"  ~ lb1:{lb.conf}\n" in planned.stdout
    assert f"  ~ lb1:{site}\n" in planned.stdout
    assert "README" not in planned.stdout
    applied = cli("apply", str(saved), "-p", str(policy), "--auto-approve")
    assert applied.code == 0, applied.stdout + applied.stderr
    assert "alpn h2,http/1.1" in site.read_text(encoding="utf-8")
    assert "ssl-min-ver TLSv1.2" in lb.conf.read_text(encoding="utf-8")
    assert_fixed(lb)


@pytest.fixture(scope="module")
def ssh_ns(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SshNamespace]:
    """sshd in a network namespace, for this module only (the Nginx tests start their own)."""
    if not _can_use_netns():
        pytest.skip("needs root, sshd and `ip netns` to run an SSH host in a network namespace")
    with ssh_namespace(tmp_path_factory.mktemp("sshd")) as namespace:
        yield namespace


def test_an_ssh_host_is_planned_and_applied_like_a_local_one(
    tmp_path: Path, ssh_ns: SshNamespace, cli: Cli
) -> None:
    with echo_backend(ssh_ns.host_address) as backend:
        lb = HAProxyHost(
            "lb-ssh",
            tmp_path / "lb-ssh",
            8443,
            backend,
            address=ssh_ns.address,
            backend_address=ssh_ns.host_address,
            netns=ssh_ns.netns,
            extra_vars=dict(ssh_ns.ssh_vars),
        )
        lb.write()
        lb.start()
        try:
            policy = write_setup(tmp_path, lb)
            assert_weak(lb)
            saved = tmp_path / "plan.json"
            planned = cli("plan", "-p", str(policy), "--out", str(saved))
            assert planned.code == 0, planned.stdout + planned.stderr
            assert f"  ~ lb-ssh:{lb.conf}\n" in planned.stdout
            applied = cli("apply", str(saved), "-p", str(policy), "--auto-approve")
            assert applied.code == 0, applied.stdout + applied.stderr
            assert_fixed(lb)
        finally:
            lb.stop()
