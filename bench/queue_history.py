"""(e) Cost that does not grow with history: a single publish and a claim+complete, on an empty
messages table and on one that retains millions of finished messages, in the same run.

Each side is its own schema installed by the engine's `install()`, so the two tables are the
same DDL and can be measured in alternating rounds (the machine's drift weighs on both alike)
instead of one before and one after the fill. The history is in the queue that is measured:
its job ids share the (queue, job_id) index with the new messages, as they would in production.
Each round of a side starts its own adapter, so the engine's background work on a table counts
in that table's rounds; raw SQL steps follow with the adapter shut down, to show what the table
alone costs.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

from clipper.queue import QueueAdapter, QueueMessage, install

from .queue_common import (
    PAYLOAD,
    Round,
    Target,
    alternate,
    config,
    drain,
    raw_claim_sql,
    raw_complete_sql,
)

EMPTY_SCHEMA = "bench_empty"
HISTORY_SCHEMA = "bench_history"
QUEUE = "clips"
ROUNDS = 5
CONCURRENCY = 4
# Untimed messages at the start of each round, on its fresh connections.
WARM_UP = 50
TARGET_RATIO = 1.2
FILL_CHUNK = 500_000
# Finished times spread over the default retention window, so retention would keep them all.
RETENTION_SECONDS = 72 * 3600

FILL = """
INSERT INTO {s}.messages (queue, job_id, priority, payload, state, attempts, max_attempts,
                          run_after, created_at, claimed_at, finished_at)
SELECT %(queue)s, gen_random_uuid(), 0, %(payload)s, 'completed', 1, 3,
       finished, finished, finished, finished
FROM (SELECT now() - (%(total)s - i) * %(spacing)s * interval '1 second' AS finished
      FROM generate_series(%(first)s, %(last)s) AS i) AS history
"""


@dataclass(frozen=True)
class Side:
    name: str
    schema: str
    url: str


Steps = dict[str, Callable[[], Awaitable[object]]]


def fill_history(url: str, total: int) -> None:
    """Insert `total` completed messages in chunks (progress on stdout), then settle the table
    the way a long-lived one is: VACUUM ANALYZE, so the planner sees the real table and the
    hint bits and visibility map are set now (not by the measured statements, nor by an
    autovacuum in the middle of them), and a CHECKPOINT, so the checkpointer is not still
    writing out the fill's gigabytes of dirty pages while the rounds run.

    The empty table stays as installed, never analyzed: analyzed at zero rows, it led the
    planner to sequential scans (of the raw reference's complete) once it held a few thousand
    rows, until autovacuum analyzed it again."""
    started = time.perf_counter()
    fill = sql.SQL(FILL).format(s=sql.Identifier(HISTORY_SCHEMA))
    with psycopg.connect(url, autocommit=True) as conn:
        for first in range(1, total + 1, FILL_CHUNK):
            last = min(total, first + FILL_CHUNK - 1)
            params = {
                "queue": QUEUE,
                "payload": Jsonb(PAYLOAD),
                "total": total,
                "spacing": RETENTION_SECONDS / total,
                "first": first,
                "last": last,
            }
            conn.execute(fill, params)
            elapsed = time.perf_counter() - started
            print(f"    history: {last:>11,} / {total:,} rows   {elapsed:5.0f} s")
        conn.execute(sql.SQL("VACUUM ANALYZE {}.messages").format(sql.Identifier(HISTORY_SCHEMA)))
        print(f"    history: VACUUM ANALYZE done at {time.perf_counter() - started:.0f} s")
        checkpoint(conn)
        print(f"    history: {describe(conn)}, ready at {time.perf_counter() - started:.0f} s")


def checkpoint(conn: psycopg.Connection[Any]) -> None:
    try:
        conn.execute("CHECKPOINT")
    except psycopg.errors.InsufficientPrivilege:
        print("    history: no CHECKPOINT (needs pg_checkpoint); the rounds share its writes")


def describe(conn: psycopg.Connection[Any]) -> str:
    """The history table's size next to the server's cache: past shared_buffers, a publish's
    index lookups start to read from the operating system's cache instead."""
    row = conn.execute(
        "SELECT pg_size_pretty(pg_total_relation_size(%s::regclass)), "
        "current_setting('shared_buffers')",
        (f"{HISTORY_SCHEMA}.messages",),
    ).fetchone()
    return f"table and indexes {row[0]}, shared_buffers {row[1]}" if row else "?"


async def publish_singles(adapter: QueueAdapter, count: int) -> None:
    for _ in range(count):
        await adapter.publish(QueueMessage(uuid.uuid4(), payload=PAYLOAD), queue=QUEUE)


async def raw_insert_singles(conn: psycopg.AsyncConnection[Any], schema: str, count: int) -> None:
    insert = sql.SQL(
        "INSERT INTO {}.messages (queue, job_id, priority, payload, max_attempts) "
        "VALUES (%s, %s, 0, %s, 3)"
    ).format(sql.Identifier(schema))
    for _ in range(count):
        await conn.execute(insert, (QUEUE, uuid.uuid4(), Jsonb(PAYLOAD)))


async def raw_drain(conn: psycopg.AsyncConnection[Any], schema: str, count: int) -> None:
    """Claim CONCURRENCY rows per statement and complete them per batch, as the engine's
    consumer at that concurrency claims at most that many."""
    claim = raw_claim_sql(schema, QUEUE)
    complete = raw_complete_sql(schema)
    done = 0
    while done < count:
        rows = await (await conn.execute(claim, (CONCURRENCY,))).fetchall()
        if not rows:
            raise RuntimeError(f"raw drain of {schema} found {done} of {count} messages")
        await conn.execute(complete, ([row[0] for row in rows],))
        done += len(rows)


async def timed(steps: Steps) -> dict[str, float]:
    seconds = {}
    for step, run in steps.items():
        started = time.perf_counter()
        await run()
        seconds[step] = time.perf_counter() - started
    return seconds


def engine_steps(adapter: QueueAdapter, count: int) -> Steps:
    """Publish then drain: the drain starts on exactly the `count` messages just published."""
    return {
        "publish": lambda: publish_singles(adapter, count),
        "drain": lambda: drain(adapter, QUEUE, count, CONCURRENCY),
    }


def raw_steps(conn: psycopg.AsyncConnection[Any], schema: str, count: int) -> Steps:
    return {
        "raw insert": lambda: raw_insert_singles(conn, schema, count),
        "raw drain": lambda: raw_drain(conn, schema, count),
    }


async def engine_round(side: Side, count: int) -> dict[str, float]:
    """A fresh adapter per round, so that whatever the engine does in the background on a
    table (its depth snapshot every poll interval) weighs on that table's own round only."""
    adapter = QueueAdapter(side.url, config(CONCURRENCY, side.schema))
    await adapter.start()
    try:
        await timed(engine_steps(adapter, WARM_UP))  # connections, prepared statements
        return await timed(engine_steps(adapter, count))
    finally:
        await adapter.shutdown()


async def raw_round(side: Side, count: int) -> dict[str, float]:
    """After the adapter is gone: the raw SQL shows what the table alone costs."""
    async with await psycopg.AsyncConnection.connect(side.url, autocommit=True) as conn:
        await timed(raw_steps(conn, side.schema, WARM_UP))
        return await timed(raw_steps(conn, side.schema, count))


def side_round(side: Side, count: int) -> Round:
    async def round_() -> dict[str, float]:
        seconds = await engine_round(side, count) | await raw_round(side, count)
        return {f"{side.name} {step}": elapsed for step, elapsed in seconds.items()}

    return round_


async def measure(url: str, count: int) -> dict[str, float]:
    """Messages per second of each side and step."""
    sides = [Side("empty", EMPTY_SCHEMA, url), Side("history", HISTORY_SCHEMA, url)]
    seconds = await alternate([side_round(side, count) for side in sides], ROUNDS)
    return {step: count * ROUNDS / elapsed for step, elapsed in seconds.items()}


def scans(url: str) -> dict[str, tuple[int, int]]:
    """Sequential scans of each side's table so far, and the rows they read."""
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT schemaname, seq_scan, seq_tup_read FROM pg_stat_user_tables "
            "WHERE relname = 'messages' AND schemaname = ANY(%s)",
            ([EMPTY_SCHEMA, HISTORY_SCHEMA],),
        ).fetchall()
    return {schema: (scan, read) for schema, scan, read in rows}


def report_scans(before: dict[str, tuple[int, int]], after: dict[str, tuple[int, int]]) -> None:
    """Where a history's cost hides: a statement, on any path, that reads the whole table."""
    parts = []
    for name, schema in (("empty", EMPTY_SCHEMA), ("history", HISTORY_SCHEMA)):
        scans_made = after[schema][0] - before[schema][0]
        rows_read = after[schema][1] - before[schema][1]
        parts.append(f"{name} {rows_read:,} in {scans_made:,} scans")
    print("    rows read by sequential scans during the rounds: " + ",  ".join(parts))


def drop_schemas(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        for schema in (EMPTY_SCHEMA, HISTORY_SCHEMA):
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


def report(
    rate: dict[str, float], label: str, step: str, target_label: str | None
) -> Target | None:
    """One line: each side's cost per message (wall time over messages) and the ratio."""
    empty, history = 1e6 / rate[f"empty {step}"], 1e6 / rate[f"history {step}"]
    target = None
    if target_label:
        target = Target(target_label, history / empty, TARGET_RATIO, at_least=False, unit="x")
    text = (
        f"{label:<36} empty {empty:>6,.0f} µs/msg   history {history:>6,.0f} µs/msg   "
        f"ratio {history / empty:.2f}x"
    )
    print(text + (f"   {target.verdict()}" if target else ""))
    return target


async def bench_history(url: str, total: int, count: int) -> list[Target]:
    print(f"(e) history: filling {total:,} completed messages into {HISTORY_SCHEMA}.messages")
    try:
        for schema in (EMPTY_SCHEMA, HISTORY_SCHEMA):
            await install(url, schema=schema)
        fill_history(url, total)
        before = scans(url)
        rate = await measure(url, count)
        await asyncio.sleep(1)  # the closed sessions' statistics reach pg_stat_user_tables
        after = scans(url)
    finally:
        drop_schemas(url)  # gigabytes of rows: dropped even when a step fails
    targets = [
        report(rate, "(e) publish, 1 per txn", "publish", "(e) publish cost, history/empty"),
        report(rate, "    raw single INSERT", "raw insert", None),
        report(
            rate,
            f"(e) claim+complete, concurrency {CONCURRENCY}",
            "drain",
            "(e) claim+complete cost, history/empty",
        ),
        report(rate, f"    raw claim {CONCURRENCY} + complete per batch", "raw drain", None),
    ]
    report_scans(before, after)
    print(
        f"    {count:,} messages per step and table, {ROUNDS} rounds alternating the tables "
        "(a fresh adapter per round); history rows dropped"
    )
    return [target for target in targets if target]
