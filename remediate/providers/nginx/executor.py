"""The ansible executor: Nginx config files written by `playbooks/apply.yml` through ansible-runner.

Each change replaces one file's whole text (`resource` is `host:path`, the path nginx reads it by;
the target's `real_path` is the file behind a symbolic link, which is what gets written, so the
link stays a link). Per host the playbook
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
from remediate.executors import NoSteps, Outcome, Status, Steps
from remediate.hosts import file_outcomes, file_target, sha256_text
from remediate.model import Change
from remediate.progress import Progress
from remediate.providers.nginx.host import collect, tree_fingerprint
from remediate.providers.nginx.runner import FORKS, PlaybookRun, inventory_hosts, run_playbook

APPLY_PLAYBOOK = "apply.yml"


class AnsibleExecutor:
    name = "ansible"

    def __init__(self, inventory: Path | None, progress: Progress, forks: int = FORKS) -> None:
        """`inventory` is the Ansible inventory the plan's hosts come from; `forks` how many of
        its hosts Ansible works on at once."""
        if inventory is None:
            raise RemediateError(
                "the ansible executor needs the Nginx inventory: set nginx.inventory in the policy"
            )
        self._inventory = inventory
        self._progress = progress
        self._forks = forks
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
            config.host: config.files
            for config in collect(self._inventory, self._progress, hosts, self._forks)
        }

    def apply(
        self, changes: Sequence[Change], dry_run: bool = False, steps: Steps | None = None
    ) -> list[Outcome]:
        self._check_hosts(changes)
        steps = steps or NoSteps()
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
                            "path": _real_path(change),
                            "name": _path(change),
                            "src": str(src),
                            "checksum": sha256_text(str(change.before)),
                        }
                    )
                nginx_changes[host] = entries
            # One playbook run writes every host (in parallel): one unit for the journal.
            if not dry_run:
                steps.begin(changes)
            try:
                run = run_playbook(
                    APPLY_PLAYBOOK,
                    self._inventory,
                    self._progress,
                    extravars={"nginx_changes": nginx_changes},
                    limit=sorted(by_host),
                    check=dry_run,
                    forks=self._forks,
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

    def finish(self, changes: Sequence[Change]) -> list[Outcome]:
        """Finish files an interrupted apply may have left written but not in effect: write each
        change's `after` over what the file holds now, validate the whole tree and reload; on a
        host where that fails, put each file's `before` back, validate and reload that."""
        now = self.current(changes)
        outcomes: list[Outcome] = []
        forward: list[Change] = []
        for change in changes:
            text = now.get((change.resource, change.attribute))
            if text is None:
                outcomes.append(Outcome(change, Status.FAILED, f"{change.resource}: file is gone"))
            else:
                forward.append(change.model_copy(update={"before": text}))
        if not forward:
            return outcomes
        failed: dict[str, str] = {}
        for result in self.apply(forward):
            if result.status is Status.FAILED:
                failed.setdefault(_host(result.change), result.message)
        originals = {(c.resource, c.attribute): c for c in changes}
        undo = [c for c in forward if _host(c) in failed]
        restored: dict[str, str] = {}
        if undo:
            again = self.current(undo)
            backward = [
                c.model_copy(
                    update={
                        "before": again.get((c.resource, c.attribute)),
                        "after": originals[(c.resource, c.attribute)].before,
                    }
                )
                for c in undo
            ]
            for result in self.apply(backward):
                host = _host(result.change)
                if result.status is Status.FAILED:
                    restored[host] = f"restoring the files failed too: {result.message}"
                else:
                    restored.setdefault(host, "the files' before-state was restored and reloaded")
        for change in forward:
            original = originals[(change.resource, change.attribute)]
            host = _host(change)
            if host in failed:
                outcomes.append(
                    Outcome(original, Status.FAILED, f"{failed[host]}; {restored.get(host, '')}")
                )
            else:
                outcomes.append(
                    Outcome(original, Status.APPLIED, "finished: validated and reloaded")
                )
        return outcomes

    def _host_outcomes(
        self, host: str, group: list[Change], run: PlaybookRun, dry_run: bool
    ) -> list[Outcome]:
        return file_outcomes(
            run,
            host,
            group,
            key=f"nginx {host}",
            inventory=self._inventory,
            progress=self._progress,
            dry_run=dry_run,
            written_path=_real_path,
        )


def _host(change: Change) -> str:
    return file_target(change).host


def _path(change: Change) -> str:
    return file_target(change).path


def _real_path(change: Change) -> str:
    """The file to write: the target of a symbolic link, else the path itself."""
    target = file_target(change)
    return target.real_path or target.path
