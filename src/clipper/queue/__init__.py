"""Clipper's PostgreSQL job queue: at-least-once delivery with priorities, leases and
heartbeats, fenced settles, capped exponential backoff, dead letters and retention.

    adapter = create_queue_adapter("postgres", QueueConfig(), database_url=url)
    await adapter.start()
    async with session.begin():                      # the caller's transaction
        session.add(job)
        await adapter.publish(QueueMessage(job.id, Priority.FAST), conn=session)

    async def handle(message: ReceivedMessage, context: JobContext) -> None: ...
    adapter.consume(handle)                          # runs until adapter.shutdown()

This package imports nothing else from Clipper. See docs/queue.md.
"""

from ._adapter import (
    DEFAULT_DEAD_LETTER_QUEUE,
    BaseQueueAdapter,
    QueueAdapter,
    create_queue_adapter,
)
from ._backend import DeadLetterEntry, DeadLetterHook, RetryHook, TransactionFactory
from ._backoff import retry_delay_seconds
from ._config import QueueConfig, dead_letter_queue_name
from ._consumer import Consumer, Handler
from ._context import JobContext, current_job_id
from ._deadlines import ConnectionTimeouts
from ._dlq import AlertHook
from ._errors import (
    LeaseLostError,
    PermanentError,
    QueueError,
    QueueNotStartedError,
    SystemicError,
)
from ._maintenance import RetentionResult
from ._memory import InMemoryQueueAdapter
from ._message import (
    Claim,
    DeadLetter,
    ErrorInfo,
    HealthReport,
    Priority,
    QueueDepth,
    QueueMessage,
    ReceivedMessage,
    RetryNotice,
)
from ._metrics import QueueMetrics
from ._postgres import PostgresQueueAdapter

__all__ = [
    "DEFAULT_DEAD_LETTER_QUEUE",
    "AlertHook",
    "BaseQueueAdapter",
    "Claim",
    "ConnectionTimeouts",
    "Consumer",
    "DeadLetter",
    "DeadLetterEntry",
    "DeadLetterHook",
    "ErrorInfo",
    "Handler",
    "HealthReport",
    "InMemoryQueueAdapter",
    "JobContext",
    "LeaseLostError",
    "PermanentError",
    "PostgresQueueAdapter",
    "Priority",
    "QueueAdapter",
    "QueueConfig",
    "QueueDepth",
    "QueueError",
    "QueueMessage",
    "QueueMetrics",
    "QueueNotStartedError",
    "ReceivedMessage",
    "RetentionResult",
    "RetryHook",
    "RetryNotice",
    "SystemicError",
    "TransactionFactory",
    "create_queue_adapter",
    "current_job_id",
    "dead_letter_queue_name",
    "retry_delay_seconds",
]
