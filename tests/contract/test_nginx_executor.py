"""The ansible executor against a real nginx on loopback, beyond the shared contract: what is
Nginx's own in it (remediate.providers.nginx.executor). A site enabled through a symbolic link
gets the file behind the link written and the link kept; a change naming a host the inventory
does not have is refused before anything runs, naming the host; an executor built without an
inventory says which setting is missing. Every assertion reads the host's files back."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from remediate import engine, executors
from remediate.errors import RemediateError
from remediate.executors import Status
from remediate.model import Change
from remediate.policy import load
from remediate.progress import Silent
from remediate.targets import HostFile, require
from tests.nginx_env import NginxHost
from tests.test_nginx_apply import NGINX, HostFactory, backend, hosts, write_setup

__all__ = ["backend", "hosts"]  # fixtures this module uses from the Nginx apply tests

pytestmark = pytest.mark.contract


@pytest.fixture
def web(hosts: HostFactory) -> Iterator[NginxHost]:
    if not Path(NGINX).exists():
        pytest.skip("needs the nginx binary (Debian package nginx)")
    yield hosts("web1")


def plan(tmp_path: Path, host: NginxHost) -> tuple[executors.Executor, list[Change]]:
    policy = load(write_setup(tmp_path, host))
    changes = engine.plan(policy, record=False).changes
    assert changes, "the weak host plans nothing"
    return executors.get("ansible", executors.Settings.from_policy(policy), Silent()), changes


def test_a_site_enabled_through_a_link_is_written_behind_the_link(
    tmp_path: Path, web: NginxHost
) -> None:
    available = web.root / "sites-available" / "site.conf"
    available.parent.mkdir()
    web.site.rename(available)
    web.site.symlink_to(os.path.relpath(available, web.site.parent))
    executor, changes = plan(tmp_path, web)
    [site] = [c for c in changes if require(c.target, HostFile).path == str(web.site)]
    assert require(site.target, HostFile).real_path == str(available)
    outcomes = executor.apply(changes)
    assert [(o.status, o.message) for o in outcomes] == [(Status.APPLIED, "")] * len(changes)
    assert web.site.is_symlink() and web.site.resolve() == available
    assert available.read_text(encoding="utf-8") == site.after
    assert isinstance(executor, executors.ReadsCurrent)
    assert executor.current([site]) == {(site.resource, site.attribute): site.after}


def test_a_host_missing_from_the_inventory_is_refused_by_name(
    tmp_path: Path, web: NginxHost
) -> None:
    executor, changes = plan(tmp_path, web)
    before = web.files()
    strangers = [
        change.model_copy(
            update={
                "resource": change.resource.replace("web1:", f"{host}:", 1),
                "target": require(change.target, HostFile).model_copy(update={"host": host}),
            }
        )
        for change, host in zip(changes, ("web9", "all"), strict=False)
    ]
    inventory = tmp_path / "hosts.ini"
    for attempt in (
        lambda: executor.apply([*changes, *strangers]),
        lambda: executor.fingerprints(strangers),
        lambda: executor.apply(strangers, dry_run=True),
    ):
        with pytest.raises(RemediateError) as caught:
            attempt()
        named = ", ".join(sorted({require(c.target, HostFile).host for c in strangers}))
        assert str(caught.value) == (
            f"{named}: not a host of the inventory {inventory}; nothing was applied"
        )
    assert web.files() == before


def test_without_an_inventory_the_executor_names_the_setting() -> None:
    with pytest.raises(RemediateError) as caught:
        executors.get("ansible", executors.Settings(), Silent())
    assert str(caught.value) == (
        "the ansible executor needs the Nginx inventory: set nginx.inventory in the policy"
    )
