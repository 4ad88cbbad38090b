"""The HAProxy line model, editor and rules on configurations real projects publish
(tests/corpus/haproxy/<case>/, with SOURCE and LICENSE) and on the cases the issue names: each
test reads the exact bytes a plan would write."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from remediate.model import Endpoint
from remediate.policy import Policy, build
from remediate.providers.haproxy import PROVIDER
from remediate.providers.haproxy.config import ConfigError, Editor, parse, seconds, split_words
from remediate.providers.haproxy.rules import (
    BACKEND_H2,
    FILES,
    HTTP2,
    INVALID,
    ORDER,
    TLS_FLOOR,
    binds,
    evaluate,
    sockets,
    split_address,
)
from remediate.rules import Verdict
from remediate.targets import HostFile

# Pure parsing and planning on published configurations: no HAProxy, no Ansible.
pytestmark = pytest.mark.unit

CORPUS = Path(__file__).resolve().parent / "corpus" / "haproxy"
CFG = "/etc/haproxy/haproxy.cfg"


def corpus(case: str) -> dict[str, str]:
    root = CORPUS / case
    return {
        "/" + str(path.relative_to(root)): path.read_text(encoding="utf-8")
        for path in sorted(root.rglob("*.cfg"))
    }


def policy(**haproxy: Any) -> Policy:
    return build(haproxy=haproxy)


def plan(
    files: dict[str, str], version: str, order: list[str] | None = None, **haproxy: Any
) -> Verdict:
    order = order or list(files)
    endpoint = Endpoint(
        provider="haproxy",
        resource="lb1",
        kind="haproxy-host",
        name="lb1",
        settings={},
        context={"version": version, "order": order},
    )
    facts = {FILES: {"lb1": files}, ORDER: {"lb1": order}}
    return evaluate(endpoint, policy(**haproxy), facts)


def after(verdict: Verdict, path: str = CFG) -> str:
    (change,) = [c for c in verdict.changes if c.resource == f"lb1:{path}"]
    return str(change.after)


@pytest.mark.parametrize("case", sorted(p.name for p in CORPUS.iterdir()))
def test_every_corpus_case_parses_and_an_editor_without_edits_changes_no_byte(case: str) -> None:
    assert (CORPUS / case / "SOURCE").read_text().strip()
    assert (CORPUS / case / "LICENSE").read_text().strip()
    files = corpus(case)
    config = parse(files, list(files))
    assert config.sections
    assert Editor(config).render() == {}


def test_debian_default_has_no_tls_bind_and_plans_nothing() -> None:
    files = corpus("debian-default")
    config = parse(files, [CFG])
    assert [s.label for s in config.sections] == ["global", "defaults"]
    assert config.global_settings("ssl-default-bind-options").args[:2] == ["ssl-min-ver", "TLSv1.2"]
    verdict = plan(files, "2.6.12-1+deb12u4", websocket_backends=["*"])
    assert verdict.changes == [] and verdict.findings == []


def test_haproxy_edge_example_conditionals_named_defaults_and_inherited_tunnel() -> None:
    files = corpus("haproxy-basic-config-edge")
    config = parse(files, [CFG])
    pub1 = next(s for s in config.sections if s.label == "frontend pub1")
    assert pub1.defaults is not None and pub1.defaults.label == "defaults http"
    quic = [s for s in pub1.statements if s.condition]
    assert [s.keyword for s in quic] == ["bind", "http-response"]
    assert quic[0].condition == (".if feature(QUIC)",)
    # Only the TCP bind with ssl counts; legacy no-tlsv10/11 plus 2.6's built-in floor: 1.2 and 1.3.
    (bind,) = binds(config, "2.6.12")
    assert bind.address == ":443" and bind.accepted == ["1.2", "1.3"]
    # Before 2.8 the bind without alpn speaks only HTTP/1.1: one word appended, nothing else.
    verdict = plan(files, "2.6.12", websocket_backends=["app1"])
    new = after(verdict)
    old = files[CFG]
    assert new == old.replace(
        "\tbind :443 name secure ssl crt pub1.pem\n",
        "\tbind :443 name secure ssl crt pub1.pem alpn h2,http/1.1\n",
    )
    assert verdict.changes[0].rules == (HTTP2,)
    # app1 inherits `timeout tunnel 4h  # for websocket` from `defaults http`: left alone.
    assert "timeout tunnel 1h" not in new
    # From 2.8 the same bind already offers h2.
    assert plan(files, "2.8.5", websocket_backends=["app1"]).changes == []


def test_haproxy_ssl_example_before_2_2_gets_a_floor_in_global_and_alpn() -> None:
    files = corpus("haproxy-ssl")
    verdict = plan(files, "2.0.33")
    (change,) = verdict.changes
    assert change.rules == (TLS_FLOOR, HTTP2)
    assert after(verdict) == files[CFG].replace(
        "global\n\tmaxconn 100\n",
        "global\n\tssl-default-bind-options ssl-min-ver TLSv1.2\n\tmaxconn 100\n",
    ).replace(
        "\tbind :443 ssl crt /etc/cert/server.pem crt /etc/cert/certdir/\n",
        "\tbind :443 ssl crt /etc/cert/server.pem crt /etc/cert/certdir/ alpn h2,http/1.1\n",
    )
    assert "accepts TLS 1.0, 1.1" in change.reason
    assert change.diff is not None
    lines = change.diff[CFG].splitlines()[2:]
    assert [line[0] for line in lines if line[:1] in "+-"] == ["+", "-", "+"]
    # 2.6's built-in floor is TLS 1.2: only the ALPN edit remains.
    (change,) = plan(files, "2.6.12").changes
    assert change.rules == (HTTP2,)


def test_sockjs_recipe_websocket_backend_gets_timeout_tunnel_and_its_path_is_probed() -> None:
    files = corpus("sockjs-websocket")
    verdict = plan(files, "2.6.12", websocket_backends=["sockjs"], timeout_tunnel="2h")
    new = after(verdict)
    assert new == files[CFG].replace(
        "    timeout server  120s\n", "    timeout server  120s\n    timeout tunnel 2h\n"
    )
    assert "timeout client 120s" in verdict.changes[0].reason or "timeout client" in (
        verdict.changes[0].reason
    )
    missing = plan(files, "2.6.12", websocket_backends=["chat"])
    assert [n.message for n in missing.findings] == [
        "haproxy.websocket_backends names chat: no such backend"
    ]


WEAK = """\
global
    # legacy options, ignored once ssl-min-ver is set
    ssl-default-bind-options no-sslv3 no-tlsv10
    ssl-default-bind-ciphers DEFAULT:@SECLEVEL=0   # old clients

defaults
    mode http
    timeout client 30s
    timeout server 30s

frontend web
    bind 127.0.0.1:8443 ssl crt /etc/haproxy/site.pem ssl-min-ver TLSv1.0  # kiosk
    bind 127.0.0.1:8444 ssl crt /etc/haproxy/site.pem alpn http/1.1
    bind 127.0.0.1:8445 ssl crt /etc/haproxy/site.pem no-alpn
    bind 127.0.0.1:8446 ssl crt /etc/haproxy/site.pem proto h2
    default_backend ws

backend ws
    server a 127.0.0.1:9000 proto h2
"""


def test_weak_binds_are_fixed_in_place_and_decisions_are_reported() -> None:
    files = {CFG: WEAK}
    config = parse(files, [CFG])
    found = {b.address: b for b in binds(config, "2.6.12")}
    assert found["127.0.0.1:8443"].accepted == ["1.0", "1.1", "1.2", "1.3"]
    assert found["127.0.0.1:8443"].legacy_ignored
    # 2.6's built-in floor is TLS 1.2: the legacy flags change nothing there.
    assert found["127.0.0.1:8444"].accepted == ["1.2", "1.3"]
    verdict = plan(files, "2.6.12", websocket_backends=["*"])
    new = after(verdict)
    # The bind's own ssl-min-ver is the floor in force there; the global line needs nothing.
    assert new.splitlines()[2] == "    ssl-default-bind-options no-sslv3 no-tlsv10"
    assert new.splitlines()[3].startswith("    ssl-default-bind-ciphers ECDHE-ECDSA-AES128-GCM")
    assert new.splitlines()[3].endswith("   # old clients")
    assert new.splitlines()[11] == (
        "    bind 127.0.0.1:8443 ssl crt /etc/haproxy/site.pem ssl-min-ver TLSv1.2"
        " alpn h2,http/1.1  # kiosk"
    )
    assert "    timeout tunnel 1h\n" in new.split("\nbackend ws\n")[1]
    # Lines that need no change keep every byte.
    assert new.splitlines()[12:15] == WEAK.splitlines()[12:15]
    messages = {(n.rule, n.message.split(" (")[0].split(" offers")[0]) for n in verdict.findings}
    assert (HTTP2, "bind 127.0.0.1:8444") in messages
    assert any(n.rule == HTTP2 and "no-alpn" in n.message for n in verdict.findings)
    assert any(n.rule == HTTP2 and "forces proto h2" in n.message for n in verdict.findings)
    assert any(n.rule == BACKEND_H2 and "server a" in n.message for n in verdict.findings)
    # The plan is a fixed point: planning the new text changes nothing more.
    again = plan({CFG: new}, "2.6.12", websocket_backends=["*"])
    assert again.changes == []


def test_several_files_load_in_order_and_defaults_are_found_by_from() -> None:
    files = {
        "/etc/haproxy/conf.d/00-global.cfg": (
            "global\n  ssl-default-bind-options ssl-min-ver TLSv1.1\n"
        ),
        "/etc/haproxy/conf.d/10-defaults.cfg": "defaults base\n  mode http\n",
        "/etc/haproxy/conf.d/20-site.cfg": (
            "frontend site from base\n  bind :443 ssl crt /c.pem alpn h2,http/1.1\n"
        ),
    }
    order = sorted(files)
    verdict = plan(files, "2.6.12", order=order)
    (change,) = verdict.changes
    assert change.resource == "lb1:/etc/haproxy/conf.d/00-global.cfg"
    assert after(verdict, "/etc/haproxy/conf.d/00-global.cfg") == (
        "global\n  ssl-default-bind-options ssl-min-ver TLSv1.2\n"
    )
    (sock,) = sockets(parse(files, order), policy(), "2.6.12")
    assert (sock.address, sock.port, sock.http2) == ("", 443, True)


def test_unreadable_configs_plan_nothing_and_say_where() -> None:
    with pytest.raises(ConfigError, match=r"^/x.cfg:2: .endif without .if$"):
        parse({"/x.cfg": "global\n.endif\n"}, ["/x.cfg"])
    with pytest.raises(ConfigError, match=r"^/x.cfg:1: 'bind' outside of any section$"):
        parse({"/x.cfg": "bind :80\n"}, ["/x.cfg"])
    verdict = plan({"/x.cfg": "frontend f\n .if defined(X)\n bind :80\n"}, "2.6", order=["/x.cfg"])
    assert verdict.changes == []
    assert [(n.rule, n.message) for n in verdict.findings] == [
        (INVALID, "/x.cfg: .if block opened by '.if defined(X)' is never closed")
    ]


def test_words_quotes_escapes_and_comments() -> None:
    assert split_words("  http-response add-header alt-svc 'h3=\":443\"; ma=90000' # x") == (
        ["http-response", "add-header", "alt-svc", 'h3=":443"; ma=90000'],
        "# x",
    )
    assert split_words('acl a path_beg /a\\ b "#c"') == (["acl", "a", "path_beg", "/a b", "#c"], "")
    assert split_address("[::]:443") == ("::", 443)
    assert split_address("ipv4@127.0.0.1:8443,:8444") == ("127.0.0.1", 8443)
    assert split_address("unix@/run/h.sock") == ("", None)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("2s", 2.0), ("50000", 50.0), ("1m", 60.0), ("1h", 3600.0), ("250ms", 0.25), ("2x", None)],
)
def test_haproxy_times_read_as_seconds_and_a_bare_number_is_milliseconds(
    text: str, expected: float | None
) -> None:
    assert seconds(text) == expected


def test_a_websocket_socket_carries_its_client_timeout_and_verification_idles_just_past_it() -> (
    None
):
    files = {CFG: WEAK.replace("timeout client 30s", "timeout client 2s")}
    (change,) = plan(files, "2.6.12", websocket_backends=["ws"]).changes
    assert isinstance(change.target, HostFile)
    assert {s.client_timeout for s in change.target.sockets} == {2.0}
    expected = list(PROVIDER.expectations([change], policy(websocket_backends=["ws"])))
    assert {e.ws_idle for e in expected} == {3.0}
    assert all(e.ws_paths == ("/",) and not e.notes for e in expected)


def test_a_client_timeout_past_the_cap_is_not_waited_for_and_the_note_says_why() -> None:
    files = {CFG: WEAK.replace("timeout client 30s", "timeout client 1m")}
    (change,) = plan(files, "2.6.12", websocket_backends=["ws"]).changes
    capped = policy(websocket_backends=["ws"], websocket_idle_check_max="30s")
    expected = list(PROVIDER.expectations([change], capped))
    assert {e.ws_idle for e in expected} == {0.0}
    assert {e.notes for e in expected} == {
        (
            "WebSocket idle check skipped: timeout client 60 s is longer than "
            "haproxy.websocket_idle_check_max (30 s)",
        )
    }
    raised = policy(websocket_backends=["ws"], websocket_idle_check_max="2m")
    assert {e.ws_idle for e in PROVIDER.expectations([change], raised)} == {61.0}
    # Sockets without a WebSocket path are not kept idle at all.
    none = plan(files, "2.6.12").changes[0]
    assert {e.ws_idle for e in PROVIDER.expectations([none], policy())} == {0.0}
