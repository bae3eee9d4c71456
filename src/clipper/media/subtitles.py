"""Subtitles as SRT in the clip's time: from the source's own track or an uploaded .srt, cut to
the segment (timestamps shifted to the clip), or written from cues (media.speech makes them);
and the filter that burns them into the video."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from pathlib import Path

import srt

from ..domain.languages import primary_language
from .errors import SubtitleFontsMissingError, SubtitlesMissingError
from .ffmpeg import ignore_progress, run_ffmpeg
from .inputs import MediaInput, input_arguments
from .probe import MediaInfo

logger = logging.getLogger("clipper.media")


def matching_track(info: MediaInfo, language: str | None) -> int | None:
    """The subtitle stream in `language`: the first for `auto`, else the first whose tag names
    the same language (`en` finds `eng`, `de` finds `ger`, `es` finds `spa`); None when the
    source has none."""
    if not info.subtitle_languages:
        return None
    if language in (None, "auto"):
        return 0
    wanted = primary_language(language)
    for index, tag in enumerate(info.subtitle_languages):
        if wanted is not None and primary_language(tag) == wanted:
            return index
    return None


async def cut_subtitles(
    source: MediaInput,
    track: int,
    start_ms: int,
    end_ms: int,
    output: Path,
    timeout_seconds: float,
) -> int:
    """Cut the source's text track `track` (mov_text, SRT, ASS, WebVTT) to the segment as SRT.
    FFmpeg extracts the whole track, unseeked: an input seek (`-ss` before `-i`) shifts
    subtitle streams by the wrong amount, keeps cues that ended before the start and leaves
    cues running past the end. The cues are then cut exactly like a sidecar's. Returns how
    many cues the clip has."""

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
        on_progress=ignore_progress,
        timeout_seconds=timeout_seconds,
    )
    return await asyncio.to_thread(
        _cut_srt, output, start_ms, end_ms, output, "the source's subtitle track"
    )


async def cut_sidecar(sidecar: Path, start_ms: int, end_ms: int, output: Path) -> int:
    """Cut an uploaded .srt to the segment (FFmpeg's seek in a plain SRT input does not shift
    its cues); how many cues the clip has."""
    return await asyncio.to_thread(
        _cut_srt, sidecar, start_ms, end_ms, output, "the subtitles upload"
    )


def write_cues(cues: list[srt.Subtitle], output: Path) -> None:
    """`cues` as an SRT file (empty, and still valid SRT, when there are none)."""
    output.write_text(srt.compose(cues), encoding="utf-8")


def _cut_srt(subtitles: Path, start_ms: int, end_ms: int, output: Path, what: str) -> int:
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
    write_cues(kept, output)
    return len(kept)


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
