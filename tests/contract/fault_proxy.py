"""A forwarding HTTP proxy on a free loopback port that lets a test act on the emulator between
one exchange and the next: after each request is answered upstream, and before the answer goes
back to the client, every hook sees the exchange. A hook changes the world through the emulator's
own API (someone else writing the resource right after remediate did).

A responder may answer a request itself instead, where the emulator departs from the real API's
documented behaviour; every other answer is passed on untouched."""

from __future__ import annotations

import http.client
import threading
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType

HOP_BY_HOP = frozenset({"connection", "keep-alive", "transfer-encoding", "content-length"})


@dataclass(frozen=True)
class Exchange:
    method: str
    path: str
    request: bytes
    status: int
    response: bytes


Hook = Callable[[Exchange], None]
# (method, path, body) -> (status, content type, body) to answer instead of upstream, or None.
Responder = Callable[[str, str, bytes], tuple[int, str, bytes] | None]


class FaultProxy:
    """`with FaultProxy(upstream) as proxy:` forwards `proxy.url` to `upstream`."""

    def __init__(self, upstream: str) -> None:
        parts = urllib.parse.urlsplit(upstream)
        self._host = parts.hostname or "127.0.0.1"
        self._port = parts.port or 80
        self.hooks: list[Hook] = []
        self.responders: list[Responder] = []
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                return

        def forward(handler: BaseHTTPRequestHandler) -> None:
            proxy._forward(handler)

        for method in ("GET", "POST", "PATCH", "PUT", "DELETE"):
            setattr(Handler, f"do_{method}", forward)
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def __enter__(self) -> FaultProxy:
        self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _forward(self, handler: BaseHTTPRequestHandler) -> None:
        body = handler.rfile.read(int(handler.headers.get("Content-Length") or 0))
        for responder in list(self.responders):
            answer = responder(handler.command, handler.path, body)
            if answer is not None:
                status, content_type, data = answer
                handler.send_response(status)
                handler.send_header("Content-Type", content_type)
                handler.send_header("Content-Length", str(len(data)))
                handler.send_header("Connection", "close")
                handler.end_headers()
                handler.wfile.write(data)
                return
        headers = {k: v for k, v in handler.headers.items() if k.lower() not in HOP_BY_HOP}
        upstream = http.client.HTTPConnection(self._host, self._port, timeout=60)
        try:
            upstream.request(handler.command, handler.path, body=body, headers=headers)
            response = upstream.getresponse()
            data = response.read()
            answer_headers = [
                (k, v) for k, v in response.getheaders() if k.lower() not in HOP_BY_HOP
            ]
            status = response.status
        finally:
            upstream.close()
        exchange = Exchange(handler.command, handler.path, body, status, data)
        for hook in list(self.hooks):
            hook(exchange)
        handler.send_response(status)
        for key, value in answer_headers:
            handler.send_header(key, value)
        handler.send_header("Content-Length", str(len(data)))
        handler.send_header("Connection", "close")
        handler.end_headers()
        handler.wfile.write(data)
