"""A local HTTP proxy in front of moto (or the local Compute API) that behaves like a cloud API
endpoint under load, or on a bad day.

With `Limits`, every request waits `latency` seconds (the round trip to a real endpoint), then
takes a token from a bucket. A bucket is kept per (account, service, region), as AWS throttles per
account per region: the client's SigV4 credential scope says the service and region, and its
access key the account. The proxy learns which account a key signs for from the STS AssumeRole
answers that pass through it (the key it returns signs for the account of the role's ARN); any
other key is `default_account`'s, the account of the caller's own credentials. An empty bucket
answers HTTP 400 with the `Throttling` error document ELBv2 sends; otherwise the request goes on
upstream. Every request is counted by action and by account, throttled or not, so the count is
what the accounts' limits actually see.

An `intercept` hook (the fault-injection tests use one) sees each request with a function that
forwards it, and answers with a `Response` of its own, the upstream's, `RESET` (the connection is
reset without an answer) or `HANG` (no answer until the proxy stops).
"""

from __future__ import annotations

import http.client
import re
import socket
import struct
import sys
import threading
import time
import urllib.parse
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar, Literal

SCOPE = re.compile(r"Credential=([^/]+)/\d{8}/([^/]+)/([^/]+)/aws4_request")
ACCESS_KEY = re.compile(rb"<AccessKeyId>([^<]+)</AccessKeyId>")
DEFAULT_ACCOUNT = "123456789012"
"""moto's default account: where the sandbox's own credentials sign."""
THROTTLED = (
    b'<ErrorResponse xmlns="http://elasticloadbalancing.amazonaws.com/doc/2015-12-01/">'
    b"<Error><Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded</Message></Error>"
    b"<RequestId>00000000-0000-0000-0000-000000000000</RequestId></ErrorResponse>"
)


@dataclass
class Limits:
    """Defaults: 40 ms a call; per region and service, 40 calls burst then 20 a second."""

    latency: float = 0.040
    burst: int = 40
    rate: float = 20.0


@dataclass(frozen=True)
class Request:
    """One request as the proxy received it."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    service: str
    region: str
    action: str
    account: str = DEFAULT_ACCOUNT


@dataclass(frozen=True)
class Response:
    status: int
    headers: list[tuple[str, str]]
    body: bytes


RESET: Literal["reset"] = "reset"
HANG: Literal["hang"] = "hang"
Answer = Response | Literal["reset", "hang"]
# intercept(request, forward) -> what the client gets; `forward()` sends the request upstream.
Intercept = Callable[[Request, Callable[[], Response]], Answer]


class TokenBucket:
    def __init__(self, burst: int, rate: float) -> None:
        self.burst = burst
        self.rate = rate
        self.tokens = float(burst)
        self.stamp = time.monotonic()
        self.lock = threading.Lock()

    def take(self) -> bool:
        with self.lock:
            now = time.monotonic()
            self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
            self.stamp = now
            if self.tokens < 1:
                return False
            self.tokens -= 1
            return True


class Counts:
    """Requests seen, by (service, action) and by account, and how many were throttled."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.calls: Counter[tuple[str, str]] = Counter()
        self.throttled: Counter[tuple[str, str]] = Counter()
        self.accounts: Counter[str] = Counter()
        self.first: float | None = None
        self.last: float | None = None

    def add(self, key: tuple[str, str], throttled: bool, arrived: float, account: str) -> None:
        with self.lock:
            self.first = arrived if self.first is None else min(self.first, arrived)
            self.calls[key] += 1
            self.accounts[account] += 1
            if throttled:
                self.throttled[key] += 1


class Proxy:
    """`with Proxy(moto_url, Limits()) as proxy:` serves on `proxy.url` (127.0.0.1, a free port).

    Without `limits` it forwards at once and never throttles (faults come from `intercept`)."""

    def __init__(
        self,
        upstream: str,
        limits: Limits | None = None,
        intercept: Intercept | None = None,
        default_account: str = DEFAULT_ACCOUNT,
    ) -> None:
        self.limits = limits
        self.intercept = intercept
        self.default_account = default_account
        self.stopped = threading.Event()
        self.upstream = urllib.parse.urlsplit(upstream)
        self.counts = Counts()
        self.buckets: dict[tuple[str, str, str], TokenBucket] = {}
        self.keys: dict[str, str] = {}
        """Access key id -> the account it signs for, learnt from AssumeRole answers."""
        self._lock = threading.Lock()
        self._local = threading.local()
        handler = type("Handler", (_Handler,), {"proxy": self})
        self.server = _Server(("127.0.0.1", 0), handler)
        self.server.daemon_threads = True
        host, port = self.server.server_address[:2]
        self.url = f"http://{host}:{port}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Proxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopped.set()
        self.server.shutdown()
        self.server.server_close()

    def reset(self) -> None:
        """Full buckets and zero counts: every measured run starts from the same state."""
        with self._lock:
            self.buckets.clear()
        self.counts = Counts()

    def api_window(self) -> float:
        """Seconds from the first request's arrival to the last reply, since the last reset."""
        counts = self.counts
        with counts.lock:
            if counts.first is None or counts.last is None:
                return 0.0
            return counts.last - counts.first

    def replied(self) -> None:
        counts = self.counts
        with counts.lock:
            now = time.monotonic()
            counts.last = now if counts.last is None else max(counts.last, now)

    def counts_by_action(self) -> tuple[Counter[str], int]:
        """Calls by action (all services) and how many were throttled, since the last reset."""
        counts = self.counts
        with counts.lock:
            calls: Counter[str] = Counter()
            for (_, action), number in counts.calls.items():
                calls[action] += number
            return calls, sum(counts.throttled.values())

    def calls_by_account(self) -> Counter[str]:
        """Calls by the account they signed for (throttled ones included), since the last reset."""
        counts = self.counts
        with counts.lock:
            return Counter(counts.accounts)

    def account_of(self, access_key: str) -> str:
        with self._lock:
            return self.keys.get(access_key, self.default_account)

    def learn(self, request: Request, response: Response) -> None:
        """Remember the account that the key an AssumeRole answer hands out signs for (the
        account of the role's ARN: `arn:aws:iam::ACCOUNT:role/NAME`)."""
        if request.action != "AssumeRole" or response.status != 200:
            return
        found = ACCESS_KEY.search(response.body)
        role = urllib.parse.parse_qs(request.body.decode("latin-1")).get("RoleArn", [""])[0]
        parts = role.split(":", 5)
        if found and len(parts) == 6:
            with self._lock:
                self.keys[found.group(1).decode()] = parts[4]

    def bucket(self, key: tuple[str, str, str], limits: Limits) -> TokenBucket:
        with self._lock:
            if key not in self.buckets:
                self.buckets[key] = TokenBucket(limits.burst, limits.rate)
            return self.buckets[key]

    def forward(self, request: Request) -> Response:
        """Send `request` upstream on this thread's connection (reopened once if it went stale)."""
        method, path, headers, body = request.method, request.path, request.headers, request.body
        connection: http.client.HTTPConnection | None = getattr(self._local, "connection", None)
        if connection is None:
            connection = http.client.HTTPConnection(
                self.upstream.hostname or "127.0.0.1", self.upstream.port, timeout=60
            )
            self._local.connection = connection
        try:
            connection.request(method, path, body=body, headers=headers)
            response = connection.getresponse()
        except (http.client.HTTPException, OSError):
            connection.close()
            connection.request(method, path, body=body, headers=headers)
            response = connection.getresponse()
        return Response(response.status, response.getheaders(), response.read())


class _Server(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that gave up (closed or reset the connection mid-answer) is routine here:
        clients time out on purpose in the fault tests. Anything else is reported as usual."""
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    proxy: ClassVar[Proxy]
    HOP_BY_HOP: ClassVar[set[str]] = {"connection", "keep-alive", "transfer-encoding"}

    def log_message(self, format: str, *args: object) -> None:
        return None

    def _handle(self) -> None:
        arrived = time.monotonic()
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        scope = SCOPE.search(self.headers.get("Authorization", ""))
        key, region, service = scope.groups() if scope else ("-", "-", "-")
        account = self.proxy.account_of(key)
        action = urllib.parse.parse_qs(body.decode("latin-1")).get("Action", ["-"])[0]
        if action == "-":
            action = self.headers.get("X-Amz-Target", "-").rpartition(".")[2] or "-"
        limits = self.proxy.limits
        allowed = True
        if limits is not None:
            time.sleep(limits.latency)
            allowed = self.proxy.bucket((account, service, region), limits).take()
        self.proxy.counts.add(
            (service, action), throttled=not allowed, arrived=arrived, account=account
        )
        if not allowed:
            self._reply(400, [("Content-Type", "text/xml")], THROTTLED)
            return
        headers = {k: v for k, v in self.headers.items() if k.lower() not in self.HOP_BY_HOP}
        request = Request(self.command, self.path, headers, body, service, region, action, account)
        answer: Answer
        if self.proxy.intercept is None:
            answer = self.proxy.forward(request)
        else:
            answer = self.proxy.intercept(request, lambda: self.proxy.forward(request))
        if answer == RESET:
            self._reset()
        elif answer == HANG:
            self.proxy.stopped.wait()
            self._reset()
        else:
            assert isinstance(answer, Response)
            self.proxy.learn(request, answer)
            kept = [(k, v) for k, v in answer.headers if k.lower() not in self.HOP_BY_HOP]
            self._reply(answer.status, kept, answer.body)

    do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _handle  # noqa: N815 - http.server's naming

    def _reset(self) -> None:
        """Close the connection with a TCP reset (SO_LINGER 0), without an answer."""
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.connection.close()
        self.close_connection = True

    def _reply(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
        self.send_response(status)
        for name, value in headers:
            if name.lower() not in ("content-length", "server", "date"):
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        self.proxy.replied()
