"""From a request body to the checked ClipRequests the services take, and the checks of their
source, for one job (POST /api/jobs) and for a batch (POST /api/jobs/batch) alike."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from ..domain.clips import ClipRequest, CutMode
from ..domain.jobs import Priority, SourceType
from ..domain.tenancy import Scope
from ..domain.timecode import format_timecode, parse_timecode
from ..errors import ClipTooLongError, UrlSourcesDisabledError, ValidationFailedError
from ..services.outputs import check_output, choices_refusal
from ..services.sources import Refusal, clip_refusal, url_refusal
from ..services.subtitling import SpeechModelSpec, speech_refusal, speech_spec
from ..services.uploads import reachable_upload
from ..settings import Settings
from ..storage import Storage, source_key, subtitles_key
from .errors import field_name
from .schemas import BatchCreate, ClipSpan, JobCreate, JobSource


def to_clip_request(body: JobCreate, settings: Settings) -> ClipRequest:
    """The rules across fields; each failure names the field to fix."""
    _check_source(body)
    return _clip_request(body, body, settings, at=())


def to_clip_requests(body: BatchCreate, settings: Settings) -> list[ClipRequest]:
    """One request per clip, in order, each checked like a single job's; a failure names
    its clip, e.g. `clips[3].end`."""
    _check_source(body)
    return [
        _clip_request(body, span, settings, at=("clips", index))
        for index, span in enumerate(body.clips)
    ]


def _check_source(body: JobSource) -> None:
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
    if body.burn_subtitles and not body.with_subtitles:
        raise ValidationFailedError.field("burnSubtitles", "needs withSubtitles")
    if body.subtitles_key is not None and not body.with_subtitles:
        raise ValidationFailedError.field("subtitlesKey", "needs withSubtitles")
    if body.burn_subtitles and body.cut == "fast":
        raise ValidationFailedError.field("burnSubtitles", "needs an exact cut (it re-encodes)")
    container = body.output.container
    if body.burn_subtitles and container is not None and container.audio_only:
        raise ValidationFailedError.field("burnSubtitles", f"needs video, and {container} has none")
    # What fails whatever the source; the rest once it is known (check_uploads, the worker).
    if (refusal := choices_refusal(body.output.to_options(), CutMode(body.cut))) is not None:
        raise ValidationFailedError.field(f"output.{refusal.field}", refusal.message)


def _clip_request(
    source: JobSource, span: ClipSpan, settings: Settings, at: tuple[str | int, ...]
) -> ClipRequest:
    """`at`: where `span` is in the body (empty when its fields are the body's own)."""
    end_field = field_name((*at, "end"))
    start_ms, end_ms = parse_timecode(span.start), parse_timecode(span.end)
    if end_ms <= start_ms:
        raise ValidationFailedError.field(end_field, "must be after start")
    limit_ms = int(settings.clip_max_duration_sec * 1000)
    if end_ms - start_ms > limit_ms:
        seconds = (end_ms - start_ms) / 1000
        raise ClipTooLongError(
            f"{end_field}: the clip is {seconds:g} s long; CLIP_MAX_DURATION_SEC allows "
            f"{settings.clip_max_duration_sec:g} s",
            [{"field": end_field, "message": "makes the clip too long"}],
        )
    output = source.output.to_options()
    if output.thumbnail_ms is not None and output.thumbnail_ms >= end_ms - start_ms:
        lasts = f"lasts {format_timecode(end_ms - start_ms)}"
        raise ValidationFailedError.field(  # one output for all of a batch's clips
            "output.thumbnail",
            f"is at or past the end of the clip ({field_name(at)} {lasts})"
            if at
            else f"is at or past the end of the clip (it {lasts})",
        )
    return ClipRequest(
        source_type=SourceType(source.source_type),
        start_ms=start_ms,
        end_ms=end_ms,
        priority=Priority(source.priority),
        upload_key=source.upload_key,
        source_url=None if source.youtube_url is None else str(source.youtube_url),
        with_subtitles=source.with_subtitles,
        burn_subtitles=source.burn_subtitles,
        subtitle_lang=source.subtitle_lang,
        subtitles_upload_key=source.subtitles_key,
        callback_url=None if source.callback_url is None else str(source.callback_url),
        cut=CutMode(source.cut),
        output=output,
    )


async def check_url(request: ClipRequest, settings: Settings) -> None:
    """A URL source is allowed (ENABLE_YTDLP), the SSRF guard lets it and the callback URL
    through, and the speech model can do the subtitles' language."""
    if request.source_url is not None and not settings.enable_ytdlp:
        raise UrlSourcesDisabledError()
    # A URL's media carries no text track in practice (sites serve captions apart): its
    # subtitles come from speech, in a language the model must do.
    if (
        request.source_url is not None
        and request.with_subtitles
        and request.subtitles_upload_key is None
        and (unheard := speech_refusal(request.subtitle_lang, speech_spec(settings)))
    ):
        raise ValidationFailedError.field(
            "subtitleLang", f"{unheard}; or upload an .srt file and name it in subtitlesKey"
        )
    # Checked again before each connection (the fetch, each webhook): DNS answers change.
    for field, url in (("youtubeUrl", request.source_url), ("callbackUrl", request.callback_url)):
        if url is not None and (refusal := await url_refusal(url, settings.allowed_hosts)):
            raise ValidationFailedError.field(field, refusal)


async def check_uploads(
    session: AsyncSession,
    requests: Sequence[ClipRequest],
    storage: Storage,
    scope: Scope,
    speech: SpeechModelSpec,
    *,
    batch: bool = False,
) -> None:
    """The uploads the clips name (one source for all of them) exist and the caller may use
    them; another tenant's upload is "missing" exactly like one that never was. Each clip must
    then work with what the upload holds: its range within the source's duration, subtitles
    from a sidecar, a track it has, or speech the model `speech` names can transcribe.
    `batch`: the requests are a batch's clips, and a range is named by its clip, e.g.
    `clips[2].end`."""
    source = requests[0]
    named = (
        ("uploadKey", source.upload_key, source_key, "no upload has this key"),
        (
            "subtitlesKey",
            source.subtitles_upload_key,
            subtitles_key,
            "no subtitles upload has this key",
        ),
    )
    media = None
    for field, upload_key, locate, missing in named:
        if upload_key is None:
            continue
        try:
            stored_as = locate(upload_key)
        except ValueError as exc:
            raise ValidationFailedError.field(field, str(exc)) from None
        upload = await reachable_upload(session, storage, upload_key, stored_as, scope)
        if upload is None:
            raise ValidationFailedError.field(field, missing)
        if field == "uploadKey":
            media = upload.media
    if media is None:  # a URL source (checked on the worker), or an upload from before 0011
        return
    for index, request in enumerate(requests):
        if (refusal := clip_refusal(media, request, speech)) is not None:
            raise ValidationFailedError.field(_wire_field(refusal, index, batch), refusal.message)
    if (unfit := check_output(media, source)) is not None:  # one output for all the clips
        raise ValidationFailedError.field(f"output.{unfit.field}", unfit.message)


# The request's fields by their ClipRequest names; start and end belong to each clip.
_WIRE_NAMES = {
    "start_ms": "start",
    "end_ms": "end",
    "subtitle_lang": "subtitleLang",
}


def _wire_field(refusal: Refusal, index: int, batch: bool) -> str:
    name = _WIRE_NAMES[refusal.field]
    in_clip = batch and refusal.field in ("start_ms", "end_ms")
    return field_name(("clips", index, name) if in_clip else (name,))
