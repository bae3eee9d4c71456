"""/api/uploads: a source video, streamed to storage and probed, for POST /api/jobs."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Depends, Request, status

from ...errors import (
    LimitReachedError,
    PayloadTooLargeError,
    StorageFullError,
    ValidationFailedError,
)
from ...services.quotas import check_upload_bytes, upload_quota_error, upload_room
from ...services.sources import UnusableUploadError, check_upload
from ...services.uploads import record_upload
from ...storage import TooLargeError, new_upload_key, source_key
from ..deps import CallerDep, ResourcesDep, get_caller
from ..limits import count_request
from ..multipart import FIELD, FileField
from ..openapi import CREATING, error_responses
from ..schemas import Wire

router = APIRouter(prefix="/api/uploads", tags=["uploads"], dependencies=[Depends(get_caller)])


class UploadRead(Wire):
    upload_key: str
    kind: Literal["media", "subtitles"]
    size_bytes: int
    duration_ms: int
    has_video: bool
    has_audio: bool


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=UploadRead,
    responses=error_responses(*CREATING, StorageFullError),
    # The body is read as it streams (api/multipart.py), not by FastAPI: described here.
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "properties": {FIELD: {"type": "string", "format": "binary"}},
                        "required": [FIELD],
                    }
                }
            },
        }
    },
)
async def upload(request: Request, resources: ResourcesDep, caller: CallerDep) -> UploadRead:
    """Upload a video or audio file as multipart form field `file` (at most MAX_INPUT_MB, and
    within the key's upload quota). It streams straight into storage and is probed: it must
    hold a video or audio stream no longer than MAX_CLIP_INPUT_DURATION_SEC. Answers the
    `uploadKey` to use in POST /api/jobs. An .srt file is kept as a subtitles sidecar
    (`kind: subtitles`), for a job's `subtitlesKey`."""
    settings = resources.settings
    limits = await count_request(resources, caller)
    async with resources.sessions() as session:
        room = await upload_room(session, caller.scope, limits)
    largest = int(settings.max_input_mb * 2**20)
    key = new_upload_key()
    path = source_key(key)
    try:
        limit = largest if room is None else min(largest, room)
        size = await resources.storage.save(path, FileField(request).chunks(), limit)
    except TooLargeError:
        if limits is not None and room is not None and room < largest:
            raise upload_quota_error(limits) from None
        message = f"the file is over MAX_INPUT_MB ({settings.max_input_mb:g} MB)"
        raise PayloadTooLargeError(message) from None
    try:
        checked = await check_upload(resources.storage, key, settings.max_clip_input_duration_sec)
    except UnusableUploadError as exc:
        raise ValidationFailedError.field("file", str(exc)) from exc
    try:
        # Recorded with its owner (only the caller's key, or an admin's, may make jobs of it),
        # counted against the quota under the tenant's lock: concurrent uploads cannot both
        # take the last room.
        async with resources.sessions.begin() as session:
            await check_upload_bytes(session, caller.scope, limits, size)
            await record_upload(session, key, caller.scope, checked.kind, size)
    except LimitReachedError:
        await resources.storage.delete_upload(key)
        raise
    return UploadRead(
        upload_key=key,
        kind=checked.kind,
        size_bytes=size,
        duration_ms=checked.duration_ms,
        has_video=checked.has_video,
        has_audio=checked.has_audio,
    )
