"""Demo data for `clipper seed`: jobs that look processed, without a worker."""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from ..db.repositories import JobRepository, NewJob
from ..domain.jobs import EventType


async def seed_finished_jobs(session: AsyncSession, index: int, keep: timedelta) -> None:
    """One processing, one done and one failed job, with the events a worker would write, in
    the caller's transaction. They have no queue message: nothing will run them."""
    jobs = JobRepository(session)
    for status in ("processing", "done", "failed"):
        job = await jobs.add(
            NewJob(uuid.uuid4(), "normal", "upload", 0, 30_000, upload_key=f"seed_{index}")
        )
        assert job is not None
        running = await jobs.start_attempt(job.id, 1)
        assert running is not None
        await jobs.record_progress(job.id, 1, 40, "cut")
        if status == "done":
            await jobs.complete(job.id, 1, f"results/{job.id}/1/clip.mp4", None, keep)
        elif status == "failed":
            await jobs.add_event(job.id, EventType.RETRY, {"attempt": 1, "seeded": True})
            record = {  # shaped like a real dead-letter record (services/processing.py)
                "seeded": True,
                "attempts": 1,
                "error": {"code": "SAMPLE_FAILURE", "message": "a seeded failure"},
            }
            await jobs.fail(running, "SAMPLE_FAILURE", "a seeded failure", record, keep)
