"""Job retention: expired finished jobs go with their events, records and files; nothing else."""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from clipper.db.repositories import JobRepository, NewJob
from clipper.services.retention import cleanup_expired_jobs, cleanup_old_uploads
from clipper.storage import LocalStorage, new_upload_key, source_key, subtitles_key


async def _job(
    sessions: async_sessionmaker[AsyncSession], status: str, expired: bool, storage: LocalStorage
) -> uuid.UUID:
    job_id = uuid.uuid4()
    key = f"results/{job_id}/2/clip.mp4"
    for attempt_key in (key, f"results/{job_id}/1/clip.mp4"):  # a killed attempt's, too
        storage.path(attempt_key).parent.mkdir(parents=True)
        storage.path(attempt_key).write_bytes(b"clip")
    async with sessions.begin() as session:
        jobs = JobRepository(session)
        await jobs.add(NewJob(job_id, "normal", "upload", 0, 1000, upload_key="k"))
        await session.execute(
            text(
                "UPDATE jobs SET status = :s, result_video_key = :k, expires_at = now() + "
                "CASE WHEN :e THEN interval '-1 hour' ELSE interval '1 hour' END WHERE id = :j"
            ),
            {"s": status, "k": key, "e": expired, "j": job_id},
        )
        if status == "failed":
            await session.execute(
                text("INSERT INTO dlq_jobs (job_id, reason, payload) VALUES (:j, 'X', '{}')"),
                {"j": job_id},
            )
    return job_id


async def _exists(sessions: async_sessionmaker[AsyncSession], job_id: uuid.UUID) -> bool:
    async with sessions() as session:
        return await JobRepository(session).get(job_id) is not None


async def test_only_expired_finished_jobs_are_deleted_with_their_files(
    sessions: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    storage = LocalStorage(tmp_path)
    done = await _job(sessions, "done", True, storage)
    failed = await _job(sessions, "failed", True, storage)
    fresh = await _job(sessions, "done", False, storage)
    queued = await _job(sessions, "queued", True, storage)  # expiry never applies to these
    running = await _job(sessions, "processing", True, storage)
    counted = await cleanup_expired_jobs(sessions, storage, dry_run=True)
    assert counted.deleted == 2
    assert await _exists(sessions, done)  # a dry run changes nothing
    result = await cleanup_expired_jobs(sessions, storage, batch_size=1)
    assert (result.deleted, result.kept) == (2, 0)
    for job_id in (done, failed):
        assert not await _exists(sessions, job_id)
        assert not storage.path(f"results/{job_id}").exists()  # every attempt's files
    for job_id in (fresh, queued, running):
        assert await _exists(sessions, job_id)
        assert storage.path(f"results/{job_id}/2/clip.mp4").exists()
        assert storage.path(f"results/{job_id}/1/clip.mp4").exists()
    async with sessions() as session:
        orphans = await session.scalar(
            text(
                "SELECT count(*) FROM job_events e LEFT JOIN jobs j ON j.id = e.job_id "
                "WHERE j.id IS NULL"
            )
        )
    assert orphans == 0


async def test_a_job_whose_files_will_not_delete_stays_for_the_next_run(
    sessions: async_sessionmaker[AsyncSession], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    storage = LocalStorage(tmp_path)
    stuck = await _job(sessions, "done", True, storage)
    other = await _job(sessions, "done", True, storage)
    real_delete = storage.delete_results

    async def flaky(job_id: uuid.UUID) -> None:
        if job_id == stuck:
            raise PermissionError("read-only file system")
        await real_delete(job_id)

    monkeypatch.setattr(storage, "delete_results", flaky)
    result = await cleanup_expired_jobs(sessions, storage, batch_size=1)
    assert (result.deleted, result.kept) == (1, 1)
    assert await _exists(sessions, stuck)
    assert not await _exists(sessions, other)
    monkeypatch.setattr(storage, "delete_results", real_delete)
    assert (await cleanup_expired_jobs(sessions, storage)).deleted == 1
    assert not await _exists(sessions, stuck)


def test_storage_refuses_keys_outside_its_folder(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="outside"):
        LocalStorage(tmp_path).path("../../etc/passwd")


async def test_concurrent_runs_delete_each_job_once(
    sessions: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    storage = LocalStorage(tmp_path)
    jobs = [await _job(sessions, "done", True, storage) for _ in range(12)]
    results = await asyncio.gather(
        *(cleanup_expired_jobs(sessions, storage, batch_size=2) for _ in range(4))
    )
    assert sum(result.deleted for result in results) == len(jobs)
    assert not any([await _exists(sessions, job_id) for job_id in jobs])


async def test_old_uploads_go_unless_an_unfinished_job_needs_them(
    sessions: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    storage = LocalStorage(tmp_path)
    old_free, old_needed, fresh = new_upload_key(), new_upload_key(), new_upload_key()
    for key in (old_free, old_needed, fresh):
        storage.path(source_key(key)).parent.mkdir(parents=True)
        storage.path(source_key(key)).write_bytes(b"video")
    storage.path(subtitles_key(old_free)).write_bytes(b"1\n00:00:00,000 --> 00:00:01,000\nx\n")
    two_days_ago = time.time() - 48 * 3600
    for key in (old_free, old_needed):
        os.utime(storage.path(source_key(key)).parent, (two_days_ago, two_days_ago))
    async with sessions.begin() as session:
        await JobRepository(session).add(
            NewJob(uuid.uuid4(), "normal", "upload", 0, 1000, upload_key=old_needed)
        )
    assert await cleanup_old_uploads(sessions, storage, older_than_hours=24) == 1
    assert not storage.path(source_key(old_free)).parent.exists()
    assert await storage.exists(source_key(old_needed))  # a queued job still needs it
    assert await storage.exists(source_key(fresh))
