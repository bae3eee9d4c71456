"""Subtitles from the source's own track: cut to the segment (timestamps shifted to the clip),
stored as SRT, and optionally burned into the video."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import srt

from .errors import SubtitleFontsMissingError, SubtitlesMissingError
from .ffmpeg import run_ffmpeg, segment_input
from .probe import MediaInfo


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
    source: Path, track: int, start_ms: int, end_ms: int, output: Path, timeout_seconds: float
) -> None:
    async def ignore(share: float) -> None:
        return None

    await run_ffmpeg(
        [
            *segment_input(source, start_ms, end_ms - start_ms),
            "-map",
            f"0:s:{track}",
            "-c:s",
            "srt",
            str(output),
        ],
        duration_ms=end_ms - start_ms,
        on_progress=ignore,
        timeout_seconds=timeout_seconds,
    )


async def cut_sidecar(sidecar: Path, start_ms: int, end_ms: int, output: Path) -> None:
    """Cut an uploaded .srt to the segment: FFmpeg's seek in a plain SRT input does not shift
    its cues, so the cues are kept, trimmed, shifted and renumbered here (with `srt`)."""
    await asyncio.to_thread(_cut_sidecar, sidecar, start_ms, end_ms, output)


def _cut_sidecar(sidecar: Path, start_ms: int, end_ms: int, output: Path) -> None:
    start, end = timedelta(milliseconds=start_ms), timedelta(milliseconds=end_ms)
    try:
        cues = list(srt.parse(sidecar.read_text(encoding="utf-8-sig", errors="replace")))
    except srt.SRTParseError as exc:
        raise SubtitlesMissingError(f"the subtitles upload is not valid SRT: {exc}") from None
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
        raise SubtitleFontsMissingError(
            f"no fonts in {fonts_dir} to burn subtitles with; set SUBTITLE_FONTS_DIR"
        )
    return f"subtitles=filename={_escape(subtitles)}:fontsdir={_escape(fonts_dir)}"


def _escape(path: Path) -> str:
    # FFmpeg filter arguments: backslash-escape the characters the filter parser gives meaning.
    text = str(path)
    for special in ("\\", ":", "'", ",", ";", "[", "]", "="):
        text = text.replace(special, "\\" + special)
    return text
