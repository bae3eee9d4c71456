"""The API's request and response shapes (camelCase on the wire)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, HttpUrl, field_validator
from pydantic.alias_generators import to_camel

from ..db.models import Job, JobEvent
from ..domain.timecode import format_timecode, parse_timecode


class Wire(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)


class JobCreate(Wire):
    """A clip request. Exactly one of uploadKey (sourceType=upload) and youtubeUrl
    (sourceType=youtube); start < end; burnSubtitles needs withSubtitles."""

    model_config = ConfigDict(alias_generator=to_camel, extra="forbid")

    source_type: Literal["upload", "youtube"]
    upload_key: str | None = Field(default=None, min_length=1, max_length=200)
    youtube_url: HttpUrl | None = None
    start: str = Field(examples=["00:01:05.250"])
    end: str = Field(examples=["00:01:35"])
    with_subtitles: bool = False
    burn_subtitles: bool = False
    subtitle_lang: str = Field(default="auto", pattern=r"^(auto|[a-z]{2,3}(-[A-Za-z0-9]{2,8})*)$")
    subtitles_key: str | None = Field(default=None, min_length=1, max_length=200)
    priority: Literal["fast", "normal", "bulk"] = "normal"

    @field_validator("start", "end")
    @classmethod
    def _timecode(cls, value: str) -> str:
        parse_timecode(value)  # raises ValueError with the reason
        return value


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
