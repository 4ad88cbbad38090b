"""The Nginx rules' decisions on their own: which protocols and ciphers are weak, how the
protocol line reads, which maps carry the WebSocket upgrade, which syntax turns HTTP/2 on, and what
a host's verdict is when its tree is missing or already compliant (the edits themselves are in
test_nginx_rules.py)."""

from __future__ import annotations

from typing import Any

import pytest

from remediate.model import Endpoint
from remediate.policy import Policy
from remediate.policy import model as policy_model
from remediate.providers.nginx import rules
from remediate.providers.nginx.config import Directive, parse_tree
from remediate.targets import HostFile, Socket

MAIN = "/etc/nginx/nginx.conf"


def policy(**overrides: Any) -> Policy:
    return policy_model().model_validate({"nginx": {}, **overrides})


def test_the_protocol_line_for_each_minimum() -> None:
    assert rules.protocol_directive("1.2") == "TLSv1.2 TLSv1.3"
    assert rules.protocol_directive("1.3") == "TLSv1.3"


def test_weak_protocols_name_ssl_and_old_tls_in_order() -> None:
    assert rules.weak_protocols(["SSLv3", "TLSv1.1", "TLSv1", "TLSv1.2", "TLSv1.3"], "1.2") == [
        "SSL 3",
        "TLS 1.0, 1.1",
    ]
    assert rules.weak_protocols(["SSLv2", "TLSv1.2"], "1.2") == ["SSL 2"]
    assert rules.weak_protocols(["TLSv1.2", "TLSv1.3"], "1.2") == []
    assert rules.weak_protocols(["TLSv1.2", "TLSv1.3"], "1.3") == ["TLS 1.2"]
    assert rules.weak_protocols(["TLSv1.3", "bogus"], "1.3") == []


@pytest.mark.parametrize(
    ("ciphers", "problem"),
    [
        ("DEFAULT:@SECLEVEL=0", "lowers the OpenSSL security level (@SECLEVEL=0)"),
        ("HIGH:@seclevel=0", "lowers the OpenSSL security level (@SECLEVEL=0)"),
        (
            "AES128-SHA:AES256-SHA",
            "offers only ciphers made for old TLS (no AEAD suite for TLS 1.2)",
        ),
        ("ECDHE-RSA-AES128-GCM-SHA256:AES128-SHA", None),
        ("HIGH:!aNULL", None),
        ("NOT-A-CIPHER", None),
    ],
)
def test_cipher_lists_that_fall_short(ciphers: str, problem: str | None) -> None:
    assert rules.cipher_problem(ciphers) == problem


def block(name: str, args: list[str], children: list[tuple[str, list[str]]]) -> Directive:
    return Directive(
        name,
        args,
        MAIN,
        1,
        0,
        [Directive(n, a, MAIN, 2 + i, 1 + i) for i, (n, a) in enumerate(children)],
    )


def test_an_upgrade_map_is_recognised_under_any_name_and_only_exactly() -> None:
    usual = [("default", ["upgrade"]), ("", ["close"])]
    assert rules.upgrade_map_variable(block("map", ["$http_upgrade", "$conn"], usual)) == "conn"
    assert (
        rules.upgrade_map_variable(
            block("map", ["$http_upgrade", "$c"], [("default", ["Upgrade"]), ("", ["Close"])])
        )
        == "c"
    )
    assert rules.upgrade_map_variable(block("map", ["$http_host", "$c"], usual)) is None
    assert rules.upgrade_map_variable(block("map", ["$http_upgrade"], usual)) is None
    assert rules.upgrade_map_variable(block("geo", ["$http_upgrade", "$c"], usual)) is None
    keep_alive = [("default", ["upgrade"]), ("", ["keep-alive"])]
    assert rules.upgrade_map_variable(block("map", ["$http_upgrade", "$c"], keep_alive)) is None
    extra = [*usual, ("websocket", ["upgrade"])]
    assert rules.upgrade_map_variable(block("map", ["$http_upgrade", "$c"], extra)) is None
    assert rules.upgrade_map_variable(Directive("map", ["$http_upgrade", "$c"], MAIN, 1, 0)) is None


def test_http2_syntax_changes_at_1_25_1() -> None:
    assert rules.http2_directive_syntax((1, 25, 1))
    assert rules.http2_directive_syntax((1, 26, 0))
    assert not rules.http2_directive_syntax((1, 25, 0))
    assert not rules.http2_directive_syntax((1, 22, 1))


SITE = """events {}
http {
    server {
        listen 443 ssl;
        server_name a.example;
        location /ws/ { proxy_pass http://b; }
        location /static/ { root /srv; }
        location = /live { proxy_pass http://b; }
    }
    server {
        listen 8443 ssl;
        server_name b.example;
        location /ws/ { proxy_pass http://c; }
    }
}
"""


def test_websocket_locations_by_uri_path_or_star() -> None:
    config = parse_tree({MAIN: SITE}, MAIN)
    star = rules.websocket_locations(config, ["*"])
    assert [(loc.server.name, loc.uri) for loc in star] == [
        ("a.example", "/ws/"),
        ("a.example", "/live"),
        ("b.example", "/ws/"),
    ]
    named = rules.websocket_locations(config, ["/ws/", "/static/"])
    assert [(loc.server.name, loc.uri) for loc in named] == [
        ("a.example", "/ws/"),
        ("a.example", "/static/"),
        ("b.example", "/ws/"),
    ]
    assert rules.websocket_locations(config, []) == []


def test_sockets_say_what_verify_checks_on_each_tls_socket() -> None:
    config = parse_tree({MAIN: SITE.replace("listen 8443 ssl;", "listen 8443 ssl http2;")}, MAIN)
    plain = parse_tree({MAIN: SITE.replace("listen 443 ssl;", "listen 80;")}, MAIN)
    assert [
        s.model_dump()
        for s in rules.sockets(config, policy(websocket={"locations": ["*"]}), "1.22.1")
    ] == [
        {
            "address": "*",
            "port": 443,
            "server_name": "a.example",
            "http2": False,
            "ws_paths": ("/ws/", "/live"),
            "stream": False,
            "client_timeout": None,
        },
        {
            "address": "*",
            "port": 8443,
            "server_name": "b.example",
            "http2": True,
            "ws_paths": ("/ws/",),
            "stream": False,
            "client_timeout": None,
        },
    ]
    assert [s.port for s in rules.sockets(plain, policy(), "1.22.1")] == [8443]


def host(files: dict[str, str] | None, version: str = "1.22.1") -> tuple[Endpoint, dict[str, Any]]:
    endpoint = Endpoint(
        provider="nginx",
        resource="web1",
        kind="nginx-host",
        name="web1",
        context={"version": version, "conf_path": MAIN, "prefix": None},
    )
    return endpoint, {rules.TREES: {} if files is None else {"web1": files}}


def test_a_host_whose_tree_was_not_collected_is_a_finding() -> None:
    endpoint, facts = host(None)
    verdict = rules.evaluate(endpoint, policy(), facts)
    assert verdict.changes == []
    assert [n.message for n in verdict.findings] == [
        "the config tree of this host was not collected"
    ]


def test_a_compliant_host_gets_no_change_but_keeps_its_findings() -> None:
    compliant = (
        "events {}\nhttp {\n    ssl_protocols TLSv1.2 TLSv1.3;\n    server {\n"
        "        listen 443 ssl http2;\n        location @x { return 200; }\n    }\n}\n"
    )
    endpoint, facts = host({MAIN: compliant})
    verdict = rules.evaluate(endpoint, policy(websocket={"locations": ["@x"]}), facts)
    assert verdict.changes == []
    assert [n.message for n in verdict.findings] == [
        "location @x (server unnamed) carries WebSockets but has no proxy_pass to fix"
    ]


def test_a_host_verdict_uses_the_tree_discovery_already_parsed() -> None:
    weak = (
        "events {}\nhttp {\n    ssl_protocols TLSv1 TLSv1.2;\n"
        "    server { listen 443 ssl http2; }\n}\n"
    )
    compliant = weak.replace("TLSv1 TLSv1.2", "TLSv1.2 TLSv1.3")
    endpoint, facts = host({MAIN: weak})
    facts[rules.PARSED] = {"web1": parse_tree({MAIN: compliant}, MAIN)}
    assert rules.evaluate(endpoint, policy(), facts).changes == []
    del facts[rules.PARSED]
    [change] = rules.evaluate(endpoint, policy(), facts).changes
    assert change.resource == f"web1:{MAIN}"
    assert change.reason == "ssl_protocols accepts TLS 1.0 on *:443 (default server unnamed)"
    assert change.target == HostFile(
        host="web1",
        path=MAIN,
        sockets=(Socket(address="*", port=443, server_name="", http2=True, ws_paths=()),),
    )
