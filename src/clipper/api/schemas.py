"""The API's request and response shapes (camelCase on the wire)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    HttpUrl,
    StrictBool,
    UrlConstraints,
    field_validator,
)
from pydantic.alias_generators import to_camel

from ..db.models import Job, JobEvent
from ..domain.outputs import (
    AUDIO_BITRATE_DEFAULT_KBPS,
    AUDIO_BITRATE_MAX_KBPS,
    AUDIO_BITRATE_MIN_KBPS,
    MAX_HEIGHT_MAX,
    MAX_HEIGHT_MIN,
    Container,
    OutputOptions,
    PreviewFormat,
    Quality,
    VideoCodec,
)
from ..domain.subtitles import SubtitlesMade, SubtitleSource
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


class ClipOutput(Wire):
    """What the clip is written as, and the images that come with it; every field optional.
    The default: MP4 (M4A for a source without video) with H.264 (HEVC for a 10-bit or HDR
    source) and AAC, stream-copied when that gives the same."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"container": "webm", "maxHeight": 720, "thumbnail": True, "preview": "webp"},
                {"container": "mp3", "audioBitrate": 192},
                {"videoCodec": "hevc", "quality": "high", "thumbnail": "00:00:03"},
            ]
        },
    )

    container: Container | None = Field(
        default=None,
        description="mp4 (the default; m4a for a source without video), webm, mov, mkv; "
        "m4a and mp3 are audio only (the video is left out).",
    )
    video_codec: VideoCodec | None = Field(
        default=None,
        description="Default: h264 (vp9 in webm); hevc for a 10-bit or HDR source. "
        "mp4 takes h264, hevc, av1; mov h264, hevc; webm vp9, av1; mkv any.",
    )
    audio_bitrate: int = Field(
        default=AUDIO_BITRATE_DEFAULT_KBPS,
        ge=AUDIO_BITRATE_MIN_KBPS,
        le=AUDIO_BITRATE_MAX_KBPS,
        description="kbit/s. The audio codec follows the container: aac (opus in webm, "
        "mp3 in mp3).",
    )
    quality: Quality = Field(
        default=Quality.MEDIUM,
        description="Of a re-encode: about half, the same or twice the bytes.",
    )
    max_height: int | None = Field(
        default=None,
        ge=MAX_HEIGHT_MIN,
        le=MAX_HEIGHT_MAX,
        description="Scaled down to this height (rounded down to even), keeping the aspect "
        "ratio; never scaled up.",
    )
    tone_map: bool = Field(
        default=False,
        description="Accept 8-bit SDR video from a 10-bit or HDR source (tone-mapped when "
        "HDR); without it such a source keeps 10 bits, and h264 is refused.",
    )
    # Checked whole by parse_timecode in the validator below.
    thumbnail: StrictBool | Annotated[str, Field(max_length=12)] = Field(
        default=False,
        description="true: a JPEG of the clip's first frame; a timecode: of the frame at that "
        "time into the clip (from the clip's own start).",
        examples=[True, "00:00:03"],
    )
    preview: PreviewFormat | None = Field(
        default=None,
        description="An animated, looping preview of the clip's first 3 s: 10 frames a "
        "second, at most 320 px wide.",
    )

    @field_validator("thumbnail")
    @classmethod
    def _thumbnail(cls, value: bool | str) -> bool | str:
        if isinstance(value, str):
            parse_timecode(value)  # raises ValueError with the reason
        return value

    def to_options(self) -> OutputOptions:
        thumbnail = self.thumbnail
        return OutputOptions(
            container=self.container,
            video_codec=self.video_codec,
            audio_bitrate_kbps=self.audio_bitrate,
            quality=self.quality,
            max_height=self.max_height,
            tone_map=self.tone_map,
            thumbnail_ms=parse_timecode(thumbnail)
            if isinstance(thumbnail, str)
            else (0 if thumbnail else None),
            preview=self.preview,
        )

    @classmethod
    def of(cls, options: OutputOptions) -> ClipOutput:
        at = options.thumbnail_ms
        # None: no thumbnail; 0: the first frame, as `true` asks.
        thumbnail: bool | str = at is not None if not at else format_timecode(at)
        return cls(
            container=options.container,
            video_codec=options.video_codec,
            audio_bitrate=options.audio_bitrate_kbps,
            quality=options.quality,
            max_height=options.max_height,
            tone_map=options.tone_map,
            thumbnail=thumbnail,
            preview=options.preview,
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
    output: ClipOutput = Field(default_factory=ClipOutput)


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
                },
                {
                    "sourceType": "upload",
                    "uploadKey": "up_4f9c2e1b7a6d4c3e8f0a1b2c3d4e5f60",
                    "start": "00:00:05",
                    "end": "00:00:35",
                    "output": {"container": "webm", "maxHeight": 720, "thumbnail": True},
                },
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


class SubtitlesRead(Wire):
    """Where a done job's subtitles (clip.srt) came from."""

    source: SubtitleSource = Field(
        description="`sidecar`: the uploaded .srt named in subtitlesKey; `track`: the "
        "source's own text track; `speech`: speech recognition of the clip's segment."
    )
    cues: int = Field(description="How many cues clip.srt holds (0: empty, see note).")
    language: str | None = Field(
        default=None,
        description="The track's language tag, or the language the model transcribed.",
    )
    model: str | None = Field(default=None, description="The speech model (source speech).")
    note: str | None = Field(
        default=None, description="Why the subtitles are empty, when they are (no speech)."
    )


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
    # Shown to every caller: a client key only ever reads its own jobs, so it learns no
    # other tenant's id; an admin key sees whose each job is (GET /api/jobs?keyId=).
    key_id: str = Field(
        description="The id of the API key that made the job (its tenant): the `<id>` of a "
        "`ck_<id>_<secret>` key; `local` with API keys off."
    )
    cut: str = "exact"
    # Where in the source the clip starts, once done: a fast cut's keyframe, at or before start.
    actual_start: str | None = None
    # The output choices as asked (null container and videoCodec: chosen by the source).
    output: ClipOutput = Field(default_factory=ClipOutput)
    # Once done with subtitles: where they came from.
    subtitles: SubtitlesRead | None = None
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
            key_id=job.tenant_id,
            cut=job.cut_mode,
            actual_start=None
            if job.actual_start_ms is None
            else format_timecode(job.actual_start_ms),
            output=ClipOutput.of(OutputOptions.from_json(job.output)),
            subtitles=None
            if job.subtitles is None
            # As stored (one-word keys: the stored spelling is the wire's), checked on the way.
            else SubtitlesRead.model_validate(SubtitlesMade.from_json(job.subtitles).to_json()),
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
    # The clip: clip.mp4, clip.webm, clip.m4a, ... (its container's extension).
    video: FileLink
    subtitles: FileLink | None
    # The images asked with output.thumbnail (poster.jpg) and output.preview (preview.gif or
    # preview.webp); null when not asked.
    thumbnail: FileLink | None = None
    preview: FileLink | None = None
