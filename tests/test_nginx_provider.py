"""The Nginx provider's endpoint contract (what the executor and verify rely on) and its errors."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from remediate.policy import model as policy_model
from remediate.providers.nginx.config import NginxConfigError, parse_tree
from remediate.providers.nginx.discover import endpoint_of
from remediate.providers.nginx.host import HostConfig, tree_fingerprint
from tests.conftest import Cli

MAIN = "/etc/nginx/nginx.conf"
FILES = {
    MAIN: "events {}\nhttp {\n    include sites/*.conf;\n    include loop.conf;\n}\n",
    "/etc/nginx/sites/a.conf": (
        "server {\n    listen 443 ssl http2;\n    server_name a.example;\n"
        "    location /ws/ { proxy_pass http://b; }\n"
        "    location /api/ { proxy_pass http://c; }\n}\n"
        "server { listen 80; server_name plain.example; }\n"
    ),
    "/etc/nginx/loop.conf": "",
}


def host(files: dict[str, str]) -> HostConfig:
    return HostConfig(
        host="web1",
        version="1.22.1",
        conf_path=MAIN,
        prefix=None,
        binary="/usr/sbin/nginx",
        reload_command=["/usr/sbin/nginx", "-s", "reload"],
        files=files,
    )


def test_endpoint_fingerprint_covers_the_whole_tree_as_the_executor_computes_it() -> None:
    policy = policy_model().model_validate({"nginx": {}, "websocket": {"locations": ["/ws/"]}})
    endpoint = endpoint_of(host(FILES), policy)
    assert endpoint.resource == "web1"
    assert endpoint.kind == "nginx-host"
    assert set(endpoint.settings) == set(FILES)
    assert endpoint.fingerprint == tree_fingerprint(FILES)
    moved = {**FILES, "/etc/nginx/loop.conf": "# touched\n"}
    assert endpoint_of(host(moved), policy).fingerprint != endpoint.fingerprint
    assert endpoint.context == {
        "version": "1.22.1",
        "conf_path": MAIN,
        "prefix": None,
        "binary": "/usr/sbin/nginx",
        "reload_command": ["/usr/sbin/nginx", "-s", "reload"],
    }


def test_an_include_loop_is_an_error_not_a_hang() -> None:
    files = {**FILES, "/etc/nginx/loop.conf": "include loop.conf;\n"}
    with pytest.raises(NginxConfigError, match=r"loop\.conf: includes nest too deeply"):
        parse_tree(files, MAIN)


def test_a_missing_inventory_is_one_clear_line(
    cli: Cli, write_policy: Callable[[str], Path], tmp_path: Path
) -> None:
    policy = write_policy("version: 1\nnginx:\n  inventory: missing-hosts.ini\n")
    result = cli("plan", "-p", str(policy))
    assert result.code == 1
    assert result.stderr.strip().splitlines()[-1] == (
        "error: nginx.inventory missing-hosts.ini: no such file or directory"
    )
    assert "Traceback" not in result.stderr


def test_an_unset_inventory_is_one_clear_line(
    cli: Cli, write_policy: Callable[[str], Path]
) -> None:
    result = cli("plan", "-p", str(write_policy("version: 1\nnginx: {}\n")))
    assert result.code == 1
    assert "error: nginx.inventory is not set" in result.stderr
