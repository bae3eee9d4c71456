"""/api/jobs: create a clip job, read it, its events, and the list."""

from __future__ import annotations

import base64
import binascii
import uuid
from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Header, Query, Request, Response, status
from sqlalchemy.ext.asyncio import AsyncSession

from ...domain.clips import ClipRequest
from ...domain.jobs import Priority, SourceType
from ...domain.tenancy import Scope
from ...domain.timecode import parse_timecode
from ...errors import (
    ClipTooLongError,
    ConflictError,
    NotReadyError,
    UrlSourcesDisabledError,
    ValidationFailedError,
)
from ...services.cancel import cancel_job
from ...services.jobs import (
    IdempotencyConflictError,
    create_job,
    job_events,
    list_jobs,
    live_job,
)
from ...services.sources import url_refusal
from ...services.uploads import upload_reachable
from ...settings import Settings
from ...storage import Storage, source_key, subtitles_key
from ..deps import CallerDep, ResourcesDep, get_caller
from ..schemas import (
    EventRead,
    FileLink,
    JobAccepted,
    JobCreate,
    JobPage,
    JobRead,
    ResultRead,
    links,
)

router = APIRouter(prefix="/api/jobs", tags=["jobs"], dependencies=[Depends(get_caller)])


@router.post("", status_code=status.HTTP_202_ACCEPTED, response_model=JobAccepted)
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
    request = to_clip_request(body, resources.settings)
    await _check_url(request, resources.settings)
    async with resources.sessions.begin() as session:
        await _check_uploads(session, request, resources.storage, caller.scope)
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
    return JobAccepted(
        id=job.id,
        status=job.status,
        priority=job.priority,
        created_at=job.created_at,
        expires_at=job.expires_at,
        links=links(job.id),
    )


def to_clip_request(body: JobCreate, settings: Settings) -> ClipRequest:
    """The rules across fields; each failure names the field to fix."""
    if body.source_type == "upload":
        if body.upload_key is None:
            raise ValidationFailedError.field("uploadKey", "is required when sourceType is upload")
        if body.youtube_url is not None:
            raise ValidationFailedError.field("youtubeUrl", "must be absent for an upload")
    else:
        if body.youtube_url is None:
            raise ValidationFailedError.field(
                "youtubeUrl", "is required when sourceType is youtube"
            )
        if body.upload_key is not None:
            raise ValidationFailedError.field("uploadKey", "must be absent for a youtube source")
    start_ms, end_ms = parse_timecode(body.start), parse_timecode(body.end)
    if end_ms <= start_ms:
        raise ValidationFailedError.field("end", "must be after start")
    if body.burn_subtitles and not body.with_subtitles:
        raise ValidationFailedError.field("burnSubtitles", "needs withSubtitles")
    if body.subtitles_key is not None and not body.with_subtitles:
        raise ValidationFailedError.field("subtitlesKey", "needs withSubtitles")
    limit_ms = int(settings.clip_max_duration_sec * 1000)
    if end_ms - start_ms > limit_ms:
        seconds = (end_ms - start_ms) / 1000
        raise ClipTooLongError(
            f"end: the clip is {seconds:g} s long; CLIP_MAX_DURATION_SEC allows "
            f"{settings.clip_max_duration_sec:g} s",
            [{"field": "end", "message": "makes the clip too long"}],
        )
    return ClipRequest(
        source_type=SourceType(body.source_type),
        start_ms=start_ms,
        end_ms=end_ms,
        priority=Priority(body.priority),
        upload_key=body.upload_key,
        source_url=None if body.youtube_url is None else str(body.youtube_url),
        with_subtitles=body.with_subtitles,
        burn_subtitles=body.burn_subtitles,
        subtitle_lang=body.subtitle_lang,
        subtitles_upload_key=body.subtitles_key,
    )


async def _check_url(request: ClipRequest, settings: Settings) -> None:
    if request.source_url is None:
        return
    if not settings.enable_ytdlp:
        raise UrlSourcesDisabledError()
    # Checked again before the fetch itself: DNS answers can change in between.
    refusal = await url_refusal(request.source_url, settings.allowed_hosts)
    if refusal is not None:
        raise ValidationFailedError.field("youtubeUrl", refusal)


async def _check_uploads(
    session: AsyncSession, request: ClipRequest, storage: Storage, scope: Scope
) -> None:
    """The uploads the job names exist and the caller may use them; another tenant's upload
    is "missing" exactly like one that never was."""
    named = (
        ("uploadKey", request.upload_key, source_key, "no upload has this key"),
        (
            "subtitlesKey",
            request.subtitles_upload_key,
            subtitles_key,
            "no subtitles upload has this key",
        ),
    )
    for field, upload_key, locate, missing in named:
        if upload_key is None:
            continue
        try:
            stored_as = locate(upload_key)
        except ValueError as exc:
            raise ValidationFailedError.field(field, str(exc)) from None
        if not await upload_reachable(session, storage, upload_key, stored_as, scope):
            raise ValidationFailedError.field(field, missing)


@router.get("/{job_id}/result", response_model=ResultRead)
async def result(
    job_id: uuid.UUID, resources: ResourcesDep, caller: CallerDep, request: Request
) -> ResultRead:
    """Short-lived signed links to the clip (and subtitles) once the job is done: 409
    NOT_READY before, 410 GONE after expiry. The links serve HTTP Range requests. Their host
    is PUBLIC_BASE_URL when set (never a client's Host header then)."""
    async with resources.sessions() as session:
        job = await live_job(session, job_id, caller.scope)
    if job.status != "done" or job.result_video_key is None:
        raise NotReadyError(f"the job is {job.status}")
    public = resources.settings.public_base_url
    base = (str(public) if public is not None else str(request.base_url)).rstrip("/")

    def link(key: str | None) -> FileLink | None:
        if key is None:
            return None
        path = f"/files/{key}"
        query, expires = resources.signer.sign(path, resources.settings.result_url_ttl_sec)
        return FileLink(
            url=f"{base}{path}?{query}", expires_at=datetime.fromtimestamp(expires, UTC)
        )

    video = link(job.result_video_key)
    assert video is not None
    return ResultRead(video=video, subtitles=link(job.result_subtitles_key))


@router.post("/{job_id}/cancel", response_model=JobRead)
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


@router.get("/{job_id}", response_model=JobRead)
async def read(job_id: uuid.UUID, resources: ResourcesDep, caller: CallerDep) -> JobRead:
    """A job's status and progress (poll it); 404 if unknown (or another key's), 410 once
    expired."""
    async with resources.sessions() as session:
        return JobRead.of(await live_job(session, job_id, caller.scope))


@router.get("/{job_id}/events", response_model=list[EventRead])
async def events(job_id: uuid.UUID, resources: ResourcesDep, caller: CallerDep) -> list[EventRead]:
    """Everything that happened to a job, oldest first."""
    async with resources.sessions() as session:
        return [EventRead.of(event) for event in await job_events(session, job_id, caller.scope)]


@router.get("", response_model=JobPage)
async def page(
    resources: ResourcesDep,
    caller: CallerDep,
    status_filter: Annotated[
        Literal["queued", "processing", "done", "failed", "cancelled"] | None,
        Query(alias="status"),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> JobPage:
    """The caller's jobs (an admin key's: everyone's), newest first; pass `nextCursor` back as
    `cursor` for the next page."""
    after = None if cursor is None else _decode_cursor(cursor)
    async with resources.sessions() as session:
        found = await list_jobs(session, caller.scope, status_filter, after, limit)
    items = [JobRead.of(job) for job in found.jobs]
    return JobPage(items=items, next_cursor=_encode_cursor(items[-1]) if found.more else None)


def _encode_cursor(job: JobRead) -> str:
    return base64.urlsafe_b64encode(f"{job.created_at.isoformat()}|{job.id}".encode()).decode()


def _decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    try:
        created, job_id = base64.urlsafe_b64decode(cursor.encode()).decode().split("|")
        return datetime.fromisoformat(created), uuid.UUID(job_id)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise ValidationFailedError.field("cursor", "is not a cursor this API gave out") from None
