"""What a handler gets besides its message: attempt facts, its lease, its cancellation signal."""

from __future__ import annotations

import asyncio
import contextvars
import uuid
from collections.abc import Awaitable, Callable

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
    lease was lost (another consumer now owns the message). Long handlers should watch it.
    """

    def __init__(
        self,
        message: ReceivedMessage,
        extend: Callable[[float], Awaitable[bool]],
        visibility_seconds: float,
    ) -> None:
        self.attempt = message.attempt
        self.max_attempts = message.max_attempts
        self.cancelled = asyncio.Event()
        self._extend = extend
        self._visibility_seconds = visibility_seconds

    @property
    def is_final_attempt(self) -> bool:
        return self.attempt >= self.max_attempts

    async def extend_lease(self, seconds: float | None = None) -> None:
        """Hold the message for `seconds` more (default: the visibility timeout) from now.

        The consumer already renews every running lease on its heartbeat; call this before a
        step known to outlast it. Raises LeaseLostError when the message is no longer ours.
        """
        if not await self._extend(seconds or self._visibility_seconds):
            self.cancelled.set()
            raise LeaseLostError("the lease of this attempt was lost")
