"""HAProxy hosts of an Ansible inventory: the TLS floor and ciphers of each TLS `bind`, HTTP/2 by
ALPN, `timeout tunnel` for WebSocket backends, as minimal line edits of the real config files.

Collection and apply run the playbooks in `playbooks/` (shipped inside the package) through the
shared Ansible machinery (`remediate.hosts`); the configuration is read by the line-level model in
`config`. Ansible is the `haproxy` extra, imported only when used.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from remediate.provider import ExecutorFactory, Permissions, Provider, RuleInfo, Severity
from remediate.providers.haproxy.model import HAProxySettings, Kind
from remediate.targets import HostFile, Target, probe_host

if TYPE_CHECKING:
    from remediate.executors import Executor, Settings
    from remediate.hosts import Collector
    from remediate.inventory import Inventory
    from remediate.model import Change, Endpoint
    from remediate.policy import Policy
    from remediate.progress import Progress
    from remediate.rules import Verdict
    from remediate.verification import Expectation

DOCS = "https://docs.haproxy.org/2.8/configuration.html"


def _ansible(settings: Settings, progress: Progress) -> Executor:
    from remediate.errors import require

    require("haproxy", "the haproxy-ansible executor")
    from remediate.providers.haproxy.executor import AnsibleExecutor

    return AnsibleExecutor(settings.section(HAProxy.name, HAProxySettings).inventory, progress)


class HAProxy(Provider):
    name = "haproxy"
    title = "HAProxy hosts"
    extra = "haproxy"
    section = HAProxySettings
    kinds = tuple(Kind)
    # Executor names are global across providers, and Nginx's is "ansible".
    default_executor = "haproxy-ansible"
    rules = (
        RuleInfo(
            "haproxy-tls-floor",
            "A TLS bind accepts TLS below the minimum",
            Severity.HIGH,
            "ssl-min-ver TLSv1.2 (or TLSv1.3) in global ssl-default-bind-options, or on the bind "
            "line that sets its own lower ssl-min-ver.",
            f"{DOCS}#5.1-ssl-min-ver",
        ),
        RuleInfo(
            "haproxy-weak-ciphers",
            "A TLS bind's cipher list is made for old TLS",
            Severity.MEDIUM,
            "Replace ssl-default-bind-ciphers (or the bind's ciphers) with Mozilla's intermediate "
            "list.",
            f"{DOCS}#3.1-ssl-default-bind-ciphers",
        ),
        RuleInfo(
            "haproxy-http2-alpn",
            "HTTP/2 cannot be negotiated on a TLS bind",
            Severity.MEDIUM,
            "alpn h2,http/1.1 on the bind (before HAProxy 2.8 a bind without alpn speaks only "
            "HTTP/1.1); explicit alpn, no-alpn and proto h2 are reported, not changed.",
            f"{DOCS}#5.1-alpn",
        ),
        RuleInfo(
            "haproxy-websocket-tunnel-timeout",
            "A WebSocket backend has no timeout tunnel",
            Severity.HIGH,
            "timeout tunnel (haproxy.timeout_tunnel, 1h by default) in the backend, so idle "
            "WebSockets outlive the client and server timeouts.",
            f"{DOCS}#4.2-timeout%20tunnel",
        ),
        RuleInfo(
            "haproxy-backend-h2",
            "HTTP/2 is forced towards backend servers",
            Severity.MEDIUM,
            "Check that the servers speak h2 (else HAProxy answers 502), or drop proto h2 / "
            "alpn h2 from the server line.",
            f"{DOCS}#5.2-proto",
            fixes=False,
        ),
        RuleInfo(
            "haproxy-config-invalid",
            "The host's configuration could not be read or is rejected by HAProxy",
            Severity.MEDIUM,
            "Fix what `haproxy -c` reports (file and line), or check that Ansible reaches the "
            "host.",
            f"{DOCS}#2",
            fixes=False,
        ),
    )
    permissions = Permissions(
        system="host",
        read=(
            "reach each host through Ansible (SSH, or ansible_connection=local)",
            "run `haproxy -vv` and `haproxy -c -f ...`, and read every file of "
            "haproxy_config_paths",
        ),
        write=(
            "become root (or the owner of the config files) with ansible_become",
            "write the changed files and the backup directory (haproxy_backup_dir)",
            "run `haproxy -c` and the reload command (haproxy_reload_command)",
        ),
    )

    def executors(self) -> Mapping[str, ExecutorFactory]:
        return {"haproxy-ansible": _ansible}

    def collector(self, policy: Policy) -> Collector | None:
        """What discovery reads from the hosts, so that a host-based provider with the same
        inventory reads them in the same playbook run (`remediate.hosts.collection`)."""
        inventory = policy.section(self.name, HAProxySettings).inventory
        if inventory is None or not inventory.exists():
            return None
        from remediate.providers.haproxy.discover import collector

        return collector(inventory)

    def discover(self, policy: Policy, progress: Progress) -> Inventory:
        from remediate.errors import require

        require("haproxy", "the haproxy provider")
        from remediate.providers.haproxy.discover import discover

        return discover(policy, progress)

    def evaluate(self, endpoint: Endpoint, policy: Policy, facts: Mapping[str, Any]) -> Verdict:
        from remediate.providers.haproxy.rules import evaluate

        return evaluate(endpoint, policy, facts)

    def target(self, endpoint: Endpoint) -> Target:
        raise ValueError(
            f"{endpoint.resource}: HAProxy changes are files, each with its own target"
        )

    def expectations(self, changes: Sequence[Change], policy: Policy) -> Iterable[Expectation]:
        from remediate.providers.haproxy.config import seconds
        from remediate.verification import Expectation
        from remediate.verify import Target as Probe

        cap = seconds(policy.section(self.name, HAProxySettings).websocket_idle_check_max) or 0.0
        for change in changes:
            target = change.target
            if not isinstance(target, HostFile):
                continue
            for socket in target.sockets:
                host = probe_host(target, socket)
                idle, notes = _idle(socket.ws_paths, socket.client_timeout, cap)
                yield Expectation(
                    target.host,
                    Probe(host, socket.port, socket.server_name or None),
                    check_tls=True,
                    http2=policy.http2 and socket.http2,
                    ws_paths=socket.ws_paths,
                    ws_idle=idle,
                    notes=notes,
                )


# How far past the client timeout an idle WebSocket is kept: HAProxy checks its timeouts on a
# millisecond clock, so a second is well past the moment it would cut the connection.
IDLE_MARGIN = 1.0


def _idle(
    paths: Sequence[str], client_timeout: float | None, cap: float
) -> tuple[float, tuple[str, ...]]:
    """How long a WebSocket on `paths` is kept idle by verification (0: not at all), and why not."""
    if not paths:
        return 0.0, ()
    if client_timeout is None:
        return 0.0, (
            "no timeout client: an idle WebSocket is not cut by it, so none is waited for",
        )
    if client_timeout > cap:
        return 0.0, (
            f"WebSocket idle check skipped: timeout client {client_timeout:g} s is longer than "
            f"haproxy.websocket_idle_check_max ({cap:g} s)",
        )
    return client_timeout + IDLE_MARGIN, ()


PROVIDER = HAProxy()
