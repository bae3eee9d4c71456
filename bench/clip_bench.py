"""Clip benchmark: 30 s segments of a 10-minute generated source, cut through Clipper (API
accept to done, a real worker) and by running FFmpeg directly, side by side in one run.

    python -m bench.clip_bench [--jobs N]

Stream copy (the start on a keyframe) and re-encode (the start between keyframes), with 1 and 4
jobs at once; the worker runs at concurrency 4. It makes its own database on DATABASE_URL's
server (or the embedded one) and its own data folder, and removes both afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
import uuid
from pathlib import Path

import httpx
import psycopg
from psycopg import sql
from sqlalchemy.engine import make_url

from clipper.api import create_app
from clipper.db import migrate
from clipper.db.urls import libpq_url
from clipper.embedded_db import resolve_database_url
from clipper.media.cutting import cut_arguments
from clipper.media.ffmpeg import ffmpeg_path
from clipper.media.sample import write_sample_video
from clipper.settings import Settings
from clipper.signals import StopSignals
from clipper.worker.service import Worker, WorkerOptions

SEGMENTS = {"copy": ("00:01:00", 60.0), "encode": ("00:01:00.500", 60.5)}


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


def _timecode(seconds: float) -> str:
    minutes, rest = divmod(seconds, 60)
    return f"00:{int(minutes):02d}:{rest:06.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--jobs", type=int, default=8, help="jobs per scenario (a multiple of 4)")
    asyncio.run(run(parser.parse_args().jobs))


if __name__ == "__main__":
    main()
