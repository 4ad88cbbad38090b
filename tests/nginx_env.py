"""Real Nginx hosts for the tests: the nginx binary with a private prefix and real certificates,
a real WebSocket echo backend, and a host reached over SSH (sshd in a network namespace).

Nothing here touches /etc/nginx or a system service: every nginx runs as `nginx -p DIR -c
DIR/nginx.conf` with its pid, logs and temp paths inside DIR, and is stopped by its own pid.
"""

from __future__ import annotations

import itertools
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from remediate.sandbox.certs import self_signed
from remediate.sandbox.nginx import echo_backend, private_conf

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
SSHD = shutil.which("sshd") or "/usr/sbin/sshd"
PYTHON = "/usr/bin/python3"

MAIN_HTTP = """
    # Old clients still connect with TLS 1.0
    ssl_protocols TLSv1 TLSv1.1 TLSv1.2;
    ssl_ciphers DEFAULT:@SECLEVEL=0;

    include conf.d/*.conf;
"""

SITE_CONF = """\
upstream realtime {{
    server {backend};
}}

server {{
    listen {address}:{port} ssl;
    server_name site.test;

    ssl_certificate certs/site.crt;
    ssl_certificate_key certs/site.key;

    location / {{
        return 200 "hello from {name}\\n";
    }}

    # live updates
    location /ws/ {{
        proxy_pass http://realtime;
    }}
}}
"""


def wait_until(check: Callable[[], object], timeout: float = 15.0, what: str = "") -> None:
    """Poll `check` until it returns something truthy (a reload takes effect asynchronously)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise TimeoutError(f"timed out waiting for {what or check}")


@contextmanager
def websocket_backend(address: str = "127.0.0.1") -> Iterator[str]:
    """The sandbox's WebSocket echo backend on `address`; yields `address:port`."""
    with echo_backend(address) as port:
        yield f"{address}:{port}"


@dataclass
class FileState:
    data: bytes
    mode: int
    uid: int
    gid: int


@dataclass
class NginxHost:
    """One nginx with its own prefix, reachable at `address:port` (inside `netns` when set)."""

    name: str
    root: Path
    address: str
    port: int
    backend: str
    binary: str = NGINX
    netns: str | None = None
    extra_vars: dict[str, str] = field(default_factory=dict)

    @property
    def conf(self) -> Path:
        return self.root / "nginx.conf"

    @property
    def site(self) -> Path:
        return self.root / "conf.d" / "site.conf"

    @property
    def backups(self) -> Path:
        """Where apply keeps this host's backups: outside the tree, as in production."""
        return self.root.parent / f"{self.name}-backups"

    def write_weak_config(self) -> None:
        """TLS 1.0 accepted, no HTTP/2, a WebSocket location without the upgrade headers."""
        for sub in ("conf.d", "logs", "tmp"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        self.backups.mkdir(exist_ok=True)
        self_signed(self.root / "certs", "site", "site.test", address=self.address, key_type="rsa")
        header = f"# Test host {self.name}: a private prefix, nothing outside it."
        self.conf.write_text(private_conf(header, MAIN_HTTP), encoding="utf-8")
        self.site.write_text(
            SITE_CONF.format(
                name=self.name, address=self.address, port=self.port, backend=self.backend
            ),
            encoding="utf-8",
        )
        self.site.chmod(0o640)

    def command(self, *args: str) -> list[str]:
        base = [self.binary, "-p", str(self.root), "-c", str(self.conf), *args]
        return ["ip", "netns", "exec", self.netns, *base] if self.netns else base

    def start(self) -> None:
        subprocess.run(self.command(), check=True, capture_output=True, timeout=30)
        wait_until(self._listening, what=f"nginx {self.name} on {self.address}:{self.port}")

    def _listening(self) -> bool:
        return _port_open(self.address, self.port)

    def master_pid(self) -> int:
        return int((self.root / "logs" / "nginx.pid").read_text().strip())

    def running(self) -> bool:
        try:
            os.kill(self.master_pid(), 0)
        except (OSError, ValueError):
            return False
        return True

    def stop(self) -> None:
        if not self.running():
            return
        pid = self.master_pid()
        os.kill(pid, signal.SIGTERM)
        wait_until(lambda: not _alive(pid), what=f"nginx {self.name} to stop")

    def inventory_line(self) -> str:
        variables = {
            "nginx_binary": self.binary,
            "nginx_prefix": str(self.root),
            "nginx_conf_path": str(self.conf),
            "nginx_backup_dir": str(self.backups),
            **self.extra_vars,
        }
        if self.netns is None:
            variables |= {
                "ansible_connection": "local",
                "ansible_python_interpreter": PYTHON,
            }
        text = " ".join(f"{key}={value}" for key, value in variables.items())
        return f"{self.name} {text}"

    def files(self) -> dict[str, FileState]:
        """Bytes, mode and owner of every config file (certificates and logs excluded)."""
        states = {}
        for path in sorted(self.root.rglob("*.conf")):
            stat = path.stat()
            states[str(path)] = FileState(path.read_bytes(), stat.st_mode, stat.st_uid, stat.st_gid)
        return states


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    # A zombie child of ours counts as gone.
    try:
        status = Path(f"/proc/{pid}/stat").read_text().split()[2]
    except OSError:
        return False
    return status != "Z"


@dataclass
class SshNamespace:
    """sshd in a network namespace with its own address, root login with a generated key."""

    netns: str
    host_address: str
    address: str
    ssh_vars: dict[str, str]


_NAMESPACES = itertools.count()


@contextmanager
def ssh_namespace(workdir: Path) -> Iterator[SshNamespace]:
    """A network namespace joined to this one by a veth pair, with sshd listening inside it."""
    # Unique per call: two modules' namespaces may be alive at once in one test process.
    serial = next(_NAMESPACES)
    # pytest-xdist workers (gw0, gw1, ...) take disjoint halves of the 250 subnets.
    worker = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw") or 0)
    subnet = 1 + (worker * 125 + serial) % 250
    netns = f"remediate-ngx-{os.getpid()}-{serial}"
    outside, inside = f"rmngx{subnet}a", f"rmngx{subnet}b"
    host_address, address = f"10.201.{subnet}.1", f"10.201.{subnet}.2"
    workdir.mkdir(parents=True, exist_ok=True)
    host_key, client_key = workdir / "host_key", workdir / "client_key"
    for path in (host_key, client_key):
        key = ed25519.Ed25519PrivateKey.generate()
        path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.OpenSSH,
                serialization.NoEncryption(),
            )
        )
        path.chmod(0o600)
        public = key.public_key().public_bytes(
            serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
        )
        path.with_suffix(".pub").write_bytes(public + b"\n")
    (workdir / "authorized_keys").write_bytes(client_key.with_suffix(".pub").read_bytes())
    config = workdir / "sshd_config"
    config.write_text(
        f"ListenAddress {address}\n"
        "Port 22\n"
        f"HostKey {host_key}\n"
        f"PidFile {workdir / 'sshd.pid'}\n"
        f"AuthorizedKeysFile {workdir / 'authorized_keys'}\n"
        "PermitRootLogin prohibit-password\n"
        "PasswordAuthentication no\n"
        "KbdInteractiveAuthentication no\n"
        "UsePAM no\n"
        "StrictModes no\n"
        "Subsystem sftp internal-sftp\n",
        encoding="utf-8",
    )
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)

    def ip(*args: str) -> None:
        subprocess.run(["ip", *args], check=True, capture_output=True, timeout=30)

    ip("netns", "add", netns)
    sshd: subprocess.Popen[bytes] | None = None
    try:
        ip("link", "add", outside, "type", "veth", "peer", "name", inside)
        ip("link", "set", inside, "netns", netns)
        ip("addr", "add", f"{host_address}/24", "dev", outside)
        ip("link", "set", outside, "up")
        ip("-n", netns, "addr", "add", f"{address}/24", "dev", inside)
        ip("-n", netns, "link", "set", inside, "up")
        ip("-n", netns, "link", "set", "lo", "up")
        sshd = subprocess.Popen(
            ["ip", "netns", "exec", netns, SSHD, "-D", "-e", "-f", str(config)],
            stdout=subprocess.DEVNULL,
            stderr=(workdir / "sshd.log").open("wb"),
        )
        wait_until(lambda: _port_open(address, 22), what=f"sshd on {address}")
        yield SshNamespace(
            netns=netns,
            host_address=host_address,
            address=address,
            ssh_vars={
                "ansible_host": address,
                "ansible_user": "root",
                "ansible_ssh_private_key_file": str(client_key),
                # Replaces Ansible's default ssh_args: no ControlPersist master outliving the test.
                "ansible_ssh_args": "'-o ControlMaster=no -o StrictHostKeyChecking=no"
                " -o UserKnownHostsFile=/dev/null'",
                "ansible_pipelining": "true",
                "ansible_python_interpreter": PYTHON,
            },
        )
    finally:
        if sshd is not None:
            sshd.terminate()
            sshd.wait(10)
        # Anything still inside the namespace (a session sshd, an nginx) was started by the tests.
        listed = subprocess.run(
            ["ip", "netns", "pids", netns], check=False, capture_output=True, text=True, timeout=30
        )
        for pid in listed.stdout.split():
            os.kill(int(pid), signal.SIGTERM)
        subprocess.run(["ip", "link", "del", outside], check=False, capture_output=True, timeout=30)
        subprocess.run(["ip", "netns", "del", netns], check=False, capture_output=True, timeout=30)


def _port_open(address: str, port: int) -> bool:
    try:
        with socket.create_connection((address, port), timeout=0.5):
            return True
    except OSError:
        return False
