"""The executor contract of tests/contract/test_executors.py, run against haproxy-ansible and a
real HAProxy on loopback, in-process: the same test functions, with this module's `rig`.

The host loads a main file and a `conf.d` directory (the frontend's file is the one a test moves,
deletes or tampers with). Its reload command is a script that reloads the master as remediate
would and then, when a test asks, lets another tool append to a file (the read-back mismatch), or
refuses the reload as a broken service manager would.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from remediate import executors
from remediate.errors import RemediateError
from remediate.model import Change
from remediate.policy import load
from remediate.progress import Silent
from remediate.sandbox.nginx import echo_backend, free_port
from tests.contract.test_executors import (
    Rig,
    path_of,
    test_a_deleted_resource_reads_as_none_and_only_that_one,
    test_a_dry_run_writes_nothing,
    test_a_refused_write_is_a_failure_in_the_services_words,
    test_a_resource_changed_since_the_plan_has_another_fingerprint,
    test_a_value_rewritten_before_the_read_back_is_a_failure,
    test_apply_writes_reads_back_and_the_emulator_holds_the_plan,
    test_fingerprints_of_a_fresh_plan_match_it,
)
from tests.test_haproxy_apply import HAPROXY, WEAK, HAProxyHost, write_setup

__all__ = [
    "test_a_deleted_resource_reads_as_none_and_only_that_one",
    "test_a_dry_run_writes_nothing",
    "test_a_refused_write_is_a_failure_in_the_services_words",
    "test_a_resource_changed_since_the_plan_has_another_fingerprint",
    "test_a_value_rewritten_before_the_read_back_is_a_failure",
    "test_apply_writes_reads_back_and_the_emulator_holds_the_plan",
    "test_fingerprints_of_a_fresh_plan_match_it",
]

RELOAD_AND_MAYBE_REWRITE = """#!/bin/sh
# Reload as remediate would (SIGUSR2 to the master), then (when a test asks) let another tool
# append to a file; or, when a test asks, refuse the reload as a broken service manager would.
set -e
if [ -e {refused} ]; then
    echo "reload refused by the service manager" >&2
    exit 1
fi
kill -USR2 "$(cat {pidfile})"
if [ -s {flag} ]; then
    printf '# rewritten by another tool\\n' >> "$(cat {flag})"
fi
"""


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    if not Path(HAPROXY).exists():
        pytest.skip("needs the haproxy binary (Debian package haproxy)")
    script = tmp_path / "reload.sh"
    flag = tmp_path / "rewrite-after-reload"
    refused = tmp_path / "refuse-reload"
    with echo_backend() as backend:
        lb = HAProxyHost("lb1", tmp_path / "lb1", free_port(), backend)
        lb.write("")
        main_text, site_text = lb.render(WEAK).split("frontend web\n")
        lb.conf.write_text(main_text, encoding="utf-8")
        confd = lb.root / "conf.d"
        confd.mkdir()
        site = confd / "20-site.cfg"
        site.write_text("frontend web\n" + site_text, encoding="utf-8")
        lb.paths = [lb.conf, confd]
        script.write_text(
            RELOAD_AND_MAYBE_REWRITE.format(
                pidfile=lb.root / "haproxy.pid", flag=flag, refused=refused
            ),
            encoding="utf-8",
        )
        script.chmod(0o755)
        lb.extra_vars["haproxy_reload_command"] = repr(json.dumps([str(script)]))
        lb.start()
        try:
            policy = load(write_setup(tmp_path, lb))

            def read(change: Change) -> object:
                path = path_of(change)
                return path.read_text(encoding="utf-8") if path.exists() else None

            def victim(changes: list[Change]) -> Change:
                return next(c for c in changes if path_of(c) == site)

            def move(change: Change) -> None:
                with path_of(change).open("a", encoding="utf-8") as file:
                    file.write("# edited by hand\n")

            def delete(change: Change) -> None:
                path_of(change).unlink()

            @contextmanager
            def tamper(change: Change) -> Iterator[None]:
                flag.write_text(str(path_of(change)), encoding="utf-8")
                try:
                    yield
                finally:
                    flag.write_text("", encoding="utf-8")

            @contextmanager
            def refuse(change: Change) -> Iterator[str]:
                refused.touch()
                try:
                    yield "reload refused by the service manager"
                finally:
                    refused.unlink()

            yield Rig("haproxy-ansible", policy, read, victim, move, delete, tamper, refuse)
        finally:
            lb.stop()


def test_without_an_inventory_the_executor_names_the_setting() -> None:
    with pytest.raises(RemediateError) as caught:
        executors.get("haproxy-ansible", executors.Settings(), Silent())
    assert str(caught.value) == (
        "the ansible executor needs the HAProxy inventory: set haproxy.inventory in the policy"
    )
