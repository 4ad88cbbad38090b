"""`remediate verify` and its probes against real nginx, a real WebSocket backend and a real 426
server on loopback."""

from __future__ import annotations

import json
import re
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.http11 import USER_AGENT
from websockets.utils import accept_key

from remediate.verify import (
    Target,
    alpn_selected,
    connect,
    tls_accepted,
    websocket,
    websocket_ok,
)
from remediate.websocket_client import WebSocket
from tests.conftest import Cli
from tests.loopback import Edge, edge

__all__ = ["edge"]


def _verify_json(cli: Cli, *args: str) -> tuple[int, dict[str, object]]:
    result = cli("verify", *args, "--format", "json")
    assert result.stderr == ""
    document = json.loads(result.stdout)
    assert document["format_version"] == 1
    [endpoint] = document["endpoints"]
    return result.code, endpoint


def test_old_tls_is_seen_as_accepted_and_reported(cli: Cli, edge: Edge) -> None:
    code, report = _verify_json(cli, f"https://localhost:{edge.old}/", "--ws-path", "/ws/")
    assert code == 2
    assert report["tls_versions"] == {"1.0": True, "1.1": True, "1.2": True, "1.3": True}
    assert report["alpn"] == "h2"
    assert report["http2"] is True
    assert report["status"] == 200
    assert report["websocket"] == {"/ws/": {"ok": True, "status": 101}}
    assert report["certificate_days"] in (29, 30)
    assert report["problems"] == [
        "TLS 1.0 is accepted, below the minimum TLS 1.2.",
        "TLS 1.1 is accepted, below the minimum TLS 1.2.",
    ]


def test_new_tls_refuses_old_versions_and_missing_headers_break_websockets(
    cli: Cli, edge: Edge
) -> None:
    code, report = _verify_json(cli, f"https://127.0.0.1:{edge.new}/", "--ws-path", "/ws/")
    assert code == 2
    assert report["tls_versions"] == {"1.0": False, "1.1": False, "1.2": True, "1.3": True}
    assert report["alpn"] == "http/1.1"
    assert report["http2"] is False
    # Without proxy_http_version 1.1 the backend sees HTTP/1.0 and refuses the upgrade.
    assert report["websocket"] == {"/ws/": {"ok": False, "status": 505}}
    problems = report["problems"]
    assert isinstance(problems, list)
    assert any("h2 is not offered" in p for p in problems)
    assert "The WebSocket handshake on /ws/ fails (HTTP 505)." in problems


def test_healthy_endpoint_exits_zero_with_text_for_people(cli: Cli, edge: Edge) -> None:
    result = cli("verify", f"https://localhost:{edge.fixed}/", "--ws-path", "/ws/")
    assert result.code == 0, result.stdout
    assert "TLS 1.0: refused" in result.stdout
    assert "TLS 1.3: accepted" in result.stdout
    assert "ALPN: h2" in result.stdout
    assert "WebSocket /ws/: ok (101)" in result.stdout
    assert result.stdout.rstrip().endswith("healthy")


def test_426_status_reports_the_upgrade_header(cli: Cli, edge: Edge) -> None:
    code, report = _verify_json(cli, f"http://127.0.0.1:{edge.upgrade426}/")
    assert code == 2
    assert report["status"] == 426
    assert report["upgrade"] == "TLS/1.2, HTTP/1.1"
    assert report["tls_versions"] == {"1.0": None, "1.1": None, "1.2": None, "1.3": None}
    assert report["problems"] == [
        "The HTTP/1.1 request is answered 426 Upgrade Required (TLS/1.2, HTTP/1.1)."
    ]


def test_certificate_close_to_expiry_is_a_problem(cli: Cli, edge: Edge) -> None:
    code, report = _verify_json(cli, f"https://localhost:{edge.expiring}/")
    assert code == 2
    assert report["certificate_days"] in (4, 5)
    assert report["problems"] == [
        f"The certificate expires in {report['certificate_days']} day(s)."
    ]


def test_several_urls_in_one_run(cli: Cli, edge: Edge) -> None:
    result = cli(
        "verify",
        f"https://localhost:{edge.fixed}/",
        f"https://localhost:{edge.old}/",
        "--format",
        "json",
    )
    document = json.loads(result.stdout)
    assert result.code == 2
    assert document["healthy"] is False
    assert [e["problems"] == [] for e in document["endpoints"]] == [True, False]


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://example.com/", "not an https://, http://, wss:// or ws:// URL"),
        ("https://127.0.0.1:99999/", "invalid port"),
        ("https:///path", "no host name"),
        ("https://127.0.0.1:1/", "cannot connect to 127.0.0.1:1"),
        ("https://no-such-host.invalid/", "cannot resolve no-such-host.invalid"),
    ],
)
def test_bad_url_or_unreachable_host_is_one_line(cli: Cli, url: str, message: str) -> None:
    result = cli("verify", url)
    assert result.code == 1
    assert result.stdout == ""
    assert result.stderr.startswith("error: ")
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_tls_probes_per_version(edge: Edge) -> None:
    floor_too_high = Target("127.0.0.1", edge.tls13, "localhost")
    assert [tls_accepted(floor_too_high, v) for v in ("1.0", "1.1", "1.2", "1.3")] == [
        False,
        False,
        False,
        True,
    ]
    assert alpn_selected(floor_too_high) == "h2"
    assert alpn_selected(floor_too_high, ("http/1.1",)) == "http/1.1"


def test_server_choosing_an_older_version_counts_as_refusal(cli: Cli, edge: Edge) -> None:
    # Asked for TLS 1.2 only, this server answers with a TLS 1.1 hello: the version is refused.
    code, report = _verify_json(cli, f"https://localhost:{edge.legacy}/")
    assert code == 2
    assert report["tls_versions"] == {"1.0": True, "1.1": True, "1.2": False, "1.3": False}
    assert "TLS 1.2 is refused: clients that stop at TLS 1.2 fail the handshake." in str(
        report["problems"]
    )


@pytest.fixture
def hang_up() -> Iterator[int]:
    """A TCP server that accepts and closes at once: a reset, not an answer."""
    server = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                connection, _ = server.accept()
            except OSError:
                return
            connection.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop.set()
    server.close()
    thread.join(timeout=5)


def test_inconclusive_handshakes_are_never_a_verdict(edge: Edge, hang_up: int) -> None:
    not_tls = Target("127.0.0.1", edge.upgrade426)
    closing = Target("127.0.0.1", hang_up)
    for version in ("1.0", "1.2", "1.3"):
        assert tls_accepted(not_tls, version) is None
        assert tls_accepted(closing, version) is None
    assert alpn_selected(closing) is None
    assert websocket_ok(closing, "/ws/") == (False, None)


def test_websocket_probe_on_plain_backend_and_through_nginx(edge: Edge) -> None:
    assert websocket_ok(Target("127.0.0.1", edge.websocket, tls=False), "/") == (True, 101)
    assert websocket_ok(Target("127.0.0.1", edge.fixed, "localhost"), "/ws/") == (True, 101)
    assert websocket_ok(Target("127.0.0.1", edge.new, "localhost"), "/ws/") == (False, 505)


def test_websocket_probes_over_tls_never_miss_the_answer(edge: Edge) -> None:
    """Three hundred WebSockets in a row through nginx over TLS, each answered and echoing within
    its five seconds. A client that reads its TLS socket on one thread while writing on another
    (websockets' threaded client) loses about one answer in fifty here, and then waits a minute
    for nginx to give up: a verification failure that is not there."""
    target = Target("127.0.0.1", edge.fixed, "localhost")
    for number in range(300):
        with websocket(target, "/ws/", connect(target), timeout=5) as connection:
            assert connection.response is not None and connection.response.status_code == 101
            connection.send_text(f"message {number}")
            assert connection.receive(timeout=5).data == f"message {number}".encode()
            assert connection.ping(timeout=5) is True


@pytest.mark.parametrize("tls", [False, True], ids=["ws", "wss"])
def test_a_silent_server_is_given_up_on_at_the_deadline(tls: bool) -> None:
    """A server that takes the connection and never answers (neither the TLS handshake nor the
    WebSocket one): the probe gives up when its own time is up, not when the server does."""
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        target = Target("127.0.0.1", port, tls=tls)
        sock = connect(target)
        started = time.monotonic()
        with pytest.raises(TimeoutError), websocket(target, "/", sock, timeout=0.5):
            pass
        assert time.monotonic() - started < 2


@dataclass
class Peer:
    """A hand-written WebSocket server: what it was sent, and its port."""

    port: int
    requests: list[bytes] = field(default_factory=list)


@contextmanager
def websocket_peer(*after_handshake: bytes) -> Iterator[Peer]:
    """A server that answers one WebSocket handshake, sends each of the raw bytes
    `after_handshake` (the first with the answer, the others a tenth of a second apart), and then
    neither answers nor closes anything until the test is done."""
    server = socket.create_server(("127.0.0.1", 0))
    peer = Peer(server.getsockname()[1])
    held: list[socket.socket] = []

    def serve() -> None:
        connection, _ = server.accept()
        held.append(connection)
        request = b""
        while b"\r\n\r\n" not in request:
            request += connection.recv(4096)
        peer.requests.append(request)
        key = re.search(rb"(?im)^sec-websocket-key: *(\S+)", request)
        assert key is not None
        connection.sendall(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            + f"Sec-WebSocket-Accept: {accept_key(key.group(1).decode())}\r\n\r\n".encode()
            + (after_handshake[0] if after_handshake else b"")
        )
        for chunk in after_handshake[1:]:
            time.sleep(0.1)
            connection.sendall(chunk)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield peer
    finally:
        server.close()
        for connection in held:
            connection.close()
        thread.join(timeout=5)


# Frames a server sends (unmasked): FIN and the opcode, the length, the payload.
PING, PONG, CLOSE_1000 = b"\x89\x00", b"\x8a\x00", b"\x88\x02\x03\xe8"
TEXT_HI, TEXT_YO = b"\x81\x02hi", b"\x81\x02yo"


def _open(peer: Peer) -> AbstractContextManager[WebSocket]:
    target = Target("127.0.0.1", peer.port, tls=False)
    return websocket(target, "/", connect(target), timeout=5)


def test_the_probe_says_who_it_is() -> None:
    """Access logs name the probe: its request carries websockets' User-Agent."""
    with websocket_peer() as peer, _open(peer):
        pass
    assert f"user-agent: {USER_AGENT}\r\n".lower().encode() in peer.requests[0].lower()


def test_frames_that_come_with_the_answer_are_kept_and_control_frames_skipped() -> None:
    """A server may send frames right behind its 101 (a greeting), in the same read: they are
    the connection's first frames. A ping among them is answered, not taken for the data."""
    with websocket_peer(PING + TEXT_HI + TEXT_YO) as peer, _open(peer) as websocket:
        assert websocket.receive(timeout=5).data == b"hi"
        assert websocket.receive(timeout=5).data == b"yo"


def test_a_ping_is_answered_only_by_its_own_pong() -> None:
    """A stray pong (the server's own keepalive, say) is not the answer: unanswered, the ping is
    False when its time is up."""
    with websocket_peer(PONG) as peer, _open(peer) as websocket:
        started = time.monotonic()
        assert websocket.ping(timeout=0.5) is False
        assert 0.5 <= time.monotonic() - started < 2


def test_a_frame_split_across_reads_is_put_back_together() -> None:
    with websocket_peer(b"", TEXT_HI[:1], TEXT_HI[1:]) as peer, _open(peer) as websocket:
        assert websocket.receive(timeout=5).data == b"hi"


@pytest.mark.parametrize("call", ["receive", "ping"])
def test_a_close_frame_ends_the_connection_at_once(call: str) -> None:
    """The server's close frame is the end, even while it keeps the TCP connection open."""
    with websocket_peer(CLOSE_1000) as peer, _open(peer) as websocket:
        started = time.monotonic()
        with pytest.raises(ConnectionClosed):
            getattr(websocket, call)(timeout=5)
        assert time.monotonic() - started < 2
