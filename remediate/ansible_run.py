"""One playbook run through ansible-runner, and what each host reported in it.

This module needs only the standard library, ansible-runner and remediate's child guard, so that
the `remediate` command can start a run before it imports anything else (`headstart`): a run
started ahead is adopted by the first `run_playbook` that asks for exactly that run, and stopped
by any other (or at exit).

Results come from ansible-runner's event stream: the `ansible_facts` a named task set on a host,
the per-item results of a named task, and for each host that failed the reason in one line (the
`stderr` of a failed command, such as nginx's own `[emerg] ... in FILE:LINE`, or the task's
message), so callers can name the host and say why.
"""

from __future__ import annotations

import atexit
import functools
import json
import os
import re
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

from remediate import childguard
from remediate.errors import RemediateError
from remediate.progress import Progress

FORKS = 20
TIMEOUT_SECONDS = 900
# How often a run on a thread of its own checks whether it was stopped (ansible-runner's
# pexpect_timeout, 5 s by default): a run nobody adopts must not outlive the command by seconds.
_POLL_SECONDS = 0.05
_LAUNCH_POLL_SECONDS = 0.002
# nginx's log prefix on stderr: "2026/01/02 03:04:05 [emerg] 123#123: "
_NGINX_LOG_PREFIX = re.compile(r"\d{4}/\d\d/\d\d \d\d:\d\d:\d\d (\[\w+\]) \d+#\d+: ")


EarlyReader = Callable[[str, Mapping[str, Any]], object]
"""Reads one host's result of a task (host, result) as soon as it arrives (`run_playbook`)."""


@dataclass
class PlaybookRun:
    """What one playbook run reported, host by host."""

    facts: dict[str, dict[str, Any]] = field(default_factory=dict)
    results: dict[tuple[str, str], list[dict[str, Any]]] = field(default_factory=dict)
    failures: dict[str, str] = field(default_factory=dict)
    hosts: set[str] = field(default_factory=set)
    plays: dict[str, PlaybookRun] = field(default_factory=dict)
    """The same, play by play (by play name)."""
    early: dict[tuple[str, str], object] = field(default_factory=dict)
    """{(host, task): what the run's `early` reader made of that result as it arrived}."""

    def task_results(self, host: str, task: str) -> list[dict[str, Any]]:
        """The results of `task` on `host`: one per loop item, or the single result."""
        return self.results.get((host, task), [])


def one_line(text: str) -> str:
    """Multi-line tool output (nginx's, ssh's) as one readable line, without log timestamps."""
    text = _NGINX_LOG_PREFIX.sub(r"nginx: \1 ", text)
    text = text.removeprefix("Task failed: ")
    return "; ".join(line.strip() for line in text.splitlines() if line.strip())


def _reason(res: Mapping[str, Any]) -> str:
    """The most useful single explanation in a failed task's result."""
    for key in ("stderr", "module_stderr", "msg"):
        value = res.get(key)
        if isinstance(value, str) and value.strip():
            return one_line(value)
    return "failed without a message"


class Run:
    """A playbook run: made (its inputs checked), executed on the caller's thread or one of its
    own, attached to the caller's progress and early readers (before it starts or while it goes
    on: what arrived before is passed on then), and finished."""

    def __init__(
        self,
        resource: Traversable,
        inventory: Path,
        *,
        extravars: Mapping[str, Any] | None = None,
        limit: list[str] | None = None,
        check: bool = False,
        forks: int = FORKS,
    ) -> None:
        if not resource.is_file():
            raise RemediateError(
                f"playbook {resource.name} is missing from the installed remediate package"
            )
        inventory = inventory.resolve()
        if not inventory.exists():
            raise RemediateError(f"{inventory}: Ansible inventory not found")
        program = shutil.which("ansible-playbook", path=tool_path())
        if program is None:
            raise RemediateError(
                "ansible-playbook not found: install remediate with its Nginx extra"
            )
        self._program = Path(program)
        self._resource = resource
        self._inventory = inventory
        self._extravars = dict(extravars or {})
        self._limit = list(limit or [])
        self._check = check
        self._forks = forks
        self.key = (
            str(resource),
            str(inventory),
            json.dumps(self._extravars, sort_keys=True, default=str),
            tuple(self._limit),
            check,
            forks,
        )
        """Two runs with the same key run the same playbook the same way."""
        self.outcome = PlaybookRun()
        self._lock = threading.Lock()
        # Set by `attach`; until then what the caller is to be told waits in `_started` (the
        # task each host last started) and `_arrived` (the results its early readers will read).
        self._progress: Progress | None = None
        self._label = ""
        self._early: Mapping[str, EarlyReader] = {}
        self._started: dict[str, str] = {}
        self._arrived: list[tuple[PlaybookRun, str, str, dict[str, Any]]] = []
        self._readers = ThreadPoolExecutor(max_workers=1, thread_name_prefix="remediate-early")
        self._reading: list[tuple[PlaybookRun, str, str, Future[object]]] = []
        self._stop = threading.Event()
        self._launch_marker: Path | None = None
        self._thread: threading.Thread | None = None
        self._failure: str | None = None
        self._error: Exception | None = None

    def attach(self, progress: Progress, label: str, early: Mapping[str, EarlyReader]) -> None:
        """Report to `progress` (each host under `label`), and hand each host's result of a task
        of `early` to its reader: those that arrived already at once, the others as they come."""
        with self._lock:
            self._progress, self._label, self._early = progress, label, early
            for host, task in self._started.items():
                progress.update(f"{label} {host}", task)
            for play, host, task, res in self._arrived:
                self._read(play, host, task, res)
            self._started.clear()
            self._arrived.clear()

    def _read(self, play: PlaybookRun, host: str, task: str, res: dict[str, Any]) -> None:
        reader = self._early.get(task)
        if reader is not None:
            self._reading.append((play, host, task, self._readers.submit(reader, host, res)))

    def _on_event(self, event: dict[str, Any]) -> bool:
        """Keep what the run needs of an event. Returns False: ansible-runner then does not
        also write each event, collected files and all, to the private directory."""
        data = event.get("event_data") or {}
        host = data.get("host")
        kind = event.get("event", "")
        if not host:
            return False
        outcome = self.outcome
        play = outcome.plays.setdefault(str(data.get("play", "")), PlaybookRun())
        task = str(data.get("task", ""))
        res = data.get("res") or {}
        for run in (outcome, play):
            run.hosts.add(host)
            if kind == "runner_on_ok":
                facts = res.get("ansible_facts") or {}
                run.facts.setdefault(host, {}).update(facts)
                run.results[(host, task)] = list(res.get("results") or [res])
            elif kind in ("runner_on_failed", "runner_on_unreachable") and not data.get(
                "ignore_errors"
            ):
                # A loop's own message says only "All items completed": the reason is the item's.
                items = res.get("results") or []
                failed = [i for i in items if i.get("failed") or i.get("unreachable")]
                reason = _reason(failed[0] if failed else res)
                if kind == "runner_on_unreachable":
                    reason = f"unreachable: {reason}"
                run.failures[host] = reason
        with self._lock:
            if kind == "runner_on_start":
                if self._progress is not None:
                    self._progress.update(f"{self._label} {host}", task)
                else:
                    self._started[host] = task
            if kind == "runner_on_ok":
                if self._progress is not None:
                    self._read(play, host, task, res)
                else:
                    self._arrived.append((play, host, task, res))
        return False

    def execute(self) -> None:
        """Run the playbook to its end on this thread. Started ahead, a run can be stopped
        (`stop`); on the main thread ansible-runner turns SIGINT and SIGTERM into a stop of its
        own."""
        import ansible_runner

        ahead = self._thread is not None
        with (
            tempfile.TemporaryDirectory(prefix="remediate-ansible-") as private,
            resources.as_file(self._resource) as playbook,
        ):
            # ansible-playbook (and the workers it forks) dies with remediate, never writing
            # on. The kernel's parent-death signal follows the thread that started it, and
            # this thread waits for the run's end.
            # Only a run started ahead has a caller waiting for Ansible's process to run.
            self._launch_marker = Path(private) / "started" if ahead else None
            guard = childguard.wrapper(
                Path(private) / "guard", self._program, self._launch_marker
            ).parent
            runner = ansible_runner.run(
                private_data_dir=private,
                playbook=str(playbook),
                inventory=str(self._inventory),
                extravars=self._extravars,
                limit=",".join(self._limit) if self._limit else None,
                cmdline="--check --diff" if self._check else None,
                forks=self._forks,
                timeout=TIMEOUT_SECONDS,
                quiet=True,
                suppress_env_files=True,
                event_handler=self._on_event,
                cancel_callback=self._stop.is_set if ahead else None,
                settings={"pexpect_timeout": _POLL_SECONDS} if ahead else None,
                # ansible-runner empties any event result over MAX_EVENT_RES characters
                # (700,000 by default): a large tree's collected files would vanish and the
                # host plan nothing.
                envvars={
                    "PATH": f"{guard}:{tool_path()}",
                    "ANSIBLE_NOCOLOR": "1",
                    # Pipelining sends each module over the connection's stdin instead of
                    # copying it to a remote temp file first: one round trip a task instead
                    # of several.
                    "ANSIBLE_PIPELINING": "1",
                    "MAX_EVENT_RES": str(2**62),
                },
            )
            # A non-zero exit without a failed host is Ansible's own error (inventory,
            # syntax...).
            if runner.status not in ("successful", "failed") or (
                runner.rc != 0 and not self.outcome.failures
            ):
                tail = _tail(runner.stdout.read() if runner.stdout else "")
                self._failure = (
                    f"ansible-playbook {self._resource.name} {runner.status} "
                    f"(rc {runner.rc}): {tail}"
                )

    def execute_ahead(self) -> None:
        """Execute on a thread of its own (the process does not wait for it at exit), returning
        once Ansible's process runs. Until then the caller sleeps, leaving the interpreter to
        the thread: the caller's own work (imports that build pydantic models in native code,
        which keeps the interpreter for long stretches) would delay Ansible's start by as much."""
        self._thread = threading.Thread(
            target=self._execute_ahead, name="remediate-ahead", daemon=True
        )
        self._thread.start()
        while self._thread.is_alive() and not (
            self._launch_marker is not None and self._launch_marker.exists()
        ):
            time.sleep(_LAUNCH_POLL_SECONDS)

    def _execute_ahead(self) -> None:
        try:
            self.execute()
        except Exception as exc:  # raised again on the thread that finishes the run
            self._error = exc

    def finish(self) -> PlaybookRun:
        """Wait for the run's end (an interrupt stops it) and its readers; what it reported."""
        try:
            if self._thread is not None:
                self._thread.join()
        except BaseException:
            self.stop()
            raise
        with self._readers:
            if self._error is not None:
                raise self._error
            if self._failure is not None:
                raise RemediateError(self._failure)
            for play, host, task, future in self._reading:
                try:
                    value = future.result()
                except RemediateError:
                    continue
                for run in (self.outcome, play):
                    run.early[(host, task)] = value
        return self.outcome

    @property
    def stopped(self) -> bool:
        """Whether the run was stopped before its end."""
        return self._stop.is_set()

    def stop(self) -> None:
        """Stop a run executing on a thread of its own and wait for its end."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self._readers.shutdown(cancel_futures=True)


@dataclass
class _Waiting:
    """The run started ahead, until a `run_playbook` adopts it or stops it."""

    run: Run | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)


_AHEAD = _Waiting()


def start_ahead(resource: Traversable, inventory: Path, *, forks: int = FORKS) -> Run:
    """Start `resource` on the hosts of `inventory` now, on a thread of its own, for a later
    `run_playbook` asking for the same run to adopt; any other run, and the process's exit, stop
    it. Only for read-only playbooks: nothing may have been asked of it yet."""
    run = Run(resource, inventory, forks=forks)
    with _AHEAD.lock:
        if _AHEAD.run is not None:
            raise RemediateError("a playbook run was already started ahead")
        _AHEAD.run = run
    _stop_ahead_at_exit()
    run.execute_ahead()
    return run


@functools.cache
def _stop_ahead_at_exit() -> None:
    atexit.register(stop_ahead)


def stop_ahead() -> None:
    """Stop the run started ahead, if no `run_playbook` adopted it."""
    _take_ahead(None)


def _take_ahead(key: tuple[object, ...] | None) -> Run | None:
    """The run started ahead when its key is `key`; one with another key is stopped."""
    with _AHEAD.lock:
        run, _AHEAD.run = _AHEAD.run, None
    if run is None or run.key == key:
        return run
    run.stop()
    return None


def run_playbook(
    resource: Traversable,
    inventory: Path,
    progress: Progress,
    *,
    extravars: Mapping[str, Any] | None = None,
    limit: list[str] | None = None,
    check: bool = False,
    label: str,
    forks: int = FORKS,
    early: Mapping[str, EarlyReader] | None = None,
) -> PlaybookRun:
    """Run the playbook `resource` (a file of an installed package) against `inventory`; hosts
    run in parallel (forks). `label` prefixes each host in progress lines (`nginx web1`).

    `early` maps a task name to a reader called with each host's result of that task as soon as
    it arrives, on a thread of its own, while Ansible goes on with the other hosts and with its
    own shutdown (and ansible-runner goes on reading its events): what it returns is kept in
    `PlaybookRun.early`. A reader that raises RemediateError keeps nothing; the caller meets the
    same error where it reads the result itself.

    A run of the same playbook on the same inventory with the same settings started ahead
    (`start_ahead`) is adopted instead of starting another."""
    run = Run(resource, inventory, extravars=extravars, limit=limit, check=check, forks=forks)
    ahead = _take_ahead(run.key)
    if ahead is not None:
        run = ahead
    run.attach(progress, label, early or {})
    if ahead is None:
        run.execute()
    return run.finish()


def tool_path() -> str:
    """PATH with this Python's bin directory first, where the ansible-* commands are installed."""
    return f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}"


def _tail(text: str) -> str:
    """The last meaningful line of ansible-playbook's output (usually the error)."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    errors = [line for line in lines if "ERROR" in line]
    return (errors or lines or ["no output"])[-1]
