"""What /readyz and /metrics read from the database, each in the caller's session."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from ..db.repositories import JobRepository, ping


@dataclass(frozen=True, slots=True)
class JobStats:
    by_status: dict[str, int]  # statuses without jobs are absent
    dead_letters: int
    oldest_queued_age_seconds: float  # 0 when nothing is queued


async def ping_database(session: AsyncSession) -> None:
    """Raises when the database does not answer."""
    await ping(session)


async def job_stats(session: AsyncSession) -> JobStats:
    jobs = JobRepository(session)
    return JobStats(
        by_status=await jobs.status_counts(),
        dead_letters=await jobs.dead_letter_count(),
        oldest_queued_age_seconds=await jobs.oldest_queued_age_seconds(),
    )
