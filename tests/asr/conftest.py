"""The ASR tests' media, made once per session (espeak-ng speech under generated video), and
the API fixtures of tests/api: an app over HTTP and a real worker in the test's process."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.api.conftest import data_dir, make_client, worker  # noqa: F401
from tests.asr.media import (
    FIRST_SENTENCE,
    PARAGRAPH,
    SECOND_SENTENCE,
    SpeechVideo,
    Spoken,
    make_speech_video,
)
from tests.media_files import make_video


@pytest.fixture(autouse=True)
def _frozen_heap() -> Iterator[None]:
    """The test process's heap, frozen for the test: a full garbage collection of hundreds of
    tests' objects takes up to a second, a pause of every thread (the event loop's too) that
    says nothing of the code under test, whose event-loop timings these tests check. A
    worker's heap is small."""
    gc.collect()
    gc.freeze()
    yield
    gc.unfreeze()


@pytest.fixture(scope="session")
def speech_video(tmp_path_factory: pytest.TempPathFactory) -> SpeechVideo:
    """22 s of black video, silent but for one sentence at 6 s and another at 14.5 s."""
    return make_speech_video(
        tmp_path_factory.mktemp("speech"), {FIRST_SENTENCE: 6_000, SECOND_SENTENCE: 14_500}, 22
    )


@pytest.fixture(scope="session")
def tone_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """6 s of a test pattern and a steady 440 Hz tone: sound, but no speech."""
    return make_video(tmp_path_factory.mktemp("tone") / "tone.mp4", seconds=6)


@pytest.fixture(scope="session")
def long_speech_video(tmp_path_factory: pytest.TempPathFactory) -> SpeechVideo:
    """About 65 s of speech from 1 s on, under black video: a transcription that takes a
    while (seconds, on a CPU)."""
    return make_speech_video(tmp_path_factory.mktemp("paragraph"), {PARAGRAPH: 1_000})


@pytest.fixture(scope="session")
def long_speech(long_speech_video: SpeechVideo) -> Spoken:
    """The same speech, as the WAV file espeak-ng made."""
    return long_speech_video.spoken[0]
