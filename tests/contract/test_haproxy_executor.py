"""The haproxy-ansible executor in-process against a real HAProxy on loopback, through Ansible on
a local host: fingerprints of a fresh plan, a dry run, an apply that writes, reloads (same master)
and reads back, a file edited or deleted since the plan, and an executor built without an
inventory."""

from __future__ import annotations

from pathlib import Path

import pytest

from remediate import engine, executors
from remediate.errors import RemediateError
from remediate.executors import ReadsCurrent, Status
from remediate.policy import Policy, load
from remediate.progress import Silent
from tests.test_haproxy_apply import (
    HAProxyHost,
    HostFactory,
    assert_fixed,
    backend,
    hosts,
    write_setup,
)
from tests.test_haproxy_apply import (
    pytestmark as needs_haproxy,
)

__all__ = ["backend", "hosts"]  # fixtures this module uses from the HAProxy apply tests

pytestmark = [pytest.mark.contract, needs_haproxy]


@pytest.fixture
def lb(tmp_path: Path, hosts: HostFactory) -> tuple[HAProxyHost, Policy]:
    host = hosts("lb1")
    return host, load(write_setup(tmp_path, host))


def executor_for(policy: Policy) -> executors.Executor:
    return executors.get("haproxy-ansible", executors.Settings.from_policy(policy), Silent())


def test_a_plan_is_applied_reloaded_and_read_back(lb: tuple[HAProxyHost, Policy]) -> None:
    host, policy = lb
    changes = engine.plan(policy, record=False).changes
    assert [c.resource for c in changes] == [f"lb1:{host.conf}"]
    executor = executor_for(policy)
    assert executor.fingerprints(changes) == {c.resource: c.fingerprint for c in changes}
    before = host.conf.read_text(encoding="utf-8")
    dry = executor.apply(changes, dry_run=True)
    assert [o.status for o in dry] == [Status.DRY_RUN]
    assert host.conf.read_text(encoding="utf-8") == before
    master = host.master_pid()
    outcomes = executor.apply(changes)
    assert [(o.status, o.message) for o in outcomes] == [(Status.APPLIED, "")]
    assert host.conf.read_text(encoding="utf-8") == changes[0].after
    assert host.master_pid() == master
    assert_fixed(host)
    assert isinstance(executor, ReadsCurrent)
    assert executor.current(changes) == {(changes[0].resource, "content"): changes[0].after}
    assert engine.plan(policy, record=False).changes == []


def test_a_file_edited_since_the_plan_is_refused_and_left_as_edited(
    lb: tuple[HAProxyHost, Policy],
) -> None:
    host, policy = lb
    changes = engine.plan(policy, record=False).changes
    with host.conf.open("a", encoding="utf-8") as file:
        file.write("# edited by hand\n")
    edited = host.conf.read_text(encoding="utf-8")
    executor = executor_for(policy)
    moved = executor.fingerprints(changes)[changes[0].resource]
    assert moved is not None and moved != changes[0].fingerprint
    [outcome] = executor.apply(changes)
    assert outcome.status is Status.FAILED
    assert f"{host.conf} changed since it was planned; nothing was written" in outcome.message
    assert host.conf.read_text(encoding="utf-8") == edited


def test_a_deleted_file_reads_as_none(lb: tuple[HAProxyHost, Policy]) -> None:
    host, policy = lb
    changes = engine.plan(policy, record=False).changes
    host.conf.unlink()
    executor = executor_for(policy)
    assert executor.fingerprints(changes) == {changes[0].resource: None}
    assert isinstance(executor, ReadsCurrent)
    assert executor.current(changes) == {(changes[0].resource, "content"): None}


def test_an_executor_without_an_inventory_says_what_to_set() -> None:
    with pytest.raises(RemediateError) as error:
        executors.get("haproxy-ansible", executors.Settings(), Silent())
    assert str(error.value) == (
        "the ansible executor needs the HAProxy inventory: set haproxy.inventory in the policy"
    )
