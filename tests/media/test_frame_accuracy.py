"""Which frames a clip holds, read back from a source that shows each frame's number: an exact
cut starts on the frame on screen at the start and ends before the end; stream copy only
when the start lies within half a frame of a keyframe; a fast cut starts on the keyframe."""

from __future__ import annotations

from pathlib import Path

import pytest

from clipper.domain.clips import CutMode
from clipper.media.cutting import Cut, cut_segment
from clipper.media.probe import probe
from tests.media_files import frame_numbers, make_numbered_video

# 25 fps: frame n is on screen from n * 40 ms; keyframes every 2 s (frames 0, 50, 100, …).


@pytest.fixture(scope="module")
def numbered(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_numbered_video(tmp_path_factory.mktemp("frames") / "numbered.mp4", seconds=12)


async def _cut(
    source: Path, start_ms: int, end_ms: int, output: Path, mode: CutMode = CutMode.EXACT
) -> tuple[Cut, list[int]]:
    async def ignore(stage: str, share: float) -> None:
        pass

    cut = await cut_segment(
        source,
        await probe(source),
        start_ms,
        end_ms,
        output,
        on_progress=ignore,
        timeout_seconds=60,
        mode=mode,
    )
    return cut, frame_numbers(output)


@pytest.mark.parametrize(
    ("start_ms", "end_ms", "first", "last"),
    [
        (1_250, 3_000, 31, 74),  # frame 31 shows from 1.240 s; 3.000 s (frame 75) is excluded
        (1_250, 3_010, 31, 75),  # frame 75 starts before the end
        (5_300, 7_000, 132, 174),
    ],
)
async def test_an_exact_cut_starts_on_the_frame_on_screen_and_ends_before_the_end(
    numbered: Path, tmp_path: Path, start_ms: int, end_ms: int, first: int, last: int
) -> None:
    cut, frames = await _cut(numbered, start_ms, end_ms, tmp_path / "clip.mp4")
    assert cut.method == "encode"
    assert frames == list(range(first, last + 1))
    assert cut.start_ms == first * 40


async def test_a_start_past_half_a_frame_after_a_keyframe_is_re_encoded(
    numbered: Path, tmp_path: Path
) -> None:
    # 30 ms into keyframe 100's 40 ms: copy would start the audio 30 ms early.
    cut, frames = await _cut(numbered, 4_030, 6_000, tmp_path / "clip.mp4")
    assert cut.method == "encode"
    assert frames == list(range(100, 150))


@pytest.mark.parametrize("start_ms", [4_000, 4_015])  # on keyframe 100, within half a frame
async def test_a_start_on_a_keyframe_is_stream_copied(
    numbered: Path, tmp_path: Path, start_ms: int
) -> None:
    cut, frames = await _cut(numbered, start_ms, 6_000, tmp_path / "clip.mp4")
    assert (cut.method, cut.start_ms) == ("copy", 4_000)
    assert frames == list(range(100, 150))


async def test_a_fast_cut_starts_on_the_keyframe_before_the_start(
    numbered: Path, tmp_path: Path
) -> None:
    cut, frames = await _cut(numbered, 5_300, 7_000, tmp_path / "clip.mp4", CutMode.FAST)
    assert (cut.method, cut.start_ms, cut.duration_ms) == ("copy", 4_000, 3_000)
    assert frames == list(range(100, 175))  # verified at its own, longer length
