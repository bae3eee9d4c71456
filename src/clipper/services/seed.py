"""Demo data for `clipper seed`: jobs a running worker either completes or leaves alone.

A seeded job must not become a dead letter, an alert or work that never ends. So the queued
ones are real clips of a real upload (a short sample video, stored and recorded like one
sent to POST /api/uploads): a worker cuts them to done. The done, failed and cancelled ones
have their events but no queue message: no worker ever takes them. None is seeded processing:
only a worker holding a job's lease may say that, and a seeded one would never end."""

from __future__ import annotations

import asyncio
import tempfile
from datetime import timedelta
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncSession

from ..db.repositories import JobRepository
from ..domain.clips import ClipRequest
from ..domain.jobs import EventType, JobStatus, Priority, SourceType
from ..domain.tenancy import OPERATOR
from ..media.probe import probe
from ..media.sample import write_sample_video
from ..queue import QueueAdapter
from ..storage import Storage, new_upload_key, result_key, source_key
from .jobs import create_job, new_job
from .uploads import record_upload

SEEDED_STATES = (JobStatus.QUEUED, JobStatus.DONE, JobStatus.FAILED, JobStatus.CANCELLED)
_SAMPLE_SECONDS = 8
_CLIP_MS = 4_000
_PRIORITIES = (Priority.FAST, Priority.NORMAL, Priority.BULK)


async def seed_upload(session: AsyncSession, storage: Storage) -> str:
    """Store a short sample video as an operator's upload, recorded in the caller's
    transaction; its upload key. (Should the transaction fail, the stored file is an
    unrecorded upload, which retention deletes.)"""
    key = new_upload_key()
    with tempfile.TemporaryDirectory(prefix="clipper-seed-") as scratch:
        sample = Path(scratch) / "sample.mp4"
        await asyncio.to_thread(write_sample_video, sample, _SAMPLE_SECONDS)
        size = sample.stat().st_size
        media = await probe(sample)
        await storage.put_file(source_key(key), sample)
    await record_upload(session, key, OPERATOR, "media", size, media)
    return key


async def seed_jobs(
    session: AsyncSession, queue: QueueAdapter, upload_key: str, index: int, keep: timedelta
) -> None:
    """One job in each of SEEDED_STATES, clips of `upload_key`, in the caller's transaction:
    the queued one is really enqueued, the others look as a worker or a cancel left them."""
    start_ms = index % 3 * 2_000  # within the sample whatever the index: a valid clip
    request = ClipRequest(
        SourceType.UPLOAD,
        start_ms,
        start_ms + _CLIP_MS,
        _PRIORITIES[index % 3],
        upload_key=upload_key,
    )
    await create_job(session, queue, request, OPERATOR)
    await _seed_finished_jobs(session, request, keep)


async def _seed_finished_jobs(session: AsyncSession, request: ClipRequest, keep: timedelta) -> None:
    """A done, a failed and a cancelled job of `request`, with the events a worker or a
    cancel would write. They have no queue message: nothing will run them (a requeued failed
    one then cuts its real upload)."""
    jobs = JobRepository(session)
    for status in (JobStatus.DONE, JobStatus.FAILED, JobStatus.CANCELLED):
        job = await jobs.add(new_job(request, OPERATOR.tenant, None, None))
        assert job is not None, "no idempotency key: nothing to conflict with"
        if status is JobStatus.CANCELLED:
            await jobs.cancel(job, keep)
            continue
        running = await jobs.start_attempt(job.id, 1)
        assert running is not None
        await jobs.record_progress(job.id, 1, 40, "cut")
        if status is JobStatus.DONE:
            await jobs.complete(job.id, 1, result_key(job.id, 1), None, keep)
        else:
            await jobs.add_event(job.id, EventType.RETRY, {"attempt": 1, "seeded": True})
            record = {  # shaped like a real dead-letter record (services/processing.py)
                "seeded": True,
                "attempts": 1,
                "error": {"code": "SAMPLE_FAILURE", "message": "a seeded failure"},
            }
            await jobs.fail(running, "SAMPLE_FAILURE", "a seeded failure", keep, dead_letter=record)
