"""A host's Nginx configuration as a model: read from the collected tree (a dict of absolute
path -> text, no filesystem access) into crossplane's statements (by `lexer`, or by crossplane
itself for what `lexer` leaves to it), includes resolved the way nginx resolves them.

Every directive keeps the file it was written in, its line and its ordinal (its position among
the statements of that file), so `edit` can change exactly that text later.
"""

from __future__ import annotations

import atexit
import fnmatch
import functools
import posixpath
import shutil
import tempfile
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from remediate.errors import RemediateError
from remediate.providers.nginx.lexer import scan

# nginx's built-in `ssl_protocols` when none is configured: TLSv1.3 joined the default in 1.23.4.
DEFAULT_PROTOCOLS_OLD = ("TLSv1", "TLSv1.1", "TLSv1.2")
DEFAULT_PROTOCOLS = (*DEFAULT_PROTOCOLS_OLD, "TLSv1.3")
TLS13_DEFAULT_SINCE = (1, 23, 4)
# From 1.25.1 HTTP/2 is the `http2 on;` directive; before, only the `listen ... http2` parameter.
HTTP2_DIRECTIVE_SINCE = (1, 25, 1)
MAX_INCLUDE_DEPTH = 32


class NginxConfigError(RemediateError):
    """A config tree that cannot be read: a syntax error, a missing include."""


def parse_version(version: str) -> tuple[int, ...]:
    """`"1.22.1"` (or `"nginx/1.22.1"`) as `(1, 22, 1)`."""
    text = version.strip().rpartition("/")[2].split()[0] if version.strip() else ""
    try:
        return tuple(int(part) for part in text.split("."))
    except ValueError:
        raise NginxConfigError(f"cannot read the nginx version {version!r}") from None


def default_protocols(version: tuple[int, ...]) -> tuple[str, ...]:
    return DEFAULT_PROTOCOLS if version >= TLS13_DEFAULT_SINCE else DEFAULT_PROTOCOLS_OLD


@dataclass(eq=False, slots=True)
class Directive:
    """One statement; `children` has included files spliced in after their `include` statement."""

    name: str
    args: list[str]
    file: str
    line: int
    ordinal: int
    children: list[Directive] | None = None
    _by_name: dict[str, list[Directive]] | None = field(
        default=None, init=False, repr=False, compare=False
    )

    def own(self, name: str) -> list[Directive]:
        """Direct children called `name` (included ones count: nginx splices them in).

        Indexed by name on first use: an http block with thousands of servers is asked for its
        settings once per server, and a scan each time made planning quadratic."""
        if self._by_name is None:
            index: dict[str, list[Directive]] = {}
            for child in self.children or ():
                index.setdefault(child.name, []).append(child)
            self._by_name = index
        return self._by_name.get(name, [])

    def last(self, name: str) -> Directive | None:
        found = self.own(name)
        return found[-1] if found else None

    def where(self) -> str:
        return f"{self.file}:{self.line}"


class Listen(NamedTuple):
    """One `listen` of a server. A named tuple: a large tree has tens of thousands, and a frozen
    dataclass's constructor (a guarded set per field) was a tenth of its parse."""

    directive: Directive
    socket: str
    address: str
    port: int
    ssl: bool
    http2: bool
    default: bool
    implicit: bool = False
    """A server without `listen` listens on *:80: there is no directive to edit."""


@dataclass(eq=False)
class Location:
    directive: Directive
    server: Server
    chain: list[Directive]
    """Enclosing blocks from `http` down to this location, for inherited settings."""

    @property
    def path(self) -> str:
        return " ".join(self.directive.args)

    @property
    def uri(self) -> str | None:
        """The path a client can request: prefix and exact locations only, not regexes, and not
        named locations (`@app` is reached only through an internal redirect)."""
        args = self.directive.args
        path = None
        if len(args) == 1:
            path = args[0]
        elif len(args) == 2 and args[0] in ("=", "^~"):
            path = args[1]
        return path if path is not None and path.startswith("/") else None

    @property
    def named(self) -> bool:
        return self.directive.args[:1] != [] and self.directive.args[0].startswith("@")

    @property
    def proxied(self) -> bool:
        return bool(self.directive.own("proxy_pass"))


@dataclass(eq=False)
class Server:
    directive: Directive
    http: Directive
    """The top-level block the server is in: `http`, or `stream` for a TCP/TLS server."""
    listens: list[Listen] = field(default_factory=list)
    locations: list[Location] = field(default_factory=list)

    @property
    def name(self) -> str:
        names = self.directive.own("server_name")
        return names[0].args[0] if names and names[0].args else ""

    @property
    def chain(self) -> list[Directive]:
        return [self.http, self.directive]

    @property
    def stream(self) -> bool:
        return self.http.name == "stream"

    @property
    def ssl_on(self) -> bool:
        """The pre-1.25.1 `ssl on;` switch, which makes every listen of the server TLS."""
        found = effective(self.chain, "ssl")
        return found is not None and found.args[:1] == ["on"]


@dataclass(eq=False)
class Socket:
    """One listening `address:port` and the servers that share it."""

    key: str
    address: str
    port: int
    entries: list[tuple[Server, Listen]]
    ssl: bool

    @property
    def servers(self) -> list[Server]:
        return list({id(server): server for server, _ in self.entries}.values())

    @functools.cached_property
    def default(self) -> Server:
        """The server that answers before (or without) SNI: `default_server`, else the first.
        Computed once the tree is read (a socket shared by thousands of servers is asked often)."""
        for server, listen in self.entries:
            if listen.default:
                return server
        return self.entries[0][0]

    @property
    def http2_listen(self) -> bool:
        return any(listen.http2 for _, listen in self.entries)

    def listen_of(self, server: Server) -> Listen:
        """The server's `listen` for this socket (the one with `ssl` when it has several)."""
        own = [listen for owner, listen in self.entries if owner is server]
        return next((listen for listen in own if listen.ssl), own[0])


def effective(chain: Sequence[Directive], name: str) -> Directive | None:
    """The directive that takes effect at the end of `chain`: the innermost block that sets it."""
    for block in reversed(chain):
        found = block.last(name)
        if found is not None:
            return found
    return None


def effective_all(
    chain: Sequence[Directive], name: str
) -> tuple[Directive | None, list[Directive]]:
    """Array-like directives (`proxy_set_header`): all of the innermost level that has any,
    since a level with its own inherits none from above. Returns that level and its directives."""
    for block in reversed(chain):
        found = block.own(name)
        if found:
            return block, found
    return None, []


@dataclass(eq=False)
class Config:
    files: Mapping[str, str]
    conf_path: str
    root: Directive
    http: Directive | None
    servers: list[Server]
    sockets: dict[str, Socket]
    stream: Directive | None = None
    stream_servers: list[Server] = field(default_factory=list)
    stream_sockets: dict[str, Socket] = field(default_factory=dict)
    """`stream {}` servers and sockets: TLS terminated for TCP, no HTTP/2, no WebSockets."""

    def maps(self) -> list[Directive]:
        return self.http.own("map") if self.http else []

    def tls_servers(self) -> list[Server]:
        return [s for s in self.servers if any(self.sockets[x.socket].ssl for x in s.listens)]

    def stream_tls_servers(self) -> list[Server]:
        return [
            s
            for s in self.stream_servers
            if any(self.stream_sockets[x.socket].ssl for x in s.listens)
        ]

    def sockets_of(self, server: Server) -> list[Socket]:
        table = self.stream_sockets if server.stream else self.sockets
        seen: dict[str, Socket] = {}
        for listen in server.listens:
            seen.setdefault(listen.socket, table[listen.socket])
        return list(seen.values())


def parse_listen(directive: Directive) -> Listen | None:
    """A `listen` directive's normalised socket and parameters (None for a QUIC/UDP socket)."""
    if not directive.args:
        return None
    params = directive.args[1:]
    if "quic" in params:
        return None
    address, port = split_address(directive.args[0])
    return Listen(
        directive=directive,
        socket=f"{address}:{port}",
        address=address,
        port=port,
        ssl="ssl" in params,
        http2="http2" in params,
        default="default_server" in params or "default" in params,
    )


def split_address(text: str) -> tuple[str, int]:
    """`listen` addresses as nginx reads them: `443`, `*:443` and `0.0.0.0:443` are one socket
    (`*`, 443); a bare address means port 80; IPv6 stays in brackets."""
    if text.startswith("unix:"):
        return text, 0
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        address, port = f"[{host}]", rest[1:] if rest.startswith(":") else "80"
    elif ":" in text:
        address, port = text.rsplit(":", 1)
    elif text.isdigit():
        address, port = "*", text
    else:
        address, port = text, "80"
    if address == "0.0.0.0":
        address = "*"
    try:
        return address, int(port)
    except ValueError:
        raise NginxConfigError(f"listen {text}: cannot read the port") from None


def conf_dir(conf_path: str, prefix: str | None) -> str:
    """The directory relative includes resolve against: nginx uses the main file's directory
    (the file itself being relative to the prefix when it is not absolute)."""
    full = conf_path if posixpath.isabs(conf_path) else posixpath.join(prefix or "/", conf_path)
    return posixpath.dirname(posixpath.normpath(full))


def _glob_matches(pattern: str, path: str) -> bool:
    """glob(3) semantics, as nginx uses for `include`: `*` stays within one path segment and
    does not match a leading dot."""
    want = pattern.split("/")
    have = path.split("/")
    if len(want) != len(have):
        return False
    for part_pattern, part in zip(want, have, strict=True):
        if part.startswith(".") and not part_pattern.startswith("."):
            return False
        if not fnmatch.fnmatchcase(part, part_pattern):
            return False
    return True


def resolve_include(pattern: str, base: str, files: Mapping[str, str]) -> list[str]:
    """The collected files an `include` names, sorted as glob(3) returns them."""
    full = posixpath.normpath(
        pattern if posixpath.isabs(pattern) else posixpath.join(base, pattern)
    )
    if any(char in full for char in "*?["):
        return sorted(path for path in files if _glob_matches(full, posixpath.normpath(path)))
    return [path for path in files if posixpath.normpath(path) == full]


@functools.cache
def _mirror_dir() -> Path:
    """A private directory for the texts crossplane parses, removed when the process exits."""
    directory = Path(tempfile.mkdtemp(prefix="remediate-nginx-"))
    atexit.register(shutil.rmtree, directory, ignore_errors=True)
    return directory


def _parse_file(path: str, text: str) -> list[dict[str, Any]]:
    """crossplane's statements for one file (no include following: includes are resolved
    against the collected dict, not the local disk). Read by `lexer.scan` (cached by text: the
    plan's edits read the same files again); where that leaves the file to crossplane, by
    crossplane itself. Callers only read the result."""
    parsed = scan(text).parsed
    if parsed is not None:
        return parsed
    return _crossplane_parse(path, text)


@functools.lru_cache(maxsize=256)
def _crossplane_parse(path: str, text: str) -> list[dict[str, Any]]:
    """crossplane.parse of one text: the files `lexer` leaves to it, and every syntax error."""
    try:
        import crossplane
    except ImportError:
        raise NginxConfigError(
            "reading Nginx configs needs crossplane: pip install 'remediate[nginx]'"
        ) from None
    # crossplane reads only from a path: each thread rewrites its own file in one directory kept
    # for the process (a directory made and removed per file cost a third of a big tree's parse).
    mirror = _mirror_dir() / f"{threading.get_ident()}.conf"
    mirror.write_text(text, encoding="utf-8")
    payload = crossplane.parse(str(mirror), single=True, check_ctx=False, comments=False)
    errors = payload.get("errors") or []
    if errors:
        first = errors[0]
        message = str(first.get("error", "syntax error"))
        message = message.split(f" in {mirror}", 1)[0].replace(str(mirror), path)
        line = first.get("line")
        where = f"{path}:{line}" if line else path
        raise NginxConfigError(f"{where}: cannot parse nginx config: {message}")
    parsed: list[dict[str, Any]] = payload["config"][0]["parsed"]
    return parsed


class _Reader:
    def __init__(self, files: Mapping[str, str], base: str) -> None:
        self.files = files
        self.base = base
        self.cache: dict[str, list[dict[str, Any]]] = {}

    def read(self, path: str, depth: int = 0) -> list[Directive]:
        if depth > MAX_INCLUDE_DEPTH:
            raise NginxConfigError(f"{path}: includes nest too deeply (an include loop?)")
        if path not in self.cache:
            self.cache[path] = _parse_file(path, self.files[path])
        counter = iter(range(1 << 30))
        return self._build(path, self.cache[path], counter, depth)

    def _build(
        self, path: str, statements: list[dict[str, Any]], counter: Iterator[int], depth: int
    ) -> list[Directive]:
        result: list[Directive] = []
        for stmt in statements:
            directive = Directive(
                name=stmt["directive"],
                args=stmt["args"],
                file=path,
                line=stmt["line"],
                ordinal=next(counter),
            )
            result.append(directive)
            if "block" in stmt:
                directive.children = self._build(path, stmt["block"], counter, depth)
            if directive.name == "include" and directive.args:
                targets = resolve_include(directive.args[0], self.base, self.files)
                if not targets and not any(c in directive.args[0] for c in "*?["):
                    raise NginxConfigError(
                        f"{directive.where()}: include {directive.args[0]}: "
                        "file not found in the collected tree"
                    )
                for target in targets:
                    result.extend(self.read(target, depth + 1))
        return result


def parse_tree(files: Mapping[str, str], conf_path: str, prefix: str | None = None) -> Config:
    """The model of a host's configuration, from the main file at `conf_path`."""
    if not posixpath.isabs(conf_path):
        conf_path = posixpath.normpath(posixpath.join(prefix or "/", conf_path))
    if conf_path not in files:
        raise NginxConfigError(f"{conf_path}: the main config file is not in the collected tree")
    reader = _Reader(files, conf_dir(conf_path, prefix))
    root = Directive("", [], conf_path, 0, -1, reader.read(conf_path))
    http = root.last("http")
    stream = root.last("stream")
    servers, sockets = _servers(http)
    stream_servers, stream_sockets = _servers(stream)
    return Config(
        files, conf_path, root, http, servers, sockets, stream, stream_servers, stream_sockets
    )


def _servers(top: Directive | None) -> tuple[list[Server], dict[str, Socket]]:
    """The servers of an `http` or `stream` block and the sockets they listen on."""
    servers: list[Server] = []
    sockets: dict[str, Socket] = {}
    if top is None:
        return servers, sockets
    for block in top.own("server"):
        server = Server(block, top)
        listens = [parse_listen(d) for d in block.own("listen")]
        server.listens = [x for x in listens if x is not None]
        if not block.own("listen") and top.name == "http":
            directive = Directive("listen", ["80"], block.file, block.line, block.ordinal)
            implicit = parse_listen(directive)
            assert implicit is not None
            server.listens = [implicit._replace(implicit=True)]
        if top.name == "http":
            _collect_locations(server, block, [top, block])
        servers.append(server)
        for listen in server.listens:
            socket = sockets.setdefault(
                listen.socket, Socket(listen.socket, listen.address, listen.port, [], False)
            )
            socket.entries.append((server, listen))
            socket.ssl = socket.ssl or listen.ssl or server.ssl_on
    return servers, sockets


def _collect_locations(server: Server, block: Directive, chain: list[Directive]) -> None:
    for child in block.own("location"):
        server.locations.append(Location(child, server, [*chain, child]))
        _collect_locations(server, child, [*chain, child])
