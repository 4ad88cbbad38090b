"""How a failed host's reason becomes the one line a user reads (`ansible_run`): the most useful
part of Ansible's result, nginx's and ssh's multi-line output joined, nginx's log timestamps and
Ansible's own prefix dropped."""

from __future__ import annotations

from typing import Any

import pytest

from remediate.ansible_run import _reason, _tail, one_line


def test_nginx_output_becomes_one_line_without_its_timestamps() -> None:
    text = (
        '2026/01/02 03:04:05 [emerg] 123#123: unknown directive "foo" in /etc/nginx/a.conf:12\n'
        "\n"
        "  nginx: configuration file /etc/nginx/nginx.conf test failed  \n"
    )
    assert one_line(text) == (
        'nginx: [emerg] unknown directive "foo" in /etc/nginx/a.conf:12; '
        "nginx: configuration file /etc/nginx/nginx.conf test failed"
    )


def test_ansibles_own_prefix_is_dropped_and_only_at_the_start() -> None:
    assert one_line("Task failed: Task failed: no route") == "Task failed: no route"
    assert one_line("ssh: Task failed: no route") == "ssh: Task failed: no route"
    assert one_line("") == ""


@pytest.mark.parametrize(
    ("result", "reason"),
    [
        ({"stderr": "from stderr", "module_stderr": "module", "msg": "message"}, "from stderr"),
        ({"stderr": "  \n", "module_stderr": "module\nline two", "msg": "m"}, "module; line two"),
        ({"stderr": "", "module_stderr": " ", "msg": "Task failed: the message"}, "the message"),
        ({"stderr": 3, "msg": ["not", "text"]}, "failed without a message"),
        ({}, "failed without a message"),
    ],
)
def test_a_failed_tasks_reason_is_the_first_text_it_has(
    result: dict[str, Any], reason: str
) -> None:
    assert _reason(result) == reason


def test_ansibles_own_error_is_its_last_error_line_else_its_last_line() -> None:
    output = "PLAY [all]\n[ERROR]: first\n\n[ERROR]: the one that counts\nsome trailer\n  \n"
    assert _tail(output) == "[ERROR]: the one that counts"
    assert _tail("PLAY [all]\n  last words  \n\n") == "last words"
    assert _tail(" \n") == "no output"
