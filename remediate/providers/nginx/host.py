"""Collect each Nginx host's version and effective config tree through Ansible.

`playbooks/collect.yml` runs one shell task a host: `nginx -v`, every file of the effective tree
from `nginx -T` (includes and globs resolved by nginx itself), each file's real path and hard link
count, and all the files, exact bytes, as one gzipped tar archive. Running it through
ansible-runner makes `ansible_connection=local` and SSH hosts behave the same.

Files keep the path nginx names them by (`sites-enabled/default`, a symlink on Debian): that is
the path users know. `links` maps such a path to the real file behind it, which is where apply
writes; `hard_links` counts the names of each file that has more than one.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from remediate.ansible_run import FORKS, PlaybookRun, run_playbook
from remediate.errors import DiscoveryError
from remediate.hosts import sha256_text, unpack_archive
from remediate.model import fingerprint
from remediate.progress import Progress
from remediate.providers.nginx.config import Config, parse_tree
from remediate.providers.nginx.runner import PLAYBOOKS

if TYPE_CHECKING:
    from remediate.policy import Policy
    from remediate.rules import Verdict

COLLECT_PLAYBOOK = "collect.yml"
COLLECT_PLAY = "Collect the effective Nginx configuration"
COLLECT_TASK = "Collect the nginx version and configuration tree"


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
    links: dict[str, str] = field(default_factory=dict)
    """{path as nginx names it: the real file} for every path that is not the file itself."""
    hard_links: dict[str, int] = field(default_factory=dict)
    """{path: number of names} for every file with more than one (a hard link)."""


def tree_fingerprint(files: dict[str, str]) -> str:
    """The fingerprint of a host's whole config tree: {path: sha256} of every file."""
    return fingerprint({path: sha256_text(text) for path, text in files.items()})


def collect(
    inventory: Path, progress: Progress, hosts: list[str] | None = None, forks: int = FORKS
) -> list[HostConfig]:
    """Every host of `inventory` (or just `hosts`) with its version and effective config tree.

    Raises DiscoveryError naming each host that could not be read and why (unreachable, or
    nginx's own message such as `[emerg] unknown directive "foo" in /etc/nginx/nginx.conf:12`).
    """
    run = run_playbook(
        PLAYBOOKS / COLLECT_PLAYBOOK,
        inventory,
        progress,
        limit=hosts,
        label="nginx",
        forks=forks,
        early={COLLECT_TASK: prepare},
    )
    return read(run, inventory, progress, hosts)


def read(
    run: PlaybookRun, inventory: Path, progress: Progress, hosts: list[str] | None = None
) -> list[HostConfig]:
    """The hosts a run of the collect playbook (or its play in a shared run) read."""
    if not run.hosts and hosts is None:
        raise DiscoveryError(f"{inventory}: no hosts found (is it an Ansible inventory?)")
    if run.failures:
        problems = "; ".join(f"{host}: {reason}" for host, reason in sorted(run.failures.items()))
        raise DiscoveryError(f"cannot read the nginx configuration of {problems}")
    collected: list[HostConfig] = []
    for host in sorted(run.hosts):
        early = run.early.get((host, COLLECT_TASK))
        if isinstance(early, Prepared):
            config = early.host
        else:
            results = run.task_results(host, COLLECT_TASK)
            config = host_config(host, results[0] if results else {})
        collected.append(config)
        progress.done(f"nginx {host}", f"nginx {config.version}, {len(config.files)} files")
    return collected


@dataclass(frozen=True)
class Prepared:
    """A host's collected tree read and parsed as soon as its result arrived (`prepare`)."""

    host: HostConfig
    config: Config
    reviewed: tuple[Policy, Verdict] | None = None
    """The rules' verdict on the host and the policy it is under, when discovery asked for it
    (`discover.collector`)."""


def host_config(host: str, result: Mapping[str, Any]) -> HostConfig:
    """One host's result of the collect task, read."""
    if "stdout" not in result:
        raise DiscoveryError(f"{host}: Ansible reported no nginx configuration for this host")
    return _host_config(host, str(result["stdout"]))


def prepare(host: str, result: Mapping[str, Any]) -> Prepared:
    """The collect task's result of one host, read and parsed while Ansible is still running
    (the other hosts, or its own shutdown): `run_playbook`'s early reader."""
    collected = host_config(host, result)
    return Prepared(collected, parse_tree(collected.files, collected.conf_path, collected.prefix))


def _sections(host: str, stdout: str) -> dict[str, list[str]]:
    """The tagged sections of collect.yml's output: {tag: its lines} (the tag line's own text
    first for one-line sections)."""
    sections: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in stdout.split("\n"):
        tag, _, rest = line.partition(" ")
        if tag.startswith("remediate-nginx-"):
            current = sections.setdefault(tag.removeprefix("remediate-nginx-"), [])
            if rest:
                current.append(rest)
        elif current is not None and line:
            current.append(line)
    missing = {"host", "version", "paths", "links", "archive"} - sections.keys()
    if missing:
        raise DiscoveryError(f"{host}: the collected output lacks {', '.join(sorted(missing))}")
    return sections


def _host_config(host: str, stdout: str) -> HostConfig:
    sections = _sections(host, stdout)
    report = json.loads(sections["host"][0])
    version = " ".join(sections["version"])
    match = re.search(r"nginx/(\S+)", version)
    if match is None:
        raise DiscoveryError(f"{host}: cannot read the nginx version from {version!r}")
    files = unpack_archive(host, "".join(sections["archive"]))
    links: dict[str, str] = {}
    hard_links: dict[str, int] = {}
    for path, line in zip(sections["paths"], sections["links"], strict=False):
        count, _, real = line.partition(" ")
        if real and real != path:
            links[path] = real
        if count.isdigit() and int(count) > 1:
            hard_links[path] = int(count)
    reload_command = report.get("reload_command")
    if isinstance(reload_command, str):
        reload_command = shlex.split(reload_command)
    return HostConfig(
        host=host,
        version=match.group(1),
        conf_path=str(report["conf_path"]),
        prefix=report.get("prefix") or None,
        binary=str(report.get("binary") or "nginx"),
        reload_command=[str(part) for part in reload_command] if reload_command else None,
        files=files,
        links=links,
        hard_links=hard_links,
    )
