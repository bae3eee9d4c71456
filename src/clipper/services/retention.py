"""Retention of jobs: expired finished jobs go, with their events, dead-letter records and
stored files, in batches, one instance at a time. A job whose files could not be deleted
stays for the next run."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ..db.models import Job
from ..db.repositories import JobRepository, UploadRepository
from ..domain.uploads import PENDING_GRACE
from ..storage import Storage
from .batches import media_lock_name

logger = logging.getLogger("clipper.retention")

LOCK_NAME = "clipper.jobs.retention"


@dataclass(frozen=True, slots=True)
class CleanupResult:
    deleted: int = 0
    kept: int = 0  # expired, but a file would not delete: tried again next run
    skipped: bool = False  # another instance holds the retention lock


async def cleanup_expired_jobs(
    sessions: async_sessionmaker[AsyncSession],
    storage: Storage,
    *,
    batch_size: int = 200,
    dry_run: bool = False,
    on_batch: Callable[[int], None] | None = None,
) -> CleanupResult:
    """Delete expired jobs; with `dry_run`, only count them (as `deleted`)."""
    if dry_run:
        async with sessions() as session:
            return CleanupResult(deleted=await JobRepository(session).count_expired())
    deleted, kept = 0, list[uuid.UUID]()
    while True:
        async with sessions.begin() as session:
            jobs = JobRepository(session)
            if not await jobs.try_lock(LOCK_NAME):
                return CleanupResult(deleted, len(kept), skipped=deleted == 0 and not kept)
            batch = await jobs.expired(batch_size, kept)
            removable = [job.id for job in batch if await _delete_files(storage, job)]
            kept += [job.id for job in batch if job.id not in removable]
            if removable:
                await jobs.delete(removable)
        deleted += len(removable)
        if on_batch is not None:
            on_batch(len(batch))
        if len(batch) < batch_size:
            return CleanupResult(deleted, len(kept))


async def cleanup_old_uploads(
    sessions: async_sessionmaker[AsyncSession], storage: Storage, older_than_hours: float
) -> int:
    """Delete uploads stored more than `older_than_hours` ago that no queued or processing job
    needs, and direct uploads never completed (see `_cleanup_abandoned_uploads`); returns how
    many. (A job that finished keeps its clip, not its source.)"""
    abandoned = await _cleanup_abandoned_uploads(sessions, storage)
    candidates = await storage.uploads_older_than(older_than_hours * 3600)
    if not candidates:
        return abandoned
    async with sessions() as session:
        in_use = await JobRepository(session).uploads_in_use()
    removable = [key for key in candidates if key not in in_use]
    for key in removable:
        await storage.delete_upload(key)
    if removable:  # their records too: what a tenant has stored is what is on record
        async with sessions.begin() as session:
            await UploadRepository(session).delete(removable)
    return abandoned + len(removable)


async def _cleanup_abandoned_uploads(
    sessions: async_sessionmaker[AsyncSession], storage: Storage
) -> int:
    """Delete pending direct uploads whose URL expired more than PENDING_GRACE ago, with
    whatever their client sent. No job can use a pending upload, so none is in use. The
    records go first, in their own transaction: a completion that races this then finds no
    pending record (404) instead of storing an upload whose file is being deleted. Should an
    object fail to delete, it is an unrecorded upload, which the age-based sweep removes."""
    async with sessions.begin() as session:
        keys = await UploadRepository(session).delete_abandoned(PENDING_GRACE)
    for key in keys:
        await storage.delete_upload(key)
    return len(keys)


async def cleanup_batch_media(sessions: async_sessionmaker[AsyncSession], storage: Storage) -> int:
    """Delete the media fetched for a batch once none of its jobs is queued or processing;
    returns how many. (A job requeued later fetches it again.) Each under the batch's fetch
    lock, skipped while a worker holds it: that worker is fetching the media or about to cut
    from it, and no job of the batch can start using it while the lock is held here."""
    deleted = 0
    for batch_id in await storage.batches_with_media():
        async with sessions.begin() as session:
            jobs = JobRepository(session)
            if not await jobs.try_lock(media_lock_name(batch_id)):
                continue
            if await jobs.batch_in_use(batch_id):
                continue
            await storage.delete_batch_media(batch_id)
        deleted += 1
    return deleted


async def _delete_files(storage: Storage, job: Job) -> bool:
    try:
        await storage.delete_results(job.id)
    except Exception as exc:
        logger.warning(
            "could not delete the job's files; the job stays until the next run: %s",
            exc,
            extra={"job_id": str(job.id)},
        )
        return False
    return True
