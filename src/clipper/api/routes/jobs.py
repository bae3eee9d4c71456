"""/api/jobs: create a clip job, read it, its events, and the list."""

from __future__ import annotations

import base64
import binascii
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Header, Query, Request, Response, status
from sse_starlette import EventSourceResponse, ServerSentEvent

from ...errors import (
    ConflictError,
    GoneError,
    InvalidStateError,
    NotFoundError,
    NotReadyError,
    ValidationFailedError,
)
from ...services.cancel import cancel_job
from ...services.jobs import (
    IdempotencyConflictError,
    JobFilter,
    create_job,
    job_events,
    list_jobs,
    live_job,
)
from ...services.live import watch_job
from ...services.quotas import check_active_jobs
from ...services.subtitling import speech_spec
from ..clip_requests import check_uploads, check_url, to_clip_request
from ..deps import CallerDep, ResourcesDep, get_caller, json_body
from ..limits import count_request
from ..openapi import CLIPS, KEYED, error_responses
from ..resources import Resources
from ..schemas import (
    EventRead,
    FileLink,
    JobAccepted,
    JobCreate,
    JobPage,
    JobRead,
    ResultRead,
)
from ..sse import event_stream, stream_response
from .files import media_type

router = APIRouter(prefix="/api/jobs", tags=["jobs"], dependencies=[Depends(get_caller)])

# What every route naming one job may answer: unknown (or another key's), a malformed id.
ONE_JOB = (*KEYED, NotFoundError, ValidationFailedError)


@router.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=JobAccepted,
    responses=error_responses(*CLIPS),
    dependencies=[Depends(json_body)],
)
async def create(
    body: JobCreate,
    resources: ResourcesDep,
    caller: CallerDep,
    response: Response,
    idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
) -> JobAccepted:
    """Accept a clip job: stored and enqueued in one transaction, answered at once. Repeat a
    request with the same `Idempotency-Key` header to get the same job back (keys are per
    API key: another key's Idempotency-Key is a different one)."""
    limits = await count_request(resources, caller)
    request = to_clip_request(body, resources.settings)
    await check_url(request, resources.settings)
    async with resources.sessions.begin() as session:
        await check_uploads(
            session, [request], resources.storage, caller.scope, speech_spec(resources.settings)
        )
        await check_active_jobs(session, caller.scope, limits, adding=1)
        try:
            created = await create_job(
                session, resources.queue, request, caller.scope, idempotency_key
            )
        except IdempotencyConflictError as exc:
            raise ConflictError() from exc
    job = created.job
    response.headers["Location"] = f"/api/jobs/{job.id}"
    if not created.created:
        response.headers["Idempotent-Replayed"] = "true"
    return JobAccepted.of(job)


@router.get(
    "/{job_id}/result",
    response_model=ResultRead,
    responses=error_responses(*ONE_JOB, GoneError, NotReadyError),
)
async def result(
    job_id: uuid.UUID, resources: ResourcesDep, caller: CallerDep, request: Request
) -> ResultRead:
    """Short-lived signed links to the clip (and its subtitles, thumbnail and preview, each
    null unless asked) once the job is done: 409
    NOT_READY before, 410 GONE after expiry. The links serve HTTP Range requests. Their host
    is PUBLIC_BASE_URL when set (never a client's Host header then)."""
    async with resources.sessions() as session:
        job = await live_job(session, job_id, caller.scope)
    if job.status != "done" or job.result_video_key is None:
        raise NotReadyError(f"the job is {job.status}")
    public = resources.settings.public_base_url
    base = (str(public) if public is not None else str(request.base_url)).rstrip("/")

    ttl = resources.settings.result_url_ttl_sec

    async def link(key: str | None) -> FileLink | None:
        if key is None:
            return None
        # The storage's own link when it has one (an object store's presigned GET, never
        # logged), else a signed /files link this API serves.
        direct = await resources.storage.link(key, ttl, media_type(key))
        if direct is not None:
            return FileLink(url=direct, expires_at=datetime.fromtimestamp(time.time() + ttl, UTC))
        path = f"/files/{key}"
        query, expires = resources.signer.sign(path, ttl)
        return FileLink(
            url=f"{base}{path}?{query}", expires_at=datetime.fromtimestamp(expires, UTC)
        )

    video = await link(job.result_video_key)
    assert video is not None
    return ResultRead(
        video=video,
        subtitles=await link(job.result_subtitles_key),
        thumbnail=await link(job.result_thumbnail_key),
        preview=await link(job.result_preview_key),
    )


@router.post(
    "/{job_id}/cancel",
    response_model=JobRead,
    responses=error_responses(*ONE_JOB, InvalidStateError),
)
async def cancel(job_id: uuid.UUID, resources: ResourcesDep, caller: CallerDep) -> JobRead:
    """Cancel a queued or processing job: a queued one never runs; a processing one has its
    FFmpeg (or fetch) stopped within about a second, its scratch files removed. Either ends
    `cancelled` with a `cancelled` event. Repeating it is harmless; a done or failed job is a
    409 INVALID_STATE naming its status."""
    async with resources.sessions.begin() as session:
        job = await cancel_job(
            session, resources.queue, job_id, caller.scope, resources.settings.keep_finished_for
        )
        return JobRead.of(job)


@router.get("/{job_id}", response_model=JobRead, responses=error_responses(*ONE_JOB, GoneError))
async def read(job_id: uuid.UUID, resources: ResourcesDep, caller: CallerDep) -> JobRead:
    """A job's status and progress (poll it); 404 if unknown (or another key's), 410 once
    expired."""
    async with resources.sessions() as session:
        return JobRead.of(await live_job(session, job_id, caller.scope))


@router.get(
    "/{job_id}/events",
    response_model=list[EventRead],
    responses=error_responses(*ONE_JOB, GoneError),
)
async def events(job_id: uuid.UUID, resources: ResourcesDep, caller: CallerDep) -> list[EventRead]:
    """Everything that happened to a job, oldest first."""
    async with resources.sessions() as session:
        return [EventRead.of(event) for event in await job_events(session, job_id, caller.scope)]


@router.get(
    "/{job_id}/stream",
    response_class=EventSourceResponse,
    responses={
        **stream_response(
            "`event: job` with the job as GET /api/jobs/{id} answers it: at once, then each "
            "time it changes; `id:` is its latest event's sequence number (send it back as "
            "Last-Event-ID to resume); `: keepalive` comments every 15 s; the stream ends "
            "after a terminal status (done, failed, cancelled)."
        ),
        **error_responses(*ONE_JOB, GoneError),
    },
)
async def stream(
    job_id: uuid.UUID,
    resources: ResourcesDep,
    caller: CallerDep,
    last_event_id: Annotated[int | None, Header(ge=0)] = None,
) -> EventSourceResponse:
    """The job, pushed (Server-Sent Events) as it changes, from PostgreSQL LISTEN/NOTIFY:
    see docs/api.md. 404 if unknown (or another key's), 410 once expired."""
    async with resources.sessions() as session:
        await live_job(session, job_id, caller.scope)  # 404 or 410 before any stream
    return event_stream(_job_events(resources, job_id, last_event_id))


async def _job_events(
    resources: Resources, job_id: uuid.UUID, after: int | None
) -> AsyncIterator[ServerSentEvent]:
    # Subscribed here, when the stream runs (a response never sent leaves nothing behind),
    # and before watch_job reads the job: no change from then on is missed.
    subscription = resources.changes.subscribe(job_id)
    try:
        async for sequence, job in watch_job(resources.sessions, subscription, job_id, after):
            data = JobRead.of(job).model_dump_json(by_alias=True)
            yield ServerSentEvent(data, event="job", id=str(sequence))
    finally:
        subscription.close()


@router.get("", response_model=JobPage, responses=error_responses(*KEYED, ValidationFailedError))
async def page(
    resources: ResourcesDep,
    caller: CallerDep,
    status_filter: Annotated[
        Literal["queued", "processing", "done", "failed", "cancelled"] | None,
        Query(alias="status"),
    ] = None,
    priority: Literal["fast", "normal", "bulk"] | None = None,
    key_id: Annotated[str | None, Query(alias="keyId", title="Key id", max_length=200)] = None,
    created_after: Annotated[
        datetime | None, Query(alias="createdAfter", title="Created after")
    ] = None,
    created_before: Annotated[
        datetime | None, Query(alias="createdBefore", title="Created before")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> JobPage:
    """The caller's jobs (an admin key's: everyone's), newest first; pass `nextCursor` back as
    `cursor` for the next page (with the same filters). Filters: `status`, `priority`,
    `keyId` (the API key that made the job: an admin key's choice of tenant; for any other
    key only its own id finds anything), `createdAfter` (inclusive) and `createdBefore`
    (exclusive), ISO 8601 (without an offset: UTC)."""
    after = None if cursor is None else _decode_cursor(cursor)
    filters = JobFilter(
        status=status_filter,
        priority=priority,
        tenant=key_id,
        created_after=_utc(created_after),
        created_before=_utc(created_before),
    )
    async with resources.sessions() as session:
        found = await list_jobs(session, caller.scope, filters, after, limit)
    items = [JobRead.of(job) for job in found.jobs]
    return JobPage(items=items, next_cursor=_encode_cursor(items[-1]) if found.more else None)


def _utc(moment: datetime | None) -> datetime | None:
    """A time without an offset is UTC (never the database session's time zone)."""
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC)


def _encode_cursor(job: JobRead) -> str:
    return base64.urlsafe_b64encode(f"{job.created_at.isoformat()}|{job.id}".encode()).decode()


def _decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    try:
        created, job_id = base64.urlsafe_b64decode(cursor.encode()).decode().split("|")
        return datetime.fromisoformat(created), uuid.UUID(job_id)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise ValidationFailedError.field("cursor", "is not a cursor this API gave out") from None
