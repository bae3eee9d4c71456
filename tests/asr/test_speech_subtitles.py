"""Subtitles from speech, end to end: espeak-ng speech in an upload, a real worker with the
packaged tiny.en model, and the clip's SRT, burned-in text, job record and events checked."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import faster_whisper
import httpx
import pytest
import srt

from clipper.domain.timecode import format_timecode
from clipper.services.subtitling import NO_AUDIO_NOTE, NO_SPEECH_NOTE, SpeechModel
from clipper.signals import StopSignals
from clipper.worker.service import Worker, WorkerOptions
from tests.api.conftest import ApiFactory, settings_for
from tests.asr.media import DRAWN, PARAGRAPH, SpeechVideo, Spoken, band_brightness, recall
from tests.helpers import wait_for
from tests.media_files import make_video

pytestmark = pytest.mark.asr

# How far a cue may start from where its sentence is spoken (Whisper's word times are rough).
NEAR_MS = 1_500
CLIP_START_MS, CLIP_END_MS = 4_000, 20_000  # both sentences, and silence around them
SPEECH = {"source": "speech", "language": "en", "model": "tiny.en"}


async def _upload(client: httpx.AsyncClient, path: Path) -> str:
    with path.open("rb") as file:
        response = await client.post("/api/uploads", files={"file": (path.name, file)})
    assert response.status_code == 201, response.text
    key: str = response.json()["uploadKey"]
    return key


async def _submit(
    client: httpx.AsyncClient, key: str, start_ms: int, end_ms: int, **flags: Any
) -> str:
    body = {
        "sourceType": "upload",
        "uploadKey": key,
        "start": format_timecode(start_ms),
        "end": format_timecode(end_ms),
        **flags,
    }
    response = await client.post("/api/jobs", json=body)
    assert response.status_code == 202, response.text
    job_id: str = response.json()["id"]
    return job_id


async def _finished(client: httpx.AsyncClient, job_id: str) -> dict[str, Any]:
    job: dict[str, Any] = {}

    async def ended() -> bool:
        job.update((await client.get(f"/api/jobs/{job_id}")).json())
        return job["status"] in ("done", "failed")

    await wait_for(ended, timeout=90, interval=0.1, message=f"job {job_id} to end")
    return job


async def _clip(
    client: httpx.AsyncClient, key: str, start_ms: int, end_ms: int, **flags: Any
) -> dict[str, Any]:
    return await _finished(client, await _submit(client, key, start_ms, end_ms, **flags))


async def _download(client: httpx.AsyncClient, job_id: str, name: str) -> bytes:
    links = (await client.get(f"/api/jobs/{job_id}/result")).json()
    response = await client.get(httpx.URL(links[name]["url"]))
    assert response.status_code == 200
    return response.content


async def _cues(client: httpx.AsyncClient, job_id: str) -> list[srt.Subtitle]:
    text = (await _download(client, job_id, "subtitles")).decode("utf-8")
    return list(srt.parse(text))


async def _events(client: httpx.AsyncClient, job_id: str) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = (await client.get(f"/api/jobs/{job_id}/events")).json()
    return events


def _ms(delta: timedelta) -> int:
    return delta // timedelta(milliseconds=1)


def _in_clip(sentence: Spoken, clip_start_ms: int) -> tuple[int, int]:
    """Where the sentence is spoken in the clip's time, give or take NEAR_MS."""
    return sentence.at_ms - clip_start_ms - NEAR_MS, sentence.end_ms - clip_start_ms + NEAR_MS


@pytest.fixture
def whisper_loads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every faster-whisper model constructed while the test runs (what it was loaded from)."""
    loads: list[str] = []
    real = faster_whisper.WhisperModel

    def counting(location: str, *args: Any, **kwargs: Any) -> Any:
        loads.append(location)
        return real(location, *args, **kwargs)

    monkeypatch.setattr(faster_whisper, "WhisperModel", counting)
    return loads


async def test_speech_becomes_readable_cues_where_it_is_spoken(
    make_client: ApiFactory, worker: Worker, speech_video: SpeechVideo
) -> None:
    client: httpx.AsyncClient = await make_client()
    key = await _upload(client, speech_video.path)  # a video without any subtitle track
    job = await _clip(client, key, CLIP_START_MS, CLIP_END_MS, withSubtitles=True)
    assert (job["status"], job["attempts"]) == ("done", 1), job
    cues = await _cues(client, job["id"])
    assert job["subtitles"] == {**SPEECH, "cues": len(cues), "note": None}

    clip_ms = CLIP_END_MS - CLIP_START_MS
    for cue in cues:
        assert 0 <= _ms(cue.start) < _ms(cue.end) <= clip_ms, cue
        assert _ms(cue.end - cue.start) <= 7_000, cue
        lines = cue.content.split("\n")
        assert 1 <= len(lines) <= 2, cue
        assert all(len(line) <= 42 or " " not in line for line in lines), cue
    assert [_ms(cue.start) for cue in cues] == sorted(_ms(cue.start) for cue in cues)
    assert all(_ms(a.end) <= _ms(b.start) for a, b in itertools.pairwise(cues)), cues

    # Each sentence is heard (most of its words), in cues where it is spoken; none elsewhere.
    windows = [_in_clip(sentence, CLIP_START_MS) for sentence in speech_video.spoken]
    for sentence, (start, end) in zip(speech_video.spoken, windows, strict=True):
        there = [cue for cue in cues if start <= _ms(cue.start) and _ms(cue.end) <= end]
        assert there, f"no cue near {sentence.text!r}: {cues}"
        heard = " ".join(cue.content for cue in there)
        assert recall(sentence.text, heard) >= 0.7, (sentence.text, heard)
        assert abs(_ms(there[0].start) - (sentence.at_ms - CLIP_START_MS)) <= NEAR_MS, there
    assert all(any(s <= _ms(c.start) and _ms(c.end) <= e for s, e in windows) for c in cues)

    events = await _events(client, job["id"])
    made = [event["payload"] for event in events if event["type"] == "subtitles"]
    assert made == [job["subtitles"]]
    progress = [event["payload"] for event in events if event["type"] == "progress"]
    assert [p["pct"] for p in progress] == sorted(p["pct"] for p in progress)
    transcribing = [p["pct"] for p in progress if p["stage"] == "transcribe"]
    assert transcribing, progress
    assert all(5 <= pct <= 45 for pct in transcribing), transcribing
    stages = [p["stage"] for p in progress]
    assert stages.index("probe") < stages.index("transcribe") < stages.index("store")


async def test_burned_in_speech_shows_while_it_is_spoken(
    make_client: ApiFactory, worker: Worker, speech_video: SpeechVideo, tmp_path: Path
) -> None:
    client: httpx.AsyncClient = await make_client()
    key = await _upload(client, speech_video.path)
    job = await _clip(
        client, key, CLIP_START_MS, CLIP_END_MS, withSubtitles=True, burnSubtitles=True
    )
    assert job["status"] == "done", job
    assert job["subtitles"]["source"] == "speech"
    assert "encode" in {
        e["payload"]["stage"] for e in await _events(client, job["id"]) if e["type"] == "progress"
    }
    cues = await _cues(client, job["id"])
    clip = tmp_path / "burned.mp4"
    clip.write_bytes(await _download(client, job["id"], "video"))

    first, second = (sentence.at_ms - CLIP_START_MS for sentence in speech_video.spoken)
    # Mid-cue, text is drawn at the bottom; long before the speech, and between the
    # sentences where no cue is on screen, the frame stays black.
    lit = [(_ms(cue.start) + _ms(cue.end)) // 2 for cue in cues]
    gaps = [
        (_ms(a.end) + _ms(b.start)) // 2
        for a, b in itertools.pairwise(cues)
        if _ms(b.start) - _ms(a.end) >= 1_000
    ]
    dark = [first - NEAR_MS - 300, *gaps]
    assert dark[0] > 0, cues
    assert any(first < at < second for at in gaps), (cues, gaps)
    shown = {at: band_brightness(clip, at) for at in lit + dark}
    for at, (top, bottom) in shown.items():
        assert top < 5, f"something drawn at the top at {at} ms: {shown}"
        assert (bottom > DRAWN) == (at in lit), (
            f"text {'missing' if at in lit else 'shown'} at {at} ms: {shown}"
        )


async def test_a_clip_without_speech_gets_empty_subtitles_and_a_note(
    make_client: ApiFactory,
    worker: Worker,
    speech_video: SpeechVideo,
    tone_video: Path,
    tmp_path: Path,
) -> None:
    client: httpx.AsyncClient = await make_client()
    tone = await _upload(client, tone_video)
    job = await _clip(client, tone, 0, 6_000, withSubtitles=True)
    assert job["status"] == "done", job
    assert job["subtitles"] == {**SPEECH, "cues": 0, "note": NO_SPEECH_NOTE}
    assert await _cues(client, job["id"]) == []  # empty, and still valid SRT

    # The silence before the speech, burned in: nothing to burn, nothing drawn.
    speech = await _upload(client, speech_video.path)
    silent = await _clip(client, speech, 0, 4_000, withSubtitles=True, burnSubtitles=True)
    assert silent["status"] == "done", silent
    assert (silent["subtitles"]["cues"], silent["subtitles"]["note"]) == (0, NO_SPEECH_NOTE)
    assert await _cues(client, silent["id"]) == []
    clip = tmp_path / "silent.mp4"
    clip.write_bytes(await _download(client, silent["id"], "video"))
    assert all(max(band_brightness(clip, at)) < DRAWN for at in (500, 2_000, 3_500))

    mute = await _upload(client, make_video(tmp_path / "mute.mp4", seconds=4, audio=False))
    no_audio = await _clip(client, mute, 0, 4_000, withSubtitles=True, burnSubtitles=True)
    assert no_audio["status"] == "done", no_audio
    assert no_audio["subtitles"] == {
        "source": "speech",
        "cues": 0,
        "language": None,
        "model": "tiny.en",
        "note": NO_AUDIO_NOTE,
    }
    assert await _cues(client, no_audio["id"]) == []


async def test_an_uploaded_sidecar_comes_before_speech(
    make_client: ApiFactory,
    worker: Worker,
    speech_video: SpeechVideo,
    tmp_path: Path,
    whisper_loads: list[str],
) -> None:
    client: httpx.AsyncClient = await make_client()
    media = await _upload(client, speech_video.path)
    sidecar_file = tmp_path / "words.srt"
    sidecar_file.write_text("1\n00:00:07,000 --> 00:00:09,000\nWritten by hand\n")
    sidecar = await _upload(client, sidecar_file)
    job = await _clip(
        client, media, CLIP_START_MS, CLIP_END_MS, withSubtitles=True, subtitlesKey=sidecar
    )
    assert job["status"] == "done", job
    assert job["subtitles"] == {
        "source": "sidecar",
        "cues": 1,
        "language": None,
        "model": None,
        "note": None,
    }
    cues = await _cues(client, job["id"])
    assert [(_ms(c.start), _ms(c.end), c.content) for c in cues] == [
        (3_000, 5_000, "Written by hand")
    ]
    events = await _events(client, job["id"])
    assert "transcribe" not in {
        e["payload"].get("stage") for e in events if e["type"] == "progress"
    }
    assert whisper_loads == []  # the speech model was never even loaded


async def test_a_language_the_model_cannot_transcribe_is_refused_at_once(
    make_client: ApiFactory, speech_video: SpeechVideo
) -> None:
    client: httpx.AsyncClient = await make_client()
    key = await _upload(client, speech_video.path)
    body = {"sourceType": "upload", "uploadKey": key, "start": "00:00:04", "end": "00:00:18"}
    german = await client.post(
        "/api/jobs", json={**body, "withSubtitles": True, "subtitleLang": "de"}
    )
    assert german.status_code == 422, german.text
    detail = german.json()["error"]["details"][0]
    assert detail["field"] == "subtitleLang"
    assert "English (en) only" in detail["message"]
    english = await client.post(
        "/api/jobs", json={**body, "withSubtitles": True, "subtitleLang": "en-GB"}
    )
    assert english.status_code == 202, english.text


async def test_the_model_is_loaded_once_per_worker(
    make_client: ApiFactory, worker: Worker, speech_video: SpeechVideo, whisper_loads: list[str]
) -> None:
    client: httpx.AsyncClient = await make_client()
    key = await _upload(client, speech_video.path)
    # Two at once (the worker runs several jobs together), then one more.
    together = [
        await _submit(client, key, 5_000, 10_000, withSubtitles=True),
        await _submit(client, key, 13_000, 20_000, withSubtitles=True),
    ]
    jobs = [await _finished(client, job_id) for job_id in together]
    jobs.append(await _clip(client, key, 5_000, 9_000, withSubtitles=True))
    assert [(job["status"], job["subtitles"]["source"]) for job in jobs] == [("done", "speech")] * 3
    assert all(job["subtitles"]["cues"] >= 1 for job in jobs), jobs
    assert len(whisper_loads) == 1, whisper_loads


async def test_a_model_that_cannot_load_dead_letters_the_job_at_once(
    make_client: ApiFactory,
    db_url: str,
    data_dir: Path,
    speech_video: SpeechVideo,
    tmp_path: Path,
) -> None:
    broken = tmp_path / "secret-models" / "broken-whisper"
    broken.mkdir(parents=True)
    (broken / "model.bin").write_bytes(b"\x00not a model\xff" * 64)
    (broken / "config.json").write_text("{ not json")
    settings = settings_for(
        data_dir=data_dir, asr_model=str(broken), queue_retry_backoff_ms_base=50
    )
    running = Worker(settings, db_url, WorkerOptions(metrics_port=0))
    await running.start()
    try:
        client: httpx.AsyncClient = await make_client()
        key = await _upload(client, speech_video.path)
        job = await _clip(client, key, CLIP_START_MS, CLIP_END_MS, withSubtitles=True)
    finally:
        await running.stop(StopSignals())
    assert (job["status"], job["error"]["code"], job["attempts"]) == (
        "failed",
        "ASR_MODEL_UNAVAILABLE",
        1,
    ), job
    assert str(tmp_path) not in job["error"]["message"]  # the server's folders stay its own
    assert "secret-models" not in job["error"]["message"]
    assert job.get("subtitles") is None
    events = [event["type"] for event in await _events(client, job["id"])]
    assert "retry" not in events
    # The server's setup is at fault: dead-lettered, so the operator is alerted.
    assert [letter["jobId"] for letter in (await client.get("/api/dlq")).json()] == [job["id"]]


class _FailsOnce:
    """A loaded model whose first transcription breaks down after its first segment."""

    def __init__(self, model: Any, failures: list[str]) -> None:
        self._model = model
        self._failures = failures

    def transcribe(self, audio: str, **options: Any) -> tuple[Iterator[Any], Any]:
        segments, info = self._model.transcribe(audio, **options)
        if self._failures:
            return segments, info
        self._failures.append(audio)

        def breaking() -> Iterator[Any]:
            yield next(segments)
            raise RuntimeError("the decoder fell over")

        return breaking(), info


async def test_a_transcription_that_fails_midway_is_retried(
    make_client: ApiFactory,
    worker: Worker,
    speech_video: SpeechVideo,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    failures: list[str] = []
    loaded = SpeechModel._loaded

    def flaky(model: SpeechModel) -> Any:
        return _FailsOnce(loaded(model), failures)

    monkeypatch.setattr(SpeechModel, "_loaded", flaky)
    client: httpx.AsyncClient = await make_client()
    key = await _upload(client, speech_video.path)
    job = await _clip(client, key, CLIP_START_MS, CLIP_END_MS, withSubtitles=True)
    assert (job["status"], job["attempts"]) == ("done", 2), job
    assert len(failures) == 1
    assert job["subtitles"]["source"] == "speech", job
    assert job["subtitles"]["cues"] >= 1, job
    heard = " ".join(cue.content for cue in await _cues(client, job["id"]))
    assert recall(speech_video.spoken[0].text, heard) >= 0.7, heard
    events = await _events(client, job["id"])
    retries = [event["payload"] for event in events if event["type"] == "retry"]
    assert [(r["attempt"], r["error"]) for r in retries] == [
        (1, "SpeechFailedError: speech recognition failed")
    ]
    assert "dlq" not in {event["type"] for event in events}


# A lease this short is lost unless the worker's heartbeat renews it several times a second.
SHORT_LEASE_SECONDS = 1.0


async def test_the_lease_is_renewed_while_a_long_clip_is_transcribed(
    make_client: ApiFactory,
    db_url: str,
    data_dir: Path,
    long_speech_video: SpeechVideo,
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings = settings_for(
        data_dir=data_dir,
        queue_visibility_sec=SHORT_LEASE_SECONDS,
        queue_retry_backoff_ms_base=50,
    )
    running = Worker(settings, db_url, WorkerOptions(metrics_port=0))
    await running.start()
    try:
        client: httpx.AsyncClient = await make_client()
        key = await _upload(client, long_speech_video.path)
        whole = long_speech_video.seconds * 1000
        job = await _clip(client, key, 0, whole, withSubtitles=True)
    finally:
        await running.stop(StopSignals())
    # Had transcribing held the event loop, the heartbeat would have missed a whole lease,
    # the attempt would have been stopped and the job retried.
    assert (job["status"], job["attempts"]) == ("done", 1), job
    assert "lease lost" not in caplog.text
    events = await _events(client, job["id"])
    assert "retry" not in {event["type"] for event in events}
    progress = [event for event in events if event["type"] == "progress"]
    stages = [event["payload"]["stage"] for event in progress]
    transcribing = [e["payload"]["pct"] for e in progress if e["payload"]["stage"] == "transcribe"]
    assert transcribing == sorted(transcribing)
    # Progress came as the model went on, segment by segment (not only at 5 and 45 %).
    assert len([pct for pct in transcribing if 5 < pct < 45]) >= 3, progress
    # The transcription outlasted the lease (else this proves nothing).
    began = datetime.fromisoformat(progress[stages.index("probe")]["createdAt"])
    after = datetime.fromisoformat(
        progress[len(stages) - stages[::-1].index("transcribe")]["createdAt"]
    )
    assert (after - began).total_seconds() > 2 * SHORT_LEASE_SECONDS, progress
    heard = " ".join(cue.content for cue in await _cues(client, job["id"]))
    assert recall(PARAGRAPH, heard) >= 0.7, heard


async def test_a_fast_cut_times_its_cues_from_the_keyframe_it_starts_on(
    make_client: ApiFactory, worker: Worker, speech_video: SpeechVideo
) -> None:
    client: httpx.AsyncClient = await make_client()
    key = await _upload(client, speech_video.path)
    # The keyframe before 5.9 s is at 4 s: the clip, and so its subtitles, start there.
    job = await _clip(client, key, 5_900, 12_000, cut="fast", withSubtitles=True)
    assert (job["status"], job["actualStart"]) == ("done", "00:00:04.000"), job
    cues = await _cues(client, job["id"])
    assert cues, job
    assert all(0 <= _ms(cue.start) < _ms(cue.end) <= 12_000 - 4_000 for cue in cues), cues
    first = speech_video.spoken[0]
    assert abs(_ms(cues[0].start) - (first.at_ms - 4_000)) <= NEAR_MS, cues
    heard = " ".join(cue.content for cue in cues)
    assert recall(first.text, heard) >= 0.7, heard


class _Watched:
    """A loaded model whose transcriptions tell how they ended: read to the last segment, or
    left (closed) part-way."""

    def __init__(self, model: Any, endings: list[str]) -> None:
        self._model = model
        self._endings = endings

    def transcribe(self, audio: str, **options: Any) -> tuple[Iterator[Any], Any]:
        segments, info = self._model.transcribe(audio, **options)

        def watched() -> Iterator[Any]:
            try:
                yield from segments
            except GeneratorExit:
                self._endings.append("left")
                raise
            self._endings.append("read to the end")

        return watched(), info


async def test_cancelling_a_job_stops_its_transcription_part_way(
    make_client: ApiFactory,
    worker: Worker,
    long_speech_video: SpeechVideo,
    data_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    endings: list[str] = []
    loaded = SpeechModel._loaded

    def watched(model: SpeechModel) -> Any:
        return _Watched(loaded(model), endings)

    monkeypatch.setattr(SpeechModel, "_loaded", watched)
    client: httpx.AsyncClient = await make_client()
    key = await _upload(client, long_speech_video.path)
    job_id = await _submit(client, key, 0, long_speech_video.seconds * 1000, withSubtitles=True)

    async def heard() -> bool:  # the stage starts at 5 %: a segment heard takes it further
        events = await _events(client, job_id)
        return any(
            e["payload"].get("stage") == "transcribe" and e["payload"]["pct"] > 5 for e in events
        )

    await wait_for(heard, timeout=60, interval=0.05, message="the first segment")
    cancelled = await client.post(f"/api/jobs/{job_id}/cancel")
    assert cancelled.status_code == 200, cancelled.text
    # The model's thread cannot be interrupted, but it stops at its next segment.
    await wait_for(lambda: endings, timeout=30, message="the transcription to stop")
    assert endings == ["left"]
    job = (await client.get(f"/api/jobs/{job_id}")).json()
    assert job["status"] == "cancelled", job
    assert job.get("subtitles") is None
    await wait_for(
        lambda: not list((data_dir / "scratch").glob(f"clip-{job_id}-*")), message="scratch gone"
    )
