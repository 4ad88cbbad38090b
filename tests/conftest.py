"""Shared fixtures: a real moto server over HTTP, and the CLI run in-process as a user runs it;
and the layer markers (unit, contract, e2e) given to every test by where it lives."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from remediate.cli import main
from remediate.sandbox.aws import Fleet, MotoServer, seed_fleet
from remediate.store import URL_VARIABLE
from tests import postgres

LAYERS = ("unit", "contract", "e2e")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """tests/unit/ is the unit layer and tests/contract/ the contract layer; a test elsewhere is
    end to end unless its module marks it otherwise (`pytestmark = pytest.mark.unit`)."""
    for item in items:
        if any(item.get_closest_marker(layer) for layer in LAYERS):
            continue
        folder = item.path.parent.name
        item.add_marker(folder if folder in ("unit", "contract") else "e2e")


@pytest.fixture(scope="session")
def moto_server() -> Iterator[MotoServer]:
    server = MotoServer()
    yield server
    server.stop()


@pytest.fixture
def aws(moto_server: MotoServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[MotoServer]:
    """boto3 pointed at a freshly reset moto server through AWS_ENDPOINT_URL.

    Reset again afterwards: moto's backends are global to the process, so a fleet left behind
    would show up in any other moto server this process starts (the demo's, for one).
    """
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_CONFIG_FILE"):
        monkeypatch.delenv(name, raising=False)
    for name, value in moto_server.env().items():
        monkeypatch.setenv(name, value)
    moto_server.reset()
    yield moto_server
    moto_server.reset()


@pytest.fixture
def fleet(aws: MotoServer) -> Fleet:
    """The sandbox's mixed ELBv2 fleet, freshly seeded (see remediate.sandbox.aws.seed_fleet)."""
    return seed_fleet()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[postgres.Server]:
    """One real PostgreSQL server for the session (started once: about a second)."""
    bin_dir = postgres.binaries()
    if bin_dir is None:
        pytest.skip("PostgreSQL is not installed (Debian's postgresql package: make system-deps)")
    try:
        import psycopg  # noqa: F401
    except ImportError:
        pytest.skip("psycopg is not installed: pip install 'remediate[postgres]'")
    server = postgres.Server(bin_dir)
    yield server
    server.stop()


@pytest.fixture
def postgres_url(postgres_server: postgres.Server) -> str:
    """The URL of a fresh, empty database on the session's server."""
    return postgres_server.database()


@pytest.fixture(params=["sqlite", "postgres"])
def journal_backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Runs a test once on each journal back end: the SQLite file in the state directory, and a
    fresh PostgreSQL database through REMEDIATE_JOURNAL_URL (inherited by subprocesses)."""
    if request.param == "sqlite":
        monkeypatch.delenv(URL_VARIABLE, raising=False)
        return ""
    url = str(request.getfixturevalue("postgres_url"))
    monkeypatch.setenv(URL_VARIABLE, url)
    return url


@dataclass
class Result:
    code: int
    stdout: str
    stderr: str


Cli = Callable[..., Result]


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Cli:
    """Run `remediate ARGS...` through the console entry point; returns exit code and output."""
    monkeypatch.setenv("REMEDIATE_STATE_DIR", str(tmp_path / "state"))

    def run(*args: str) -> Result:
        capsys.readouterr()
        monkeypatch.setattr(sys, "argv", ["remediate", *args])
        code = 0
        try:
            main()
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        out, err = capsys.readouterr()
        return Result(code, out, err)

    return run


@pytest.fixture
def write_policy(tmp_path: Path) -> Callable[[str], Path]:
    def write(text: str, name: str = "remediate.yaml") -> Path:
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        return path

    return write


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """The fault-injection figures (tests/test_faults.py), when those scenarios ran."""
    module = sys.modules.get("tests.test_faults")
    if module is not None:
        module.summary(terminalreporter.write_line)


# A callback plugin (enabled through the environment that ansible-runner passes on) that appends
# a line for every playbook that starts: the runs counted by Ansible itself.
COUNTER = """\
import os

from ansible.plugins.callback import CallbackBase


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "count_playbooks"
    CALLBACK_NEEDS_ENABLED = True

    def v2_playbook_on_start(self, playbook):
        with open(os.environ["REMEDIATE_TEST_PLAYBOOKS"], "a", encoding="utf-8") as out:
            out.write(os.path.basename(playbook._file_name) + "\\n")
"""


@pytest.fixture
def playbook_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The file each ansible-playbook run appends its playbook's name to."""
    plugins = tmp_path / "callback_plugins"
    plugins.mkdir()
    (plugins / "count_playbooks.py").write_text(COUNTER, encoding="utf-8")
    runs = tmp_path / "playbook-runs.txt"
    runs.touch()
    monkeypatch.setenv("ANSIBLE_CALLBACK_PLUGINS", str(plugins))
    monkeypatch.setenv("ANSIBLE_CALLBACKS_ENABLED", "count_playbooks")
    monkeypatch.setenv("REMEDIATE_TEST_PLAYBOOKS", str(runs))
    return runs
