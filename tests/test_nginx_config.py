"""The Nginx model: sockets and their default servers, includes and globs, inheritance."""

from __future__ import annotations

import pytest

from remediate.providers.nginx.config import (
    NginxConfigError,
    effective,
    effective_all,
    parse_tree,
    parse_version,
    split_address,
)

pytestmark = pytest.mark.unit

MAIN = "/etc/nginx/nginx.conf"


def tree(http: str, **extra: str) -> dict[str, str]:
    files = {MAIN: f"events {{}}\nhttp {{\n{http}\n}}\n"}
    files.update({path.replace("__", "/"): text for path, text in extra.items()})
    return files


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("443", ("*", 443)),
        ("*:443", ("*", 443)),
        ("0.0.0.0:443", ("*", 443)),
        ("127.0.0.1", ("127.0.0.1", 80)),
        ("127.0.0.1:8443", ("127.0.0.1", 8443)),
        ("[::]:443", ("[::]", 443)),
        ("[::1]", ("[::1]", 80)),
    ],
)
def test_listen_addresses_normalise_as_nginx_reads_them(
    text: str, expected: tuple[str, int]
) -> None:
    assert split_address(text) == expected


def test_servers_sharing_a_socket_and_its_default_server() -> None:
    config = parse_tree(
        tree(
            """
    server { listen 443 ssl; server_name first.example; }
    server { listen 0.0.0.0:443 default_server; server_name chosen.example; }
    server { listen *:443; server_name third.example; }
    server { listen [::]:443 ssl; server_name v6.example; }
    server { listen 8443 ssl; server_name lone.example; }
    server { listen 8443; server_name later.example; }
    server { server_name plain.example; }
"""
        ),
        MAIN,
    )
    shared = config.sockets["*:443"]
    assert [s.name for s in shared.servers] == ["first.example", "chosen.example", "third.example"]
    assert shared.default.name == "chosen.example"
    assert shared.ssl  # `ssl` on any listen of the socket makes it TLS for every server on it
    assert config.sockets["*:8443"].default.name == "lone.example"
    assert config.sockets["[::]:443"].default.name == "v6.example"
    assert config.sockets["*:80"].default.name == "plain.example"
    assert not config.sockets["*:80"].ssl
    assert [s.name for s in config.tls_servers()] == [
        "first.example",
        "chosen.example",
        "third.example",
        "v6.example",
        "lone.example",
        "later.example",
    ]


def test_includes_resolve_relative_to_the_main_file_with_sorted_globs() -> None:
    files = tree(
        "    include conf.d/*.conf;\n    include /etc/nginx/sites-enabled/*;",
        **{
            "/etc/nginx/conf.d/b.conf": "server { listen 2; server_name b; }\n",
            "/etc/nginx/conf.d/a.conf": "server { listen 1; server_name a; }\n",
            "/etc/nginx/conf.d/.hidden.conf": "this is not even { nginx\n",
            "/etc/nginx/conf.d/notes.txt": "server { listen 9; server_name txt; }\n",
            "/etc/nginx/conf.d/sub/deep.conf": "server { listen 9; server_name deep; }\n",
            "/etc/nginx/sites-enabled/site": "server { listen 3; server_name c; }\n",
        },
    )
    config = parse_tree(files, MAIN)
    assert [s.name for s in config.servers] == ["a", "b", "c"]
    assert [s.directive.file for s in config.servers] == [
        "/etc/nginx/conf.d/a.conf",
        "/etc/nginx/conf.d/b.conf",
        "/etc/nginx/sites-enabled/site",
    ]
    assert config.servers[1].directive.line == 1


def test_relative_main_file_resolves_against_the_prefix() -> None:
    files = {
        "/srv/nginx/conf/nginx.conf": "http { include sites/*.conf; }\n",
        "/srv/nginx/conf/sites/a.conf": "server { listen 1; server_name a; }\n",
    }
    config = parse_tree(files, "conf/nginx.conf", prefix="/srv/nginx")
    assert [s.name for s in config.servers] == ["a"]


def test_an_explicit_include_that_was_not_collected_is_an_error_naming_the_line() -> None:
    files = tree("    sendfile on;\n    include snippets/missing.conf;")
    with pytest.raises(NginxConfigError, match=r"nginx\.conf:4: include snippets/missing\.conf"):
        parse_tree(files, MAIN)


def test_a_glob_that_matches_nothing_is_fine() -> None:
    assert parse_tree(tree("    include conf.d/*.conf;"), MAIN).servers == []


def test_an_unparseable_included_file_is_named_with_its_line() -> None:
    files = tree(
        "    include conf.d/*.conf;",
        **{"/etc/nginx/conf.d/broken.conf": "server {\n    listen 443 ssl;\n\n}}\n"},
    )
    with pytest.raises(NginxConfigError) as caught:
        parse_tree(files, MAIN)
    message = str(caught.value)
    assert message.startswith("/etc/nginx/conf.d/broken.conf:4: cannot parse nginx config")
    assert "\n" not in message
    assert "/tmp" not in message


def test_server_settings_override_http_and_headers_do_not_merge() -> None:
    config = parse_tree(
        tree(
            """
    ssl_protocols TLSv1 TLSv1.1 TLSv1.2;
    proxy_set_header Host $host;
    server {
        listen 443 ssl;
        server_name strict;
        ssl_protocols TLSv1.3;
        proxy_set_header X-Real-IP $remote_addr;
        location /own/ { proxy_pass http://b; proxy_set_header X-Own 1; }
        location /inherits/ { proxy_pass http://b; }
    }
    server { listen 443; server_name loose; location / { proxy_pass http://b; } }
"""
        ),
        MAIN,
    )
    strict, loose = config.servers
    assert effective(strict.chain, "ssl_protocols").args == ["TLSv1.3"]  # type: ignore[union-attr]
    assert effective(loose.chain, "ssl_protocols").args == [  # type: ignore[union-attr]
        "TLSv1",
        "TLSv1.1",
        "TLSv1.2",
    ]
    own, inherits = strict.locations
    assert [h.args[0] for h in effective_all(own.chain, "proxy_set_header")[1]] == ["X-Own"]
    assert [h.args[0] for h in effective_all(inherits.chain, "proxy_set_header")[1]] == [
        "X-Real-IP"
    ]
    assert [h.args[0] for h in effective_all(loose.locations[0].chain, "proxy_set_header")[1]] == [
        "Host"
    ]


@pytest.mark.parametrize(
    ("text", "expected"), [("1.22.1", (1, 22, 1)), ("nginx/1.25.3", (1, 25, 3))]
)
def test_versions(text: str, expected: tuple[int, ...]) -> None:
    assert parse_version(text) == expected


def test_an_unreadable_version_is_an_error() -> None:
    with pytest.raises(NginxConfigError, match="cannot read the nginx version"):
        parse_version("openresty")
