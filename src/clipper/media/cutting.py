"""Cutting a segment: stream copy when the start lies on a keyframe (fast, lossless), else a
frame-accurate re-encode; every output is probed before it counts."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from .errors import FfmpegError, InvalidOutputError, SegmentOutOfRangeError
from .ffmpeg import run_ffmpeg, segment_input
from .probe import MediaInfo, keyframe_before, probe

logger = logging.getLogger("clipper.media")

# A start this close after a keyframe still cuts cleanly by stream copy.
KEYFRAME_TOLERANCE_MS = 40
# How far a clip's duration may differ from the request (frames and audio packets).
DURATION_TOLERANCE_MS = 150
# How far apart a clip's audio and video may start.
SYNC_TOLERANCE_MS = 80

StageProgress = Callable[[str, float], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Cut:
    method: str  # "copy" or "encode"
    duration_ms: int


@dataclass(frozen=True, slots=True)
class _Job:
    source: Path
    info: MediaInfo
    output: Path
    on_progress: StageProgress
    timeout_seconds: float
    video_filter: str | None


async def cut_segment(
    source: Path,
    info: MediaInfo,
    start_ms: int,
    end_ms: int,
    output: Path,
    *,
    on_progress: StageProgress,
    timeout_seconds: float,
    video_filter: str | None = None,
) -> Cut:
    """Write `output` (MP4, faststart) with [start_ms, end_ms) of `source`. A `video_filter`
    (burning subtitles) always re-encodes."""
    if start_ms >= info.duration_ms or end_ms > info.duration_ms + DURATION_TOLERANCE_MS:
        raise SegmentOutOfRangeError(
            f"the segment ends at {end_ms / 1000:g} s but the source lasts "
            f"{info.duration_ms / 1000:g} s"
        )
    end_ms = min(end_ms, info.duration_ms)
    job = _Job(source, info, output, on_progress, timeout_seconds, video_filter)
    keyframe = await keyframe_before(source, start_ms) if info.has_video else start_ms
    copyable = keyframe is not None and start_ms - keyframe <= KEYFRAME_TOLERANCE_MS
    if video_filter is None and copyable and keyframe is not None:
        try:
            return await _run(job, keyframe, end_ms, "copy")
        except (FfmpegError, InvalidOutputError) as exc:
            logger.info("stream copy gave no clean clip (%s); re-encoding", exc)
    return await _run(job, start_ms, end_ms, "encode")


def cut_arguments(
    source: Path,
    start_ms: int,
    duration_ms: int,
    method: str,
    output: Path,
    video_filter: str | None = None,
) -> list[str]:
    """FFmpeg's arguments for one cut (the benchmark runs exactly these by hand)."""
    if method == "copy":
        # No -avoid_negative_ts: it shifted the video ~90 ms behind the audio.
        codecs = ["-c", "copy"]
    else:
        filters = ["-vf", video_filter] if video_filter else []
        codecs = [
            *filters,
            "-c:v",
            "libx264",
            "-preset",
            "veryfast",
            "-crf",
            "23",
            "-pix_fmt",
            "yuv420p",
            "-c:a",
            "aac",
            "-b:a",
            "128k",
        ]
    return [
        *segment_input(source, start_ms, duration_ms),
        "-map",
        "0:v?",
        "-map",
        "0:a?",
        "-sn",
        *codecs,
        "-movflags",
        "+faststart",
        str(output),
    ]


async def _run(job: _Job, start_ms: int, end_ms: int, method: str) -> Cut:
    duration_ms = end_ms - start_ms
    stage = "cut" if method == "copy" else "encode"

    async def report(share: float) -> None:
        await job.on_progress(stage, share)

    await run_ffmpeg(
        cut_arguments(job.source, start_ms, duration_ms, method, job.output, job.video_filter),
        duration_ms=duration_ms,
        on_progress=report,
        timeout_seconds=job.timeout_seconds,
    )
    await verify(job.output, duration_ms, job.info)
    return Cut(method, duration_ms)


async def verify(output: Path, duration_ms: int, source: MediaInfo) -> None:
    """The clip has the source's kinds of streams, the requested length, and its audio and
    video start together."""
    try:
        clip = await probe(output)
    except Exception as exc:
        raise InvalidOutputError(f"the clip cannot be read back: {exc}") from exc
    if (clip.has_video, clip.has_audio) != (source.has_video, source.has_audio):
        raise InvalidOutputError("the clip lost a video or audio stream")
    if abs(clip.duration_ms - duration_ms) > DURATION_TOLERANCE_MS:
        raise InvalidOutputError(
            f"the clip lasts {clip.duration_ms} ms instead of {duration_ms} ms"
        )
    if clip.start_spread_ms > SYNC_TOLERANCE_MS:
        raise InvalidOutputError(
            f"the clip's streams start {clip.start_spread_ms} ms apart (out of sync)"
        )
