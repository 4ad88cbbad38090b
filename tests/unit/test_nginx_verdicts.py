"""A host's Nginx verdict as the plan shows it (each file's change: rules, reason, diff label,
symbolic and hard links, the sockets verification expects), and the WebSocket edits at their
edges: a location's own `proxy_http_version`, one header of two missing, locations left out,
keepalive upstreams, and which server answers a socket whose default refuses handshakes."""

from __future__ import annotations

from typing import Any

from remediate.model import Endpoint
from remediate.policy import Policy
from remediate.policy import model as policy_model
from remediate.providers.nginx import edit, rules
from remediate.providers.nginx.config import parse_tree
from remediate.rules import Note, Verdict
from remediate.targets import HostFile, Socket

MAIN = "/etc/nginx/nginx.conf"
SITE = "/etc/nginx/sites-enabled/app"
REAL = "/etc/nginx/sites-available/app"


def policy(**overrides: Any) -> Policy:
    data: dict[str, Any] = {"nginx": {}, "websocket": {"locations": []}, "http2": False}
    data.update(overrides)
    return policy_model().model_validate(data)


def main_with(http_lines: str) -> str:
    return f"events {{}}\n\nhttp {{\n{http_lines}\n    include sites-enabled/*;\n}}\n"


def host(conf_path: str = MAIN, prefix: str | None = None) -> Endpoint:
    return Endpoint(
        provider="nginx",
        resource="web1",
        kind="nginx-host",
        name="web1",
        context={"version": "1.22.1", "conf_path": conf_path, "prefix": prefix},
    )


def fix(
    files: dict[str, str], pol: Policy, version: str = "1.22.1"
) -> tuple[dict[str, str], rules.Review]:
    """The edited files and the review; asserts that a second pass changes nothing."""
    found = rules.review(parse_tree(files, MAIN), pol, version)
    new = edit.apply(files, [item.edit for item in found.fixes])
    again = rules.review(parse_tree({**files, **new}, MAIN), pol, version)
    assert [item.reason for item in again.fixes] == []
    return new, found


APP = """server {
    listen 443 ssl;
    server_name app.example;
    ssl_ciphers AES128-SHA:AES256-SHA;

    location /ws/ {
        proxy_pass http://127.0.0.1:9001;
    }

    location @x {
        return 404;
    }
}
"""


def test_each_file_of_a_host_is_one_change_naming_its_rules_links_and_sockets() -> None:
    files = {MAIN: main_with("    ssl_protocols TLSv1 TLSv1.2;"), SITE: APP}
    facts = {
        rules.TREES: {"web1": files},
        rules.LINKS: {"web1": {SITE: REAL}},
        rules.HARD_LINKS: {"web1": {MAIN: 2}},
    }
    pol = policy(websocket={"locations": ["/ws/", "@x"]})
    verdict = rules.evaluate(host(), pol, facts)
    main, site = verdict.changes
    sockets = (
        Socket(address="*", port=443, server_name="app.example", http2=False, ws_paths=("/ws/",)),
    )
    assert (main.resource, main.kind, main.attribute) == (f"web1:{MAIN}", "file", "content")
    assert main.rules == ("nginx-tls-floor", "nginx-websocket-upgrade")
    assert main.reason == (
        "ssl_protocols accepts TLS 1.0 on *:443 (default server app.example); "
        "no map $http_upgrade at http level to set the Connection header "
        f"(adds $connection_upgrade); {MAIN} has 2 hard links: written in place, so every name "
        "sees the new text"
    )
    assert list(main.diff or {}) == [MAIN]
    assert main.target == HostFile(host="web1", path=MAIN, sockets=sockets)
    assert (site.resource, site.kind) == (f"web1:{SITE}", "file")
    assert site.rules == ("nginx-weak-ciphers", "nginx-websocket-upgrade")
    assert site.before == APP
    assert site.reason.startswith(
        "ssl_ciphers offers only ciphers made for old TLS (no AEAD suite for TLS 1.2) on "
        "*:443 (default server app.example); location /ws/ (server app.example) proxies with "
        "HTTP/1.0"
    )
    assert "hard links" not in site.reason
    assert list(site.diff or {}) == [f"{SITE} (symlink to {REAL})"]
    assert (site.diff or {})[f"{SITE} (symlink to {REAL})"].startswith(f"--- a{SITE}\n+++ b{SITE}")
    assert site.target == HostFile(host="web1", path=SITE, real_path=REAL, sockets=sockets)
    # The findings come with the changes.
    assert verdict.findings == [
        Note(
            "nginx-websocket-upgrade",
            "location @x (server app.example) carries WebSockets but has no proxy_pass to fix",
        )
    ]


def test_the_sockets_after_the_edits_have_http2_only_where_the_policy_turns_it_on() -> None:
    files = {MAIN: main_with("    ssl_protocols TLSv1 TLSv1.2;"), SITE: APP}
    facts = {rules.TREES: {"web1": files}}
    [off, _] = rules.evaluate(host(), policy(), facts).changes
    [on, _] = rules.evaluate(host(), policy(http2=True), facts).changes
    assert isinstance(off.target, HostFile) and isinstance(on.target, HostFile)
    assert [s.http2 for s in off.target.sockets] == [False]
    assert [s.http2 for s in on.target.sockets] == [True]


def test_a_verdict_reached_at_discovery_is_taken_only_under_an_equal_policy() -> None:
    files = {MAIN: main_with("    ssl_protocols TLSv1 TLSv1.2;"), SITE: APP}
    pol = policy()
    reached = Verdict(findings=[Note("nginx-tls-floor", "reached while Ansible finished")])
    facts = {rules.TREES: {"web1": files}, rules.REVIEWED: {"web1": (pol, reached)}}
    # Equal, not only the same object: a policy read again from the same file.
    assert rules.evaluate(host(), policy(), facts) is reached
    fresh = rules.evaluate(host(), policy(http2=True), facts)
    assert fresh == rules.evaluate(host(), policy(http2=True), {rules.TREES: {"web1": files}})
    assert [c.resource for c in fresh.changes] == [f"web1:{MAIN}", f"web1:{SITE}"]
    # Another host's verdict is not this one's.
    other = {**facts, rules.REVIEWED: {"web2": (pol, reached)}}
    assert rules.evaluate(host(), pol, other) is not reached


def test_a_relative_conf_path_is_read_under_the_hosts_prefix() -> None:
    conf = "/usr/local/nginx/conf/nginx.conf"
    files = {conf: "events {}\nhttp {\n    server { listen 443 ssl; }\n}\n"}
    verdict = rules.evaluate(
        host("conf/nginx.conf", "/usr/local/nginx"), policy(), {rules.TREES: {"web1": files}}
    )
    assert [c.resource for c in verdict.changes] == [f"web1:{conf}"]


def test_facts_without_any_nginx_tree_are_the_unread_finding() -> None:
    verdict = rules.evaluate(host(), policy(), {})
    assert verdict.changes == []
    assert verdict.findings == [
        Note("nginx-config-unread", "the config tree of this host was not collected")
    ]


STREAM = """events {}
http {
    ssl_protocols TLSv1.2 TLSv1.3;
}
stream {
    server {
        listen 127.0.0.1:5432 ssl;
        server_name db.example;
        proxy_pass 127.0.0.1:5433;
    }
    server {
        listen 6432;
        proxy_pass 127.0.0.1:6433;
    }
}
"""


def test_a_stream_tls_socket_is_expected_as_tls_only() -> None:
    [socket] = rules.sockets(parse_tree({MAIN: STREAM}, MAIN), policy(http2=True), "1.22.1")
    assert socket == Socket(address="127.0.0.1", port=5432, server_name="db.example", stream=True)


REJECTING = """server {
    listen 443 ssl default_server;
    server_name _;
    ssl_reject_handshake on;
}
server {
    listen 443 ssl;
    server_name old.example;
    ssl_reject_handshake on;
}
server {
    listen 443 ssl http2;
    server_name shop.example;
    ssl_reject_handshake off;
}
"""


def test_a_default_server_that_refuses_handshakes_is_probed_through_the_first_named_one() -> None:
    config = parse_tree({MAIN: main_with(""), SITE: REJECTING}, MAIN)
    [socket] = rules.sockets(config, policy(), "1.22.1")
    assert (socket.server_name, socket.http2) == ("shop.example", True)
    # With every server refusing, the default server is the one to probe.
    alone = REJECTING.split("server {\n    listen 443 ssl http2;", 1)[0]
    [socket] = rules.sockets(
        parse_tree({MAIN: main_with(""), SITE: alone}, MAIN), policy(), "1.22.1"
    )
    assert socket.server_name == "_"
    # Turned off, the default server answers.
    accepting = REJECTING.replace("server_name _;\n    ssl_reject_handshake on;", "server_name _;")
    [socket] = rules.sockets(
        parse_tree({MAIN: main_with(""), SITE: accepting}, MAIN), policy(), "1.22.1"
    )
    assert socket.server_name == "_"


WS = """server {
    listen 443 ssl;
    server_name app.example;
    ssl_protocols TLSv1.2 TLSv1.3;
%s
}
"""
HTTP = main_with("    map $http_upgrade $connection_upgrade { default upgrade; '' close; }")


def test_a_locations_own_proxy_http_version_is_set_to_1_1_where_it_is() -> None:
    location = (
        "    location /ws/ {\n        proxy_http_version 1.0;\n        proxy_pass http://b;\n    }"
    )
    files = {MAIN: HTTP, SITE: WS % location}
    new, found = fix(files, policy(websocket={"locations": ["/ws/"]}))
    assert new[SITE] == WS % (
        "    location /ws/ {\n        proxy_http_version 1.1;\n        proxy_pass http://b;\n"
        "        proxy_set_header Upgrade $http_upgrade;\n"
        "        proxy_set_header Connection $connection_upgrade;\n    }"
    )
    assert (found.fixes[0].rule, found.fixes[0].reason) == (
        "nginx-websocket-upgrade",
        "location /ws/ (server app.example) proxies with HTTP/1.0: "
        "WebSockets need proxy_http_version 1.1",
    )


def test_an_inherited_proxy_http_version_is_overridden_in_the_location() -> None:
    body = (
        "    proxy_http_version 1.0;\n"
        "    location /ws/ {\n        proxy_pass http://b;\n"
        "        proxy_set_header Upgrade $http_upgrade;\n"
        "        proxy_set_header Connection $connection_upgrade;\n    }"
    )
    files = {MAIN: HTTP, SITE: WS % body}
    new, _ = fix(files, policy(websocket={"locations": ["/ws/"]}))
    assert new[SITE] == WS % body.replace(
        "proxy_pass http://b;\n", "proxy_pass http://b;\n        proxy_http_version 1.1;\n"
    )


def test_one_missing_header_of_two_is_named_and_only_it_is_added() -> None:
    location = (
        "    location /ws/ {\n        proxy_http_version 1.1;\n        proxy_pass http://b;\n"
        "        proxy_set_header %s;\n    }"
    )
    upgrade_only = location % "Upgrade $http_upgrade"
    files = {MAIN: HTTP, SITE: WS % upgrade_only}
    new, found = fix(files, policy(websocket={"locations": ["/ws/"]}))
    assert [f.reason for f in found.fixes] == [
        "WebSocket header Connection missing in location /ws/ (server app.example)"
    ]
    assert new[SITE] == WS % upgrade_only.replace(
        "$http_upgrade;\n",
        "$http_upgrade;\n        proxy_set_header Connection $connection_upgrade;\n",
    )
    connection_only = location % "Connection $connection_upgrade"
    _, found = fix(
        {MAIN: HTTP, SITE: WS % connection_only}, policy(websocket={"locations": ["/ws/"]})
    )
    assert [f.reason for f in found.fixes] == [
        "WebSocket header Upgrade missing in location /ws/ (server app.example)"
    ]


def test_a_location_without_proxy_pass_does_not_stop_the_next_one_being_fixed() -> None:
    body = (
        "    location /static/ {\n        root /srv;\n    }\n"
        "    location /ws/ {\n        proxy_pass http://b;\n    }"
    )
    new, found = fix(
        {MAIN: HTTP, SITE: WS % body}, policy(websocket={"locations": ["/static/", "/ws/"]})
    )
    assert "proxy_set_header Upgrade $http_upgrade;" in new[SITE].split("location /ws/", 1)[1]
    assert found.findings == [
        Note(
            "nginx-websocket-upgrade",
            "location /static/ (server app.example) carries WebSockets but has no proxy_pass "
            "to fix",
        )
    ]


def test_star_says_nothing_of_locations_that_do_not_proxy_or_that_are_named() -> None:
    body = (
        "    proxy_pass_request_headers off;\n"
        "    location /static/ {\n        root /srv;\n    }\n"
        "    location /api/ {\n        proxy_pass http://b;\n    }\n"
        "    location /ws/ {\n        proxy_pass http://c;\n    }"
    )
    files = {MAIN: HTTP, SITE: WS % body}
    new, found = fix(files, policy(websocket={"locations": ["*", "/ws/"]}))
    assert "Upgrade" in new[SITE].split("location /ws/", 1)[1]
    assert "Upgrade" not in new[SITE].split("location /ws/", 1)[0]
    assert [n.message for n in found.findings] == [
        "location /api/ (server app.example) left without WebSocket headers: "
        "proxy_pass_request_headers off drops the client's Upgrade header "
        "(name it in websocket.locations to edit it anyway)"
    ]


KEEPALIVE = """upstream app {
    server 127.0.0.1:8065;
    keepalive 32;
}
upstream plain {
    server 127.0.0.1:8066;
}
server {
    listen 443 ssl;
    server_name chat.example;
    ssl_protocols TLSv1.2 TLSv1.3;
    location /a/ {
        proxy_http_version 1.1;
        proxy_pass http://app/a/b;
    }
    location /b/ {
        proxy_http_version 1.1;
        proxy_pass http://plain;
    }
    location /c/ {
        proxy_http_version 1.1;
        proxy_set_header Connection "";
        proxy_pass http://plain;
    }
}
"""


def test_locations_that_keep_upstream_connections_alive_get_the_keepalive_map() -> None:
    files = {MAIN: main_with(""), SITE: KEEPALIVE}
    new, found = fix(files, policy(websocket={"locations": ["*"]}))
    keeps_c = (
        "WebSocket headers missing in location /c/ (server chat.example) (it sends "
        'Connection "" to keep upstream connections alive: $connection_upgrade_keepalive '
        'sends Connection "" to ordinary requests, so upstream keepalive is kept)'
    )
    # /c/: its Connection header is replaced, and the Upgrade header added.
    assert [(f.edit.path, f.reason) for f in found.fixes] == [
        (
            SITE,
            "WebSocket headers missing in location /a/ (server chat.example) (upstream app "
            'keeps connections alive: $connection_upgrade_keepalive sends Connection "" to '
            "ordinary requests, so upstream keepalive is kept)",
        ),
        (SITE, "WebSocket headers missing in location /b/ (server chat.example)"),
        (SITE, keeps_c),
        (SITE, keeps_c),
        (
            MAIN,
            "no map $http_upgrade at http level to set the Connection header "
            "(adds $connection_upgrade)",
        ),
        (
            MAIN,
            "no map $http_upgrade at http level that keeps upstream keepalive "
            '(Connection "" unless upgrading) (adds $connection_upgrade_keepalive)',
        ),
    ]
    site = new[SITE]
    assert "Connection $connection_upgrade_keepalive;" in site.split("location /b/", 1)[0]
    assert (
        "Connection $connection_upgrade;"
        in site.split("location /b/", 1)[1].split("location /c/", 1)[0]
    )
    assert "Connection $connection_upgrade_keepalive;" in site.split("location /c/", 1)[1]


def test_an_existing_keepalive_map_is_reused_and_no_other_added() -> None:
    http = "    map $http_upgrade $keep { default upgrade; '' ''; }"
    only_a = KEEPALIVE.split("    location /b/", 1)[0] + "}\n"
    new, _ = fix({MAIN: main_with(http), SITE: only_a}, policy(websocket={"locations": ["*"]}))
    assert list(new) == [SITE]
    assert "proxy_set_header Connection $keep;" in new[SITE]


def test_wrong_header_values_are_replaced_where_they_are_written() -> None:
    body = (
        "    location /ws/ {\n        proxy_http_version 1.1;\n        proxy_pass http://b;\n"
        "        proxy_set_header Upgrade websocket;\n"
        "        proxy_set_header Connection upgrade;\n"
        "    }\n"
        "    location /live/ {\n        proxy_http_version 1.1;\n"
        "        proxy_set_header Host $host;\n        proxy_pass http://b;\n    }"
    )
    new, found = fix({MAIN: HTTP, SITE: WS % body}, policy(websocket={"locations": ["*"]}))
    assert new[SITE] == WS % (
        "    location /ws/ {\n        proxy_http_version 1.1;\n        proxy_pass http://b;\n"
        "        proxy_set_header Upgrade $http_upgrade;\n"
        "        proxy_set_header Connection $connection_upgrade;\n"
        "    }\n"
        "    location /live/ {\n        proxy_http_version 1.1;\n"
        "        proxy_set_header Host $host;\n        proxy_pass http://b;\n"
        "        proxy_set_header Upgrade $http_upgrade;\n"
        "        proxy_set_header Connection $connection_upgrade;\n    }"
    )
    assert {f.rule for f in found.fixes} == {"nginx-websocket-upgrade"}


def test_inherited_headers_are_copied_once_after_the_locations_last_proxy_line() -> None:
    body = (
        "    proxy_set_header Host $host;\n    proxy_set_header upgrade $http_upgrade;\n"
        "    location /ws/ {\n        proxy_pass http://b;\n        proxy_http_version 1.1;\n"
        "        root /srv;\n    }"
    )
    new, found = fix({MAIN: HTTP, SITE: WS % body}, policy(websocket={"locations": ["/ws/"]}))
    assert new[SITE] == WS % body.replace(
        "proxy_http_version 1.1;\n",
        "proxy_http_version 1.1;\n        proxy_set_header Host $host;\n"
        "        proxy_set_header Upgrade $http_upgrade;\n"
        "        proxy_set_header Connection $connection_upgrade;\n",
    )
    assert [f.reason for f in found.fixes] == [
        "WebSocket header Connection missing in location /ws/ (server app.example) (inherited "
        "proxy_set_header Host copied in: a location with headers of its own inherits none)"
    ]


def test_a_new_map_goes_before_the_first_server_of_the_http_block() -> None:
    main = (
        "events {}\nhttp {\n    gzip on;\n    server {\n        listen 443 ssl;\n"
        "        ssl_protocols TLSv1.2 TLSv1.3;\n"
        "        location /ws/ { proxy_http_version 1.1; proxy_pass http://b; }\n    }\n}\n"
    )
    new, _ = fix({MAIN: main}, policy(websocket={"locations": ["/ws/"]}))
    assert new[MAIN].startswith(
        "events {}\nhttp {\n    gzip on;\n    map $http_upgrade $connection_upgrade {\n"
        "        default upgrade;\n        '' close;\n    }\n\n    server {\n"
    )


def test_only_the_keepalive_map_is_added_when_only_keepalive_locations_need_one() -> None:
    only_a = KEEPALIVE.split("    location /b/", 1)[0] + "}\n"
    new, _ = fix({MAIN: main_with(""), SITE: only_a}, policy(websocket={"locations": ["*"]}))
    assert new[MAIN] == main_with(
        "\n    map $http_upgrade $connection_upgrade_keepalive {\n"
        "        default upgrade;\n        '' '';\n    }\n"
    )


HTTP2_SITE = """server {
    listen 443 ssl http2;
    server_name a.example;
    ssl_protocols TLSv1.2 TLSv1.3;
}
server {
    listen 8080;
    listen 8443 ssl;
    server_name b.example;
    ssl_protocols TLSv1.2 TLSv1.3;
}
server {
    ssl on;
    server_name c.example;
    ssl_protocols TLSv1.2 TLSv1.3;
}
server {
    listen 9443 ssl;
    server_name d.example;
    ssl_protocols TLSv1.2 TLSv1.3;
}
"""


def test_http2_is_added_on_every_socket_without_it_before_1_25_1() -> None:
    found = rules.review(
        parse_tree({MAIN: main_with(""), SITE: HTTP2_SITE}, MAIN), policy(http2=True), "1.22.1"
    )
    assert [f.reason for f in found.fixes] == [
        "HTTP/2 is off on *:8443 (default server b.example)",
        "HTTP/2 is off on *:9443 (default server d.example)",
    ]
    assert found.findings == [
        Note(
            "nginx-http2",
            "HTTP/2 is off on *:80 (default server c.example): it has no listen directive to add "
            "http2 to",
        )
    ]


def test_http2_on_is_added_to_every_server_without_it_from_1_25_1() -> None:
    site = HTTP2_SITE.split("server {\n    ssl on;", 1)[0]
    new, found = fix({MAIN: main_with(""), SITE: site}, policy(http2=True), "1.25.1")
    assert [f.reason for f in found.fixes] == ["HTTP/2 is off on *:8443 (default server b.example)"]
    assert "    server_name b.example;\n    http2 on;\n" in new[SITE]


def test_an_exact_location_named_by_its_uri_is_edited_not_skipped() -> None:
    body = (
        "    location = /api {\n        proxy_pass_request_headers off;\n"
        "        proxy_pass http://b;\n    }"
    )
    new, found = fix({MAIN: HTTP, SITE: WS % body}, policy(websocket={"locations": ["*", "/api"]}))
    assert "proxy_set_header Upgrade $http_upgrade;" in new[SITE]
    assert found.findings == []
    _, skipped = fix({MAIN: HTTP, SITE: WS % body}, policy(websocket={"locations": ["*"]}))
    assert [n.rule for n in skipped.findings] == ["nginx-websocket-upgrade"]


def test_http2_off_is_turned_on_with_its_reason_and_new_lines_follow_the_listen() -> None:
    site = (
        "server {\n    server_name a.example;\n    listen 443 ssl;\n    http2 off;\n"
        "    ssl_protocols TLSv1.2 TLSv1.3;\n}\n"
        "server {\n    server_name b.example;\n    listen 8443 ssl;\n"
        "    ssl_protocols TLSv1.2 TLSv1.3;\n}\n"
    )
    new, found = fix({MAIN: main_with(""), SITE: site}, policy(http2=True), "1.25.1")
    assert [(f.rule, f.reason) for f in found.fixes] == [
        ("nginx-http2", "HTTP/2 is off on *:443 (default server a.example)"),
        ("nginx-http2", "HTTP/2 is off on *:8443 (default server b.example)"),
    ]
    assert new[SITE] == site.replace("http2 off;", "http2 on;").replace(
        "listen 8443 ssl;\n", "listen 8443 ssl;\n    http2 on;\n"
    )


def test_a_compliant_location_does_not_stop_the_next_one_being_fixed() -> None:
    body = (
        "    location /ok/ {\n        proxy_http_version 1.1;\n        proxy_pass http://b;\n"
        "        proxy_set_header Upgrade $http_upgrade;\n"
        "        proxy_set_header Connection $connection_upgrade;\n    }\n"
        "    location /ws/ {\n        proxy_set_header Host $host;\n        proxy_pass http://b;\n"
        "        proxy_http_version 1.1;\n    }"
    )
    new, _ = fix({MAIN: HTTP, SITE: WS % body}, policy(websocket={"locations": ["*"]}))
    assert new[SITE] == WS % body.replace(
        "proxy_http_version 1.1;\n    }",
        "proxy_http_version 1.1;\n        proxy_set_header Upgrade $http_upgrade;\n"
        "        proxy_set_header Connection $connection_upgrade;\n    }",
    )


def test_an_unnamed_stream_socket_is_expected_with_no_server_name() -> None:
    stream = STREAM.replace("        server_name db.example;\n", "")
    [socket] = rules.sockets(parse_tree({MAIN: stream}, MAIN), policy(), "1.22.1")
    assert (socket.port, socket.server_name, socket.stream) == (5432, "", True)
