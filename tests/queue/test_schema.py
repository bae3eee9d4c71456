"""The queue installs its own schema on any database: no Alembic, no application tables,
idempotent, safe when many processes start at once, and it upgrades an older schema."""

from __future__ import annotations

import asyncio
import uuid

import psycopg
from psycopg import sql

from clipper.queue import (
    SCHEMA_VERSION,
    JobContext,
    QueueAdapter,
    QueueMessage,
    ReceivedMessage,
    install,
)
from clipper.queue._sql import load_schema_versions
from tests.helpers import wait_for
from tests.queue.conftest import fast_config


async def _versions(url: str, schema: str) -> list[int]:
    async with await psycopg.AsyncConnection.connect(url) as conn:
        query = sql.SQL("SELECT version FROM {}.schema_version ORDER BY 1")
        cursor = await conn.execute(query.format(sql.Identifier(schema)))
        return [row[0] for row in await cursor.fetchall()]


async def _tables(url: str) -> set[str]:
    async with await psycopg.AsyncConnection.connect(url) as conn:
        cursor = await conn.execute(
            "SELECT table_schema || '.' || table_name FROM information_schema.tables"
            " WHERE table_schema NOT IN ('pg_catalog', 'information_schema')"
        )
        return {row[0] for row in await cursor.fetchall()}


async def test_a_fresh_database_gets_a_working_queue_without_the_application(
    empty_db_url: str,
) -> None:
    assert await install(empty_db_url, schema="mail_queue") == SCHEMA_VERSION
    assert await _tables(empty_db_url) == {
        f"mail_queue.{table}"
        for table in ("groups", "messages", "queues", "schema_version", "stats", "workers")
    }
    adapter = QueueAdapter(empty_db_url, fast_config(queue="mail", schema="mail_queue"))
    await adapter.start()
    seen: list[int] = []

    async def handle(message: ReceivedMessage, context: JobContext) -> None:
        seen.append(message.priority)

    try:
        # Any smallint priority, lower first: the queue knows no fast/normal/bulk.
        for priority in (50, -3, 7):
            await adapter.publish(QueueMessage(uuid.uuid4(), priority))
        adapter.consume(handle, concurrency=1)
        await wait_for(lambda: len(seen) == 3, message="three messages")
    finally:
        await adapter.shutdown(grace_seconds=0)
    assert seen == [-3, 7, 50]


async def test_installing_again_or_from_many_processes_at_once_changes_nothing(
    empty_db_url: str,
) -> None:
    results = await asyncio.gather(*(install(empty_db_url, schema="q") for _ in range(6)))
    assert results == [SCHEMA_VERSION] * 6
    assert await install(empty_db_url, schema="q") == SCHEMA_VERSION
    assert await _versions(empty_db_url, "q") == list(range(1, SCHEMA_VERSION + 1))


async def test_an_older_schema_is_upgraded_in_place_keeping_its_messages(
    empty_db_url: str,
) -> None:
    """A database made before the queue owned its DDL: the table of version 1 (which the first
    Alembic revision created) and no version table."""
    [(_, version_1), *_] = load_schema_versions("old_queue")
    job = uuid.uuid4()
    async with await psycopg.AsyncConnection.connect(empty_db_url, autocommit=True) as conn:
        await conn.execute("CREATE SCHEMA old_queue")
        await conn.execute(version_1)
        await conn.execute(
            "INSERT INTO old_queue.messages (queue, job_id, priority, max_attempts)"
            " VALUES ('q', %s, 1, 3)",
            (job,),
        )
    await install(empty_db_url, schema="old_queue")
    assert await _versions(empty_db_url, "old_queue") == list(range(1, SCHEMA_VERSION + 1))
    async with await psycopg.AsyncConnection.connect(empty_db_url, autocommit=True) as conn:
        cursor = await conn.execute("SELECT job_id FROM old_queue.messages")
        assert [row[0] for row in await cursor.fetchall()] == [job]
        # Version 2 lifted the old 0..2 priority range.
        await conn.execute(
            "INSERT INTO old_queue.messages (queue, job_id, priority, max_attempts)"
            " VALUES ('q', %s, 9, 3)",
            (uuid.uuid4(),),
        )
