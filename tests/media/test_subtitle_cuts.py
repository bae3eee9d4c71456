"""Subtitles cut with a clip: every cue that overlaps the clip is kept, trimmed to it and
shifted by exactly the clip's start, to the millisecond, whether it comes from a text track
(MP4 mov_text, MKV SRT or ASS, WebM WebVTT) or a sidecar .srt; burned-in text follows the
same times."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import cast

import pytest
import srt

from clipper.db.models import Job
from clipper.media.ffmpeg import ffmpeg_path
from clipper.media.probe import MediaInfo
from clipper.media.sample import KEYFRAMES_EVERY_2S
from clipper.media.subtitles import cut_sidecar, cut_subtitles, matching_track
from clipper.queue import JobContext
from clipper.services.clipping import ClipProcessor
from clipper.services.processing import Progress
from clipper.services.subtitling import SpeechModel, SpeechModelSpec
from clipper.storage import LocalStorage

Cue = tuple[int, int, str]  # start ms, end ms, text


@dataclass(frozen=True, slots=True)
class Container:
    suffix: str
    codecs: tuple[str, ...]


_H264_AAC = ("-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac")
# Every kind of text track a source may carry.
CONTAINERS = {
    "mp4-mov_text": Container(".mp4", (*_H264_AAC, "-c:s", "mov_text")),
    "mkv-srt": Container(".mkv", (*_H264_AAC, "-c:s", "srt")),
    "mkv-ass": Container(".mkv", (*_H264_AAC, "-c:s", "ass")),
    "webm-vtt": Container(
        ".webm",
        (
            *("-c:v", "libvpx", "-deadline", "realtime", "-cpu-used", "8", "-b:v", "200k"),
            *("-c:a", "libopus", "-c:s", "webvtt"),
        ),
    ),
}
SOURCES = (*CONTAINERS, "sidecar")


def _write_srt(path: Path, cues: list[Cue]) -> None:
    path.write_text(
        srt.compose(srt.Subtitle(0, _delta(start), _delta(end), text) for start, end, text in cues)
    )


def _delta(ms: int) -> timedelta:
    return timedelta(milliseconds=ms)


def make_subtitled(
    path: Path, cues: list[Cue], container: Container, *, seconds: int, pattern: str
) -> Path:
    """`seconds` of video (`pattern`: an FFmpeg lavfi source; `color` is black) and a tone,
    with `cues` as an English text track in `container` and a keyframe every 2 s."""
    sidecar = path.with_suffix(".cues.srt")
    _write_srt(sidecar, cues)
    subprocess.run(
        [
            ffmpeg_path(),
            "-y",
            "-hide_banner",
            "-loglevel",
            "error",
            *("-f", "lavfi", "-i", f"{pattern}=size=320x240:rate=25:duration={seconds}"),
            *("-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds}"),
            *("-i", str(sidecar)),
            *("-map", "0", "-map", "1", "-map", "2"),
            *container.codecs,
            *KEYFRAMES_EVERY_2S,
            *("-metadata:s:s:0", "language=eng"),
            str(path),
        ],
        check=True,
    )
    return path


def _sources(folder: Path, cues: list[Cue]) -> dict[str, Path]:
    """The same cues in every kind of source: each text track, and the sidecar itself."""
    folder.mkdir()
    sidecar = folder / "sidecar.srt"
    _write_srt(sidecar, cues)
    made = {
        name: make_subtitled(
            folder / f"{name}{container.suffix}", cues, container, seconds=16, pattern="testsrc2"
        )
        for name, container in CONTAINERS.items()
    }
    return {**made, "sidecar": sidecar}


def _cues(path: Path) -> list[Cue]:
    return [
        (cue.start // _delta(1), cue.end // _delta(1), cue.content)
        for cue in srt.parse(path.read_text(encoding="utf-8"))
    ]


async def _cut_every_source(
    sources: dict[str, Path], start_ms: int, end_ms: int, folder: Path
) -> dict[str, list[Cue]]:
    cut: dict[str, list[Cue]] = {}
    for name, source in sources.items():
        output = folder / f"{name}.srt"
        if name == "sidecar":
            await cut_sidecar(source, start_ms, end_ms, output)
        else:
            await cut_subtitles(source, 0, start_ms, end_ms, output, timeout_seconds=60)
        cut[name] = _cues(output)
    return cut


REPORTED: list[Cue] = [(1_000, 4_000, "one"), (5_000, 9_000, "two"), (10_000, 14_000, "three")]


@pytest.fixture(scope="module")
def reported(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return _sources(tmp_path_factory.mktemp("subtitles") / "reported", REPORTED)


@pytest.mark.parametrize(
    ("start_ms", "end_ms", "expected"),
    [
        # "one" ends exactly at the start; "three" runs past the end.
        (4_000, 12_000, [(1_000, 5_000, "two"), (6_000, 8_000, "three")]),
        # "one" ended before the clip; "two" straddles its start.
        (6_000, 11_000, [(0, 3_000, "two"), (4_000, 5_000, "three")]),
        # Shifted by exactly 2 s.
        (2_000, 12_000, [(0, 2_000, "one"), (3_000, 7_000, "two"), (8_000, 10_000, "three")]),
        # "two" runs past the end.
        (0, 8_000, [(1_000, 4_000, "one"), (5_000, 8_000, "two")]),
    ],
    ids=["4-12s", "6-11s", "2-12s", "0-8s"],
)
async def test_the_reported_clips_get_their_cues_trimmed_and_shifted(
    reported: dict[str, Path], tmp_path: Path, start_ms: int, end_ms: int, expected: list[Cue]
) -> None:
    cut = await _cut_every_source(reported, start_ms, end_ms, tmp_path)
    assert cut == dict.fromkeys(SOURCES, expected)


# Back to back, never overlapping (an MP4 text track cannot overlap), at odd milliseconds.
EDGES: list[Cue] = [
    (1_000, 2_000, "a"),
    (3_000, 4_000, "b"),
    (4_500, 5_250, "c"),
    (6_125, 7_875, "d"),
    (8_000, 9_000, "e"),
    (11_000, 12_500, "f"),
]


@pytest.fixture(scope="module")
def edges(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return _sources(tmp_path_factory.mktemp("subtitles") / "edges", EDGES)


@pytest.mark.parametrize(
    ("start_ms", "end_ms", "expected"),
    [
        # "b" ends exactly at the start: not kept; "e" straddles the end.
        (4_000, 8_500, [(500, 1_250, "c"), (2_125, 3_875, "d"), (4_000, 4_500, "e")]),
        # "b" straddles the start; "e" starts exactly at the end: not kept.
        (3_500, 8_000, [(0, 500, "b"), (1_000, 1_750, "c"), (2_625, 4_375, "d")]),
        # "c" starts exactly at the start: kept whole; "e" straddles the end.
        (4_500, 8_500, [(0, 750, "c"), (1_625, 3_375, "d"), (3_500, 4_000, "e")]),
        # "b" straddles the start; "e" ends exactly at the end: kept whole.
        (
            3_500,
            9_000,
            [(0, 500, "b"), (1_000, 1_750, "c"), (2_625, 4_375, "d"), (4_500, 5_500, "e")],
        ),
        # "b" straddles the start, "e" the end; "a" and "f" lie wholly outside.
        (
            3_500,
            8_500,
            [(0, 500, "b"), (1_000, 1_750, "c"), (2_625, 4_375, "d"), (4_500, 5_000, "e")],
        ),
        # Odd milliseconds on both sides: "c" and "d" trimmed to the clip.
        (5_001, 6_999, [(0, 249, "c"), (1_124, 1_998, "d")]),
        # Between "e" (ends at the start) and "f" (starts at the end): no cue at all.
        (9_000, 11_000, []),
    ],
    ids=[
        "one-ending-at-the-start",
        "one-starting-at-the-end",
        "one-starting-at-the-start",
        "one-ending-at-the-end",
        "straddling-both-edges",
        "odd-milliseconds",
        "between-cues",
    ],
)
async def test_cues_are_kept_only_when_they_overlap_the_clip(
    edges: dict[str, Path], tmp_path: Path, start_ms: int, end_ms: int, expected: list[Cue]
) -> None:
    cut = await _cut_every_source(edges, start_ms, end_ms, tmp_path)
    assert cut == dict.fromkeys(SOURCES, expected)


class _GivenFile:
    """The processor's source stage, handing over a file made by the test."""

    def __init__(self, path: Path) -> None:
        self._path = path

    @contextlib.asynccontextmanager
    async def __call__(self, job: Job, scratch: Path, progress: Progress) -> AsyncIterator[Path]:
        yield self._path


async def _no_progress(percent: int, stage: str) -> None:
    return None


def _band_brightness(clip: Path, at_ms: int) -> tuple[float, float]:
    """The mean brightness (0-255) of the frame at `at_ms` in its top and bottom thirds:
    subtitles are drawn at the bottom, and nothing else is bright."""
    frame = subprocess.run(
        [
            ffmpeg_path(),
            "-hide_banner",
            "-loglevel",
            "error",
            *("-ss", f"{at_ms / 1000:.3f}", "-i", str(clip)),
            *("-frames:v", "1", "-f", "rawvideo", "-pix_fmt", "gray", "pipe:1"),
        ],
        check=True,
        capture_output=True,
    ).stdout
    width, height = 320, 240
    assert len(frame) == width * height
    third = width * (height // 3)
    return sum(frame[:third]) / third, sum(frame[-third:]) / third


# A row of full blocks: a solid white box, unmistakable on a black video.
BOX = "\u2588" * 12
BURNED: list[Cue] = [(1_000, 4_000, BOX), (6_000, 7_000, BOX)]


@pytest.mark.parametrize("source_kind", ["mp4-mov_text", "mkv-srt"])
async def test_burned_in_subtitles_show_only_within_the_trimmed_cues(
    tmp_path: Path, source_kind: str
) -> None:
    container = CONTAINERS[source_kind]
    source = await asyncio.to_thread(
        make_subtitled,
        tmp_path / f"black{container.suffix}",
        BURNED,
        container,
        seconds=10,
        pattern="color",
    )
    job = Job(
        id=uuid.uuid4(),
        source_type="upload",
        start_ms=2_000,
        end_ms=9_000,
        with_subtitles=True,
        burn_subtitles=True,
        subtitle_lang="en",
        subtitles_upload_key=None,
    )
    storage = LocalStorage(tmp_path / "data")
    processor = ClipProcessor(
        storage,
        _GivenFile(source),
        tmp_path / "scratch",
        ffmpeg_timeout_seconds=120,
        max_source_ms=3_600_000,
        subtitle_fonts_dir=Path("/usr/share/fonts"),  # SUBTITLE_FONTS_DIR's default
        speech=SpeechModel(SpeechModelSpec()),
        scratch_stale_after_seconds=60,
    )
    # The processor reads only the attempt number; a real context needs a consumer's lease.
    result = await processor(job, _no_progress, cast(JobContext, SimpleNamespace(attempt=1)))

    assert result.subtitles_key is not None
    # The first cue straddles the start (trimmed to 0-2 s), the second is shifted by 2 s.
    assert _cues(storage.path(result.subtitles_key)) == [(0, 2_000, BOX), (4_000, 5_000, BOX)]
    clip = storage.path(result.video_key)
    shown = {
        at_ms: await asyncio.to_thread(_band_brightness, clip, at_ms)
        for at_ms in (500, 1_500, 3_000, 4_500, 5_500, 6_500)
    }
    for at_ms, (top, bottom) in shown.items():
        assert top < 5, f"something drawn at the top at {at_ms} ms"
        lit = at_ms in (500, 1_500, 4_500)
        assert (bottom > 5) == lit, (
            f"the box is {'missing' if lit else 'shown'} at {at_ms} ms: {shown}"
        )


def test_a_track_is_found_by_the_language_its_tag_names() -> None:
    # FFmpeg reports ISO 639-2 tags (eng, ger, spa); users ask in BCP 47 (en, de, es-MX).
    info = MediaInfo(
        duration_ms=1_000,
        has_video=True,
        has_audio=True,
        subtitle_streams=3,
        subtitle_languages=("ger", "spa", "eng"),
    )
    asked = ["auto", None, "de", "deu", "es-MX", "en", "en-GB", "fr", "und"]
    assert [matching_track(info, language) for language in asked] == [
        0, 0, 0, 0, 1, 2, 2, None, None,
    ]  # fmt: skip
    assert matching_track(MediaInfo(1_000, True, True, 0), "auto") is None
