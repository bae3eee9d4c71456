"""Range reads against downloading first: a 30 s clip near the end of a long source kept in
an S3-compatible store, cut by the worker's clip processor both ways in one run.

    python -m bench.range_read_bench [--minutes 60] [--clip 30] [--rounds 3] [--size 640x360]

It generates the source (a minute of test video and tone, repeated by stream copy: an MP4
with its index at the end, as most encoders write it), starts a moto S3 server on 127.0.0.1
(tests/moto_server.py) behind a counting TCP proxy (tests/proxy.py), and stores the source
there as an upload. Each round cuts the clip that ends 15 s before the source does, once with
SOURCE_RANGE_READS on (FFmpeg reads the object by range through the relay) and once off (the
object is downloaded into the scratch folder, then cut), the order swapped every round. It
prints, per way, the bytes that came from the store over the network and the time, split by
the processor's stages (source, probe, encode, store), medians over the rounds; and the
ratios. Everything it made is removed at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import cast

import boto3

from clipper.db.models import Job
from clipper.media.ffmpeg import ffmpeg_path
from clipper.media.probe import probe
from clipper.queue import JobContext
from clipper.services.clipping import ClipProcessor, UploadedSource
from clipper.services.reading import SourceReading
from clipper.services.subtitling import SpeechModel, SpeechModelSpec
from clipper.storage import new_upload_key, source_key
from clipper.storage_s3 import S3Storage
from tests.media_files import make_video
from tests.moto_server import ACCESS_KEY, SECRET_KEY, running_moto
from tests.proxy import CountingProxy

BUCKET = "clipper-bench"
STAGES = ("source", "probe", "encode", "store")


@dataclass
class Run:
    bytes_from_store: int
    gets: int  # GetObject requests (the download's are its parts')
    seconds: float
    stages: dict[str, float] = field(default_factory=dict)


def make_source(folder: Path, minutes: int, size: str) -> Path:
    minute = make_video(folder / "minute.mp4", 60, size=size)
    source = folder / "source.mp4"
    subprocess.run(
        [
            ffmpeg_path(),
            "-y",
            "-hide_banner",
            "-loglevel",
            "error",
            "-stream_loop",
            str(minutes - 1),
            "-i",
            str(minute),
            "-c",
            "copy",
            str(source),
        ],
        check=True,
    )
    minute.unlink()
    return source


class StageClock:
    """The processor's progress calls, as the time each stage took: `source` runs until the
    first progress call after the source is ready (`probe`)."""

    def __init__(self) -> None:
        self.began = time.perf_counter()
        self.current = "source"
        self.since = self.began
        self.stages: dict[str, float] = dict.fromkeys(STAGES, 0.0)

    async def __call__(self, percent: int, stage: str) -> None:
        name = "encode" if stage in ("cut", "encode") else stage
        if name == self.current or name not in self.stages:
            return
        now = time.perf_counter()
        self.stages[self.current] += now - self.since
        self.current, self.since = name, now

    def stop(self) -> float:
        now = time.perf_counter()
        self.stages[self.current] += now - self.since
        return now - self.began


async def clip_once(
    storage: S3Storage,
    upload: str,
    start_ms: int,
    clip_ms: int,
    by_range: bool,
    scratch: Path,
    proxy: CountingProxy,
) -> Run:
    reading = SourceReading(storage, by_range=by_range)
    processor = ClipProcessor(
        storage,
        UploadedSource(storage, reading),
        scratch,
        ffmpeg_timeout_seconds=3600,
        max_source_ms=24 * 3_600_000,
        subtitle_fonts_dir=Path("/usr/share/fonts"),
        speech=SpeechModel(SpeechModelSpec()),
        scratch_stale_after_seconds=3600,
    )
    job = Job(
        id=uuid.uuid4(),
        source_type="upload",
        upload_key=upload,
        start_ms=start_ms,
        end_ms=start_ms + clip_ms,
        with_subtitles=False,
    )
    proxy.reset()
    clock = StageClock()
    try:
        # The processor reads only the attempt number; a real context needs a lease.
        result = await processor(job, clock, cast(JobContext, SimpleNamespace(attempt=1)))
    finally:
        await reading.aclose()
    seconds = clock.stop()
    received, gets = proxy.received, proxy.gets
    with tempfile.TemporaryDirectory() as check:
        async with SourceReading(storage, by_range=False).stored(
            result.video_key, Path(check)
        ) as made:
            lasts = (await probe(made)).duration_ms
    if abs(lasts - clip_ms) > 100:
        raise SystemExit(f"the clip lasts {lasts} ms, not {clip_ms}")
    await storage.delete_results(job.id)
    return Run(received, gets, seconds, clock.stages)


def _megabytes(count: float) -> str:
    return f"{count / 2**20:,.1f} MiB"


def first_byte_seconds(storage: S3Storage, upload: str) -> float:
    """The store's time for one ranged GET of a block of the source (the median of 5)."""
    client = boto3.client("s3")
    name = storage.object_key(source_key(upload))
    times = []
    for _ in range(5):
        began = time.perf_counter()
        answer = client.get_object(Bucket=BUCKET, Key=name, Range="bytes=0-262143")
        answer["Body"].read()
        times.append(time.perf_counter() - began)
    return statistics.median(times)


def report(
    runs: dict[bool, list[Run]], source_bytes: int, source_ms: int, clip_ms: int, get_s: float
) -> None:
    print(
        f"\nsource: {source_ms / 60_000:.0f} min, {_megabytes(source_bytes)}; "
        f"clip: {clip_ms / 1000:g} s ending 15 s before its end; {len(runs[True])} round(s), "
        "medians\n"
    )
    header = f"{'':<22}{'from the store':>16}{'GETs':>6}{'total':>9}" + "".join(
        f"{s:>9}" for s in STAGES
    )
    print(header)
    medians: dict[bool, tuple[float, float]] = {}
    for by_range, label in ((True, "range reads"), (False, "download first")):
        done = runs[by_range]
        moved = statistics.median(run.bytes_from_store for run in done)
        seconds = statistics.median(run.seconds for run in done)
        medians[by_range] = (moved, seconds)
        stages = "".join(
            f"{statistics.median(run.stages[s] for run in done):>8.2f}s" for s in STAGES
        )
        gets = statistics.median(run.gets for run in done)
        print(f"{label:<22}{_megabytes(moved):>16}{gets:>6.0f}{seconds:>8.2f}s{stages}")
    (range_bytes, range_seconds), (whole_bytes, whole_seconds) = medians[True], medians[False]
    print(
        f"\nrange reads move {range_bytes / whole_bytes:.4f}x the bytes "
        f"({range_bytes / source_bytes:.2%} of the source) in {range_seconds / whole_seconds:.2f}x "
        "the time of downloading first"
    )
    print(
        f"one ranged GET of 256 KiB of this source takes the store {get_s * 1000:.0f} ms "
        "(moto reads the whole object for each; S3 and R2 answer in tens of ms)"
    )


async def main(minutes: int, clip_s: int, rounds: int, size: str) -> None:
    work = Path(tempfile.mkdtemp(prefix="clipper-range-bench-"))
    try:
        print(f"making a {minutes}-minute {size} source ...", flush=True)
        source = make_source(work, minutes, size)
        source_bytes = source.stat().st_size
        source_ms = (await probe(source)).duration_ms
        with running_moto() as endpoint:
            host, port = endpoint.removeprefix("http://").split(":")
            with CountingProxy((host, int(port))) as proxy:
                os.environ.update(
                    AWS_ENDPOINT_URL=f"http://127.0.0.1:{proxy.port}",
                    AWS_REGION="us-east-1",
                    AWS_ACCESS_KEY_ID=ACCESS_KEY,
                    AWS_SECRET_ACCESS_KEY=SECRET_KEY,
                )
                boto3.client("s3").create_bucket(Bucket=BUCKET)
                storage = S3Storage(BUCKET, "bench")
                upload = new_upload_key()
                print(f"storing it ({source_bytes / 2**20:,.0f} MiB) in moto ...", flush=True)
                await storage.put_file(source_key(upload), source)  # moved: the file goes
                start_ms = source_ms - 15_000 - clip_s * 1000
                runs: dict[bool, list[Run]] = {True: [], False: []}
                for round_number in range(rounds):
                    order = (True, False) if round_number % 2 == 0 else (False, True)
                    for by_range in order:
                        scratch = work / f"scratch-{round_number}-{by_range}"
                        run = await clip_once(
                            storage, upload, start_ms, clip_s * 1000, by_range, scratch, proxy
                        )
                        runs[by_range].append(run)
                        way = "range reads" if by_range else "download first"
                        print(
                            f"round {round_number + 1} {way}: {_megabytes(run.bytes_from_store)}"
                            f" in {run.seconds:.2f} s",
                            flush=True,
                        )
                get_s = first_byte_seconds(storage, upload)
                report(runs, source_bytes, source_ms, clip_s * 1000, get_s)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=int, default=60, help="how long the source lasts")
    parser.add_argument("--clip", type=int, default=30, help="the clip's length in seconds")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--size", default="640x360", help="the source's frame size")
    arguments = parser.parse_args()
    asyncio.run(main(arguments.minutes, arguments.clip, arguments.rounds, arguments.size))
