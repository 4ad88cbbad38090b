"""The Ansible machinery every host-based provider shares (`remediate.ansible_run.run_playbook`),
through a real ansible-playbook run of two plays on two local hosts: what each host reported is
kept play by play (a shared collection reads each provider's part by its play's name), a failed
host comes with its reason in one line, and the `early` readers' values are kept for the hosts
and tasks they read, in the run and in its play."""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from remediate.ansible_run import PlaybookRun, run_playbook
from remediate.errors import RemediateError
from remediate.progress import Silent

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


def run(tmp_path: Path, early: Mapping[str, Any]) -> PlaybookRun:
    playbook = tmp_path / "two-plays.yml"
    playbook.write_text(json.dumps(PLAYBOOK), encoding="utf-8")
    inventory = tmp_path / "hosts.ini"
    local = f"ansible_connection=local ansible_python_interpreter={sys.executable}"
    inventory.write_text(
        f"h1 {local} command='echo a-h1'\nh2 {local} command='echo no such thing >&2; exit 3'\n",
        encoding="utf-8",
    )
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

    found = run(tmp_path, {"Say hello": refuse})

    assert found.early == {} and found.plays["First"].early == {}
    # The result itself is still there, for the caller to read (and fail on) itself.
    assert [r["stdout"] for r in found.task_results("h1", "Say hello")] == ["a-h1"]
