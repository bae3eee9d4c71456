"""Queue benchmark: ours next to raw SQL on the same server, in one run.

    python -m bench.queue_bench [--publish N] [--drain N] [--latency N]

(a) publish, one message per transaction, one client, vs. plain single-row INSERT loops
    (async and sync psycopg), measured in alternating rounds;
(b) drain of pre-published no-op messages by one consumer process at concurrency 4 and 16,
    vs. a plain psycopg loop that claims with SKIP LOCKED and completes in batches;
(c) pickup latency to an idle consumer for messages published 20 ms apart by another process.
It makes its own database on DATABASE_URL's server (or the embedded one) and drops it after.
synchronous_commit stays at the server's setting (on by default) on every path.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb
from sqlalchemy.engine import make_url

from clipper.db import migrate
from clipper.db.urls import libpq_url
from clipper.embedded_db import resolve_database_url
from clipper.queue import (
    JobContext,
    QueueAdapter,
    QueueConfig,
    QueueMessage,
    ReceivedMessage,
)

SCHEMA = "clipper_queue"
RAW_CLAIM_BATCH = 100


@dataclass
class Result:
    name: str
    rate: float
    reference: float | None = None

    def line(self) -> str:
        text = f"{self.name:<44} {self.rate:>10,.0f} /s"
        if self.reference:
            text += f"   raw {self.reference:>10,.0f} /s   ratio {self.rate / self.reference:.2f}x"
        return text


def config(concurrency: int = 4) -> QueueConfig:
    return QueueConfig(queue="clips", schema=SCHEMA, concurrency=concurrency, pool_max_size=8)


ROUNDS = 10


async def bench_publish(url: str, count: int) -> list[Result]:
    """Ours and both raw INSERT loops in alternating rounds, so the machine's drift during the
    run weighs on all three alike (back-to-back runs differed by up to 2x here)."""
    adapter = QueueAdapter(url, config())
    await adapter.start()
    raw_async = await psycopg.AsyncConnection.connect(url, autocommit=True)
    raw_sync = psycopg.connect(url, autocommit=True)
    raw_sync.execute("CREATE TABLE raw_insert (id bigserial PRIMARY KEY, job_id uuid, body jsonb)")
    insert = "INSERT INTO raw_insert (job_id, body) VALUES (%s, %s)"

    async def ours() -> None:
        await adapter.publish(QueueMessage(uuid.uuid4(), payload={"n": 1}), queue="publish")

    async def plain_async() -> None:
        await raw_async.execute(insert, (uuid.uuid4(), Jsonb({"n": 1})))

    async def plain_sync() -> None:
        raw_sync.execute(insert, (uuid.uuid4(), Jsonb({"n": 1})))

    loops = {"ours": ours, "async": plain_async, "sync": plain_sync}
    elapsed = dict.fromkeys(loops, 0.0)
    for run_once in loops.values():  # warm-up: connections, prepared statements
        for _ in range(100):
            await run_once()
    per_round = max(1, count // ROUNDS)
    for _ in range(ROUNDS):
        for name, run_once in loops.items():
            started = time.perf_counter()
            for _ in range(per_round):
                await run_once()
            elapsed[name] += time.perf_counter() - started
    await adapter.shutdown()
    await raw_async.close()
    raw_sync.close()
    rate = {name: per_round * ROUNDS / seconds for name, seconds in elapsed.items()}
    return [
        Result("(a) publish, 1 per txn  vs raw INSERT, async", rate["ours"], rate["async"]),
        Result("(a) publish, 1 per txn  vs raw INSERT, sync", rate["ours"], rate["sync"]),
    ]


def prefill(url: str, queue: str, count: int) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            sql.SQL(
                "INSERT INTO {}.messages (queue, job_id, priority, max_attempts) "
                "SELECT %s, gen_random_uuid(), 1, 3 FROM generate_series(1, %s)"
            ).format(sql.Identifier(SCHEMA)),
            (queue, count),
        )
        conn.execute(sql.SQL("VACUUM ANALYZE {}.messages").format(sql.Identifier(SCHEMA)))


async def bench_drain(url: str, count: int, concurrency: int) -> float:
    queue = f"drain{concurrency}"
    prefill(url, queue, count)
    adapter = QueueAdapter(url, config(concurrency))
    await adapter.start()
    done = asyncio.Event()
    handled = 0

    async def noop(message: ReceivedMessage, context: JobContext) -> None:
        nonlocal handled
        handled += 1
        if handled == count:
            done.set()

    started = time.perf_counter()
    consumer = adapter.consume(noop, queue=queue)
    await done.wait()
    await consumer.stop()  # flushes the last acknowledgements
    elapsed = time.perf_counter() - started
    await adapter.shutdown()
    with psycopg.connect(url) as conn:
        row = conn.execute(
            sql.SQL(
                "SELECT count(*) FROM {}.messages WHERE queue = %s AND state = 'completed'"
            ).format(sql.Identifier(SCHEMA)),
            (queue,),
        ).fetchone()
    if row is None or row[0] != count:
        raise RuntimeError(f"only {row} of {count} messages completed")
    return count / elapsed


def raw_drain_rate(url: str, count: int) -> float:
    prefill(url, "raw", count)
    claim = sql.SQL(
        "WITH c AS (SELECT id FROM {s}.messages WHERE queue = 'raw' AND state = 'ready' "
        "ORDER BY priority, id LIMIT %s FOR UPDATE SKIP LOCKED) "
        "UPDATE {s}.messages m SET state = 'active', attempts = attempts + 1, "
        "lease_token = gen_random_uuid(), lease_until = now() + interval '90 seconds' "
        "FROM c WHERE m.id = c.id RETURNING m.id, m.lease_token"
    ).format(s=sql.Identifier(SCHEMA))
    complete = sql.SQL(
        "UPDATE {s}.messages SET state = 'completed', finished_at = now(), lease_token = NULL, "
        "lease_until = NULL WHERE id = ANY(%s)"
    ).format(s=sql.Identifier(SCHEMA))
    done = 0
    with psycopg.connect(url, autocommit=True) as conn:
        started = time.perf_counter()
        while done < count:
            rows = conn.execute(claim, (RAW_CLAIM_BATCH,)).fetchall()
            conn.execute(complete, ([row[0] for row in rows],))
            done += len(rows)
        return count / (time.perf_counter() - started)


async def bench_latency(url: str, count: int) -> list[float]:
    adapter = QueueAdapter(url, config(4))
    await adapter.start()
    started_at: dict[str, float] = {}
    all_started = asyncio.Event()

    async def record(message: ReceivedMessage, context: JobContext) -> None:
        started_at[str(message.job_id)] = time.monotonic()
        if len(started_at) == count:
            all_started.set()

    adapter.consume(record, queue="latency")
    await asyncio.sleep(0.5)  # the consumer is idle and listening
    publisher = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bench.queue_bench",
        "--publisher",
        url,
        str(count),
        stdout=subprocess.PIPE,
    )
    output, _ = await publisher.communicate()
    async with asyncio.timeout(10):
        await all_started.wait()
    await adapter.shutdown()
    latencies = []
    for line in output.decode().splitlines():
        job, committed = line.split()
        latencies.append((started_at[job] - float(committed)) * 1000)
    return latencies


async def paced_publisher(url: str, count: int) -> None:
    """Runs in its own process: publish one message every 20 ms, print when each committed."""
    adapter = QueueAdapter(url, config())
    await adapter.start()
    for _ in range(20):
        await adapter.publish(QueueMessage(uuid.uuid4()), queue="latency-warmup")
    lines = []
    for _ in range(count):
        job = uuid.uuid4()
        await adapter.publish(QueueMessage(job), queue="latency")
        lines.append(f"{job} {time.monotonic()}")  # CLOCK_MONOTONIC is system-wide on Linux
        await asyncio.sleep(0.02)
    await adapter.shutdown()
    print("\n".join(lines))


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1)))]


async def run(args: argparse.Namespace) -> None:
    server = libpq_url(resolve_database_url(os.environ.get("DATABASE_URL")))
    name = f"clipper_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(server, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        sync_commit = admin.execute("SHOW synchronous_commit").fetchone()
    url = libpq_url(make_url(server).set(database=name).render_as_string(hide_password=False))
    try:
        migrate.upgrade(url, SCHEMA)
        commit_mode = sync_commit[0] if sync_commit else "?"
        print(f"server: {server.split('@')[-1]}   synchronous_commit={commit_mode}")
        for result in await bench_publish(url, args.publish):
            print(result.line())
        raw = raw_drain_rate(url, args.drain)
        for concurrency in (4, 16):
            rate = await bench_drain(url, args.drain, concurrency)
            print(
                Result(
                    f"(b) drain {args.drain:,} no-ops, concurrency {concurrency}", rate, raw
                ).line()
            )
        print(
            f"    raw reference: claim {RAW_CLAIM_BATCH} per statement with SKIP LOCKED, "
            "complete per batch"
        )
        latencies = await bench_latency(url, args.latency)
        print(
            f"(c) pickup latency, {len(latencies)} msgs 20 ms apart:  "
            f"p50 {percentile(latencies, 50):.2f} ms   p95 {percentile(latencies, 95):.2f} ms   "
            f"p99 {percentile(latencies, 99):.2f} ms   (mean {statistics.mean(latencies):.2f})"
        )
    finally:
        with psycopg.connect(server, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == "--publisher":
        asyncio.run(paced_publisher(sys.argv[2], int(sys.argv[3])))
        return
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--publish", type=int, default=3000, help="messages for (a)")
    parser.add_argument("--drain", type=int, default=10_000, help="messages for (b)")
    parser.add_argument("--latency", type=int, default=500, help="messages for (c)")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
