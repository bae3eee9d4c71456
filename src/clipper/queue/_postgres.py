"""The PostgreSQL adapter: a connection pool, a LISTEN connection and the PostgreSQL store."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from psycopg_pool import AsyncConnectionPool

from ._adapter import BaseQueueAdapter
from ._config import QueueConfig
from ._consumer import ErrorHook
from ._depth import DepthSnapshot
from ._listener import Listener
from ._message import HealthReport
from ._metrics import QueueMetrics
from ._postgres_store import PostgresStore, engine_connection_kwargs
from ._sql import notify_channel

logger = logging.getLogger("clipper.queue")


class PostgresQueueAdapter(BaseQueueAdapter):
    def __init__(
        self,
        database_url: str,
        config: QueueConfig,
        *,
        on_error: ErrorHook | None = None,
        metrics: QueueMetrics | None = None,
    ) -> None:
        super().__init__(config, on_error=on_error, metrics=metrics)
        self._database_url = database_url
        deadlines = config.deadlines
        kwargs = engine_connection_kwargs(deadlines)
        self._pool: AsyncConnectionPool[Any] = AsyncConnectionPool(
            database_url,
            min_size=2,
            max_size=config.pool_max_size,
            kwargs={**kwargs, "application_name": "clipper-queue"},
            timeout=deadlines.statement_seconds,
            open=False,
        )
        self._store = PostgresStore(
            self._pool, database_url, config.schema, config.max_attempts, deadlines
        )
        self._listener = Listener(
            database_url,
            notify_channel(config.schema),
            self._store.wakeups,
            check_interval=config.poll_interval_seconds,
            reconnect_max_seconds=config.reconnect_max_seconds,
            on_error=self._report,
            connection_kwargs=kwargs,
            deadline_seconds=deadlines.statement_seconds,
        )
        self._depth = DepthSnapshot(self._store.depth, config.poll_interval_seconds)
        self.metrics.watch_depth(self._depth.read)

    @property
    def store(self) -> PostgresStore:
        return self._store

    @property
    def listener(self) -> Listener:
        return self._listener

    def _report(self, exc: BaseException, operation: str) -> None:
        self.metrics.engine_errors.labels("*", operation).inc()
        logger.error("queue engine error during %s: %s: %s", operation, type(exc).__name__, exc)
        if self._on_error is not None:
            self._on_error(exc, operation)

    async def _open(self) -> None:
        """Open the pool, waiting for the database up to startup_timeout_seconds."""
        await self._pool.open(wait=True, timeout=self.config.startup_timeout_seconds)
        self._depth.start()

    def _before_first_consumer(self) -> None:
        # Only consuming processes listen: a publish-only process (the API) would otherwise
        # spend CPU receiving its own wake-ups.
        if not self._listener.started:
            self._listener.start()

    async def _close(self) -> None:
        await self._depth.stop()
        await self._listener.stop()
        await self._store.close()
        await self._pool.close()

    async def health(self) -> HealthReport:
        detail: dict[str, str] = {}
        database = False
        try:
            async with asyncio.timeout(2.0):
                database = await self._store.ping()
        except Exception as exc:
            detail["database"] = f"{type(exc).__name__}: {exc}"
        listener = self._listener.alive or not self._listener.started
        if not listener:
            detail["listener"] = "not listening (reconnecting)"
        elif not self._listener.started:
            detail["listener"] = "not needed: this process does not consume"
        return HealthReport(database=database, listener=listener, detail=detail)
