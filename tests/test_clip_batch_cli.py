"""`clipper clip FILE --range … --range …` against a running `clipper up`: one batch, every
clip saved under its own name (with its container's extension when no --out is given)."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import psycopg

from clipper.media.cutting import DURATION_TOLERANCE_MS
from clipper.media.probe import probe
from tests.cli_helpers import clipper, start_clipper_up
from tests.media_files import make_video


def test_several_ranges_make_one_batch_and_save_every_clip(db_url: str, tmp_path: Path) -> None:
    sample = tmp_path / "talk.mp4"
    made = clipper("sample-video", str(sample), "--seconds", "20")
    assert made.returncode == 0, made.stderr
    tone = make_video(tmp_path / "tone.mp4", 6, video=False)
    process, address = start_clipper_up(db_url, DATA_DIR=str(tmp_path / "data"))
    try:
        audio_only = clipper(
            "clip", str(tone), "--start", "00:00:01", "--end", "00:00:03",
            timeout=120, CLIPPER_API_URL=address,
        )  # fmt: skip
        clipped = clipper(
            "clip",
            str(sample),
            "--range",
            "00:00:02-00:00:06",
            "--range",
            "00:00:10-00:00:13",
            "--out",
            str(tmp_path / "highlight.mp4"),
            timeout=120,
            CLIPPER_API_URL=address,
        )
    finally:
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=30)
    assert audio_only.returncode == 0, audio_only.stderr
    # Named after its container: an audio-only source's clip is M4A by default.
    assert audio_only.stdout.splitlines()[-1] == f"clip saved to {tmp_path / 'tone_clip.m4a'}"
    assert clipped.returncode == 0, clipped.stderr
    saved = [tmp_path / "highlight_1.mp4", tmp_path / "highlight_2.mp4"]
    lines = clipped.stdout.splitlines()
    assert [f"clip saved to {path}" for path in saved] == lines[-2:]
    assert any("2/2 done" in line for line in lines)  # one progress bar over both jobs
    for path, seconds in zip(saved, (4, 3), strict=True):
        info = asyncio.run(probe(path))
        assert abs(info.duration_ms - seconds * 1000) <= DURATION_TOLERANCE_MS
        assert info.has_video
    with psycopg.connect(db_url) as conn:
        made_as = conn.execute(
            "SELECT count(*), count(DISTINCT batch_id) FROM jobs WHERE batch_id IS NOT NULL"
        ).fetchone()
    assert made_as == (2, 1)  # both clips, in one batch


def test_a_range_is_start_dash_end_and_not_mixed_with_start(tmp_path: Path) -> None:
    sample = tmp_path / "talk.mp4"
    sample.write_bytes(b"never uploaded: the arguments are refused first")
    malformed = clipper("clip", str(sample), "--range", "00:00:02")
    assert malformed.returncode == 2
    assert "START-END" in malformed.stderr
    mixed = clipper("clip", str(sample), "--start", "00:00:01", "--range", "00:00:02-00:00:04")
    assert mixed.returncode == 2
    assert "not both" in mixed.stderr
