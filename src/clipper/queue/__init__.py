"""Clipper's PostgreSQL job queue: at-least-once delivery with priorities, leases and
heartbeats, fenced settles, capped exponential backoff, dead letters and retention.

    await install(url)                               # the queue's tables, idempotent
    adapter = QueueAdapter(url, QueueConfig(queue="emails"))
    await adapter.start()
    async with session.begin():                      # the caller's transaction
        session.add(job)
        await adapter.publish(QueueMessage(job.id, priority=0), conn=session)

    async def handle(message: ReceivedMessage, context: JobContext) -> None: ...
    adapter.consume(handle)                          # runs until adapter.shutdown()

Behind a transaction-pooling PgBouncer: `QueueConfig(..., pooler="transaction",
listen_url=direct_url)` (without `listen_url`: poll-only), and `connection_kwargs(timeouts,
"transaction")` for the application's own connections (see _pooling.py).

This package imports nothing else from Clipper. See docs/queue.md.
"""

from ._adapter import DEFAULT_DEAD_LETTER_QUEUE, QueueAdapter
from ._backoff import retry_delay_seconds
from ._config import QueueConfig, dead_letter_queue_name
from ._consumer import Consumer, Handler
from ._context import JobContext, current_job_id
from ._deadlines import ConnectionTimeouts, bounded
from ._dlq import AlertHook
from ._errors import (
    LeaseLostError,
    PermanentError,
    QueueError,
    QueueNotStartedError,
    SystemicError,
)
from ._hooks import DeadLetterEntry, DeadLetterHook, RetryHook, TransactionFactory
from ._maintenance import RetentionResult
from ._message import (
    CancelOutcome,
    Claim,
    DeadLetter,
    ErrorInfo,
    HealthReport,
    PriorityDepth,
    QueueDepth,
    QueueMessage,
    QueueStats,
    ReceivedMessage,
    RetryNotice,
    WorkerInfo,
)
from ._metrics import QueueMetrics
from ._pooling import Pooler, RoleTimeouts, connection_kwargs, ensure_role_timeouts
from ._schema import SCHEMA_VERSION, install, install_sync, uninstall_sync

__all__ = [
    "DEFAULT_DEAD_LETTER_QUEUE",
    "SCHEMA_VERSION",
    "AlertHook",
    "CancelOutcome",
    "Claim",
    "ConnectionTimeouts",
    "Consumer",
    "DeadLetter",
    "DeadLetterEntry",
    "DeadLetterHook",
    "ErrorInfo",
    "Handler",
    "HealthReport",
    "JobContext",
    "LeaseLostError",
    "PermanentError",
    "Pooler",
    "PriorityDepth",
    "QueueAdapter",
    "QueueConfig",
    "QueueDepth",
    "QueueError",
    "QueueMessage",
    "QueueMetrics",
    "QueueNotStartedError",
    "QueueStats",
    "ReceivedMessage",
    "RetentionResult",
    "RetryHook",
    "RetryNotice",
    "RoleTimeouts",
    "SystemicError",
    "TransactionFactory",
    "WorkerInfo",
    "bounded",
    "connection_kwargs",
    "current_job_id",
    "dead_letter_queue_name",
    "ensure_role_timeouts",
    "install",
    "install_sync",
    "retry_delay_seconds",
    "uninstall_sync",
]
