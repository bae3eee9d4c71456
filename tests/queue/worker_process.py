"""A consumer in its own process, for the fault tests (they SIGKILL or SIGTERM it).

    python -m tests.queue.worker_process DATABASE_URL MODE CONCURRENCY VISIBILITY [GROUP_CAP]

MODE `count` bumps a per-message counter around each run (to catch double execution);
MODE `hang` records that it started, then never finishes (until it is killed);
MODE `work` takes a few milliseconds per message, so that attempts overlap.
GROUP_CAP, when given, is the consumer's group_concurrency.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from typing import Any

import psycopg

from clipper.queue import JobContext, QueueAdapter, ReceivedMessage
from tests.queue.conftest import fast_config


async def main(
    url: str, mode: str, concurrency: int, visibility: float, group_cap: int | None
) -> None:
    adapter = QueueAdapter(
        url,
        fast_config(
            visibility_seconds=visibility,
            concurrency=concurrency,
            poll_interval_seconds=0.2,
            pool_max_size=concurrency + 4,
        ),
    )
    counters: psycopg.AsyncConnection[Any] = await psycopg.AsyncConnection.connect(
        url, autocommit=True
    )
    lock = asyncio.Lock()  # one connection for the test's bookkeeping: serialise its use

    async def count(message: ReceivedMessage, context: JobContext) -> None:
        async with lock:
            await counters.execute(
                "UPDATE runs SET running = running + 1, runs = runs + 1, "
                "max_running = greatest(max_running, running + 1) WHERE job_id = %s",
                (message.job_id,),
            )
        await asyncio.sleep(0)
        async with lock:
            await counters.execute(
                "UPDATE runs SET running = running - 1 WHERE job_id = %s", (message.job_id,)
            )

    async def hang(message: ReceivedMessage, context: JobContext) -> None:
        async with lock:
            await counters.execute(
                "INSERT INTO started (job_id, attempt, pid) VALUES (%s, %s, %s)",
                (message.job_id, context.attempt, os.getpid()),
            )
        await asyncio.Event().wait()

    async def work(message: ReceivedMessage, context: JobContext) -> None:
        await asyncio.sleep(0.005)  # the work itself: long enough for claims to overlap

    handlers = {"count": count, "hang": hang, "work": work}
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    await adapter.start()
    adapter.consume(handlers[mode], group_concurrency=group_cap)
    print("ready", flush=True)
    await stop.wait()
    await adapter.shutdown(grace_seconds=5)
    await counters.close()


if __name__ == "__main__":
    url, mode, concurrency, visibility = sys.argv[1:5]
    cap = int(sys.argv[5]) if len(sys.argv) > 5 else None
    asyncio.run(main(url, mode, int(concurrency), float(visibility), cap))
