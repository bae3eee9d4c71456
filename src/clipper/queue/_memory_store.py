"""The in-memory store: the same observable semantics as PostgreSQL, for tests of the code
above the queue. It is held to the same contract tests; it is not durable and not shared
between processes.
"""

from __future__ import annotations

import itertools
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from ._backend import DeadLetterEntry, SettleOptions, Wakeups
from ._message import (
    Claim,
    DeadLetter,
    ErrorInfo,
    JsonObject,
    Priority,
    QueueDepth,
    QueueMessage,
    ReceivedMessage,
    RetryNotice,
)


@dataclass(slots=True)
class _Row:
    id: int
    queue: str
    job_id: uuid.UUID
    priority: Priority
    payload: JsonObject | None
    max_attempts: int
    run_after: float
    created_at: float
    state: str = "ready"
    attempts: int = 0
    lease_token: uuid.UUID | None = None
    lease_until: float = 0.0
    last_error: ErrorInfo | None = None
    finished_at: float | None = None


class MemoryStore:
    def __init__(self, dead_letter_max_attempts: int, clock: Callable[[], float] = time.time):
        self._clock = clock
        self._dead_letter_max_attempts = dead_letter_max_attempts
        self._rows: dict[int, _Row] = {}
        self._by_job: dict[tuple[str, uuid.UUID], int] = {}
        self._ids = itertools.count(1)
        self.wakeups = Wakeups()

    def _insert(self, queue: str, message: QueueMessage, max_attempts: int, delay: float) -> None:
        now = self._clock()
        row = _Row(
            next(self._ids),
            queue,
            message.job_id,
            message.priority,
            message.payload,
            max_attempts,
            run_after=now + delay,
            created_at=now,
        )
        self._rows[row.id] = row
        self._by_job[(queue, message.job_id)] = row.id
        self.wakeups.notify(queue)

    async def publish(
        self, queue: str, message: QueueMessage, *, max_attempts: int, delay: float, conn: Any
    ) -> bool:
        if conn is not None:
            raise TypeError("the in-memory queue has no transactions: publish without conn=")
        if (queue, message.job_id) in self._by_job:
            return False
        self._insert(queue, message, max_attempts, delay)
        return True

    def _held(self, claim: Claim) -> _Row | None:
        row = self._rows.get(claim.message_id)
        if row is None or row.state != "active" or row.lease_token != claim.lease_token:
            return None
        return row

    async def claim(self, queue: str, limit: int, visibility: float) -> list[ReceivedMessage]:
        now = self._clock()
        runnable = [
            row
            for row in self._rows.values()
            if row.queue == queue
            and (
                (row.state == "ready" and row.run_after <= now)
                or (
                    row.state == "active"
                    and row.lease_until <= now
                    and row.attempts < row.max_attempts
                )
            )
        ]
        runnable.sort(key=lambda row: (row.priority.rank, row.id))
        claimed = []
        for row in runnable[:limit]:
            pickup_delay = max(0.0, now - row.run_after)
            row.state, row.attempts = "active", row.attempts + 1
            row.lease_token, row.lease_until = uuid.uuid4(), now + visibility
            claimed.append(
                ReceivedMessage(
                    queue=queue,
                    job_id=row.job_id,
                    priority=row.priority,
                    payload=row.payload,
                    attempt=row.attempts,
                    max_attempts=row.max_attempts,
                    enqueued_at=_datetime(row.created_at),
                    claim=Claim(row.id, row.lease_token),
                    pickup_delay=pickup_delay,
                )
            )
        return claimed

    async def claim_expired_final(self, queue: str, limit: int, visibility: float) -> list[Claim]:
        now = self._clock()
        claims: list[Claim] = []
        for row in self._rows.values():
            if (
                row.queue == queue
                and row.state == "active"
                and row.lease_until <= now
                and row.attempts >= row.max_attempts
                and len(claims) < limit
            ):
                row.lease_token, row.lease_until = uuid.uuid4(), now + visibility
                claims.append(Claim(row.id, row.lease_token))
        return claims

    async def complete(self, claims: Sequence[Claim]) -> set[int]:
        done = set()
        for claim in claims:
            if row := self._held(claim):
                row.state, row.finished_at, row.lease_token = "completed", self._clock(), None
                done.add(row.id)
        return done

    async def complete_in(self, claim: Claim, conn: Any) -> bool:
        """Memory has no transactions to join: the acknowledgement takes effect at once,
        whatever becomes of the caller's transaction."""
        return bool(await self.complete([claim]))

    async def extend(self, claims: Sequence[Claim], seconds: float) -> set[int]:
        held = set()
        for claim in claims:
            if row := self._held(claim):
                row.lease_until = self._clock() + seconds
                held.add(row.id)
        return held

    async def release(self, claims: Sequence[Claim]) -> set[int]:
        released = set()
        for claim in claims:
            if row := self._held(claim):
                row.state, row.attempts, row.run_after = "ready", row.attempts - 1, self._clock()
                row.lease_token = None
                released.add(row.id)
                self.wakeups.notify(row.queue)
        return released

    async def retry(
        self, claim: Claim, delay: float, error: ErrorInfo, options: SettleOptions
    ) -> RetryNotice | None:
        row = self._held(claim)
        if row is None:
            return None
        run_after = self._clock() + delay
        notice = RetryNotice(row.job_id, row.attempts, error, _datetime(run_after))
        if options.on_retry is not None:
            hook = options.on_retry
            await _in_transaction(options, lambda conn: hook(notice, conn))
        row.state, row.run_after = "ready", run_after
        row.lease_token, row.last_error = None, error
        self.wakeups.notify(row.queue)
        return notice

    async def dead_letter(
        self, claim: Claim, error: ErrorInfo, options: SettleOptions
    ) -> DeadLetter | None:
        row = self._held(claim)
        if row is None:
            return None
        now = self._clock()
        letter = DeadLetter(
            source_queue=row.queue,
            job_id=row.job_id,
            priority=row.priority,
            payload=row.payload,
            attempts=row.attempts,
            error=error,
            enqueued_at=_datetime(row.created_at),
            failed_at=_datetime(now),
        )
        if options.on_dead_letter is not None:
            hook = options.on_dead_letter
            await _in_transaction(options, lambda conn: hook(letter, conn))
        dead_letter_queue = options.dead_letter_queue
        row.state, row.finished_at, row.lease_token, row.last_error = "failed", now, None, error
        if dead_letter_queue is not None:
            self._drop(dead_letter_queue, row.job_id)
            self._insert(
                dead_letter_queue,
                QueueMessage(row.job_id, row.priority, letter.as_json()),
                self._dead_letter_max_attempts,
                0.0,
            )
        return letter

    def _drop(self, queue: str, job_id: uuid.UUID) -> None:
        row_id = self._by_job.pop((queue, job_id), None)
        if row_id is not None:
            del self._rows[row_id]

    async def next_due(self, queue: str) -> float | None:
        times = [
            row.run_after if row.state == "ready" else row.lease_until
            for row in self._rows.values()
            if row.queue == queue and row.state in ("ready", "active")
        ]
        return max(0.0, min(times) - self._clock()) if times else None

    async def depth(self) -> list[QueueDepth]:
        return self.depth_now()

    def depth_now(self) -> list[QueueDepth]:
        """Synchronous, for the metrics scrape (which cannot await)."""
        now = self._clock()
        by_queue: dict[str, QueueDepth] = {}
        for row in self._rows.values():
            if row.state not in ("ready", "active"):
                continue
            depth = by_queue.get(row.queue) or QueueDepth(row.queue)
            if row.state == "active":
                depth = replace(depth, active=depth.active + 1)
            elif row.run_after > now:
                depth = replace(depth, scheduled=depth.scheduled + 1)
            else:
                age = max(depth.oldest_ready_age_seconds, now - row.run_after)
                depth = replace(depth, ready=depth.ready + 1, oldest_ready_age_seconds=age)
            by_queue[row.queue] = depth
        return [by_queue[queue] for queue in sorted(by_queue)]

    async def delete_finished(self, retention_hours: float, batch_size: int) -> int | None:
        horizon = self._clock() - retention_hours * 3600
        doomed = [
            row
            for row in self._rows.values()
            if row.finished_at is not None and row.finished_at < horizon
        ][:batch_size]
        for row in doomed:
            self._drop(row.queue, row.job_id)
        return len(doomed)

    async def list_dead_letters(self, dead_letter_queue: str, limit: int) -> list[DeadLetterEntry]:
        rows = sorted(
            (row for row in self._rows.values() if row.queue == dead_letter_queue),
            key=lambda row: row.id,
        )[:limit]
        return [
            DeadLetterEntry(
                row.job_id,
                DeadLetter.from_payload(row.job_id, row.priority, row.payload or {}),
                row.state,
            )
            for row in rows
        ]

    async def redrive(
        self,
        dead_letter_queue: str,
        source_queue: str,
        job_ids: Sequence[uuid.UUID] | None,
        limit: int,
        max_attempts: int,
    ) -> list[uuid.UUID]:
        revived: list[uuid.UUID] = []
        for entry in await self.list_dead_letters(dead_letter_queue, 2**31):
            if len(revived) >= limit or entry.state == "active":
                continue
            if job_ids is not None and entry.job_id not in job_ids:
                continue
            source_id = self._by_job.get((source_queue, entry.job_id))
            source = self._rows.get(source_id) if source_id is not None else None
            if source is not None and source.state != "failed":
                continue
            self._drop(source_queue, entry.job_id)
            message = QueueMessage(entry.job_id, entry.letter.priority, entry.letter.payload)
            self._insert(source_queue, message, max_attempts, 0.0)
            self._drop(dead_letter_queue, entry.job_id)
            revived.append(entry.job_id)
        return revived

    async def requeue(
        self,
        queue: str,
        dead_letter_queue: str,
        message: QueueMessage,
        *,
        max_attempts: int,
        conn: Any,
    ) -> bool:
        if conn is not None:
            raise TypeError("the in-memory queue has no transactions: requeue without conn=")
        row_id = self._by_job.get((queue, message.job_id))
        if row_id is not None and self._rows[row_id].state not in ("completed", "failed"):
            return False
        self._drop(queue, message.job_id)
        self._drop(dead_letter_queue, message.job_id)
        self._insert(queue, message, max_attempts, 0.0)
        return True

    async def ping(self) -> bool:
        return True


async def _in_transaction(options: SettleOptions, hook: Callable[[Any], Awaitable[None]]) -> None:
    """Run an application hook as PostgreSQL would: in the application's transaction when it
    gave one (else with no connection). Raising leaves the message as it was, like a rollback."""
    if options.transaction is None:
        await hook(None)
        return
    async with options.transaction() as connection:
        await hook(connection)


def _datetime(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, tz=UTC)
