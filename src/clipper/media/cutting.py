"""Cutting a segment: an exact cut starts on the frame on screen at the requested start and
ends before the frame at the end, by stream copy when that frame is a keyframe (fast,
lossless), else by a re-encode; a fast cut starts on the keyframe at or before the start, by
stream copy. The output's container and codecs follow its plan (media.outputs); stream copy is
tried only when it gives what the plan asks. Every output is probed before it counts."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from ..domain.clips import CutMode
from ..domain.outputs import OutputOptions
from .errors import FfmpegError, InvalidOutputError, SegmentOutOfRangeError
from .ffmpeg import run_ffmpeg, segment_input
from .inputs import MediaInput
from .outputs import (
    STANDARD,
    OutputPlan,
    encode_arguments,
    muxer_arguments,
    plan_output,
    stream_maps,
    written_container,
)
from .probe import MediaInfo, frame_at, probe

logger = logging.getLogger("clipper.media")

# How far a clip's duration may differ from the request (frames and audio packets).
DURATION_TOLERANCE_MS = 150
# How far apart a clip's audio and video may start.
SYNC_TOLERANCE_MS = 80

StageProgress = Callable[[str, float], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Cut:
    method: str  # "copy" or "encode"
    start_ms: int  # where in the source the clip starts: a frame's time, at or before the start
    duration_ms: int


@dataclass(frozen=True, slots=True)
class Start:
    """Where a cut starts in the source: its first frame's time, where a re-encode seeks, and
    where stream copy seeks (None: copy cannot start there cleanly). On one frame the two
    differ by under a millisecond: a frame's time is rounded down for a re-encode, which
    drops what shows before it, a keyframe's up for copy, which starts on the keyframe at or
    before it (probe.FrameAt)."""

    frame_ms: int
    copy_ms: int | None


@dataclass(frozen=True, slots=True)
class _Job:
    source: MediaInput
    info: MediaInfo
    output: Path
    on_progress: StageProgress
    timeout_seconds: float
    video_filter: str | None
    plan: OutputPlan


async def cut_segment(
    source: MediaInput,
    info: MediaInfo,
    start_ms: int,
    end_ms: int,
    output: Path,
    *,
    on_progress: StageProgress,
    timeout_seconds: float,
    video_filter: str | None = None,
    mode: CutMode = CutMode.EXACT,
    plan: OutputPlan | None = None,
) -> Cut:
    """Write `output` as `plan` says (None: the default output choices' plan for this source,
    e.g. MP4 with H.264 and AAC) with [start_ms, end_ms) of `source`, from where `cut_start`
    puts the start (the Cut says where). A `video_filter` (burning subtitles) always
    re-encodes, so it takes an exact cut; so does a plan stream copy cannot give."""
    lasts = f"the source lasts {info.duration_ms / 1000:g} s"
    if start_ms >= info.duration_ms:
        raise SegmentOutOfRangeError(f"the segment starts at {start_ms / 1000:g} s but {lasts}")
    if not range_fits(end_ms, info):
        raise SegmentOutOfRangeError(f"the segment ends at {end_ms / 1000:g} s but {lasts}")
    end_ms = min(end_ms, info.duration_ms)
    if plan is None:
        plan = plan_output(OutputOptions(), info, mode)
    job = _Job(source, info, output, on_progress, timeout_seconds, video_filter, plan)
    start = await cut_start(source, info, start_ms, mode)
    if mode is CutMode.FAST:
        assert video_filter is None, "burning re-encodes: the API takes it with exact cuts only"
        assert plan.copyable, "plan_output refuses a fast cut that copy cannot make"
        # Always stream copy: re-encoding instead would give up the speed it was chosen for.
        assert start.copy_ms is not None, "a fast cut always starts where copy can"
        return await _run(job, start.copy_ms, end_ms, "copy")
    if video_filter is None and plan.copyable and start.copy_ms is not None:
        try:
            return await _run(job, start.copy_ms, end_ms, "copy")
        except (FfmpegError, InvalidOutputError) as exc:
            logger.info("stream copy gave no clean clip (%s); re-encoding", exc)
    return await _run(job, start.frame_ms, end_ms, "encode")


def range_fits(end_ms: int, info: MediaInfo) -> bool:
    """Whether a segment may end at `end_ms`: within the source, give or take the tolerance of
    a last frame (a 10 s request of a source that states 9.96 s is cut to 9.96 s)."""
    return end_ms <= info.duration_ms + DURATION_TOLERANCE_MS


async def cut_start(source: MediaInput, info: MediaInfo, start_ms: int, mode: CutMode) -> Start:
    """Where a cut of `source` from `start_ms` starts. Exact: on the frame on screen at
    `start_ms` (the last one whose pts <= start_ms), copyable only when that frame is a
    keyframe and `start_ms` lies within half a frame of it; so a start 30 ms into a 40 ms
    frame is re-encoded, as its audio would otherwise begin 30 ms early. Fast: on the
    keyframe at or before it. Without video (or before the first frame), at `start_ms`
    itself, where audio alone copies cleanly."""
    frame = await frame_at(source, start_ms) if info.has_video else None
    if frame is None:
        return Start(start_ms, start_ms)
    if mode is CutMode.FAST:
        return Start(frame.keyframe_ms, frame.keyframe_ms)
    # The same pts, one rounded up and one down (distinct frames are further apart).
    on_keyframe = frame.keyframe_ms >= frame.frame_ms
    copyable = on_keyframe and 2 * (start_ms - frame.keyframe_ms) <= frame.duration_ms
    return Start(frame.frame_ms, frame.keyframe_ms if copyable else None)


def cut_arguments(
    source: MediaInput,
    start_ms: int,
    duration_ms: int,
    method: str,
    output: Path,
    video_filter: str | None = None,
    plan: OutputPlan = STANDARD,
) -> list[str]:
    """FFmpeg's arguments for one cut (the benchmark runs exactly these by hand). The
    standard plan: MP4 (faststart), H.264 at CRF 23 and AAC at 128 kbit/s when re-encoding."""
    # No -avoid_negative_ts with copy: it shifted the video ~90 ms behind the audio.
    codecs = ["-c", "copy"] if method == "copy" else encode_arguments(plan, video_filter)
    return [
        *segment_input(source, start_ms, duration_ms),
        *stream_maps(plan),
        *codecs,
        *muxer_arguments(plan),
        str(output),
    ]


async def _run(job: _Job, start_ms: int, end_ms: int, method: str) -> Cut:
    duration_ms = end_ms - start_ms
    stage = "cut" if method == "copy" else "encode"

    async def report(share: float) -> None:
        await job.on_progress(stage, share)

    await run_ffmpeg(
        cut_arguments(
            job.source, start_ms, duration_ms, method, job.output, job.video_filter, job.plan
        ),
        duration_ms=duration_ms,
        on_progress=report,
        timeout_seconds=job.timeout_seconds,
    )
    await verify(job.output, duration_ms, job.info, job.plan, method)
    return Cut(method, start_ms, duration_ms)


async def verify(
    output: Path,
    duration_ms: int,
    source: MediaInfo,
    plan: OutputPlan | None = None,
    method: str = "encode",
) -> MediaInfo:
    """The clip has the streams it should (the source's, but no video in an audio-only
    container), the requested length, and its audio and video start together; with a `plan`,
    also the container and codecs it asks (the source's when `method` is copy), no more
    height than it allows, and the source's bit depth and HDR unless it converts them.
    Returns what the clip holds."""
    try:
        clip = await probe(output)
    except Exception as exc:
        raise InvalidOutputError(f"the clip cannot be read back: {exc}") from exc
    streams = (source.has_video, source.has_audio) if plan is None else (plan.video, plan.audio)
    if (clip.has_video, clip.has_audio) != streams:
        raise InvalidOutputError("the clip lost a video or audio stream")
    if abs(clip.duration_ms - duration_ms) > DURATION_TOLERANCE_MS:
        raise InvalidOutputError(
            f"the clip lasts {clip.duration_ms} ms instead of {duration_ms} ms"
        )
    if clip.start_spread_ms > SYNC_TOLERANCE_MS:
        raise InvalidOutputError(
            f"the clip's streams start {clip.start_spread_ms} ms apart (out of sync)"
        )
    if plan is not None:
        await _verify_plan(output, clip, source, plan, method)
    return clip


async def _verify_plan(
    output: Path, clip: MediaInfo, source: MediaInfo, plan: OutputPlan, method: str
) -> None:
    written = await asyncio.to_thread(written_container, output)
    if written is not plan.container:
        raise InvalidOutputError(
            f"the clip is {written or 'no known container'}, not {plan.container}"
        )
    copied = method == "copy"
    if plan.video:
        wanted = source.video_codec if copied else plan.video_codec
        if clip.video_codec != wanted:
            raise InvalidOutputError(f"the clip's video is {clip.video_codec}, not {wanted}")
        if plan.max_height is not None and clip.height > plan.max_height:
            raise InvalidOutputError(f"the clip is {clip.height} px high, over {plan.max_height}")
        depth = source.bit_depth if copied else (10 if plan.ten_bit else 8)
        if clip.bit_depth != depth and (source.bit_depth or not copied):
            raise InvalidOutputError(f"the clip's video is {clip.bit_depth}-bit, not {depth}-bit")
        hdr = source.hdr and (copied or plan.ten_bit)
        if clip.hdr != hdr:
            raise InvalidOutputError("the clip's video is HDR" if clip.hdr else "the clip lost HDR")
    if plan.audio:
        wanted_audio = source.audio_codec if copied else plan.audio_codec
        if clip.audio_codec != wanted_audio:
            raise InvalidOutputError(f"the clip's audio is {clip.audio_codec}, not {wanted_audio}")
