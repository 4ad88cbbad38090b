"""The Ansible machinery every host-based provider shares (`remediate.ansible_run.run_playbook`),
through a real ansible-playbook run of two plays on two local hosts: what each host reported is
kept play by play (a shared collection reads each provider's part by its play's name), a failed
host comes with its reason in one line, and the `early` readers' values are kept for the hosts
and tasks they read, in the run and in its play; a run started ahead is adopted, or stopped."""

from __future__ import annotations

import json
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from remediate.ansible_run import PlaybookRun, Run, run_playbook, start_ahead, stop_ahead
from remediate.errors import RemediateError
from remediate.progress import Silent
from tests.nginx_env import wait_until

pytestmark = pytest.mark.contract

PLAYBOOK = [
    {
        "name": "First",
        "hosts": "all",
        "gather_facts": False,
        "tasks": [
            {
                "name": "Say hello",
                "ansible.builtin.shell": "{{ command }}",
                "changed_when": False,
            }
        ],
    },
    {
        "name": "Second",
        "hosts": "all",
        "gather_facts": False,
        "tasks": [
            {
                "name": "Remember the host",
                "ansible.builtin.set_fact": {"seen": "{{ inventory_hostname }}"},
            }
        ],
    },
]


def files(tmp_path: Path) -> tuple[Path, Path]:
    """The two-play playbook and an inventory of two local hosts: h1 says hello, h2 fails."""
    playbook = tmp_path / "two-plays.yml"
    playbook.write_text(json.dumps(PLAYBOOK), encoding="utf-8")
    inventory = tmp_path / "hosts.ini"
    local = f"ansible_connection=local ansible_python_interpreter={sys.executable}"
    inventory.write_text(
        f"h1 {local} command='echo a-h1'\nh2 {local} command='echo no such thing >&2; exit 3'\n",
        encoding="utf-8",
    )
    return playbook, inventory


def run(tmp_path: Path, early: Mapping[str, Any]) -> PlaybookRun:
    playbook, inventory = files(tmp_path)
    return run_playbook(playbook, inventory, Silent(), label="test", early=early)


def test_results_facts_and_failures_are_kept_play_by_play(tmp_path: Path) -> None:
    def shout(host: str, result: Mapping[str, Any]) -> str:
        return str(result["stdout"]).upper()

    found = run(tmp_path, {"Say hello": shout})

    first, second = found.plays["First"], found.plays["Second"]
    assert sorted(found.plays) == ["First", "Second"]
    # h2 failed in the first play, so the second one ran on h1 alone.
    assert first.hosts == {"h1", "h2"} and second.hosts == {"h1"}
    assert found.hosts == {"h1", "h2"}
    assert [r["stdout"] for r in first.task_results("h1", "Say hello")] == ["a-h1"]
    assert second.task_results("h1", "Say hello") == []
    assert second.facts == {"h1": {"seen": "h1"}}
    assert found.facts["h1"]["seen"] == "h1"
    assert first.failures == found.failures == {"h2": "no such thing"}
    assert second.failures == {}
    # The early reader read h1's result of its task; it never saw h2's failure.
    assert found.early == first.early == {("h1", "Say hello"): "A-H1"}
    assert second.early == {}


def test_an_early_reader_that_refuses_a_result_keeps_nothing(tmp_path: Path) -> None:
    def refuse(host: str, result: Mapping[str, Any]) -> str:
        raise RemediateError(f"{host}: unreadable")

    def keep(host: str, result: Mapping[str, Any]) -> str:
        return host

    found = run(tmp_path, {"Say hello": refuse, "Remember the host": keep})

    assert found.plays["First"].early == {}
    # A refusal costs only its own result: the next reader's value is kept.
    assert found.early == found.plays["Second"].early == {("h1", "Remember the host"): "h1"}
    # The result itself is still there, for the caller to read (and fail on) itself.
    assert [r["stdout"] for r in found.task_results("h1", "Say hello")] == ["a-h1"]


class Recorded:
    """Progress that keeps every line it is given."""

    def __init__(self) -> None:
        self.updates: list[tuple[str, str]] = []

    def update(self, key: str, message: str) -> None:
        self.updates.append((key, message))

    def done(self, key: str, message: str) -> None:
        return None


def shout(host: str, result: Mapping[str, Any]) -> str:
    return str(result["stdout"]).upper()


def test_a_run_started_ahead_and_adopted_reports_what_arrived_before_it_was_adopted(
    tmp_path: Path,
) -> None:
    """`run_playbook` adopts the run `start_ahead` started for the same playbook, inventory and
    settings: results, progress and early readers as if the caller had run it, even for what
    arrived while nobody was attached."""
    playbook, inventory = files(tmp_path)
    inline = run_playbook(playbook, inventory, Silent(), label="test", early={"Say hello": shout})

    started = start_ahead(playbook, inventory, forks=3)
    wait_until(lambda: "h1" in started.outcome.plays.get("Second", PlaybookRun()).facts)
    progress = Recorded()
    adopted = run_playbook(
        playbook, inventory, progress, label="test", forks=3, early={"Say hello": shout}
    )

    assert adopted is started.outcome
    assert not started.stopped
    assert (adopted.hosts, adopted.facts, adopted.failures) == (
        inline.hosts,
        inline.facts,
        inline.failures,
    )
    assert sorted(adopted.results) == sorted(inline.results)
    assert [r["stdout"] for r in adopted.task_results("h1", "Say hello")] == ["a-h1"]
    assert adopted.early == inline.early == {("h1", "Say hello"): "A-H1"}
    assert adopted.plays["First"].early == {("h1", "Say hello"): "A-H1"}
    # The task each host was last seen starting, reported once attached.
    assert ("test h1", "Remember the host") in progress.updates
    assert ("test h2", "Say hello") in progress.updates


def test_a_run_started_ahead_that_nobody_asks_for_is_stopped(tmp_path: Path) -> None:
    playbook, inventory = files(tmp_path)
    started = start_ahead(playbook, inventory, forks=1)

    found = run_playbook(playbook, inventory, Silent(), label="test", forks=2)

    assert started.stopped
    assert found is not started.outcome
    assert found.failures == {"h2": "no such thing"}
    # Another run started ahead is refused while one waits; a run that is stopped frees it.
    waiting = start_ahead(playbook, inventory)
    with pytest.raises(RemediateError, match=r"^a playbook run was already started ahead$"):
        start_ahead(playbook, inventory)
    stop_ahead()
    assert waiting.stopped


def test_extra_variables_reach_the_playbook_and_tell_runs_apart(tmp_path: Path) -> None:
    playbook, inventory = files(tmp_path)
    started = start_ahead(playbook, inventory)

    found = run_playbook(
        playbook, inventory, Silent(), label="test", extravars={"command": "echo extra"}
    )

    assert started.stopped
    # Extra variables win over the inventory's: both hosts now succeed.
    assert found.failures == {}
    assert [r["stdout"] for r in found.task_results("h2", "Say hello")] == ["extra"]


def test_ansibles_own_error_is_one_line_naming_the_playbook(tmp_path: Path) -> None:
    playbook, inventory = files(tmp_path)
    playbook.write_text("- hosts: all\n  tasks: {not: a list}\n", encoding="utf-8")

    with pytest.raises(RemediateError) as raised:
        run_playbook(playbook, inventory, Silent(), label="test")

    message = str(raised.value)
    assert message.startswith("ansible-playbook two-plays.yml failed (rc ")
    assert "ERROR" in message and "malformed block" in message and "\n" not in message


def test_a_run_ahead_that_fails_before_ansible_starts_fails_where_it_is_finished(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its error must not vanish with its thread: the plan would be empty, not failed."""
    playbook, inventory = files(tmp_path)
    run = Run(playbook, inventory)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "no-such-directory"))

    run.execute_ahead()

    with pytest.raises(FileNotFoundError):
        run.finish()


def test_inputs_are_checked_before_anything_runs(tmp_path: Path) -> None:
    playbook, inventory = files(tmp_path)
    with pytest.raises(RemediateError, match=r"^playbook gone.yml is missing from the installed"):
        Run(tmp_path / "gone.yml", inventory)
    with pytest.raises(RemediateError, match=r"gone.ini: Ansible inventory not found$"):
        Run(playbook, tmp_path / "gone.ini")


def test_a_limit_and_check_mode_reach_ansible(tmp_path: Path) -> None:
    playbook, inventory = files(tmp_path)

    limited = run_playbook(playbook, inventory, Silent(), label="test", limit=["h2"])
    checked = run_playbook(playbook, inventory, Silent(), label="test", check=True)

    assert limited.hosts == {"h2"} and limited.failures == {"h2": "no such thing"}
    # A shell task does not run in check mode: h2's failing command is not run at all.
    assert checked.failures == {}
    assert checked.task_results("h1", "Say hello") == []


EDGES = [
    {
        "name": "Edges",
        "hosts": "all",
        "gather_facts": False,
        "tasks": [
            {
                "name": "Count",
                "ansible.builtin.command": "echo {{ item }}",
                "loop": [1, 2],
                "changed_when": False,
            },
            {
                "name": "Fail quietly",
                "ansible.builtin.command": "false",
                "ignore_errors": True,
                "changed_when": False,
            },
            {
                "name": "Fail on the second item",
                "ansible.builtin.shell": "echo item {{ item }} >&2; test {{ item }} = 1",
                "loop": [1, 2],
                "changed_when": False,
                "when": "inventory_hostname == 'h2'",
            },
        ],
    }
]


def test_loops_ignored_errors_and_unreachable_hosts(tmp_path: Path) -> None:
    """Per-item results, an error the playbook ignores (no failure), the item that failed (its
    reason), and a host Ansible cannot reach (said so); each task start reported once."""
    playbook = tmp_path / "edges.yml"
    playbook.write_text(json.dumps(EDGES), encoding="utf-8")
    inventory = tmp_path / "hosts.ini"
    inventory.write_text(
        f"h1 ansible_connection=local ansible_python_interpreter={sys.executable}\n"
        f"h2 ansible_connection=local ansible_python_interpreter={sys.executable}\n"
        "gone ansible_host=127.0.0.1 ansible_port=1 ansible_connection=ssh\n",
        encoding="utf-8",
    )
    progress = Recorded()

    found = run_playbook(playbook, inventory, progress, label="test")

    assert [r["stdout"] for r in found.task_results("h1", "Count")] == ["1", "2"]
    # h1's ignored error is no failure; h2 failed on its loop's second item.
    assert "h1" not in found.failures
    assert found.failures["h2"] == "item 2"
    assert found.failures["gone"].startswith("unreachable: ")
    assert "port 1" in found.failures["gone"]
    assert sorted(progress.updates) == [
        ("test gone", "Count"),
        ("test h1", "Count"),
        ("test h1", "Fail on the second item"),
        ("test h1", "Fail quietly"),
        ("test h2", "Count"),
        ("test h2", "Fail on the second item"),
        ("test h2", "Fail quietly"),
    ]
