"""Handlers the worker runs until clip processing lands (issue: real clips)."""

from __future__ import annotations

import logging

from ..queue import DeadLetter, JobContext, ReceivedMessage

logger = logging.getLogger("clipper.worker")


async def log_message(message: ReceivedMessage, context: JobContext) -> None:
    """Built-in handler: logs each message and acknowledges it. It does not cut clips."""
    logger.info(
        "received %s message (attempt %d of %d)",
        message.priority.value,
        context.attempt,
        context.max_attempts,
        extra={"queue": message.queue, "payload": message.payload},
    )


async def log_alert(letter: DeadLetter) -> None:
    """Alert hook of the DLQ consumer: the error-level log line is the alert for now."""
    logger.error(
        "ALERT: job %s is dead-lettered",
        letter.job_id,
        extra={"job_id": str(letter.job_id), "attempts": letter.attempts},
    )
