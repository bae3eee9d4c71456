"""/api/uploads: a source video, streamed to storage and probed, for POST /api/jobs (a direct
upload to the object store is direct_uploads.py; a resumable one resumable_uploads.py)."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Depends, Request, status

from ...errors import (
    LimitReachedError,
    PayloadTooLargeError,
    StorageFullError,
    ValidationFailedError,
)
from ...services.quotas import Limits, check_upload_bytes, upload_quota_error, upload_room
from ...services.sources import CheckedUpload, UnusableUploadError, check_upload
from ...services.uploads import (
    record_upload,
)
from ...settings import Settings
from ...storage import TooLargeError, new_upload_key, source_key
from ..auth import Caller
from ..deps import CallerDep, ResourcesDep, get_caller
from ..limits import count_request
from ..multipart import FIELD, FileField
from ..openapi import CREATING, error_responses
from ..resources import Resources
from ..schemas import Wire

router = APIRouter(prefix="/api/uploads", tags=["uploads"], dependencies=[Depends(get_caller)])


class UploadRead(Wire):
    """A stored upload and what its probe found in it (zeros and nulls for a sidecar)."""

    upload_key: str
    kind: Literal["media", "subtitles"]
    size_bytes: int
    duration_ms: int
    has_video: bool
    has_audio: bool
    # FFmpeg's codec names, e.g. "h264", "hevc", "vp9", "aac", "opus".
    video_codec: str | None = None
    audio_codec: str | None = None
    width: int = 0
    height: int = 0
    bit_depth: int = 0
    hdr: bool = False
    # Language tags of its subtitle tracks, in order ("und" when untagged).
    subtitle_languages: list[str] = []

    @classmethod
    def of(cls, key: str, size_bytes: int, checked: CheckedUpload) -> UploadRead:
        media = checked.media
        if media is None:
            return cls(
                upload_key=key,
                kind=checked.kind,
                size_bytes=size_bytes,
                duration_ms=0,
                has_video=False,
                has_audio=False,
            )
        return cls(
            upload_key=key,
            kind=checked.kind,
            size_bytes=size_bytes,
            duration_ms=media.duration_ms,
            has_video=media.has_video,
            has_audio=media.has_audio,
            video_codec=media.video_codec,
            audio_codec=media.audio_codec,
            width=media.width,
            height=media.height,
            bit_depth=media.bit_depth,
            hdr=media.hdr,
            subtitle_languages=list(media.subtitle_languages),
        )


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
    largest = settings.max_input_bytes
    key = new_upload_key()
    path = source_key(key)
    try:
        limit = largest if room is None else min(largest, room)
        size = await resources.storage.save(path, FileField(request).chunks(), limit)
    except TooLargeError:
        if limits is not None and room is not None and room < largest:
            raise upload_quota_error(limits) from None
        raise file_too_large(settings) from None
    return await accept_upload(resources, caller, limits, key, size)


def file_too_large(settings: Settings) -> PayloadTooLargeError:
    """An upload over MAX_INPUT_MB, in one request or resumable: the same words for both."""
    return PayloadTooLargeError(f"the file is over {settings.max_input_mb:g} MB (MAX_INPUT_MB)")


async def accept_upload(
    resources: Resources, caller: Caller, limits: Limits | None, key: str, size: int
) -> UploadRead:
    """An upload stored under `key` (`size` bytes), however it arrived through the API (one
    request, or a resumable upload's last part): probed, then recorded with its owner and
    what it holds, or deleted with a 422 naming `file` (or a 429 over the quota)."""
    checked = await probed_upload(resources, key, "file")
    try:
        # Recorded with its owner (only the caller's key, or an admin's, may make jobs of it),
        # counted against the quota under the tenant's lock: concurrent uploads cannot both
        # take the last room.
        async with resources.sessions.begin() as session:
            await check_upload_bytes(session, caller.scope, limits, size)
            await record_upload(session, key, caller.scope, checked.kind, size, checked.media)
    except LimitReachedError:
        await resources.storage.delete_upload(key)
        raise
    return UploadRead.of(key, size, checked)


async def probed_upload(resources: Resources, key: str, field: str) -> CheckedUpload:
    """What the upload stored under `key` is (read by range in an object store); a 422 naming
    `field` when it is no source to clip from (it is deleted then)."""
    try:
        return await check_upload(
            resources.storage,
            resources.reading,
            key,
            resources.settings.max_clip_input_duration_sec,
        )
    except UnusableUploadError as exc:
        raise ValidationFailedError.field(field, str(exc)) from exc
