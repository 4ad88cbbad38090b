"""The pulumi executor's side that needs no Pulumi CLI, against moto over HTTP: the reads (the
fingerprints before a write and the values after it go through the provider's own executor, never
through the stack), the refusals made before any stack is opened, and the one line a user reads
when the CLI is missing.

The CLI is the one part no package registry ships, so the shared contract of
tests/contract/test_executors.py skips the pulumi executor without it. Here a `pulumi` on PATH is
only looked up by the executor: the file put there records any run of it, and each test that
builds an executor checks that nothing ran it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest

from remediate import engine, executors
from remediate.errors import RemediateError
from remediate.executors.pulumi import PulumiExecutor, require_cli
from remediate.model import Change
from remediate.policy import parse
from remediate.progress import Silent
from remediate.sandbox.aws import Fleet, MotoServer, seed_classic_fleet, seed_fleet
from remediate.targets import HostFile

pytestmark = pytest.mark.contract

EAST, WEST = "us-east-1", "eu-west-1"
STRONG = "ELBSecurityPolicy-TLS-1-2-2017-01"
MISSING_CLI = (
    "the pulumi executor needs the Pulumi CLI: install it "
    "(https://www.pulumi.com/docs/iac/download-install/) and put `pulumi` on PATH"
)
RECORDS_ANY_RUN = '#!/bin/sh\necho "$@" >> {ran}\nexit 1\n'


@dataclass
class World:
    fleet: Fleet
    changes: list[Change]
    executor: PulumiExecutor
    ran: Path

    def elbv2(self, region: str = EAST) -> Any:
        return boto3.client("elbv2", region_name=region)


@pytest.fixture
def cli_on_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A `pulumi` on PATH that records each run of it; yields the record (absent: never run)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    ran = tmp_path / "pulumi-ran"
    cli = bin_dir / "pulumi"
    cli.write_text(RECORDS_ANY_RUN.format(ran=ran), encoding="utf-8")
    cli.chmod(0o755)
    monkeypatch.setenv("PATH", str(bin_dir))
    monkeypatch.setenv("REMEDIATE_STATE_DIR", str(tmp_path / "state"))
    yield ran
    assert not ran.exists(), f"the Pulumi CLI was run: {ran.read_text(encoding='utf-8')}"


@pytest.fixture
def world(aws: MotoServer, cli_on_path: Path) -> World:
    fleet = seed_fleet()
    seed_classic_fleet(fleet)
    policy = parse(f"aws:\n  regions: [{EAST}, {WEST}]\n")
    changes = engine.plan(policy, record=False).changes
    kinds = {c.kind for c in changes}
    assert {"listener", "load-balancer", "classic-listener"} <= kinds
    settings = executors.Settings.from_policy(policy)
    executor = executors.get("pulumi", settings, Silent())
    assert isinstance(executor, PulumiExecutor)
    return World(fleet, changes, executor, cli_on_path)


def test_without_the_cli_the_executor_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(RemediateError) as caught:
        require_cli()
    assert str(caught.value) == MISSING_CLI
    with pytest.raises(RemediateError) as built:
        executors.get("pulumi", executors.Settings(), Silent())
    assert str(built.value) == MISSING_CLI


def test_the_cli_found_is_the_one_on_path(cli_on_path: Path) -> None:
    assert Path(require_cli()) == cli_on_path.parent / "bin" / "pulumi"


def test_fingerprints_are_read_through_the_providers_own_executor(world: World) -> None:
    """The same fingerprints the plan recorded; a listener changed since differs, and one
    deleted since is None, and only that one."""
    assert world.executor.fingerprints(world.changes) == {
        c.resource: c.fingerprint for c in world.changes
    }
    moved = world.fleet.listeners["shop:443"]
    gone = world.fleet.listeners["admin:8443"]
    world.elbv2().modify_listener(ListenerArn=moved, SslPolicy=STRONG)
    world.elbv2(WEST).delete_listener(ListenerArn=gone)
    now = world.executor.fingerprints(world.changes)
    planned = {c.resource: c.fingerprint for c in world.changes}
    assert now[gone] is None
    assert now[moved] is not None and now[moved] != planned[moved]
    others = set(planned) - {moved, gone}
    assert {resource: now[resource] for resource in others} == {
        resource: planned[resource] for resource in others
    }


def test_current_values_are_read_through_the_providers_own_executor(world: World) -> None:
    now = world.executor.current(world.changes)
    assert now == {(c.resource, c.attribute): c.before for c in world.changes}
    listener = world.fleet.listeners["shop:443"]
    world.elbv2().modify_listener(ListenerArn=listener, SslPolicy=STRONG)
    assert world.executor.current(world.changes)[(listener, "ssl_policy")] == STRONG


def test_a_provider_the_pulumi_executor_does_not_serve_is_refused(world: World) -> None:
    site = Change(
        provider="nginx",
        kind="file",
        resource="web1:/etc/nginx/sites-enabled/shop",
        attribute="content",
        before="server {}\n",
        after="server { http2 on; }\n",
        reason="test",
        executor="ansible",
        fingerprint="sha256:0",
        location="web1",
        target=HostFile(host="web1", path="/etc/nginx/sites-enabled/shop"),
    )
    for read in (world.executor.fingerprints, world.executor.current):
        with pytest.raises(RemediateError) as caught:
            read([*world.changes, site])
        assert str(caught.value) == "the pulumi executor does not apply nginx changes"


def test_a_change_with_no_pulumi_type_is_refused_before_any_stack_is_opened(
    world: World, tmp_path: Path
) -> None:
    classic = next(c for c in world.changes if c.kind == "classic-listener")
    with pytest.raises(RemediateError) as caught:
        world.executor.apply(world.changes)
    assert str(caught.value) == (
        f"the pulumi executor cannot apply {classic.resource}: classic-listener {classic.attribute}"
    )
    assert not (tmp_path / "state" / "pulumi").exists()
    assert world.executor.current(world.changes) == {
        (c.resource, c.attribute): c.before for c in world.changes
    }
