"""What a media file holds, read with PyAV (FFmpeg's libraries, from the `av` wheel)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path

import av

from .errors import UnreadableMediaError


@dataclass(frozen=True, slots=True)
class MediaInfo:
    duration_ms: int
    has_video: bool
    has_audio: bool
    subtitle_streams: int
    # How far apart the audio and video streams start (0 with one of them): a sync check.
    start_spread_ms: int = 0
    # Language tags of the subtitle streams, in order ("und" when untagged).
    subtitle_languages: tuple[str, ...] = ()


async def probe(path: Path) -> MediaInfo:
    return await asyncio.to_thread(_probe, path)


def _probe(path: Path) -> MediaInfo:
    try:
        with av.open(str(path)) as container:
            streams = container.streams
            duration = container.duration
            if duration is None:  # some containers only know it per stream
                durations = [
                    float(s.duration * s.time_base)
                    for s in streams
                    if s.duration is not None and s.time_base is not None
                ]
                seconds = max(durations, default=0.0)
            else:
                seconds = duration / av.time_base
            starts = [
                float(s.start_time * s.time_base)
                for s in (*streams.video, *streams.audio)
                if s.start_time is not None and s.time_base is not None
            ]
            info = MediaInfo(
                duration_ms=int(seconds * 1000),
                has_video=bool(streams.video),
                has_audio=bool(streams.audio),
                subtitle_streams=len(streams.subtitles),
                start_spread_ms=int((max(starts) - min(starts)) * 1000) if starts else 0,
                subtitle_languages=tuple(s.language or "und" for s in streams.subtitles),
            )
    except (av.error.FFmpegError, OSError, ValueError) as exc:
        raise UnreadableMediaError(f"cannot read the input: {exc}") from exc
    if not (info.has_video or info.has_audio) or info.duration_ms <= 0:
        raise UnreadableMediaError("the input has no video or audio stream")
    return info


async def is_subtitle_file(path: Path) -> bool:
    """True for a file that holds subtitles only (an .srt sidecar)."""
    return await asyncio.to_thread(_is_subtitle_file, path)


def _is_subtitle_file(path: Path) -> bool:
    try:
        with av.open(str(path)) as container:
            streams = container.streams
            return bool(streams.subtitles) and not (streams.video or streams.audio)
    except (av.error.FFmpegError, OSError, ValueError):
        return False


async def keyframe_before(path: Path, at_ms: int) -> int | None:
    """The time (ms) of the last video keyframe at or before `at_ms`; None without video."""
    return await asyncio.to_thread(_keyframe_before, path, at_ms)


def _keyframe_before(path: Path, at_ms: int) -> int | None:
    with av.open(str(path)) as container:
        if not container.streams.video:
            return None
        stream = container.streams.video[0]
        time_base = stream.time_base
        assert time_base is not None
        # Seek lands on the keyframe at or before the target; read forward to confirm it.
        container.seek(int(at_ms / 1000 / time_base), stream=stream, backward=True, any_frame=False)
        best: int | None = None
        for packet in container.demux(stream):
            if packet.pts is None:
                continue
            at = int(packet.pts * time_base * 1000)
            if at > at_ms:
                break
            if packet.is_keyframe:
                best = at
        return best
