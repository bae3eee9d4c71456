"""A job's sources, checked before a job may use them: an upload once it is stored, a URL
before the job is accepted (and again by the worker before it fetches)."""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from ..domain.clips import ClipRequest
from ..domain.timecode import format_timecode
from ..fetch.guard import ForbiddenUrlError, check_url
from ..media.cutting import range_fits
from ..media.errors import UnreadableMediaError
from ..media.probe import MediaInfo, probe_upload
from ..media.subtitles import matching_track
from ..storage import Storage, source_key, subtitles_key
from .reading import SourceReading
from .subtitling import SpeechModelSpec, speech_refusal


class UnusableUploadError(Exception):
    """The upload is no source to clip from (it has been deleted); the message says why."""


@dataclass(frozen=True, slots=True)
class CheckedUpload:
    kind: Literal["media", "subtitles"]
    media: MediaInfo | None = None  # what a media upload holds (None for a sidecar)


async def check_upload(
    storage: Storage, reading: SourceReading, upload_key: str, max_duration_sec: float
) -> CheckedUpload:
    """An .srt file is kept as a subtitles sidecar too; anything else must be a video or audio
    file FFmpeg reads whole (not truncated, not corrupt), no longer than `max_duration_sec`
    (MAX_CLIP_INPUT_DURATION_SEC)."""
    path = source_key(upload_key)
    # An object store's copy is read by range, or (range reads off) downloaded into this
    # folder for the probe and removed with it; LocalStorage probes the stored file itself.
    with tempfile.TemporaryDirectory(prefix="clipper-probe-") as scratch:
        async with reading.stored(path, Path(scratch)) as stored:
            try:
                info = await probe_upload(stored)
            except UnreadableMediaError as exc:
                await storage.delete(path)
                raise UnusableUploadError(str(exc)) from exc
    if info is None:
        await storage.rename(path, subtitles_key(upload_key))
        return CheckedUpload("subtitles")
    if info.duration_ms > max_duration_sec * 1000:
        await storage.delete(path)
        raise UnusableUploadError(
            f"lasts {info.duration_ms / 1000:g} s; MAX_CLIP_INPUT_DURATION_SEC allows "
            f"{max_duration_sec:g} s"
        )
    return CheckedUpload("media", info)


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a clip request cannot work with its source: the request's field at fault (its
    ClipRequest attribute) and what is wrong with it."""

    field: Literal["start_ms", "end_ms", "subtitle_lang"]
    message: str


def clip_refusal(media: MediaInfo, request: ClipRequest, speech: SpeechModelSpec) -> Refusal | None:
    """What in `request` cannot work with a source holding `media`, or None. The same rules
    as the worker's (cutting; subtitles from speech with the model `speech` names, when no
    sidecar or track has them), asked before anything is queued."""
    lasts = f"the source lasts {format_timecode(media.duration_ms)}"
    if request.start_ms >= media.duration_ms:
        return Refusal("start_ms", f"is at or past the end of the source ({lasts})")
    if not range_fits(request.end_ms, media):
        return Refusal("end_ms", f"is past the end of the source ({lasts})")
    if (
        request.with_subtitles
        and request.subtitles_upload_key is None
        and matching_track(media, request.subtitle_lang) is None
        and media.has_audio  # else empty subtitles, in any language
        and (refusal := speech_refusal(request.subtitle_lang, speech)) is not None
    ):
        track = "" if media.subtitle_streams == 0 else f"{request.subtitle_lang} "
        return Refusal(
            "subtitle_lang",
            f"the source has no {track}subtitle track, and {refusal}; or upload an .srt "
            "file and name it in subtitlesKey",
        )
    return None


async def url_refusal(url: str, allowlist: Collection[str]) -> str | None:
    """Why the SSRF guard refuses `url`, or None when it may be fetched."""
    try:
        await asyncio.to_thread(check_url, url, allowlist)
    except ForbiddenUrlError as exc:
        return str(exc)
    return None
