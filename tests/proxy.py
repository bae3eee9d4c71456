"""TCP proxies on 127.0.0.1 that break their connections on demand, in the two ways a network
path fails:

- `BlackholeProxy` black-holes: the path goes silent and nothing is ever closed, so neither end
  learns that it is gone (no RST, no FIN); only its own timeouts can tell it.
- `CuttingProxy` cuts: a dropped connection, as a client sees one when its network goes away
  (a reset), after exactly the bytes counted reached the server.

`CountingProxy` breaks nothing: it counts what passes, for benchmarks.

Both are `_Proxy`: a listener on an ephemeral port and a pair of pump threads per connection,
which pass an ordinary close by one end on to the other; each mode decides, chunk by chunk,
what to forward and whether its pumps close anything."""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
from collections.abc import Callable
from types import TracebackType
from typing import Self

from psycopg.conninfo import conninfo_to_dict

# A Unix socket path, or a TCP (host, port).
Upstream = str | tuple[str, int]

_CHUNK = 65536


def unix_socket_of(url: str) -> str:
    """The server socket of a libpq URL whose host is a socket directory (pgserver's)."""
    params = conninfo_to_dict(url)
    host, port = str(params.get("host", "")), str(params.get("port") or 5432)
    if not host.startswith("/"):
        raise ValueError(f"not a Unix-socket URL: host={host!r}")
    return f"{host}/.s.PGSQL.{port}"


def tcp_url(url: str, port: int) -> str:
    """The same database as `url`, reached on 127.0.0.1:`port` (through the proxy)."""
    params = conninfo_to_dict(url)
    return f"postgresql://{params.get('user', 'postgres')}@127.0.0.1:{port}/{params['dbname']}"


class _Link:
    """One proxied connection: the client's socket and the upstream one."""

    def __init__(self, client: socket.socket, upstream: socket.socket) -> None:
        self.client = client
        self.upstream = upstream
        self.dead = threading.Event()  # black-holed: see BlackholeProxy

    def close(self) -> None:
        for sock in (self.client, self.upstream):
            _close(sock)


class _Proxy:
    """Forwards bytes both ways between 127.0.0.1:`port` and `upstream`, one pair of pump
    threads per connection, until `close()`, which closes every socket and joins every thread.
    A pump that sees its end (EOF or an error) closes both sockets of its connection, as an
    ordinary close by one end; subclasses change that through `_relay` and `_ended`."""

    def __init__(self, upstream: Upstream) -> None:
        self._upstream = upstream
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.1)  # so the accept loop notices close()
        self.port: int = self._listener.getsockname()[1]
        self._lock = threading.Lock()
        self._links: list[_Link] = []
        self._closed = threading.Event()
        self._threads: list[threading.Thread] = []
        self._spawn(self._accept_loop)

    def close(self) -> None:
        with self._lock:
            self._closed.set()
            links = list(self._links)
        self._listener.close()
        for link in links:
            link.close()
        for thread in self._threads:
            thread.join(timeout=5)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    # What the modes change.

    def _accepted(self, client: socket.socket) -> None:
        """A new client connection: forwarded."""
        self._forward(client)

    def _relay(self, link: _Link, data: bytes, upward: bool) -> bool:
        """Whether the pump goes on with `data` (b"" at an EOF) from the client (`upward`) or
        from the server: False ends the pump there, closing nothing (the mode has dealt with
        the connection)."""
        return True

    def _ended(self, link: _Link) -> None:
        """A pump has seen the end of its direction: the close passes on to both ends."""
        link.close()

    # The machinery.

    def _spawn(self, target: Callable[..., None], *args: object) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)
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
            self._accepted(client)

    def _forward(self, client: socket.socket) -> None:
        try:
            upstream = self._connect_upstream()
        except OSError:
            client.close()  # like a refused connection: the server is down
            return
        link = _Link(client, upstream)
        with self._lock:
            if self._closed.is_set():  # close() has already closed the others
                link.close()
                return
            self._links.append(link)
        self._spawn(self._pump, link, True)
        self._spawn(self._pump, link, False)

    def _connect_upstream(self) -> socket.socket:
        if isinstance(self._upstream, str):
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                sock.connect(self._upstream)
            except OSError:
                sock.close()
                raise
            return sock
        return socket.create_connection(self._upstream)

    def _pump(self, link: _Link, upward: bool) -> None:
        source, target = (link.client, link.upstream) if upward else (link.upstream, link.client)
        while True:
            try:
                data = source.recv(_CHUNK)
            except OSError:
                break
            if not self._relay(link, data, upward):
                return
            if not data:
                break
            try:
                target.sendall(data)
            except OSError:
                break
        self._ended(link)


class CountingProxy(_Proxy):
    """Forwards everything and counts the bytes each way, all connections together: what a
    client and a server sent each other over the network; and, for plain HTTP/1.1, the GET
    requests (each starts with `GET /`, and a GET has no body that could hold those bytes)."""

    def __init__(self, upstream: Upstream) -> None:
        self._counted = threading.Lock()
        self.sent = 0  # client to server
        self.received = 0  # server to client
        self.gets = 0
        super().__init__(upstream)

    def reset(self) -> None:
        with self._counted:
            self.sent = self.received = self.gets = 0

    def _relay(self, link: _Link, data: bytes, upward: bool) -> bool:
        with self._counted:
            if upward:
                self.sent += len(data)
                self.gets += data.count(b"GET /")
            else:
                self.received += len(data)
        return True


class BlackholeProxy(_Proxy):
    """`blackhole()` stops forwarding on every connection and forwards no new one (they are
    accepted and left hanging); `heal()` forwards new connections again, while the black-holed
    ones stay dead, as on a real half-open path.

    A black-holed connection is never closed, not even when one end closes or resets it:
    neither end may learn from the proxy that the path is gone. Its sockets stay open until
    the proxy itself closes."""

    def __init__(self, upstream: Upstream) -> None:
        self._held: list[socket.socket] = []  # accepted while black-holed, never answered
        self._blackholed = False
        super().__init__(upstream)

    @property
    def connections(self) -> int:
        """Connections forwarded so far (black-holed ones included)."""
        with self._lock:
            return len(self._links)

    def blackhole(self) -> None:
        with self._lock:
            self._blackholed = True
            for link in self._links:
                link.dead.set()

    def heal(self) -> None:
        with self._lock:
            self._blackholed = False

    def close(self) -> None:
        super().close()
        with self._lock:  # none is added once closed
            held = list(self._held)
        for sock in held:
            sock.close()

    def _accepted(self, client: socket.socket) -> None:
        with self._lock:
            if self._blackholed and not self._closed.is_set():
                self._held.append(client)  # connect() "works", then silence
                return
        super()._accepted(client)

    def _relay(self, link: _Link, data: bytes, upward: bool) -> bool:
        # Drop what came and read no more, so the peers' buffers fill up as on a dead path.
        return not link.dead.is_set()

    def _ended(self, link: _Link) -> None:
        if not link.dead.is_set():
            super()._ended(link)


class CuttingProxy(_Proxy):
    """`cut_after(n)` cuts, once, the connection that carries the n-th byte the clients send:
    both ends are closed (the client's with a reset, as a dead network path ends for the side
    that notices), after exactly n bytes reached the server. `.cuts` counts the cuts made.

    Unlike a black hole, a cut closes: the point is that both ends learn of it at once, the
    client as an error mid-request, the server as a connection closed mid-body."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self._sent = 0  # bytes forwarded from clients to the server, all connections
        self._cut_at: int | None = None
        self.cuts = 0
        super().__init__(upstream)
        self.url = f"http://127.0.0.1:{self.port}"

    def cut_after(self, sent: int) -> None:
        """Cut the connection carrying the clients' byte number `sent + 1` (counted from now
        on), once."""
        with self._lock:
            self._cut_at = self._sent + sent

    def _relay(self, link: _Link, data: bytes, upward: bool) -> bool:
        """Client to server: counting, and cutting at the mark."""
        if not upward or not data:
            return True
        with self._lock:
            start = self._sent
            self._sent += len(data)
            cut_at = self._cut_at
            if cut_at is None or self._sent <= cut_at:
                return True
            self._cut_at = None
            self.cuts += 1
        with contextlib.suppress(OSError):
            link.upstream.sendall(data[: cut_at - start])
        _reset(link.client)
        _close(link.upstream)
        return False


def _reset(sock: socket.socket) -> None:
    """Close with a TCP reset, as a dead network path ends for the side that notices."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    _close(sock)


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)  # wakes a pump blocked in recv
    sock.close()
