"""A job's sources, checked before a job may use them: an upload once it is stored, a URL
before the job is accepted (and again by the worker before it fetches)."""

from __future__ import annotations

import asyncio
from collections.abc import Collection
from dataclasses import dataclass
from typing import Literal

from ..fetch.guard import ForbiddenUrlError, check_url
from ..media.errors import UnreadableMediaError
from ..media.probe import probe_upload
from ..storage import Storage, source_key, subtitles_key


class UnusableUploadError(Exception):
    """The upload is no source to clip from (it has been deleted); the message says why."""


@dataclass(frozen=True, slots=True)
class CheckedUpload:
    kind: Literal["media", "subtitles"]
    duration_ms: int = 0
    has_video: bool = False
    has_audio: bool = False


async def check_upload(storage: Storage, upload_key: str, max_duration_sec: float) -> CheckedUpload:
    """An .srt file is kept as a subtitles sidecar too; anything else must be a video or audio
    file FFmpeg reads, no longer than `max_duration_sec` (MAX_CLIP_INPUT_DURATION_SEC)."""
    path = source_key(upload_key)
    stored = await storage.local_path(path)
    try:
        info = await probe_upload(stored)
    except UnreadableMediaError as exc:
        await storage.delete(path)
        raise UnusableUploadError(str(exc)) from exc
    if info is None:
        await storage.put_file(subtitles_key(upload_key), stored)
        return CheckedUpload("subtitles")
    if info.duration_ms > max_duration_sec * 1000:
        await storage.delete(path)
        raise UnusableUploadError(
            f"lasts {info.duration_ms / 1000:g} s; MAX_CLIP_INPUT_DURATION_SEC allows "
            f"{max_duration_sec:g} s"
        )
    return CheckedUpload("media", info.duration_ms, info.has_video, info.has_audio)


async def url_refusal(url: str, allowlist: Collection[str]) -> str | None:
    """Why the SSRF guard refuses `url`, or None when it may be fetched."""
    try:
        await asyncio.to_thread(check_url, url, allowlist)
    except ForbiddenUrlError as exc:
        return str(exc)
    return None
