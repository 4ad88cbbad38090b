"""Collect each Nginx host's version and effective config tree through Ansible.

`playbooks/collect.yml` runs `nginx -v`, learns every file of the effective tree from `nginx -T`
(includes and globs resolved by nginx itself) and reads them all, exact bytes, as one tar archive.
Running it through ansible-runner makes `ansible_connection=local` and SSH hosts behave the same.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import shlex
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from remediate.errors import DiscoveryError
from remediate.model import fingerprint
from remediate.progress import Progress
from remediate.providers.nginx.runner import run_playbook

COLLECT_PLAYBOOK = "collect.yml"
REPORT_TASK = "Report the collected configuration"


@dataclass(frozen=True)
class HostConfig:
    """One Nginx host as collected: how to drive it, and the exact text of its config tree."""

    host: str
    version: str
    conf_path: str
    prefix: str | None
    binary: str
    reload_command: list[str] | None
    files: dict[str, str]


def sha256_text(text: str) -> str:
    """The sha256 of a file's text as written on disk (UTF-8), as Ansible's stat reports it."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def tree_fingerprint(files: dict[str, str]) -> str:
    """The fingerprint of a host's whole config tree: {path: sha256} of every file."""
    return fingerprint({path: sha256_text(text) for path, text in files.items()})


def collect(
    inventory: Path, progress: Progress, hosts: list[str] | None = None
) -> list[HostConfig]:
    """Every host of `inventory` (or just `hosts`) with its version and effective config tree.

    Raises DiscoveryError naming each host that could not be read and why (unreachable, or
    nginx's own message such as `[emerg] unknown directive "foo" in /etc/nginx/nginx.conf:12`).
    """
    run = run_playbook(COLLECT_PLAYBOOK, inventory, progress, limit=hosts, label="nginx")
    if not run.hosts and hosts is None:
        raise DiscoveryError(f"{inventory}: no hosts found (is it an Ansible inventory?)")
    if run.failures:
        problems = "; ".join(f"{host}: {reason}" for host, reason in sorted(run.failures.items()))
        raise DiscoveryError(f"cannot read the nginx configuration of {problems}")
    collected: list[HostConfig] = []
    for host in sorted(run.hosts):
        report = run.facts.get(host, {}).get("remediate_nginx")
        if report is None:
            raise DiscoveryError(f"{host}: Ansible reported no nginx configuration for this host")
        config = _host_config(host, report)
        collected.append(config)
        progress.done(f"nginx {host}", f"nginx {config.version}, {len(config.files)} files")
    return collected


def _unpack(host: str, encoded: str) -> dict[str, str]:
    """The files of the base64 tar archive collect.yml reports: {absolute path: text}."""
    files: dict[str, str] = {}
    try:
        raw = io.BytesIO(base64.b64decode(encoded, validate=True))
        with tarfile.open(fileobj=raw) as archive:
            _read_members(host, archive, files)
    except (binascii.Error, tarfile.TarError):
        raise DiscoveryError(f"{host}: the collected configuration archive is unreadable") from None
    return files


def _read_members(host: str, archive: tarfile.TarFile, files: dict[str, str]) -> None:
    for member in archive:
        handle = archive.extractfile(member) if member.isfile() else None
        if handle is None:
            continue
        path = "/" + member.name.lstrip("/")
        try:
            files[path] = handle.read().decode("utf-8")
        except UnicodeDecodeError:
            raise DiscoveryError(f"{host}:{path}: not a UTF-8 text file") from None


def _host_config(host: str, report: dict[str, Any]) -> HostConfig:
    files = _unpack(host, str(report["archive"]))
    reload_command = report.get("reload_command")
    if isinstance(reload_command, str):
        reload_command = shlex.split(reload_command)
    return HostConfig(
        host=host,
        version=str(report["version"]),
        conf_path=str(report["conf_path"]),
        prefix=report.get("prefix") or None,
        binary=str(report.get("binary") or "nginx"),
        reload_command=[str(part) for part in reload_command] if reload_command else None,
        files=files,
    )
