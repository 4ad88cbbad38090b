"""Nginx rules: TLS protocols and ciphers per listening socket, HTTP/2 by nginx version, and the
WebSocket proxy headers, as minimal edits to the host's config files.

The decisions are pure functions of the parsed model (`config`); `review` turns
them into text edits with the reason for each, and `evaluate` into one change per edited file.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from remediate.model import Endpoint
from remediate.policy import Policy, tls_key
from remediate.providers.nginx import edit
from remediate.providers.nginx.config import (
    HTTP2_DIRECTIVE_SINCE,
    Config,
    Directive,
    Location,
    Server,
    default_protocols,
    effective,
    effective_all,
    parse_tree,
    parse_version,
)
from remediate.providers.nginx.config import Socket as Listening
from remediate.providers.nginx.model import Kind, NginxSettings
from remediate.rules import Desired, Note, Verdict, accepts_phrase, versions_from
from remediate.targets import HostFile, Socket

# Where discovery puts each host's collected tree: facts[TREES][host] = {path: text}, and the
# tree as it parsed it, so planning does not parse it again: facts[PARSED][host].
TREES = "nginx.trees"
PARSED = "nginx.parsed"
# facts[LINKS][host] = {path nginx reads: real file} for symlinked paths, and
# facts[HARD_LINKS][host] = {path: number of names} for files with several hard links.
LINKS = "nginx.links"
HARD_LINKS = "nginx.hard_links"
# facts[REVIEWED][host] = (policy, verdict): the host reviewed as soon as its tree arrived, while
# Ansible was still finishing (`discover.collector`).
REVIEWED = "nginx.reviewed"

PROTOCOLS = {"TLSv1": "1.0", "TLSv1.1": "1.1", "TLSv1.2": "1.2", "TLSv1.3": "1.3"}
SSL_PROTOCOLS = ("SSLv2", "SSLv3")
# Mozilla's "intermediate" TLS 1.2 suites: forward secret and AEAD only.
MODERN_CIPHERS = (
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:"
    "DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384:DHE-RSA-CHACHA20-POLY1305"
)
UPGRADE_MAP = {"default": "upgrade", "": "close"}
# nginx's documented idiom for an upstream with `keepalive`: ordinary requests send an empty
# Connection header (the connection stays open for reuse) instead of `close`.
KEEPALIVE_UPGRADE_MAP = {"default": "upgrade", "": ""}
KEEPALIVE_MAP_VARIABLE = "connection_upgrade_keepalive"
# Files another tool keeps up to date and stops updating once someone else edits them.
MANAGED_DIRECTORY = "/etc/letsencrypt/"
CERTBOT_OPTIONS = "options-ssl-nginx.conf"
# proxy_http_version defaults to 1.0 before nginx 1.29.7, and to 1.1 from it.
PROXY_HTTP11_DEFAULT_SINCE = (1, 29, 7)
MAP_VARIABLE = "connection_upgrade"


def protocol_directive(minimum: str) -> str:
    """The `ssl_protocols` value for a policy minimum: `TLSv1.2 TLSv1.3` or `TLSv1.3`."""
    names = {version: name for name, version in PROTOCOLS.items()}
    return " ".join(names[v] for v in versions_from(minimum))


def weak_protocols(protocols: Sequence[str], minimum: str) -> list[str]:
    """The protocols of an `ssl_protocols` value below `minimum`, as readable versions."""
    weak = [name.replace("SSLv", "SSL ") for name in protocols if name in SSL_PROTOCOLS]
    tls = sorted(
        {
            PROTOCOLS[p]
            for p in protocols
            if p in PROTOCOLS and tls_key(PROTOCOLS[p]) < tls_key(minimum)
        },
        key=tls_key,
    )
    if tls:
        weak.append(accepts_phrase(tls).removeprefix("accepts "))
    return weak


def cipher_problem(ciphers: str) -> str | None:
    """Why an `ssl_ciphers` value falls short, or None. `@SECLEVEL=0` re-enables what OpenSSL 3
    refuses; a list without any AEAD suite for TLS 1.2 was written for old TLS. A list the local
    OpenSSL cannot read is left alone rather than judged blindly."""
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


def upgrade_map_variable(directive: Directive, keepalive: bool = False) -> str | None:
    """The variable of a `map $http_upgrade $X { default upgrade; '' close; }` under any name,
    or with `keepalive` of `map $http_upgrade $X { default upgrade; '' ''; }`."""
    if directive.name != "map" or len(directive.args) != 2 or directive.args[0] != "$http_upgrade":
        return None
    entries = {child.name: " ".join(child.args).lower() for child in directive.children or ()}
    wanted = KEEPALIVE_UPGRADE_MAP if keepalive else UPGRADE_MAP
    return directive.args[1].removeprefix("$") if entries == wanted else None


def managed_by(path: str) -> str | None:
    """The tool that keeps `path` up to date (certbot), or None for the user's own files."""
    if path.startswith(MANAGED_DIRECTORY) or path.rpartition("/")[2] == CERTBOT_OPTIONS:
        return "certbot"
    return None


def upgrade_blocker(location: Location) -> str | None:
    """Why a proxied location cannot pass a WebSocket upgrade on to its upstream, or None."""
    passes = effective(location.chain, "proxy_pass_request_headers")
    if passes is not None and passes.args[:1] == ["off"]:
        return "proxy_pass_request_headers off drops the client's Upgrade header"
    return None


def http2_directive_syntax(version: tuple[int, ...]) -> bool:
    """True when the version configures HTTP/2 with `http2 on;` rather than a listen parameter."""
    return version >= HTTP2_DIRECTIVE_SINCE


def websocket_locations(config: Config, wanted: Sequence[str]) -> list[Location]:
    """The locations `websocket.locations` names. `*` means every proxied location that can
    carry an upgrade (see `websocket_skipped`); a location named explicitly is always included."""
    result: list[Location] = []
    for server in config.servers:
        for location in server.locations:
            if (
                location.uri in wanted
                or location.path in wanted
                or ("*" in wanted and location.proxied and upgrade_blocker(location) is None)
            ):
                result.append(location)
    return result


def websocket_skipped(config: Config, wanted: Sequence[str]) -> list[Note]:
    """A note for each proxied location `*` leaves out because it cannot carry an upgrade."""
    if "*" not in wanted:
        return []
    notes: list[Note] = []
    for server in config.servers:
        for location in server.locations:
            if location.uri in wanted or location.path in wanted or not location.proxied:
                continue
            blocker = upgrade_blocker(location)
            if blocker is not None:
                notes.append(
                    Note(
                        WEBSOCKET,
                        f"location {location.path} (server {_label(server)}) left without "
                        f"WebSocket headers: {blocker} (name it in websocket.locations to edit "
                        "it anyway)",
                    )
                )
    return notes


def http2_enabled(config: Config, server: Server, version: tuple[int, ...]) -> bool:
    """Whether clients of `server` can negotiate h2 (through ALPN on its TLS sockets)."""
    sockets = [s for s in config.sockets_of(server) if s.ssl]
    by_listen = any(s.http2_listen for s in sockets)
    if not http2_directive_syntax(version):
        return by_listen
    found = effective(server.chain, "http2")
    return found.args[:1] == ["on"] if found is not None else by_listen


TLS_FLOOR = "nginx-tls-floor"
CIPHERS = "nginx-weak-ciphers"
HTTP2 = "nginx-http2"
WEBSOCKET = "nginx-websocket-upgrade"
UNREAD = "nginx-config-unread"
MANAGED = "nginx-managed-file"


@dataclass(frozen=True)
class Fix:
    edit: edit.Edit
    reason: str
    rule: str


@dataclass
class Review:
    fixes: list[Fix] = field(default_factory=list)
    findings: list[Note] = field(default_factory=list)


def _label(server: Server) -> str:
    return server.name or "unnamed"


def _where(config: Config, servers: Sequence[Server]) -> str:
    """`*:443 (default server a), *:8443 (server b)` for the TLS sockets of `servers`."""
    places: dict[str, None] = {}
    for server in servers:
        for socket in config.sockets_of(server):
            if not socket.ssl:
                continue
            role = "default server" if socket.default is server else "server"
            places[f"{socket.key} ({role} {_label(server)})"] = None
    return ", ".join(places)


def _group(
    servers: Sequence[Server], directive_of: Callable[[Server], Directive | None]
) -> list[tuple[Directive | None, list[Server]]]:
    """Servers grouped by the statement that takes effect for them (None: nginx's default, per
    `http` or `stream` block). A file included by several servers (a snippet) is one statement:
    one edit, and every server that includes it named in its reason."""
    groups: dict[tuple[str, int], tuple[Directive | None, list[Server]]] = {}
    for server in servers:
        directive = directive_of(server)
        key = (
            (directive.file, directive.ordinal)
            if directive is not None
            else (f"default {server.http.name}", id(server.http))
        )
        groups.setdefault(key, (directive, []))[1].append(server)
    return list(groups.values())


def _in_file(block: Directive, names: Sequence[str]) -> Directive | None:
    """The last direct child of `block` called one of `names` and written in the block's file."""
    found = [c for c in block.children or () if c.name in names and c.file == block.file]
    return found[-1] if found else None


def _insert(
    tree: edit.Tree, block: Directive, anchors: Sequence[str], lines: list[str]
) -> edit.Edit:
    anchor = _in_file(block, anchors)
    return tree.insert_after(anchor, lines) if anchor else tree.insert_first(block, lines)


def review(config: Config, policy: Policy, version: str) -> Review:
    """Every edit that brings the host in line with `policy`, each with its reason."""
    tree = edit.Tree(config.files)
    result = Review()
    parsed_version = parse_version(version)
    if config.http is None:
        return result
    tls_servers = config.tls_servers()
    both = [*tls_servers, *config.stream_tls_servers()]
    _protocols(config, tree, policy, parsed_version, version, both, result)
    _ciphers(config, tree, both, result)
    if policy.http2:
        _http2(config, tree, parsed_version, tls_servers, result)
    if policy.websocket.locations:
        _websockets(config, tree, parsed_version, policy.websocket.locations, result)
        result.findings.extend(websocket_skipped(config, policy.websocket.locations))
    _conditional_protocols(config, result)
    _managed(policy, result)
    return result


def _conditional_protocols(config: Config, result: Review) -> None:
    """`ssl_protocols` inside an `if` block: nginx does not take it there, and no edit can say
    which branch was meant."""

    def walk(block: Directive, inside_if: bool) -> None:
        for child in block.children or ():
            if child.name == "ssl_protocols" and inside_if:
                result.findings.append(
                    Note(
                        TLS_FLOOR,
                        f"{child.where()}: ssl_protocols inside an if block is not editable: "
                        "set it at server or http level",
                    )
                )
            if child.children is not None:
                walk(child, inside_if or child.name == "if")

    walk(config.root, False)


def _managed(policy: Policy, result: Review) -> None:
    """Leave the files another tool keeps up to date alone unless the policy says otherwise."""
    choice = policy.section("nginx", NginxSettings).managed_files
    if choice == "edit":
        for fix in result.fixes:
            tool = managed_by(fix.edit.path)
            if tool is not None:
                note = Note(
                    MANAGED,
                    f"{fix.edit.path} is edited although {tool} manages it: "
                    f"{tool} stops updating it",
                )
                if note not in result.findings:
                    result.findings.append(note)
        return
    kept: list[Fix] = []
    left: dict[str, list[str]] = {}
    for fix in result.fixes:
        tool = managed_by(fix.edit.path)
        if tool is None:
            kept.append(fix)
        elif fix.reason not in left.setdefault(fix.edit.path, []):
            left[fix.edit.path].append(fix.reason)
    result.fixes = kept
    for path, reasons in left.items():
        result.findings.append(
            Note(
                MANAGED,
                f"{path} is kept up to date by {managed_by(path)}, so remediate left it "
                f"unchanged: {'; '.join(reasons)}. Choose nginx.managed_files: edit to let "
                f"remediate change it ({managed_by(path)} then stops updating it), or replace "
                "its include with your own settings in each server block",
            )
        )


def _protocols(
    config: Config,
    tree: edit.Tree,
    policy: Policy,
    parsed_version: tuple[int, ...],
    version: str,
    servers: Sequence[Server],
    result: Review,
) -> None:
    assert config.http is not None
    minimum = policy.tls.minimum
    target = protocol_directive(minimum)
    for directive, members in _group(servers, lambda s: effective(s.chain, "ssl_protocols")):
        protocols = directive.args if directive else list(default_protocols(parsed_version))
        weak = weak_protocols(protocols, minimum)
        if not weak:
            continue
        where = _where(config, members)
        if directive is None:
            reason = (
                f"ssl_protocols is not set: nginx {version} accepts {', '.join(weak)} on {where}"
            )
            new = _insert(
                tree,
                members[0].http,
                ("ssl_prefer_server_ciphers", "ssl_ciphers"),
                [f"ssl_protocols {target};"],
            )
        else:
            reason = f"ssl_protocols accepts {', '.join(weak)} on {where}"
            new = tree.replace_args(directive, target)
        result.fixes.append(Fix(new, reason, TLS_FLOOR))


def _ciphers(config: Config, tree: edit.Tree, servers: Sequence[Server], result: Review) -> None:
    for directive, members in _group(servers, lambda s: effective(s.chain, "ssl_ciphers")):
        if directive is None:
            continue
        problem = cipher_problem(" ".join(directive.args))
        if problem is None:
            continue
        reason = f"ssl_ciphers {problem} on {_where(config, members)}"
        result.fixes.append(Fix(tree.replace_args(directive, MODERN_CIPHERS), reason, CIPHERS))


def _http2(
    config: Config,
    tree: edit.Tree,
    parsed_version: tuple[int, ...],
    servers: Sequence[Server],
    result: Review,
) -> None:
    if not http2_directive_syntax(parsed_version):
        # Before 1.25.1 HTTP/2 is a property of the socket, set on any of its listen directives.
        for socket in config.sockets.values():
            if not socket.ssl or socket.http2_listen:
                continue
            default = socket.default
            listen = socket.listen_of(default)
            reason = f"HTTP/2 is off on {socket.key} (default server {_label(default)})"
            if listen.implicit:
                result.findings.append(
                    Note(HTTP2, f"{reason}: it has no listen directive to add http2 to")
                )
                continue
            result.fixes.append(
                Fix(tree.add_param(listen.directive, "http2", after="ssl"), reason, HTTP2)
            )
        return
    for server in servers:
        if http2_enabled(config, server, parsed_version):
            continue
        reason = f"HTTP/2 is off on {_where(config, [server])}"
        found = effective(server.chain, "http2")
        if found is not None:
            result.fixes.append(Fix(tree.replace_args(found, "on"), reason, HTTP2))
        else:
            new = _insert(tree, server.directive, ("listen", "server_name"), ["http2 on;"])
            result.fixes.append(Fix(new, reason, HTTP2))


def _websockets(
    config: Config,
    tree: edit.Tree,
    parsed_version: tuple[int, ...],
    wanted: Sequence[str],
    result: Review,
) -> None:
    assert config.http is not None
    maps = config.maps()
    closing = [v for v in (upgrade_map_variable(m) for m in maps) if v]
    keeping = [v for v in (upgrade_map_variable(m, keepalive=True) for m in maps) if v]
    equivalent = closing + keeping
    plain = _Map(closing[0] if closing else _free_variable(maps, MAP_VARIABLE), not closing)
    keepalive = _Map(
        keeping[0] if keeping else _free_variable(maps, KEEPALIVE_MAP_VARIABLE), not keeping
    )
    for location in websocket_locations(config, wanted):
        where = f"location {location.path} (server {_label(location.server)})"
        if not location.proxied:
            result.findings.append(
                Note(WEBSOCKET, f"{where} carries WebSockets but has no proxy_pass to fix")
            )
            continue
        block = location.directive
        version = effective(location.chain, "proxy_http_version")
        http11 = parsed_version >= PROXY_HTTP11_DEFAULT_SINCE
        if (version is None and not http11) or (version and version.args[:1] != ["1.1"]):
            reason = f"{where} proxies with HTTP/1.0: WebSockets need proxy_http_version 1.1"
            if version is not None and any(version is c for c in block.children or ()):
                result.fixes.append(Fix(tree.replace_args(version, "1.1"), reason, WEBSOCKET))
            else:
                new = _insert(tree, block, ("proxy_pass",), ["proxy_http_version 1.1;"])
                result.fixes.append(Fix(new, reason, WEBSOCKET))
        level, headers = effective_all(location.chain, "proxy_set_header")
        by_name = {h.args[0].lower(): h for h in headers if h.args}
        upgrade = by_name.get("upgrade")
        connection = by_name.get("connection")
        upgrade_ok = upgrade is not None and upgrade.args[1:] == ["$http_upgrade"]
        connection_ok = connection is not None and connection.args[1:2] in (
            [f"${name}"] for name in equivalent
        )
        if upgrade_ok and connection_ok:
            continue
        missing = [
            n for n, ok in (("Upgrade", upgrade_ok), ("Connection", connection_ok)) if not ok
        ]
        headers_phrase = "headers" if len(missing) > 1 else f"header {missing[0]}"
        reason = f"WebSocket {headers_phrase} missing in {where}"
        chosen = plain
        if not connection_ok:
            keeps = _keeps_alive(config, location, connection)
            if keeps:
                chosen = keepalive
                reason += (
                    f' ({keeps}: ${keepalive.variable} sends Connection "" to ordinary '
                    "requests, so upstream keepalive is kept)"
                )
            chosen.needed = True
        variable = chosen.variable
        wanted_lines = {
            "upgrade": "proxy_set_header Upgrade $http_upgrade;",
            "connection": f"proxy_set_header Connection ${variable};",
        }
        if level is block:
            lines: list[str] = []
            for key, ok, current in (
                ("upgrade", upgrade_ok, upgrade),
                ("connection", connection_ok, connection),
            ):
                if ok:
                    continue
                if current is not None:
                    value = "$http_upgrade" if key == "upgrade" else f"${variable}"
                    result.fixes.append(Fix(tree.replace_arg(current, 1, value), reason, WEBSOCKET))
                else:
                    lines.append(wanted_lines[key])
            if lines:
                new = _insert(
                    tree, block, ("proxy_set_header", "proxy_http_version", "proxy_pass"), lines
                )
                result.fixes.append(Fix(new, reason, WEBSOCKET))
            continue
        # The location has no proxy_set_header of its own: adding one stops it inheriting those
        # of the server (or http) level, so they are copied in with the new ones.
        copied = [tree.text(h) for h in headers if h.args and h.args[0].lower() not in wanted_lines]
        if copied:
            names = ", ".join(h.args[0] for h in headers if h.args[0].lower() not in wanted_lines)
            reason += (
                f" (inherited proxy_set_header {names} copied in: a location with headers "
                "of its own inherits none)"
            )
        lines = [*copied, wanted_lines["upgrade"], wanted_lines["connection"]]
        new = _insert(tree, block, ("proxy_http_version", "proxy_pass"), lines)
        result.fixes.append(Fix(new, reason, WEBSOCKET))
    unit = tree.unit(config.http.file)
    anchor = next(
        (
            c
            for c in config.http.children or ()
            if c.name in ("server", "include") and c.file == config.http.file
        ),
        None,
    )
    for chosen, otherwise, why in (
        (plain, "close", "to set the Connection header"),
        (keepalive, "''", 'that keeps upstream keepalive (Connection "" unless upgrading)'),
    ):
        if not (chosen.needed and chosen.new):
            continue
        reason = f"no map $http_upgrade at http level {why} (adds ${chosen.variable})"
        lines = [
            f"map $http_upgrade ${chosen.variable} {{",
            f"{unit}default upgrade;",
            f"{unit}'' {otherwise};",
            "}",
        ]
        new = tree.insert_before(anchor, lines) if anchor else tree.insert_first(config.http, lines)
        result.fixes.append(Fix(new, reason, WEBSOCKET))


@dataclass
class _Map:
    """The `map $http_upgrade` variable a kind of location gets: an existing one, or a new one."""

    variable: str
    new: bool
    needed: bool = False


def _keeps_alive(config: Config, location: Location, connection: Directive | None) -> str:
    """Why the location's upstream connections are kept alive ("" when they are not): it sends
    `Connection ""` itself, or proxies to an upstream block with `keepalive`."""
    if connection is not None and connection.args[1:2] == [""]:
        return 'it sends Connection "" to keep upstream connections alive'
    target = location.directive.last("proxy_pass")
    if target is None or not target.args or config.http is None:
        return ""
    name = target.args[0].partition("://")[2].split("/", 1)[0]
    for upstream in config.http.own("upstream"):
        if upstream.args[:1] == [name] and upstream.own("keepalive"):
            return f"upstream {name} keeps connections alive"
    return ""


def _free_variable(maps: Sequence[Directive], wanted: str) -> str:
    taken = {m.args[1].removeprefix("$") for m in maps if len(m.args) >= 2}
    return wanted if wanted not in taken else f"remediate_{wanted}"


def sockets(config: Config, policy: Policy, version: str) -> tuple[Socket, ...]:
    """What verify checks on each TLS socket: who answers first (its default server), whether
    h2 is on, and the WebSocket paths that server proxies."""
    parsed_version = parse_version(version)
    ws = websocket_locations(config, policy.websocket.locations)
    result: list[Socket] = []
    for socket in config.sockets.values():
        if not socket.ssl:
            continue
        default = _answering(socket)
        paths = [loc.uri for loc in ws if loc.server is default and loc.uri and loc.proxied]
        result.append(
            Socket(
                address=str(socket.address),
                port=int(socket.port),
                server_name=default.name or "",
                http2=http2_enabled(config, default, parsed_version),
                ws_paths=tuple(paths),
            )
        )
    # A stream {} socket terminates TLS for TCP: nothing to expect of HTTP/2 or WebSockets there
    # (verification only expects h2 where the socket says so).
    for socket in config.stream_sockets.values():
        if socket.ssl:
            result.append(
                Socket(
                    address=str(socket.address),
                    port=int(socket.port),
                    server_name=socket.default.name or "",
                    stream=True,
                )
            )
    return tuple(result)


def _answering(socket: Listening) -> Server:
    """The server to probe a socket through: its default server, unless that one refuses every
    handshake (`ssl_reject_handshake on`, a catch-all that only turns unknown names away); then
    the first named server that does not."""
    default = socket.default

    def rejects(server: Server) -> bool:
        found = effective(server.chain, "ssl_reject_handshake")
        return found is not None and found.args[:1] == ["on"]

    if not rejects(default):
        return default
    return next((s for s in socket.servers if s.name and not rejects(s)), default)


def evaluate(endpoint: Endpoint, policy: Policy, facts: Mapping[str, Any]) -> Verdict:
    """One change per file to edit on the host `endpoint` names (`host_verdict`); the verdict
    discovery already reached under the same policy when it did (facts[REVIEWED])."""
    files: Mapping[str, str] | None = facts.get(TREES, {}).get(endpoint.resource)
    if files is None:
        return Verdict(findings=[Note(UNREAD, "the config tree of this host was not collected")])
    reviewed: tuple[Policy, Verdict] | None = facts.get(REVIEWED, {}).get(endpoint.resource)
    if reviewed is not None and reviewed[0] == policy:
        return reviewed[1]
    context = endpoint.context
    config = facts.get(PARSED, {}).get(endpoint.resource)
    if config is None:
        config = parse_tree(files, context["conf_path"], context.get("prefix"))
    return host_verdict(
        files,
        str(context["version"]),
        config,
        policy,
        host=endpoint.resource,
        links=facts.get(LINKS, {}).get(endpoint.resource, {}),
        hard_links=facts.get(HARD_LINKS, {}).get(endpoint.resource, {}),
    )


def host_verdict(
    files: Mapping[str, str],
    version: str,
    config: Config,
    policy: Policy,
    *,
    host: str,
    links: Mapping[str, str],
    hard_links: Mapping[str, int],
) -> Verdict:
    """One change per file to edit on `host` (its tree `files`, parsed as `config`): the file's
    whole new text, its unified diff and, in words, every reason it changes."""
    found = review(config, policy, version)
    new_files = edit.apply(files, [fix.edit for fix in found.fixes])
    if not new_files:
        return Verdict(findings=found.findings)
    # What the sockets look like once the edits are in, without parsing the tree again: the edits
    # never add or remove a socket, a server or a location; they only turn HTTP/2 on where the
    # policy asks for it (a socket the edits cannot give h2, an implicit listen, is a finding).
    after_sockets = tuple(
        s.model_copy(update={"http2": s.http2 or (policy.http2 and not s.stream)})
        for s in sockets(config, policy, version)
    )
    # Each file's reasons and rules, in the order the fixes were found, each once.
    reasons_of: dict[str, dict[str, None]] = {}
    rules_of: dict[str, dict[str, None]] = {}
    for fix in found.fixes:
        reasons_of.setdefault(fix.edit.path, {})[fix.reason] = None
        rules_of.setdefault(fix.edit.path, {})[fix.rule] = None
    changes: list[Desired] = []
    for path, text in new_files.items():
        reasons = list(reasons_of[path])
        real = links.get(path, path)
        label = path if real == path else f"{path} (symlink to {real})"
        if path in hard_links:
            reasons.append(
                f"{real} has {hard_links[path]} hard links: written in place, so every name "
                "sees the new text"
            )
        changes.append(
            Desired(
                attribute="content",
                before=files[path],
                after=text,
                reason="; ".join(reasons),
                rules=tuple(rules_of[path]),
                diff={label: edit.unified_diff(path, files[path], text)},
                resource=f"{host}:{path}",
                kind=Kind.FILE,
                target=HostFile(
                    host=host,
                    path=path,
                    real_path=real if real != path else "",
                    sockets=after_sockets,
                ),
            )
        )
    return Verdict(changes, found.findings)
