"""Queue benchmark: ours next to raw SQL on the same server, in one run.

    python -m bench.queue_bench [--only a,b,c,d,e,f] [--publish N] [--drain N] [--latency N]
                                [--bulk N] [--history N] [--history-ops N] [--groups N]

(a) publish, one message per transaction, one client, vs. plain single-row INSERT loops
    (async and sync psycopg), measured in alternating rounds; a bare async loop of the
    engine's own publish statement shows how much of the gap is the statement itself (its
    idempotency key, the ready index, the NOTIFY) rather than the engine around it;
(b) drain of pre-published no-op messages by one consumer process at concurrency 4 and 16,
    vs. a plain psycopg loop that claims with SKIP LOCKED and completes in batches;
(c) pickup latency to an idle consumer for messages published 20 ms apart by another process;
(d) bulk publish, `publish_many` of 1,000 messages per call, vs. a raw multi-row INSERT of the
    same rows and vs. COPY, into the same table, in alternating rounds (bench/queue_bulk.py);
(e) a single publish and a claim+complete on an empty table and on one retaining --history
    finished messages, in alternating rounds (bench/queue_history.py); --history 0 skips it;
(f) groups: a drain of ungrouped messages next to one of 20 groups taking turns and one with
    a per-group cap, and a grouped single publish next to an ungrouped one
    (bench/queue_groups.py).
Each measurement is printed with its target from the issue "Queue engine v2", and a closing
"targets" block marks each met (✓) or missed (✗).
It makes its own database on DATABASE_URL's server (or the embedded one) and drops it after.
synchronous_commit stays at the server's setting (on by default) on every path.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb
from sqlalchemy.engine import make_url

from clipper.db import migrate
from clipper.db.urls import libpq_url
from clipper.embedded_db import resolve_database_url
from clipper.queue import JobContext, QueueAdapter, QueueMessage, ReceivedMessage
from clipper.queue._sql import load_queries, notify_channel  # the bare-statement reference

from .queue_bulk import bench_bulk
from .queue_common import (
    SCHEMA,
    Result,
    Target,
    config,
    drain,
    percentile,
    raw_claim_sql,
    raw_complete_sql,
)
from .queue_groups import bench_groups
from .queue_history import bench_history

RAW_CLAIM_BATCH = 100
ROUNDS = 10
PARTS = "abcdef"
# The targets for (a) to (c); (d) and (e) keep theirs in their modules.
PUBLISH_RATIO = 0.85
DRAIN_RATE = {4: 4_000, 16: 10_000}
LATENCY_MS = {50: 1.5, 99: 3.0}


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

    publish_statement = load_queries(SCHEMA)["publish"]

    async def bare_statement() -> None:
        await raw_async.execute(publish_statement, publish_parameters())

    loops = {"ours": ours, "async": plain_async, "sync": plain_sync, "bare": bare_statement}
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
        Result("(a) its statement, bare loop  vs raw INSERT", rate["bare"], rate["async"]),
    ]


def publish_parameters() -> dict[str, object]:
    """The engine's publish statement's parameters for one ungrouped message."""
    return {
        "queue": "publish-bare",
        "job_id": uuid.uuid4(),
        "priority": 0,
        "payload": Jsonb({"n": 1}),
        "group": None,
        "turn": 0,
        "max_attempts": 3,
        "delay": 0.0,
        "channel": notify_channel(SCHEMA),
    }


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
    elapsed = await drain(adapter, queue, count, concurrency)
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
    claim = raw_claim_sql(SCHEMA, "raw")
    complete = raw_complete_sql(SCHEMA)
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


async def part_publish(url: str, args: argparse.Namespace) -> list[Target]:
    *results, bare = await bench_publish(url, args.publish)
    for result, driver in zip(results, ("async", "sync"), strict=True):
        result.target = Target(
            f"(a) publish / raw single INSERT, {driver}",
            result.rate / (result.reference or result.rate),
            PUBLISH_RATIO,
            at_least=True,
            unit="x",
        )
        print(result.line())
    print(bare.line())
    return [result.target for result in results if result.target]


async def part_drain(url: str, args: argparse.Namespace) -> list[Target]:
    raw = raw_drain_rate(url, args.drain)
    targets = []
    for concurrency, goal in DRAIN_RATE.items():
        rate = await bench_drain(url, args.drain, concurrency)
        target = Target(f"(b) drain, concurrency {concurrency}", rate, goal, True, "/s")
        name = f"(b) drain {args.drain:,} no-ops, concurrency {concurrency}"
        print(Result(name, rate, raw, target).line())
        targets.append(target)
    print(
        f"    raw reference: claim {RAW_CLAIM_BATCH} per statement with SKIP LOCKED, "
        "complete per batch"
    )
    return targets


async def part_latency(url: str, args: argparse.Namespace) -> list[Target]:
    latencies = await bench_latency(url, args.latency)
    print(
        f"(c) pickup latency, {len(latencies)} msgs 20 ms apart:  "
        f"p50 {percentile(latencies, 50):.2f} ms   p95 {percentile(latencies, 95):.2f} ms   "
        f"p99 {percentile(latencies, 99):.2f} ms   (mean {statistics.mean(latencies):.2f})"
    )
    targets = [
        Target(f"(c) pickup latency p{pct}", percentile(latencies, pct), goal, False, "ms")
        for pct, goal in LATENCY_MS.items()
    ]
    verdicts = (f"p{pct} {t.verdict()}" for pct, t in zip(LATENCY_MS, targets, strict=True))
    print("    " + "   ".join(verdicts))
    return targets


async def part_bulk(url: str, args: argparse.Namespace) -> list[Target]:
    return await bench_bulk(url, args.bulk)


async def part_history(url: str, args: argparse.Namespace) -> list[Target]:
    if args.history <= 0:
        print("(e) history: skipped (--history 0)")
        return []
    return await bench_history(url, args.history, args.history_ops)


async def part_groups(url: str, args: argparse.Namespace) -> list[Target]:
    return await bench_groups(url, args.groups)


Part = Callable[[str, argparse.Namespace], Awaitable[list[Target]]]
PART_RUNNERS: dict[str, Part] = {
    "a": part_publish,
    "b": part_drain,
    "c": part_latency,
    "d": part_bulk,
    "e": part_history,
    "f": part_groups,
}


def print_targets(targets: list[Target]) -> None:
    met = sum(target.met for target in targets)
    print(f'\ntargets (issue "Queue engine v2"): {met} of {len(targets)} met')
    for target in targets:
        print(target.line())


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
        targets: list[Target] = []
        for part in args.only:
            targets += await PART_RUNNERS[part](url, args)
        print_targets(targets)
    finally:
        with psycopg.connect(server, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


def parts(text: str) -> str:
    """`--only d,e` (or `de`): the parts to run, in the order of the letters."""
    chosen = "".join(letter for letter in PARTS if letter in text.lower())
    unknown = set(text.lower()) - set(PARTS) - {",", " "}
    if unknown or not chosen:
        raise argparse.ArgumentTypeError(f"parts are letters of {PARTS!r}, got {text!r}")
    return chosen


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--only", type=parts, default=PARTS, help="parts to run, e.g. d,e")
    parser.add_argument("--publish", type=int, default=3000, help="messages for (a)")
    parser.add_argument("--drain", type=int, default=10_000, help="messages for (b)")
    parser.add_argument("--latency", type=int, default=500, help="messages for (c)")
    parser.add_argument("--bulk", type=int, default=100_000, help="messages per path for (d)")
    parser.add_argument(
        "--history", type=int, default=5_000_000, help="finished messages for (e); 0 skips it"
    )
    parser.add_argument(
        "--history-ops", type=int, default=2000, help="messages per step and round in (e)"
    )
    parser.add_argument("--groups", type=int, default=20_000, help="messages per path for (f)")
    return parser.parse_args()


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == "--publisher":
        asyncio.run(paced_publisher(sys.argv[2], int(sys.argv[3])))
        return
    if isinstance(sys.stdout, io.TextIOWrapper):
        # Line by line even into a pipe or a file, so (e)'s fill progress shows as it happens.
        sys.stdout.reconfigure(line_buffering=True)
    asyncio.run(run(arguments()))


if __name__ == "__main__":
    main()
