"""Deadlines for every database connection and statement, so a dead or half-open path to
PostgreSQL is noticed instead of hanging a worker (and the leases it holds) forever.

Three layers, each for a different failure:
- TCP keepalives and `tcp_user_timeout`: the kernel gives up on a peer that stopped answering
  (a cable pulled, a VM frozen), which otherwise looks like an idle connection for hours.
- A client-side deadline around every statement (`on_connection_within`, and `bounded` for
  work that is not one connection's statement): catches what TCP cannot, e.g.
  a proxy or pooler that keeps the socket open but forwards nothing.
- Server-side `statement_timeout`, `lock_timeout` and `idle_in_transaction_session_timeout`:
  a session whose client vanished mid-transaction stops holding row locks on the server.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import socket
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any, TypeVar

import psycopg

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class ConnectionTimeouts:
    """How long the engine (and the application, which reuses this) waits on PostgreSQL."""

    connect_seconds: float = 5.0
    # Client deadline of one statement (or one short transaction) and the server's
    # statement_timeout. Shorter than the visibility window, so a hung heartbeat is noticed
    # while the lease can still be renewed.
    statement_seconds: float = 15.0
    lock_seconds: float = 5.0
    idle_in_transaction_seconds: float = 30.0
    keepalive_idle_seconds: float = 10.0
    tcp_user_timeout_seconds: float = 30.0

    @classmethod
    def for_visibility(cls, visibility_seconds: float, **overrides: float) -> ConnectionTimeouts:
        """The defaults, with statements and idle transactions bounded by half the visibility
        window (at most 15 and 30 s; locks at most 5 s) unless `overrides` say otherwise. A
        session left idle in a transaction holds its row locks: past the lease, that would
        block the worker taking the job over."""
        half = visibility_seconds / 2
        statement = overrides.pop("statement_seconds", min(15.0, half))
        lock = overrides.pop("lock_seconds", min(5.0, statement))
        idle = overrides.pop("idle_in_transaction_seconds", min(30.0, half))
        return cls(
            statement_seconds=statement,
            lock_seconds=lock,
            idle_in_transaction_seconds=idle,
            **overrides,
        )

    def __post_init__(self) -> None:
        for name in self.__dataclass_fields__:
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive")

    def libpq_kwargs(self) -> dict[str, Any]:
        """Connection parameters for psycopg/libpq (whole seconds and milliseconds)."""
        idle = max(1, math.ceil(self.keepalive_idle_seconds))
        return {
            "connect_timeout": max(2, math.ceil(self.connect_seconds)),  # libpq's minimum is 2
            "keepalives": 1,
            "keepalives_idle": idle,
            "keepalives_interval": max(1, idle // 3),
            "keepalives_count": 3,
            "tcp_user_timeout": _ms(self.tcp_user_timeout_seconds),
        }

    def server_settings(self) -> dict[str, int]:
        """The server-side timeouts of a session, in milliseconds, by parameter name."""
        return {
            "statement_timeout": _ms(self.statement_seconds),
            "lock_timeout": _ms(self.lock_seconds),
            "idle_in_transaction_session_timeout": _ms(self.idle_in_transaction_seconds),
        }

    def server_options(self) -> str:
        """The `options` startup parameter: the server-side timeouts of a session. (A
        transaction pooler refuses it, or drops it when told to ignore it: see _pooling.py.)"""
        return " ".join(f"-c {name}={ms}" for name, ms in self.server_settings().items())


def _ms(seconds: float) -> int:
    return max(1, round(seconds * 1000))


async def on_connection_within(
    conn: psycopg.AsyncConnection[Any], work: Awaitable[T], seconds: float
) -> T:
    """Await `work`, which talks over `conn`, for at most `seconds`; past that, shut the
    connection's socket down and raise TimeoutError. This is the hot-path form of `bounded`:
    no task per statement, only a timer.

    Shutting the socket down (rather than cancelling the task) wakes psycopg at once with "the
    server closed the connection", so it marks the connection broken and neither tries to
    cancel the statement over the same dead path nor leaves a pending cancellation behind."""
    expired = False

    def expire() -> None:
        nonlocal expired
        expired = True
        # Already closed: it is failing anyway.
        with contextlib.suppress(OSError), socket.socket(fileno=os.dup(conn.pgconn.socket)) as sock:
            sock.shutdown(socket.SHUT_RDWR)

    timer = asyncio.get_running_loop().call_later(seconds, expire)
    try:
        return await work
    except psycopg.Error:
        if not expired:
            raise
        raise TimeoutError(f"no answer from the database within {seconds:g} s") from None
    finally:
        timer.cancel()


async def bounded(work: Awaitable[T], seconds: float) -> T:
    """Await `work` for at most `seconds`, then raise TimeoutError *without waiting for it*.

    `asyncio.timeout` would wait for the cancelled work to unwind, and psycopg unwinds a
    cancelled query by trying to cancel it on the server (up to 10 s more, over the same dead
    path). Here the work is cancelled and left to finish its cleanup in the background; its
    connection ends up closed and is never reused.
    """
    task = asyncio.ensure_future(work)
    try:
        done, _ = await asyncio.wait({task}, timeout=seconds)
    except asyncio.CancelledError:
        task.cancel()
        raise
    if not done:
        task.cancel()
        task.add_done_callback(_consume_outcome)
        raise TimeoutError(f"no answer from the database within {seconds:g} s")
    return task.result()


def _consume_outcome(task: asyncio.Future[Any]) -> None:
    # The abandoned work's error is expected (cancelled, connection closed): retrieve it so
    # asyncio does not log "exception was never retrieved".
    if not task.cancelled():
        task.exception()
