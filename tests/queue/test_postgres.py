"""PostgreSQL-only guarantees: transactions, several processes, killed workers, killed
connections, a crashed server, and the races other queues shipped."""

from __future__ import annotations

import asyncio
import functools
import time
import uuid
from typing import Any

import psycopg
import pytest
from sqlalchemy.ext.asyncio import create_async_engine

from clipper.db.urls import sqlalchemy_url
from clipper.queue import (
    ErrorInfo,
    JobContext,
    QueueAdapter,
    QueueMessage,
    ReceivedMessage,
)
from clipper.queue._hooks import SettleOptions
from tests.helpers import wait_for
from tests.queue.conftest import Harness, fast_config
from tests.queue.processes import sigkill, sigterm, start_worker
from tests.queue.test_contract import Recorder


async def sql(url: str, query: str, params: Any = None) -> list[Any]:
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        cursor = await conn.execute(query, params)
        return await cursor.fetchall() if cursor.description else []


async def count_state(url: str, state: str, queue: str = "clips") -> int:
    rows = await sql(
        url,
        "SELECT count(*) FROM clipper_queue.messages WHERE queue = %s AND state = %s",
        (queue, state),
    )
    return int(rows[0][0])


# --- transactional and idempotent publish ---------------------------------------------------


@pytest.mark.parametrize("kind", ["psycopg", "sqlalchemy-connection", "sqlalchemy-session"])
async def test_publish_joins_the_callers_transaction(
    harness: Harness, db_url: str, kind: str
) -> None:
    # A long poll interval: a quick pickup after commit proves the NOTIFY woke the consumer.
    adapter = await harness.adapter(poll_interval_seconds=30)
    recorder = Recorder()
    adapter.consume(recorder)
    committed, rolled_back = uuid.uuid4(), uuid.uuid4()
    engine = create_async_engine(sqlalchemy_url(db_url))
    try:
        for job, commit in ((committed, True), (rolled_back, False)):
            if kind == "psycopg":
                conn: Any = await psycopg.AsyncConnection.connect(db_url)
                assert await adapter.publish(QueueMessage(job), conn=conn)
                assert await count_state(db_url, "ready") == 0  # invisible before commit
                await (conn.commit() if commit else conn.rollback())
                await conn.close()
            elif kind == "sqlalchemy-connection":
                async with engine.connect() as connection:
                    await connection.begin()
                    assert await adapter.publish(QueueMessage(job), conn=connection)
                    assert await count_state(db_url, "ready") == 0
                    await (connection.commit() if commit else connection.rollback())
            else:
                from sqlalchemy.ext.asyncio import AsyncSession

                async with AsyncSession(engine) as session:
                    assert await adapter.publish(QueueMessage(job), conn=session)
                    assert await count_state(db_url, "ready") == 0
                    await (session.commit() if commit else session.rollback())
            if commit:
                started = time.monotonic()
                await wait_for(lambda: recorder.seen, timeout=5, message="pickup after commit")
                assert time.monotonic() - started < 2.0
    finally:
        await engine.dispose()
    assert recorder.jobs() == [committed]
    assert await harness.state(rolled_back) is None


async def test_duplicate_publish_does_not_abort_the_callers_transaction(
    harness: Harness, db_url: str
) -> None:
    adapter = await harness.adapter()
    job = uuid.uuid4()
    async with await psycopg.AsyncConnection.connect(db_url) as conn:
        assert await adapter.publish(QueueMessage(job), conn=conn) is True
        assert await adapter.publish(QueueMessage(job), conn=conn) is False
        cursor = await conn.execute("SELECT 1")  # the transaction is still usable
        assert await cursor.fetchone() == (1,)
        await conn.commit()
    assert await count_state(db_url, "ready") == 1


async def test_publish_errors_reach_the_caller(db_url: str) -> None:
    adapter = QueueAdapter(db_url, fast_config(schema="not_migrated"))
    await adapter.start()
    try:
        with pytest.raises(psycopg.errors.UndefinedTable):
            await adapter.publish(QueueMessage(uuid.uuid4()))
    finally:
        await adapter.shutdown()


# --- several processes, killed processes ----------------------------------------------------


async def test_no_message_runs_in_two_handlers_at_once_across_processes(db_url: str) -> None:
    jobs = [uuid.uuid4() for _ in range(3000)]
    await sql(
        db_url,
        "CREATE TABLE runs (job_id uuid PRIMARY KEY, running int NOT NULL DEFAULT 0,"
        " runs int NOT NULL DEFAULT 0, max_running int NOT NULL DEFAULT 0)",
    )
    adapter = QueueAdapter(db_url, fast_config())
    await adapter.start()
    async with await psycopg.AsyncConnection.connect(db_url) as conn:
        async with conn.cursor() as cursor:
            await cursor.executemany("INSERT INTO runs (job_id) VALUES (%s)", [(j,) for j in jobs])
        for job in jobs:
            await adapter.publish(QueueMessage(job), conn=conn)
        await conn.commit()
    await adapter.shutdown()
    workers = [start_worker(db_url, "count", concurrency=8) for _ in range(3)]
    try:
        await wait_for(
            lambda: _all_completed(db_url, len(jobs)),
            timeout=90,
            interval=0.2,
            message="3000 messages completed",
        )
    finally:
        codes = [sigterm(worker) for worker in workers]
    assert codes == [0, 0, 0]
    rows = await sql(
        db_url, "SELECT min(runs), max(runs), max(max_running), sum(running) FROM runs"
    )
    assert rows == [(1, 1, 1, 0)]


async def _all_completed(url: str, expected: int) -> bool:
    return await count_state(url, "completed") == expected


async def _started(url: str) -> list[tuple[Any, ...]]:
    return await sql(url, "SELECT job_id, attempt FROM started ORDER BY attempt")


async def test_sigkilled_worker_loses_its_message_only_until_the_lease_expires(
    harness: Harness, db_url: str
) -> None:
    await sql(db_url, "CREATE TABLE started (job_id uuid, attempt int, pid int)")
    adapter = await harness.adapter(visibility_seconds=1.0)
    job = uuid.uuid4()
    await adapter.publish(QueueMessage(job))
    worker = start_worker(db_url, "hang", visibility=1.0)
    await wait_for(lambda: _started(db_url), message="the worker's attempt")
    started = time.monotonic()
    sigkill(worker)
    recorder = Recorder()
    adapter.consume(recorder)
    await wait_for(lambda: recorder.seen, timeout=10, message="redelivery")
    assert recorder.seen[0].attempt == 2
    assert time.monotonic() - started >= 0.5  # not before the lease ran out
    await wait_for(lambda: _all_completed(db_url, 1))


async def test_poison_message_that_kills_every_worker_reaches_the_dlq(
    harness: Harness, db_url: str
) -> None:
    await sql(db_url, "CREATE TABLE started (job_id uuid, attempt int, pid int)")
    adapter = await harness.adapter(
        max_attempts=3, visibility_seconds=1.0, poll_interval_seconds=0.2
    )
    job = uuid.uuid4()
    await adapter.publish(QueueMessage(job))
    for attempt in (1, 2, 3):
        worker = start_worker(db_url, "hang", visibility=1.0)
        await wait_for(
            functools.partial(_has_attempt, db_url, attempt),
            timeout=15,
            message=f"attempt {attempt}",
        )
        sigkill(worker)
    recorder = Recorder()
    adapter.consume(recorder)  # this consumer's sweep dead-letters the expired last attempt
    await wait_for(lambda: _state(harness, job), timeout=10, message="failed")
    [entry] = await adapter.list_dead_letters()
    assert (entry.letter.attempts, entry.letter.error.type) == (3, "LeaseExpired")
    assert recorder.seen == []


async def _state(harness: Harness, job: uuid.UUID) -> bool:
    return await harness.state(job) == ("failed", 3)


async def _has_attempt(url: str, attempt: int) -> bool:
    return any(row[1] == attempt for row in await _started(url))


# --- killed connections and a crashed server ------------------------------------------------


async def test_consumer_survives_killed_connections_and_listens_again(
    harness: Harness, db_url: str
) -> None:
    errors: list[tuple[str, BaseException]] = []
    adapter = QueueAdapter(
        db_url,
        fast_config(poll_interval_seconds=1.0),
        on_error=lambda exc, operation: errors.append((operation, exc)),
    )
    await adapter.start()
    harness.adapters.append(adapter)
    recorder = Recorder()
    adapter.consume(recorder)
    await wait_event_listening(adapter)
    old_pid = await adapter.listener.backend_pid()
    killed = await sql(
        db_url,
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
        "WHERE datname = current_database() AND application_name LIKE 'clipper-queue%%'",
    )
    assert len(killed) >= 2  # the listener and pooled connections
    await wait_for(
        lambda: adapter.listener.alive and _pid_changed(adapter, old_pid),
        timeout=10,
        message="LISTEN re-established",
    )
    jobs = [uuid.uuid4() for _ in range(5)]
    for job in jobs:
        await adapter.publish(QueueMessage(job))
    await wait_for(lambda: len(recorder.seen) == 5, timeout=10, message="work after the kill")
    assert sorted(recorder.jobs()) == sorted(jobs)
    assert (await adapter.health()).ok
    assert "listen" in {operation for operation, _ in errors}  # reported, never fatal


async def wait_event_listening(adapter: QueueAdapter) -> None:
    await wait_for(lambda: adapter.listener.alive, message="listener up")


async def _pid_changed(adapter: QueueAdapter, old_pid: int | None) -> bool:
    return await adapter.listener.backend_pid() not in (None, old_pid)


async def test_no_message_is_lost_when_postgres_crashes_and_restarts(
    private_postgres: Any,
) -> None:
    url = private_postgres.url
    adapter = QueueAdapter(url, fast_config(reconnect_max_seconds=0.5))
    await adapter.start()
    seen: set[uuid.UUID] = set()

    async def handler(message: ReceivedMessage, context: JobContext) -> None:
        seen.add(message.job_id)
        await asyncio.sleep(0.005)

    jobs = [uuid.uuid4() for _ in range(400)]
    async with await psycopg.AsyncConnection.connect(url) as conn:
        for job in jobs:
            await adapter.publish(QueueMessage(job), conn=conn)
        await conn.commit()
    try:
        adapter.consume(handler)
        await wait_for(lambda: len(seen) >= 50, message="work under way")
        await asyncio.to_thread(private_postgres.crash_restart)
        await wait_for(
            lambda: _all_completed(url, len(jobs)),
            timeout=60,
            interval=0.2,
            message="every message completed after the restart",
        )
        await wait_for(lambda: adapter.listener.alive, timeout=10, message="listener back")
    finally:
        await adapter.shutdown(grace_seconds=1)
    assert seen == set(jobs)


# --- races other queues shipped --------------------------------------------------------------


async def test_stale_worker_and_lease_sweep_race_exactly_one_wins(
    harness: Harness, db_url: str
) -> None:
    adapter = await harness.adapter(max_attempts=1)
    store = adapter.store
    error = ErrorInfo("LeaseExpired", "sweep")
    for _ in range(20):
        job = uuid.uuid4()
        await adapter.publish(QueueMessage(job))
        [message] = await store.claim("clips", 1, 30)
        await harness.expire_leases()

        async def sweep() -> bool:
            claims = await store.claim_expired_final("clips", 10, 30)
            letters = [
                await store.dead_letter(c, error, SettleOptions("clips.dlq")) for c, _ in claims
            ]
            return any(letter is not None for letter in letters)

        acked, swept = await asyncio.gather(store.complete([message.claim]), sweep())
        assert bool(acked) != swept, (acked, swept)
        final = await harness.state(job)
        assert final == (("completed", 1) if acked else ("failed", 1))
        assert (await harness.state(job, "clips.dlq") is not None) == swept


async def test_retention_runs_once_at_a_time_and_leaks_no_advisory_lock(
    harness: Harness, db_url: str
) -> None:
    await sql(
        db_url,
        "INSERT INTO clipper_queue.messages (queue, job_id, priority, state, max_attempts,"
        " finished_at) SELECT 'clips', gen_random_uuid(), 1, 'completed', 3,"
        " now() - interval '100 hours' FROM generate_series(1, 3000)",
    )
    adapters = [await harness.adapter(retention_batch_size=100) for _ in range(4)]
    results = await asyncio.gather(*(adapter.run_retention() for adapter in adapters))
    assert sum(result.deleted for result in results) == 3000
    assert await count_state(db_url, "completed") == 0
    locks = await sql(db_url, "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'")
    assert locks == [(0,)]


async def test_dead_letter_hook_commits_with_the_move_in_the_applications_transaction(
    harness: Harness, db_url: str
) -> None:
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import AsyncConnection

    from clipper.queue import DeadLetter, PermanentError

    await sql(db_url, "CREATE TABLE failures (job_id uuid PRIMARY KEY)")
    engine = create_async_engine(sqlalchemy_url(db_url))
    calls = 0

    async def hook(letter: DeadLetter, conn: AsyncConnection) -> None:
        nonlocal calls
        calls += 1
        await conn.execute(text("INSERT INTO failures VALUES (:j)"), {"j": letter.job_id})
        if calls == 1:
            raise RuntimeError("the application's write failed once")

    async def fail(message: ReceivedMessage, context: JobContext) -> None:
        raise PermanentError("bad input")

    adapter = await harness.adapter()
    job = uuid.uuid4()
    await adapter.publish(QueueMessage(job))
    try:
        adapter.consume(fail, on_dead_letter=hook, transaction=engine.begin)
        await wait_for(lambda: _failed(harness, job), message="dead-lettered")
        assert calls == 2  # the first try rolled back whole, the second committed
        assert await sql(db_url, "SELECT job_id FROM failures") == [(job,)]
        assert await harness.state(job, "clips.dlq") == ("ready", 0)
    finally:
        await engine.dispose()


async def _failed(harness: Harness, job: uuid.UUID) -> bool:
    state = await harness.state(job)
    return state is not None and state[0] == "failed"
