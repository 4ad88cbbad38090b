"""An HAProxy apply killed between the write and the reload is finished by the next run, as an
Nginx one is (tests/test_kills.py): the host-file executor both share finishes it."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from tests.conftest import Cli
from tests.test_haproxy_apply import (  # noqa: F401 (fixtures)
    HostFactory,
    assert_fixed,
    assert_weak,
    backend,
    hosts,
    write_setup,
)
from tests.test_haproxy_apply import pytestmark as needs_haproxy
from tests.test_kills import _alive, _descendants, journal_rows, remediate

pytestmark = [pytest.mark.faults, needs_haproxy]


def test_haproxy_files_written_but_never_reloaded_are_finished_by_the_next_run(
    tmp_path: Path,
    hosts: HostFactory,  # noqa: F811 (the fixture)
    cli: Cli,
) -> None:
    """SIGKILL after Ansible wrote and validated the new files, while the reload is held by a
    gate file: the old, weak configuration still serves. The next plan must not call the host
    clean, and the next apply must reload it and journal what is on disk."""
    lb = hosts("lb1")
    gate = tmp_path / "hold-reload"
    gate.touch()
    reload = tmp_path / "reload-when-released"
    reload.write_text(
        "#!/bin/sh\n"
        f"while [ -e {gate} ]; do sleep 0.1; done\n"
        f'kill -USR2 "$(cat {lb.root / "haproxy.pid"})"\n',
        encoding="utf-8",
    )
    reload.chmod(0o755)
    lb.extra_vars["haproxy_reload_command"] = repr(json.dumps([str(reload)]))
    policy = write_setup(tmp_path, lb)
    before = lb.conf.read_bytes()
    state = tmp_path / "state"
    env = {**os.environ, "REMEDIATE_STATE_DIR": str(state)}
    process = remediate("apply", "-p", str(policy), "--auto-approve", "--no-verify", env=env)
    deadline = time.monotonic() + 300
    while process.poll() is None and time.monotonic() < deadline:
        if lb.conf.read_bytes() != before:
            break
        time.sleep(0.05)
    time.sleep(1.0)  # past the write and `haproxy -c`, into the held reload
    children = _descendants(process.pid)
    process.kill()
    process.communicate(timeout=60)
    assert lb.conf.read_bytes() != before
    assert_weak(lb)  # the new file on disk, the old configuration serving

    gate.unlink()
    plan = json.loads(cli("plan", "-p", str(policy), "-q", "--format", "json").stdout)
    assert plan["changes"] or plan["findings"], "a host serving its old config was called clean"
    assert not [pid for pid in children if _alive(pid)], "a child outlived remediate"

    applied = cli("apply", "-p", str(policy), "-q", "--auto-approve", "--no-verify")
    assert applied.code == 0, applied.stdout + applied.stderr
    assert_fixed(lb)
    assert not [row for row in journal_rows(state) if row[4] in ("pending", "written")]
    final = cli("plan", "-p", str(policy), "-q", "--detailed-exitcode")
    assert final.code == 0, final.stdout
