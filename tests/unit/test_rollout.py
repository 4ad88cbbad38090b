"""Rollout batches: Ansible `serial` semantics over hosts and resources; when a rollout halts."""

from __future__ import annotations

import pytest

from remediate.errors import RemediateError
from remediate.executors import Outcome, Status
from remediate.model import Change
from remediate.rollout import Rollout, member
from remediate.targets import HostFile
from remediate.verification import Check, Verification


def _file(host: str, path: str) -> Change:
    return Change(
        provider="nginx",
        kind="file",
        resource=f"{host}:{path}",
        attribute="content",
        before="a",
        after="b",
        reason="test",
        rules=["nginx-tls-floor"],
        executor="ansible",
        fingerprint="sha256:0",
        target=HostFile(host=host, path=path),
    )


HOSTS = [_file(f"web{n}", path) for n in range(1, 11) for path in ("/a.conf", "/b.conf")]


def _hosts(batches: list[list[Change]]) -> list[list[str]]:
    return [sorted({member(c) for c in batch}) for batch in batches]


def test_a_host_and_all_its_files_go_in_one_batch() -> None:
    batches = Rollout(canary=1).batches(HOSTS)
    assert [len(batch) for batch in batches] == [2, 18]
    assert _hosts(batches)[0] == ["web1"]


@pytest.mark.parametrize(
    ("canary", "serial", "sizes"),
    [
        (None, ("3",), [3, 3, 3, 1]),
        (1, ("2", "50%"), [1, 2, 5, 2]),
        ("20%", (), [2, 8]),
        ("15%", ("1",), [2, 1, 1, 1, 1, 1, 1, 1, 1]),
        (None, (), [10]),
    ],
)
def test_serial_sizes_as_ansible_reads_them(
    canary: str | int | None, serial: tuple[str, ...], sizes: list[int]
) -> None:
    assert [len(h) for h in _hosts(Rollout(canary, serial).batches(HOSTS))] == sizes


def test_a_canary_halts_on_any_member_that_did_not_verify() -> None:
    rollout = Rollout(canary=1, max_failures=1)
    applied = [Outcome(change, Status.APPLIED, "") for change in HOSTS[:2]]
    skipped = Verification("web1", "127.0.0.1:443", skipped="not reachable")
    assert rollout.failures(applied, [skipped]) == {"web1"}
    assert rollout.halt(True, {"web1"}, 1) == "the canary did not verify (web1)"
    verified = Verification("web1", "127.0.0.1:443", [Check("TLS 1.0 refused", True, "")])
    assert rollout.failures(applied, [verified]) == set()
    assert rollout.halt(True, set(), 0) == ""
    # After the canary, the failure budget decides.
    assert rollout.halt(False, {"web2"}, 1) == ""
    assert rollout.halt(False, {"web2", "web3"}, 2) == "2 failed, more than --max-failures 1"
    failed = [Outcome(HOSTS[2], Status.FAILED, "nginx -t failed")]
    assert rollout.failures(failed, []) == {"web2"}


@pytest.mark.parametrize("bad", ["0", "-1", "0%", "101%", "x", ""])
def test_bad_sizes_are_refused(bad: str) -> None:
    with pytest.raises(RemediateError, match="expected a positive count"):
        Rollout(canary=bad)
    with pytest.raises(RemediateError, match="--batch"):
        Rollout(serial=(bad,))
