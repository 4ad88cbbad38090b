"""A forwarding HTTP proxy on a free loopback port that lets a test act on the emulator between
one exchange and the next: after each request is answered upstream, and before the answer goes
back to the client, every hook sees the exchange. A hook changes the world through the emulator's
own API (someone else writing the resource right after remediate did).

A responder may answer a request itself instead, where the emulator departs from the real API's
documented behaviour; every other answer is passed on untouched."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType

from bench.proxy import Answer, Proxy, Request, Response


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
    """`with FaultProxy(upstream) as proxy:` forwards `proxy.url` to `upstream` through the
    project's loopback proxy (bench/proxy.py), with hooks and responders on each exchange."""

    def __init__(self, upstream: str) -> None:
        self.hooks: list[Hook] = []
        self.responders: list[Responder] = []
        self._proxy = Proxy(upstream, intercept=self._intercept)
        self.url = self._proxy.url

    def __enter__(self) -> FaultProxy:
        self._proxy.__enter__()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._proxy.__exit__(kind, value, traceback)

    def _intercept(self, request: Request, forward: Callable[[], Response]) -> Answer:
        for responder in list(self.responders):
            answer = responder(request.method, request.path, request.body)
            if answer is not None:
                status, content_type, data = answer
                return Response(status, [("Content-Type", content_type)], data)
        landed = forward()
        exchange = Exchange(request.method, request.path, request.body, landed.status, landed.body)
        for hook in list(self.hooks):
            hook(exchange)
        return landed
