"""Real published Nginx configurations (tests/corpus/nginx/), each laid out as on its host and
served by a real nginx on loopback, planned, applied through Ansible and rolled back with the
`remediate` command, exactly as a user would.

One run covers the whole corpus (every case is a host of one inventory, so Ansible starts once per
step, not once per case); the checks are per case: the plan changes the files it should, `nginx -t`
passes, TLS 1.0 and 1.1 are refused with a protocol alert, 1.2 is accepted, h2 is selected by
ALPN, every WebSocket location echoes, a second plan is empty, comments, links and hard links
survive, and rollback restores every byte.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from remediate.policy import model as policy_model
from remediate.providers.nginx.config import parse_tree
from remediate.providers.nginx.rules import review
from remediate.verify import alpn_selected, tls_accepted
from tests.nginx_corpus import NGINX, CorpusHost, FileState, cases, websocket_echo
from tests.nginx_env import wait_until, websocket_backend

pytestmark = pytest.mark.skipif(
    not Path(NGINX).exists(), reason="needs the nginx binary (Debian package nginx)"
)

CASES = cases()
POLICY = """\
version: 1
tls:
  minimum: "1.2"
http2: true
websocket:
  locations: ["*"]
nginx:
  inventory: {inventory}
  managed_files: edit
"""


@dataclass
class Run:
    """The corpus after one plan and apply, and what each step reported."""

    hosts: dict[str, CorpusHost]
    before: dict[str, dict[str, FileState]]
    plan: dict[str, object]
    apply: subprocess.CompletedProcess[str]
    after: dict[str, dict[str, FileState]]
    second_plan: dict[str, object]
    remediate: list[str]
    env: dict[str, str]
    policy: Path
    rolled_back: subprocess.CompletedProcess[str] | None = None


def remediate(run_env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "remediate", *args],
        capture_output=True,
        text=True,
        env=run_env,
        timeout=600,
        check=False,
    )


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    workdir = tmp_path_factory.mktemp("corpus")
    with websocket_backend() as backend:
        hosts = {name: CorpusHost(name, workdir / name, backend) for name in CASES}
        try:
            for host in hosts.values():
                host.lay_out()
                host.start()
            inventory = workdir / "hosts.ini"
            inventory.write_text(
                "[corpus]\n"
                + "".join(
                    host.inventory_line("/usr/bin/python3") + "\n" for host in hosts.values()
                ),
                encoding="utf-8",
            )
            policy = workdir / "remediate.yaml"
            policy.write_text(POLICY.format(inventory=inventory), encoding="utf-8")
            env = {**os.environ, "REMEDIATE_STATE_DIR": str(workdir / "state")}
            before = {name: host.tree() for name, host in hosts.items()}
            plan_file = workdir / "plan.json"
            planned = remediate(env, "plan", "-p", str(policy), "--out", str(plan_file))
            assert planned.returncode == 0, planned.stdout + planned.stderr
            applied = remediate(env, "apply", str(plan_file), "-p", str(policy), "--auto-approve")
            after = {name: host.tree() for name, host in hosts.items()}
            second_file = workdir / "plan2.json"
            second = remediate(env, "plan", "-p", str(policy), "--out", str(second_file))
            assert second.returncode == 0, second.stdout + second.stderr
            yield Run(
                hosts,
                before,
                json.loads(plan_file.read_text()),
                applied,
                after,
                json.loads(second_file.read_text()),
                [planned.stdout],
                env,
                policy,
            )
        finally:
            for host in hosts.values():
                host.stop()


def changes_of(plan: dict[str, object], host: str) -> list[dict[str, object]]:
    changes = plan["changes"]
    assert isinstance(changes, list)
    return [c for c in changes if str(c["resource"]).startswith(f"{host}:")]


@pytest.mark.parametrize("case", CASES)
def test_plan_apply_and_probe(corpus: Run, case: str) -> None:
    host = corpus.hosts[case]
    assert corpus.apply.returncode == 0, corpus.apply.stdout + corpus.apply.stderr
    planned = changes_of(corpus.plan, case)
    changed = sorted(str(c["resource"]).split(":", 1)[1] for c in planned)
    assert changed == sorted(str(host.root / p) for p in host.meta["expect_changes"])

    checked = host.test_config()
    assert checked.returncode == 0, checked.stderr

    for target, ws_paths, http2 in host.targets():
        assert tls_accepted(target, "1.0") is False, target
        assert tls_accepted(target, "1.1") is False, target
        assert tls_accepted(target, "1.2") is True, target
        # A stream {} server speaks no HTTP: it gets the floor, and no ALPN to offer.
        assert alpn_selected(target) == ("h2" if http2 else None), target
        for path in ws_paths:
            # A reload takes effect as old workers finish; the echo may need a moment.
            wait_until(
                lambda target=target, path=path: websocket_echo(target, path),
                what=f"an echo on {target} {path}",
            )

    assert changes_of(corpus.second_plan, case) == []

    before, after = corpus.before[case], corpus.after[case]
    assert before.keys() == after.keys()
    for name, state in before.items():
        now = after[name]
        assert now.link == state.link, f"{name} is no longer the same link"
        assert now.mode == state.mode, name
        if state.data is None or now.data is None:
            continue
        assert now.inode == state.inode or name not in _hard_linked(host), name
        # Comments survive: every comment line of the original is still there.
        old_comments = [x for x in state.data.decode().splitlines() if x.strip().startswith("#")]
        new_lines = now.data.decode().splitlines()
        assert all(line in new_lines for line in old_comments), name
    for second, first in host.meta.get("hardlinks", {}).items():
        assert after[second].inode == after[first].inode
        assert after[second].data == after[first].data


def _hard_linked(host: CorpusHost) -> set[str]:
    links = host.meta.get("hardlinks", {})
    return set(links) | set(links.values())


@pytest.fixture(scope="module")
def rolled_back(corpus: Run) -> Run:
    history = remediate(corpus.env, "history", "--kind", "apply", "--format", "json")
    assert history.returncode == 0, history.stderr
    run_id = json.loads(history.stdout)["runs"][0]["run_id"]
    corpus.rolled_back = remediate(
        corpus.env, "rollback", run_id, "-p", str(corpus.policy), "--auto-approve"
    )
    return corpus


@pytest.mark.parametrize("case", CASES)
def test_rollback_restores_every_byte(rolled_back: Run, case: str) -> None:
    result = rolled_back.rolled_back
    assert result is not None and result.returncode == 0, (result.stdout, result.stderr)
    host = rolled_back.hosts[case]
    now = host.tree()
    before = rolled_back.before[case]
    assert now.keys() == before.keys()
    for name, state in before.items():
        assert (now[name].link, now[name].data, now[name].mode) == (
            state.link,
            state.data,
            state.mode,
        ), name
    for second, first in host.meta.get("hardlinks", {}).items():
        assert now[second].inode == now[first].inode
    assert host.test_config().returncode == 0


def test_certbot_options_are_reported_not_edited_by_default(tmp_path: Path) -> None:
    """Without `nginx.managed_files: edit`, certbot's file is left alone with a finding that
    names it and the choice; the server block's own changes still happen."""
    host = CorpusHost("certbot-shared-options", tmp_path / "certbot", "127.0.0.1:9")
    host.lay_out()
    files = {
        str(path): path.read_text(encoding="utf-8")
        for path in (host.root / "etc").rglob("*")
        if path.is_file() and not path.name.endswith((".pem", ".key", ".crt"))
    }
    config = parse_tree(files, str(host.conf), f"{host.root}/")
    default = policy_model().model_validate(
        {"version": 1, "http2": True, "websocket": {"locations": ["*"]}, "nginx": {}}
    )
    found = review(config, default, "1.22.1")
    options = str(host.root / "etc/letsencrypt/options-ssl-nginx.conf")
    assert all(fix.edit.path != options for fix in found.fixes)
    [finding] = [f.message for f in found.findings if options in f.message]
    assert "kept up to date by certbot" in finding
    assert "nginx.managed_files: edit" in finding
    assert "ssl_protocols accepts TLS 1.0, 1.1 on" in finding
    # One file, every server that includes it named.
    assert "(default server example.com)" in finding
    assert "(default server blog.example.com)" in finding
    assert found.fixes, "the sites' own edits (HTTP/2) are still planned"
