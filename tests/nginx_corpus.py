"""The corpus of real Nginx configurations in tests/corpus/nginx/, laid out as on their hosts.

Each case is a directory: `root/` holds the host's files relative to `/` (with `@ROOT@`, the
private root the test gives it, in place of absolute paths, `@PORTn@` for loopback test ports and
`@BACKEND@` for the WebSocket echo backend), `case.json` says how to lay it out and probe it, and
`SOURCE` names where the files come from, their license and every adaptation made.

case.json:
  conf            the main file, relative to the root
  certs           [certificate, key] pairs to generate (relative to the root)
  symlinks        {link: target}; a target is written as on the host (relative, or `@ROOT@/...`)
  hardlinks       {second name: existing file}
  policy          extra policy settings for this case (the corpus run uses the strictest)
  probes          TLS sockets to probe after apply: address, port, server_name, ws (paths that
                  must echo a WebSocket message), http2 (false for a stream {} server: no ALPN)
  expect_changes  the files (as nginx names them) the plan must change
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from remediate.sandbox.certs import self_signed
from remediate.sandbox.nginx import free_port
from remediate.verify import Target, connect, websocket

CORPUS = Path(__file__).resolve().parent / "corpus" / "nginx"
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
PLACEHOLDER = re.compile(r"@(PORT\d+)@")
# Directories nginx writes to that a package creates on a real host.
RUNTIME_DIRS = ("run", "var/run", "var/log/nginx", "var/cache/nginx", "logs")


def cases() -> list[str]:
    return sorted(p.name for p in CORPUS.iterdir() if (p / "case.json").is_file())


@dataclass(frozen=True)
class FileState:
    """What a user checks of one name in the tree: a link and where it points, or the bytes,
    mode and inode of a file."""

    link: str | None
    data: bytes | None
    mode: int
    inode: int


@dataclass
class CorpusHost:
    """One corpus case laid out under `root` and served by its own nginx."""

    name: str
    root: Path
    backend: str
    meta: dict[str, Any] = field(default_factory=dict)
    ports: dict[str, int] = field(default_factory=dict)

    @property
    def conf(self) -> Path:
        return self.root / self.meta["conf"]

    def substitute(self, text: str) -> str:
        text = text.replace("@ROOT@", str(self.root)).replace("@BACKEND@", self.backend)
        return PLACEHOLDER.sub(lambda m: str(self.ports[m.group(1)]), text)

    def lay_out(self) -> None:
        """The case's files, links and certificates under `root`, as on the real host."""
        source = CORPUS / self.name
        self.meta = json.loads((source / "case.json").read_text(encoding="utf-8"))
        texts = {
            path.relative_to(source / "root"): path.read_text(encoding="utf-8")
            for path in sorted((source / "root").rglob("*"))
            if path.is_file()
        }
        wanted = set(PLACEHOLDER.findall(json.dumps(self.meta) + "".join(texts.values())))
        self.ports = {key: free_port() for key in sorted(wanted)}
        for relative, text in texts.items():
            target = self.root / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(self.substitute(text), encoding="utf-8")
        for directory in RUNTIME_DIRS:
            (self.root / directory).mkdir(parents=True, exist_ok=True)
        self.open_to_workers()
        for link, target in self.meta.get("symlinks", {}).items():
            (self.root / link).parent.mkdir(parents=True, exist_ok=True)
            (self.root / link).symlink_to(self.substitute(target))
        for name, existing in self.meta.get("hardlinks", {}).items():
            (self.root / name).parent.mkdir(parents=True, exist_ok=True)
            os.link(self.root / existing, self.root / name)
        for certificate, key in self.meta.get("certs", []):
            made = self.root / "certs-made"
            if not (made / "corpus.crt").exists():
                self_signed(made, "corpus", "corpus.test", address="127.0.0.1", key_type="rsa")
            for made_file, wanted_path in (("corpus.crt", certificate), ("corpus.key", key)):
                (self.root / wanted_path).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(made / made_file, self.root / wanted_path)

    def open_to_workers(self) -> None:
        """Let the unprivileged workers reach the tree, as they reach /var/cache/nginx on a host.

        The test's private directories are 0700 root; a worker (nobody) that cannot traverse
        them fails every proxy_cache lookup with EACCES, which real hosts never see.
        """
        for directory in (self.root, *self.root.parents):
            if directory == Path(tempfile.gettempdir()) or directory == directory.parent:
                break
            directory.chmod(directory.stat().st_mode | 0o011)

    def command(self, *args: str) -> list[str]:
        return [NGINX, "-p", f"{self.root}/", "-c", str(self.conf), *args]

    def start(self) -> None:
        # The daemon keeps stderr open when no main-level error_log is set: no pipe to wait on.
        started = subprocess.run(
            self.command(),
            check=False,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=30,
        )
        if started.returncode != 0:
            raise RuntimeError(f"{self.name}: nginx did not start: {self.test_config().stderr}")

    def test_config(self) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.command("-t"), check=False, capture_output=True, text=True, timeout=30
        )

    def stop(self) -> None:
        subprocess.run(self.command("-s", "stop"), capture_output=True, check=False, timeout=30)

    def inventory_line(self, python: str) -> str:
        return (
            f"{self.name} ansible_connection=local ansible_python_interpreter={python} "
            f"nginx_binary={NGINX} nginx_prefix={self.root}/ nginx_conf_path={self.conf} "
            f"nginx_backup_dir={self.root.parent / (self.name + '-backups')}"
        )

    def tree(self) -> dict[str, FileState]:
        """Every name under etc/ (the configuration), links as links."""
        states: dict[str, FileState] = {}
        for path in sorted((self.root / "etc").rglob("*")):
            stat = path.lstat()
            relative = str(path.relative_to(self.root))
            if path.is_symlink():
                states[relative] = FileState(os.readlink(path), None, stat.st_mode, 0)
            elif path.is_file():
                states[relative] = FileState(None, path.read_bytes(), stat.st_mode, stat.st_ino)
        return states

    def targets(self) -> list[tuple[Target, list[str], bool]]:
        """Each probe's TLS socket, its WebSocket paths, and whether it must select h2."""
        return [
            (
                Target(
                    probe["address"],
                    self.ports[probe["port"].strip("@")],
                    probe.get("server_name"),
                ),
                list(probe.get("ws", [])),
                bool(probe.get("http2", True)),
            )
            for probe in self.meta.get("probes", [])
        ]


def websocket_echo(target: Target, path: str) -> bool:
    """Whether a WebSocket opened on `path` through the target echoes a message back."""
    try:
        with websocket(target, path, connect(target), timeout=5) as socket_:
            socket_.send_text("remediate corpus")
            return socket_.receive(timeout=5).data == b"remediate corpus"
    except Exception:  # any failed handshake or read is a failed probe
        return False
