"""Nginx rules and their edits on in-memory trees: what changes, where, in which words, and that
everything outside the edited lines stays byte for byte (the real-binary checks are in
test_nginx_real.py)."""

from __future__ import annotations

from typing import Any

import pytest

from remediate import planner
from remediate.hosts import sha256_text
from remediate.inventory import Inventory
from remediate.model import Endpoint
from remediate.policy import Policy
from remediate.policy import model as policy_model
from remediate.providers.nginx import edit, rules
from remediate.providers.nginx.config import parse_tree
from remediate.targets import HostFile, Socket

pytestmark = pytest.mark.unit

MAIN = "/etc/nginx/nginx.conf"
SITE = "/etc/nginx/conf.d/site.conf"


def policy(**overrides: Any) -> Policy:
    data: dict[str, Any] = {"nginx": {}, "websocket": {"locations": []}}
    data.update(overrides)
    return policy_model().model_validate(data)


def fix(
    files: dict[str, str], pol: Policy, version: str = "1.22.1"
) -> tuple[dict[str, str], list[str]]:
    """The edited files and the reasons; asserts that a second pass changes nothing."""
    found = rules.review(parse_tree(files, MAIN), pol, version)
    new = edit.apply(files, [item.edit for item in found.fixes])
    again = rules.review(parse_tree({**files, **new}, MAIN), pol, version)
    assert [item.reason for item in again.fixes] == []
    return new, list(dict.fromkeys(item.reason for item in found.fixes))


def main_with(http_lines: str) -> str:
    return f"events {{}}\n\nhttp {{\n{http_lines}\n\tinclude conf.d/*.conf;\n}}\n"


def changed_lines(before: str, after: str) -> list[str]:
    diff = edit.unified_diff("/f", before, after).splitlines()[2:]
    return [row for row in diff if row[:1] in "+-"]


def test_http_level_protocols_are_fixed_in_place_keeping_the_comment() -> None:
    files = {
        MAIN: main_with(
            "\tssl_protocols TLSv1 TLSv1.1 TLSv1.2 TLSv1.3; # Dropping SSLv3, ref: POODLE"
        ),
        SITE: "server {\n    listen 443 ssl;\n    server_name shop.example;\n}\n",
    }
    new, reasons = fix(files, policy(http2=False))
    assert list(new) == [MAIN]
    assert changed_lines(files[MAIN], new[MAIN]) == [
        "-\tssl_protocols TLSv1 TLSv1.1 TLSv1.2 TLSv1.3; # Dropping SSLv3, ref: POODLE",
        "+\tssl_protocols TLSv1.2 TLSv1.3; # Dropping SSLv3, ref: POODLE",
    ]
    assert reasons == ["ssl_protocols accepts TLS 1.0, 1.1 on *:443 (default server shop.example)"]


def test_a_server_override_is_fixed_where_it_is_and_a_strict_one_left_alone() -> None:
    files = {
        MAIN: main_with("\tssl_protocols TLSv1.2;"),
        SITE: (
            "server {\n    listen 443 ssl;\n    server_name old.example;\n"
            "    ssl_protocols SSLv3 TLSv1 TLSv1.2;\n}\n"
            "server {\n    listen 8443 ssl;\n    server_name new.example;\n"
            "    ssl_protocols TLSv1.3;\n}\n"
        ),
    }
    new, reasons = fix(files, policy(http2=False))
    assert list(new) == [SITE]
    assert changed_lines(files[SITE], new[SITE]) == [
        "-    ssl_protocols SSLv3 TLSv1 TLSv1.2;",
        "+    ssl_protocols TLSv1.2 TLSv1.3;",
    ]
    assert reasons == ["ssl_protocols accepts SSL 3, TLS 1.0 on *:443 (default server old.example)"]


def test_minimum_tls_13() -> None:
    files = {
        MAIN: main_with("\tssl_protocols TLSv1.2 TLSv1.3;"),
        SITE: "server { listen 443 ssl; server_name a; }\n",
    }
    new, reasons = fix(files, policy(http2=False, tls={"minimum": "1.3"}))
    assert "\tssl_protocols TLSv1.3;\n" in new[MAIN]
    assert reasons == ["ssl_protocols accepts TLS 1.2 on *:443 (default server a)"]


@pytest.mark.parametrize("version", ["1.22.1", "1.25.3"])
def test_unset_protocols_get_an_http_level_line_after_the_other_ssl_settings(version: str) -> None:
    files = {
        MAIN: main_with("\tsendfile on;\n\tssl_prefer_server_ciphers on;\n\n\tgzip on;"),
        SITE: "server { listen 443 ssl http2; server_name a; http2 on; }\n"
        if version >= "1.25"
        else "server { listen 443 ssl http2; server_name a; }\n",
    }
    new, reasons = fix(files, policy(), version)
    assert changed_lines(files[MAIN], new[MAIN]) == ["+\tssl_protocols TLSv1.2 TLSv1.3;"]
    assert (
        "\tssl_prefer_server_ciphers on;\n\tssl_protocols TLSv1.2 TLSv1.3;\n\n\tgzip" in new[MAIN]
    )
    assert reasons == [
        f"ssl_protocols is not set: nginx {version} accepts TLS 1.0, 1.1 "
        "on *:443 (default server a)"
    ]


def test_plain_http_servers_are_not_touched() -> None:
    files = {MAIN: main_with("\tssl_protocols TLSv1;"), SITE: "server { listen 80; }\n"}
    assert fix(files, policy(websocket={"locations": ["*"]})) == ({}, [])


def test_ciphers_that_lower_the_security_level_or_only_suit_old_tls() -> None:
    files = {
        MAIN: main_with('\tssl_protocols TLSv1.2;\n\tssl_ciphers "DEFAULT:@SECLEVEL=0";'),
        SITE: (
            "server { listen 443 ssl; server_name a; }\n"
            "server { listen 8443 ssl; server_name b; ssl_ciphers AES128-SHA:AES256-SHA; }\n"
            "server { listen 9443 ssl; server_name c; ssl_ciphers HIGH:!aNULL:!MD5; }\n"
        ),
    }
    new, reasons = fix(files, policy(http2=False))
    assert f'\tssl_ciphers "{rules.MODERN_CIPHERS}";\n' in new[MAIN]  # quotes kept
    assert "server_name b; ssl_ciphers ECDHE-ECDSA-AES128-GCM-SHA256:" in new[SITE]
    assert "ssl_ciphers HIGH:!aNULL:!MD5;" in new[SITE]
    assert reasons == [
        "ssl_ciphers lowers the OpenSSL security level (@SECLEVEL=0) on *:443 (default server a)",
        "ssl_ciphers offers only ciphers made for old TLS (no AEAD suite for TLS 1.2) "
        "on *:8443 (default server b)",
    ]


SHARED = """# shop and api share port 443; api answers clients without SNI
server {
    listen 443 ssl;
    server_name shop.example;
}

server {
    listen 443 ssl default_server;   # the catch-all
    server_name api.example;
}
"""


def test_http2_before_1_25_1_goes_on_the_default_servers_listen() -> None:
    files = {MAIN: main_with("\tssl_protocols TLSv1.2 TLSv1.3;"), SITE: SHARED}
    new, reasons = fix(files, policy(), "1.22.1")
    assert changed_lines(SHARED, new[SITE]) == [
        "-    listen 443 ssl default_server;   # the catch-all",
        "+    listen 443 ssl http2 default_server;   # the catch-all",
    ]
    assert reasons == ["HTTP/2 is off on *:443 (default server api.example)"]


def test_http2_from_1_25_1_is_the_http2_directive_in_each_server() -> None:
    files = {MAIN: main_with("\tssl_protocols TLSv1.2 TLSv1.3;"), SITE: SHARED}
    new, reasons = fix(files, policy(), "1.25.1")
    assert changed_lines(SHARED, new[SITE]) == ["+    http2 on;", "+    http2 on;"]
    assert "    server_name shop.example;\n    http2 on;\n}" in new[SITE]
    assert "    server_name api.example;\n    http2 on;\n}" in new[SITE]
    assert reasons == [
        "HTTP/2 is off on *:443 (server shop.example)",
        "HTTP/2 is off on *:443 (default server api.example)",
    ]


def test_http2_off_is_switched_on_where_it_is_written() -> None:
    files = {
        MAIN: main_with("\tssl_protocols TLSv1.2 TLSv1.3;\n\thttp2 off;"),
        SITE: "server { listen 443 ssl; server_name a; }\n",
    }
    new, _ = fix(files, policy(), "1.27.0")
    assert changed_lines(files[MAIN], new[MAIN]) == ["-\thttp2 off;", "+\thttp2 on;"]


def test_http2_already_on_by_listen_parameter_needs_nothing_in_either_syntax() -> None:
    files = {
        MAIN: main_with("\tssl_protocols TLSv1.2 TLSv1.3;"),
        SITE: "server { listen 443 ssl http2; server_name a; }\n",
    }
    assert fix(files, policy(), "1.22.1") == ({}, [])
    assert fix(files, policy(), "1.25.5") == ({}, [])


WS_SITE = """server {
    listen 80;
    server_name app.example;
    proxy_set_header Host $host;
    proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;

    location /ws/ {
        proxy_pass http://127.0.0.1:9000;   # chat
    }

    location /api/ {
        proxy_pass http://127.0.0.1:9001;
        proxy_set_header X-Api "yes";
    }

    location /static/ {
        root /srv;
    }
}
"""


def test_websocket_location_gets_map_version_and_headers_copying_inherited_ones() -> None:
    files = {MAIN: main_with("\tsendfile on;"), SITE: WS_SITE}
    new, reasons = fix(files, policy(websocket={"locations": ["/ws/"]}))
    assert changed_lines(WS_SITE, new[SITE]) == [
        "+        proxy_http_version 1.1;",
        "+        proxy_set_header Host $host;",
        "+        proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;",
        "+        proxy_set_header Upgrade $http_upgrade;",
        "+        proxy_set_header Connection $connection_upgrade;",
    ]
    assert new[MAIN] == (
        "events {}\n\nhttp {\n\tsendfile on;\n"
        "\tmap $http_upgrade $connection_upgrade {\n\t\tdefault upgrade;\n\t\t'' close;\n\t}\n\n"
        "\tinclude conf.d/*.conf;\n}\n"
    )
    assert reasons == [
        "location /ws/ (server app.example) proxies with HTTP/1.0: "
        "WebSockets need proxy_http_version 1.1",
        "WebSocket headers missing in location /ws/ (server app.example) "
        "(inherited proxy_set_header Host, X-Forwarded-For copied in: a location with headers "
        "of its own inherits none)",
        "no map $http_upgrade at http level to set the Connection header "
        "(adds $connection_upgrade)",
    ]


def test_star_covers_every_proxied_location_and_own_headers_are_not_copied() -> None:
    files = {MAIN: main_with("\tsendfile on;"), SITE: WS_SITE}
    new, _ = fix(files, policy(websocket={"locations": ["*"]}))
    assert (
        "        proxy_pass http://127.0.0.1:9001;\n"
        "        proxy_http_version 1.1;\n"
        '        proxy_set_header X-Api "yes";\n'
        "        proxy_set_header Upgrade $http_upgrade;\n"
        "        proxy_set_header Connection $connection_upgrade;\n    }"
    ) in new[SITE]
    assert new[SITE].count("proxy_set_header Host $host;") == 2  # server level + /ws/ copy
    assert "location /static/ {\n        root /srv;\n    }" in new[SITE]
    assert new[MAIN].count("map $http_upgrade") == 1


def test_an_equivalent_map_under_another_name_is_reused() -> None:
    http = "\tmap $http_upgrade $conn_up {\n\t\t''      close;\n\t\tdefault upgrade;\n\t}"
    files = {
        MAIN: main_with(http),
        SITE: "server { listen 80; location /ws/ {\n"
        "    proxy_pass http://b;\n    proxy_http_version 1.1;\n"
        "    proxy_set_header Connection upgrade;\n} }\n",
    }
    new, reasons = fix(files, policy(websocket={"locations": ["/ws/"]}))
    assert list(new) == [SITE]
    assert changed_lines(files[SITE], new[SITE]) == [
        "-    proxy_set_header Connection upgrade;",
        "+    proxy_set_header Connection $conn_up;",
        "+    proxy_set_header Upgrade $http_upgrade;",
    ]
    assert reasons == ["WebSocket headers missing in location /ws/ (server unnamed)"]


def test_a_different_map_of_the_usual_name_gets_a_new_name() -> None:
    http = "\tmap $http_upgrade $connection_upgrade { default keep-alive; '' close; }"
    files = {
        MAIN: main_with(http),
        SITE: "server { listen 80; location /ws/ { proxy_pass http://b; } }\n",
    }
    new, _ = fix(files, policy(websocket={"locations": ["/ws/"]}))
    assert "map $http_upgrade $remediate_connection_upgrade {" in new[MAIN]
    assert "proxy_set_header Connection $remediate_connection_upgrade;" in new[SITE]


def test_a_named_location_without_proxy_pass_is_a_finding() -> None:
    files = {MAIN: main_with(""), SITE: WS_SITE}
    found = rules.review(
        parse_tree(files, MAIN), policy(websocket={"locations": ["/static/"]}), "1.22.1"
    )
    assert found.fixes == []
    assert [note.message for note in found.findings] == [
        "location /static/ (server app.example) carries WebSockets but has no proxy_pass to fix"
    ]


def test_the_planner_gets_one_change_per_file_and_nothing_the_second_time() -> None:
    files = {
        MAIN: main_with("\tssl_protocols TLSv1 TLSv1.1 TLSv1.2;"),
        SITE: SHARED.replace(
            "server_name api.example;",
            "server_name api.example;\n    location /ws/ { proxy_pass http://b; }",
        ),
    }
    pol = policy(websocket={"locations": ["/ws/"]})

    def inventory(tree: dict[str, str]) -> Inventory:
        endpoint = Endpoint(
            provider="nginx",
            resource="web1",
            kind="nginx-host",
            name="web1",
            settings={path: sha256_text(text) for path, text in tree.items()},
            context={"version": "1.22.1", "conf_path": MAIN, "prefix": None},
        )
        return Inventory([endpoint], {rules.TREES: {"web1": tree}}, ["nginx"])

    plan = planner.plan(inventory(files), pol)
    assert [c.resource for c in plan.changes] == [f"web1:{MAIN}", f"web1:{SITE}"]
    main_change, site_change = plan.changes
    assert main_change.attribute == "content"
    assert main_change.before == files[MAIN]
    assert main_change.diff is not None and set(main_change.diff) == {MAIN}
    assert main_change.diff[MAIN].startswith(f"--- a{MAIN}\n+++ b{MAIN}\n")
    assert isinstance(main_change.target, HostFile)
    assert (main_change.target.host, main_change.target.path) == ("web1", MAIN)
    assert main_change.reason == (
        "ssl_protocols accepts TLS 1.0, 1.1 on *:443 (server shop.example), "
        "*:443 (default server api.example); no map $http_upgrade at http level to set the "
        "Connection header (adds $connection_upgrade)"
    )
    assert isinstance(site_change.target, HostFile)
    assert site_change.target.sockets == (
        Socket(address="*", port=443, server_name="api.example", http2=True, ws_paths=("/ws/",)),
    )
    assert "HTTP/2 is off on *:443 (default server api.example)" in site_change.reason
    assert main_change.fingerprint == site_change.fingerprint
    fixed = {**files, MAIN: main_change.after, SITE: site_change.after}
    assert planner.plan(inventory(fixed), pol).changes == []


def test_quotes_comments_and_variables_do_not_confuse_where_an_edit_lands() -> None:
    site = (
        "server {\n"
        "    listen 443 ssl; # { not a block ; not an end\n"
        '    return 200 "a;b{c}#d";\n'
        "    set $x \"${host}:x\";  add_header X-Y '}';\n"
        "    ssl_protocols TLSv1 TLSv1.2;  ssl_ciphers HIGH;  # two on one line\n"
        "}\n"
    )
    files = {MAIN: main_with("\tssl_protocols TLSv1.3;"), SITE: site}
    new, _ = fix(files, policy(http2=False))
    assert new[SITE] == site.replace(
        "ssl_protocols TLSv1 TLSv1.2;  ssl_ciphers", "ssl_protocols TLSv1.2 TLSv1.3;  ssl_ciphers"
    )


def test_a_catch_all_default_server_on_a_tls_socket_counts_even_without_ssl_settings() -> None:
    site = (
        "server {\n    listen 443 ssl;\n    server_name shop.example;\n"
        "    ssl_protocols TLSv1.2 TLSv1.3;\n}\n"
        "server {\n    listen 443 default_server;\n    server_name _;\n    return 444;\n}\n"
    )
    files = {MAIN: main_with("\tgzip on;"), SITE: site}
    new, reasons = fix(files, policy(http2=False))
    assert list(new) == [MAIN]
    assert changed_lines(files[MAIN], new[MAIN]) == ["+\tssl_protocols TLSv1.2 TLSv1.3;"]
    assert reasons == [
        "ssl_protocols is not set: nginx 1.22.1 accepts TLS 1.0, 1.1 on *:443 (default server _)"
    ]


def test_proxy_http_version_defaults_to_1_1_from_1_29_7() -> None:
    site = "server { listen 80; location /ws/ { proxy_pass http://b; } }\n"
    files = {MAIN: main_with("\tsendfile on;"), SITE: site}
    ws = policy(http2=False, websocket={"locations": ["/ws/"]})
    old, _ = fix(files, ws, "1.29.6")
    new, _ = fix(files, ws, "1.29.7")
    assert "proxy_http_version 1.1;" in old[SITE]
    assert "proxy_http_version" not in new[SITE]
    assert "proxy_set_header Upgrade $http_upgrade;" in new[SITE]


def test_a_tls_server_without_listen_is_a_finding_for_http2_not_a_broken_edit() -> None:
    site = "server {\n    ssl on;\n    server_name old.example;\n    ssl_protocols TLSv1.2;\n}\n"
    files = {MAIN: main_with(""), SITE: site}
    found = rules.review(parse_tree(files, MAIN), policy(), "1.14.2")
    assert found.fixes == []
    assert [note.message for note in found.findings] == [
        "HTTP/2 is off on *:80 (default server old.example): "
        "it has no listen directive to add http2 to"
    ]
