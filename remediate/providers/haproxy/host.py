"""Collect each HAProxy host's version and configuration files through Ansible.

`playbooks/collect.yml` runs `haproxy -vv`, lists the files of `haproxy_config_paths` in load
order, reads them all (exact bytes) as one tar archive and runs `haproxy -c` on the whole set.
A host whose configuration HAProxy rejects, or that cannot be reached, is reported with one line
(host, file, line and HAProxy's own message) while the other hosts go on.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from remediate.ansible_run import PlaybookRun, run_playbook
from remediate.errors import DiscoveryError
from remediate.hosts import sha256_text, unpack_archive
from remediate.model import fingerprint
from remediate.progress import Progress

PLAYBOOKS = Path(__file__).resolve().parent / "playbooks"
COLLECT_PLAYBOOK = PLAYBOOKS / "collect.yml"
COLLECT_PLAY = "Collect the HAProxy configuration"
LABEL = "haproxy"
# `[ALERT]    (1234) : config : parsing [/etc/haproxy/haproxy.cfg:12] : unknown keyword 'foo'...`
_PARSING = re.compile(r"\[ALERT\][^:]*:\s*(?:config\s*:\s*)?parsing \[([^\]]+?):(\d+)\]\s*:\s*(.+)")
_ALERT = re.compile(r"\[ALERT\][^:]*:\s*(?:config\s*:\s*)?(.+)")


@dataclass(frozen=True)
class HostConfig:
    """One HAProxy host as collected: how to drive it, and the exact text of its files."""

    host: str
    version: str
    openssl: str
    binary: str
    reload_command: list[str] | None
    order: list[str]
    files: dict[str, str]
    invalid: str = ""
    """HAProxy's (or the collection's) reason to plan nothing for this host, in one line."""


@dataclass
class Collected:
    hosts: list[HostConfig] = field(default_factory=list)
    unreachable: dict[str, str] = field(default_factory=dict)


def files_fingerprint(files: dict[str, str]) -> str:
    """The fingerprint of a host's whole configuration: {path: sha256} of every file."""
    return fingerprint({path: sha256_text(text) for path, text in files.items()})


def check_message(output: str) -> str:
    """`haproxy -c`'s first error as `FILE:LINE: message` (or just the message)."""
    for line in output.splitlines():
        match = _PARSING.search(line)
        if match:
            return f"{match.group(1)}:{match.group(2)}: {match.group(3).strip()}"
    for line in output.splitlines():
        match = _ALERT.search(line)
        if match:
            return match.group(1).strip()
    return "; ".join(line.strip() for line in output.splitlines() if line.strip()) or "no output"


def collect(inventory: Path, progress: Progress, hosts: list[str] | None = None) -> Collected:
    """Every host of `inventory` (or just `hosts`) with its version and configuration files."""
    run = run_playbook(COLLECT_PLAYBOOK, inventory, progress, limit=hosts, label=LABEL)
    return read(run, inventory, progress, hosts)


def read(
    run: PlaybookRun, inventory: Path, progress: Progress, hosts: list[str] | None = None
) -> Collected:
    """The hosts a run of the collect playbook (or its play in a shared run) read."""
    if not run.hosts and hosts is None:
        raise DiscoveryError(f"{inventory}: no hosts found (is it an Ansible inventory?)")
    result = Collected()
    for host in sorted(run.hosts):
        key = f"{LABEL} {host}"
        if host in run.failures:
            result.unreachable[host] = run.failures[host]
            progress.done(key, f"not read: {run.failures[host]}")
            continue
        report = run.facts.get(host, {}).get("remediate_haproxy")
        if report is None:
            result.unreachable[host] = "Ansible reported no HAProxy configuration for this host"
            progress.done(key, "not read")
            continue
        config = _host_config(host, report)
        result.hosts.append(config)
        if config.invalid:
            progress.done(key, f"rejected by haproxy -c: {config.invalid}")
        else:
            progress.done(key, f"HAProxy {config.version}, {len(config.files)} files")
    return result


def _host_config(host: str, report: dict[str, Any]) -> HostConfig:
    files = unpack_archive(host, str(report["archive"]))
    reload_command = report.get("reload_command")
    if isinstance(reload_command, str):
        reload_command = shlex.split(reload_command)
    invalid = ""
    if str(report.get("check_rc", "0")).strip() != "0":
        invalid = f"{host}: {check_message(str(report.get('check_output') or ''))}"
    order = [str(path) for path in report.get("files") or []]
    return HostConfig(
        host=host,
        version=str(report["version"]).strip(),
        openssl=str(report.get("openssl") or "").strip(),
        binary=str(report.get("binary") or "haproxy"),
        reload_command=[str(part) for part in reload_command] if reload_command else None,
        order=order,
        files=files,
        invalid=invalid,
    )
