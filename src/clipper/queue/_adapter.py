"""QueueAdapter: publish, consume, dead letters, retention and health, on PostgreSQL."""

from __future__ import annotations

import asyncio
import enum
import logging
import uuid
from collections.abc import Callable, Sequence
from typing import Any, Literal

import psycopg
from psycopg_pool import AsyncConnectionPool

from ._config import QueueConfig, dead_letter_queue_name
from ._consumer import Consumer, ConsumerOptions, ErrorHook, Handler
from ._depth import DepthSnapshot
from ._dlq import AlertHook, dead_letter_handler
from ._errors import QueueError, QueueNotStartedError
from ._hooks import (
    DeadLetterEntry,
    DeadLetterHook,
    RetryHook,
    SettleOptions,
    TransactionFactory,
)
from ._listener import Listener
from ._maintenance import RetentionResult, run_retention
from ._message import (
    CancelOutcome,
    HealthReport,
    PriorityDepth,
    QueueDepth,
    QueueMessage,
    QueueStats,
    WorkerInfo,
)
from ._metrics import QueueMetrics
from ._sql import notify_channel
from ._store import PostgresStore, engine_connection_kwargs
from ._workers import WorkerRegistry

logger = logging.getLogger("clipper.queue")


class _Default(enum.Enum):
    DEAD_LETTER_QUEUE = "<queue>.dlq"


DEFAULT_DEAD_LETTER_QUEUE = _Default.DEAD_LETTER_QUEUE


class QueueAdapter:
    """The queue on one PostgreSQL database: a connection pool, held connections for the hot
    paths, a LISTEN connection (only in processes that consume) and the store that runs every
    query. Make one per process, `await start()` it, and `await shutdown()` at the end.

        adapter = QueueAdapter(database_url, QueueConfig(queue="clips"))

    Behind a transaction-pooling PgBouncer, say so (`pooler="transaction"`) and give the
    listener a direct path (`listen_url`), or consumers poll (see _pooling.py).
    """

    def __init__(
        self,
        database_url: str,
        config: QueueConfig,
        *,
        on_error: ErrorHook | None = None,
        metrics: QueueMetrics | None = None,
    ) -> None:
        self.config = config
        self.metrics = metrics or QueueMetrics()
        self._on_error = on_error
        self._consumers: list[Consumer] = []
        self._maintenance_task: asyncio.Task[None] | None = None
        self._shutdown_task: asyncio.Task[None] | None = None
        self._started = False
        deadlines = config.deadlines
        kwargs = engine_connection_kwargs(deadlines, config.pooler)
        self._pool: AsyncConnectionPool[Any] = AsyncConnectionPool(
            database_url,
            min_size=2,
            max_size=config.pool_max_size,
            kwargs={**kwargs, "application_name": "clipper-queue"},
            timeout=deadlines.statement_seconds,
            open=False,
        )
        self.store = PostgresStore(
            self._pool, database_url, config.schema, config.max_attempts, deadlines, config.pooler
        )
        self.listener = Listener(
            # Its own path when given: LISTEN needs a session, which a transaction pooler
            # does not keep. That path gets no startup options (LISTEN and its `SELECT 1`
            # need no server-side timeouts, only the client deadline), so a session-mode
            # pooler accepts it as well as PostgreSQL itself.
            config.listen_url or database_url,
            notify_channel(config.schema),
            self.store.cancel_channel,
            self.store.wakeups,
            check_interval=config.poll_interval_seconds,
            reconnect_max_seconds=config.reconnect_max_seconds,
            on_error=self._report,
            connection_kwargs=kwargs if config.listen_url is None else deadlines.libpq_kwargs(),
            deadline_seconds=deadlines.statement_seconds,
        )
        self._depth = DepthSnapshot(self.store.depth, config.poll_interval_seconds)
        self.registry = WorkerRegistry(self.store, config, lambda: self._consumers, self._report)
        self.metrics.watch_depth(self._depth.read)

    def _report(self, exc: BaseException, operation: str) -> None:
        self.metrics.engine_errors.labels("*", operation).inc()
        logger.error("queue engine error during %s: %s: %s", operation, type(exc).__name__, exc)
        if self._on_error is not None:
            self._on_error(exc, operation)

    async def health(self) -> HealthReport:
        """Database connectivity and whether the wake-up listener is alive."""
        detail: dict[str, str] = {}
        database = False
        try:
            async with asyncio.timeout(2.0):
                database = await self.store.ping()
        except Exception as exc:
            detail["database"] = f"{type(exc).__name__}: {exc}"
        listener = self.listener.alive or not self.listener.started
        if not listener:
            detail["listener"] = "not listening (reconnecting)"
        elif self.config.poll_only:
            detail["listener"] = "not used: poll-only behind a transaction pooler (no listen_url)"
        elif not self.listener.started:
            detail["listener"] = "not needed: this process does not consume"
        return HealthReport(database=database, listener=listener, detail=detail)

    def _require_started(self) -> None:
        if not self._started:
            raise QueueNotStartedError("call `await adapter.start()` first")

    async def publish(
        self,
        message: QueueMessage,
        *,
        queue: str | None = None,
        conn: Any = None,
        delay: float = 0.0,
        max_attempts: int | None = None,
    ) -> bool:
        """Enqueue `message`; False (and nothing changed) when the queue already has its job id.

        With `conn` (a psycopg AsyncConnection, or a SQLAlchemy AsyncConnection/AsyncSession on
        psycopg) the message joins that open transaction: invisible until it commits, gone if
        it rolls back, and consumers are woken when it commits. Errors reach the caller.
        """
        self._require_started()
        queue = queue or self.config.queue
        inserted = await self.store.publish(
            queue,
            message,
            max_attempts=max_attempts or self.config.max_attempts,
            delay=delay,
            conn=conn,
        )
        counter = self.metrics.published if inserted else self.metrics.duplicates
        counter.labels(queue).inc()
        return inserted

    async def publish_many(
        self,
        messages: Sequence[QueueMessage],
        *,
        queue: str | None = None,
        conn: Any = None,
        delay: float = 0.0,
        max_attempts: int | None = None,
    ) -> list[uuid.UUID]:
        """Enqueue a batch in one statement (idempotent per job id, like `publish`); returns
        the job ids that were new. With `conn`, inside the caller's transaction."""
        self._require_started()
        queue = queue or self.config.queue
        new = await self.store.publish_many(
            queue,
            messages,
            max_attempts=max_attempts or self.config.max_attempts,
            delay=delay,
            conn=conn,
        )
        self.metrics.published.labels(queue).inc(len(new))
        self.metrics.duplicates.labels(queue).inc(len(messages) - len(new))
        return new

    async def cancel(
        self, job_id: uuid.UUID, *, queue: str | None = None, conn: Any = None
    ) -> CancelOutcome:
        """Cancel a job's message. A waiting one (ready or scheduled) ends `cancelled` at once;
        a running one has its handler cancelled wherever its consumer runs (told by NOTIFY,
        with the heartbeat as the fallback; `context.cancel_reason == "cancelled"`), and ends
        `cancelled`: not retried, not dead-lettered. Repeating it is harmless. With `conn`, it
        joins the caller's transaction (the running consumer is told when that commits)."""
        self._require_started()
        queue = queue or self.config.queue
        state = await self.store.cancel(queue, job_id, conn)
        if state is None:
            return CancelOutcome.NOT_FOUND
        if state == "ready":
            self.metrics.cancelled.labels(queue).inc()
            return CancelOutcome.CANCELLED
        return CancelOutcome.CANCELLING if state == "active" else CancelOutcome.FINISHED

    async def pause(self, queue: str | None = None) -> None:
        """Stop claims from `queue` on every consumer (running attempts finish)."""
        self._require_started()
        await self.store.set_paused(queue or self.config.queue, True)

    async def resume(self, queue: str | None = None) -> None:
        """Claim from `queue` again; its consumers are woken at once."""
        self._require_started()
        await self.store.set_paused(queue or self.config.queue, False)

    async def paused_queues(self) -> list[str]:
        self._require_started()
        return await self.store.paused_queues()

    async def stats(self, *, queue: str | None = None, minutes: int = 60) -> list[QueueStats]:
        """Completed, retried, failed, dead-lettered, cancelled and picked-up messages (with
        the pickup waits) per queue and minute over the last `minutes`, from the stats table
        (the messages are not scanned)."""
        self._require_started()
        return await self.store.stats(queue, minutes)

    async def workers(self) -> list[WorkerInfo]:
        """The consuming processes online (heartbeat fresher than `worker_stale_seconds`),
        with their queues and the jobs each ran at its last heartbeat, oldest first."""
        self._require_started()
        return await self.store.workers(self.config.worker_stale_seconds)

    def consume(
        self,
        handler: Handler,
        *,
        queue: str | None = None,
        concurrency: int | None = None,
        dead_letter_queue: str | Literal[_Default.DEAD_LETTER_QUEUE] | None = (
            DEFAULT_DEAD_LETTER_QUEUE
        ),
        on_dead_letter: DeadLetterHook | None = None,
        on_retry: RetryHook | None = None,
        transaction: TransactionFactory | None = None,
        group_concurrency: int | None = None,
    ) -> Consumer:
        """Start running `handler` for messages of `queue` (default: the configured queue).

        Returning acknowledges; raising fails the attempt (retried with backoff); raising
        PermanentError, or failing the last attempt, moves the message to `dead_letter_queue`
        (default `<queue>.dlq`; None to just mark it failed). `on_dead_letter` runs inside that
        same transaction: the engine's own, or the one `transaction()` opens (for instance
        SQLAlchemy's `engine.begin`), so the application's records commit with the move;
        `on_retry` likewise with each scheduled retry.

        `group_concurrency` caps the active messages of each group (QueueMessage.group) at
        that number across every consumer in the database that sets it (give all consumers of
        a queue the same cap); their claims then take turns on one advisory lock per queue.
        """
        self._require_started()
        if group_concurrency is not None and group_concurrency < 1:
            raise ValueError("group_concurrency must be at least 1")
        queue = queue or self.config.queue
        if dead_letter_queue is DEFAULT_DEAD_LETTER_QUEUE:
            dead_letter_queue = dead_letter_queue_name(queue)
        consumer = Consumer(
            self.store,
            self.config,
            self.metrics,
            ConsumerOptions(
                queue=queue,
                handler=handler,
                concurrency=concurrency or self.config.concurrency,
                settle=SettleOptions(dead_letter_queue, on_dead_letter, on_retry, transaction),
                on_error=self._on_error,
                group_concurrency=group_concurrency,
                on_running_changed=self.registry.changed,
            ),
        )
        self._before_first_consumer()
        consumer.start()
        self._consumers.append(consumer)
        self.registry.changed()
        return consumer

    def start_dlq_consumer(
        self, alert: AlertHook | None = None, *, queue: str | None = None
    ) -> Consumer:
        """Consume `<queue>.dlq`: log each dead letter at error level and call `alert`."""
        source = queue or self.config.queue
        return self.consume(
            dead_letter_handler(alert),
            queue=dead_letter_queue_name(source),
            concurrency=1,
            dead_letter_queue=None,
        )

    async def list_dead_letters(
        self, *, queue: str | None = None, limit: int = 100
    ) -> list[DeadLetterEntry]:
        self._require_started()
        return await self.store.list_dead_letters(
            dead_letter_queue_name(queue or self.config.queue), limit
        )

    async def redrive(
        self,
        job_ids: Sequence[uuid.UUID] | None = None,
        *,
        queue: str | None = None,
        limit: int = 1000,
    ) -> list[uuid.UUID]:
        """Move dead letters (all, or those of `job_ids`) back to their queue with fresh
        attempts; returns the job ids requeued. Call again until it returns fewer than `limit`.
        """
        self._require_started()
        source = queue or self.config.queue
        return await self.store.redrive(
            dead_letter_queue_name(source), source, job_ids, limit, self.config.max_attempts
        )

    async def requeue(
        self, message: QueueMessage, *, queue: str | None = None, conn: Any = None
    ) -> bool:
        """Run a finished (completed or dead-lettered) message again with fresh attempts and
        drop its dead letter; with `conn`, inside the caller's transaction. False when the
        message is still queued or running. Works even after retention deleted it."""
        self._require_started()
        source = queue or self.config.queue
        return await self.store.requeue(
            source,
            dead_letter_queue_name(source),
            message,
            max_attempts=self.config.max_attempts,
            conn=conn,
        )

    async def run_retention(self, on_batch: Callable[[int], None] | None = None) -> RetentionResult:
        self._require_started()
        return await run_retention(
            self.store,
            self.config.retention_hours,
            self.config.retention_batch_size,
            on_batch,
            stats_days=self.config.stats_retention_days,
            worker_stale_seconds=self.config.worker_stale_seconds,
        )

    def start_maintenance(self, interval_seconds: float = 300.0) -> None:
        """Run retention every `interval_seconds` in the background until shutdown."""
        self._require_started()
        self._maintenance_task = asyncio.create_task(self._maintain(interval_seconds))

    async def _maintain(self, interval_seconds: float) -> None:
        while True:
            try:
                result = await self.run_retention()
                if result.deleted:
                    logger.info("retention deleted %d finished message(s)", result.deleted)
            except Exception as exc:
                self.metrics.engine_errors.labels("*", "retention").inc()
                logger.error("retention failed: %s", exc)
                if self._on_error is not None:
                    self._on_error(exc, "retention")
            await asyncio.sleep(interval_seconds)

    async def depth(self) -> list[QueueDepth]:
        self._require_started()
        return await self.store.depth()

    async def depth_by_priority(self) -> list[PriorityDepth]:
        """Ready, scheduled and active messages per queue and priority."""
        self._require_started()
        return await self.store.depth_by_priority()

    async def start(self) -> None:
        """Open the pool, waiting for the database up to startup_timeout_seconds."""
        await self._pool.open(wait=True, timeout=self.config.startup_timeout_seconds)
        if self.config.pooler is not None:
            await self._ensure_role_timeouts()
        self._depth.start()
        self._shutdown_task = None
        self._started = True

    async def _ensure_role_timeouts(self) -> None:
        """Behind a transaction pooler the server-side timeouts cannot travel as startup
        options: make them the role's defaults (see _pooling.py), or refuse to start without
        them rather than run with none."""
        try:
            await self.store.ensure_role_timeouts()
        except BaseException as exc:
            await self._pool.close()
            # Unreachable (OperationalError) stays itself: the caller's "cannot connect" path.
            if not isinstance(exc, psycopg.Error) or isinstance(exc, psycopg.OperationalError):
                raise
            raise QueueError(
                "transaction pooling: could not make the server-side timeouts the defaults of "
                "this role in this database (ALTER ROLE CURRENT_USER IN DATABASE ... SET "
                f"statement_timeout, lock_timeout, idle_in_transaction_session_timeout): {exc}"
            ) from exc

    def _before_first_consumer(self) -> None:
        # Only consuming processes listen: a publish-only process (the API) would otherwise
        # spend CPU receiving its own wake-ups. Poll-only: a LISTEN through a transaction
        # pooler would silently receive nothing, so none is attempted.
        if self.config.poll_only:
            if not self._consumers:
                logger.info(
                    "poll-only: no LISTEN through the transaction pooler (no listen URL); "
                    "idle consumers look for work every %gs",
                    self.config.poll_interval_seconds,
                )
            return
        if not self.listener.started:
            self.listener.start()

    async def _close(self) -> None:
        await self._depth.stop()
        await self.listener.stop()
        await self.store.close()
        await self._pool.close()

    async def shutdown(self, grace_seconds: float | None = None) -> None:
        """Stop every consumer gracefully (see Consumer.stop), then close. Calling it again
        while it runs waits for the same shutdown; with grace_seconds=0 it cuts the grace."""
        if not self._started:
            return
        if self._shutdown_task is None:
            self._shutdown_task = asyncio.create_task(self._shutdown(grace_seconds))
        elif grace_seconds == 0:
            for consumer in self._consumers:
                consumer.hurry()
        await asyncio.shield(self._shutdown_task)

    async def _shutdown(self, grace_seconds: float | None) -> None:
        if self._maintenance_task is not None:
            self._maintenance_task.cancel()
            await asyncio.gather(self._maintenance_task, return_exceptions=True)
        await asyncio.gather(*(consumer.stop(grace_seconds) for consumer in self._consumers))
        await self.registry.stop()
        self._consumers.clear()
        await self._close()
        self._started = False
