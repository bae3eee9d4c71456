"""What the application hooks into settling, and the wake-up signals consumers wait on."""

from __future__ import annotations

import asyncio
import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any

from ._message import (
    DeadLetter,
    RetryNotice,
)

# Called inside the transaction that dead-letters a message, with that transaction's connection:
# the one `SettleOptions.transaction` opened (e.g. a SQLAlchemy AsyncConnection), else the
# engine's own psycopg connection. The application writes its own records
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


class Wakeups:
    """Per-queue events that tell idle consumers to look again (a hint, never the only path),
    and the requests to stop a running attempt (by message id) that a cancel sends."""

    def __init__(self) -> None:
        self._events: dict[str, set[asyncio.Event]] = defaultdict(set)
        self._cancel_callbacks: set[Callable[[int], None]] = set()

    def on_cancel(self, callback: Callable[[int], None]) -> None:
        self._cancel_callbacks.add(callback)

    def off_cancel(self, callback: Callable[[int], None]) -> None:
        self._cancel_callbacks.discard(callback)

    def cancel(self, message_id: int) -> None:
        for callback in list(self._cancel_callbacks):
            callback(message_id)

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
