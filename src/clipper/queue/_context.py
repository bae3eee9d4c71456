"""What a handler gets besides its message: attempt facts, its lease, its cancellation signal."""

from __future__ import annotations

import asyncio
import contextvars
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from ._errors import LeaseLostError
from ._message import ReceivedMessage

_current_job_id: contextvars.ContextVar[uuid.UUID | None] = contextvars.ContextVar(
    "clipper_queue_job_id", default=None
)


def current_job_id() -> uuid.UUID | None:
    """The job id of the message whose handler is running in this task (for log records)."""
    return _current_job_id.get()


class JobContext:
    """Passed to the handler with each message.

    `cancelled` is set when the handler must stop: a shutdown's grace period ran out, or the
    lease was lost (another consumer now owns the message); `cancel_reason` says which. The
    consumer then also cancels the handler's task, so every `await` in it is interrupted.
    """

    def __init__(
        self,
        message: ReceivedMessage,
        extend: Callable[[float], Awaitable[bool]],
        complete_in: Callable[[Any], Awaitable[bool]],
        visibility_seconds: float,
    ) -> None:
        self.attempt = message.attempt
        self.max_attempts = message.max_attempts
        self.cancelled = asyncio.Event()
        self.cancel_reason: str | None = None
        # True once `complete(conn)` acknowledged the message inside the caller's transaction.
        self.completed_in_transaction = False
        self._extend = extend
        self._complete_in = complete_in
        self._visibility_seconds = visibility_seconds

    def cancel(self, reason: str) -> None:
        if not self.cancelled.is_set():
            self.cancel_reason = reason
            self.cancelled.set()

    @property
    def is_final_attempt(self) -> bool:
        return self.attempt >= self.max_attempts

    async def extend_lease(self, seconds: float | None = None) -> None:
        """Hold the message for `seconds` more (default: the visibility timeout) from now.

        The consumer already renews every running lease on its heartbeat; call this before a
        step known to outlast it. Raises LeaseLostError when the message is no longer ours.
        """
        if not await self._extend(seconds or self._visibility_seconds):
            self.cancel("lease lost")
            raise LeaseLostError("the lease of this attempt was lost")

    async def complete(self, conn: Any) -> None:
        """Acknowledge this attempt inside the caller's open transaction (`conn`: a psycopg
        AsyncConnection, or a SQLAlchemy AsyncConnection/AsyncSession on psycopg), so the
        application's own "done" writes commit only together with the fenced acknowledgement.

        Raises LeaseLostError when the lease is no longer this attempt's (another consumer
        took the message over): the caller's transaction must then roll back, which letting
        the error propagate does. After it returns, the handler's return acknowledges nothing
        more; if the caller's transaction rolls back instead, the handler must raise.
        """
        if not await self._complete_in(conn):
            self.cancel("lease lost")
            raise LeaseLostError("the lease of this attempt was lost: not completing it")
        self.completed_in_transaction = True
