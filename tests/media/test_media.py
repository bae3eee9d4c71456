"""Probing and cutting real (generated) media with the wheel's FFmpeg."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from clipper.media.cutting import (
    DURATION_TOLERANCE_MS,
    SYNC_TOLERANCE_MS,
    cut_segment,
    verify,
)
from clipper.media.errors import (
    FfmpegTimeoutError,
    InvalidOutputError,
    SegmentOutOfRangeError,
    UnreadableMediaError,
)
from clipper.media.probe import FrameAt, frame_at, probe
from tests.media_files import make_video


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_video(tmp_path_factory.mktemp("media") / "source.mp4", seconds=20)


class Progress:
    def __init__(self) -> None:
        self.seen: list[tuple[str, float]] = []

    async def __call__(self, stage: str, share: float) -> None:
        self.seen.append((stage, share))


async def test_probe_reads_duration_and_streams(source: Path, tmp_path: Path) -> None:
    info = await probe(source)
    assert abs(info.duration_ms - 20_000) <= 100
    assert (info.has_video, info.has_audio) == (True, True)
    audio_only = await probe(make_video(tmp_path / "tone.m4a", 5, video=False))
    assert (audio_only.has_video, audio_only.has_audio) == (False, True)


async def test_probe_refuses_corrupt_input(tmp_path: Path) -> None:
    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"garbage" * 1000)
    with pytest.raises(UnreadableMediaError):
        await probe(corrupt)


async def test_keyframes_are_every_two_seconds(source: Path) -> None:
    assert await frame_at(source, 5_300) == FrameAt(5_280, 40, 4_000)
    assert await frame_at(source, 4_000) == FrameAt(4_000, 40, 4_000)


async def test_a_start_on_a_keyframe_is_cut_by_stream_copy(source: Path, tmp_path: Path) -> None:
    progress = Progress()
    cut = await cut_segment(
        source,
        await probe(source),
        4_000,
        10_000,
        tmp_path / "clip.mp4",
        on_progress=progress,
        timeout_seconds=60,
    )
    assert cut.method == "copy"
    clip = await probe(tmp_path / "clip.mp4")
    assert abs(clip.duration_ms - 6_000) <= DURATION_TOLERANCE_MS
    assert (clip.has_video, clip.has_audio) == (True, True)
    assert {stage for stage, _ in progress.seen} == {"cut"}


async def test_a_start_between_keyframes_is_re_encoded_accurately(
    source: Path, tmp_path: Path
) -> None:
    progress = Progress()
    cut = await cut_segment(
        source,
        await probe(source),
        5_300,
        8_800,
        tmp_path / "clip.mp4",
        on_progress=progress,
        timeout_seconds=60,
    )
    assert cut.method == "encode"
    clip = await probe(tmp_path / "clip.mp4")
    assert abs(clip.duration_ms - 3_500) <= DURATION_TOLERANCE_MS
    shares = [share for _, share in progress.seen]
    assert shares == sorted(shares)  # progress only rises
    assert shares[-1] >= 0.9
    assert {stage for stage, _ in progress.seen} == {"encode"}


async def test_a_segment_outside_the_source_is_refused(source: Path, tmp_path: Path) -> None:
    with pytest.raises(SegmentOutOfRangeError):
        await cut_segment(
            source,
            await probe(source),
            25_000,
            30_000,
            tmp_path / "clip.mp4",
            on_progress=Progress(),
            timeout_seconds=60,
        )


async def test_a_stuck_ffmpeg_is_killed_at_the_time_limit(source: Path, tmp_path: Path) -> None:
    with pytest.raises(FfmpegTimeoutError):
        await cut_segment(
            source,
            await probe(source),
            5_300,
            19_000,
            tmp_path / "clip.mp4",
            on_progress=Progress(),
            timeout_seconds=0.01,
        )


async def test_a_clip_whose_streams_start_apart_is_refused(tmp_path: Path) -> None:
    desynced = await asyncio.to_thread(make_video, tmp_path / "desynced.mp4", 5, audio_offset=0.3)
    info = await probe(desynced)
    assert info.start_spread_ms > SYNC_TOLERANCE_MS
    with pytest.raises(InvalidOutputError, match="out of sync"):
        await verify(desynced, info.duration_ms, info)


async def test_copied_clips_keep_audio_and_video_together(source: Path, tmp_path: Path) -> None:
    await cut_segment(
        source,
        await probe(source),
        2_000,
        12_000,
        tmp_path / "clip.mp4",
        on_progress=Progress(),
        timeout_seconds=60,
    )
    assert (await probe(tmp_path / "clip.mp4")).start_spread_ms <= 40
