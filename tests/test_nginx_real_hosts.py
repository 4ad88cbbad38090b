"""Rules for what real hosts have (issue 12): keepalive upstreams, locations that cannot carry a
WebSocket, files certbot manages, snippets shared by several servers, `stream {}` TLS servers,
`ssl_protocols` inside `if`, and what collection reports of symbolic and hard links."""

from __future__ import annotations

import base64
import io
import json
import tarfile
from typing import Any

import pytest

from remediate.policy import Policy
from remediate.policy import model as policy_model
from remediate.providers.nginx import edit, rules
from remediate.providers.nginx.config import parse_tree
from remediate.providers.nginx.host import _host_config

MAIN = "/etc/nginx/nginx.conf"
SITE = "/etc/nginx/conf.d/site.conf"

# In-memory trees and collection output only: the unit layer.
pytestmark = pytest.mark.unit


def policy(**overrides: Any) -> Policy:
    data: dict[str, Any] = {"nginx": {}, "websocket": {"locations": ["*"]}, "http2": False}
    data.update(overrides)
    return policy_model().model_validate(data)


def main_with(http_lines: str) -> str:
    return f"events {{}}\n\nhttp {{\n{http_lines}\n    include conf.d/*.conf;\n}}\n"


def review(files: dict[str, str], pol: Policy) -> tuple[dict[str, str], rules.Review]:
    """The edited files and the review; asserts that a second pass changes nothing."""
    found = rules.review(parse_tree(files, MAIN), pol, "1.22.1")
    new = edit.apply(files, [fix.edit for fix in found.fixes])
    again = rules.review(parse_tree({**files, **new}, MAIN), pol, "1.22.1")
    assert again.fixes == []
    return new, found


KEEPALIVE_SITE = """upstream app {
    server 127.0.0.1:8065;
    keepalive 32;
}

server {
    listen 443 ssl;
    server_name chat.example;

    location / {
        proxy_set_header Connection "";
        proxy_http_version 1.1;
        proxy_pass http://app;
    }
}
"""


def test_a_keepalive_location_gets_a_map_that_keeps_keepalive_and_the_plan_says_so() -> None:
    files = {MAIN: main_with("    ssl_protocols TLSv1.2 TLSv1.3;"), SITE: KEEPALIVE_SITE}
    new, found = review(files, policy())
    assert (
        "map $http_upgrade $connection_upgrade_keepalive {\n"
        "        default upgrade;\n        '' '';\n    }" in new[MAIN]
    )
    assert "map $http_upgrade $connection_upgrade {" not in new[MAIN]
    assert "        proxy_set_header Connection $connection_upgrade_keepalive;\n" in new[SITE]
    assert 'Connection ""' not in new[SITE]
    reasons = [fix.reason for fix in found.fixes]
    assert any("upstream keepalive is kept" in reason for reason in reasons), reasons


def test_an_existing_keepalive_map_is_reused_under_its_own_name() -> None:
    http = (
        "    ssl_protocols TLSv1.2 TLSv1.3;\n"
        "    map $http_upgrade $conn { default upgrade; '' ''; }"
    )
    files = {MAIN: main_with(http), SITE: KEEPALIVE_SITE}
    new, _ = review(files, policy())
    assert list(new) == [SITE]
    assert "proxy_set_header Connection $conn;" in new[SITE]


def test_an_upstream_with_keepalive_alone_is_enough_to_keep_it() -> None:
    site = KEEPALIVE_SITE.replace('        proxy_set_header Connection "";\n', "")
    files = {MAIN: main_with("    ssl_protocols TLSv1.2 TLSv1.3;"), SITE: site}
    new, found = review(files, policy())
    assert "'' '';" in new[MAIN]
    assert any("upstream app keeps connections alive" in f.reason for f in found.fixes)


SKIPPING_SITE = """server {
    listen 443 ssl;
    server_name app.example;

    location /api/ {
        proxy_pass_request_headers off;
        proxy_pass http://127.0.0.1:9000;
    }

    location @fallback {
        return 404;
    }

    location /ws/ {
        proxy_pass http://127.0.0.1:9001;
    }
}
"""


def test_star_skips_a_location_that_drops_the_upgrade_header_with_a_note() -> None:
    files = {MAIN: main_with("    ssl_protocols TLSv1.2 TLSv1.3;"), SITE: SKIPPING_SITE}
    new, found = review(files, policy())
    api = new[SITE].split("location /api/ {", 1)[1].split("}", 1)[0]
    assert "Upgrade" not in api
    assert "proxy_set_header Upgrade $http_upgrade;" in new[SITE].split("location /ws/", 1)[1]
    notes = [note.message for note in found.findings]
    assert notes == [
        "location /api/ (server app.example) left without WebSocket headers: "
        "proxy_pass_request_headers off drops the client's Upgrade header "
        "(name it in websocket.locations to edit it anyway)"
    ]


def test_an_explicit_list_still_edits_what_it_names() -> None:
    files = {MAIN: main_with("    ssl_protocols TLSv1.2 TLSv1.3;"), SITE: SKIPPING_SITE}
    new, found = review(files, policy(websocket={"locations": ["/api/"]}))
    assert "proxy_set_header Upgrade $http_upgrade;" in new[SITE].split("location /api/", 1)[1]
    assert found.findings == []


def test_verification_probes_only_real_uri_paths() -> None:
    site = SKIPPING_SITE.replace(
        "location @fallback {\n        return 404;",
        "location @app {\n        proxy_pass http://127.0.0.1:9002;",
    )
    files = {MAIN: main_with("    ssl_protocols TLSv1.2 TLSv1.3;"), SITE: site}
    [socket] = rules.sockets(parse_tree(files, MAIN), policy(), "1.22.1")
    assert socket.ws_paths == ("/ws/",)


CERTBOT = "/etc/letsencrypt/options-ssl-nginx.conf"
CERTBOT_FILE = "ssl_session_cache shared:le_nginx_SSL:1m;\nssl_protocols TLSv1 TLSv1.1 TLSv1.2;\n"


def certbot_files() -> dict[str, str]:
    sites = "".join(
        f"server {{\n    listen {port} ssl;\n    server_name {name};\n"
        f"    include {CERTBOT}; # managed by Certbot\n}}\n"
        for name, port in (("a.example", 443), ("b.example", 8443))
    )
    return {MAIN: main_with(""), SITE: sites, CERTBOT: CERTBOT_FILE}


def test_certbot_options_are_left_alone_with_a_finding_naming_the_file_and_the_choice() -> None:
    found = rules.review(parse_tree(certbot_files(), MAIN), policy(), "1.22.1")
    assert found.fixes == []
    [note] = found.findings
    assert note.rule == "nginx-managed-file"
    assert note.message.startswith(f"{CERTBOT} is kept up to date by certbot")
    assert "nginx.managed_files: edit" in note.message
    # One file, every server that includes it named.
    assert "(default server a.example)" in note.message
    assert "(default server b.example)" in note.message


def test_managed_files_edit_changes_it_once_for_every_server_and_says_certbot_stops() -> None:
    pol = policy(nginx={"managed_files": "edit"})
    found = rules.review(parse_tree(certbot_files(), MAIN), pol, "1.22.1")
    assert [fix.edit.path for fix in found.fixes] == [CERTBOT]
    assert "*:443 (default server a.example), *:8443 (default server b.example)" in (
        found.fixes[0].reason
    )
    new = edit.apply(certbot_files(), [fix.edit for fix in found.fixes])
    assert "ssl_protocols TLSv1.2 TLSv1.3;" in new[CERTBOT]
    assert [n.message for n in found.findings] == [
        f"{CERTBOT} is edited although certbot manages it: certbot stops updating it"
    ]


def test_stream_tls_servers_get_the_floor_and_ciphers_but_no_http2() -> None:
    main = (
        "events {}\n\nhttp {\n    ssl_protocols TLSv1.2 TLSv1.3;\n}\n\n"
        "stream {\n    ssl_protocols TLSv1 TLSv1.2;\n    ssl_ciphers DEFAULT:@SECLEVEL=0;\n\n"
        "    server {\n        listen 5432 ssl;\n        proxy_pass 127.0.0.1:5433;\n    }\n}\n"
    )
    new, _ = review({MAIN: main}, policy(http2=True))
    stream = new[MAIN].split("stream {", 1)[1]
    assert "ssl_protocols TLSv1.2 TLSv1.3;" in stream
    assert "ssl_ciphers ECDHE-ECDSA-AES128-GCM-SHA256:" in stream
    assert "http2" not in new[MAIN]
    [socket] = rules.sockets(parse_tree({MAIN: main}, MAIN), policy(http2=True), "1.22.1")
    assert (socket.port, socket.stream, socket.http2) == (5432, True, False)


def test_ssl_protocols_inside_if_is_a_finding() -> None:
    site = (
        "server {\n    listen 443 ssl;\n    server_name a;\n    ssl_protocols TLSv1.2;\n"
        '    if ($host = "old") {\n        ssl_protocols TLSv1;\n    }\n}\n'
    )
    found = rules.review(parse_tree({MAIN: main_with(""), SITE: site}, MAIN), policy(), "1.22.1")
    assert [n.message for n in found.findings] == [
        f"{SITE}:6: ssl_protocols inside an if block is not editable: "
        "set it at server or http level"
    ]


def test_ipv6_and_default_server_on_several_sockets() -> None:
    site = (
        "server {\n    listen 443 ssl;\n    listen [::]:443 ssl default_server;\n"
        "    server_name first;\n}\n"
        "server {\n    listen 443 ssl default_server;\n    listen [::]:443 ssl;\n"
        "    server_name second;\n}\n"
    )
    config = parse_tree({MAIN: main_with(""), SITE: site}, MAIN)
    defaults = {key: socket.default.name for key, socket in config.sockets.items()}
    assert defaults == {"*:443": "second", "[::]:443": "first"}
    _, found = review({MAIN: main_with(""), SITE: site}, policy())
    [fix] = found.fixes
    assert fix.reason.endswith(
        "on *:443 (server first), [::]:443 (default server first), "
        "*:443 (default server second), [::]:443 (server second)"
    )


def _archive(files: dict[str, str]) -> str:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as archive:
        for path, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(path)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return base64.b64encode(raw.getvalue()).decode()


def test_collection_keeps_the_link_name_and_records_the_real_file_and_hard_links() -> None:
    link = "/etc/nginx/sites-enabled/default"
    real = "/etc/nginx/sites-available/default"
    hard = "/etc/nginx/sites-enabled/app"
    files = {MAIN: "events {}\n", link: "server {}\n", hard: "server {}\n"}
    host = json.dumps({"conf_path": MAIN, "prefix": None, "binary": "nginx"})
    stdout = (
        f"remediate-nginx-host {host}\n"
        "remediate-nginx-version nginx version: nginx/1.22.1\n"
        f"remediate-nginx-paths\n{MAIN}\n{link}\n{hard}\n"
        f"remediate-nginx-links\n1 {MAIN}\n1 {real}\n2 {hard}\n"
        f"remediate-nginx-archive\n{_archive(files)}\n"
    )
    config = _host_config("web1", stdout)
    assert config.version == "1.22.1"
    assert config.files == files
    assert config.links == {link: real}
    assert config.hard_links == {hard: 2}
