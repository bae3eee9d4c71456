"""The speech model on its own: transcription runs beside the event loop (other jobs'
heartbeats and progress go on), reports progress in order, and fails in the two ways the
queue tells apart (a model that cannot load: permanent; a transcription that breaks: retried)."""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from clipper.media.errors import SpeechFailedError, SpeechModelError
from clipper.media.speech import SpeechModel, SpeechModelSpec
from clipper.services.failures import PermanentJobError, classify_failure
from tests.asr.media import FIRST_SENTENCE, Spoken, recall

pytestmark = pytest.mark.asr

TICK_SECONDS = 0.05
# The longest the event loop may go without running a task scheduled every TICK_SECONDS.
LONGEST_GAP_SECONDS = 0.5


async def test_transcribing_leaves_the_event_loop_running(long_speech: Spoken) -> None:
    audio, lasts_ms = long_speech.wav, long_speech.lasts_ms
    model = SpeechModel(SpeechModelSpec())  # loaded (in a thread, too) by this first call
    ticks: list[float] = []

    async def ticker() -> None:
        while True:
            ticks.append(time.monotonic())
            await asyncio.sleep(TICK_SECONDS)

    shares: list[tuple[float, float]] = []

    async def on_progress(share: float) -> None:
        shares.append((time.monotonic(), share))

    ticking = asyncio.create_task(ticker())
    await asyncio.sleep(0)  # the first tick
    started = time.monotonic()
    transcript = await model.transcribe(audio, "en", lasts_ms, on_progress, timeout_seconds=120)
    ended = time.monotonic()
    ticking.cancel()

    took = ended - started
    assert took > 2 * LONGEST_GAP_SECONDS, f"too quick to tell ({took:.2f} s): more speech"
    during = [started, *(tick for tick in ticks if started < tick < ended), ended]
    longest = max(b - a for a, b in itertools.pairwise(during))
    assert longest < LONGEST_GAP_SECONDS, f"the loop stalled {longest:.2f} s of {took:.2f} s"
    assert len(during) - 2 >= 0.5 * took / TICK_SECONDS  # it ticked throughout

    # Progress came as each segment was heard, in order, while it was transcribing.
    assert len(shares) >= 3, shares
    values = [share for _, share in shares]
    assert values == sorted(values), values
    assert values[0] > 0
    assert values[-1] <= 1
    assert shares[0][0] < ended - LONGEST_GAP_SECONDS  # not all at the end
    heard = " ".join(word.text for segment in transcript.segments for word in segment)
    assert recall(FIRST_SENTENCE, heard) >= 0.7, heard
    assert transcript.language == "en"


class _Breaks:
    """A loaded model whose transcription breaks while its segments are read."""

    def transcribe(self, audio: str, **options: Any) -> tuple[Any, Any]:
        def segments() -> Any:
            raise RuntimeError("out of memory")
            yield

        return segments(), None


async def _nothing(share: float) -> None:
    return None


async def test_a_failed_transcription_is_worth_another_attempt(
    long_speech: Spoken,
) -> None:
    model = SpeechModel(SpeechModelSpec())
    model._model = _Breaks()  # as if loaded
    with pytest.raises(SpeechFailedError) as failed:
        await model.transcribe(
            long_speech.wav, "en", long_speech.lasts_ms, _nothing, timeout_seconds=120
        )
    assert failed.value.code == "ASR_FAILED"
    assert classify_failure(failed.value) is None  # retried with backoff


async def test_a_model_that_cannot_load_is_the_setup_s_fault(
    tmp_path: Path, long_speech: Spoken
) -> None:
    (tmp_path / "model.bin").write_bytes(b"garbage" * 100)
    model = SpeechModel(SpeechModelSpec(str(tmp_path)))
    with pytest.raises(SpeechModelError) as failed:
        await model.transcribe(
            long_speech.wav, "en", long_speech.lasts_ms, _nothing, timeout_seconds=120
        )
    assert str(tmp_path) not in str(failed.value)
    permanent = classify_failure(failed.value)
    assert isinstance(permanent, PermanentJobError)
    assert permanent.code == "ASR_MODEL_UNAVAILABLE"


class _Hangs:
    """A loaded model whose transcription hangs (a stuck GPU call) until released."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.stopped_reading = threading.Event()

    def transcribe(self, audio: str, **options: Any) -> tuple[Any, Any]:
        def segments() -> Any:
            try:
                self.release.wait(timeout=30)
                yield SimpleNamespace(words=[], end=1.0)
                yield SimpleNamespace(words=[], end=2.0)  # never reached: stopped by then
            finally:
                self.stopped_reading.set()

        return segments(), SimpleNamespace(language="en")


async def test_a_transcription_past_its_time_is_a_failure_worth_retrying(
    long_speech: Spoken,
) -> None:
    model = SpeechModel(SpeechModelSpec())
    hangs = _Hangs()
    model._model = hangs  # as if loaded
    with pytest.raises(SpeechFailedError, match="CLIP_MAX_RUNTIME_SEC") as failed:
        await model.transcribe(
            long_speech.wav, "en", long_speech.lasts_ms, _nothing, timeout_seconds=0.3
        )
    assert classify_failure(failed.value) is None  # retried with backoff
    hangs.release.set()
    # The model's thread stops at its next segment instead of reading on.
    assert await asyncio.to_thread(hangs.stopped_reading.wait, 10)
