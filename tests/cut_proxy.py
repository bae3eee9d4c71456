"""A TCP proxy on 127.0.0.1 that cuts its connections on demand: a dropped connection, as a
client sees one when its network goes away (tests/faults/proxy.py black-holes instead: a path
that goes silent, closing nothing).

`cut_after(n)` cuts, once, the connection that carries the n-th byte the clients send: both
ends are closed (the client's with a reset), after exactly n bytes reached the server."""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
from types import TracebackType

_CHUNK = 65536


class CuttingProxy:
    def __init__(self, upstream: tuple[str, int]) -> None:
        self._upstream = upstream
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.1)  # so the accept loop notices close()
        self.port: int = self._listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._lock = threading.Lock()
        self._sent = 0  # bytes forwarded from clients to the server, all connections
        self._cut_at: int | None = None
        self.cuts = 0
        self._sockets: list[socket.socket] = []
        self._closed = threading.Event()
        self._threads: list[threading.Thread] = []
        self._spawn(self._accept_loop)

    def cut_after(self, sent: int) -> None:
        """Cut the connection carrying the clients' byte number `sent + 1` (counted from now
        on), once."""
        with self._lock:
            self._cut_at = self._sent + sent

    def close(self) -> None:
        self._closed.set()
        self._listener.close()
        with self._lock:
            sockets = list(self._sockets)
        for sock in sockets:
            _close(sock)
        for thread in self._threads:
            thread.join(timeout=5)

    def __enter__(self) -> CuttingProxy:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def _spawn(self, target: object, *args: object) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)  # type: ignore[arg-type]
        self._threads.append(thread)
        thread.start()

    def _accept_loop(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return  # closed
            client.settimeout(None)
            try:
                upstream = socket.create_connection(self._upstream)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._sockets += [client, upstream]
            self._spawn(self._pump_up, client, upstream)
            self._spawn(self._pump_down, upstream, client)

    def _pump_up(self, client: socket.socket, upstream: socket.socket) -> None:
        """Client to server, counting, and cutting at the mark."""
        while True:
            try:
                data = client.recv(_CHUNK)
            except OSError:
                break
            if not data:
                break
            with self._lock:
                start = self._sent
                self._sent += len(data)
                cut_at = self._cut_at
                cut = cut_at is not None and self._sent > cut_at
                if cut:
                    self._cut_at = None
                    self.cuts += 1
            if cut and cut_at is not None:
                with contextlib.suppress(OSError):
                    upstream.sendall(data[: cut_at - start])
                _reset(client)
                _close(upstream)
                return
            try:
                upstream.sendall(data)
            except OSError:
                break
        _close(upstream)
        _close(client)

    def _pump_down(self, upstream: socket.socket, client: socket.socket) -> None:
        while True:
            try:
                data = upstream.recv(_CHUNK)
            except OSError:
                break
            if not data:
                break
            try:
                client.sendall(data)
            except OSError:
                break
        _close(client)
        _close(upstream)


def _reset(sock: socket.socket) -> None:
    """Close with a TCP reset, as a dead network path ends for the side that notices."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    _close(sock)


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    sock.close()
