"""Nginx discovery: each host of the Ansible inventory named by `nginx.inventory`, with its
version and whole config tree (collected through Ansible), read into the model the rules use.

One endpoint per host. Its settings are `{path: sha256}` of every file of the tree, so the
fingerprint moves whenever any file does; the texts themselves, and their parse, travel in the
inventory's facts (`nginx.trees`, `nginx.parsed`), not in the plan.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from remediate.ansible_run import EarlyReader
from remediate.errors import DiscoveryError, RemediateError
from remediate.hosts import Collector, collection, sha256_text
from remediate.inventory import Inventory
from remediate.model import Endpoint
from remediate.policy import Policy
from remediate.progress import Progress, Silent
from remediate.providers.nginx.config import Config, parse_tree
from remediate.providers.nginx.host import (
    COLLECT_PLAY,
    COLLECT_PLAYBOOK,
    COLLECT_TASK,
    HostConfig,
    Prepared,
    prepare,
    read,
)
from remediate.providers.nginx.model import Kind, NginxSettings
from remediate.providers.nginx.rules import (
    HARD_LINKS,
    LINKS,
    PARSED,
    REVIEWED,
    TREES,
    host_verdict,
)
from remediate.providers.nginx.runner import PLAYBOOKS
from remediate.rules import Verdict

NAME = "nginx"


def inventory_path(policy: Policy) -> Path:
    """`nginx.inventory` as given; a relative path is read from the current directory."""
    section = policy.section(NAME, NginxSettings)
    if section.inventory is None:
        raise DiscoveryError("nginx.inventory is not set: name an Ansible inventory of Nginx hosts")
    path = section.inventory
    if not path.exists():
        raise DiscoveryError(f"nginx.inventory {path}: no such file or directory")
    return path


def collector(policy: Policy, inventory: Path) -> Collector:
    """What Nginx discovery reads from the hosts of `inventory` (see `hosts.collection`)."""
    return Collector(
        NAME,
        PLAYBOOKS / COLLECT_PLAYBOOK,
        COLLECT_PLAY,
        inventory,
        policy.section(NAME, NginxSettings).forks,
        early={COLLECT_TASK: _reviewing(policy)},
    )


def _reviewing(policy: Policy) -> EarlyReader:
    """`prepare`, then the rules' verdict under `policy`: the plan's work on a host done as soon
    as its tree arrives, while Ansible is still finishing (the other hosts, its own shutdown)."""

    def read(host: str, result: Mapping[str, Any]) -> Prepared:
        prepared = prepare(host, result)
        collected = prepared.host
        try:
            verdict = host_verdict(
                collected.files,
                collected.version,
                prepared.config,
                policy,
                host=host,
                links=collected.links,
                hard_links=collected.hard_links,
            )
        except RemediateError:
            # Planning meets the same error again, where it reports it.
            return prepared
        return replace(prepared, reviewed=(policy, verdict))

    return read


def endpoint_of(host: HostConfig, policy: Policy, config: Config | None = None) -> Endpoint:
    """A host as an endpoint; raises NginxConfigError (file and line) for an unreadable tree.

    `config` is the host's tree already parsed, when the caller has it."""
    if config is None:
        config = parse_tree(host.files, host.conf_path, host.prefix)
    return Endpoint(
        provider=NAME,
        resource=host.host,
        kind=Kind.HOST,
        name=host.host,
        location=f"nginx {host.version}",
        settings={path: sha256_text(text) for path, text in sorted(host.files.items())},
        context={
            "version": host.version,
            "conf_path": host.conf_path,
            "prefix": host.prefix,
            "binary": host.binary,
            "reload_command": host.reload_command,
        },
    )


def discover(policy: Policy, progress: Progress | None = None) -> Inventory:
    progress = progress or Silent()
    inventory_file = inventory_path(policy)
    run = collection(collector(policy, inventory_file), policy, progress)
    hosts = read(run, inventory_file, progress)
    inventory = Inventory(providers=[NAME])
    trees: dict[str, dict[str, str]] = {}
    parsed: dict[str, Config] = {}
    reviewed: dict[str, tuple[Policy, Verdict]] = {}
    for host in hosts:
        # Parsed once, and reviewed, as the host's result arrived when it could be; the rules
        # plan from the same parse (facts[PARSED]), or take that verdict (facts[REVIEWED]).
        early = run.early.get((host.host, COLLECT_TASK))
        if isinstance(early, Prepared) and early.host is host:
            parsed[host.host] = early.config
            if early.reviewed is not None:
                reviewed[host.host] = early.reviewed
        else:
            parsed[host.host] = parse_tree(host.files, host.conf_path, host.prefix)
        inventory.endpoints.append(endpoint_of(host, policy, parsed[host.host]))
        trees[host.host] = host.files
    inventory.facts[TREES] = trees
    inventory.facts[PARSED] = parsed
    inventory.facts[REVIEWED] = reviewed
    inventory.facts[LINKS] = {host.host: host.links for host in hosts}
    inventory.facts[HARD_LINKS] = {host.host: host.hard_links for host in hosts}
    return inventory
