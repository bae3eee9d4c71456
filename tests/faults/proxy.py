"""A TCP proxy on 127.0.0.1 that can black-hole its traffic: a half-open network path on
demand. Nothing is ever closed by a black hole, so neither end learns that the path is gone
(no RST, no FIN): only its own timeouts can tell it."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable
from types import TracebackType

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
        self.dead = threading.Event()

    def close(self) -> None:
        for sock in (self.client, self.upstream):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)  # wakes a pump blocked in recv
            sock.close()


class BlackholeProxy:
    """Forwards bytes both ways between 127.0.0.1:`port` and `upstream`, one pair of pump
    threads per connection. `blackhole()` stops forwarding on every connection and forwards
    no new one (they are accepted and left hanging); `heal()` forwards new connections again,
    while the black-holed ones stay dead, as on a real half-open path."""

    def __init__(self, upstream: Upstream) -> None:
        self._upstream = upstream
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.1)  # so the accept loop notices close()
        self.port: int = self._listener.getsockname()[1]
        self._lock = threading.Lock()
        self._links: list[_Link] = []
        self._held: list[socket.socket] = []
        self._blackholed = False
        self._closed = threading.Event()
        self._threads: list[threading.Thread] = []
        self._spawn(self._accept_loop)

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
        with self._lock:
            self._closed.set()
            links, held = list(self._links), list(self._held)
        self._listener.close()
        for link in links:
            link.close()
        for sock in held:
            sock.close()
        for thread in self._threads:
            thread.join(timeout=5)

    def __enter__(self) -> BlackholeProxy:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

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
            with self._lock:
                if self._closed.is_set():
                    client.close()
                    return
                if self._blackholed:  # accepted, never answered: connect() "works", then silence
                    self._held.append(client)
                    continue
            self._forward(client)

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
        self._spawn(self._pump, link, client, upstream)
        self._spawn(self._pump, link, upstream, client)

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

    def _pump(self, link: _Link, source: socket.socket, target: socket.socket) -> None:
        while True:
            try:
                data = source.recv(_CHUNK)
            except OSError:
                break
            if link.dead.is_set():
                # Drop what came and read no more, so the peers' buffers fill up as on a dead
                # path; keep both sockets open until the proxy itself closes.
                self._closed.wait()
                return
            if not data:
                break
            try:
                target.sendall(data)
            except OSError:
                break
        if not link.dead.is_set() and not self._closed.is_set():
            link.close()  # an ordinary close by one end: pass it on
