"""The dead-letter consumer: logs every dead letter at error level and raises the alert."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from ._context import JobContext
from ._message import DeadLetter, ReceivedMessage

logger = logging.getLogger("clipper.queue.dlq")

AlertHook = Callable[[DeadLetter], Awaitable[None]]


def dead_letter_handler(
    alert: AlertHook | None,
) -> Callable[[ReceivedMessage, JobContext], Awaitable[None]]:
    """A handler for `<queue>.dlq`: log the letter, then call `alert` (its failure retries)."""

    async def handle(message: ReceivedMessage, context: JobContext) -> None:
        letter = DeadLetter.from_payload(message.job_id, message.priority, message.payload or {})
        if context.attempt == 1:  # once per letter, not again when a failed alert retries
            _log(letter)
        if alert is not None:
            await alert(letter)

    return handle


def _log(letter: DeadLetter) -> None:
    logger.error(
        "dead letter: job %s of %s failed after %d attempt(s): %s: %s",
        letter.job_id,
        letter.source_queue,
        letter.attempts,
        letter.error.type,
        letter.error.message,
        extra={
            "job_id": str(letter.job_id),
            "queue": letter.source_queue,
            "attempts": letter.attempts,
            "error_type": letter.error.type,
            "error_code": letter.error.code,
            "error": letter.error.message,
            "failed_at": letter.failed_at.isoformat(),
        },
    )
