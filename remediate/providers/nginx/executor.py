"""The ansible executor: Nginx config files written by `playbooks/apply.yml` through ansible-runner.

Each change replaces one file's whole text (`resource` is `host:path`, the path nginx reads it by;
the target's `real_path` is the file behind a symbolic link, which is what gets written, so the
link stays a link). The body (checksum guard, backup, atomic write, `nginx -t` on the whole tree,
reload, restore on failure, finishing an interrupted apply) is the shared host-file executor's
(`remediate.hosts.HostFileExecutor`); this module says what is Nginx's own.
"""

from __future__ import annotations

from collections.abc import Sequence
from importlib.resources.abc import Traversable
from pathlib import Path

from remediate.ansible_run import FORKS
from remediate.errors import RemediateError
from remediate.hosts import HostFileExecutor, file_target, inventory_hosts
from remediate.model import Change
from remediate.progress import Progress
from remediate.providers.nginx.host import collect, tree_fingerprint
from remediate.providers.nginx.runner import PLAYBOOKS

APPLY_PLAYBOOK = PLAYBOOKS / "apply.yml"


class AnsibleExecutor(HostFileExecutor):
    name = "ansible"
    label = "nginx"
    changes_var = "nginx_changes"

    def __init__(self, inventory: Path | None, progress: Progress, forks: int = FORKS) -> None:
        """`inventory` is the Ansible inventory the plan's hosts come from; `forks` how many of
        its hosts Ansible works on at once."""
        if inventory is None:
            raise RemediateError(
                "the ansible executor needs the Nginx inventory: set nginx.inventory in the policy"
            )
        super().__init__(inventory, progress, forks)
        self._hosts: set[str] | None = None

    @property
    def apply_playbook(self) -> Traversable:
        return APPLY_PLAYBOOK

    def check_hosts(self, changes: Sequence[Change]) -> None:
        """Refuse changes to hosts the inventory does not have, naming them (Ansible would only
        say it found no hosts to target, and read a name such as `all` or `web*` as a pattern)."""
        if self._hosts is None:
            self._hosts = inventory_hosts(self._inventory)
        unknown = sorted({file_target(change).host for change in changes} - self._hosts)
        if unknown:
            raise RemediateError(
                f"{', '.join(unknown)}: not a host of the inventory {self._inventory}; "
                "nothing was applied"
            )

    def collect(self, hosts: list[str]) -> dict[str, dict[str, str]]:
        return {
            config.host: config.files
            for config in collect(self._inventory, self._progress, hosts, self._forks)
        }

    def files_fingerprint(self, files: dict[str, str]) -> str:
        return tree_fingerprint(files)

    def written_path(self, change: Change) -> str:
        """The file to write: the target of a symbolic link, else the path itself."""
        target = file_target(change)
        return target.real_path or target.path

    def entry(self, change: Change) -> dict[str, str]:
        return {"path": self.written_path(change), "name": file_target(change).path}
