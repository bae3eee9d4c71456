"""The storage seam: what the consumer needs from a queue store (PostgreSQL or in-memory).

Both stores implement this protocol and are held to one contract test-suite, so the consumer,
retry and dead-letter logic above it is written once.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any, Protocol

from ._message import (
    Claim,
    DeadLetter,
    ErrorInfo,
    QueueDepth,
    QueueMessage,
    ReceivedMessage,
    RetryNotice,
)

# Called inside the transaction that dead-letters a message, with that transaction's connection:
# the one `DeadLetterOptions.transaction` opened (e.g. a SQLAlchemy AsyncConnection), else the
# engine's own psycopg connection (None in memory). The application writes its own records
# there; if it raises, the dead-lettering rolls back and is tried again.
DeadLetterHook = Callable[[DeadLetter, Any], Awaitable[None]]
# Likewise inside the transaction that schedules a retry.
RetryHook = Callable[[RetryNotice, Any], Awaitable[None]]
# Opens the application's transaction for dead-lettering, e.g. `engine.begin` of SQLAlchemy
# (on psycopg): the queue's statement and the hook then commit together.
TransactionFactory = Callable[[], AbstractAsyncContextManager[Any]]


@dataclass(frozen=True, slots=True)
class SettleOptions:
    """How a consumer settles failed attempts: where dead letters go, and what the application
    writes in the same transaction as a dead-lettering or a retry."""

    dead_letter_queue: str | None
    on_dead_letter: DeadLetterHook | None = None
    on_retry: RetryHook | None = None
    transaction: TransactionFactory | None = None


@dataclass(frozen=True, slots=True)
class DeadLetterEntry:
    """One row of a dead-letter queue, for listing."""

    job_id: uuid.UUID
    letter: DeadLetter
    state: str


class QueueBackend(Protocol):
    wakeups: Wakeups

    async def publish(
        self, queue: str, message: QueueMessage, *, max_attempts: int, delay: float, conn: Any
    ) -> bool: ...

    async def claim(self, queue: str, limit: int, visibility: float) -> list[ReceivedMessage]: ...

    async def claim_expired_final(
        self, queue: str, limit: int, visibility: float
    ) -> list[Claim]: ...

    async def complete(self, claims: Sequence[Claim]) -> set[int]: ...

    async def complete_in(self, claim: Claim, conn: Any) -> bool: ...

    async def extend(self, claims: Sequence[Claim], seconds: float) -> set[int]: ...

    async def release(self, claims: Sequence[Claim]) -> set[int]: ...

    async def retry(
        self, claim: Claim, delay: float, error: ErrorInfo, options: SettleOptions
    ) -> RetryNotice | None: ...

    async def dead_letter(
        self, claim: Claim, error: ErrorInfo, options: SettleOptions
    ) -> DeadLetter | None: ...

    async def next_due(self, queue: str) -> float | None: ...

    async def depth(self) -> list[QueueDepth]: ...

    async def delete_finished(self, retention_hours: float, batch_size: int) -> int | None: ...

    async def list_dead_letters(
        self, dead_letter_queue: str, limit: int
    ) -> list[DeadLetterEntry]: ...

    async def redrive(
        self,
        dead_letter_queue: str,
        source_queue: str,
        job_ids: Sequence[uuid.UUID] | None,
        limit: int,
        max_attempts: int,
    ) -> list[uuid.UUID]: ...

    async def requeue(
        self,
        queue: str,
        dead_letter_queue: str,
        message: QueueMessage,
        *,
        max_attempts: int,
        conn: Any,
    ) -> bool: ...

    async def ping(self) -> bool: ...


class Wakeups:
    """Per-queue events that tell idle consumers to look again (a hint, never the only path)."""

    def __init__(self) -> None:
        self._events: dict[str, set[asyncio.Event]] = defaultdict(set)

    def subscribe(self, queue: str) -> asyncio.Event:
        event = asyncio.Event()
        self._events[queue].add(event)
        return event

    def unsubscribe(self, queue: str, event: asyncio.Event) -> None:
        self._events[queue].discard(event)

    def notify(self, queue: str) -> None:
        for event in self._events.get(queue, ()):
            event.set()

    def notify_all(self) -> None:
        for events in self._events.values():
            for event in events:
                event.set()
