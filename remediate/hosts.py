"""Ansible host machinery shared by the host-based providers (Nginx, HAProxy): the collection of
their hosts and the executor that writes their files, over the playbook runs of `ansible_run`.

Discovery reads each host once: during `engine.discover`, the collect playbooks of every selected
host-based provider whose hosts are in the same inventory run as the plays of one playbook run
(`collection`), and each provider parses its own play's part.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import json
import os
import shutil
import subprocess
import tarfile
import tempfile
from abc import ABC, abstractmethod
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, runtime_checkable

from remediate.ansible_run import (
    FORKS,
    TIMEOUT_SECONDS,
    EarlyReader,
    PlaybookRun,
    run_playbook,
    tool_path,
)
from remediate.errors import DiscoveryError, RemediateError
from remediate.executors import NoSteps, Outcome, Status, Steps
from remediate.model import Change
from remediate.progress import Progress
from remediate.provider import current_discovery
from remediate.targets import HostFile, require

if TYPE_CHECKING:
    from remediate.policy import Policy


def sha256_text(text: str) -> str:
    """The sha256 of a file's text as written on disk (UTF-8), as Ansible's stat reports it."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Collector:
    """What a host-based provider reads from its hosts: `playbook`, whose one play is named
    `play`, run on the hosts of `inventory`; `early` reads results as they arrive
    (`run_playbook`)."""

    provider: str
    playbook: Traversable
    play: str
    inventory: Path
    forks: int = FORKS
    early: Mapping[str, EarlyReader] = field(default_factory=dict)


@runtime_checkable
class Collects(Protocol):
    """A provider that reads hosts through a collect playbook (and so can share a run)."""

    def collector(self, policy: Policy) -> Collector | None:
        """Its collector under `policy`; None when the policy names no inventory for it."""


_SHARED = "hosts.collection"


def collection(own: Collector, policy: Policy, progress: Progress) -> PlaybookRun:
    """`own`'s collect playbook run on every host of its inventory, as its play's results.

    During `engine.discover`, the first host-based provider to collect runs the collect plays of
    every selected provider (`Collects`) with the same inventory in one playbook run, and the
    others find their part of it: a host running both Nginx and HAProxy is visited once."""
    scope = current_discovery()
    if scope is None:
        return _alone(own, progress)
    key = (_SHARED, own.provider, own.inventory.resolve())
    if key not in scope.shared:
        together = _sharing(own, policy, scope.selected)
        run = _together(together, progress) if len(together) > 1 else _alone(own, progress)
        for collector in together:
            shared = run if len(together) == 1 else run.plays.get(collector.play, PlaybookRun())
            scope.shared[(_SHARED, collector.provider, own.inventory.resolve())] = shared
    found: PlaybookRun = scope.shared[key]
    return found


def _alone(own: Collector, progress: Progress) -> PlaybookRun:
    return run_playbook(
        own.playbook,
        own.inventory,
        progress,
        label=own.provider,
        forks=own.forks,
        early=own.early,
    )


def _sharing(own: Collector, policy: Policy, selected: Sequence[str]) -> list[Collector]:
    """`own` and the collectors of the other selected providers that read the same inventory."""
    from remediate import registry

    together = [own]
    for name in selected:
        provider = registry.get(name)
        if name == own.provider or not isinstance(provider, Collects):
            continue
        other = provider.collector(policy)
        if other is not None and other.inventory.resolve() == own.inventory.resolve():
            together.append(other)
    return together


# Between two collect plays: a host one play failed on (no nginx there, say) still takes part in
# the next, as it would in a run of its own.
_CLEAR_ERRORS = {
    "name": "Let every host take part in the next collection",
    "hosts": "all",
    "gather_facts": False,
    "tasks": [
        {"name": "Forget the previous play's failures", "ansible.builtin.meta": "clear_host_errors"}
    ],
}


def _together(collectors: Sequence[Collector], progress: Progress) -> PlaybookRun:
    """One playbook run of every collector's play, in turn, on the hosts of their inventory."""
    label = " & ".join(c.provider for c in collectors)
    with ExitStack() as stack, tempfile.TemporaryDirectory(prefix="remediate-collect-") as tmp:
        plays: list[dict[str, Any]] = []
        for collector in collectors:
            if plays:
                plays.append(_CLEAR_ERRORS)
            path = stack.enter_context(resources.as_file(collector.playbook))
            plays.append({"ansible.builtin.import_playbook": str(path)})
        playbook = Path(tmp) / "collect-all.yml"
        playbook.write_text(json.dumps(plays, indent=2), encoding="utf-8")
        run = run_playbook(
            playbook,
            collectors[0].inventory,
            progress,
            label=label,
            forks=max(c.forks for c in collectors),
            early={task: read for c in collectors for task, read in c.early.items()},
        )
    for host in sorted(run.hosts):
        progress.done(f"{label} {host}", "collected")
    return run


def inventory_hosts(inventory: Path) -> set[str]:
    """The name of every host of `inventory`, as `ansible-inventory --list` reads it (none when
    Ansible cannot parse it)."""
    command = shutil.which("ansible-inventory", path=tool_path())
    if command is None:
        raise RemediateError("ansible-inventory not found: install remediate[nginx] (ansible-core)")
    try:
        listed = subprocess.run(
            [command, "-i", str(inventory.resolve()), "--list"],
            capture_output=True,
            text=True,
            timeout=TIMEOUT_SECONDS,
            env={**os.environ, "PATH": tool_path(), "ANSIBLE_NOCOLOR": "1"},
            check=False,
        )
        listing = json.loads(listed.stdout)
    except subprocess.TimeoutExpired:
        raise RemediateError(f"{inventory}: ansible-inventory did not answer") from None
    except ValueError:
        return set()
    hosts = (
        set(listing.get("_meta", {}).get("hostvars", {})) if isinstance(listing, dict) else set()
    )
    for group in listing.values() if isinstance(listing, dict) else ():
        if isinstance(group, dict):
            hosts.update(group.get("hosts", []))
    return hosts


# The task of both apply playbooks whose results carry each written file's sha256.
READBACK_TASK = "Read back the written files"


def file_target(change: Change) -> HostFile:
    """The host file a host-based provider's change writes."""
    return require(change.target, HostFile)


def file_outcomes(
    run: PlaybookRun,
    host: str,
    group: Sequence[Change],
    *,
    key: str,
    inventory: Path,
    progress: Progress,
    dry_run: bool,
    written_path: Callable[[Change], str],
) -> list[Outcome]:
    """The outcome of each file change of `host` after an apply playbook's run: failed with the
    host's own failure, applied when the file written (`written_path`) reads back with the sha256
    of the planned text, failed saying what it reads otherwise."""
    if host in run.failures:
        progress.done(key, "failed")
        return [Outcome(change, Status.FAILED, run.failures[host]) for change in group]
    if host not in run.hosts:
        return [
            Outcome(change, Status.FAILED, f"{host}: not a host of {inventory}") for change in group
        ]
    if dry_run:
        progress.done(key, "checked (dry run)")
        return [
            Outcome(change, Status.DRY_RUN, f"would write {file_target(change).path}")
            for change in group
        ]
    readback = {
        str(item["item"]["path"]): item.get("stat", {}).get("checksum")
        for item in run.task_results(host, READBACK_TASK)
    }
    outcomes = []
    for change in group:
        path = written_path(change)
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
    progress.done(key, "written, validated and reloaded")
    return outcomes


def unpack_archive(host: str, encoded: str) -> dict[str, str]:
    """The files of the base64 tar archive (gzipped or not) a collect playbook reports:
    {absolute path: text}."""
    files: dict[str, str] = {}
    try:
        raw = io.BytesIO(base64.b64decode(encoded, validate=True))
        with tarfile.open(fileobj=raw) as archive:
            for member in archive:
                handle = archive.extractfile(member) if member.isfile() else None
                if handle is None:
                    continue
                path = "/" + member.name.lstrip("/")
                try:
                    files[path] = handle.read().decode("utf-8")
                except UnicodeDecodeError:
                    raise DiscoveryError(f"{host}:{path}: not a UTF-8 text file") from None
    except (binascii.Error, tarfile.TarError):
        raise DiscoveryError(f"{host}: the collected configuration archive is unreadable") from None
    return files


class HostFileExecutor(ABC):
    """The body every host-file executor shares (Nginx's, HAProxy's): each change replaces one
    file's whole text on one host of an Ansible inventory, written by the provider's apply
    playbook.

    Per host the playbook refuses files that moved since planning, backs every file up, writes
    them atomically, validates the whole configuration and reloads; on any failure it restores
    every file of that host and fails with the server's own output. Hosts run in parallel (one
    playbook run, one unit for the journal) and one failing host does not stop the others. A dry
    run is Ansible's check and diff mode. A provider says only what differs: its playbook and the
    variable carrying the changes, how it collects and fingerprints a host's files, and which
    file a change writes."""

    name: str
    label: ClassVar[str]
    """Prefixes each host in progress lines (`nginx web1`)."""
    changes_var: ClassVar[str]
    """The apply playbook's extra variable: {host: [{path, src, checksum, ...}]}."""

    def __init__(self, inventory: Path, progress: Progress, forks: int = FORKS) -> None:
        self._inventory = inventory
        self._progress = progress
        self._forks = forks

    @property
    @abstractmethod
    def apply_playbook(self) -> Traversable:
        """The provider's apply playbook."""

    @abstractmethod
    def collect(self, hosts: list[str]) -> dict[str, dict[str, str]]:
        """The files of each of `hosts`, collected now: {host: {path: text}}."""

    @abstractmethod
    def files_fingerprint(self, files: dict[str, str]) -> str:
        """The fingerprint of a host's whole configuration."""

    def written_path(self, change: Change) -> str:
        """The file a change writes (Nginx: the file behind a symbolic link)."""
        return file_target(change).path

    def entry(self, change: Change) -> dict[str, str]:
        """What the apply playbook needs of a change besides its new text and checksum."""
        return {"path": self.written_path(change)}

    def check_hosts(self, changes: Sequence[Change]) -> None:
        """Refuse changes the executor cannot place, before anything runs (none by default)."""
        return None

    def fingerprints(self, changes: Sequence[Change]) -> dict[str, str | None]:
        """Re-collect the affected hosts; every change of a host shares its files' fingerprint."""
        trees = self._trees(changes)
        result: dict[str, str | None] = {}
        for change in changes:
            files = trees.get(_host(change))
            present = files is not None and _file(change) in files
            result[change.resource] = self.files_fingerprint(files) if files and present else None
        return result

    def current(self, changes: Sequence[Change]) -> dict[tuple[str, str], object]:
        """Each changed file's whole text as it is now; None when the host no longer has it."""
        trees = self._trees(changes)
        return {
            (change.resource, change.attribute): trees.get(_host(change), {}).get(_file(change))
            for change in changes
        }

    def _trees(self, changes: Sequence[Change]) -> dict[str, dict[str, str]]:
        self.check_hosts(changes)
        return self.collect(sorted({_host(change) for change in changes}))

    def apply(
        self, changes: Sequence[Change], dry_run: bool = False, steps: Steps | None = None
    ) -> list[Outcome]:
        self.check_hosts(changes)
        steps = steps or NoSteps()
        by_host: dict[str, list[Change]] = defaultdict(list)
        for change in changes:
            by_host[_host(change)].append(change)
        with tempfile.TemporaryDirectory(prefix=f"remediate-{self.label}-") as tmp:
            payload: dict[str, list[dict[str, str]]] = {}
            for host, group in by_host.items():
                entries = []
                for index, change in enumerate(group):
                    src = Path(tmp) / f"{len(payload)}-{index}.conf"
                    src.write_bytes(str(change.after).encode("utf-8"))
                    entries.append(
                        {
                            **self.entry(change),
                            "src": str(src),
                            "checksum": sha256_text(str(change.before)),
                        }
                    )
                payload[host] = entries
            # One playbook run writes every host (in parallel): one unit for the journal.
            if not dry_run:
                steps.begin(changes)
            try:
                run = run_playbook(
                    self.apply_playbook,
                    self._inventory,
                    self._progress,
                    extravars={self.changes_var: payload},
                    limit=sorted(by_host),
                    check=dry_run,
                    label=self.label,
                    forks=self._forks,
                )
            except RemediateError as exc:
                if not dry_run:
                    steps.end(changes, str(exc))
                raise
        outcomes: list[Outcome] = []
        for host, group in by_host.items():
            host_outcomes = file_outcomes(
                run,
                host,
                group,
                key=f"{self.label} {host}",
                inventory=self._inventory,
                progress=self._progress,
                dry_run=dry_run,
                written_path=self.written_path,
            )
            if not dry_run:
                failure = next(
                    (o.message for o in host_outcomes if o.status is Status.FAILED), None
                )
                steps.end(group, failure)
            outcomes.extend(host_outcomes)
        return outcomes

    def finish(self, changes: Sequence[Change]) -> list[Outcome]:
        """Finish files an interrupted apply may have left written but not in effect: write each
        change's `after` over what the file holds now, validate the whole configuration and
        reload; on a host where that fails, put each file's `before` back, validate and reload
        that."""
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


def _host(change: Change) -> str:
    return file_target(change).host


def _file(change: Change) -> str:
    return file_target(change).path
