"""Who still connects with old TLS or receives 426s, read from access logs.

Two formats, told apart line by line:

- ALB access logs, the documented space-separated format: `type time elb client:port target:port
  request_processing_time target_processing_time response_processing_time elb_status_code
  target_status_code received_bytes sent_bytes "request" "user_agent" ssl_cipher ssl_protocol ...`
  (later fields are ignored, so older and newer layouts both parse). The listener port comes from
  the request URL, the load balancer from the `elb` field (`app/NAME/ID`).
- Nginx access logs: `combined` plus `$ssl_protocol` by default; another `log_format` string, or a
  regular expression with named groups `ssl_protocol`, `status` and `http_user_agent`, can be given.

Files are streamed line by line (gzip too, recognised by its magic bytes), so a big log costs time,
not memory. A line neither format matches is counted as skipped, never fatal. A gzip stream that
ends early (a log cut off in transfer) keeps what was read and is flagged `truncated`; corrupt gzip
data is an error naming the file.
"""

from __future__ import annotations

import gzip
import io
import json
import re
import zlib
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from remediate.errors import RemediateError
from remediate.model import REPORT_FORMAT_VERSION, Change, LosingAccess, Plan
from remediate.policy import tls_key
from remediate.providers.aws.model import ListenerTarget

NGINX_DEFAULT_FORMAT = (
    '$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent '
    '"$http_referer" "$http_user_agent" $ssl_protocol'
)
ALB_TYPES = ("http ", "https ", "h2 ", "grpcs ", "ws ", "wss ")
_QUOTED = r'"((?:[^"\\]|\\.)*)"'
ALB_LINE = re.compile(
    r"(?:https?|h2|grpcs|wss?) \S+ (\S+) \S+ \S+ \S+ \S+ \S+ (\S+) \S+ \S+ \S+ "
    + _QUOTED
    + " "
    + _QUOTED
    + r" \S+ (\S+)(?: |$)"
)
_REQUEST_PORT = re.compile(r"\S+ [a-zA-Z0-9+.-]+://(?:\[[^\]]*\]|[^/:\s]*):(\d+)")
_VARIABLE = re.compile(r"\$(?:\{(\w+)\}|(\w+))")
NO_TLS = "none"


def protocol_version(value: str) -> str:
    """`TLSv1`, `TLSv1.2`... as "1.0", "1.2"; a missing protocol (plain HTTP) as "none"."""
    if value in ("", "-"):
        return NO_TLS
    version = value.removeprefix("TLSv")
    return "1.0" if version == "1" else version


def nginx_pattern(log_format: str) -> re.Pattern[str]:
    """A regular expression for lines written by Nginx with `log_format`.

    Each variable matches up to the character that follows it in the format (the end of line for
    the last one): Nginx escapes quotes inside variables, so this is exact for the usual formats.
    """
    parts: list[str] = []
    seen: set[str] = set()
    position = 0
    matches = list(_VARIABLE.finditer(log_format))
    if not matches:
        raise RemediateError(f"Nginx log format {log_format!r} has no $variable")
    for match in matches:
        parts.append(re.escape(log_format[position : match.start()]))
        name = match.group(1) or match.group(2)
        following = log_format[match.end() : match.end() + 1]
        body = f"[^{re.escape(following)}]*" if following else ".*"
        if name in seen or not name.isidentifier():
            # A repeat, or a regex capture such as $1: matched, but not a field read here.
            parts.append(f"(?:{body})")
        else:
            seen.add(name)
            parts.append(f"(?P<{name}>{body})")
        position = match.end()
    parts.append(re.escape(log_format[position:]))
    if not seen & {"ssl_protocol", "status"}:
        raise RemediateError(
            "the Nginx log format has neither $ssl_protocol nor $status: nothing to report"
        )
    return re.compile("".join(parts) + r"\s*$")


def compile_regex(regex: str) -> re.Pattern[str]:
    try:
        pattern = re.compile(regex)
    except re.error as exc:
        raise RemediateError(f"--nginx-regex is not a valid regular expression: {exc}") from None
    if not set(pattern.groupindex) & {"ssl_protocol", "status"}:
        raise RemediateError("--nginx-regex needs a named group ssl_protocol or status")
    return pattern


@dataclass
class Usage:
    """Requests counted by (TLS version, user agent) and, for 426s, by user agent."""

    requests: int = 0
    by_protocol: Counter[tuple[str, str]] = field(default_factory=Counter)
    upgrade_required: Counter[str] = field(default_factory=Counter)

    def below(self, minimum: str) -> Counter[tuple[str, str]]:
        """(version, user agent) counts of TLS versions below `minimum`."""
        floor = tls_key(minimum)
        return Counter(
            {
                key: count
                for key, count in self.by_protocol.items()
                if key[0] != NO_TLS and _key(key[0]) < floor
            }
        )


def _key(version: str) -> tuple[int, ...]:
    """Sort key of a logged protocol: SSLv2/SSLv3 below every TLS version, anything unknown
    above (it is not reported as old)."""
    if version.startswith("SSL"):
        return (0,)
    try:
        return tls_key(version)
    except ValueError:
        return (99,)


@dataclass
class FileStats:
    path: str
    requests: int = 0
    skipped: int = 0
    formats: set[str] = field(default_factory=set)
    truncated: bool = False


@dataclass
class Analysis:
    """Everything read from the logs: overall, per file, and per ALB listener (`app/N/ID:443`)."""

    overall: Usage = field(default_factory=Usage)
    listeners: dict[str, Usage] = field(default_factory=dict)
    files: list[FileStats] = field(default_factory=list)

    @property
    def skipped(self) -> int:
        return sum(stats.skipped for stats in self.files)

    @property
    def truncated(self) -> list[FileStats]:
        """The files whose gzip stream ended early: only their beginning was read."""
        return [stats for stats in self.files if stats.truncated]

    def listener(self, load_balancer: str, port: int | None) -> Usage | None:
        return self.listeners.get(f"{load_balancer}:{port}")


def _open(path: Path) -> IO[str]:
    """The file as text lines, gunzipped when it starts with the gzip magic bytes."""
    try:
        raw = path.open("rb")
    except FileNotFoundError:
        raise RemediateError(f"{path}: log file not found") from None
    except OSError as exc:
        raise RemediateError(f"{path}: cannot read: {exc.strerror}") from None
    if raw.peek(2)[:2] == b"\x1f\x8b":
        raw.close()
        return gzip.open(path, "rt", encoding="utf-8", errors="replace")
    return io.TextIOWrapper(raw, encoding="utf-8", errors="replace")


def _lines(path: Path, stats: FileStats) -> Iterator[str]:
    with _open(path) as handle:
        try:
            yield from handle
        except EOFError:
            # The gzip stream ends before its end marker: keep what was read, flag the file.
            stats.truncated = True
        except (gzip.BadGzipFile, zlib.error) as exc:
            raise RemediateError(
                f"{path}: corrupt gzip data after {stats.requests + stats.skipped} line(s): {exc}"
            ) from None
        except OSError as exc:
            raise RemediateError(f"{path}: cannot read: {exc.strerror or exc}") from None


def truncation_warnings(analysis: Analysis) -> list[str]:
    """One line per truncated file, saying how much of it was read."""
    return [
        f"warning: {stats.path}: the gzip stream ends early (a truncated file): only its first "
        f"{stats.requests} request(s) were read"
        for stats in analysis.truncated
    ]


def analyze(paths: Iterable[Path], nginx: re.Pattern[str] | None = None) -> Analysis:
    """Read every log and count who uses which TLS version and who receives 426s."""
    nginx = nginx or nginx_pattern(NGINX_DEFAULT_FORMAT)
    has_protocol = "ssl_protocol" in nginx.groupindex
    has_status = "status" in nginx.groupindex
    agent_group = next(
        (name for name in ("http_user_agent", "user_agent") if name in nginx.groupindex), None
    )
    analysis = Analysis()
    overall = analysis.overall
    for path in paths:
        stats = FileStats(str(path))
        analysis.files.append(stats)
        for raw_line in _lines(path, stats):
            line = raw_line.rstrip("\r\n")
            if not line:
                continue
            listener: Usage | None = None
            if line.startswith(ALB_TYPES) and (alb := ALB_LINE.match(line)):
                elb, status, request, agent, protocol = alb.groups()
                port = _REQUEST_PORT.match(request)
                key = f"{elb}:{port.group(1) if port else ''}"
                listener = analysis.listeners.get(key)
                if listener is None:
                    listener = analysis.listeners[key] = Usage()
                stats.formats.add("alb")
            elif nginx_match := nginx.match(line):
                protocol = nginx_match.group("ssl_protocol") if has_protocol else "-"
                status = nginx_match.group("status") if has_status else "-"
                agent = nginx_match.group(agent_group) if agent_group else "-"
                stats.formats.add("nginx")
            else:
                stats.skipped += 1
                continue
            stats.requests += 1
            version = protocol_version(protocol)
            for usage in (overall, listener) if listener else (overall,):
                usage.requests += 1
                usage.by_protocol[(version, agent)] += 1
                if status == "426":
                    usage.upgrade_required[agent] += 1
    return analysis


def _share(count: int, total: int) -> float:
    return round(count / total, 4) if total else 0.0


def old_clients(usage: Usage, minimum: str) -> list[dict[str, Any]]:
    """Rows for the clients below `minimum`, most requests first."""
    return [
        {
            "user_agent": agent,
            "protocol": version,
            "count": count,
            "share": _share(count, usage.requests),
        }
        for (version, agent), count in sorted(
            usage.below(minimum).items(), key=lambda item: (-item[1], item[0])
        )
    ]


def summary(analysis: Analysis, minimum: str = "1.2") -> dict[str, Any]:
    """The report as data: shares are fractions of all requests read."""
    overall = analysis.overall
    protocols: Counter[str] = Counter()
    for (version, _), count in overall.by_protocol.items():
        protocols[version] += count
    return {
        "format_version": REPORT_FORMAT_VERSION,
        "minimum": minimum,
        "requests": overall.requests,
        "skipped": analysis.skipped,
        "truncated": bool(analysis.truncated),
        "files": [
            {
                "path": stats.path,
                "formats": sorted(stats.formats),
                "requests": stats.requests,
                "skipped": stats.skipped,
                "truncated": stats.truncated,
            }
            for stats in analysis.files
        ],
        "tls_protocols": dict(sorted(protocols.items(), key=lambda item: _key(item[0]))),
        "old_tls": old_clients(overall, minimum),
        "upgrade_required": [
            {"user_agent": agent, "count": count, "share": _share(count, overall.requests)}
            for agent, count in sorted(
                overall.upgrade_required.items(), key=lambda item: (-item[1], item[0])
            )
        ],
    }


def summary_json(analysis: Analysis, minimum: str = "1.2") -> str:
    return json.dumps(summary(analysis, minimum), indent=2) + "\n"


def _percent(share: float) -> str:
    return f"{share * 100:.1f}%"


def summary_text(analysis: Analysis, minimum: str = "1.2") -> str:
    data = summary(analysis, minimum)
    truncated = len(analysis.truncated)
    cut = f"; {truncated} truncated file(s) read up to where they end" if truncated else ""
    lines = [
        f"{data['requests']} request(s) read from {len(data['files'])} file(s); "
        f"{data['skipped']} unparseable line(s) skipped{cut}."
    ]
    old = data["old_tls"]
    old_total = sum(row["count"] for row in old)
    lines.append("")
    if old:
        lines.append(
            f"Clients below TLS {minimum}: {old_total} request(s), "
            f"{_percent(_share(old_total, data['requests']))} of all:"
        )
        lines.append(f"  {'count':>8}  {'share':>6}  {'TLS':<4}  user agent")
        lines.extend(
            f"  {row['count']:>8}  {_percent(row['share']):>6}  {row['protocol']:<4}  "
            f"{row['user_agent']}"
            for row in old
        )
    else:
        lines.append(f"No client below TLS {minimum}.")
    upgrade = data["upgrade_required"]
    lines.append("")
    if upgrade:
        total = sum(row["count"] for row in upgrade)
        lines.append(f"Clients receiving 426 Upgrade Required: {total} request(s):")
        lines.append(f"  {'count':>8}  {'share':>6}  user agent")
        lines.extend(
            f"  {row['count']:>8}  {_percent(row['share']):>6}  {row['user_agent']}"
            for row in upgrade
        )
    else:
        lines.append("No client received 426 Upgrade Required.")
    return "\n".join(lines) + "\n"


# -- attaching the clients to a plan ---------------------------------------------------------------


def is_tls_change(change: Change) -> bool:
    """A change to what TLS versions an endpoint accepts: an attribute about SSL/TLS (security
    policy, minTlsVersion), or a file whose diff edits an `ssl_protocols` line (Nginx)."""
    attribute = change.attribute.lower()
    if "ssl" in attribute or "tls" in attribute:
        return True
    return any(
        line.startswith(("-", "+")) and "ssl_protocols" in line
        for diff in (change.diff or {}).values()
        for line in diff.splitlines()
    )


def _alb_listener(change: Change) -> tuple[str, int] | None:
    """`app/NAME/ID` and the port of an AWS listener change, as ALB logs name them."""
    target = change.target
    if not isinstance(target, ListenerTarget) or ":loadbalancer/" not in target.load_balancer_arn:
        return None
    return target.load_balancer_arn.partition(":loadbalancer/")[2], target.port


def attach(plan: Plan, analysis: Analysis, minimum: str) -> Plan:
    """The plan with, on each TLS change, `clients_losing_access`: the clients below
    `minimum` seen on that ALB listener's logs, or else across all the logs given."""
    changes: list[Change] = []
    for change in plan.changes:
        if not is_tls_change(change):
            changes.append(change)
            continue
        usage, source = analysis.overall, "all logs"
        listener = _alb_listener(change)
        if listener is not None:
            found = analysis.listener(*listener)
            if found is not None:
                usage, source = found, f"ALB logs of {listener[0]} port {listener[1]}"
        rows = old_clients(usage, minimum)
        losing = LosingAccess(
            source=source,
            requests=sum(row["count"] for row in rows),
            of_requests=usage.requests,
            clients=rows,
        )
        changes.append(change.model_copy(update={"clients_losing_access": losing}))
    return plan.model_copy(update={"changes": changes})


def losing_access_lines(change: Change, limit: int = 5) -> Sequence[str]:
    """The plan text's lines about who would lose access through `change` (none when unknown)."""
    losing = change.clients_losing_access
    if losing is None:
        return ()
    if not losing.clients:
        return [f"clients losing access: none seen in {losing.source}"]
    lines = [
        f"clients losing access: {losing.requests} of {losing.of_requests} request(s) "
        f"in {losing.source}:"
    ]
    for row in losing.clients[:limit]:
        lines.append(f"  {row['count']} x TLS {row['protocol']} {row['user_agent']}")
    if len(losing.clients) > limit:
        lines.append(f"  ... and {len(losing.clients) - limit} more client(s)")
    return lines
