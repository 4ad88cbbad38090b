"""Nginx hosts of an Ansible inventory: TLS protocols and ciphers per listening socket, HTTP/2 and
WebSocket upgrade headers, as minimal edits of the real config files.

Collection and apply run the playbooks in `playbooks/` (shipped inside the package) through
ansible-runner; the config tree is read with crossplane. Both are the `nginx` extra, imported only
when used.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from remediate.provider import ExecutorFactory, Permissions, Provider, RuleInfo, Severity
from remediate.providers.nginx.model import Kind, NginxSettings
from remediate.targets import HostFile, Socket, Target, probe_host

if TYPE_CHECKING:
    from remediate.executors import Executor, Settings
    from remediate.hosts import Collector
    from remediate.inventory import Inventory
    from remediate.model import Change, Endpoint
    from remediate.policy import Policy
    from remediate.progress import Progress
    from remediate.rules import Verdict
    from remediate.verification import Expectation

DOCS = "https://nginx.org/en/docs"


def _ansible(settings: Settings, progress: Progress) -> Executor:
    from remediate.errors import require

    require("nginx", "the ansible executor")
    from remediate.providers.nginx.executor import AnsibleExecutor

    section = settings.section(Nginx.name, NginxSettings)
    return AnsibleExecutor(section.inventory, progress, section.forks)


class Nginx(Provider):
    name = "nginx"
    title = "Nginx hosts"
    extra = "nginx"
    section = NginxSettings
    kinds = tuple(Kind)
    default_executor = "ansible"
    rules = (
        RuleInfo(
            "nginx-tls-floor",
            "ssl_protocols accepts TLS below the minimum on a listening socket",
            Severity.HIGH,
            "Set ssl_protocols to TLSv1.2 TLSv1.3 (or TLSv1.3) where it takes effect for the "
            "socket's default server.",
            f"{DOCS}/http/ngx_http_ssl_module.html#ssl_protocols",
        ),
        RuleInfo(
            "nginx-weak-ciphers",
            "ssl_ciphers made for old TLS",
            Severity.MEDIUM,
            "Replace ssl_ciphers with Mozilla's intermediate list.",
            f"{DOCS}/http/ngx_http_ssl_module.html#ssl_ciphers",
        ),
        RuleInfo(
            "nginx-http2",
            "HTTP/2 is off on a TLS socket",
            Severity.MEDIUM,
            "`http2 on;` in the server (nginx 1.25.1+), or `http2` on the socket's listen.",
            f"{DOCS}/http/ngx_http_v2_module.html",
        ),
        RuleInfo(
            "nginx-websocket-upgrade",
            "A WebSocket location drops the Upgrade and Connection headers",
            Severity.HIGH,
            "proxy_http_version 1.1 and proxy_set_header Upgrade/Connection from a "
            "$http_upgrade map.",
            f"{DOCS}/http/websocket.html",
        ),
        RuleInfo(
            "nginx-managed-file",
            "A file another tool keeps up to date (certbot's options) needs an edit",
            Severity.MEDIUM,
            "Set nginx.managed_files: edit to let remediate change it (certbot then stops "
            "updating it), or replace its include with settings of your own.",
            "https://eff-certbot.readthedocs.io/en/stable/using.html#nginx",
        ),
        RuleInfo(
            "nginx-config-unread",
            "The host's config tree could not be read",
            Severity.MEDIUM,
            "Check that Ansible can reach the host and run nginx -T there.",
            f"{DOCS}/switches.html",
            fixes=False,
        ),
    )
    permissions = Permissions(
        system="host",
        read=(
            "reach each host through Ansible (SSH, or ansible_connection=local)",
            "run `nginx -v` and `nginx -T`, and read every file of the config tree they report",
        ),
        write=(
            "become root (or the owner of the config files) with ansible_become",
            "write the changed files and the backup directory (nginx_backup_dir)",
            "run `nginx -t` and the reload command (nginx_reload_command)",
        ),
    )

    def executors(self) -> Mapping[str, ExecutorFactory]:
        return {"ansible": _ansible}

    def collector(self, policy: Policy) -> Collector | None:
        """What discovery reads from the hosts, so that a host-based provider with the same
        inventory reads them in the same playbook run (`remediate.hosts.collection`)."""
        inventory = policy.section(self.name, NginxSettings).inventory
        if inventory is None or not inventory.exists():
            return None
        from remediate.providers.nginx.discover import collector

        return collector(policy, inventory)

    def discover(self, policy: Policy, progress: Progress) -> Inventory:
        from remediate.errors import require

        require("nginx", "the nginx provider")
        from remediate.providers.nginx.discover import discover

        return discover(policy, progress)

    def evaluate(self, endpoint: Endpoint, policy: Policy, facts: Mapping[str, Any]) -> Verdict:
        from remediate.providers.nginx.rules import evaluate

        return evaluate(endpoint, policy, facts)

    def target(self, endpoint: Endpoint) -> Target:
        raise ValueError(f"{endpoint.resource}: Nginx changes are files, each with its own target")

    def expectations(self, changes: Sequence[Change], policy: Policy) -> Iterable[Expectation]:
        from remediate.verification import Expectation
        from remediate.verify import Target

        for change in changes:
            target = change.target
            if not isinstance(target, HostFile):
                continue
            for socket in target.sockets:
                host = probe_host(target, socket)
                yield Expectation(
                    target.host,
                    Target(host, socket.port, socket.server_name or None),
                    check_tls=True,
                    http2=socket.http2 or (policy.http2 and not socket.stream),
                    # Only real URI paths: a named location (@app) is not reachable by a client.
                    ws_paths=tuple(p for p in socket.ws_paths if p.startswith("/")),
                )

    def migrate_v1(self, kind: str, change: Mapping[str, Any]) -> Target:
        context: Mapping[str, Any] = change.get("context") or {}
        return HostFile(
            host=str(context["host"]),
            path=str(context["path"]),
            sockets=tuple(
                Socket(
                    address=str(item.get("address") or ""),
                    port=int(item["port"]),
                    server_name=str(item.get("server_name") or ""),
                    http2=bool(item.get("http2")),
                    ws_paths=tuple(item.get("ws_paths") or ()),
                )
                for item in context.get("sockets") or ()
            ),
        )


PROVIDER = Nginx()
