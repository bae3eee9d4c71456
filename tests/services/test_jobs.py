"""Creating jobs: one transaction for the row, its event and its message; Idempotency-Key."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from clipper.db.models import Job, JobEvent
from clipper.db.repositories import JobRepository
from clipper.domain.clips import ClipRequest
from clipper.domain.jobs import Priority, SourceType
from clipper.domain.tenancy import OPERATOR
from clipper.queue import QueueAdapter
from clipper.services.jobs import IdempotencyConflictError, create_job

REQUEST = ClipRequest(SourceType.UPLOAD, 1_000, 31_500, Priority.FAST, upload_key="up_1")


async def _count(sessions: async_sessionmaker[AsyncSession], what: str) -> int:
    async with sessions() as session:
        if what == "messages":
            return int(
                await session.scalar(text("SELECT count(*) FROM clipper_queue.messages")) or 0
            )
        model = Job if what == "jobs" else JobEvent
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def test_create_job_commits_row_event_and_message_together(
    sessions: async_sessionmaker[AsyncSession], queue: QueueAdapter
) -> None:
    async with sessions.begin() as session:
        created = await create_job(session, queue, REQUEST, OPERATOR)
    assert created.created
    async with sessions() as session:
        job = await JobRepository(session).get(created.job.id)
        events = await JobRepository(session).events(created.job.id)
    assert job is not None
    assert (job.status, job.priority, job.start_ms, job.end_ms) == ("queued", "fast", 1000, 31500)
    assert [event.type for event in events] == ["created"]
    assert await _count(sessions, "messages") == 1


async def test_a_failure_after_publishing_leaves_nothing_behind(
    sessions: async_sessionmaker[AsyncSession], queue: QueueAdapter
) -> None:
    async def create_then_crash() -> None:
        async with sessions.begin() as session:
            await create_job(session, queue, REQUEST, OPERATOR)
            raise RuntimeError("crash before commit")

    with pytest.raises(RuntimeError, match="crash before commit"):
        await create_then_crash()
    assert await _count(sessions, "jobs") == 0
    assert await _count(sessions, "events") == 0
    assert await _count(sessions, "messages") == 0


async def test_idempotency_key_returns_the_first_job(
    sessions: async_sessionmaker[AsyncSession], queue: QueueAdapter
) -> None:
    async with sessions.begin() as session:
        first = await create_job(session, queue, REQUEST, OPERATOR, "key-1")
    async with sessions.begin() as session:
        again = await create_job(session, queue, REQUEST, OPERATOR, "key-1")
    assert (again.job.id, again.created) == (first.job.id, False)
    other = ClipRequest(SourceType.UPLOAD, 0, 5_000, upload_key="up_2")

    async def reuse_key() -> None:
        async with sessions.begin() as session:
            await create_job(session, queue, other, OPERATOR, "key-1")

    with pytest.raises(IdempotencyConflictError):
        await reuse_key()
    assert await _count(sessions, "jobs") == 1


async def test_concurrent_requests_with_one_key_make_one_job(
    sessions: async_sessionmaker[AsyncSession], queue: QueueAdapter
) -> None:
    async def attempt() -> tuple[str, bool]:
        async with sessions.begin() as session:
            created = await create_job(session, queue, REQUEST, OPERATOR, "same-key")
            return str(created.job.id), created.created

    results = await asyncio.gather(*(attempt() for _ in range(20)))
    assert len({job_id for job_id, _ in results}) == 1
    assert sum(created for _, created in results) == 1
    assert await _count(sessions, "jobs") == 1
    assert await _count(sessions, "messages") == 1
