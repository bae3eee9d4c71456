"""`clipper clip --subtitles` against a running `clipper up`: the clip and its .srt saved side
by side, and the saved line says where the subtitles came from."""

from __future__ import annotations

import signal
from datetime import timedelta
from pathlib import Path

import pytest
import srt

from tests.asr.media import DRAWN, FIRST_SENTENCE, SpeechVideo, band_brightness, recall
from tests.cli_helpers import clipper, start_clipper_up

pytestmark = pytest.mark.asr


def test_the_clip_and_its_subtitles_from_speech_are_saved_side_by_side(
    db_url: str, tmp_path: Path, speech_video: SpeechVideo
) -> None:
    process, address = start_clipper_up(db_url, DATA_DIR=str(tmp_path / "data"))
    try:
        clipped = clipper(
            "clip", str(speech_video.path), "--start", "00:00:04", "--end", "00:00:12",
            "--subtitles", "--out", str(tmp_path / "talk.mp4"),
            timeout=120, CLIPPER_API_URL=address,
        )  # fmt: skip
        burned = clipper(
            "clip", str(speech_video.path), "--start", "00:00:04", "--end", "00:00:12",
            "--burn", "--out", str(tmp_path / "burned.mp4"),
            timeout=120, CLIPPER_API_URL=address,
        )  # fmt: skip
        refused = clipper(
            "clip", str(speech_video.path), "--start", "00:00:04", "--end", "00:00:12",
            "--subtitle-lang", "de", timeout=60, CLIPPER_API_URL=address,
        )  # fmt: skip
    finally:
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=30)
    assert clipped.returncode == 0, clipped.stderr
    saved, told = clipped.stdout.splitlines()[-2:]
    assert saved == f"clip saved to {tmp_path / 'talk.mp4'}"
    assert told.startswith(f"subtitles saved to {tmp_path / 'talk.srt'} (from speech, tiny.en, en")
    cues = list(srt.parse((tmp_path / "talk.srt").read_text(encoding="utf-8")))
    assert recall(FIRST_SENTENCE, " ".join(cue.content for cue in cues)) >= 0.7
    assert told.endswith(f"{len(cues)} cue{'' if len(cues) == 1 else 's'})")
    # --burn implies --subtitles, and draws them: the black video is lit where a cue is on.
    assert burned.returncode == 0, burned.stderr
    assert burned.stdout.splitlines()[-1].startswith(
        f"subtitles saved to {tmp_path / 'burned.srt'} (from speech"
    )
    first = next(srt.parse((tmp_path / "burned.srt").read_text(encoding="utf-8")))
    middle_ms = (first.start + first.end) // timedelta(milliseconds=2)
    assert band_brightness(tmp_path / "burned.mp4", middle_ms)[1] > DRAWN
    assert band_brightness(tmp_path / "talk.mp4", middle_ms)[1] < DRAWN  # --subtitles alone
    # A language implies subtitles; one the packaged model cannot hear is the API's 422.
    assert refused.returncode == 2, refused.stdout
    assert "subtitleLang" in refused.stderr
    assert "ASR_MODEL" in refused.stderr
