"""The head start of `remediate plan` on Nginx hosts (`remediate.providers.headstart`): the
collection the command line and policy file ask for starts before the command loads, a plan
that asks for the same run adopts it (one playbook run, counted by Ansible itself), and a run
nobody adopts is stopped, its processes and remediate's private files gone: when the plan asks
for another run, when the policy fails validation, when the command ends."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import typer

from remediate import ansible_run, cli, units
from remediate.policy import load as load_policy
from remediate.providers import headstart
from remediate.providers.nginx.discover import collector
from remediate.sandbox.nginx import free_port
from tests.conftest import Cli
from tests.nginx_env import NGINX, NginxHost, wait_until, websocket_backend

POLICY = """\
version: 1
tls:
  minimum: "1.2"
websocket:
  locations: ["/ws/"]
nginx:
  inventory: {inventory}
"""


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["plan"], (Path("remediate.yaml"), None)),
        (["plan", "-p", "a.yaml"], (Path("a.yaml"), None)),
        (["plan", "-pa.yaml", "-q"], (Path("a.yaml"), None)),
        (["plan", "--policy=a.yaml", "--only", "nginx,aws"], (Path("a.yaml"), ["nginx", "aws"])),
        (["plan", "--out", "-p", "--policy", "b.yaml"], (Path("b.yaml"), None)),
        (
            ["plan", "--format", "json", "--detailed-exitcode", "--quiet"],
            (cli.DEFAULT_POLICY, None),
        ),
        (["apply", "-p", "a.yaml"], None),
        (["plan", "--account", "prod"], None),
        (["plan", "--shard=1/4"], None),
        (["plan", "--help"], None),
        (["plan", "-qp", "a.yaml"], None),
        (["plan", "extra"], None),
        (["plan", "--polcy", "a.yaml"], None),
        (["plan", "-p"], None),
        ([], None),
    ],
)
def test_the_command_line_is_read_as_the_command_reads_it(
    argv: list[str], expected: tuple[Path, list[str] | None] | None
) -> None:
    assert headstart.plan_options(argv) == expected


@pytest.mark.parametrize("variable", [units.INDEX_ENV, units.COUNT_ENV])
def test_a_sharded_plan_gets_no_head_start(monkeypatch: pytest.MonkeyPatch, variable: str) -> None:
    """Hosts are read in one shard only (`engine.discover`), maybe not this one."""
    monkeypatch.delenv(units.INDEX_ENV, raising=False)
    monkeypatch.delenv(units.COUNT_ENV, raising=False)
    assert headstart.plan_options(["plan"]) is not None
    monkeypatch.setenv(variable, "2")
    assert headstart.plan_options(["plan"]) is None


def test_every_option_of_plan_is_known_with_whether_it_takes_a_value() -> None:
    """A new option of `plan` must be added to the head start's lists: one it does not know
    means no head start (and one it took for a flag would swallow the next argument)."""
    plan = typer.main.get_command(cli.app).commands["plan"]  # type: ignore[attr-defined]
    options = [p for p in plan.params if p.param_type_name == "option"]
    flags = {name for p in options if p.is_flag for name in p.opts + p.secondary_opts}
    valued = {name for p in options if not p.is_flag for name in p.opts}
    assert flags - {"--help"} == headstart._FLAGS
    assert valued == headstart._VALUE_OPTIONS
    assert headstart.DEFAULT_POLICY == cli.DEFAULT_POLICY


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("nginx:\n  inventory: {inventory}\n", 20),
        ("nginx:\n  inventory: {inventory}\n  forks: 3\n", 3),
        ("nginx:\n  inventory: {inventory}\nhaproxy:\n  websocket_backends: [a]\n", 20),
        ("nginx:\n  inventory: {inventory}\nhaproxy:\n  inventory: {inventory}\n", None),
        ("nginx:\n  inventory: {inventory}\n  forks: '3'\n", None),
        ("nginx:\n  inventory: {inventory}.missing\n", None),
        ("nginx:\n  forks: 3\n", None),
        ("aws:\n  regions: [us-east-1]\n", None),
        ("nginx: [a\n", None),
        ("- nginx\n", None),
        ("[" * 5000, None),
        ("nginx:\n  inventory: {inventory}\nexclude:\n  - until: 2020-13-45\n", None),
    ],
)
def test_the_policy_file_is_read_for_the_collection_it_asks_for(
    tmp_path: Path, text: str, expected: int | None
) -> None:
    inventory = tmp_path / "hosts.ini"
    inventory.write_text("web1 ansible_connection=local\n", encoding="utf-8")
    policy = tmp_path / "remediate.yaml"
    policy.write_text(text.format(inventory=inventory), encoding="utf-8")
    found = headstart.nginx_collection(policy, haproxy_selected=True)
    assert found == (None if expected is None else (inventory, expected))


def test_haproxy_hosts_left_out_of_the_plan_do_not_stop_the_head_start_bad_files_do(
    tmp_path: Path,
) -> None:
    inventory = tmp_path / "hosts.ini"
    inventory.write_text("web1 ansible_connection=local\n", encoding="utf-8")
    policy = tmp_path / "remediate.yaml"
    policy.write_text(
        f"nginx:\n  inventory: {inventory}\nhaproxy:\n  inventory: {inventory}\n", encoding="utf-8"
    )
    assert headstart.nginx_collection(policy, haproxy_selected=False) == (inventory, 20)
    assert headstart.nginx_collection(policy, haproxy_selected=True) is None
    assert headstart.nginx_collection(tmp_path / "missing.yaml", haproxy_selected=True) is None
    policy.write_bytes(b"nginx:\n  inventory: \xff\xfe\n")
    assert headstart.nginx_collection(policy, haproxy_selected=True) is None


@pytest.fixture
def host(tmp_path: Path) -> Iterator[NginxHost]:
    if not Path(NGINX).exists():
        pytest.skip("needs the nginx binary (`make test` installs it)")
    with websocket_backend() as backend:
        nginx = NginxHost("edge1", tmp_path / "nginx", "127.0.0.1", free_port(), backend)
        nginx.write_weak_config()
        nginx.start()
        try:
            yield nginx
        finally:
            nginx.stop()


def test_a_plan_adopts_the_collection_started_ahead(
    tmp_path: Path,
    host: NginxHost,
    playbook_runs: Path,
    cli: Cli,
) -> None:
    inventory = tmp_path / "hosts.ini"
    inventory.write_text(host.inventory_line() + "\n", encoding="utf-8")
    policy = tmp_path / "remediate.yaml"
    policy.write_text(POLICY.format(inventory=inventory), encoding="utf-8")
    fresh = cli("plan", "-p", str(policy), "--detailed-exitcode")
    assert fresh.code == 2, fresh.stdout + fresh.stderr
    playbook_runs.write_text("", encoding="utf-8")

    started = headstart.begin(["plan", "-p", str(policy), "--detailed-exitcode"])
    assert started is not None
    planned = cli("plan", "-p", str(policy), "--detailed-exitcode")

    assert planned.code == 2, planned.stdout + planned.stderr
    assert planned.stdout == fresh.stdout
    assert f"  ~ edge1:{host.site}\n" in planned.stdout
    # The run started ahead was the plan's only collection, run to its end.
    assert playbook_runs.read_text(encoding="utf-8").splitlines() == ["collect.yml"]
    assert not started.stopped
    assert started.outcome.hosts == {"edge1"}
    # The playbook it starts is the one Nginx discovery asks for.
    discovered = collector(load_policy(policy), inventory).playbook
    assert ansible_run.Run(headstart.COLLECT_PLAYBOOK, inventory).key == (
        ansible_run.Run(discovered, inventory).key
    )


def test_a_collection_the_plan_does_not_ask_for_is_stopped_and_the_plan_reads_its_own(
    tmp_path: Path, host: NginxHost, cli: Cli
) -> None:
    inventory = tmp_path / "hosts.ini"
    inventory.write_text(host.inventory_line() + "\n", encoding="utf-8")
    policy = tmp_path / "remediate.yaml"
    policy.write_text(POLICY.format(inventory=inventory) + "  forks: 4\n", encoding="utf-8")

    started = ansible_run.start_ahead(headstart.COLLECT_PLAYBOOK, inventory, forks=3)
    planned = cli("plan", "-p", str(policy), "--detailed-exitcode")

    assert planned.code == 2, planned.stdout + planned.stderr
    assert f"  ~ edge1:{host.site}\n" in planned.stdout
    assert started.stopped


SLEEPER = """\
#!/bin/sh
# Stands in for nginx: says it was asked, then takes a minute to answer.
touch "{marker}"
sleep 60
touch "{marker}.answered"
"""


@pytest.fixture
def slow_host(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path, Path]:
    """An inventory whose one host's nginx never answers; the marker shows it was asked; the
    private directories of runs go to their own TMPDIR."""
    marker = tmp_path / "asked"
    binary = tmp_path / "slow-nginx"
    binary.write_text(SLEEPER.format(marker=marker), encoding="utf-8")
    binary.chmod(0o755)
    inventory = tmp_path / "hosts.ini"
    inventory.write_text(
        f"slow ansible_connection=local ansible_python_interpreter={sys.executable} "
        f"nginx_binary={binary}\n",
        encoding="utf-8",
    )
    private = tmp_path / "tmp"
    private.mkdir()
    monkeypatch.setenv("TMPDIR", str(private))
    return inventory, marker, private


def _running(binary: Path) -> bool:
    found = subprocess.run(["pgrep", "-f", str(binary)], capture_output=True, check=False)
    return found.returncode == 0


def test_a_run_nobody_adopts_is_stopped_with_its_processes_and_files(
    slow_host: tuple[Path, Path, Path],
) -> None:
    inventory, marker, private = slow_host
    binary = inventory.parent / "slow-nginx"
    started = ansible_run.start_ahead(headstart.COLLECT_PLAYBOOK, inventory)
    wait_until(marker.exists, timeout=60, what="the host to be asked")
    assert _running(binary)

    ansible_run.stop_ahead()

    assert started.stopped
    # Stopped, not waited for: the host never answered.
    assert not Path(f"{marker}.answered").exists()
    # Ansible stops its workers' process groups itself, a moment after its own end.
    wait_until(lambda: not _running(binary), timeout=10, what="the host's nginx to stop")
    assert not list(private.glob("remediate-*"))


def test_a_policy_that_fails_validation_stops_the_head_start_and_exits_1(
    slow_host: tuple[Path, Path, Path],
) -> None:
    inventory, _, private = slow_host
    binary = inventory.parent / "slow-nginx"
    policy = inventory.parent / "remediate.yaml"
    policy.write_text(
        POLICY.format(inventory=inventory).replace('"1.2"', '"1.0"'), encoding="utf-8"
    )

    result = subprocess.run(
        [sys.executable, "-m", "remediate", "plan", "-p", str(policy)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "TMPDIR": str(private)},
        check=False,
    )

    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith(f"error: {policy}:3: tls.minimum")
    # Ansible stops its workers' process groups itself, a moment after its own end.
    wait_until(lambda: not _running(binary), timeout=10, what="the host's nginx to stop")
    assert not list(private.glob("remediate-*"))


def test_a_plan_killed_while_collecting_leaves_nothing_running(
    slow_host: tuple[Path, Path, Path],
) -> None:
    """SIGKILL gives remediate no say: the child guard, told by the kernel, stops Ansible, and
    Ansible its workers (each in a session of its own) and what they started."""
    inventory, marker, private = slow_host
    binary = inventory.parent / "slow-nginx"
    policy = inventory.parent / "remediate.yaml"
    policy.write_text(POLICY.format(inventory=inventory), encoding="utf-8")
    process = subprocess.Popen(
        [sys.executable, "-m", "remediate", "plan", "-p", str(policy)],
        env={**os.environ, "TMPDIR": str(private)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_until(marker.exists, timeout=60, what="the host to be asked")
        assert _running(binary)
    finally:
        process.kill()
        process.wait()

    wait_until(lambda: not _running(binary), timeout=10, what="the collection to stop")
