"""Clip benchmark: 30 s segments of a 10-minute generated source, cut through Clipper (API
accept to done, a real worker) and by running FFmpeg directly, side by side in one run; then
one 30 s clip of generated speech without subtitles and with subtitles from speech, by stage.

    python -m bench.clip_bench [--jobs N] [--runs N] [--only cuts|subtitles]

Cuts: stream copy (the start on a keyframe) and re-encode (the start between keyframes), with
1 and 4 jobs at once; the worker runs at concurrency 4. It makes its own database on
DATABASE_URL's server (or the embedded one) and its own data folder, and removes both
afterwards.

Subtitles: espeak-ng speaks a few sentences (~26 s), muxed under a generated video; the same
30 s clip of it is cut by the worker's ClipProcessor (no database, no queue) without subtitles
and with `withSubtitles` (no track, no sidecar: speech recognition with the model that
ASR_MODEL, ASR_DEVICE and ASR_COMPUTE_TYPE name; unset, the packaged tiny.en, int8 on the
CPU). Each stage is timed where it runs: the probe, the audio extraction, the model load (the
first job of the process pays it, once) and the transcription, the cut, the store. The first
job with speech is reported on its own; then `--runs` of each, alternated, and their medians.
The real-time factor is the transcription's seconds per second of the clip's audio.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import difflib
import os
import re
import shutil
import statistics
import subprocess
import tempfile
import time
import uuid
import wave
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, ParamSpec, TypeVar, cast
from unittest import mock

import httpx
import psycopg
import srt
from psycopg import sql
from sqlalchemy.engine import make_url

from clipper.api import create_app
from clipper.db import migrate
from clipper.db.models import Job
from clipper.db.urls import libpq_url
from clipper.embedded_db import resolve_database_url
from clipper.media.cutting import cut_arguments, cut_segment
from clipper.media.ffmpeg import ffmpeg_path
from clipper.media.probe import probe
from clipper.media.sample import KEYFRAMES_EVERY_2S, write_sample_video
from clipper.media.speech import Transcript, extract_speech_audio
from clipper.queue import JobContext
from clipper.services import clipping, subtitling
from clipper.services.clipping import ClipProcessor
from clipper.services.processing import ClipResult
from clipper.services.subtitling import SpeechModel, speech_spec
from clipper.settings import Settings
from clipper.signals import StopSignals
from clipper.storage import LocalStorage
from clipper.worker.service import Worker, WorkerOptions

if TYPE_CHECKING:
    from faster_whisper import WhisperModel

SEGMENTS = {"copy": ("00:01:00", 60.0), "encode": ("00:01:00.500", 60.5)}

# What espeak-ng says: plain sentences of several lengths, a question among them, about 26 s.
SPEECH = (
    "Clipper cuts short clips out of long videos. A worker takes each job from the queue and "
    "runs FFmpeg on it. When a clip needs subtitles, the worker listens to its audio first. "
    "The speech model writes down every word it hears, with the time it was spoken. Those "
    "words become cues of two short lines at most. Is the model fast enough to keep up? This "
    "benchmark measures exactly that, on this machine."
)
# The speech starts 2.5 s into the source; the clip is 2 s to 32 s (2 s is a keyframe, so the
# clip is stream-copied with or without subtitles: only the subtitles differ).
SPEECH_AT_S = 2.5
SPEECH_MAX_S = 29.0
SPEECH_CLIP_MS = (2_000, 32_000)
SPEECH_SOURCE_S = 36
# The stages of a job, as the table prints them, in order.
STAGES = ("probe", "audio extraction", "model load", "transcription", "cut", "store", "other")

P = ParamSpec("P")
T = TypeVar("T")


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1)))]


async def clipper_times(
    client: httpx.AsyncClient, key: str, start: str, end: str, jobs: int, parallel: int
) -> list[float]:
    async def one() -> float:
        began = time.perf_counter()
        response = await client.post(
            "/api/jobs", json={"sourceType": "upload", "uploadKey": key, "start": start, "end": end}
        )
        job_id = response.json()["id"]
        # Polling the API, as a client does (there is no event to wait on here).
        while (await client.get(f"/api/jobs/{job_id}")).json()["status"] not in (  # noqa: ASYNC110
            "done",
            "failed",
        ):
            await asyncio.sleep(0.02)
        return time.perf_counter() - began

    times: list[float] = []
    for _ in range(0, jobs, parallel):
        times += await asyncio.gather(*(one() for _ in range(parallel)))
    return times


async def ffmpeg_times(
    source: Path, method: str, start: float, jobs: int, parallel: int, out_dir: Path
) -> list[float]:
    async def one() -> float:
        began = time.perf_counter()
        arguments = cut_arguments(
            source, int(start * 1000), 30_000, method, out_dir / f"{uuid.uuid4().hex}.mp4"
        )
        process = await asyncio.create_subprocess_exec(
            ffmpeg_path(), "-hide_banner", "-loglevel", "error", *arguments
        )
        await process.wait()
        return time.perf_counter() - began

    times: list[float] = []
    for _ in range(0, jobs, parallel):
        times += await asyncio.gather(*(one() for _ in range(parallel)))
    return times


async def run(jobs: int) -> None:
    server = libpq_url(resolve_database_url(os.environ.get("DATABASE_URL")))
    name = f"clipper_clipbench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(server, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = libpq_url(make_url(server).set(database=name).render_as_string(hide_password=False))
    with tempfile.TemporaryDirectory(prefix="clipbench-") as folder:
        work = Path(folder)
        try:
            migrate.upgrade(url, "clipper_queue")
            settings = Settings(
                _env_file=None,
                data_dir=work / "data",  # type: ignore[call-arg]
                queue_concurrency=4,
                clip_max_duration_sec=120,
            )
            began = time.perf_counter()
            write_sample_video(work / "source.mp4", 600)
            print(
                f"source: 10 min, 640x360, keyframe every 2 s "
                f"(made in {time.perf_counter() - began:.1f} s)"
            )
            await measure(settings, url, work, jobs)
        finally:
            with psycopg.connect(server, autocommit=True) as admin:
                admin.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


async def measure(settings: Settings, url: str, work: Path, jobs: int) -> None:
    worker = Worker(settings, url, WorkerOptions(metrics_port=0))
    await worker.start()
    app = create_app(settings, url)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://bench", timeout=120
        ) as client,
    ):
        with (work / "source.mp4").open("rb") as file:
            key = (await client.post("/api/uploads", files={"file": file})).json()["uploadKey"]
        print(f"{'':<22}{'clipper p50':>12}{'p95':>8}{'ffmpeg p50':>12}{'p95':>8}{'ratio':>8}")
        for method, (start, start_s) in SEGMENTS.items():
            end = _timecode(start_s + 30)
            for parallel in (1, 4):
                ours = await clipper_times(client, key, start, end, jobs, parallel)
                bare = await ffmpeg_times(
                    work / "source.mp4", method, start_s, jobs, parallel, work
                )
                print(
                    f"{method + f', {parallel} at once':<22}"
                    f"{percentile(ours, 50):>11.2f}s{percentile(ours, 95):>7.2f}s"
                    f"{percentile(bare, 50):>11.2f}s{percentile(bare, 95):>7.2f}s"
                    f"{statistics.median(ours) / statistics.median(bare):>7.2f}x"
                )
    await worker.stop(StopSignals())


@dataclass
class Stopwatch:
    """The seconds each stage of one job took, as its instrumented steps record them."""

    began: float = field(default_factory=time.perf_counter)
    seconds: dict[str, float] = field(default_factory=dict)
    store_from: float | None = None  # when the job reported its `store` stage
    # The progress the job reported: each stage, its first and last percent.
    stages: list[tuple[str, int, int]] = field(default_factory=list)

    def add(self, stage: str, seconds: float) -> None:
        self.seconds[stage] = self.seconds.get(stage, 0.0) + seconds

    async def progress(self, percent: int, stage: str) -> None:
        """The job's progress callback: the stages in the order the job reports them."""
        if not self.stages or self.stages[-1][0] != stage:
            self.stages.append((stage, percent, percent))
        else:
            self.stages[-1] = (stage, self.stages[-1][1], percent)
        if stage == "store" and self.store_from is None:
            self.store_from = time.perf_counter()

    def finish(self) -> dict[str, float]:
        """Every stage's seconds; `other` is what no stage accounts for (the scratch folder,
        the output plan, the cue layout), `total` the whole job."""
        ended = time.perf_counter()
        assert self.store_from is not None
        spans = {stage: self.seconds.get(stage, 0.0) for stage in STAGES}
        spans["store"] = ended - self.store_from
        spans["total"] = ended - self.began
        spans["other"] = spans["total"] - sum(spans[stage] for stage in STAGES[:-1])
        return spans


_watch: Stopwatch | None = None  # the job being timed (one at a time)


def _timed(stage: str, step: Callable[P, Awaitable[T]]) -> Callable[P, Awaitable[T]]:
    """`step`, adding its seconds to the current job's `stage`."""

    async def timed(*args: P.args, **kwargs: P.kwargs) -> T:
        began = time.perf_counter()
        try:
            return await step(*args, **kwargs)
        finally:
            if _watch is not None:
                _watch.add(stage, time.perf_counter() - began)

    return timed


@contextlib.contextmanager
def _stages_timed() -> Iterator[None]:
    """Time the processor's own steps where they run: the probe, the cut (module names the
    processor calls), the audio extraction (the subtitler's)."""
    with (
        mock.patch.object(clipping, "probe", _timed("probe", probe)),
        mock.patch.object(clipping, "cut_segment", _timed("cut", cut_segment)),
        mock.patch.object(
            subtitling,
            "extract_speech_audio",
            _timed("audio extraction", extract_speech_audio),
        ),
    ):
        yield


class TimedSpeechModel(SpeechModel):
    """The worker's speech model, its load (once, in the first job that needs it) and its
    transcriptions timed apart: a transcription's time here excludes the load."""

    def _load(self) -> WhisperModel:
        began = time.perf_counter()
        model = super()._load()
        self.load_seconds = time.perf_counter() - began
        return model

    async def transcribe(
        self,
        audio: Path,
        language: str | None,
        duration_ms: int,
        on_progress: Callable[[float], Awaitable[None]],
        *,
        timeout_seconds: float,
    ) -> Transcript:
        self.load_seconds = 0.0
        began = time.perf_counter()
        heard = await super().transcribe(
            audio, language, duration_ms, on_progress, timeout_seconds=timeout_seconds
        )
        if _watch is not None:
            _watch.add("model load", self.load_seconds)
            _watch.add("transcription", time.perf_counter() - began - self.load_seconds)
        return heard


def write_speech_video(path: Path, folder: Path) -> float:
    """SPEECH spoken by espeak-ng from SPEECH_AT_S into SPEECH_SOURCE_S of a 640x360 test
    pattern (a keyframe every 2 s), AAC in MP4; the speech's seconds."""
    if shutil.which("espeak-ng") is None:
        raise SystemExit("the subtitles benchmark needs espeak-ng (apt-get install espeak-ng)")
    voice = folder / "speech.wav"
    rate = 160  # words per minute; faster if this espeak-ng speaks slower than expected
    while True:
        subprocess.run(["espeak-ng", "-s", str(rate), "-w", str(voice), SPEECH], check=True)
        with wave.open(str(voice)) as sound:
            spoken = float(sound.getnframes() / sound.getframerate())
        if spoken <= SPEECH_MAX_S:
            break
        rate = int(rate * spoken / SPEECH_MAX_S) + 1
    delay_ms = int(SPEECH_AT_S * 1000)
    subprocess.run(
        [
            ffmpeg_path(),
            *("-y", "-hide_banner", "-loglevel", "error"),
            *("-f", "lavfi", "-i", f"testsrc2=size=640x360:rate=25:duration={SPEECH_SOURCE_S}"),
            *("-i", str(voice)),
            *("-filter:a", f"adelay={delay_ms}:all=1,apad", "-t", str(SPEECH_SOURCE_S)),
            *("-c:v", "libx264", "-preset", "veryfast", *KEYFRAMES_EVERY_2S),
            *("-pix_fmt", "yuv420p", "-c:a", "aac", "-ar", "44100"),
            str(path),
        ],
        check=True,
    )
    return spoken


class _GivenFile:
    """The processor's source stage, handing over the generated file (as an upload's would)."""

    def __init__(self, path: Path) -> None:
        self._path = path

    @contextlib.asynccontextmanager
    async def __call__(self, job: Job, scratch: Path, progress: object) -> AsyncIterator[Path]:
        yield self._path


async def _clip(
    processor: ClipProcessor, with_subtitles: bool
) -> tuple[dict[str, float], ClipResult, list[tuple[str, int, int]]]:
    """One job, timed by stage: its spans, its result and its progress stages."""
    global _watch
    start_ms, end_ms = SPEECH_CLIP_MS
    job = Job(
        id=uuid.uuid4(),
        source_type="upload",
        start_ms=start_ms,
        end_ms=end_ms,
        with_subtitles=with_subtitles,
        burn_subtitles=False,
        subtitle_lang="auto",  # the API's default
        subtitles_upload_key=None,
    )
    _watch = watch = Stopwatch()
    try:
        # The processor reads only the attempt number; a real context needs a consumer's lease.
        result = await processor(job, watch.progress, cast(JobContext, SimpleNamespace(attempt=1)))
    finally:
        _watch = None
    return watch.finish(), result, watch.stages


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9']+", text.lower())


async def measure_subtitles(runs: int) -> None:
    with tempfile.TemporaryDirectory(prefix="clipbench-asr-") as folder:
        work = Path(folder)
        source = work / "speech.mp4"
        began = time.perf_counter()
        spoken = await asyncio.to_thread(write_speech_video, source, work)
        clip_s = (SPEECH_CLIP_MS[1] - SPEECH_CLIP_MS[0]) / 1000
        print(
            f"\nsource: {SPEECH_SOURCE_S} s, 640x360, {spoken:.1f} s of espeak-ng speech from "
            f"{SPEECH_AT_S:g} s (made in {time.perf_counter() - began:.1f} s); "
            f"clip {SPEECH_CLIP_MS[0] / 1000:g}-{SPEECH_CLIP_MS[1] / 1000:g} s ({clip_s:g} s)"
        )
        storage = LocalStorage(work / "data")
        # ASR_MODEL, ASR_DEVICE, ASR_COMPUTE_TYPE as set (unset: tiny.en, int8 on the CPU).
        speech = TimedSpeechModel(speech_spec(Settings(_env_file=None)))  # type: ignore[call-arg]
        processor = ClipProcessor(
            storage,
            _GivenFile(source),
            work / "scratch",
            ffmpeg_timeout_seconds=600,
            max_source_ms=7_200_000,
            subtitle_fonts_dir=Path("/usr/share/fonts"),
            speech=speech,
            scratch_stale_after_seconds=600,
        )
        with _stages_timed():
            first, result, stages = await _clip(processor, True)  # the process's first: loads
            without: list[dict[str, float]] = []
            with_speech: list[dict[str, float]] = []
            for _ in range(runs):
                without.append((await _clip(processor, False))[0])
                with_speech.append((await _clip(processor, True))[0])
        assert result.subtitles is not None
        assert result.subtitles_key is not None
        cues = list(srt.parse(storage.path(result.subtitles_key).read_text(encoding="utf-8")))
        heard = _words(" ".join(cue.content for cue in cues))
        said = _words(SPEECH)
        matched = sum(
            block.size for block in difflib.SequenceMatcher(a=said, b=heard).get_matching_blocks()
        )

    def median(spans: list[dict[str, float]], stage: str) -> float:
        return statistics.median(span[stage] for span in spans)

    print(
        f"model {result.subtitles.model} ({speech.spec.compute_type} on {speech.spec.device}), "
        f"{len(cues)} cues, language {result.subtitles.language}, "
        f"{matched} of {len(said)} spoken words heard"
    )
    print(
        "progress: "
        + ", ".join(
            f"{stage} {low} %" if low == high else f"{stage} {low}-{high} %"
            for stage, low, high in stages
        )
    )
    print(f"{'':<18}{'no subtitles':>14}{'speech':>10}{'first job':>11}   (medians of {runs})")
    for stage in (*STAGES, "total"):
        print(
            f"{stage:<18}{median(without, stage):>13.2f}s{median(with_speech, stage):>9.2f}s"
            f"{first[stage]:>10.2f}s"
        )
    plain, heard_total = median(without, "total"), median(with_speech, "total")
    print(
        f"with subtitles from speech / without: {heard_total / plain:.2f}x "
        f"(+{heard_total - plain:.2f} s); first job {first['total'] / plain:.2f}x"
    )
    print(
        f"real-time factor of transcription (s per s of audio): "
        f"{median(with_speech, 'transcription') / clip_s:.3f} "
        f"(first job {first['transcription'] / clip_s:.3f}; the model load "
        f"{first['model load']:.2f} s, once per worker process)"
    )


def _timecode(seconds: float) -> str:
    minutes, rest = divmod(seconds, 60)
    return f"00:{int(minutes):02d}:{rest:06.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--jobs", type=int, default=8, help="jobs per scenario (a multiple of 4)")
    parser.add_argument(
        "--runs", type=int, default=5, help="clips of each kind for the subtitles medians"
    )
    parser.add_argument(
        "--only", choices=("cuts", "subtitles"), help="run one part (default: both)"
    )
    arguments = parser.parse_args()
    if arguments.only != "subtitles":
        asyncio.run(run(arguments.jobs))
    if arguments.only != "cuts":
        asyncio.run(measure_subtitles(arguments.runs))


if __name__ == "__main__":
    main()
