"""HAProxy discovery: each host of the Ansible inventory named by `haproxy.inventory`, with its
version and configuration files (collected through Ansible, one playbook run for all hosts), read
into the model the rules use.

One endpoint per host. Its settings are `{path: sha256}` of every file, so the fingerprint moves
whenever any file does; the texts, their load order and their parse travel in the inventory's
facts (`haproxy.files`, `haproxy.order`, `haproxy.parsed`), not in the plan. A host HAProxy
rejects (or that cannot be reached) is an endpoint whose context says why: it plans nothing and
reports one finding, and the other hosts go on.
"""

from __future__ import annotations

from pathlib import Path

from remediate.errors import DiscoveryError
from remediate.hosts import Collector, collection, sha256_text
from remediate.inventory import Inventory
from remediate.model import Endpoint
from remediate.policy import Policy
from remediate.progress import Progress, Silent
from remediate.providers.haproxy.config import Config, ConfigError, parse
from remediate.providers.haproxy.host import COLLECT_PLAY, COLLECT_PLAYBOOK, HostConfig, read
from remediate.providers.haproxy.model import HAProxySettings, Kind
from remediate.providers.haproxy.rules import FILES, NAME, ORDER, PARSED


def inventory_path(policy: Policy) -> Path:
    """`haproxy.inventory` as given; a relative path is read from the current directory."""
    section = policy.section(NAME, HAProxySettings)
    if section.inventory is None:
        raise DiscoveryError(
            "haproxy.inventory is not set: name an Ansible inventory of HAProxy hosts"
        )
    path = section.inventory
    if not path.exists():
        raise DiscoveryError(f"haproxy.inventory {path}: no such file or directory")
    return path


def collector(inventory: Path) -> Collector:
    """What HAProxy discovery reads from the hosts of `inventory` (see `hosts.collection`)."""
    return Collector(NAME, COLLECT_PLAYBOOK, COLLECT_PLAY, inventory)


def endpoint_of(host: HostConfig, invalid: str = "") -> Endpoint:
    """A host as an endpoint; `invalid` (one line) when nothing can be planned for it."""
    return Endpoint(
        provider=NAME,
        resource=host.host,
        kind=Kind.HOST,
        name=host.host,
        location=f"HAProxy {host.version}" if host.version else "HAProxy",
        settings={path: sha256_text(host.files[path]) for path in host.order if path in host.files},
        context={
            "version": host.version,
            "openssl": host.openssl,
            "binary": host.binary,
            "reload_command": host.reload_command,
            "order": host.order,
            "invalid": invalid,
        },
    )


def discover(policy: Policy, progress: Progress | None = None) -> Inventory:
    progress = progress or Silent()
    inventory_file = inventory_path(policy)
    run = collection(collector(inventory_file), policy, progress)
    collected = read(run, inventory_file, progress)
    inventory = Inventory(providers=[NAME])
    files: dict[str, dict[str, str]] = {}
    orders: dict[str, list[str]] = {}
    parsed: dict[str, Config] = {}
    for host in collected.hosts:
        invalid = host.invalid
        config: Config | None = None
        if not invalid:
            try:
                # Parsed once here; the rules plan from the same parse (facts[PARSED]).
                config = parse(host.files, host.order)
            except ConfigError as exc:
                invalid = f"{host.host}: {exc}"
        inventory.endpoints.append(endpoint_of(host, invalid))
        files[host.host] = host.files
        orders[host.host] = host.order
        if config is not None:
            parsed[host.host] = config
    for name, reason in sorted(collected.unreachable.items()):
        unread = HostConfig(name, "", "", "haproxy", None, [], {})
        inventory.endpoints.append(endpoint_of(unread, f"{name}: {reason}"))
    inventory.facts[FILES] = files
    inventory.facts[ORDER] = orders
    inventory.facts[PARSED] = parsed
    return inventory
