"""Adapters for the contract tests: each test runs against PostgreSQL and against memory."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import AsyncIterator
from typing import Any

import psycopg
import pytest

from clipper.queue import (
    BaseQueueAdapter,
    InMemoryQueueAdapter,
    PostgresQueueAdapter,
    QueueConfig,
)
from clipper.queue._memory_store import MemoryStore
from tests.conftest import QUEUE_SCHEMA


def fast_config(**overrides: Any) -> QueueConfig:
    """Short timings so the tests run in milliseconds; no jitter so delays are exact."""
    base = QueueConfig(
        schema=QUEUE_SCHEMA,
        visibility_seconds=5.0,
        backoff_base_ms=50,
        backoff_max_ms=400,
        backoff_jitter=0.0,
        poll_interval_seconds=0.5,
        shutdown_grace_seconds=2.0,
        reconnect_max_seconds=0.2,
        startup_timeout_seconds=10.0,
    )
    return dataclasses.replace(base, **overrides)


class Harness:
    """Makes adapters of one kind and reaches under them to drive time and inspect rows."""

    def __init__(self, kind: str, db_url: str | None) -> None:
        self.kind = kind
        self.db_url = db_url
        self.adapters: list[BaseQueueAdapter] = []
        self._memory: MemoryStore | None = None

    async def adapter(self, **overrides: Any) -> BaseQueueAdapter:
        config = fast_config(**overrides)
        adapter: BaseQueueAdapter
        if self.kind == "postgres":
            assert self.db_url
            adapter = PostgresQueueAdapter(self.db_url, config)
        else:
            memory = InMemoryQueueAdapter(config)
            if self._memory is None:
                self._memory = memory.store
            else:  # every adapter of a test shares one store, like one database
                memory._store = self._memory
            adapter = memory
        await adapter.start()
        self.adapters.append(adapter)
        return adapter

    async def _sql(self, query: str, params: dict[str, Any] | None = None) -> list[Any]:
        assert self.db_url
        async with await psycopg.AsyncConnection.connect(self.db_url, autocommit=True) as conn:
            cursor = await conn.execute(query.replace("{schema}", QUEUE_SCHEMA), params)
            return await cursor.fetchall() if cursor.description else []

    async def expire_leases(self) -> None:
        if self._memory is not None:
            for row in self._memory._rows.values():
                if row.state == "active":
                    row.lease_until = 0.0
        else:
            await self._sql(
                "UPDATE {schema}.messages SET lease_until = now() - interval '1 second' "
                "WHERE state = 'active'"
            )

    async def age_finished(self, hours: float) -> None:
        if self._memory is not None:
            for row in self._memory._rows.values():
                if row.finished_at is not None:
                    row.finished_at -= hours * 3600
        else:
            await self._sql(
                "UPDATE {schema}.messages SET finished_at = finished_at - %(h)s * interval '1 hour'"
                " WHERE finished_at IS NOT NULL",
                {"h": hours},
            )

    async def state(self, job_id: uuid.UUID, queue: str = "clips") -> tuple[str, int] | None:
        if self._memory is not None:
            row_id = self._memory._by_job.get((queue, job_id))
            if row_id is None:
                return None
            row = self._memory._rows[row_id]
            return row.state, row.attempts
        rows = await self._sql(
            "SELECT state, attempts FROM {schema}.messages WHERE queue = %(q)s AND job_id = %(j)s",
            {"q": queue, "j": job_id},
        )
        return (rows[0][0], rows[0][1]) if rows else None

    async def close(self) -> None:
        for adapter in self.adapters:
            await adapter.shutdown(grace_seconds=0)


@pytest.fixture(params=["postgres", "memory"])
async def harness(request: pytest.FixtureRequest) -> AsyncIterator[Harness]:
    db_url = request.getfixturevalue("db_url") if request.param == "postgres" else None
    harness = Harness(request.param, db_url)
    yield harness
    await harness.close()


@pytest.fixture
async def pg_harness(db_url: str) -> AsyncIterator[Harness]:
    harness = Harness("postgres", db_url)
    yield harness
    await harness.close()
