"""The API's request and response shapes (camelCase on the wire)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, HttpUrl, UrlConstraints, field_validator
from pydantic.alias_generators import to_camel

from ..db.models import Job, JobEvent
from ..domain.timecode import format_timecode, parse_timecode

# Patterns run on pydantic-core's Rust regex engine, where `$` is the end of the text (a
# trailing newline does not match) and `\d` means any Unicode digit: hence explicit [0-9].
# A BCP 47 tag (35 characters hold any real one, RFC 5646 section 4.4.1), or "auto".
SUBTITLE_LANG_PATTERN = r"^(auto|[a-z]{2,3}(-[A-Za-z0-9]{2,8})*)$"
SUBTITLE_LANG_MAX = 35
URL_MAX = 2048
KEY_MAX = 200


def _title(name: str, _field: object) -> str:
    """A field's title in the OpenAPI document, from its Python name: `Source type`, where
    pydantic's own, made from the camelCase alias, would squash it to `Sourcetype`."""
    return name.replace("_", " ").capitalize()


class Wire(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, field_title_generator=_title
    )


class JobSource(Wire):
    """What clips are cut from, and how: exactly one of uploadKey (sourceType=upload) and
    youtubeUrl (sourceType=youtube); burnSubtitles needs withSubtitles. Shared by one job
    (JobCreate) and a batch of them (BatchCreate)."""

    model_config = ConfigDict(alias_generator=to_camel, extra="forbid")

    source_type: Literal["upload", "youtube"]
    upload_key: str | None = Field(default=None, min_length=1, max_length=KEY_MAX)
    youtube_url: Annotated[HttpUrl, UrlConstraints(max_length=URL_MAX)] | None = None
    with_subtitles: bool = False
    burn_subtitles: bool = False
    subtitle_lang: str = Field(
        default="auto", max_length=SUBTITLE_LANG_MAX, pattern=SUBTITLE_LANG_PATTERN
    )
    subtitles_key: str | None = Field(default=None, min_length=1, max_length=KEY_MAX)
    priority: Literal["fast", "normal", "bulk"] = "normal"
    # POSTed the job's status, signed, when it ends; unset: the API key's default, if any.
    callback_url: Annotated[HttpUrl, UrlConstraints(max_length=URL_MAX)] | None = None
    # exact: from the frame on screen at start; fast: from the keyframe before it (copy).
    cut: Literal["exact", "fast"] = "exact"


class ClipSpan(Wire):
    """Where a clip starts and ends in its source (start < end)."""

    model_config = ConfigDict(alias_generator=to_camel, extra="forbid")

    # Checked whole by parse_timecode (ASCII digits, in range) in the validator below.
    start: str = Field(max_length=12, examples=["00:01:05.250"])
    end: str = Field(max_length=12, examples=["00:01:35"])

    @field_validator("start", "end")
    @classmethod
    def _timecode(cls, value: str) -> str:
        parse_timecode(value)  # raises ValueError with the reason
        return value


# ClipSpan first: its fields then follow the source's (the MRO is walked from the end).
class JobCreate(ClipSpan, JobSource):
    """A clip request: its source and its span."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "sourceType": "upload",
                    "uploadKey": "up_4f9c2e1b7a6d4c3e8f0a1b2c3d4e5f60",
                    "start": "00:00:05",
                    "end": "00:00:35",
                    "priority": "fast",
                }
            ]
        }
    )


# The most clips one batch request may ask for: a long recording's highlights, not a backlog.
BATCH_MAX_CLIPS = 50


class BatchCreate(JobSource):
    """Clips of one source in one request: each becomes an ordinary job."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "sourceType": "upload",
                    "uploadKey": "up_4f9c2e1b7a6d4c3e8f0a1b2c3d4e5f60",
                    "priority": "bulk",
                    "clips": [
                        {"start": "00:00:05", "end": "00:00:15"},
                        {"start": "00:00:40", "end": "00:00:50"},
                    ],
                }
            ]
        }
    )

    clips: list[ClipSpan] = Field(min_length=1, max_length=BATCH_MAX_CLIPS)


class Links(Wire):
    self: str
    events: str


class ErrorRead(Wire):
    code: str
    message: str | None


class JobRead(Wire):
    id: uuid.UUID
    status: str
    priority: str
    progress: int
    attempts: int
    source_type: str
    upload_key: str | None
    youtube_url: str | None
    start: str
    end: str
    with_subtitles: bool
    burn_subtitles: bool
    subtitle_lang: str | None
    subtitles_key: str | None
    # The batch (POST /api/jobs/batch) it came in, if any.
    batch_id: uuid.UUID | None = None
    cut: str = "exact"
    # Where in the source the clip starts, once done: a fast cut's keyframe, at or before start.
    actual_start: str | None = None
    error: ErrorRead | None
    created_at: datetime
    updated_at: datetime
    expires_at: datetime | None
    links: Links

    @classmethod
    def of(cls, job: Job) -> JobRead:
        return cls(
            id=job.id,
            status=job.status,
            priority=job.priority,
            progress=job.progress,
            attempts=job.attempts,
            source_type=job.source_type,
            upload_key=job.upload_key,
            youtube_url=job.source_url,
            start=format_timecode(job.start_ms),
            end=format_timecode(job.end_ms),
            with_subtitles=job.with_subtitles,
            burn_subtitles=job.burn_subtitles,
            subtitle_lang=job.subtitle_lang,
            subtitles_key=job.subtitles_upload_key,
            batch_id=job.batch_id,
            cut=job.cut_mode,
            actual_start=None
            if job.actual_start_ms is None
            else format_timecode(job.actual_start_ms),
            error=ErrorRead(code=job.error_code, message=job.error_message)
            if job.error_code
            else None,
            created_at=job.created_at,
            updated_at=job.updated_at,
            expires_at=job.expires_at,
            links=links(job.id),
        )


def links(job_id: uuid.UUID) -> Links:
    return Links(self=f"/api/jobs/{job_id}", events=f"/api/jobs/{job_id}/events")


class JobAccepted(Wire):
    id: uuid.UUID
    status: str
    priority: str
    created_at: datetime
    expires_at: datetime | None
    links: Links

    @classmethod
    def of(cls, job: Job) -> JobAccepted:
        return cls(
            id=job.id,
            status=job.status,
            priority=job.priority,
            created_at=job.created_at,
            expires_at=job.expires_at,
            links=links(job.id),
        )


class BatchAccepted(Wire):
    batch_id: uuid.UUID
    # In the order of the request's clips.
    jobs: list[JobAccepted]


class EventRead(Wire):
    id: int
    type: str
    payload: dict[str, Any]
    created_at: datetime

    @classmethod
    def of(cls, event: JobEvent) -> EventRead:
        return cls(id=event.id, type=event.type, payload=event.payload, created_at=event.created_at)


class JobPage(Wire):
    items: list[JobRead]
    next_cursor: str | None


class DeadLetterRead(Wire):
    job_id: uuid.UUID
    reason: str
    payload: dict[str, Any]
    created_at: datetime


class FileLink(Wire):
    url: str
    expires_at: datetime


class ResultRead(Wire):
    video: FileLink
    subtitles: FileLink | None
