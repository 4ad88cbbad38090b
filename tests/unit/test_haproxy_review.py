"""What a HAProxy host's verdict says, whole: two files edited (global defaults, a bind's own
options, ALPN), each change's bytes, diff, reasons, rules and the sockets verification probes
afterwards, and the findings left for a person (force-tlsv1x, proto h2, no-alpn, a deliberate
ALPN list, servers spoken to in HTTP/2); hosts whose files were not collected or not valid."""

from __future__ import annotations

import pytest

from remediate.model import Endpoint
from remediate.policy import build
from remediate.providers.haproxy.config import parse
from remediate.providers.haproxy.rules import (
    BACKEND_H2,
    CIPHERS,
    FILES,
    HTTP2,
    INVALID,
    MODERN_CIPHERS,
    ORDER,
    PARSED,
    TLS_FLOOR,
    evaluate,
)
from remediate.rules import Note, Verdict
from remediate.targets import HostFile, Socket

pytestmark = pytest.mark.unit

CFG = "/etc/haproxy/haproxy.cfg"
SITE = "/etc/haproxy/conf.d/site.cfg"
PEM = "crt /etc/haproxy/site.pem"
MAIN = f"""global
  log /dev/log local0
  ssl-default-bind-ciphers AES128-SHA:AES256-SHA

defaults
  mode http
  timeout client 30s
  default-server alpn h2,http/1.1

frontend web
  bind :443 ssl {PEM}
  bind :8443 ssl {PEM} alpn http/1.1
  default_backend app
"""
LEGACY = f"""frontend legacy
  mode http
  bind :9443 ssl {PEM} ssl-min-ver TLSv1.0 no-sslv3 no-tlsv10 ciphers DEFAULT:@SECLEVEL=0
  bind :9444 ssl {PEM} force-tlsv11
  bind :9445 ssl {PEM} proto h2
  bind :9446 ssl {PEM} no-alpn
backend app
  server a1 10.0.0.1:443 ssl verify none proto h2
listen grpc
  mode http
  server g1 10.0.0.2:443 ssl verify none alpn h2
  server g2 10.0.0.3:80
"""
VERSION = "2.0.33"


def host(**context: object) -> Endpoint:
    return Endpoint(
        provider="haproxy",
        resource="lb1",
        kind="haproxy-host",
        name="lb1",
        context={"version": VERSION, **context},
    )


def facts(files: dict[str, str]) -> dict[str, object]:
    return {FILES: {"lb1": files}, ORDER: {"lb1": list(files)}}


def test_a_weak_host_gets_one_change_per_file_with_its_reasons_and_what_to_probe() -> None:
    verdict = evaluate(host(), build(haproxy={}), facts({CFG: MAIN, SITE: LEGACY}))
    main, site = verdict.changes
    assert [(c.resource, c.attribute, c.kind) for c in verdict.changes] == [
        (f"lb1:{CFG}", "content", "file"),
        (f"lb1:{SITE}", "content", "file"),
    ]
    assert (main.before, site.before) == (MAIN, LEGACY)
    assert main.after == MAIN.replace(
        "  ssl-default-bind-ciphers AES128-SHA:AES256-SHA\n",
        f"  ssl-default-bind-ciphers {MODERN_CIPHERS}\n"
        "  ssl-default-bind-options ssl-min-ver TLSv1.2\n",
    ).replace(f"  bind :443 ssl {PEM}\n", f"  bind :443 ssl {PEM} alpn h2,http/1.1\n")
    assert site.after == LEGACY.replace(
        "ssl-min-ver TLSv1.0 no-sslv3 no-tlsv10 ciphers DEFAULT:@SECLEVEL=0",
        f"ssl-min-ver TLSv1.2 ciphers {MODERN_CIPHERS} alpn h2,http/1.1",
    ).replace("force-tlsv11\n", "force-tlsv11 alpn h2,http/1.1\n")
    assert main.rules == (TLS_FLOOR, CIPHERS, HTTP2)
    assert main.reason.split("; ") == [
        f"bind :443 (frontend web, {CFG}:11) accepts TLS 1.0, 1.1",
        "policy minimum is TLS 1.2",
        f"bind :8443 (frontend web, {CFG}:12) accepts TLS 1.0, 1.1",
        "policy minimum is TLS 1.2",
        f"bind :9445 (frontend legacy, {SITE}:5) accepts TLS 1.0, 1.1",
        "policy minimum is TLS 1.2",
        f"bind :9446 (frontend legacy, {SITE}:6) accepts TLS 1.0, 1.1",
        "policy minimum is TLS 1.2",
        f"ssl-default-bind-ciphers ({CFG}:3) offers only ciphers made for old TLS (no AEAD suite "
        "for TLS 1.2) for bind :443 (frontend web), bind :8443 (frontend web), bind :9444 "
        "(frontend legacy), bind :9445 (frontend legacy), bind :9446 (frontend legacy)",
        f"bind :443 (frontend web, {CFG}:11) has no alpn: HAProxy 2.0.33 speaks only HTTP/1.1 "
        "there (h2 by default from 2.8)",
    ]
    assert site.reason.split("; ")[2] == (
        "ciphers lowers the OpenSSL security level (@SECLEVEL=0) for bind :9443 (frontend legacy)"
    )
    assert main.diff is not None and list(main.diff) == [CFG]
    assert main.diff[CFG].startswith(f"--- a{CFG}\n+++ b{CFG}\n")
    assert "-  ssl-default-bind-ciphers AES128-SHA:AES256-SHA\n" in main.diff[CFG]
    sockets = (
        Socket(address="", port=443, http2=True),
        Socket(address="", port=8443, http2=False),
        Socket(address="", port=9443, http2=True),
        Socket(address="", port=9444, http2=True),
        Socket(address="", port=9445, http2=True),
        Socket(address="", port=9446, http2=False),
    )
    assert main.target == HostFile(host="lb1", path=CFG, sockets=sockets)
    assert site.target == HostFile(host="lb1", path=SITE, sockets=sockets)
    assert [(n.rule, n.message) for n in verdict.findings] == [
        (TLS_FLOOR, f"bind :9444 (frontend legacy, {SITE}:4) accepts TLS 1.1 through force-tlsv1x"),
        (
            HTTP2,
            f"bind :8443 (frontend web, {CFG}:12) offers ALPN http/1.1 without h2 ({CFG}:12): "
            "a deliberate choice, left as set",
        ),
        (
            HTTP2,
            f"bind :9445 (frontend legacy, {SITE}:5) forces proto h2: HTTP/1.1 clients are "
            "refused there",
        ),
        (
            HTTP2,
            f"bind :9446 (frontend legacy, {SITE}:6) has no-alpn: clients cannot negotiate h2 "
            "(left as set)",
        ),
        (
            BACKEND_H2,
            f"default-server in defaults ({CFG}:8) speaks HTTP/2 to its server (alpn "
            "h2,http/1.1): a server that does not speak h2 makes HAProxy answer 502",
        ),
        (
            BACKEND_H2,
            f"server a1 in backend app ({SITE}:8) speaks HTTP/2 to its server (proto h2): a "
            "server that does not speak h2 makes HAProxy answer 502",
        ),
        (
            BACKEND_H2,
            f"server g1 in listen grpc ({SITE}:11) speaks HTTP/2 to its server (alpn h2): a "
            "server that does not speak h2 makes HAProxy answer 502",
        ),
    ]


def test_a_global_alpn_list_without_h2_is_named_where_it_is_set() -> None:
    text = (
        "global\n  ssl-default-bind-alpn http/1.1\n"
        f"frontend f\n  mode http\n  bind :443 ssl {PEM}\n"
    )
    verdict = evaluate(host(version="2.8"), build(haproxy={}), facts({CFG: text}))
    assert verdict.changes == []
    assert [n.message for n in verdict.findings] == [
        f"bind :443 (frontend f, {CFG}:5) offers ALPN http/1.1 without h2 ({CFG}:2): a "
        "deliberate choice, left as set"
    ]


def test_a_floor_set_in_global_options_is_raised_there_once() -> None:
    text = (
        "global\n  ssl-default-bind-options ssl-min-ver TLSv1.0 no-tlsv11\n"
        f"frontend a\n  mode http\n  bind :443 ssl {PEM} alpn h2,http/1.1\n"
        f"  bind :444 ssl {PEM} alpn h2\n"
    )
    [change] = evaluate(host(), build(haproxy={}), facts({CFG: text})).changes
    assert change.after == text.replace("ssl-min-ver TLSv1.0 no-tlsv11", "ssl-min-ver TLSv1.2")
    assert change.rules == (TLS_FLOOR,)
    assert change.reason.count("policy minimum is TLS 1.2") == 2


def test_without_a_global_section_each_bind_gets_its_own_floor() -> None:
    text = f"frontend a\n  mode tcp\n  bind :443 ssl {PEM}\n"
    [change] = evaluate(host(), build(haproxy={}), facts({CFG: text})).changes
    assert change.after == f"frontend a\n  mode tcp\n  bind :443 ssl {PEM} ssl-min-ver TLSv1.2\n"


def test_a_compliant_host_keeps_only_its_findings() -> None:
    text = (
        "global\n  ssl-default-bind-options ssl-min-ver TLSv1.2\n"
        f"frontend a\n  mode http\n  bind :443 ssl {PEM} alpn h2,http/1.1\n"
        "  default_backend b\nbackend b\n  mode http\n  server s 10.0.0.1:443 ssl proto h2\n"
    )
    verdict = evaluate(host(), build(haproxy={}), facts({CFG: text}))
    assert verdict.changes == []
    assert [n.rule for n in verdict.findings] == [BACKEND_H2]


def test_hosts_not_collected_or_invalid_are_findings() -> None:
    assert evaluate(host(invalid="haproxy -c failed: no such file"), build(), {}) == Verdict(
        findings=[Note(INVALID, "haproxy -c failed: no such file")]
    )
    missing = "the configuration of this host was not collected"
    assert evaluate(host(), build(), {}) == Verdict(findings=[Note(INVALID, missing)])
    assert evaluate(host(), build(), {FILES: {"lb1": {CFG: ""}}}) == Verdict(
        findings=[Note(INVALID, missing)]
    )
    assert evaluate(host(), build(), {ORDER: {"lb1": [CFG]}}) == Verdict(
        findings=[Note(INVALID, missing)]
    )


def test_the_configuration_discovery_already_parsed_is_used() -> None:
    weak = f"frontend a\n  bind :443 ssl {PEM}\n"
    strong = f"frontend a\n  bind :443 ssl {PEM} ssl-min-ver TLSv1.2\n"
    known = {**facts({CFG: weak}), PARSED: {"lb1": parse({CFG: strong}, [CFG])}}
    assert evaluate(host(), build(haproxy={}), known).changes == []
