"""The haproxy-ansible executor: HAProxy config files written by `playbooks/apply.yml` through the
Ansible machinery (`remediate.hosts`).

Each change replaces one file's whole text (`resource` is `host:path`). The body (checksum guard,
backup, atomic write with owner and mode, `haproxy -c` on the whole set, the master-worker reload
whose old workers drain their connections, restore on failure so HAProxy keeps serving the old
configuration, finishing an interrupted apply) is the shared host-file executor's
(`remediate.hosts.HostFileExecutor`); this module says what is HAProxy's own.
"""

from __future__ import annotations

from importlib.resources.abc import Traversable
from pathlib import Path

from remediate.errors import RemediateError
from remediate.hosts import HostFileExecutor
from remediate.progress import Progress
from remediate.providers.haproxy.host import LABEL, PLAYBOOKS, collect, files_fingerprint

APPLY_PLAYBOOK = PLAYBOOKS / "apply.yml"


class AnsibleExecutor(HostFileExecutor):
    name = "haproxy-ansible"
    label = LABEL
    changes_var = "haproxy_changes"

    def __init__(self, inventory: Path | None, progress: Progress) -> None:
        """`inventory` is the Ansible inventory the plan's hosts come from."""
        if inventory is None:
            raise RemediateError(
                "the ansible executor needs the HAProxy inventory: set haproxy.inventory in the "
                "policy"
            )
        super().__init__(inventory, progress)

    @property
    def apply_playbook(self) -> Traversable:
        return APPLY_PLAYBOOK

    def collect(self, hosts: list[str]) -> dict[str, dict[str, str]]:
        collected = collect(self._inventory, self._progress, hosts)
        return {config.host: config.files for config in collected.hosts}

    def files_fingerprint(self, files: dict[str, str]) -> str:
        return files_fingerprint(files)
