"""Retention of finished messages, in bounded batches, by one instance at a time."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ._store import PostgresStore


@dataclass(frozen=True, slots=True)
class RetentionResult:
    deleted: int
    # True when another instance held the retention lock, so this run did nothing.
    skipped: bool = False


async def run_retention(
    store: PostgresStore,
    retention_hours: float,
    batch_size: int,
    on_batch: Callable[[int], None] | None = None,
    *,
    stats_days: float,
) -> RetentionResult:
    """Delete completed, failed and cancelled messages older than `retention_hours`, never an
    unfinished one, and stats older than `stats_days`. Each batch is its own short
    transaction, so retention never holds a long snapshot."""
    await store.prune_stats(stats_days)
    deleted = 0
    while True:
        count = await store.delete_finished(retention_hours, batch_size)
        if count is None:
            return RetentionResult(deleted, skipped=deleted == 0)
        deleted += count
        if on_batch is not None:
            on_batch(count)
        if count < batch_size:
            return RetentionResult(deleted)
