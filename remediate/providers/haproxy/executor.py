"""The haproxy-ansible executor: HAProxy config files written by `playbooks/apply.yml` through the
Ansible machinery (`remediate.hosts`).

Each change replaces one file's whole text (`resource` is `host:path`). Per host the playbook
refuses files that moved since planning, backs every file up, writes them atomically with their
owner and mode, validates the whole set with `haproxy -c` and reloads (the master-worker reload:
old workers drain their connections); on any failure it restores every file of that host byte for
byte and fails with HAProxy's output, and HAProxy keeps serving the old configuration. Hosts run in
parallel and one failing host does not stop the others. A dry run is Ansible's check and diff mode.
"""

from __future__ import annotations

import tempfile
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

from remediate.errors import RemediateError
from remediate.executors import NoSteps, Outcome, Status, Steps
from remediate.hosts import PlaybookRun, file_outcomes, file_target, run_playbook, sha256_text
from remediate.model import Change
from remediate.progress import Progress
from remediate.providers.haproxy.host import LABEL, PLAYBOOKS, collect, files_fingerprint

APPLY_PLAYBOOK = PLAYBOOKS / "apply.yml"


class AnsibleExecutor:
    name = "haproxy-ansible"

    def __init__(self, inventory: Path | None, progress: Progress) -> None:
        """`inventory` is the Ansible inventory the plan's hosts come from."""
        if inventory is None:
            raise RemediateError(
                "the ansible executor needs the HAProxy inventory: set haproxy.inventory in the "
                "policy"
            )
        self._inventory = inventory
        self._progress = progress

    def fingerprints(self, changes: Sequence[Change]) -> dict[str, str | None]:
        """Re-collect the affected hosts; every change of a host shares its files' fingerprint."""
        trees = self._files(changes)
        result: dict[str, str | None] = {}
        for change in changes:
            files = trees.get(_host(change))
            present = files is not None and _path(change) in files
            result[change.resource] = files_fingerprint(files) if files and present else None
        return result

    def current(self, changes: Sequence[Change]) -> dict[tuple[str, str], object]:
        """Each changed file's whole text as it is now; None when the host no longer has it."""
        trees = self._files(changes)
        return {
            (change.resource, change.attribute): trees.get(_host(change), {}).get(_path(change))
            for change in changes
        }

    def _files(self, changes: Sequence[Change]) -> dict[str, dict[str, str]]:
        """The files of every host `changes` touch, collected now: {host: {path: text}}."""
        hosts = sorted({_host(change) for change in changes})
        collected = collect(self._inventory, self._progress, hosts)
        return {config.host: config.files for config in collected.hosts}

    def apply(
        self, changes: Sequence[Change], dry_run: bool = False, steps: Steps | None = None
    ) -> list[Outcome]:
        steps = steps or NoSteps()
        by_host: dict[str, list[Change]] = defaultdict(list)
        for change in changes:
            by_host[_host(change)].append(change)
        with tempfile.TemporaryDirectory(prefix="remediate-haproxy-") as tmp:
            haproxy_changes: dict[str, list[dict[str, str]]] = {}
            for host, group in by_host.items():
                entries = []
                for index, change in enumerate(group):
                    src = Path(tmp) / f"{len(haproxy_changes)}-{index}.cfg"
                    src.write_bytes(str(change.after).encode("utf-8"))
                    entries.append(
                        {
                            "path": _path(change),
                            "src": str(src),
                            "checksum": sha256_text(str(change.before)),
                        }
                    )
                haproxy_changes[host] = entries
            # One playbook run writes every host (in parallel): one unit for the journal.
            if not dry_run:
                steps.begin(changes)
            try:
                run = run_playbook(
                    APPLY_PLAYBOOK,
                    self._inventory,
                    self._progress,
                    extravars={"haproxy_changes": haproxy_changes},
                    limit=sorted(by_host),
                    check=dry_run,
                    label=LABEL,
                )
            except RemediateError as exc:
                if not dry_run:
                    steps.end(changes, str(exc))
                raise
        outcomes: list[Outcome] = []
        for host, group in by_host.items():
            host_outcomes = self._host_outcomes(host, group, run, dry_run)
            if not dry_run:
                failure = next(
                    (o.message for o in host_outcomes if o.status is Status.FAILED), None
                )
                steps.end(group, failure)
            outcomes.extend(host_outcomes)
        return outcomes

    def _host_outcomes(
        self, host: str, group: list[Change], run: PlaybookRun, dry_run: bool
    ) -> list[Outcome]:
        return file_outcomes(
            run,
            host,
            group,
            key=f"{LABEL} {host}",
            inventory=self._inventory,
            progress=self._progress,
            dry_run=dry_run,
            written_path=_path,
        )


def _host(change: Change) -> str:
    return file_target(change).host


def _path(change: Change) -> str:
    return file_target(change).path
