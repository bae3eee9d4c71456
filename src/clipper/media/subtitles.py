"""Subtitles from the source's own track: cut to the segment (timestamps shifted to the clip),
stored as SRT, and optionally burned into the video."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from pathlib import Path

import srt

from .errors import SubtitleFontsMissingError, SubtitlesMissingError
from .ffmpeg import run_ffmpeg
from .inputs import MediaInput, input_arguments
from .probe import MediaInfo

logger = logging.getLogger("clipper.media")


def pick_track(info: MediaInfo, language: str | None) -> int:
    """The subtitle stream to use: the first for `auto`, else the first whose language tag
    starts with the requested code's first two letters (so `en` finds `eng`)."""
    if not info.subtitle_languages:
        raise SubtitlesMissingError("the source has no subtitle track")
    if language in (None, "auto"):
        return 0
    wanted = language[:2].lower()
    for index, tag in enumerate(info.subtitle_languages):
        if tag.lower().startswith(wanted):
            return index
    found = ", ".join(info.subtitle_languages)
    raise SubtitlesMissingError(f"no {language} subtitle track (the source has: {found})")


async def cut_subtitles(
    source: MediaInput,
    track: int,
    start_ms: int,
    end_ms: int,
    output: Path,
    timeout_seconds: float,
) -> None:
    """Cut the source's text track `track` (mov_text, SRT, ASS, WebVTT) to the segment as SRT.
    FFmpeg extracts the whole track, unseeked: an input seek (`-ss` before `-i`) shifts
    subtitle streams by the wrong amount, keeps cues that ended before the start and leaves
    cues running past the end. The cues are then cut exactly like a sidecar's."""

    async def ignore(share: float) -> None:
        return None

    # Extracted into `output` and cut in place: no second scratch file to clean up.
    await run_ffmpeg(
        [
            "-y",
            *input_arguments(source),
            "-map",
            f"0:s:{track}",
            "-c:s",
            "srt",
            "-f",
            "srt",
            str(output),
        ],
        duration_ms=0,  # reports no progress: a text track is quick to extract
        on_progress=ignore,
        timeout_seconds=timeout_seconds,
    )
    await asyncio.to_thread(
        _cut_srt, output, start_ms, end_ms, output, "the source's subtitle track"
    )


async def cut_sidecar(sidecar: Path, start_ms: int, end_ms: int, output: Path) -> None:
    """Cut an uploaded .srt to the segment (FFmpeg's seek in a plain SRT input does not shift
    its cues)."""
    await asyncio.to_thread(_cut_srt, sidecar, start_ms, end_ms, output, "the subtitles upload")


def _cut_srt(subtitles: Path, start_ms: int, end_ms: int, output: Path, what: str) -> None:
    """Keep the cues that overlap [start_ms, end_ms) (one that ends exactly at the start or
    starts exactly at the end shows nothing of the clip), trim them to it, shift them by
    exactly `start_ms` and renumber them. Every subtitle source goes through here, so the SRT
    and the burned-in text agree whatever the source's format."""
    start, end = timedelta(milliseconds=start_ms), timedelta(milliseconds=end_ms)
    try:
        cues = list(srt.parse(subtitles.read_text(encoding="utf-8-sig", errors="replace")))
    except srt.SRTParseError as exc:
        raise SubtitlesMissingError(f"{what} is not valid SRT: {exc}") from None
    kept = [
        srt.Subtitle(
            index=0,
            start=max(cue.start, start) - start,
            end=min(cue.end, end) - start,
            content=cue.content,
        )
        for cue in cues
        if cue.end > start and cue.start < end
    ]
    output.write_text(srt.compose(kept), encoding="utf-8")


def burn_filter(subtitles: Path, fonts_dir: Path) -> str:
    """The FFmpeg filter that draws `subtitles` on the video. This FFmpeg has no fontconfig:
    libass must be told where fonts are, or it silently draws nothing."""
    if not fonts_dir.is_dir() or not any(fonts_dir.rglob("*.[ot]tf")):
        # The folder is the operator's to know (logged), not the user's: no path in the error.
        logger.error("no fonts in %s to burn subtitles with; set SUBTITLE_FONTS_DIR", fonts_dir)
        raise SubtitleFontsMissingError(
            "this server has no fonts to burn subtitles with (its SUBTITLE_FONTS_DIR)"
        )
    return f"subtitles=filename={_escape(subtitles)}:fontsdir={_escape(fonts_dir)}"


def _escape(path: Path) -> str:
    # FFmpeg filter arguments: backslash-escape the characters the filter parser gives meaning.
    text = str(path)
    for special in ("\\", ":", "'", ",", ";", "[", "]", "="):
        text = text.replace(special, "\\" + special)
    return text
