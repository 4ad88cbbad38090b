"""WebSocket connections for the probes, every read and write on the calling thread.

websockets' threaded client reads its socket on a thread of its own while the caller writes to
it. Over TLS that is SSL_read and SSL_write on one OpenSSL connection at the same time, which
OpenSSL does not support: now and then the answer to the handshake is never seen, and the probe
waits until the server drops the connection (a minute behind nginx) and then reports a failure
that is not there. Here the same library's Sans-I/O protocol is driven by one thread, and every
wait ends at a deadline.
"""

from __future__ import annotations

import os
import socket
import ssl
import time
from collections.abc import Iterator
from contextlib import contextmanager

from websockets.client import ClientProtocol
from websockets.exceptions import ConnectionClosed
from websockets.frames import Frame, Opcode
from websockets.http11 import USER_AGENT, Response
from websockets.protocol import Event, State
from websockets.uri import parse_uri

# How long a closing handshake may take before the socket is simply closed.
CLOSE_TIMEOUT = 1.0
_DATA = frozenset({Opcode.TEXT, Opcode.BINARY, Opcode.CONT})


class WebSocket:
    """An open WebSocket connection; `response` is the server's answer to the handshake."""

    def __init__(self, sock: socket.socket, protocol: ClientProtocol) -> None:
        self._sock = sock
        self._protocol = protocol
        self.response: Response | None = None
        self._pending: list[Event] = []

    def send_text(self, text: str) -> None:
        self._protocol.send_text(text.encode())
        self._flush()

    def receive(self, timeout: float) -> Frame:
        """The next data frame. TimeoutError when none comes within `timeout` seconds,
        ConnectionClosed when the connection ends first. A ping on the way is answered."""
        deadline = time.monotonic() + timeout
        while True:
            event = self._next(deadline)
            if isinstance(event, Frame) and event.opcode in _DATA:
                return event
            self._raise_if_closing(event)

    def ping(self, timeout: float) -> bool:
        """Whether a ping is answered within `timeout` seconds (ConnectionClosed when the
        connection ends first). Data frames that arrive meanwhile are skipped."""
        payload = os.urandom(4)
        self._protocol.send_ping(payload)
        self._flush()
        deadline = time.monotonic() + timeout
        try:
            while True:
                event = self._next(deadline)
                if (
                    isinstance(event, Frame)
                    and event.opcode is Opcode.PONG
                    and event.data == payload
                ):
                    return True
                self._raise_if_closing(event)
        except TimeoutError:
            return False

    def close(self) -> None:
        """A close frame, the peer's for up to CLOSE_TIMEOUT seconds, then the socket closed."""
        try:
            if self._protocol.state is State.OPEN:
                self._protocol.send_close()
                self._flush()
                deadline = time.monotonic() + CLOSE_TIMEOUT
                while True:  # until the peer closes (ConnectionClosed) or the deadline
                    self._read(deadline)
        except (OSError, ConnectionClosed):
            pass  # the connection ends either way
        finally:
            self._sock.close()

    def handshake(self, deadline: float) -> Response:
        """Send the opening request and wait for the answer (see `open_websocket`)."""
        request = self._protocol.connect()
        request.headers["User-Agent"] = USER_AGENT
        self._protocol.send_request(request)
        self._flush()
        while True:
            event = self._next(deadline)
            if self._protocol.handshake_exc is not None:
                raise self._protocol.handshake_exc
            if isinstance(event, Response):
                self.response = event
                return event

    def _raise_if_closing(self, event: Event | None) -> None:
        if isinstance(event, Frame) and event.opcode is Opcode.CLOSE:
            protocol = self._protocol
            raise ConnectionClosed(
                protocol.close_rcvd, protocol.close_sent, protocol.close_rcvd_then_sent
            )

    def _next(self, deadline: float) -> Event | None:
        """The next event: one an earlier read brought (a greeting may come in the same read as
        the answer to the handshake), else the first of those one more read brings; None when it
        brings none."""
        if not self._pending:
            self._pending = self._read(deadline)
        return self._pending.pop(0) if self._pending else None

    def _read(self, deadline: float) -> list[Event]:
        """The events one read from the socket brings (TimeoutError at the deadline,
        ConnectionClosed once the connection has ended)."""
        if self._protocol.state is State.CLOSED:
            raise self._protocol.close_exc
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError
        self._sock.settimeout(left)
        data = self._sock.recv(65536)
        if data:
            self._protocol.receive_data(data)
        else:
            self._protocol.receive_eof()
        self._flush()
        return self._protocol.events_received()

    def _flush(self) -> None:
        for data in self._protocol.data_to_send():
            if data:
                self._sock.sendall(data)
            else:  # the protocol's end of stream: half-close
                self._sock.shutdown(socket.SHUT_WR)


@contextmanager
def open_websocket(
    sock: socket.socket,
    uri: str,
    *,
    timeout: float,
    context: ssl.SSLContext | None = None,
    server_hostname: str | None = None,
) -> Iterator[WebSocket]:
    """A WebSocket opened on `uri` over the connected `sock`, TLS first when `context` is given;
    closed (and the socket with it) on the way out.

    Raises InvalidStatus when the server answers the handshake with another status (the response
    is on the exception), InvalidHandshake for any other failed handshake, TimeoutError when no
    answer comes within `timeout` seconds, and OSError when the connection breaks."""
    deadline = time.monotonic() + timeout
    if context is not None:
        sock.settimeout(timeout)
        sock = context.wrap_socket(sock, server_hostname=server_hostname)
    connection = WebSocket(sock, ClientProtocol(parse_uri(uri)))
    try:
        connection.handshake(deadline)
        yield connection
    finally:
        connection.close()
