"""The PostgreSQL store: runs the queries of sql/queries.sql and returns typed values.

This is the only module of the queue package that talks to the database (the listener only
LISTENs). Connections come from a psycopg pool in autocommit mode: each statement is its own
short transaction unless a method opens one explicitly.
"""

from __future__ import annotations

import asyncio
import uuid
import zlib
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Literal, TypeVar

import psycopg
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

from ._deadlines import ConnectionTimeouts, bounded, on_connection_within
from ._hooks import DeadLetterEntry, SettleOptions, Wakeups
from ._message import (
    Claim,
    DeadLetter,
    ErrorInfo,
    PriorityDepth,
    QueueDepth,
    QueueMessage,
    QueueStats,
    ReceivedMessage,
    RetryNotice,
    WorkerInfo,
)
from ._pooling import Pooler, RoleTimeouts, connection_kwargs, ensure_role_timeouts
from ._sql import cancel_channel, load_queries, notify_channel

T = TypeVar("T")
# How long a start waits for the sessions that predate new role defaults to end (_pooling.py).
_STALE_DEADLINE_SECONDS = 5.0
Connection = psycopg.AsyncConnection[Any]


def engine_connection_kwargs(
    timeouts: ConnectionTimeouts, pooler: Pooler | None = None
) -> dict[str, Any]:
    """Settings of every connection the engine opens (never of a caller's connection): the
    deadlines of _deadlines.py, autocommit, and generic plans. The engine's statements are
    prepared after a few runs; with plan_cache_mode=auto PostgreSQL kept re-planning them
    with custom plans, doubling the cost of a claim (0.37 -> 0.19 ms measured). Their plans
    do not depend on the parameter values, so the generic plan is always right. Behind a
    transaction pooler nothing is prepared (so the plan cache mode does not matter) and no
    startup option is sent: see _pooling.py."""
    return {
        **connection_kwargs(timeouts, pooler, options="-c plan_cache_mode=force_generic_plan"),
        "autocommit": True,
    }


class ConnectFailedError(psycopg.OperationalError):
    """No new connection could be made: the database is unreachable, not one connection dead
    (so trying again at once, on another, cannot help)."""


class Lane:
    """One connection held for a sequential hot path: publishing, claiming, acknowledging.

    Hand-written because psycopg_pool's checkout and return cost ~80 us per statement on the
    reference machine (a publish ran at 1,976/s through the pool and 2,522/s on a held
    connection), which is a third of a publish. A lane that is busy (concurrent callers) or
    not yet connected is simply skipped in favour of the pool, so it never queues anyone.
    """

    def __init__(self, conninfo: str, name: str, connection_kwargs: dict[str, Any]) -> None:
        self._conninfo = conninfo
        self._name = name
        self._connection_kwargs = connection_kwargs
        self._lock = asyncio.Lock()
        self._connection: Connection | None = None

    @property
    def busy(self) -> bool:
        return self._lock.locked()

    async def run(self, work: Callable[[Connection], Awaitable[T]]) -> T:
        async with self._lock:
            if self._connection is None or self._connection.closed:
                try:
                    self._connection = await psycopg.AsyncConnection.connect(
                        self._conninfo,
                        application_name=f"clipper-queue-{self._name}",
                        **self._connection_kwargs,
                    )
                except psycopg.OperationalError as exc:
                    raise ConnectFailedError(str(exc)) from exc
            try:
                return await work(self._connection)
            finally:
                if self._connection.broken:
                    self._connection = None

    async def close(self) -> None:
        async with self._lock:
            if self._connection is not None:
                await self._connection.close()
                self._connection = None


class PostgresStore:
    def __init__(
        self,
        pool: AsyncConnectionPool[Any],
        conninfo: str,
        schema: str,
        dead_letter_max_attempts: int,
        timeouts: ConnectionTimeouts,
        pooler: Pooler | None = None,
    ) -> None:
        self._pool = pool
        self._deadline = timeouts.statement_seconds
        self._timeouts = timeouts
        kwargs = engine_connection_kwargs(timeouts, pooler)
        self._conninfo = conninfo
        self._connection_kwargs = {**kwargs, "application_name": "clipper-queue-setup"}
        self._publish_lane = Lane(conninfo, "publish", kwargs)
        self._claim_lane = Lane(conninfo, "claim", kwargs)
        self._ack_lane = Lane(conninfo, "ack", kwargs)
        # Heartbeats and the claim loop's sweeps use lanes too, never only the pool: after a
        # network fault the pool backs off its reconnects (up to tens of seconds), while a
        # lane connects again on its next use, so leases and claims recover as soon as the
        # path to the database does.
        self._lease_lane = Lane(conninfo, "lease", kwargs)
        self._dead_letter_max_attempts = dead_letter_max_attempts
        self._schema = schema
        self._queries = load_queries(schema)
        self._channel = notify_channel(schema)
        self.cancel_channel = cancel_channel(schema)
        # One retention lock per schema, so two Clipper deployments in one database do not block.
        self._retention_lock_key = zlib.crc32(f"{schema}.retention".encode())
        self.wakeups = Wakeups()

    async def _with_connection(
        self, work: Callable[[Connection], Awaitable[T]], lane: Lane | None = None
    ) -> T:
        """Run `work` on the lane's connection when it is free, else on a pooled one; when
        that connection turns out to be dead (killed, or the server restarted while it sat
        idle), run it again on another, as many times as the pool has connections (they
        often die together, and each dead one fails at once). Every engine statement is safe
        to repeat:
        publish is ON CONFLICT DO NOTHING, settles are fenced by the lease token, and a
        transaction that failed rolled back whole. Each statement has the deadline: past it,
        TimeoutError (its connection is closed, see `on_connection_within`)."""

        async def bounded_work(conn: Connection) -> T:
            return await on_connection_within(conn, work(conn), self._deadline)

        tries = self._pool.max_size + 1
        for attempt in range(1, tries + 1):
            try:
                return await self._on_some_connection(bounded_work, lane)
            except psycopg.OperationalError as exc:
                if attempt == tries or not _connection_lost(exc):
                    raise
        raise AssertionError("unreachable")

    async def _on_some_connection(
        self, work: Callable[[Connection], Awaitable[T]], lane: Lane | None
    ) -> T:
        if lane is not None and not lane.busy:
            return await lane.run(work)
        async with self._pool.connection(timeout=self._deadline) as conn:
            return await work(conn)

    async def _execute(
        self, name: str, params: dict[str, Any], lane: Lane | None = None
    ) -> list[tuple[Any, ...]]:
        async def work(conn: Connection) -> list[tuple[Any, ...]]:
            cursor = await conn.execute(self._queries[name], params)
            return await cursor.fetchall() if cursor.description else []

        return await self._with_connection(work, lane)

    async def close(self) -> None:
        for lane in (self._publish_lane, self._claim_lane, self._ack_lane, self._lease_lane):
            await lane.close()

    async def _execute_in(
        self, name: str, params: dict[str, Any], conn: Any, lane: Lane | None = None
    ) -> list[tuple[Any, ...]]:
        """Run a query on the caller's connection (joining its transaction) when given one."""
        if conn is None:
            return await self._execute(name, params, lane)
        driver = await driver_connection(conn)
        cursor = await driver.execute(self._queries[name], params)
        return await cursor.fetchall() if cursor.description else []

    async def publish(
        self, queue: str, message: QueueMessage, *, max_attempts: int, delay: float, conn: Any
    ) -> bool:
        [turn] = [0] if message.group is None else await self._take_turns(queue, [message])
        params = {
            "queue": queue,
            "job_id": message.job_id,
            "priority": message.priority,
            "payload": None if message.payload is None else Jsonb(message.payload),
            "group": message.group,
            "turn": turn,
            "max_attempts": max_attempts,
            "delay": delay,
            "channel": self._channel,
        }
        return bool(await self._execute_in("publish", params, conn, self._publish_lane))

    async def _take_turns(self, queue: str, messages: Sequence[QueueMessage]) -> list[int]:
        """Each message's turn: 0 when it has no group; else its group's next, taken on the
        engine's own connection (see take_turns in queries.sql). Ungrouped batches cost no
        statement."""
        wanted = Counter(message.group for message in messages if message.group is not None)
        if not wanted:
            return [0] * len(messages)
        params = {"queue": queue, "groups": list(wanted), "turns": list(wanted.values())}
        rows = await self._execute("take_turns", params, self._publish_lane)
        # Each group's turns end at its new last turn: hand them out in batch order.
        next_turn = {group: last - wanted[group] + 1 for group, last in rows}
        turns = []
        for message in messages:
            if message.group is None:
                turns.append(0)
            else:
                turns.append(next_turn[message.group])
                next_turn[message.group] += 1
        return turns

    async def requeue(
        self,
        queue: str,
        dead_letter_queue: str,
        message: QueueMessage,
        *,
        max_attempts: int,
        conn: Any,
    ) -> bool:
        params = {
            "queue": queue,
            "dead_letter_queue": dead_letter_queue,
            "job_id": message.job_id,
            "priority": message.priority,
            "payload": None if message.payload is None else Jsonb(message.payload),
            "group": message.group,
            "max_attempts": max_attempts,
            "channel": self._channel,
        }
        return bool(await self._execute_in("requeue", params, conn))

    async def claim(
        self, queue: str, limit: int, visibility: float, group_cap: int | None = None
    ) -> list[ReceivedMessage]:
        """Claim up to `limit` messages; with `group_cap`, never more than that many active
        per group across every consumer of the database."""
        params = {"queue": queue, "limit": limit, "visibility": visibility, "group_cap": group_cap}
        if group_cap is None:
            rows = await self._execute("claim", params, self._claim_lane)
        else:
            rows = await self._with_connection(
                lambda conn: self._claim_capped(conn, params), self._claim_lane
            )
        return [
            ReceivedMessage(
                queue=queue,
                job_id=job_id,
                priority=priority,
                payload=payload,
                attempt=attempts,
                max_attempts=max_attempts,
                enqueued_at=created_at,
                claim=Claim(message_id, token),
                pickup_delay=max(0.0, pickup_delay),
                group=group,
            )
            for (
                message_id,
                token,
                job_id,
                priority,
                payload,
                attempts,
                max_attempts,
                created_at,
                pickup_delay,
                group,
            ) in rows
        ]

    async def _claim_capped(
        self, conn: Connection, params: dict[str, Any]
    ) -> list[tuple[Any, ...]]:
        """The claim after the queue's group lock: its statement's snapshot then holds every
        claim committed before, so the active counts it reads are current."""
        lock_key = zlib.crc32(f"{self._schema}.groups.{params['queue']}".encode())
        async with conn.transaction():
            await conn.execute(self._queries["lock_group_claims"], {"lock_key": lock_key})
            cursor = await conn.execute(self._queries["claim"], params)
            return await cursor.fetchall()

    async def claim_expired_final(
        self, queue: str, limit: int, visibility: float
    ) -> list[tuple[Claim, bool]]:
        """Expired attempts to end: each claim, and whether it was asked to cancel (else its
        attempts are used up)."""
        rows = await self._execute(
            "claim_expired_final",
            {"queue": queue, "limit": limit, "visibility": visibility},
            self._claim_lane,
        )
        return [(Claim(message_id, token), cancelling) for message_id, token, cancelling in rows]

    def _batch(self, claims: Sequence[Claim]) -> dict[str, Any]:
        return {
            "ids": [claim.message_id for claim in claims],
            "tokens": [claim.lease_token for claim in claims],
            "channel": self._channel,
        }

    async def complete(self, claims: Sequence[Claim]) -> set[int]:
        rows = await self._execute("complete", self._batch(claims), self._ack_lane)
        return {row[0] for row in rows}

    async def complete_in(self, claim: Claim, conn: Any) -> bool:
        """Acknowledge one attempt inside the caller's open transaction (fenced like every
        settle): it commits or rolls back with the caller's own writes."""
        rows = await self._execute_in("complete", self._batch([claim]), conn)
        return bool(rows)

    async def extend(self, claims: Sequence[Claim], seconds: float) -> dict[int, bool]:
        """The message ids still held, each with whether it was asked to cancel."""
        params = self._batch(claims) | {"seconds": seconds}
        rows = await self._execute("extend", params, self._lease_lane)
        return {message_id: cancelling for message_id, cancelling in rows}

    async def release(self, claims: Sequence[Claim]) -> set[int]:
        return {row[0] for row in await self._execute("release", self._batch(claims))}

    async def retry(
        self, claim: Claim, delay: float, error: ErrorInfo, options: SettleOptions
    ) -> RetryNotice | Literal["cancelled"] | None:
        """The retry scheduled; "cancelled" when the message was asked to cancel meanwhile
        (it ended so instead); None when the lease was lost."""
        params = {
            "id": claim.message_id,
            "token": claim.lease_token,
            "delay": delay,
            "error": Jsonb(error.as_json()),
            "channel": self._channel,
        }

        async def settle(
            conn: Connection, hook_connection: Any
        ) -> RetryNotice | Literal["cancelled"] | None:
            cursor = await conn.execute(self._queries["retry"], params)
            row = await cursor.fetchone()
            if row is None:
                return None
            job_id, attempts, run_after, state, _ = row
            if state == "cancelled":
                return "cancelled"
            notice = RetryNotice(job_id, attempts, error, run_after)
            if options.on_retry is not None:
                await options.on_retry(notice, hook_connection)
            return notice

        if options.on_retry is None:  # nothing to join: one autocommit statement
            return await self._with_connection(lambda conn: settle(conn, conn))
        return await self._in_transaction(settle, options)

    async def _in_transaction(
        self, settle: Callable[[Connection, Any], Awaitable[T]], options: SettleOptions
    ) -> T:
        """Run `settle` in the application's transaction when it gave one, else in ours."""
        if options.transaction is not None:
            async with options.transaction() as outer:
                driver = await driver_connection(outer)
                return await on_connection_within(driver, settle(driver, outer), self._deadline)

        async def work(conn: Connection) -> T:
            async with conn.transaction():
                return await settle(conn, conn)

        return await self._with_connection(work)

    async def dead_letter(
        self, claim: Claim, error: ErrorInfo, options: SettleOptions
    ) -> DeadLetter | None:
        params = {
            "id": claim.message_id,
            "token": claim.lease_token,
            "error": Jsonb(error.as_json()),
            "dead_letter_queue": options.dead_letter_queue,
            "dead_letter_max_attempts": self._dead_letter_max_attempts,
            "channel": self._channel,
        }

        async def settle(conn: Connection, hook_connection: Any) -> DeadLetter | None:
            cursor = await conn.execute(self._queries["dead_letter"], params)
            row = await cursor.fetchone()
            if row is None:
                return None
            queue, job_id, priority, payload, attempts, created_at, finished_at, group, *_ = row
            letter = DeadLetter(
                source_queue=queue,
                job_id=job_id,
                priority=priority,
                payload=payload,
                attempts=attempts,
                error=error,
                enqueued_at=created_at,
                failed_at=finished_at,
                group=group,
            )
            if options.on_dead_letter is not None:
                await options.on_dead_letter(letter, hook_connection)
            return letter

        return await self._in_transaction(settle, options)

    async def cancel_attempt(self, claim: Claim) -> bool:
        """End an attempt stopped by a cancel request; False when the lease was lost."""
        params = {"id": claim.message_id, "token": claim.lease_token}
        return bool(await self._execute("cancel_attempt", params))

    async def cancel(self, queue: str, job_id: uuid.UUID, conn: Any = None) -> str | None:
        """Cancel a message; the state it was in, or None when the queue has no such job."""
        params = {"queue": queue, "job_id": job_id, "cancel_channel": self.cancel_channel}
        rows = await self._execute_in("cancel", params, conn)
        return str(rows[0][0]) if rows else None

    async def publish_many(
        self,
        queue: str,
        messages: Sequence[QueueMessage],
        *,
        max_attempts: int,
        delay: float,
        conn: Any,
    ) -> list[uuid.UUID]:
        params = {
            "queue": queue,
            "job_ids": [message.job_id for message in messages],
            "priorities": [message.priority for message in messages],
            "payloads": [None if m.payload is None else Jsonb(m.payload) for m in messages],
            "groups": [message.group for message in messages],
            "turns": await self._take_turns(queue, messages),
            "max_attempts": max_attempts,
            "delay": delay,
            "channel": self._channel,
        }
        return [row[0] for row in await self._execute_in("publish_many", params, conn)]

    async def set_paused(self, queue: str, paused: bool) -> None:
        params = {"queue": queue, "paused": paused, "channel": self._channel}
        await self._execute("set_paused", params)

    async def paused_queues(self) -> list[str]:
        return [row[0] for row in await self._execute("paused_queues", {})]

    async def stats(self, queue: str | None, minutes: int) -> list[QueueStats]:
        rows = await self._execute("stats", {"queue": queue, "minutes": minutes})
        return [QueueStats(*row) for row in rows]

    async def prune_stats(self, days: float) -> int:
        async def work(conn: Connection) -> int:
            cursor = await conn.execute(self._queries["prune_stats"], {"days": days})
            return cursor.rowcount

        return await self._with_connection(work)

    async def next_due(self, queue: str) -> float | None:
        rows = await self._execute("next_due", {"queue": queue}, self._claim_lane)
        seconds = rows[0][0] if rows else None
        return None if seconds is None else max(0.0, float(seconds))

    async def depth(self) -> list[QueueDepth]:
        rows = await self._execute("depth", {})
        return [
            QueueDepth(queue, ready, scheduled, active, oldest)
            for queue, ready, scheduled, active, oldest in rows
        ]

    async def depth_by_priority(self) -> list[PriorityDepth]:
        rows = await self._execute("depth_by_priority", {})
        return [PriorityDepth(*row) for row in rows]

    async def register_worker(
        self,
        worker_id: uuid.UUID,
        *,
        host: str,
        pid: int,
        version: str,
        queues: Sequence[str],
        concurrency: int,
        running: Sequence[uuid.UUID],
    ) -> None:
        """Register the worker, or heartbeat it (its queues and running jobs brought up to
        date). From the pool, never the lease lane: a beat hung on a dead connection must
        not hold up the leases' heartbeat, which must notice the loss in time."""
        params = {
            "id": worker_id,
            "host": host,
            "pid": pid,
            "version": version,
            "queues": list(queues),
            "concurrency": concurrency,
            "running": list(running),
        }
        await self._execute("register_worker", params)

    async def deregister_worker(self, worker_id: uuid.UUID) -> None:
        await self._execute("deregister_worker", {"id": worker_id})

    async def workers(self, stale_seconds: float) -> list[WorkerInfo]:
        rows = await self._execute("workers", {"stale_seconds": stale_seconds})
        return [
            WorkerInfo(
                worker_id,
                host,
                pid,
                version,
                tuple(queues),
                concurrency,
                tuple(running),
                started_at,
                heartbeat_at,
            )
            for (
                worker_id,
                host,
                pid,
                version,
                queues,
                concurrency,
                running,
                started_at,
                heartbeat_at,
            ) in rows
        ]

    async def prune_workers(self, stale_seconds: float) -> int:
        async def work(conn: Connection) -> int:
            cursor = await conn.execute(
                self._queries["prune_workers"], {"stale_seconds": stale_seconds}
            )
            return cursor.rowcount

        return await self._with_connection(work)

    async def delete_finished(self, retention_hours: float, batch_size: int) -> int | None:
        async def work(conn: Connection) -> int | None:
            async with conn.transaction():
                cursor = await conn.execute(
                    self._queries["try_retention_lock"], {"lock_key": self._retention_lock_key}
                )
                row = await cursor.fetchone()
                if not (row and row[0]):
                    return None
                cursor = await conn.execute(
                    self._queries["delete_finished"],
                    {"retention_hours": retention_hours, "batch": batch_size},
                )
                return cursor.rowcount

        return await self._with_connection(work)

    async def list_dead_letters(self, dead_letter_queue: str, limit: int) -> list[DeadLetterEntry]:
        rows = await self._execute(
            "list_dead_letters",
            {"dead_letter_queue": dead_letter_queue, "after_id": 0, "limit": limit},
        )
        entries = []
        for job_id, priority, payload, state, _created_at in rows:
            letter = DeadLetter.from_payload(job_id, priority, payload)
            entries.append(DeadLetterEntry(job_id, letter, state))
        return entries

    async def redrive(
        self,
        dead_letter_queue: str,
        source_queue: str,
        job_ids: Sequence[uuid.UUID] | None,
        limit: int,
        max_attempts: int,
    ) -> list[uuid.UUID]:
        rows = await self._execute(
            "redrive",
            {
                "dead_letter_queue": dead_letter_queue,
                "source_queue": source_queue,
                "job_ids": None if job_ids is None else list(job_ids),
                "limit": limit,
                "max_attempts": max_attempts,
                "channel": self._channel,
            },
        )
        return [row[0] for row in rows]

    async def ensure_role_timeouts(self) -> RoleTimeouts:
        """The server-side timeouts as the role's defaults (transaction pooling: _pooling.py)."""
        # Connections of its own, not the pool's: one of them may end its own session.
        return await bounded(
            ensure_role_timeouts(
                self._conninfo,
                self._timeouts,
                stale_deadline_seconds=_STALE_DEADLINE_SECONDS,
                **self._connection_kwargs,
            ),
            self._deadline * 2 + _STALE_DEADLINE_SECONDS,
        )

    async def ping(self) -> bool:
        await self._execute("ping", {})
        return True


def _connection_lost(exc: psycopg.OperationalError) -> bool:
    """The error came from a dead connection (not from the statement itself, and not from
    failing to connect at all)."""
    if isinstance(exc, ConnectFailedError):
        return False
    return isinstance(exc, psycopg.errors.AdminShutdown | psycopg.errors.ConnectionFailure) or (
        exc.sqlstate is None
    )


async def driver_connection(conn: Any) -> psycopg.AsyncConnection[Any]:
    """The psycopg connection behind a caller's psycopg or SQLAlchemy async connection/session.

    Publishing on it joins the caller's open transaction: the message commits or rolls back
    with the caller's own writes.
    """
    if isinstance(conn, psycopg.AsyncConnection):
        return conn
    # Imported here so the queue works without SQLAlchemy for callers that never pass one.
    from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

    if isinstance(conn, AsyncSession):
        conn = await conn.connection()
    if isinstance(conn, AsyncConnection):
        raw = await conn.get_raw_connection()
        driver = raw.driver_connection
        if isinstance(driver, psycopg.AsyncConnection):
            return driver
        raise TypeError(
            "publish(conn=...) needs SQLAlchemy on the psycopg driver (postgresql+psycopg://), "
            f"got {type(driver).__name__}"
        )
    raise TypeError(
        "publish(conn=...) takes a psycopg.AsyncConnection or a SQLAlchemy AsyncConnection / "
        f"AsyncSession, got {type(conn).__name__}"
    )
