"""The wheel as a user gets it: built from the working tree, installed (not editable) into a fresh
virtualenv, and run from a directory outside the checkout.

With the `nginx` extra it plans and applies a real Nginx host on loopback through Ansible, the
playbooks coming from the installed package. With no extra at all, every command that needs one
stops with one line naming it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import Cli
from tests.nginx_env import NGINX, NginxHost, websocket_backend

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]

ROOT = Path(__file__).resolve().parents[1]
# Seconds: a fresh virtualenv installs the core dependencies (and the extra's) from pip's cache.
INSTALL_TIMEOUT = 600


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel built from a copy of the working tree's source files (tracked or new, not
    ignored), so the build leaves nothing behind in the checkout."""
    source = tmp_path_factory.mktemp("source")
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        check=True,
        capture_output=True,
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        if (ROOT / name).is_file():
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, source / name)
    dist = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "-w",
            str(dist),
            str(source),
        ],
        check=True,
        capture_output=True,
        timeout=INSTALL_TIMEOUT,
    )
    (built,) = dist.glob("remediate-*.whl")
    return built


@dataclass
class Venv:
    root: Path
    env: dict[str, str]

    def run(
        self, *args: str, cwd: Path, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        """`remediate ARGS...` through the venv's console script, as a user runs it."""
        return subprocess.run(
            [str(self.root / "bin" / "remediate"), *args],
            cwd=cwd,
            env=self.env | (env or {}),
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )


def make_venv(where: Path, requirement: str) -> Venv:
    """A fresh virtualenv with `requirement` installed, and an environment that reaches only it:
    not the development venv, not the checkout."""
    subprocess.run(
        [sys.executable, "-m", "venv", str(where)], check=True, capture_output=True, timeout=120
    )
    installed = subprocess.run(
        [str(where / "bin" / "pip"), "install", "--quiet", requirement],
        capture_output=True,
        text=True,
        timeout=INSTALL_TIMEOUT,
        check=False,
    )
    assert installed.returncode == 0, installed.stderr
    dev_bin = str(Path(sys.executable).parent)
    path = [str(where / "bin")] + [
        entry for entry in os.environ.get("PATH", "").split(os.pathsep) if entry != dev_bin
    ]
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    env |= {"PATH": os.pathsep.join(path), "REMEDIATE_STATE_DIR": str(where.parent / "state")}
    return Venv(where, env)


def write_setup(where: Path, host: NginxHost) -> Path:
    """An inventory with `host` and a policy that fixes TLS, HTTP/2 and WebSockets on it."""
    inventory = where / "hosts.ini"
    inventory.write_text(f"[web]\n{host.inventory_line()}\n", encoding="utf-8")
    policy = where / "remediate.yaml"
    policy.write_text(
        'version: 1\ntls:\n  minimum: "1.2"\nhttp2: true\n'
        f'websocket:\n  locations: ["/ws/"]\nnginx:\n  inventory: {inventory}\n',
        encoding="utf-8",
    )
    return policy


def site_packages(venv: Venv) -> Path:
    return next((venv.root / "lib").glob("python3*/site-packages"))


@pytest.fixture(scope="module")
def core(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Venv:
    return make_venv(tmp_path_factory.mktemp("core") / "venv", str(wheel))


@pytest.fixture(scope="module")
def with_nginx(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Venv:
    return make_venv(tmp_path_factory.mktemp("nginx") / "venv", f"{wheel}[nginx]")


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A working directory outside the checkout, so nothing can be imported from the source."""
    assert ROOT not in tmp_path.parents
    return tmp_path


@pytest.fixture(scope="module")
def backend() -> Iterator[str]:
    with websocket_backend() as address:
        yield address


@pytest.fixture
def host(outside: Path, backend: str) -> Iterator[NginxHost]:
    """A weak nginx on loopback (TLS 1.0 accepted, no HTTP/2, WebSocket headers missing)."""
    if shutil.which("nginx") is None and not Path(NGINX).exists():
        pytest.skip("needs the nginx binary (Debian package nginx; `make test` installs it)")
    from remediate.sandbox.nginx import free_port

    web = NginxHost("web1", outside / "web1", "127.0.0.1", free_port(), backend)
    web.write_weak_config()
    web.start()
    yield web
    web.stop()


def test_installed_wheel_plans_and_applies_an_nginx_host(
    with_nginx: Venv, host: NginxHost, outside: Path
) -> None:
    package = with_nginx.run("playbooks", "path", cwd=outside)
    assert package.returncode == 0, package.stderr
    playbooks = Path(package.stdout.strip())
    assert site_packages(with_nginx) in playbooks.parents
    assert sorted(p.name for p in playbooks.iterdir()) == ["apply.yml", "collect.yml"]

    policy = write_setup(outside, host)
    before = host.files()
    saved = outside / "plan.json"
    planned = with_nginx.run(
        "plan", "-p", str(policy), "--detailed-exitcode", "--out", str(saved), cwd=outside
    )
    assert planned.returncode == 2, planned.stdout + planned.stderr
    assert host.files() == before
    planned_text = {
        change["resource"].split(":", 1)[1]: change["after"]
        for change in json.loads(saved.read_text(encoding="utf-8"))["changes"]
    }
    assert set(planned_text) == {str(host.conf), str(host.site)}

    applied = with_nginx.run("apply", str(saved), "-p", str(policy), cwd=outside)
    assert applied.returncode == 0, applied.stdout + applied.stderr
    after = host.files()
    for path, text in planned_text.items():
        assert after[path].data == text.encode(), path
        assert after[path].data != before[path].data, path
    assert b"ssl_protocols TLSv1.2 TLSv1.3;" in after[str(host.conf)].data

    again = with_nginx.run("plan", "-p", str(policy), "--detailed-exitcode", cwd=outside)
    assert again.returncode == 0, again.stdout + again.stderr


def test_installed_playbooks_run_on_their_own(
    with_nginx: Venv, host: NginxHost, outside: Path
) -> None:
    """The README's `ansible-playbook -i hosts.ini "$(remediate playbooks path)/collect.yml"`."""
    playbooks = Path(with_nginx.run("playbooks", "path", cwd=outside).stdout.strip())
    write_setup(outside, host)
    collected = subprocess.run(
        [
            str(with_nginx.root / "bin" / "ansible-playbook"),
            "-i",
            str(outside / "hosts.ini"),
            str(playbooks / "collect.yml"),
            "-v",
        ],
        cwd=outside,
        env=with_nginx.env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert collected.returncode == 0, collected.stdout + collected.stderr
    assert "remediate-nginx-version nginx version: nginx/" in collected.stdout
    assert str(host.site) in collected.stdout


def _one_line_error(result: subprocess.CompletedProcess[str], extra: str, package: str) -> None:
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert package in lines[0]
    assert lines[0].endswith(f"pip install 'remediate[{extra}]'"), lines[0]


def test_a_missing_extra_is_one_line_naming_it(
    core: Venv, outside: Path, fleet: object, cli: Cli
) -> None:
    gcp = outside / "gcp.yaml"
    gcp.write_text("version: 1\ngcp:\n  projects: [shop-prod]\n", encoding="utf-8")
    result = core.run("plan", "-p", str(gcp), cwd=outside)
    _one_line_error(result, "gcp", "google-cloud-compute")
    assert result.stderr.startswith("error: the gcp provider needs ")

    nginx = outside / "nginx.yaml"
    (outside / "hosts.ini").write_text("[web]\nweb1 ansible_connection=local\n", encoding="utf-8")
    nginx.write_text(
        f"version: 1\nnginx:\n  inventory: {outside / 'hosts.ini'}\n", encoding="utf-8"
    )
    result = core.run("plan", "-p", str(nginx), cwd=outside)
    _one_line_error(result, "nginx", "ansible-runner")
    assert result.stderr.startswith("error: the nginx provider needs ")

    # A saved AWS plan (made here, against the moto server) applied through Pulumi.
    aws = outside / "aws.yaml"
    aws.write_text("version: 1\naws:\n  regions: [us-east-1]\n", encoding="utf-8")
    saved = outside / "plan.json"
    planned = cli("plan", "-p", str(aws), "--out", str(saved))
    assert planned.code == 0, planned.stderr
    moto = {name: value for name, value in os.environ.items() if name.startswith("AWS_")}
    result = core.run(
        "apply", str(saved), "-p", str(aws), "--executor", "pulumi", cwd=outside, env=moto
    )
    _one_line_error(result, "pulumi", "pulumi-aws")
    assert result.stderr.startswith("error: the pulumi executor needs ")

    result = core.run("demo", cwd=outside)
    _one_line_error(result, "sandbox", "moto")
    assert result.stderr.startswith("error: remediate demo needs ")
