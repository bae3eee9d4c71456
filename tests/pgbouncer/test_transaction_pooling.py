"""The queue engine and the application's engine through a real PgBouncer 1.18 in transaction
pooling mode: no prepared statement, server-side timeouts that still apply, LISTEN only on a
direct path (else poll-only), and NOTIFY through the pooler."""

from __future__ import annotations

import asyncio
import dataclasses
import time
import uuid
from typing import Any

import psycopg
import pytest
import sqlalchemy.exc
from sqlalchemy import text

from clipper.db.session import create_engine, session_factory
from clipper.queue import (
    ConnectionTimeouts,
    JobContext,
    QueueAdapter,
    QueueConfig,
    QueueMessage,
    ReceivedMessage,
    connection_kwargs,
    ensure_role_timeouts,
)
from tests.helpers import wait_event, wait_for
from tests.pgbouncer.conftest import Stack
from tests.queue.conftest import fast_config

TIMEOUTS = ConnectionTimeouts(
    statement_seconds=1.0, lock_seconds=0.5, idle_in_transaction_seconds=2.0
)
EXPECTED = {
    "statement_timeout": "1000",
    "lock_timeout": "500",
    "idle_in_transaction_session_timeout": "2000",
}


def pooled_config(**overrides: Any) -> QueueConfig:
    return dataclasses.replace(fast_config(pooler="transaction", timeouts=TIMEOUTS), **overrides)


def pooled_kwargs() -> dict[str, Any]:
    return {**connection_kwargs(TIMEOUTS, "transaction"), "autocommit": True}


async def server_timeouts(conn: psycopg.AsyncConnection[Any]) -> dict[str, str]:
    cursor = await conn.execute(
        "SELECT name, setting FROM pg_settings WHERE name = ANY(%s)", [list(EXPECTED)]
    )
    return {name: setting for name, setting in await cursor.fetchall()}


async def started(url: str, config: QueueConfig) -> QueueAdapter:
    adapter = QueueAdapter(url, config)
    await adapter.start()
    return adapter


class Pickups:
    """A handler that records when each message reached it."""

    def __init__(self) -> None:
        self.at: dict[uuid.UUID, float] = {}
        self.arrived = asyncio.Event()

    async def __call__(self, message: ReceivedMessage, context: JobContext) -> None:
        self.at[message.job_id] = time.monotonic()
        self.arrived.set()

    async def latency(self, adapter: QueueAdapter, publish: Any = None) -> float:
        """Seconds from publishing one message (by `publish`, else the adapter) to pickup."""
        job = uuid.uuid4()
        self.arrived.clear()
        sent = time.monotonic()
        if publish is None:
            await adapter.publish(QueueMessage(job))
        else:
            await publish(job)
        await wait_for(lambda: job in self.at, timeout=40, message="pickup")
        return self.at[job] - sent


# --- prepared statements and startup options ------------------------------------------------


def _alternate_two_clients(url: str, **kwargs: Any) -> None:
    """Two clients, one server connection, each running its own statement ten times."""
    with (
        psycopg.connect(url, autocommit=True, **kwargs) as a,
        psycopg.connect(url, autocommit=True, **kwargs) as b,
    ):
        for i in range(10):
            a.execute("SELECT %s::int + 1", [i])
            b.execute("SELECT %s::text || 'x'", [str(i)])


async def test_pooler_mode_prepares_nothing_where_psycopgs_default_collides(
    one_connection_stack: Stack,
) -> None:
    url = one_connection_stack.pooled_url
    # psycopg's default: the fifth run prepares "_pg3_0" on the shared server connection,
    # where the other client's "_pg3_0" already is.
    with pytest.raises(psycopg.errors.DuplicatePreparedStatement):
        _alternate_two_clients(url, prepare_threshold=5)
    _alternate_two_clients(url, **connection_kwargs(TIMEOUTS, "transaction"))

    engine = create_engine(url, pool_size=2, timeouts=TIMEOUTS, pooler="transaction")
    sessions = session_factory(engine)
    try:
        async with sessions() as first, sessions() as second:
            for i in range(10):
                for session, statement in ((first, "SELECT :n + 1"), (second, "SELECT :n * 2")):
                    await session.execute(text(statement), {"n": i})
                    await session.commit()  # gives the server connection back to the pooler
    finally:
        await engine.dispose()


async def test_a_pooler_refuses_startup_options_so_a_forgotten_setting_is_loud(
    stack: Stack,
) -> None:
    # DATABASE_POOLER unset behind PgBouncer: the timeouts' startup options are refused at
    # connect time (not dropped), so the mistake cannot go unnoticed.
    with pytest.raises(psycopg.OperationalError, match="unsupported startup parameter: options"):
        psycopg.connect(stack.pooled_url, **connection_kwargs(TIMEOUTS)).close()
    engine = create_engine(stack.pooled_url, timeouts=TIMEOUTS)
    try:
        with pytest.raises(sqlalchemy.exc.OperationalError, match="unsupported startup parameter"):
            async with engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
    finally:
        await engine.dispose()


# --- server-side timeouts -------------------------------------------------------------------


async def test_server_timeouts_apply_through_pgbouncer(stack: Stack) -> None:
    adapter = await started(stack.pooled_url, pooled_config())  # sets the role's defaults
    engine = create_engine(stack.pooled_url, timeouts=TIMEOUTS, pooler="transaction")
    try:
        conn = await psycopg.AsyncConnection.connect(stack.pooled_url, **pooled_kwargs())
        async with conn:
            assert await server_timeouts(conn) == EXPECTED
            with pytest.raises(psycopg.errors.QueryCanceled):
                await conn.execute("SELECT pg_sleep(5)")  # 1 s statement_timeout
            await conn.execute("DISCARD ALL")  # a pooler's reset query: defaults stay
            assert await server_timeouts(conn) == EXPECTED
        async with engine.connect() as connection:  # the application's engine
            with pytest.raises(sqlalchemy.exc.OperationalError) as raised:
                await connection.execute(text("SELECT pg_sleep(5)"))
            assert isinstance(raised.value.orig, psycopg.errors.QueryCanceled)

        # A transaction left idle: the server ends its session after 2 s.
        idle = await psycopg.AsyncConnection.connect(stack.pooled_url, **pooled_kwargs())
        await idle.execute("BEGIN")
        row = await (await idle.execute("SELECT pg_backend_pid()")).fetchone()
        assert row is not None
        with psycopg.connect(stack.cluster.url("clipper"), autocommit=True) as watcher:
            await wait_for(
                lambda: (
                    not watcher.execute(
                        "SELECT 1 FROM pg_stat_activity WHERE pid = %s", [row[0]]
                    ).fetchone()
                ),
                timeout=15,
                message="the idle transaction's session ended by the server",
            )
        await idle.close()
    finally:
        await engine.dispose()
        await adapter.shutdown()


async def _role_defaults(stack: Stack) -> set[str]:
    conn = await psycopg.AsyncConnection.connect(stack.cluster.url("clipper"), autocommit=True)
    async with conn:
        cursor = await conn.execute(
            "SELECT unnest(setconfig) FROM pg_db_role_setting WHERE setrole = 'clipper'::regrole"
            " AND setdatabase = (SELECT oid FROM pg_database WHERE datname = 'clipper')"
        )
        return {entry for (entry,) in await cursor.fetchall()}


async def test_many_processes_starting_at_once_write_the_role_defaults_once(
    stack: Stack,
) -> None:
    adapters = [QueueAdapter(stack.pooled_url, pooled_config()) for _ in range(6)]
    await asyncio.gather(*(adapter.start() for adapter in adapters))
    try:
        assert await _role_defaults(stack) == {f"{k}={v}" for k, v in EXPECTED.items()}
        again = await adapters[0].store.ensure_role_timeouts()
        assert (again.role, again.database, again.changed) == ("clipper", "clipper", False)
        # New settings win on the next start.
        longer = dataclasses.replace(TIMEOUTS, statement_seconds=2.0)
        changed = await started(stack.pooled_url, pooled_config(timeouts=longer))
        adapters.append(changed)
        assert "statement_timeout=2000" in await _role_defaults(stack)
    finally:
        await asyncio.gather(*(adapter.shutdown() for adapter in adapters))


async def test_server_connections_opened_before_the_defaults_are_replaced(
    one_connection_stack: Stack,
) -> None:
    url = one_connection_stack.pooled_url
    early = await psycopg.AsyncConnection.connect(url, **pooled_kwargs())
    async with early:
        # The pooler's only server connection, opened while the role had no defaults.
        assert (await server_timeouts(early))["statement_timeout"] == "0"
        result = await ensure_role_timeouts(url, TIMEOUTS, **pooled_kwargs())
        assert result.changed
        assert result.session_was_stale
        assert (result.stale_ended, result.stale_left) == (1, 0)
        # The same client: the pooler gave it a fresh server connection, with the defaults,
        # which a reset cannot take away (a SET on the old session would not survive it).
        await early.execute("DISCARD ALL")
        assert await server_timeouts(early) == EXPECTED

        adapter = await started(url, pooled_config())
        try:
            again = await adapter.store.ensure_role_timeouts()
            assert (again.changed, again.session_was_stale) == (False, False)
            pickups = Pickups()
            adapter.consume(pickups, concurrency=4)
            jobs = [uuid.uuid4() for _ in range(20)]
            for job in jobs:
                await adapter.publish(QueueMessage(job))
            await wait_for(lambda: set(jobs) <= pickups.at.keys(), timeout=20, message="all")
        finally:
            await adapter.shutdown()


# --- LISTEN, NOTIFY and poll-only -----------------------------------------------------------


async def test_a_publish_through_pgbouncer_wakes_a_consumer_listening_directly(
    stack: Stack,
) -> None:
    # Polling every 30 s: a pickup within seconds can only be the NOTIFY's doing.
    consumer_side = await started(
        stack.pooled_url,
        pooled_config(listen_url=stack.direct_url, poll_interval_seconds=30, visibility_seconds=40),
    )
    publisher = await started(stack.pooled_url, pooled_config())
    engine = create_engine(stack.pooled_url, timeouts=TIMEOUTS, pooler="transaction")
    sessions = session_factory(engine)

    async def in_application_transaction(job: uuid.UUID) -> None:
        async with sessions() as session, session.begin():  # the API's path: NOTIFY at commit
            await publisher.publish(QueueMessage(job), conn=session)

    try:
        pickups = Pickups()
        consumer_side.consume(pickups)
        await wait_event(consumer_side.listener.connected, what="listening")
        latencies = [await pickups.latency(publisher) for _ in range(3)]
        latencies += [
            await pickups.latency(publisher, in_application_transaction) for _ in range(3)
        ]
        assert max(latencies) < 5, latencies
        assert (await consumer_side.health()).listener
    finally:
        await engine.dispose()
        await consumer_side.shutdown()
        await publisher.shutdown()


async def test_without_a_listen_url_the_queue_polls_and_never_listens(stack: Stack) -> None:
    consumer_side = await started(stack.pooled_url, pooled_config(poll_interval_seconds=0.5))
    try:
        pickups = Pickups()
        consumer_side.consume(pickups)
        assert not consumer_side.listener.started
        health = await consumer_side.health()
        assert health.listener
        assert "poll-only" in health.detail["listener"]
        latencies = [await pickups.latency(consumer_side) for _ in range(3)]
        assert max(latencies) < 0.5 + 2.0, latencies  # the poll interval, and slack
        with psycopg.connect(stack.cluster.url("clipper"), autocommit=True) as direct:
            listeners = direct.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE query ILIKE 'LISTEN%%'"
                " OR application_name = 'clipper-queue-listener'"
            ).fetchone()
        assert listeners == (0,)
    finally:
        await consumer_side.shutdown()
