"""The queue through PgBouncer (transaction pooling) next to direct connections, in one run:

    python -m bench.pgbouncer_bench [--messages N] [--rounds N] [--publishers N]
                                    [--consumers N] [--concurrency N] [--latency N] [--poll S]

It starts its own PostgreSQL cluster and a PgBouncer 1.18 in front of it (tests/pgbouncer/
harness.py: Debian's binaries, 127.0.0.1, everything removed at the end), installs the queue's
schema, and measures:

(a) publish: --messages messages, one per transaction, from --publishers concurrent tasks of
    one process, directly and through PgBouncer (`pooler="transaction"`: nothing prepared),
    and directly without prepared statements (`pooler="transaction"` on the direct URL), which
    splits the gap between the pooler's hop and the statements parsed and planned every time;
(b) claim + complete: the same messages drained by --consumers adapters (each its own
    connections, as separate processes would have) at --concurrency each, no-op handler;
    (a) and (b) alternate between the paths over --rounds rounds, order reversed every other
    round, so the machine's drift weighs on all alike;
(c) pickup latency of an idle consumer, publish to handler, for --latency messages sent at
    random moments: through PgBouncer poll-only (no LISTEN: bounded by --poll, the
    QUEUE_POLL_INTERVAL_SEC), through PgBouncer with LISTEN on a direct connection
    (QUEUE_LISTEN_URL), and all direct, for reference.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import logging
import random
import statistics
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from clipper.queue import (
    JobContext,
    QueueAdapter,
    QueueConfig,
    QueueMessage,
    ReceivedMessage,
    install,
)
from tests.pgbouncer.harness import cluster_and_pooler

from .queue_common import SCHEMA, percentile

PAYLOAD = {"n": 1}


def config(**overrides: Any) -> QueueConfig:
    base = QueueConfig(queue="bench", schema=SCHEMA, pool_max_size=8)
    return dataclasses.replace(base, **overrides)


@dataclasses.dataclass(frozen=True)
class Route:
    name: str
    url: str
    config: QueueConfig


async def publish_all(path: Route, queue: str, count: int, publishers: int) -> float:
    adapter = QueueAdapter(path.url, path.config)
    await adapter.start()
    remaining = iter(range(count))

    async def publisher() -> None:
        for _ in remaining:  # shared: the tasks take turns on one iterator
            await adapter.publish(QueueMessage(uuid.uuid4(), payload=PAYLOAD), queue=queue)

    try:
        started = time.perf_counter()
        await asyncio.gather(*(publisher() for _ in range(publishers)))
        return time.perf_counter() - started
    finally:
        await adapter.shutdown()


async def drain_all(path: Route, queue: str, count: int, consumers: int, concurrency: int) -> float:
    adapters = [QueueAdapter(path.url, path.config) for _ in range(consumers)]
    await asyncio.gather(*(adapter.start() for adapter in adapters))
    done = asyncio.Event()
    handled = 0

    async def noop(message: ReceivedMessage, context: JobContext) -> None:
        nonlocal handled
        handled += 1
        if handled == count:
            done.set()

    try:
        started = time.perf_counter()
        running = [
            adapter.consume(noop, queue=queue, concurrency=concurrency) for adapter in adapters
        ]
        await done.wait()
        await asyncio.gather(*(consumer.stop() for consumer in running))  # flush the acks
        return time.perf_counter() - started
    finally:
        await asyncio.gather(*(adapter.shutdown() for adapter in adapters))


async def throughput(paths: list[Route], args: argparse.Namespace) -> dict[str, dict[str, float]]:
    per_round = args.messages // args.rounds
    seconds = {path.name: {"publish": 0.0, "drain": 0.0} for path in paths}
    for index in range(args.rounds):
        for path in paths if index % 2 == 0 else list(reversed(paths)):
            queue = f"bench-{path.name}-{index}"
            seconds[path.name]["publish"] += await publish_all(
                path, queue, per_round, args.publishers
            )
            seconds[path.name]["drain"] += await drain_all(
                path, queue, per_round, args.consumers, args.concurrency
            )
    total = per_round * args.rounds
    return {
        name: {step: total / spent for step, spent in steps.items()}
        for name, steps in seconds.items()
    }


async def pickup_latencies(consumer: Route, publisher: Route, samples: int) -> list[float]:
    """Publish to handler, for messages sent at random moments to an idle consumer."""
    consuming = QueueAdapter(consumer.url, consumer.config)
    publishing = QueueAdapter(publisher.url, publisher.config)
    await consuming.start()
    await publishing.start()
    arrived: dict[uuid.UUID, float] = {}
    event = asyncio.Event()

    async def record(message: ReceivedMessage, context: JobContext) -> None:
        arrived[message.job_id] = time.perf_counter()
        event.set()

    latencies = []
    try:
        consuming.consume(record, queue="latency")
        if consuming.listener.started:
            await asyncio.wait_for(consuming.listener.connected.wait(), 10)
        poll = consumer.config.poll_interval_seconds
        for _ in range(samples):
            # A random moment within the poll cycle, so poll-only is not measured in phase.
            await asyncio.sleep(random.uniform(0.05, poll))
            job = uuid.uuid4()
            event.clear()
            sent = time.perf_counter()
            await publishing.publish(QueueMessage(job), queue="latency")
            await asyncio.wait_for(event.wait(), poll * 3 + 10)
            latencies.append(arrived[job] - sent)
    finally:
        await consuming.shutdown()
        await publishing.shutdown()
    return latencies


def latency_line(name: str, values: list[float]) -> str:
    ms = [value * 1000 for value in values]
    return (
        f"  {name:<44} p50 {statistics.median(ms):8.1f} ms   p95 {percentile(ms, 95):8.1f} ms"
        f"   max {max(ms):8.1f} ms"
    )


async def main(args: argparse.Namespace) -> None:
    with cluster_and_pooler(
        cluster_settings={
            "max_connections": "100",
            "synchronous_commit": args.synchronous_commit,
        },
        pooler_settings={"default_pool_size": str(args.pool_size)},
    ) as (cluster, pooler):
        direct_url = cluster.url("clipper", "clipper")
        await install(direct_url, schema=SCHEMA)
        poll = args.poll
        direct = Route("direct", direct_url, config(poll_interval_seconds=poll))
        pooled = Route(
            "pgbouncer", pooler.url(), config(pooler="transaction", poll_interval_seconds=poll)
        )
        unprepared = Route("unprepared", direct_url, config(pooler="transaction"))
        listening = Route(
            "pgbouncer+listen",
            pooler.url(),
            config(pooler="transaction", listen_url=direct_url, poll_interval_seconds=poll),
        )
        # The role's defaults are set once, before anything is timed.
        warm = QueueAdapter(pooled.url, pooled.config)
        await warm.start()
        await warm.shutdown()

        print(
            f"PgBouncer {args.pool_size} server connections, transaction pooling; "
            f"{args.messages:,} messages in {args.rounds} alternating rounds; "
            f"{args.publishers} publishing tasks; {args.consumers} consumers x "
            f"{args.concurrency}; synchronous_commit={args.synchronous_commit}",
            flush=True,
        )
        rates = await throughput([direct, pooled, unprepared], args)
        for step, label in (("publish", "(a) publish, 1 per txn"), ("drain", "(b) claim+complete")):
            ours, theirs = rates["pgbouncer"][step], rates["direct"][step]
            print(
                f"  {label:<24} direct {theirs:>7,.0f}/s   pgbouncer {ours:>7,.0f}/s   "
                f"ratio {ours / theirs:.2f}x   (direct unprepared "
                f"{rates['unprepared'][step]:>7,.0f}/s, {rates['unprepared'][step] / theirs:.2f}x)"
            )

        print(f"(c) pickup latency, idle consumer, {args.latency} messages, poll {poll:g} s")
        runs: list[tuple[str, Callable[[], Awaitable[list[float]]]]] = [
            (
                "pgbouncer, poll-only (no listen URL)",
                lambda: pickup_latencies(pooled, pooled, args.latency),
            ),
            (
                "pgbouncer, LISTEN via QUEUE_LISTEN_URL",
                lambda: pickup_latencies(listening, pooled, args.latency),
            ),
            ("direct, LISTEN", lambda: pickup_latencies(direct, direct, args.latency)),
        ]
        for name, run in runs:
            print(latency_line(name, await run()), flush=True)


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--publishers", type=int, default=8)
    parser.add_argument("--consumers", type=int, default=4)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--pool-size", type=int, default=20)
    parser.add_argument("--latency", type=int, default=20)
    parser.add_argument("--poll", type=float, default=2.0)
    parser.add_argument(
        "--synchronous-commit",
        choices=["on", "off"],
        default="on",
        help="the cluster's synchronous_commit: off takes the WAL flush out of each publish, "
        "leaving the connection path (and the pooler's share of it) to measure",
    )
    return parser.parse_args()


if __name__ == "__main__":
    # The engine's warnings (the role's defaults being set) in order with the results.
    logging.basicConfig(level=logging.WARNING, format="  [%(name)s] %(message)s", stream=sys.stdout)
    asyncio.run(main(arguments()))
