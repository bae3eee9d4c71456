"""(d) Bulk publish: `publish_many` of 1,000 fresh messages per call, against a raw multi-row
INSERT of the same rows per statement and against COPY, into the same table, in alternating
rounds. Every batch is its own transaction on all three paths."""

from __future__ import annotations

import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

from clipper.queue import QueueAdapter, QueueMessage

from .queue_common import PAYLOAD, SCHEMA, Result, Round, Target, alternate, config

BATCH = 1000
ROUNDS = 10
TARGET_RATE = 20_000
# The engine's columns that the raw paths fill too; the rest take their defaults on all three.
COLUMNS = "(queue, job_id, priority, payload, max_attempts)"

Batches = list[list[QueueMessage]]
Publish = Callable[[list[QueueMessage]], Awaitable[None]]


def fresh_batches(count: int) -> Batches:
    return [
        [QueueMessage(uuid.uuid4(), payload=PAYLOAD) for _ in range(BATCH)] for _ in range(count)
    ]


def timed_round(name: str, per_round: int, publish: Publish) -> Round:
    """A round of `per_round` batches; building their messages is left out of the time."""

    async def round_() -> dict[str, float]:
        batches = fresh_batches(per_round)
        started = time.perf_counter()
        for batch in batches:
            await publish(batch)
        return {name: time.perf_counter() - started}

    return round_


def raw_insert_round(conn: psycopg.AsyncConnection[Any], per_round: int) -> Round:
    insert = sql.SQL(
        "INSERT INTO {}.messages " + COLUMNS + " SELECT 'bulk-raw', job_id, priority, payload, 3 "
        "FROM unnest(%s::uuid[], %s::smallint[], %s::jsonb[]) AS batch(job_id, priority, payload)"
    ).format(sql.Identifier(SCHEMA))

    async def publish(batch: list[QueueMessage]) -> None:
        await conn.execute(
            insert,
            (
                [m.job_id for m in batch],
                [m.priority for m in batch],
                [Jsonb(m.payload) for m in batch],
            ),
        )

    return timed_round("raw", per_round, publish)


def copy_round(conn: psycopg.AsyncConnection[Any], per_round: int) -> Round:
    copy_sql = sql.SQL("COPY {}.messages " + COLUMNS + " FROM STDIN").format(sql.Identifier(SCHEMA))

    async def publish(batch: list[QueueMessage]) -> None:
        async with conn.cursor() as cursor, cursor.copy(copy_sql) as copy:
            for m in batch:
                await copy.write_row(("bulk-copy", m.job_id, m.priority, Jsonb(m.payload), 3))

    return timed_round("copy", per_round, publish)


async def bench_bulk(url: str, count: int) -> list[Target]:
    adapter = QueueAdapter(url, config())
    await adapter.start()
    raw = await psycopg.AsyncConnection.connect(url, autocommit=True)
    try:
        per_round = max(1, count // BATCH // ROUNDS)

        async def ours(batch: list[QueueMessage]) -> None:
            await adapter.publish_many(batch, queue="bulk")

        contenders = [
            timed_round("ours", per_round, ours),
            raw_insert_round(raw, per_round),
            copy_round(raw, per_round),
        ]
        await alternate(contenders, 1)  # warm-up: connections, prepared statements, caches
        seconds = await alternate(contenders, ROUNDS)
    finally:
        await adapter.shutdown()
        await raw.close()
    messages = per_round * ROUNDS * BATCH
    rate = {name: messages / elapsed for name, elapsed in seconds.items()}
    target = Target(
        "(d) bulk publish, 1,000 per call", rate["ours"], TARGET_RATE, at_least=True, unit="/s"
    )
    name = f"(d) publish_many {BATCH:,}/call vs"
    print(Result(f"{name} unnest INSERT", rate["ours"], rate["raw"], target).line())
    print(Result(f"{name} COPY", rate["ours"], rate["copy"], target).line())
    print(f"    {messages:,} messages per path, one transaction per {BATCH:,}, {ROUNDS} rounds")
    return [target]
