"""Collect each Nginx host's version and effective config tree through Ansible.

`playbooks/collect.yml` runs `nginx -v`, learns every file of the effective tree from `nginx -T`
(includes and globs resolved by nginx itself) and slurps each file for its exact bytes. Running it
through ansible-runner makes `ansible_connection=local` hosts and SSH hosts behave the same.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from remediate.progress import Progress


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


def collect(inventory: Path, progress: Progress) -> list[HostConfig]:
    """Every host of `inventory` with its version and effective config tree."""
    from remediate.nginx.ansible import collect_hosts

    return collect_hosts(inventory, progress)
