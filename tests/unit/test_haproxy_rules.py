"""HAProxy rules in detail: the effective TLS settings of a bind (HAProxy's documented defaults
per version, global `ssl-default-bind-*`, the bind's own options), the sockets verification
probes (addresses, HTTP/2, the paths that reach a WebSocket backend), cipher strings, and the
WebSocket tunnel-timeout findings, each read from configuration text as a user writes it."""

from __future__ import annotations

from typing import Any

import pytest

from remediate.policy import Policy, build
from remediate.providers.haproxy.config import Config, Editor, parse
from remediate.providers.haproxy.rules import (
    WEBSOCKET,
    binds,
    cipher_problem,
    review,
    sockets,
    split_address,
    ws_paths,
)
from remediate.targets import Socket

pytestmark = pytest.mark.unit

CFG = "/etc/haproxy/haproxy.cfg"
PEM = "crt /etc/haproxy/site.pem"


def config(text: str) -> Config:
    return parse({CFG: text}, [CFG])


def policy(**haproxy: Any) -> Policy:
    return build(haproxy=haproxy)


def only_bind(text: str, version: str = "2.6.12") -> Any:
    [bind] = binds(config(text), version)
    return bind


# -- effective TLS settings of a bind -------------------------------------------------------------


@pytest.mark.parametrize(
    ("version", "accepted"),
    [
        ("2.0.33", ["1.0", "1.1", "1.2", "1.3"]),
        ("2.1", ["1.0", "1.1", "1.2", "1.3"]),
        ("2.2.0", ["1.2", "1.3"]),
        ("2.6.12-1+deb12u4", ["1.2", "1.3"]),
        ("garbage", ["1.0", "1.1", "1.2", "1.3"]),
    ],
)
def test_the_built_in_floor_follows_the_haproxy_version(version: str, accepted: list[str]) -> None:
    bind = only_bind(f"frontend web\n  mode http\n  bind :443 ssl {PEM}\n", version)
    assert bind.accepted == accepted
    assert bind.minimum == accepted[0]
    assert bind.min_source is None
    assert bind.legacy_ignored is False


def test_the_bind_overrides_the_global_default_and_says_which_line_sets_the_floor() -> None:
    text = (
        "global\n  ssl-default-bind-options ssl-min-ver TLSv1.1 ssl-max-ver TLSv1.2\n"
        f"frontend a\n  bind :443 ssl {PEM}\n"
        f"frontend b\n  bind :8443 ssl {PEM} ssl-min-ver TLSv1.2\n"
    )
    a, b = binds(config(text), "2.6")
    assert (a.accepted, a.minimum) == (["1.1", "1.2"], "1.1")
    assert a.min_source is not None and a.min_source.keyword == "ssl-default-bind-options"
    # The bind's own ssl-min-ver wins; the global ssl-max-ver still caps it.
    assert (b.accepted, b.minimum) == (["1.2"], "1.2")
    assert b.min_source is not None and b.min_source.keyword == "bind"


def test_force_flags_pin_one_version_and_the_last_one_wins() -> None:
    bind = only_bind(f"frontend a\n  bind :443 ssl {PEM} force-tlsv11 force-tlsv12\n")
    assert (bind.accepted, bind.minimum) == (["1.2"], "1.2")
    assert bind.min_source is not None and bind.min_source.keyword == "bind"
    bind = only_bind(f"frontend a\n  bind :443 ssl {PEM} force-tlsv13\n", "2.0")
    assert bind.accepted == ["1.3"]


def test_legacy_no_flags_remove_versions_unless_a_range_is_set() -> None:
    bind = only_bind(f"frontend a\n  bind :443 ssl {PEM} no-tlsv10 no-tlsv11\n", "2.0")
    assert bind.accepted == ["1.2", "1.3"]
    assert bind.minimum == "1.0"  # the range is unchanged: the flags only drop versions
    assert bind.legacy_ignored is False
    # With ssl-min-ver, HAProxy ignores the no-tlsv1x flags (global ones included).
    text = (
        "global\n  ssl-default-bind-options no-tlsv11\n"
        f"frontend a\n  bind :443 ssl {PEM} ssl-min-ver TLSv1.0 no-tlsv10\n"
    )
    bind = only_bind(text, "2.0")
    assert bind.accepted == ["1.0", "1.1", "1.2", "1.3"]
    assert bind.legacy_ignored is True
    # An unknown version name is not a setting: the built-in range stays.
    bind = only_bind(f"frontend a\n  bind :443 ssl {PEM} ssl-min-ver TLSv9 ssl-max-ver x\n")
    assert (bind.accepted, bind.min_source) == (["1.2", "1.3"], None)


def test_only_tls_binds_of_frontends_and_listen_sections_count() -> None:
    text = (
        "frontend a\n  bind :80\n  bind quic4@:443 ssl crt x.pem alpn h3\n"
        f"  bind :443 ssl {PEM}\n"
        f"listen l\n  bind :8443 ssl {PEM}\n"
        "backend b\n  server s 10.0.0.1:443 ssl verify none\n"
        "frontend c\n  bind ssl\n"
    )
    assert [b.address for b in binds(config(text), "2.6")] == [":443", ":8443"]


@pytest.mark.parametrize(
    ("version", "options", "mode", "http2", "alpn"),
    [
        ("2.6", "", "http", False, None),
        ("2.8.0", "", "http", True, None),
        ("2.8", "", "tcp", False, None),
        ("2.6", "alpn h2,http/1.1", "http", True, ["h2", "http/1.1"]),
        ("2.6", "alpn http/1.1", "http", False, ["http/1.1"]),
        ("2.8", "alpn http/1.1", "http", False, ["http/1.1"]),
        ("2.8", "no-alpn", "http", False, None),
        ("2.6", "proto h2", "http", True, None),
        ("2.6", "proto h2", "tcp", False, None),
    ],
)
def test_http2_follows_alpn_proto_mode_and_version(
    version: str, options: str, mode: str, http2: bool, alpn: list[str] | None
) -> None:
    bind = only_bind(f"frontend a\n  mode {mode}\n  bind :443 ssl {PEM} {options}\n", version)
    assert (bind.http2, bind.alpn) == (http2, alpn)
    assert bind.no_alpn is ("no-alpn" in options)


def test_global_alpn_and_ciphers_apply_unless_the_bind_sets_its_own() -> None:
    text = (
        "global\n  ssl-default-bind-alpn h2,http/1.1\n"
        "  ssl-default-bind-ciphers ECDHE-RSA-AES128-GCM-SHA256\n"
        f"frontend a\n  mode http\n  bind :443 ssl {PEM}\n"
        f"  bind :444 ssl {PEM} alpn http/1.1 ciphers AES128-SHA\n"
    )
    inherited, own = binds(config(text), "2.6")
    assert (inherited.alpn, inherited.http2) == (["h2", "http/1.1"], True)
    assert inherited.alpn_source is not None and inherited.alpn_source.keyword.startswith("ssl-")
    assert inherited.ciphers == "ECDHE-RSA-AES128-GCM-SHA256"
    assert inherited.ciphers_source is not None
    assert inherited.ciphers_source.keyword == "ssl-default-bind-ciphers"
    assert (own.alpn, own.http2, own.ciphers) == (["http/1.1"], False, "AES128-SHA")
    assert own.alpn_source is own.statement and own.ciphers_source is own.statement
    plain = only_bind(f"frontend a\n  bind :443 ssl {PEM}\n")
    assert (plain.alpn_source, plain.ciphers, plain.ciphers_source) == (None, None, None)
    assert plain.label == f"bind :443 (frontend a, {CFG}:2)"


# -- cipher strings -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ciphers", "problem"),
    [
        ("ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-CHACHA20-POLY1305", None),
        (
            "AES128-SHA:AES256-SHA",
            "offers only ciphers made for old TLS (no AEAD suite for TLS 1.2)",
        ),
        ("AES128-SHA:ECDHE-RSA-AES128-GCM-SHA256", None),
        ("DEFAULT:@SECLEVEL=0", "lowers the OpenSSL security level (@SECLEVEL=0)"),
        ("HIGH:@seclevel=0", "lowers the OpenSSL security level (@SECLEVEL=0)"),
        ("NO-SUCH-CIPHER", None),
    ],
)
def test_cipher_strings_are_judged_by_what_openssl_makes_of_them(
    ciphers: str, problem: str | None
) -> None:
    assert cipher_problem(ciphers) == problem


# -- sockets and WebSocket paths ------------------------------------------------------------------


WS = """\
defaults
  mode http
  timeout client 30s
  timeout server 30s
frontend web
  bind :443 ssl crt /etc/haproxy/site.pem alpn h2,http/1.1
  bind 127.0.0.1:8443 ssl crt /etc/haproxy/site.pem
  bind unix@/run/haproxy/web.sock ssl crt /etc/haproxy/site.pem
  bind :443 ssl crt /etc/haproxy/site.pem alpn h2,http/1.1
  acl is_live path_beg /live
  acl is_api path_beg /api
  acl short path_beg
  acl by_host hdr(host) -i ws.example.com
  use_backend app if by_host
  use_backend ws if is_live
  use_backend ws if { path_beg /socket } || is_live
  use_backend ws if is_api { path_beg /other }
  use_backend ws unless { path_beg /never }
  use_backend ws if by_host
  use_backend ws
  use_backend ws if is_live
  default_backend app
backend ws
  server s1 10.0.0.1:8080
backend app
  server a1 10.0.0.2:8080
"""


def test_a_frontend_reaches_a_websocket_backend_on_its_path_beg_prefixes() -> None:
    parsed = config(WS)
    [frontend] = [s for s in parsed.sections if s.name == "web"]
    [ws] = [s for s in parsed.sections if s.name == "ws"]
    assert ws_paths(parsed, frontend, [ws]) == ["/live", "/socket", "/api"]


def test_sockets_name_each_tcp_bind_once_with_its_http2_and_websocket_paths() -> None:
    assert sockets(config(WS), policy(websocket_backends=["ws"]), "2.6") == (
        Socket(
            address="",
            port=443,
            http2=True,
            ws_paths=("/live", "/socket", "/api"),
            client_timeout=30.0,
        ),
        Socket(
            address="127.0.0.1",
            port=8443,
            http2=False,
            ws_paths=("/live", "/socket", "/api"),
            client_timeout=30.0,
        ),
    )
    # No WebSocket backend configured: no paths to probe.
    assert [s.ws_paths for s in sockets(config(WS), policy(), "2.6")] == [(), ()]


def test_a_default_backend_or_a_listen_section_carrying_websockets_is_reached_on_slash() -> None:
    text = (
        "defaults\n  mode http\n  default_backend ws\n"
        f"frontend web\n  bind :443 ssl {PEM}\n  acl live path_beg /live\n"
        "  use_backend ws if live\n"
        f"listen chat\n  bind :8443 ssl {PEM}\n  server c 10.0.0.3:80\n"
        f"listen other\n  bind :9443 ssl {PEM}\n  server o 10.0.0.4:80\n"
        "backend ws\n  server s 10.0.0.1:80\n"
    )
    assert [
        (s.port, s.ws_paths) for s in sockets(config(text), policy(websocket_backends=["*"]), "2.6")
    ] == [
        (443, ("/live", "/")),
        (8443, ("/",)),
        (9443, ("/",)),
    ]
    assert [
        (s.port, s.ws_paths)
        for s in sockets(config(text), policy(websocket_backends=["chat", "ws"]), "2.6")
    ] == [(443, ("/live", "/")), (8443, ("/",)), (9443, ("/",))]
    assert [
        (s.port, s.ws_paths)
        for s in sockets(config(text), policy(websocket_backends=["chat"]), "2.6")
    ] == [(443, ()), (8443, ("/",)), (9443, ())]


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        (":443", ("", 443)),
        ("*:443", ("*", 443)),
        ("10.0.0.1:8443", ("10.0.0.1", 8443)),
        ("[::]:443", ("::", 443)),
        ("[::1]:8443", ("::1", 8443)),
        ("ipv6@[::1]:8443", ("::1", 8443)),
        ("tcp4@0.0.0.0:443", ("0.0.0.0", 443)),
        ("tcp6@:::443", ("::", 443)),
        ("tcp@:443", ("", 443)),
        ("ipv4@:443,:444", ("", 443)),
        ("unix@/run/h.sock", ("", None)),
        ("abns@haproxy-peers", ("", None)),
        ("fd@3", ("", None)),
        ("/run/h.sock", ("", None)),
        ("10.0.0.1:8000-8010", ("10.0.0.1", None)),
    ],
)
def test_bind_addresses_split_into_host_and_port(
    address: str, expected: tuple[str, int | None]
) -> None:
    assert split_address(address) == expected


# -- WebSocket tunnel timeouts --------------------------------------------------------------------


def test_websocket_backends_without_timeout_tunnel_get_one_with_the_reason() -> None:
    text = (
        "defaults\n  mode http\n  timeout client 30s\n"
        "backend ws\n  timeout server 50s\n  server s 10.0.0.1:80\n"
        "backend bare\n  server b 10.0.0.2:80\n"
        "backend done\n  timeout tunnel 2h\n  server d 10.0.0.3:80\n"
        "backend raw\n  mode tcp\n  server r 10.0.0.4:80\n"
    )
    parsed = config(text)
    editor = Editor(parsed)
    result = review(parsed, policy(websocket_backends=["*"], timeout_tunnel="3h"), "2.6", editor)
    assert [(f.rule, f.reason) for f in result.fixes] == [
        (
            WEBSOCKET,
            "backend ws carries WebSockets without timeout tunnel: idle WebSockets are cut by "
            "timeout client 30s, timeout server 50s",
        ),
        (
            WEBSOCKET,
            "backend bare carries WebSockets without timeout tunnel: idle WebSockets are cut by "
            "timeout client 30s",
        ),
    ]
    assert result.findings == []
    new = editor.render()[CFG]
    assert "backend ws\n  timeout server 50s\n  timeout tunnel 3h\n" in new
    assert "backend bare\n  timeout tunnel 3h\n  server b" in new
    assert new.count("timeout tunnel") == 3


def test_a_named_websocket_backend_that_does_not_exist_is_a_finding() -> None:
    text = "backend ws\n  mode http\n  timeout tunnel 1h\n  server s 10.0.0.1:80\n"
    parsed = config(text)
    result = review(parsed, policy(websocket_backends=["ws", "chat", "*"]), "2.6", Editor(parsed))
    assert [(n.rule, n.message) for n in result.findings] == [
        (WEBSOCKET, "haproxy.websocket_backends names chat: no such backend")
    ]
    assert result.fixes == []
    bare = config("backend tcp\n  server s 10.0.0.1:80\n")
    result = review(bare, policy(websocket_backends=["tcp"]), "2.6", Editor(bare))
    assert [f.reason for f in result.fixes] == [
        "backend tcp carries WebSockets without timeout tunnel: idle WebSockets are cut by "
        "the client and server timeouts"
    ]
