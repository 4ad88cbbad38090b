"""The ansible executor: Nginx config files written by `playbooks/apply.yml` through ansible-runner.

Each change replaces one file's whole text (`resource` is `host:path`). Per host the playbook
refuses files that moved since planning, backs every file up, writes them atomically with their
owner and mode, validates the whole tree with `nginx -t` and reloads; on any failure it restores
every file of that host byte for byte and fails with nginx's output. Hosts run in parallel and one
failing host does not stop the others. A dry run is Ansible's check and diff mode.
"""

from __future__ import annotations

import tempfile
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

from remediate.errors import RemediateError
from remediate.executors import Outcome, Status
from remediate.model import Change
from remediate.progress import Progress
from remediate.providers.nginx.host import collect, sha256_text, tree_fingerprint
from remediate.providers.nginx.runner import PlaybookRun, inventory_hosts, run_playbook
from remediate.targets import HostFile, require

APPLY_PLAYBOOK = "apply.yml"
READBACK_TASK = "Read back the written files"


class AnsibleExecutor:
    name = "ansible"

    def __init__(self, inventory: Path | None, progress: Progress) -> None:
        """`inventory` is the Ansible inventory the plan's hosts come from."""
        if inventory is None:
            raise RemediateError(
                "the ansible executor needs the Nginx inventory: set nginx.inventory in the policy"
            )
        self._inventory = inventory
        self._progress = progress
        self._hosts: set[str] | None = None

    def _check_hosts(self, changes: Sequence[Change]) -> None:
        """Refuse changes to hosts the inventory does not have, naming them (Ansible would only
        say it found no hosts to target, and read a name such as `all` or `web*` as a pattern)."""
        if self._hosts is None:
            self._hosts = inventory_hosts(self._inventory)
        unknown = sorted({_host(change) for change in changes} - self._hosts)
        if unknown:
            raise RemediateError(
                f"{', '.join(unknown)}: not a host of the inventory {self._inventory}; "
                "nothing was applied"
            )

    def fingerprints(self, changes: Sequence[Change]) -> dict[str, str | None]:
        """Re-collect the affected hosts; every change of a host shares its tree's fingerprint."""
        trees = self._trees(changes)
        result: dict[str, str | None] = {}
        for change in changes:
            files = trees.get(_host(change))
            present = files is not None and _path(change) in files
            result[change.resource] = tree_fingerprint(files) if files and present else None
        return result

    def current(self, changes: Sequence[Change]) -> dict[tuple[str, str], object]:
        """Each changed file's whole text as it is now; None when the host no longer has it."""
        trees = self._trees(changes)
        return {
            (change.resource, change.attribute): trees.get(_host(change), {}).get(_path(change))
            for change in changes
        }

    def _trees(self, changes: Sequence[Change]) -> dict[str, dict[str, str]]:
        """The config tree of every host `changes` touch, collected now: {host: {path: text}}."""
        self._check_hosts(changes)
        hosts = sorted({_host(change) for change in changes})
        return {
            config.host: config.files for config in collect(self._inventory, self._progress, hosts)
        }

    def apply(self, changes: Sequence[Change], dry_run: bool = False) -> list[Outcome]:
        self._check_hosts(changes)
        by_host: dict[str, list[Change]] = defaultdict(list)
        for change in changes:
            by_host[_host(change)].append(change)
        with tempfile.TemporaryDirectory(prefix="remediate-nginx-") as tmp:
            nginx_changes: dict[str, list[dict[str, str]]] = {}
            for host, group in by_host.items():
                entries = []
                for index, change in enumerate(group):
                    src = Path(tmp) / f"{len(nginx_changes)}-{index}.conf"
                    src.write_bytes(str(change.after).encode("utf-8"))
                    entries.append(
                        {
                            "path": _path(change),
                            "src": str(src),
                            "checksum": sha256_text(str(change.before)),
                        }
                    )
                nginx_changes[host] = entries
            run = run_playbook(
                APPLY_PLAYBOOK,
                self._inventory,
                self._progress,
                extravars={"nginx_changes": nginx_changes},
                limit=sorted(by_host),
                check=dry_run,
            )
        outcomes: list[Outcome] = []
        for host, group in by_host.items():
            outcomes.extend(self._host_outcomes(host, group, run, dry_run))
        return outcomes

    def _host_outcomes(
        self, host: str, group: list[Change], run: PlaybookRun, dry_run: bool
    ) -> list[Outcome]:
        key = f"nginx {host}"
        if host in run.failures:
            self._progress.done(key, "failed")
            return [Outcome(change, Status.FAILED, run.failures[host]) for change in group]
        if host not in run.hosts:
            return [
                Outcome(change, Status.FAILED, f"{host}: not a host of {self._inventory}")
                for change in group
            ]
        if dry_run:
            self._progress.done(key, "checked (dry run)")
            return [
                Outcome(change, Status.DRY_RUN, f"would write {_path(change)}") for change in group
            ]
        readback = {
            str(item["item"]["path"]): item.get("stat", {}).get("checksum")
            for item in run.task_results(host, READBACK_TASK)
        }
        outcomes = []
        for change in group:
            path = _path(change)
            observed = readback.get(path)
            if observed == sha256_text(str(change.after)):
                outcomes.append(Outcome(change, Status.APPLIED, observed=observed))
            else:
                outcomes.append(
                    Outcome(
                        change,
                        Status.FAILED,
                        f"{path} written, but reads back with sha256 {observed}",
                        observed=observed,
                    )
                )
        self._progress.done(key, "written, validated and reloaded")
        return outcomes


def _host(change: Change) -> str:
    return require(change.target, HostFile).host


def _path(change: Change) -> str:
    return require(change.target, HostFile).path
