"""POST /api/jobs/{id}/cancel: a queued job never runs, a processing one has its FFmpeg
stopped within 2 s and its scratch removed, a finished one is a 409; on real PostgreSQL with
a real worker and FFmpeg."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import psycopg
import pytest

from clipper.media import ffmpeg
from clipper.signals import StopSignals
from clipper.worker.service import Worker, WorkerOptions
from tests.api.conftest import ApiFactory, clip, settings_for
from tests.helpers import wait_for
from tests.media_files import make_video


async def _message_state(db_url: str, job_id: str) -> str | None:
    async with await psycopg.AsyncConnection.connect(db_url) as conn:
        cursor = await conn.execute(
            "SELECT state FROM clipper_queue.messages WHERE queue = 'clips' AND job_id = %s",
            (job_id,),
        )
        row = await cursor.fetchone()
    return None if row is None else str(row[0])


async def _message_is(db_url: str, job_id: str, state: str) -> bool:
    return await _message_state(db_url, job_id) == state


async def _events(client: httpx.AsyncClient, job_id: str) -> list[str]:
    return [event["type"] for event in (await client.get(f"/api/jobs/{job_id}/events")).json()]


async def test_a_queued_job_is_cancelled_at_once_and_never_runs(
    client: httpx.AsyncClient, db_url: str
) -> None:
    job = (await client.post("/api/jobs", json=clip())).json()["id"]
    cancelled = await client.post(f"/api/jobs/{job}/cancel")
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["status"] == "cancelled"
    assert await _message_state(db_url, job) == "cancelled"
    assert await _events(client, job) == ["created", "cancelled"]
    again = await client.post(f"/api/jobs/{job}/cancel")  # harmless
    assert again.status_code == 200
    assert again.json()["status"] == "cancelled"
    assert await _events(client, job) == ["created", "cancelled"]
    listed = (await client.get("/api/jobs", params={"status": "cancelled"})).json()["items"]
    assert [item["id"] for item in listed] == [job]


async def test_a_finished_job_cannot_be_cancelled(client: httpx.AsyncClient, db_url: str) -> None:
    job = (await client.post("/api/jobs", json=clip())).json()["id"]
    async with await psycopg.AsyncConnection.connect(db_url) as conn:
        await conn.execute("UPDATE jobs SET status = 'done' WHERE id = %s", (job,))
    refused = await client.post(f"/api/jobs/{job}/cancel")
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "INVALID_STATE"
    assert "done" in refused.json()["error"]["message"]
    missing = await client.post(f"/api/jobs/{uuid.uuid4()}/cancel")
    assert missing.status_code == 404


@pytest.fixture(scope="module")
def long_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_video(tmp_path_factory.mktemp("cancel") / "long.mp4", seconds=90, size="960x540")


@pytest.fixture
async def worker(db_url: str, data_dir: Path) -> AsyncIterator[Worker]:
    running = Worker(settings_for(data_dir=data_dir), db_url, WorkerOptions(metrics_port=0))
    await running.start()
    yield running
    await running.stop(StopSignals())


def _ffmpeg_children() -> list[int]:
    """This process's children running FFmpeg (the in-process worker's)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            command = (entry / "cmdline").read_bytes()
            ours_and_alive = int(stat[1]) == os.getpid() and stat[0] != "Z"
            if ours_and_alive and ffmpeg.ffmpeg_path().encode() in command:
                found.append(int(entry.name))
    return found


def _scratch_of(data_dir: Path, job_id: str) -> list[Path]:
    return list((data_dir / "scratch").glob(f"clip-{job_id}-*"))


async def test_cancelling_a_processing_job_stops_ffmpeg_within_2_s(
    make_client: ApiFactory, worker: Worker, long_video: Path, data_dir: Path, db_url: str
) -> None:
    client: httpx.AsyncClient = await make_client()
    with long_video.open("rb") as file:
        uploaded = await client.post(
            "/api/uploads", files={"file": ("long.mp4", file, "video/mp4")}
        )
    key = uploaded.json()["uploadKey"]
    # Between keyframes: a re-encode of most of the source, seconds of FFmpeg work.
    body = clip(uploadKey=key, start="00:00:00.500", end="00:01:29")
    job = (await client.post("/api/jobs", json=body)).json()["id"]
    await wait_for(lambda: _ffmpeg_children(), timeout=30, message="FFmpeg cutting the clip")
    assert _scratch_of(data_dir, job)
    cancelled = await client.post(f"/api/jobs/{job}/cancel")
    assert cancelled.status_code == 200
    assert cancelled.json()["status"] == "cancelled"
    await wait_for(lambda: not _ffmpeg_children(), timeout=2.0, message="FFmpeg stopped")
    await wait_for(lambda: not _scratch_of(data_dir, job), timeout=2.0, message="scratch gone")
    await wait_for(lambda: _message_is(db_url, job, "cancelled"), message="message cancelled")
    read = (await client.get(f"/api/jobs/{job}")).json()
    assert read["status"] == "cancelled"
    assert "cancelled" in await _events(client, job)
    assert "done" not in await _events(client, job)
