"""Typed access to jobs, their events and their dead-letter records. All application SQL
lives here; every status change passes the state machine and writes its event in the same
transaction (the caller's)."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Text, cast, delete, func, or_, select, tuple_, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from ..domain.clips import CutMode
from ..domain.jobs import EventType, JobStatus, check, sources_of
from ..domain.subtitles import SubtitlesMade
from ..domain.tenancy import LOCAL_TENANT
from ..domain.uploads import UploadState
from .models import ApiKey, DlqJob, Job, JobEvent, RateLimit, Upload

# NOTIFY'd with a job's id in the transaction of every event of that job (JobRepository
# .add_event): delivered when it commits, with the change visible, and never for a change
# rolled back. The API's live streams listen on it (services/live.py).
JOB_CHANGES_CHANNEL = "clipper_jobs"


@dataclass(frozen=True, slots=True)
class NewJob:
    id: uuid.UUID
    priority: str
    source_type: str
    start_ms: int
    end_ms: int
    tenant_id: str = LOCAL_TENANT
    upload_key: str | None = None
    source_url: str | None = None
    with_subtitles: bool = False
    burn_subtitles: bool = False
    subtitle_lang: str | None = None
    subtitles_upload_key: str | None = None
    idempotency_key: str | None = None
    request_fingerprint: str | None = None
    batch_id: uuid.UUID | None = None
    callback_url: str | None = None
    cut_mode: str = CutMode.EXACT.value
    # The output choices (domain.outputs.OutputOptions.to_json); None: all the defaults.
    output: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class JobFilter:
    """What a list of jobs is narrowed to; None: no condition."""

    status: str | None = None
    priority: str | None = None
    # The API key (tenant) that made the job.
    tenant: str | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None


async def ping(session: AsyncSession) -> None:
    """The cheapest round trip: raises when the database does not answer."""
    await session.execute(select(1))


# Finished and past expiry (database clock): what retention may delete.
_EXPIRED = (
    Job.status.in_([JobStatus.DONE.value, JobStatus.FAILED.value, JobStatus.CANCELLED.value]),
    Job.expires_at <= func.now(),
)


class JobRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def add(self, new: NewJob) -> Job | None:
        """Insert a queued job and its `created` event; None when its idempotency key is
        already taken (a concurrent twin won: read it with `get_by_idempotency_key`)."""
        statement = (
            insert(Job)
            .values(status=JobStatus.QUEUED.value, **dataclasses.asdict(new))
            .on_conflict_do_nothing(index_elements=[Job.tenant_id, Job.idempotency_key])
            .returning(Job)
        )
        job = (await self._session.scalars(statement)).one_or_none()
        if job is not None:
            await self.add_event(job.id, EventType.CREATED, {"priority": job.priority})
        return job

    async def get(self, job_id: uuid.UUID, tenant: str | None = None) -> Job | None:
        """The job; with `tenant`, only when that tenant owns it (another tenant's job is as
        absent as an unknown one)."""
        job = await self._session.get(Job, job_id, populate_existing=True)
        return None if job is None or (tenant is not None and job.tenant_id != tenant) else job

    async def get_by_idempotency_key(self, tenant: str, key: str) -> Job | None:
        return await self._session.scalar(
            select(Job).where(Job.tenant_id == tenant, Job.idempotency_key == key)
        )

    async def get_by_idempotency_keys(self, tenant: str, keys: Sequence[str]) -> list[Job]:
        """The tenant's jobs with these keys, in the order of `keys` (absent ones left out)."""
        found = await self._session.scalars(
            select(Job).where(Job.tenant_id == tenant, Job.idempotency_key.in_(keys))
        )
        by_key = {job.idempotency_key: job for job in found}
        return [by_key[key] for key in keys if key in by_key]

    async def page(
        self,
        tenant: str | None,
        filters: JobFilter,
        after: tuple[datetime, uuid.UUID] | None,
        limit: int,
    ) -> Sequence[Job]:
        """Newest first (of one tenant, or of all with None; a filter's tenant narrows it
        further, so another tenant's there finds nothing), matching `filters`; `after` is
        the (created_at, id) of the last job of the previous page."""
        statement = select(Job).order_by(Job.created_at.desc(), Job.id.desc()).limit(limit)
        conditions = [
            Job.tenant_id == tenant if tenant is not None else None,
            Job.tenant_id == filters.tenant if filters.tenant is not None else None,
            Job.status == filters.status if filters.status is not None else None,
            Job.priority == filters.priority if filters.priority is not None else None,
            Job.created_at >= filters.created_after if filters.created_after else None,
            Job.created_at < filters.created_before if filters.created_before else None,
        ]
        statement = statement.where(*(c for c in conditions if c is not None))
        if after is not None:
            statement = statement.where(tuple_(Job.created_at, Job.id) < tuple_(*after))
        return (await self._session.scalars(statement)).all()

    async def is_expired(self, job: Job) -> bool:
        """Compared on the database clock, like every other time."""
        if job.expires_at is None:
            return False
        return bool(await self._session.scalar(select(job.expires_at <= func.now())))

    async def unfinished_count(self, tenant: str) -> int:
        """The tenant's queued and processing jobs."""
        statement = select(func.count()).where(
            Job.tenant_id == tenant,
            Job.status.in_([JobStatus.QUEUED.value, JobStatus.PROCESSING.value]),
        )
        return int(await self._session.scalar(statement) or 0)

    async def status_counts(self) -> dict[str, int]:
        rows = await self._session.execute(select(Job.status, func.count()).group_by(Job.status))
        return {status: count for status, count in rows}

    async def count_with_status(self, status: JobStatus) -> int:
        """How many jobs have `status` (an index-only count, where `status_counts` groups
        every retained job)."""
        statement = select(func.count()).select_from(Job).where(Job.status == status.value)
        return int(await self._session.scalar(statement) or 0)

    async def dead_letter_count(self) -> int:
        return int(await self._session.scalar(select(func.count()).select_from(DlqJob)) or 0)

    async def oldest_queued_age_seconds(self) -> float:
        age = await self._session.scalar(
            select(func.extract("epoch", func.now() - func.min(Job.created_at))).where(
                Job.status == JobStatus.QUEUED.value
            )
        )
        return float(age or 0.0)

    async def expired(self, limit: int, skip: Sequence[uuid.UUID] = ()) -> Sequence[Job]:
        """Finished jobs past their expiry, oldest first, locked for this transaction; never
        a queued or processing job."""
        statement = (
            select(Job)
            .where(*_EXPIRED)
            .order_by(Job.expires_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        if skip:
            statement = statement.where(Job.id.not_in(skip))
        return (await self._session.scalars(statement)).all()

    async def uploads_in_use(self) -> set[str]:
        """Upload keys that a queued or processing job still needs."""
        rows = await self._session.execute(
            select(Job.upload_key, Job.subtitles_upload_key).where(
                Job.status.in_([JobStatus.QUEUED.value, JobStatus.PROCESSING.value])
            )
        )
        return {key for row in rows for key in row if key is not None}

    async def batch_in_use(self, batch_id: uuid.UUID) -> bool:
        """Whether a job of the batch is queued or processing (and may need its media)."""
        statement = select(
            select(Job.id)
            .where(
                Job.batch_id == batch_id,
                Job.status.in_([JobStatus.QUEUED.value, JobStatus.PROCESSING.value]),
            )
            .exists()
        )
        return bool(await self._session.scalar(statement))

    async def count_expired(self) -> int:
        statement = select(func.count()).select_from(Job).where(*_EXPIRED)
        return int(await self._session.scalar(statement) or 0)

    async def delete(self, job_ids: Sequence[uuid.UUID]) -> None:
        """Jobs with their events and dead-letter records (ON DELETE CASCADE)."""
        await self._session.execute(delete(Job).where(Job.id.in_(job_ids)))

    async def try_lock(self, name: str) -> bool:
        """An advisory lock held until this transaction ends (it cannot leak)."""
        return bool(
            await self._session.scalar(select(func.pg_try_advisory_xact_lock(func.hashtext(name))))
        )

    async def dead_letters(self, limit: int) -> Sequence[DlqJob]:
        statement = select(DlqJob).order_by(DlqJob.created_at.desc()).limit(limit)
        return (await self._session.scalars(statement)).all()

    async def dead_letter_groups(self) -> list[tuple[DlqJob, int]]:
        """Each error code (reason) of the dead-letter records with its newest record as a
        sample and its count, largest group first, in one query (windows over each code:
        its count, and its records' order, of which the first is kept)."""
        newest_first = (DlqJob.created_at.desc(), DlqJob.job_id)
        ranked = select(
            DlqJob,
            func.count().over(partition_by=DlqJob.reason).label("count"),
            func.row_number().over(partition_by=DlqJob.reason, order_by=newest_first).label("nth"),
        ).subquery()
        record = aliased(DlqJob, ranked)
        statement = (
            select(record, ranked.c.count)
            .where(ranked.c.nth == 1)
            .order_by(ranked.c.count.desc(), ranked.c.reason)
        )
        return [(found, int(n)) for found, n in await self._session.execute(statement)]

    async def discard_dead_letters(
        self, *, job_id: uuid.UUID | None = None, reason: str | None = None
    ) -> int:
        """Delete dead-letter records (one job's, one reason's, or with neither every one);
        how many. The jobs stay failed: only their place among the dead letters goes."""
        statement = delete(DlqJob)
        if job_id is not None:
            statement = statement.where(DlqJob.job_id == job_id)
        if reason is not None:
            statement = statement.where(DlqJob.reason == reason)
        result = await self._session.execute(statement.returning(DlqJob.job_id))
        return len(result.all())

    async def lock_one(self, job_id: uuid.UUID, tenant: str | None) -> Job | None:
        """The job (of `tenant`, or any with None), freshly read and locked until this
        transaction ends."""
        statement = select(Job).where(Job.id == job_id).with_for_update()
        if tenant is not None:
            statement = statement.where(Job.tenant_id == tenant)
        statement = statement.execution_options(populate_existing=True)
        return (await self._session.scalars(statement)).one_or_none()

    async def lock(self, job_ids: Sequence[uuid.UUID]) -> Sequence[Job]:
        """These jobs, freshly read and locked until this transaction ends, in id order (so
        two transactions locking overlapping sets cannot deadlock)."""
        statement = (
            select(Job)
            .where(Job.id.in_(job_ids))
            .order_by(Job.id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        return (await self._session.scalars(statement)).all()

    async def lock_dead_lettered(
        self, after: uuid.UUID | None, limit: int, reason: str | None = None
    ) -> Sequence[Job]:
        """Up to `limit` failed jobs with a dead-letter record (of `reason` when given), in
        id order from after `after` (a cursor, so a job that fails again meanwhile is not met
        twice), locked until this transaction ends."""
        statement = (
            select(Job)
            .join(DlqJob, DlqJob.job_id == Job.id)
            .where(Job.status == JobStatus.FAILED.value)
            .order_by(Job.id)
            .limit(limit)
            .with_for_update(of=Job)
            .execution_options(populate_existing=True)
        )
        if after is not None:
            statement = statement.where(Job.id > after)
        if reason is not None:
            statement = statement.where(DlqJob.reason == reason)
        return (await self._session.scalars(statement)).all()

    async def requeue(self, job: Job) -> None:
        """failed -> queued for an operator: errors cleared, dead-letter record removed, and
        a `requeued` event naming the error it had."""
        # Read before the move: the UPDATE also clears these on the loaded `job`.
        previous = {"code": job.error_code, "message": job.error_message}
        await self._move(
            job,
            JobStatus.QUEUED,
            attempts=0,  # its message starts again from none too
            progress=0,
            error_code=None,
            error_message=None,
            expires_at=None,
        )
        await self._session.execute(delete(DlqJob).where(DlqJob.job_id == job.id))
        await self.add_event(job.id, EventType.REQUEUED, {"previous_error": previous})

    async def events(self, job_id: uuid.UUID) -> Sequence[JobEvent]:
        statement = select(JobEvent).where(JobEvent.job_id == job_id).order_by(JobEvent.id)
        return (await self._session.scalars(statement)).all()

    async def add_event(
        self,
        job_id: uuid.UUID,
        kind: EventType,
        payload: dict[str, Any] | None = None,
        *,
        notify: bool = True,
    ) -> None:
        """Record an event of the job, and NOTIFY JOB_CHANGES_CHANNEL with its id in the same
        statement: every change of a job writes an event, so this is the one place the live
        streams hear of changes from (progress, stage, status, new events). `notify=False`
        for a change a stream may show late (a progress step between two notified ones): a
        committing NOTIFY takes a database-wide lock, so every one is paid for by all."""
        statement = insert(JobEvent).values(job_id=job_id, type=kind.value, payload=payload or {})
        if not notify:
            await self._session.execute(statement)
            return
        notifying = func.pg_notify(JOB_CHANGES_CHANNEL, cast(JobEvent.job_id, Text))
        await self._session.execute(statement.returning(notifying))

    async def last_event_id(self, job_id: uuid.UUID) -> int:
        """The sequence number of the job's latest event (0 with none)."""
        statement = select(func.coalesce(func.max(JobEvent.id), 0)).where(JobEvent.job_id == job_id)
        return int(await self._session.scalar(statement) or 0)

    async def start_attempt(self, job_id: uuid.UUID, attempt: int) -> Job | None:
        """Claim the job for this attempt: only a queued job, or one left processing by an
        earlier attempt (or by this one, given back uncharged), moves (optimistically, in
        one UPDATE); None otherwise, e.g. for a stale attempt that starts late."""
        statement = (
            update(Job)
            .where(
                Job.id == job_id,
                Job.status.in_([s.value for s in sources_of(JobStatus.PROCESSING)]),
                or_(Job.status == JobStatus.QUEUED.value, Job.attempts <= attempt),
            )
            .values(status=JobStatus.PROCESSING.value, attempts=attempt, updated_at=func.now())
            .returning(Job)
            .execution_options(populate_existing=True)
        )
        job = (await self._session.scalars(statement)).one_or_none()
        if job is not None:
            await self.add_event(job_id, EventType.PROCESSING, {"attempt": attempt})
        return job

    async def record_progress(
        self, job_id: uuid.UUID, attempt: int, percent: int, stage: str, *, notify: bool = True
    ) -> bool:
        """Progress of the job's current attempt; False (nothing written) for any other.
        `notify`: see `add_event`."""
        if not await self._update_attempt(job_id, attempt, progress=percent):
            return False
        payload = {"pct": percent, "stage": stage}
        await self.add_event(job_id, EventType.PROGRESS, payload, notify=notify)
        return True

    async def _update_attempt(self, job_id: uuid.UUID, attempt: int, **values: Any) -> bool:
        """Update the job only while it is processing for `attempt` (a stale attempt's writes
        match nothing)."""
        result = await self._session.execute(
            update(Job)
            .where(
                Job.id == job_id,
                Job.status == JobStatus.PROCESSING.value,
                Job.attempts == attempt,
            )
            .values(updated_at=func.now(), **values)
            .returning(Job.id)
        )
        return result.first() is not None

    async def record_retry(
        self, job_id: uuid.UUID, attempt: int, error: str, next_run_at: datetime
    ) -> None:
        await self._session.execute(
            update(Job).where(Job.id == job_id).values(last_error=error, updated_at=func.now())
        )
        await self.add_event(
            job_id,
            EventType.RETRY,
            {"attempt": attempt, "error": error, "next_run_at": next_run_at.isoformat()},
        )

    async def _move(self, job: Job, target: JobStatus, **values: Any) -> bool:
        if not check(JobStatus(job.status), target):
            return False
        await self._session.execute(
            update(Job)
            .where(Job.id == job.id)
            .values(status=target.value, updated_at=func.now(), **values)
        )
        return True

    async def complete(
        self,
        job_id: uuid.UUID,
        attempt: int,
        result_video_key: str,
        result_subtitles_key: str | None,
        keep_for: timedelta,
        *,
        actual_start_ms: int | None = None,
        result_thumbnail_key: str | None = None,
        result_preview_key: str | None = None,
        subtitles: SubtitlesMade | None = None,
    ) -> bool:
        """Mark the job done by `attempt` with its results (where its clip starts in the
        source, where its subtitles came from, with a `subtitles` event), expiring `keep_for`
        from now on the database clock; False (a no-op) unless it is processing for that
        attempt."""
        moved = await self._update_attempt(
            job_id,
            attempt,
            status=JobStatus.DONE.value,
            progress=100,
            result_video_key=result_video_key,
            result_subtitles_key=result_subtitles_key,
            result_thumbnail_key=result_thumbnail_key,
            result_preview_key=result_preview_key,
            actual_start_ms=actual_start_ms,
            subtitles=None if subtitles is None else subtitles.to_json(),
            expires_at=func.now() + keep_for,
        )
        if moved and subtitles is not None:
            await self.add_event(job_id, EventType.SUBTITLES, subtitles.to_json())
        if moved:
            await self.add_event(job_id, EventType.DONE, {"video": result_video_key})
        return moved

    async def cancel(self, job: Job, keep_for: timedelta) -> bool:
        """queued or processing -> cancelled (expiring `keep_for` from now, like a result),
        with a `cancelled` event; False (a no-op) when it was cancelled already."""
        previous = job.status
        if not await self._move(job, JobStatus.CANCELLED, expires_at=func.now() + keep_for):
            return False
        await self.add_event(job.id, EventType.CANCELLED, {"was": previous})
        return True

    async def fail(
        self,
        job: Job,
        code: str,
        message: str,
        keep_for: timedelta,
        *,
        dead_letter: dict[str, Any] | None = None,
    ) -> bool:
        """Mark the job failed (expiring `keep_for` from now, like a result) with a `failed`
        event; with a `dead_letter` (the queue gave up on it), record that too, with a `dlq`
        event. A cancelled job stays cancelled: this is then the late failure of an attempt
        its cancel stopped."""
        if job.status == JobStatus.CANCELLED.value:
            return False
        moved = await self._move(
            job,
            JobStatus.FAILED,
            error_code=code,
            error_message=message,
            last_error=message,
            expires_at=func.now() + keep_for,
        )
        if not moved:
            return False
        await self.add_event(job.id, EventType.FAILED, {"code": code})
        if dead_letter is None:
            return True
        await self._session.execute(
            insert(DlqJob)
            .values(job_id=job.id, reason=code, payload=dead_letter)
            .on_conflict_do_update(
                index_elements=[DlqJob.job_id],
                set_={"reason": code, "payload": dead_letter, "created_at": func.now()},
            )
        )
        await self.add_event(job.id, EventType.DLQ, {"reason": message})
        return True


async def lock_tenant(session: AsyncSession, purpose: str, tenant: str) -> None:
    """Take the tenant's lock for `purpose` until this transaction ends: quota checks of one
    tenant then run one at a time in every API process, each counting what the previous one
    committed."""
    await session.execute(select(func.pg_advisory_xact_lock(func.hashtext(f"{purpose}:{tenant}"))))


class RateLimitRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def take(self, tenant: str, per_minute: int) -> float | None:
        """Count one request of `tenant` against `per_minute` (GCRA: a burst of up to
        `per_minute`, then one every 60/per_minute s); None when it is allowed, else the seconds
        until it would be. One statement, on the database clock, for every API process."""
        step = timedelta(seconds=60 / per_minute)
        window = timedelta(minutes=1)
        start = func.greatest(RateLimit.tat, func.now())
        taken = await self._session.scalar(
            insert(RateLimit)
            .values(tenant_id=tenant, tat=func.now() + step)
            .on_conflict_do_update(
                index_elements=[RateLimit.tenant_id],
                set_={"tat": start + step},
                where=start + step - func.now() <= window,
            )
            .returning(RateLimit.tat)
        )
        if taken is not None:
            return None
        wait = await self._session.scalar(
            select(func.extract("epoch", RateLimit.tat + step - window - func.now())).where(
                RateLimit.tenant_id == tenant
            )
        )
        return max(0.0, float(wait or 0.0))


class UploadRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def stored_bytes(self, tenant: str) -> int:
        """The tenant's bytes on record: its stored uploads', and its pending ones' declared
        sizes (room taken from the moment a direct upload is presigned)."""
        statement = select(func.coalesce(func.sum(Upload.size_bytes), 0)).where(
            Upload.tenant_id == tenant
        )
        return int(await self._session.scalar(statement) or 0)

    async def add(
        self, key: str, tenant: str, kind: str, size_bytes: int, media: dict[str, Any] | None
    ) -> None:
        self._session.add(
            Upload(key=key, tenant_id=tenant, kind=kind, size_bytes=size_bytes, media=media)
        )
        await self._session.flush()

    async def add_pending(
        self, key: str, tenant: str, content_type: str, size_bytes: int, expires_at: datetime
    ) -> None:
        self._session.add(
            Upload(
                key=key,
                tenant_id=tenant,
                state=UploadState.PENDING,
                size_bytes=size_bytes,
                content_type=content_type,
                expires_at=expires_at,
            )
        )
        await self._session.flush()

    async def complete(
        self, key: str, kind: str, size_bytes: int, media: dict[str, Any] | None
    ) -> bool:
        """Make a pending upload stored, with what its probe found; False when it is not
        pending (any more: retention may have just deleted it)."""
        result = await self._session.execute(
            update(Upload)
            .where(Upload.key == key, Upload.state == UploadState.PENDING)
            .values(state=UploadState.STORED, kind=kind, size_bytes=size_bytes, media=media)
            .returning(Upload.key)
        )
        return result.first() is not None

    async def delete_pending(self, key: str) -> None:
        """Forget a pending upload (never a stored one)."""
        await self._session.execute(
            delete(Upload).where(Upload.key == key, Upload.state == UploadState.PENDING)
        )

    async def delete_abandoned(self, grace: timedelta) -> list[str]:
        """Delete the pending uploads whose URL expired more than `grace` ago (by the
        database's clock); their keys. A completion racing this finds no pending row."""
        result = await self._session.execute(
            delete(Upload)
            .where(
                Upload.state == UploadState.PENDING,
                Upload.expires_at < func.now() - grace,
            )
            .returning(Upload.key)
        )
        return list(result.scalars())

    async def get(self, key: str) -> Upload | None:
        """The upload's record; None when no upload has this key on record."""
        return await self._session.get(Upload, key)

    async def delete(self, keys: Sequence[str]) -> None:
        await self._session.execute(delete(Upload).where(Upload.key.in_(keys)))


class ApiKeyRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def add(self, key_id: str, name: str, secret_hash: str, is_admin: bool) -> ApiKey:
        key = ApiKey(id=key_id, name=name, secret_hash=secret_hash, is_admin=is_admin)
        self._session.add(key)
        await self._session.flush()
        return key

    async def get(self, key_id: str) -> ApiKey | None:
        return await self._session.get(ApiKey, key_id)

    async def webhook_settings(self, key_id: str) -> tuple[str | None, int] | None:
        """The key's default callback URL and its webhook secret's version; None when there
        is no such key (as for the "local" tenant with API keys off)."""
        row = (
            await self._session.execute(
                select(ApiKey.callback_url, ApiKey.webhook_secret_version).where(
                    ApiKey.id == key_id
                )
            )
        ).first()
        return None if row is None else (row[0], row[1])

    async def all(self) -> Sequence[ApiKey]:
        return (await self._session.scalars(select(ApiKey).order_by(ApiKey.created_at))).all()

    async def next_webhook_secret_version(self, key_id: str) -> bool:
        """Move an active key's webhook secret to its next version; False without such a key."""
        result = await self._session.execute(
            update(ApiKey)
            .where(ApiKey.id == key_id, ApiKey.revoked_at.is_(None))
            .values(webhook_secret_version=ApiKey.webhook_secret_version + 1)
            .returning(ApiKey.id)
        )
        return result.first() is not None

    async def set_limits(self, key_id: str, **values: int | str | None) -> bool:
        """Change an active key's limits (and callback URL); False when there is no such key."""
        result = await self._session.execute(
            update(ApiKey)
            .where(ApiKey.id == key_id, ApiKey.revoked_at.is_(None))
            .values(**values)
            .returning(ApiKey.id)
        )
        return result.first() is not None

    async def revoke(self, key_id: str) -> bool:
        result = await self._session.execute(
            update(ApiKey)
            .where(ApiKey.id == key_id, ApiKey.revoked_at.is_(None))
            .values(revoked_at=func.now())
            .returning(ApiKey.id)
        )
        return result.first() is not None
