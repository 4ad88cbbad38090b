"""A real PostgreSQL server for the tests: Debian's binaries, `initdb` into a temporary directory,
`postgres` listening only on a Unix socket in that directory (no TCP port to clash over).

PostgreSQL refuses to run as root: as root the cluster belongs to `nobody` and the server runs
as `nobody` (through `setpriv`); clients connect over the socket as the cluster's superuser with
trust authentication, which only the socket's directory permissions expose."""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

SUPERUSER = "remediate"


def binaries() -> Path | None:
    """The directory of `initdb` and `postgres` (Debian keeps them per version), or None."""
    found = shutil.which("initdb")
    if found:
        return Path(found).parent
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(versions[-1]).parent if versions else None


class Server:
    """One throwaway cluster; `database()` creates an empty database and returns its URL."""

    def __init__(self, bin_dir: Path) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="remediate-pg-"))
        self.data = self.root / "data"
        self._as: list[str] = []
        if os.geteuid() == 0:
            nobody = pwd.getpwnam("nobody")
            os.chown(self.root, nobody.pw_uid, nobody.pw_gid)
            self._as = ["setpriv", f"--reuid={nobody.pw_uid}", f"--regid={nobody.pw_gid}"]
            self._as += ["--clear-groups", "--"]
        subprocess.run(
            [
                *self._as,
                str(bin_dir / "initdb"),
                "-D",
                str(self.data),
                "-U",
                SUPERUSER,
                "-A",
                "trust",
                "--no-sync",
                "-E",
                "UTF8",
                "--locale=C",
            ],
            check=True,
            capture_output=True,
            cwd=self.root,
        )
        self.process = subprocess.Popen(
            [
                *self._as,
                str(bin_dir / "postgres"),
                "-D",
                str(self.data),
                "-k",
                str(self.root),
                "-c",
                "listen_addresses=",
                "-c",
                "fsync=off",
                "-c",
                "synchronous_commit=off",
                "-c",
                "full_page_writes=off",
                "-c",
                "max_connections=200",
            ],
            stdout=subprocess.DEVNULL,
            stderr=(self.root / "server.log").open("w"),
            cwd=self.root,
        )
        self._count = 0
        self._wait_ready()

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{SUPERUSER}@/{database}?host={self.root}"

    def _wait_ready(self) -> None:
        import psycopg

        deadline = time.monotonic() + 30
        while True:
            try:
                psycopg.connect(self.url(), connect_timeout=2).close()
                return
            except psycopg.OperationalError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    log = (self.root / "server.log").read_text(errors="replace")
                    raise RuntimeError(f"postgres did not start:\n{log}") from None
                time.sleep(0.05)

    def database(self) -> str:
        """A new empty database's URL (each test gets its own history)."""
        import psycopg

        self._count += 1
        name = f"journal_{self._count}"
        with psycopg.connect(self.url(), autocommit=True) as connection:
            connection.execute(f"CREATE DATABASE {name}")
        return self.url(name)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        shutil.rmtree(self.root, ignore_errors=True)
