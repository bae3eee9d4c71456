"""The black-holing proxy itself, against a local echo server: it forwards, goes silent
without closing anything, and forwards new connections again once healed."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator

import pytest

from tests.proxy import BlackholeProxy

# How long "nothing arrives" is awaited: the proxy drops data at once, so this only has to
# exceed a local round trip.
SILENCE = 0.3


def _echo(conn: socket.socket) -> None:
    with conn:
        while data := conn.recv(1024):
            conn.sendall(data)


@pytest.fixture
def echo_server() -> Iterator[tuple[str, int]]:
    server = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return  # closed
            threading.Thread(target=_echo, args=(conn,), daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()
    yield "127.0.0.1", server.getsockname()[1]
    with contextlib.suppress(OSError):
        server.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept()
    server.close()


def _connect(proxy: BlackholeProxy) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", proxy.port), timeout=5)
    sock.settimeout(SILENCE)
    return sock


def _echoes(sock: socket.socket) -> bool:
    sock.sendall(b"ping")
    try:
        return sock.recv(4) == b"ping"
    except TimeoutError:
        return False  # silence: not closed (that would be b"" or an error)


def test_the_proxy_forwards_goes_silent_without_closing_and_heals_for_new_connections(
    echo_server: tuple[str, int],
) -> None:
    with BlackholeProxy(echo_server) as proxy:
        established = _connect(proxy)
        assert _echoes(established)
        proxy.blackhole()
        during = _connect(proxy)  # accepted even now
        assert not _echoes(established)
        assert not _echoes(during)
        proxy.heal()
        after = _connect(proxy)
        assert _echoes(after)
        assert not _echoes(established)  # a black-holed connection stays dead
        for sock in (established, during, after):
            sock.close()
