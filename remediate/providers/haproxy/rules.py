"""HAProxy rules: the TLS floor and ciphers of each TLS `bind`, HTTP/2 by ALPN (by HAProxy version),
`timeout tunnel` for WebSocket backends, and HTTP/2 towards backend servers, as minimal line edits.

`binds` resolves each TLS bind's effective settings (global `ssl-default-bind-*`, the bind's own
options, HAProxy's built-in defaults for its version); `review` turns what falls short into
`Editor` edits with a reason each, and `evaluate` into one change per edited file.
"""

from __future__ import annotations

import re
import ssl
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from remediate.model import Endpoint
from remediate.policy import TLS_VERSIONS, Policy, tls_key
from remediate.providers.haproxy.config import (
    Config,
    ConfigError,
    Editor,
    Section,
    Statement,
    parse,
    seconds,
    unified_diff,
)
from remediate.providers.haproxy.model import HAProxySettings, Kind
from remediate.rules import Desired, Note, Verdict, accepts_phrase
from remediate.targets import HostFile, Socket

NAME = "haproxy"
# Where discovery puts each host's collected files, load order and parse:
# facts[FILES][host] = {path: text}, facts[ORDER][host] = [path, ...], facts[PARSED][host] = Config.
FILES = "haproxy.files"
ORDER = "haproxy.order"
PARSED = "haproxy.parsed"

TLS_FLOOR = "haproxy-tls-floor"
CIPHERS = "haproxy-weak-ciphers"
HTTP2 = "haproxy-http2-alpn"
WEBSOCKET = "haproxy-websocket-tunnel-timeout"
BACKEND_H2 = "haproxy-backend-h2"
INVALID = "haproxy-config-invalid"

VERSION_NAMES = {"TLSv1.0": "1.0", "TLSv1.1": "1.1", "TLSv1.2": "1.2", "TLSv1.3": "1.3"}
LEGACY_FLAGS = {"no-tlsv10": "1.0", "no-tlsv11": "1.1", "no-tlsv12": "1.2", "no-tlsv13": "1.3"}
FORCE_FLAGS = {"force-tlsv10": "1.0", "force-tlsv11": "1.1", "force-tlsv12": "1.2"}
FORCE_FLAGS["force-tlsv13"] = "1.3"
# From 2.2 the built-in ssl-min-ver is TLSv1.2; from 2.8 a TLS bind without `alpn` offers h2.
BUILTIN_TLS12_SINCE = (2, 2)
DEFAULT_ALPN_H2_SINCE = (2, 8)
# Mozilla's "intermediate" TLS 1.2 suites: forward secret and AEAD only.
MODERN_CIPHERS = (
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:"
    "DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384:DHE-RSA-CHACHA20-POLY1305"
)
H2_ALPN = "h2,http/1.1"


def parse_version(version: str) -> tuple[int, ...]:
    """`2.6.12-1+deb12u4` as (2, 6, 12)."""
    match = re.match(r"(\d+(?:\.\d+)*)", version)
    return tuple(int(part) for part in match.group(1).split(".")) if match else (0,)


def version_name(version: str) -> str:
    """ "1.2" as `TLSv1.2`, the spelling of ssl-min-ver."""
    return f"TLSv{version}"


@dataclass
class Bind:
    """A TLS `bind` line of a frontend or listen section, with its effective settings."""

    statement: Statement
    section: Section
    accepted: list[str]
    minimum: str
    min_source: Statement | None
    """The line whose `ssl-min-ver` (or `force-tlsv1x`) sets the floor; None: HAProxy's default."""
    legacy_ignored: bool
    alpn: list[str] | None
    alpn_source: Statement | None
    no_alpn: bool
    proto: str | None
    ciphers: str | None
    ciphers_source: Statement | None
    http2: bool

    @property
    def address(self) -> str:
        return self.statement.args[0] if self.statement.args else ""

    @property
    def label(self) -> str:
        return f"bind {self.address} ({self.section.label}, {self.statement.where})"


def _option(words: Sequence[str], name: str) -> str | None:
    for index, word in enumerate(words[:-1]):
        if word == name:
            return words[index + 1]
    return None


def binds(config: Config, version: str) -> list[Bind]:
    """Every TLS bind of every frontend and listen section (QUIC binds are TLS 1.3 only and left
    out), with the effective TLS range, ALPN and ciphers."""
    parsed = parse_version(version)
    options = config.global_settings("ssl-default-bind-options")
    global_words = options.args if options else []
    global_alpn = config.global_settings("ssl-default-bind-alpn")
    global_ciphers = config.global_settings("ssl-default-bind-ciphers")
    result: list[Bind] = []
    for section in config.of_kind("frontend", "listen"):
        for statement in section.all("bind"):
            words = statement.args
            if "ssl" not in words[1:] or words[0].startswith("quic"):
                continue
            result.append(
                _bind(
                    statement,
                    section,
                    parsed,
                    options,
                    global_words,
                    global_alpn,
                    global_ciphers,
                )
            )
    return result


def _bind(
    statement: Statement,
    section: Section,
    parsed: tuple[int, ...],
    options: Statement | None,
    global_words: Sequence[str],
    global_alpn: Statement | None,
    global_ciphers: Statement | None,
) -> Bind:
    words = statement.args
    builtin = "1.2" if parsed >= BUILTIN_TLS12_SINCE else "1.0"
    low, high, source = builtin, "1.3", None
    explicit = False
    for line, line_words in ((options, global_words), (statement, words)):
        if line is None:
            continue
        forced = [FORCE_FLAGS[w] for w in line_words if w in FORCE_FLAGS]
        min_name = _option(line_words, "ssl-min-ver")
        max_name = _option(line_words, "ssl-max-ver")
        if forced:
            low = high = forced[-1]
            source, explicit = line, True
        if min_name in VERSION_NAMES:
            low, source, explicit = VERSION_NAMES[min_name], line, True
        if max_name in VERSION_NAMES:
            high, explicit = VERSION_NAMES[max_name], True
    legacy = {
        LEGACY_FLAGS[w]
        for line_words in (global_words, words)
        for w in line_words
        if w in LEGACY_FLAGS
    }
    accepted = [
        v
        for v in TLS_VERSIONS
        if tls_key(low) <= tls_key(v) <= tls_key(high) and (explicit or v not in legacy)
    ]
    alpn_value = _option(words, "alpn")
    alpn_source = statement if alpn_value is not None else None
    if alpn_value is None and global_alpn is not None and global_alpn.args:
        alpn_value, alpn_source = global_alpn.args[0], global_alpn
    alpn = alpn_value.split(",") if alpn_value is not None else None
    no_alpn = "no-alpn" in words
    proto = _option(words, "proto")
    if no_alpn:
        offers_h2 = False
    elif alpn is not None:
        offers_h2 = "h2" in alpn
    else:
        offers_h2 = parsed >= DEFAULT_ALPN_H2_SINCE
    ciphers = _option(words, "ciphers")
    ciphers_source = statement if ciphers is not None else None
    if ciphers is None and global_ciphers is not None and global_ciphers.args:
        ciphers, ciphers_source = global_ciphers.args[0], global_ciphers
    return Bind(
        statement=statement,
        section=section,
        accepted=accepted,
        minimum=low,
        min_source=source,
        legacy_ignored=explicit and bool(legacy),
        alpn=alpn,
        alpn_source=alpn_source,
        no_alpn=no_alpn,
        proto=proto,
        ciphers=ciphers,
        ciphers_source=ciphers_source,
        http2=(offers_h2 or proto == "h2") and section.mode == "http",
    )


def cipher_problem(ciphers: str) -> str | None:
    """Why a TLS <= 1.2 cipher string falls short, or None. `@SECLEVEL=0` re-enables what OpenSSL 3
    refuses (TLS 1.0/1.1 handshakes among them); a list without any AEAD suite was written for old
    TLS. A list the local OpenSSL cannot read is left alone rather than judged blindly."""
    if "@seclevel=0" in ciphers.lower():
        return "lowers the OpenSSL security level (@SECLEVEL=0)"
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        context.set_ciphers(ciphers)
    except ssl.SSLError:
        return None
    if not any(c["aead"] for c in context.get_ciphers() if c["protocol"] != "TLSv1.3"):
        return "offers only ciphers made for old TLS (no AEAD suite for TLS 1.2)"
    return None


def websocket_backends(config: Config, wanted: Sequence[str]) -> list[Section]:
    """The backend and listen sections `haproxy.websocket_backends` names (`*`: every HTTP one)."""
    proxies = config.of_kind("backend", "listen")
    if "*" in wanted:
        return [p for p in proxies if p.mode == "http"]
    return [p for p in proxies if p.name in wanted]


def ws_paths(config: Config, frontend: Section, backends: Sequence[Section]) -> list[str]:
    """Paths on which `frontend` routes a request to one of the WebSocket `backends`: `/` when it
    is one itself or its default backend is, and the first `path_beg` prefix of a `use_backend`
    rule (inline or through a named `acl`)."""
    names = {b.name for b in backends}
    if frontend.kind == "listen" and frontend.name in names:
        return ["/"]
    acls = {
        s.args[0]: s.args[2]
        for s in frontend.all("acl")
        if len(s.args) > 2 and s.args[1] == "path_beg"
    }
    paths: list[str] = []
    for rule in frontend.all("use_backend"):
        if not rule.args or rule.args[0] not in names:
            continue
        condition = rule.args[2:] if rule.args[1:2] in (["if"], ["unless"]) else []
        if rule.args[1:2] == ["unless"]:
            continue
        for index, word in enumerate(condition):
            if word == "path_beg" and index + 1 < len(condition):
                paths.append(condition[index + 1])
                break
            if word in acls:
                paths.append(acls[word])
                break
    default = frontend.effective("default_backend")
    if default is not None and default.args and default.args[0] in names:
        paths.append("/")
    return list(dict.fromkeys(paths))


@dataclass(frozen=True)
class Fix:
    path: str
    reason: str
    rule: str


@dataclass
class Review:
    fixes: list[Fix] = field(default_factory=list)
    findings: list[Note] = field(default_factory=list)


def _settings(policy: Policy) -> HAProxySettings:
    return policy.section(NAME, HAProxySettings)


def review(config: Config, policy: Policy, version: str, editor: Editor) -> Review:
    """Every edit that brings the configuration in line with `policy`, each with its reason."""
    result = Review()
    found = binds(config, version)
    _floor(config, found, policy.tls.minimum, editor, result)
    _ciphers(found, editor, result)
    if policy.http2:
        _http2(found, version, editor, result)
    settings = _settings(policy)
    if settings.websocket_backends:
        _websockets(config, settings, editor, result)
    _backend_h2(config, result)
    return result


def _floor(
    config: Config, found: Sequence[Bind], minimum: str, editor: Editor, result: Review
) -> None:
    target = version_name(minimum)
    fixed: set[int] = set()
    inserted = False
    for bind in found:
        weak = [v for v in bind.accepted if tls_key(v) < tls_key(minimum)]
        if not weak:
            continue
        source = bind.min_source
        forced = source is not None and any(w in FORCE_FLAGS for w in source.words)
        if forced:
            result.findings.append(
                Note(TLS_FLOOR, f"{bind.label} {accepts_phrase(weak)} through force-tlsv1x")
            )
            continue
        if source is None:
            source = config.global_settings("ssl-default-bind-options")
        reason = f"{bind.label} {accepts_phrase(weak)}; policy minimum is TLS {minimum}"
        section = config.global_section
        if source is None and section is not None:
            # No ssl-default-bind-options anywhere: one new line in global sets every bind's floor.
            if not inserted:
                anchor = _last(section, "ssl-default-bind-ciphers", "ssl-default-bind-ciphersuites")
                editor.insert_after(
                    anchor or section.header, [f"ssl-default-bind-options ssl-min-ver {target}"]
                )
                inserted = True
            result.fixes.append(Fix(section.file, reason, TLS_FLOOR))
            continue
        if source is None:
            source = bind.statement
        if id(source) not in fixed:
            editor.set_option(source, "ssl-min-ver", target)
            # The legacy flags are ignored (with a warning) once ssl-min-ver is on the same line.
            editor.remove_words(source, "no-sslv3", *LEGACY_FLAGS)
            fixed.add(id(source))
        result.fixes.append(Fix(source.file, reason, TLS_FLOOR))


def _last(section: Section, *keywords: str) -> Statement | None:
    found = [s for s in section.statements if s.keyword in keywords and s.file == section.file]
    return found[-1] if found else None


def _ciphers(found: Sequence[Bind], editor: Editor, result: Review) -> None:
    """One fix per line that sets a weak cipher list, naming every bind it weakens."""
    weakened: dict[int, tuple[Statement, str, list[Bind]]] = {}
    for bind in found:
        if bind.ciphers is None or bind.ciphers_source is None:
            continue
        problem = cipher_problem(bind.ciphers)
        if problem is not None:
            key = id(bind.ciphers_source)
            weakened.setdefault(key, (bind.ciphers_source, problem, []))[2].append(bind)
    for source, problem, members in weakened.values():
        if source.keyword == "bind":
            editor.set_option(source, "ciphers", MODERN_CIPHERS)
            keyword = "ciphers"
        else:
            editor.replace_arg(source, 0, MODERN_CIPHERS)
            keyword = f"{source.keyword} ({source.where})"
        where = ", ".join(f"bind {b.address} ({b.section.label})" for b in members)
        result.fixes.append(Fix(source.file, f"{keyword} {problem} for {where}", CIPHERS))


def _http2(found: Sequence[Bind], version: str, editor: Editor, result: Review) -> None:
    for bind in found:
        if bind.section.mode != "http":
            continue
        if bind.proto == "h2":
            result.findings.append(
                Note(HTTP2, f"{bind.label} forces proto h2: HTTP/1.1 clients are refused there")
            )
            continue
        if bind.no_alpn:
            result.findings.append(
                Note(HTTP2, f"{bind.label} has no-alpn: clients cannot negotiate h2 (left as set)")
            )
            continue
        if bind.alpn is not None:
            if "h2" not in bind.alpn:
                result.findings.append(
                    Note(
                        HTTP2,
                        f"{bind.label} offers ALPN {','.join(bind.alpn)} without h2 "
                        f"({bind.alpn_source.where if bind.alpn_source else 'bind'}): "
                        "a deliberate choice, left as set",
                    )
                )
            continue
        if bind.http2:
            continue
        editor.set_option(bind.statement, "alpn", H2_ALPN)
        reason = (
            f"{bind.label} has no alpn: HAProxy {version} speaks only HTTP/1.1 there "
            "(h2 by default from 2.8)"
        )
        result.fixes.append(Fix(bind.statement.file, reason, HTTP2))


def _websockets(config: Config, settings: HAProxySettings, editor: Editor, result: Review) -> None:
    wanted = settings.websocket_backends
    chosen = websocket_backends(config, wanted)
    for name in wanted:
        if name != "*" and not any(p.name == name for p in chosen):
            result.findings.append(
                Note(WEBSOCKET, f"haproxy.websocket_backends names {name}: no such backend")
            )
    for proxy in chosen:
        if proxy.effective("timeout", "tunnel") is not None:
            continue
        client = proxy.effective("timeout", "client")
        server = proxy.effective("timeout", "server")
        idle = ", ".join(
            f"timeout {s.args[0]} {s.args[1]}" for s in (client, server) if s and len(s.args) > 1
        )
        reason = (
            f"{proxy.label} carries WebSockets without timeout tunnel: idle WebSockets are cut "
            f"by {idle or 'the client and server timeouts'}"
        )
        anchor = _last(proxy, "timeout") or proxy.header
        editor.insert_after(anchor, [f"timeout tunnel {settings.timeout_tunnel}"])
        result.fixes.append(Fix(proxy.file, reason, WEBSOCKET))


def _backend_h2(config: Config, result: Review) -> None:
    for proxy in config.of_kind("defaults", "backend", "listen"):
        for statement in proxy.statements:
            if statement.keyword not in ("server", "default-server"):
                continue
            proto = statement.option("proto")
            alpn = statement.option("alpn")
            how = (
                "proto h2"
                if proto == "h2"
                else f"alpn {alpn}"
                if alpn and alpn.split(",")[0] == "h2"
                else None
            )
            if how is None:
                continue
            who = (
                " ".join(statement.words[:2]) if statement.keyword == "server" else "default-server"
            )
            result.findings.append(
                Note(
                    BACKEND_H2,
                    f"{who} in {proxy.label} ({statement.where}) speaks HTTP/2 to its server "
                    f"({how}): a server that does not speak h2 makes HAProxy answer 502",
                )
            )


def sockets(config: Config, policy: Policy, version: str) -> tuple[Socket, ...]:
    """What verify checks on each TLS bind: the address and port, whether h2 is offered, the
    paths that reach a WebSocket backend and the client timeout a WebSocket there must outlive."""
    backends = websocket_backends(config, _settings(policy).websocket_backends)
    result: list[Socket] = []
    for bind in binds(config, version):
        address, port = split_address(bind.address)
        if port is None:
            continue
        paths = ws_paths(config, bind.section, backends) if backends else []
        result.append(
            Socket(
                address=address,
                port=port,
                http2=bind.http2,
                ws_paths=tuple(paths),
                client_timeout=client_timeout(bind.section) if paths else None,
            )
        )
    return tuple(dict.fromkeys(result))


def client_timeout(proxy: Section) -> float | None:
    """The `timeout client` in force on a frontend or listen section, in seconds (None: unset,
    which HAProxy reads as no limit, or unreadable)."""
    found = proxy.effective("timeout", "client")
    if found is None or len(found.args) < 2:
        return None
    return seconds(found.args[1]) or None


def split_address(address: str) -> tuple[str, int | None]:
    """A bind address (`:443`, `*:443`, `127.0.0.1:8443`, `[::]:443`, `ipv4@1.2.3.4:443`, the
    first of a comma list) as (host, port); port None for a UNIX socket or a port range."""
    first = address.split(",", 1)[0]
    family, _, rest = first.rpartition("@")
    if family and family not in ("ipv4", "ipv6", "tcp", "tcp4", "tcp6"):
        return "", None
    host, _, port = rest.rpartition(":")
    if not port.isdigit():
        return host, None
    return host.strip("[]") if host.startswith("[") else host, int(port)


def evaluate(endpoint: Endpoint, policy: Policy, facts: Mapping[str, Any]) -> Verdict:
    """One change per file to edit on the host `endpoint` names: the file's whole new text, its
    unified diff and, in words, every reason it changes."""
    context = endpoint.context
    invalid = context.get("invalid")
    if invalid:
        return Verdict(findings=[Note(INVALID, str(invalid))])
    files: Mapping[str, str] | None = facts.get(FILES, {}).get(endpoint.resource)
    order: list[str] | None = facts.get(ORDER, {}).get(endpoint.resource)
    if files is None or order is None:
        return Verdict(findings=[Note(INVALID, "the configuration of this host was not collected")])
    version = str(context["version"])
    config = facts.get(PARSED, {}).get(endpoint.resource)
    try:
        if config is None:
            config = parse(files, order)
    except ConfigError as exc:
        return Verdict(findings=[Note(INVALID, str(exc))])
    editor = Editor(config)
    found = review(config, policy, version, editor)
    new_files = editor.render()
    if not new_files:
        return Verdict(findings=found.findings)
    after = parse({**files, **new_files}, order)
    after_sockets = sockets(after, policy, version)
    changes: list[Desired] = []
    for path in order:
        if path not in new_files:
            continue
        text = new_files[path]
        fixes = [fix for fix in found.fixes if fix.path == path]
        changes.append(
            Desired(
                attribute="content",
                before=files[path],
                after=text,
                reason="; ".join(dict.fromkeys(fix.reason for fix in fixes)),
                rules=tuple(dict.fromkeys(fix.rule for fix in fixes)),
                diff={path: unified_diff(path, files[path], text)},
                resource=f"{endpoint.resource}:{path}",
                kind=Kind.FILE,
                target=HostFile(host=endpoint.resource, path=path, sockets=after_sockets),
            )
        )
    return Verdict(changes, found.findings)
