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
    # Rows of the workers registry deleted because their heartbeat went stale.
    stale_workers: int = 0


async def run_retention(
    store: PostgresStore,
    retention_hours: float,
    batch_size: int,
    on_batch: Callable[[int], None] | None = None,
    *,
    stats_days: float,
    worker_stale_seconds: float,
) -> RetentionResult:
    """Delete completed, failed and cancelled messages older than `retention_hours`, never an
    unfinished one, stats older than `stats_days` and registered workers whose heartbeat is
    older than `worker_stale_seconds`. Each batch is its own short transaction, so retention
    never holds a long snapshot."""
    await store.prune_stats(stats_days)
    stale = await store.prune_workers(worker_stale_seconds)
    deleted = 0
    while True:
        count = await store.delete_finished(retention_hours, batch_size)
        if count is None:
            return RetentionResult(deleted, skipped=deleted == 0, stale_workers=stale)
        deleted += count
        if on_batch is not None:
            on_batch(count)
        if count < batch_size:
            return RetentionResult(deleted, stale_workers=stale)
